//! Logs written in format versions 1 and 2 stay readable; a writer continues a version-1 log
//! in a new segment, and appends to a version-2 segment as it is (records are framed alike; no
//! preamble frame goes into it). New segments are version 2 unless they have preamble frames
//! (version 3), so older readers read every log that does not use preambles.

use ringwal::format::{self, Version};
use ringwal::{Reader, Writer};
use std::fs;
use std::path::Path;

fn write_v1_segment(dir: &Path, first: u64, payloads: &[&[u8]], dropped: u64) {
    let mut bytes = format::encode_header_version(Version::V1, first).to_vec();
    for (i, p) in payloads.iter().enumerate() {
        format::encode_frame_v1(
            &mut bytes,
            first + i as u64,
            if i == 0 { dropped } else { 0 },
            p,
        );
    }
    fs::write(dir.join(format::segment_file_name(first)), bytes).unwrap();
}

#[test]
fn a_version_1_log_is_read_and_continued_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_v1_segment(dir.path(), 0, &[b"a", b"b", b"c"], 4);
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    assert_eq!(writer.recovery().next_seq, 3);
    emitter.emit(b"d".to_vec()).unwrap();
    emitter.emit(b"e".to_vec()).unwrap();
    drop(emitter);
    writer.shutdown().unwrap();

    let reader = Reader::open(dir.path()).unwrap();
    let segments = reader.segments().unwrap();
    assert_eq!(
        segments.iter().map(|s| s.first_seq).collect::<Vec<_>>(),
        [0, 3],
        "the old segment is left as it was; new records go to a current-version segment"
    );
    let old = fs::read(&segments[0].path).unwrap();
    assert_eq!(format::scan_segment(&old).unwrap().version, Version::V1);
    let new = fs::read(&segments[1].path).unwrap();
    assert_eq!(format::scan_segment(&new).unwrap().version, Version::V2);
    let entries: Vec<_> = reader.iter().map(|e| e.unwrap()).collect();
    let seen: Vec<_> = entries
        .iter()
        .map(|e| (e.seq, e.payload.clone(), e.dropped_before, e.refused_before))
        .collect();
    assert_eq!(
        seen,
        [
            (0, b"a".to_vec(), 4, 0),
            (1, b"b".to_vec(), 0, 0),
            (2, b"c".to_vec(), 0, 0),
            (3, b"d".to_vec(), 0, 0),
            (4, b"e".to_vec(), 0, 0),
        ]
    );
}

#[test]
fn an_empty_version_1_segment_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    write_v1_segment(dir.path(), 0, &[b"a"], 0);
    write_v1_segment(dir.path(), 1, &[], 0);
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    emitter.emit(b"b".to_vec()).unwrap();
    drop(emitter);
    writer.shutdown().unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let segments = reader.segments().unwrap();
    assert_eq!(segments.len(), 2);
    let newest = fs::read(&segments[1].path).unwrap();
    let scan = format::scan_segment(&newest).unwrap();
    assert_eq!(
        (scan.version, scan.first_seq, scan.records),
        (Version::V2, 1, 1)
    );
    let payloads: Vec<_> = reader.iter().map(|e| e.unwrap().payload).collect();
    assert_eq!(payloads, [b"a".to_vec(), b"b".to_vec()]);
}

/// Writes `records` through a writer with `segment_bytes` and `preamble`, and shuts it down.
fn write_records(
    dir: &Path,
    segment_bytes: u64,
    preamble: ringwal::SegmentPreamble,
    records: impl IntoIterator<Item = Vec<u8>>,
) {
    let (writer, emitter) = Writer::builder(dir)
        .segment_bytes(segment_bytes)
        .segment_preamble(preamble)
        .start::<Vec<u8>>()
        .unwrap();
    for record in records {
        emitter.emit(record).unwrap();
    }
    drop(emitter);
    writer.shutdown().unwrap();
}

#[test]
fn a_version_2_segment_is_appended_to_and_the_next_one_has_the_preamble() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = format::encode_header_version(Version::V2, 0).to_vec();
    format::encode_frame(&mut bytes, 0, 0, b"old");
    bytes.extend_from_slice(&format::encode_marker(1, 0, 2));
    fs::write(dir.path().join(format::segment_file_name(0)), bytes).unwrap();
    let preamble = ringwal::SegmentPreamble::new(|p| p.push(b"ctx").unwrap());
    write_records(dir.path(), 200, preamble, (0..6u8).map(|i| vec![i; 40]));

    let reader = Reader::open(dir.path()).unwrap();
    let segments = reader.segments().unwrap();
    assert!(segments.len() >= 3, "{segments:?}");
    let first = format::scan_segment(&fs::read(&segments[0].path).unwrap()).unwrap();
    assert_eq!((first.version, first.preambles), (Version::V2, 0));
    assert!(first.records >= 2, "appended to: {first:?}");
    for seg in &segments[1..] {
        let scan = format::scan_segment(&fs::read(&seg.path).unwrap()).unwrap();
        assert_eq!((scan.version, scan.preambles), (Version::V3, 1), "{seg:?}");
    }
    let mut iter = reader.iter();
    let mut seen = Vec::new();
    while let Some(e) = iter.next() {
        let e = e.unwrap();
        seen.push((e.seq, e.refused_before, iter.take_preamble().len()));
    }
    assert_eq!(seen[..2], [(0, 0, 0), (1, 2, 0)]);
    let starts: Vec<u64> = segments.iter().map(|s| s.first_seq).collect();
    for (seq, _, preambles) in &seen {
        let expect = usize::from(*seq != 0 && starts.contains(seq));
        assert_eq!(*preambles, expect, "record {seq}");
    }
    assert_eq!(seen.len(), 7);
}

#[test]
fn preamble_frames_are_taken_before_their_segments_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let segment = std::sync::atomic::AtomicU64::new(0);
    // A different preamble per segment: which one a reader gets shows.
    let preamble = ringwal::SegmentPreamble::new(move |p| {
        let n = segment.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        p.push(format!("segment {n} at {}", p.next_seq()).as_bytes())
            .unwrap();
    });
    // Two records of 82 bytes per segment, after the header and a 46-byte preamble.
    write_records(dir.path(), 300, preamble, (0..12u8).map(|i| vec![i; 50]));
    let reader = Reader::open(dir.path()).unwrap();
    let starts: Vec<u64> = reader
        .segments()
        .unwrap()
        .iter()
        .map(|s| s.first_seq)
        .collect();
    assert!(starts.len() >= 4, "{starts:?}");

    // Taken before each entry: each segment's own, with its first record.
    let mut iter = reader.iter();
    let mut seen = Vec::new();
    while let Some(e) = iter.next() {
        let e = e.unwrap();
        for p in iter.take_preamble() {
            seen.push((e.seq, String::from_utf8(p).unwrap()));
        }
    }
    let expected: Vec<(u64, String)> = starts
        .iter()
        .enumerate()
        .map(|(n, &s)| (s, format!("segment {n} at {s}")))
        .collect();
    assert_eq!(seen, expected);

    // Never taken: only the current segment's is kept.
    let mut iter = reader.iter();
    let last = iter.by_ref().map(|e| e.unwrap().seq).last().unwrap();
    assert_eq!(last, 11);
    let n = starts.len() - 1;
    let want = format!("segment {n} at {}", starts[n]);
    assert_eq!(iter.take_preamble(), vec![want.clone().into_bytes()]);
    assert!(iter.take_preamble().is_empty(), "taken once");

    // From the middle of a segment: its preamble comes with the first record returned.
    let mut iter = reader.from_seq(starts[n] + 1);
    let first = iter.next().unwrap().unwrap();
    assert_eq!(first.seq, starts[n] + 1);
    assert_eq!(iter.take_preamble(), vec![want.into_bytes()]);
}

fn options_with(preamble: Option<&'static [u8]>) -> ringwal::LogOptions {
    ringwal::LogOptions {
        preamble: preamble
            .map(|bytes| ringwal::SegmentPreamble::new(move |p| p.push(bytes).unwrap())),
        ..ringwal::LogOptions::default()
    }
}

#[test]
fn a_newest_segment_with_no_record_is_rebuilt_with_this_logs_preamble() {
    use ringwal::{Batch, SegmentLog, Sink};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format::segment_file_name(0));
    let with = |payload: &[u8]| {
        let mut b = format::encode_header_version(Version::V3, 0).to_vec();
        format::encode_preamble_frame(&mut b, 0, payload);
        b
    };
    // Another run's preamble, no record: replaced by this one's.
    drop(SegmentLog::open(dir.path(), options_with(Some(b"old context"))).unwrap());
    assert_eq!(fs::read(&path).unwrap(), with(b"old context"));
    drop(SegmentLog::open(dir.path(), options_with(Some(b"new context"))).unwrap());
    assert_eq!(fs::read(&path).unwrap(), with(b"new context"));
    // Already ours: left alone.
    drop(SegmentLog::open(dir.path(), options_with(Some(b"new context"))).unwrap());
    assert_eq!(fs::read(&path).unwrap(), with(b"new context"));
    // Cut short by a crash (half its preamble frame): recovery cuts the torn frame, and the
    // open writes the whole preamble again.
    let whole = with(b"new context");
    fs::write(&path, &whole[..whole.len() - 5]).unwrap();
    let mut log = SegmentLog::open(dir.path(), options_with(Some(b"new context"))).unwrap();
    assert_eq!(fs::read(&path).unwrap(), whole);
    let mut frame = Vec::new();
    format::encode_frame(&mut frame, 0, 0, b"first");
    log.append(&Batch::new(&frame, 0, 1).unwrap()).unwrap();
    log.sync().unwrap();
    drop(log);
    // With a record it is appended to as it is, whatever this run's preamble.
    drop(SegmentLog::open(dir.path(), options_with(Some(b"third context"))).unwrap());
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    assert_eq!(iter.next().unwrap().unwrap().payload, b"first");
    assert_eq!(iter.take_preamble(), vec![b"new context".to_vec()]);

    // A version-2 segment with nothing in it becomes version 3 when a preamble is wanted; a
    // log without one leaves a segment as it is.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format::segment_file_name(7));
    fs::write(&path, format::encode_header(7)).unwrap();
    drop(SegmentLog::open(dir.path(), options_with(None)).unwrap());
    assert_eq!(fs::read(&path).unwrap(), format::encode_header(7));
    let log = SegmentLog::open(dir.path(), options_with(Some(b"ctx"))).unwrap();
    assert_eq!(
        log.next_seq(),
        7,
        "rebuilt in place: its sequence number kept"
    );
    drop(log);
    let scan = format::scan_segment(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        (scan.version, scan.preambles, scan.first_seq),
        (Version::V3, 1, 7)
    );
}
