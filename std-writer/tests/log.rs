//! Integration tests of the on-disk log: the writer's output read back by `Reader`, rotation,
//! restart, recovery of torn and short tails, corruption, retention, format versions, bad
//! input, and property tests of the frame format.
//!
//! Every test that runs a writer checks conservation (`emitted == persisted + dropped`).

#[path = "support/deadline.rs"]
mod deadline;

use proptest::prelude::*;
use ringwal::format::{self, ScanEnd, FRAME_HEADER_LEN, HEADER_LEN};
use ringwal::{
    Entry, LogOptions, Overflow, Reader, RecoveryMode, Report, Retain, SegmentLog, Sink,
    SyncPolicy, Writer,
};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Conservation after a clean shutdown, and nothing rejected unless the test expects it.
#[track_caller]
fn assert_conserved(report: &Report) {
    assert_eq!(
        report.emitted,
        report.persisted + report.dropped,
        "conservation violated: {report:?}"
    );
    assert_eq!(report.queued, 0, "queued after shutdown: {report:?}");
}

/// A fixed-size payload, so frame offsets are predictable: 15 bytes, frame 39 bytes.
fn fixed_payload(i: u64) -> Vec<u8> {
    format!("record {i:08}").into_bytes()
}
const FIXED_FRAME: u64 = (FRAME_HEADER_LEN + 15) as u64;

/// Segment size that holds exactly `k` fixed-size frames.
fn seg_bytes_for(k: u64) -> u64 {
    HEADER_LEN as u64 + k * FIXED_FRAME
}

/// Runs a writer on `dir` that appends `n` fixed-size records numbered from `first`, shuts it
/// down, and checks its report.
fn write_fixed(dir: &Path, first: u64, n: u64, segment_bytes: u64) -> Report {
    let (writer, emitter) = Writer::builder(dir)
        .overflow(Overflow::Block(None))
        .segment_bytes(segment_bytes)
        .start::<Vec<u8>>()
        .expect("start writer");
    assert_eq!(writer.recovery().next_seq, first, "{:?}", writer.recovery());
    for i in first..first + n {
        emitter.emit(fixed_payload(i)).expect("Block(None) accepts");
    }
    drop(emitter);
    let report = writer.shutdown().expect("clean shutdown");
    assert_conserved(&report);
    assert_eq!(report.persisted, n);
    assert_eq!(report.dropped, 0);
    assert_eq!(report.rejected, 0);
    report
}

/// Every entry in the log; panics on an error item.
fn read_all(dir: &Path) -> Vec<Entry> {
    Reader::open(dir)
        .expect("open reader")
        .iter()
        .collect::<io::Result<Vec<_>>>()
        .expect("log reads without error")
}

/// The log holds exactly the fixed-size records `first..end`, in order, with no gap marks.
#[track_caller]
fn assert_fixed_log(dir: &Path, first: u64, end: u64) {
    let entries = read_all(dir);
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (first..end).collect::<Vec<_>>());
    for e in &entries {
        assert_eq!(
            e.payload,
            fixed_payload(e.seq),
            "payload of record {}",
            e.seq
        );
        assert_eq!(e.dropped_before, 0, "record {}", e.seq);
    }
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format::segment_file_name(first_seq))
}

fn segment_firsts(dir: &Path) -> Vec<u64> {
    Reader::open(dir)
        .expect("open reader")
        .segments()
        .expect("list segments")
        .iter()
        .map(|s| s.first_seq)
        .collect()
}

/// Opens `dir` with the builder under the default [`RecoveryMode::PointInTime`] and expects
/// `seg` cut at `bad_at`, reported, and the `kept` records before it read back cleanly.
fn assert_cut_at(dir: &Path, seg: &Path, segment_bytes: u64, bad_at: u64, kept: u64) {
    let (writer, _emitter) = Writer::builder(dir)
        .segment_bytes(segment_bytes)
        .start::<Vec<u8>>()
        .unwrap();
    let recovery = writer.recovery().clone();
    writer.shutdown().unwrap();
    assert_eq!(recovery.truncated.as_deref(), Some(seg), "{recovery:?}");
    assert!(recovery.bytes_cut > 0, "{recovery:?}");
    let reason = recovery.reason.clone().unwrap();
    assert!(reason.contains(&format!("offset {bad_at}")), "{reason}");
    assert_eq!(recovery.next_seq, kept, "{recovery:?}");
    assert_eq!(fs::metadata(seg).unwrap().len(), bad_at);
    let items: Vec<_> = Reader::open(dir).unwrap().iter().collect();
    assert_eq!(items.len() as u64, kept);
    assert!(items.iter().all(|i| i.is_ok()));
}

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Opens `dir` with the builder (segments of `segment_bytes`, [`RecoveryMode::Strict`]) and
/// expects the refusal damage gets: `InvalidData`, naming `seg`, with nothing on disk
/// changed. Returns the message.
fn assert_open_refused(dir: &Path, seg: &Path, segment_bytes: u64, why: &str) -> String {
    let before = snapshot(dir);
    let err = Writer::builder(dir)
        .segment_bytes(segment_bytes)
        .recovery(RecoveryMode::Strict)
        .start::<Vec<u8>>()
        .expect_err(why);
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert_eq!(snapshot(dir), before, "nothing on disk may change");
    msg
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn garbage(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A header whose version field says `version`, with a CRC that matches (so only the version
/// is wrong).
fn header_with_version(first_seq: u64, version: u32) -> [u8; HEADER_LEN] {
    let mut h = format::encode_header(first_seq);
    // The CRC covers bytes 0..28: check we compute it the way the library does.
    assert_eq!(
        ringwal::format::crc32c(&h[..28]).to_le_bytes(),
        h[28..32],
        "header CRC layout"
    );
    h[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = ringwal::format::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

fn producer_payload(producer: u8, counter: u32) -> Vec<u8> {
    let mut v = vec![producer];
    v.extend_from_slice(&counter.to_le_bytes());
    v
}

fn decode_producer_payload(payload: &[u8]) -> (u8, u32) {
    assert_eq!(payload.len(), 5, "payload {payload:?}");
    (
        payload[0],
        u32::from_le_bytes(payload[1..5].try_into().unwrap()),
    )
}

/// Runs `producers` threads emitting `per` events each and returns the report.
fn run_producers(dir: &Path, producers: u8, per: u32, segment_bytes: Option<u64>) -> Report {
    let mut builder = Writer::builder(dir).overflow(Overflow::Block(None));
    if let Some(b) = segment_bytes {
        builder = builder.segment_bytes(b);
    }
    let (writer, emitter) = builder.start::<Vec<u8>>().expect("start writer");
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let emitter = emitter.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    emitter
                        .emit(producer_payload(p, i))
                        .expect("Block(None) never rejects");
                }
            })
        })
        .collect();
    drop(emitter);
    for t in threads {
        t.join().expect("producer panicked");
    }
    let report = writer.shutdown().expect("clean shutdown");
    assert_conserved(&report);
    let total = u64::from(producers) * u64::from(per);
    assert_eq!(report.emitted, total, "{report:?}");
    assert_eq!(report.persisted, total, "{report:?}");
    assert_eq!(report.dropped, 0, "{report:?}");
    assert_eq!(report.rejected, 0, "{report:?}");
    assert_eq!(report.last_seq, Some(total - 1), "{report:?}");
    report
}

/// Reads the log back and checks: seqs 0.. consecutive, each producer's events in order, every
/// event exactly once.
fn check_producers_log(dir: &Path, producers: u8, per: u32) {
    let entries = read_all(dir);
    let total = u64::from(producers) * u64::from(per);
    assert_eq!(entries.len() as u64, total);
    let mut next = vec![0u32; producers as usize];
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e.seq, i as u64,
            "sequence numbers must be consecutive from 0"
        );
        assert_eq!(e.dropped_before, 0);
        let (p, c) = decode_producer_payload(&e.payload);
        assert!(p < producers, "unknown producer {p}");
        assert_eq!(
            c, next[p as usize],
            "producer {p}: out of order or duplicated/missing at seq {}",
            e.seq
        );
        next[p as usize] += 1;
    }
    assert!(
        next.iter().all(|&n| n == per),
        "per-producer counts {next:?}"
    );
}

/// Checks each segment on disk: name and header agree, frames are clean, each segment's next
/// seq is the next segment's first seq, and sizes respect `segment_bytes`.
fn check_segments_line_up(dir: &Path, segment_bytes: u64, first: u64, end: u64) -> usize {
    let segs = Reader::open(dir).unwrap().segments().unwrap();
    assert!(!segs.is_empty());
    assert_eq!(segs[0].first_seq, first);
    for (i, seg) in segs.iter().enumerate() {
        let name = seg.path.file_name().unwrap().to_str().unwrap();
        assert_eq!(format::parse_segment_file_name(name), Some(seg.first_seq));
        assert_eq!(name, format::segment_file_name(seg.first_seq));
        let bytes = fs::read(&seg.path).unwrap();
        assert_eq!(bytes.len() as u64, seg.bytes, "{name}: SegmentInfo::bytes");
        assert!(
            seg.bytes <= segment_bytes,
            "{name}: {} bytes exceeds segment_bytes {segment_bytes}",
            seg.bytes
        );
        let scan = format::scan_segment(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(scan.end, ScanEnd::Clean, "{name}");
        assert_eq!(scan.first_seq, seg.first_seq, "{name}");
        assert!(scan.records > 0, "{name}: empty sealed/active segment");
        let expected_next = segs.get(i + 1).map_or(end, |s| s.first_seq);
        assert_eq!(scan.next_seq(), expected_next, "{name}: next segment");
    }
    segs.len()
}

// ---------------------------------------------------------------------------------------------
// 1. Round trip from several threads
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_four_producers() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_producers(dir.path(), 4, 20_000, None);
    assert_eq!(report.segments, 1);
    check_producers_log(dir.path(), 4, 20_000);
    let n = check_segments_line_up(dir.path(), 64 << 20, 0, 80_000);
    assert_eq!(n, 1);
}

#[test]
fn round_trip_four_producers_with_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let segment_bytes = 4096;
    let report = run_producers(dir.path(), 4, 2_500, Some(segment_bytes));
    check_producers_log(dir.path(), 4, 2_500);
    let n = check_segments_line_up(dir.path(), segment_bytes, 0, 10_000);
    assert!(n > 1, "expected rotation, got {n} segment(s)");
    // 10_000 frames of 29 bytes need at least this many segments.
    let per_segment = (segment_bytes - HEADER_LEN as u64) / 29;
    assert!(n as u64 >= 10_000_u64.div_ceil(per_segment), "{n} segments");
    assert_eq!(report.segments, n as u64, "{report:?}");
}

#[test]
fn rotation_boundaries_follow_segment_bytes() {
    // Exactly 10 fixed frames fit a segment: boundaries at 0, 10, 20, ...
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 35, seg_bytes_for(10));
    assert_eq!(segment_firsts(dir.path()), vec![0, 10, 20, 30]);
    for first in [0, 10, 20] {
        let len = fs::metadata(segment_path(dir.path(), first)).unwrap().len();
        assert_eq!(len, seg_bytes_for(10));
    }
    assert_fixed_log(dir.path(), 0, 35);
}

// ---------------------------------------------------------------------------------------------
// 2. Flush makes records visible to a live reader
// ---------------------------------------------------------------------------------------------

fn flush_visibility(segment_bytes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .segment_bytes(segment_bytes)
        .start::<Vec<u8>>()
        .unwrap();

    let k = 50;
    for i in 0..k {
        emitter.emit(fixed_payload(i)).unwrap();
    }
    emitter.flush().expect("flush");
    let reader = Reader::open(dir.path()).expect("reader on a live log");
    let mut it = reader.iter();
    for i in 0..k {
        let e = it
            .next()
            .unwrap_or_else(|| panic!("record {i} not visible after flush"))
            .expect("no error");
        assert_eq!((e.seq, &e.payload), (i, &fixed_payload(i)));
    }
    assert!(it.next().is_none(), "nothing beyond what was emitted");
    assert!(it.next().is_none(), "still nothing: no new records yet");

    // More records: the same iterator, which returned None, picks them up.
    let more = 70;
    for i in k..k + more {
        emitter.emit(fixed_payload(i)).unwrap();
    }
    emitter.flush().expect("flush");
    for i in k..k + more {
        let e = it
            .next()
            .unwrap_or_else(|| panic!("live iterator did not pick up record {i}"))
            .expect("no error");
        assert_eq!((e.seq, &e.payload), (i, &fixed_payload(i)));
    }
    assert!(it.next().is_none());

    // A fresh reader sees the same.
    assert_eq!(reader.iter().count() as u64, k + more);
    let stats = emitter.stats();
    assert_eq!(stats.persisted, k + more);
    assert_eq!(stats.last_seq, Some(k + more - 1));

    drop(emitter);
    let report = writer.shutdown().unwrap();
    assert_conserved(&report);
    assert_eq!(report.persisted, k + more);
    assert_fixed_log(dir.path(), 0, k + more);
}

#[test]
fn flush_makes_records_visible_to_live_reader() {
    flush_visibility(64 << 20);
}

#[test]
fn live_reader_follows_into_new_segments() {
    // 7 frames per segment: the second batch crosses into segments created after the
    // iterator hit the end.
    flush_visibility(seg_bytes_for(7));
}

// ---------------------------------------------------------------------------------------------
// 3. Restart continuity
// ---------------------------------------------------------------------------------------------

#[test]
fn restart_continues_sequence() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
        let rec = writer.recovery().clone();
        assert_eq!(rec.next_seq, 0);
        assert_eq!(rec.bytes_cut, 0);
        assert_eq!(rec.truncated, None);
        for i in 0..100 {
            emitter.emit(fixed_payload(i)).unwrap();
        }
        drop(emitter);
        let report = writer.shutdown().unwrap();
        assert_conserved(&report);
        assert_eq!(report.persisted, 100);
    }
    {
        let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
        let rec = writer.recovery().clone();
        assert_eq!(rec.next_seq, 100, "{rec:?}");
        assert_eq!(rec.bytes_cut, 0, "{rec:?}");
        assert_eq!(rec.truncated, None, "{rec:?}");
        assert_eq!(rec.reason, None, "{rec:?}");
        assert_eq!(rec.records_kept, 100, "{rec:?}");
        assert_eq!(rec.segments, 1, "{rec:?}");
        for i in 100..200 {
            emitter.emit(fixed_payload(i)).unwrap();
        }
        drop(emitter);
        let report = writer.shutdown().unwrap();
        assert_conserved(&report);
        // Counters are per run.
        assert_eq!(report.emitted, 100);
        assert_eq!(report.persisted, 100);
        assert_eq!(report.last_seq, Some(199));
    }
    assert_fixed_log(dir.path(), 0, 200);
}

#[test]
fn restart_continues_sequence_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let sb = seg_bytes_for(8);
    write_fixed(dir.path(), 0, 20, sb);
    write_fixed(dir.path(), 20, 20, sb);
    write_fixed(dir.path(), 40, 3, sb);
    assert_fixed_log(dir.path(), 0, 43);
    check_segments_line_up(dir.path(), sb, 0, 43);
}

// ---------------------------------------------------------------------------------------------
// 4. Torn tail recovery
// ---------------------------------------------------------------------------------------------

/// Writes `n` records, appends `tail` to the last segment, reopens, and checks the recovery
/// report, that the log continues at the right seq, and that the reader reads everything.
fn torn_tail_case(what: &str, n: u64, segment_bytes: u64, tail: impl Fn(u64) -> Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, n, segment_bytes);
    let last_first = *segment_firsts(dir.path()).last().unwrap();
    let last = segment_path(dir.path(), last_first);
    let clean_len = fs::metadata(&last).unwrap().len();
    let tail = tail(n);
    assert!(!tail.is_empty());
    append_bytes(&last, &tail);

    // The reader treats an uncut torn tail in the newest segment as the end, for now.
    assert_fixed_log(dir.path(), 0, n);

    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .segment_bytes(segment_bytes)
        .start::<Vec<u8>>()
        .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let rec = writer.recovery().clone();
    assert_eq!(rec.bytes_cut, tail.len() as u64, "{what}: {rec:?}");
    assert_eq!(
        rec.truncated.as_deref(),
        Some(last.as_path()),
        "{what}: {rec:?}"
    );
    assert!(rec.reason.is_some(), "{what}: {rec:?}");
    assert_eq!(rec.next_seq, n, "{what}: {rec:?}");
    assert_eq!(rec.records_kept, n - last_first, "{what}: {rec:?}");
    assert_eq!(
        fs::metadata(&last).unwrap().len(),
        clean_len,
        "{what}: cut to the clean length"
    );

    for i in n..n + 10 {
        emitter.emit(fixed_payload(i)).unwrap();
    }
    drop(emitter);
    let report = writer.shutdown().unwrap();
    assert_conserved(&report);
    assert_eq!(report.persisted, 10);
    assert_fixed_log(dir.path(), 0, n + 10);
    check_segments_line_up(dir.path(), segment_bytes, 0, n + 10);

    // Reopening again finds nothing to repair.
    let (writer, _e) = Writer::builder(dir.path())
        .segment_bytes(segment_bytes)
        .start::<Vec<u8>>()
        .unwrap();
    let rec = writer.recovery().clone();
    assert_eq!((rec.bytes_cut, rec.truncated.clone()), (0, None), "{what}");
    assert_eq!(rec.next_seq, n + 10, "{what}");
    assert_conserved(&writer.shutdown().unwrap());
}

fn partial_frame(seq: u64, len: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    format::encode_frame(&mut frame, seq, 0, &fixed_payload(seq));
    assert!(len < frame.len());
    frame.truncate(len);
    frame
}

#[test]
fn torn_tail_partial_frame_is_cut() {
    torn_tail_case("30-byte partial frame", 25, 64 << 20, |next| {
        partial_frame(next, 30)
    });
    torn_tail_case("partial frame header", 25, 64 << 20, |next| {
        partial_frame(next, 10)
    });
    // With rotation, the tail is in a later segment.
    torn_tail_case("partial frame, rotated", 25, seg_bytes_for(10), |next| {
        partial_frame(next, 30)
    });
}

#[test]
fn torn_tail_garbage_is_cut() {
    torn_tail_case("random garbage", 25, 64 << 20, |_| garbage(77, 0x9E37_79B9));
    torn_tail_case("random garbage, rotated", 33, seg_bytes_for(10), |_| {
        garbage(500, 12345)
    });
}

#[test]
fn torn_tail_zeros_are_cut() {
    torn_tail_case("zeros", 25, 64 << 20, |_| vec![0u8; 100]);
    torn_tail_case("a few zeros", 25, 64 << 20, |_| vec![0u8; 5]);
    torn_tail_case("zeros, rotated", 30, seg_bytes_for(10), |_| vec![0u8; 4096]);
}

#[test]
fn torn_tail_on_empty_log_is_cut() {
    // No record at all: a partial frame with seq 0 after the header.
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 0, 64 << 20);
    let seg = segment_path(dir.path(), 0);
    assert_eq!(fs::metadata(&seg).unwrap().len(), HEADER_LEN as u64);
    append_bytes(&seg, &partial_frame(0, 30));
    let (writer, _e) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    let rec = writer.recovery().clone();
    assert_eq!(rec.bytes_cut, 30, "{rec:?}");
    assert_eq!(rec.next_seq, 0, "{rec:?}");
    assert_eq!(rec.truncated.as_deref(), Some(seg.as_path()));
    assert_conserved(&writer.shutdown().unwrap());
    assert!(read_all(dir.path()).is_empty());
}

#[test]
fn corrupt_last_record_of_last_segment_is_cut() {
    // Documented: a corrupt tail (nothing valid after it) is treated like a torn one.
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 20, 64 << 20);
    let seg = segment_path(dir.path(), 0);
    let last_frame_at = HEADER_LEN as u64 + 19 * FIXED_FRAME;
    flip_byte(&seg, last_frame_at + FRAME_HEADER_LEN as u64 + 2);
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    let rec = writer.recovery().clone();
    assert_eq!(rec.bytes_cut, FIXED_FRAME, "{rec:?}");
    assert_eq!(rec.next_seq, 19, "{rec:?}");
    assert_eq!(rec.records_kept, 19, "{rec:?}");
    emitter.emit(fixed_payload(19)).unwrap();
    drop(emitter);
    assert_conserved(&writer.shutdown().unwrap());
    assert_fixed_log(dir.path(), 0, 20);
}

// ---------------------------------------------------------------------------------------------
// 5. A last segment shorter than a header
// ---------------------------------------------------------------------------------------------

fn short_segment_case(what: &str, n: u64, segment_bytes: u64, contents: impl Fn(u64) -> Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, n, segment_bytes);
    let before = segment_firsts(dir.path());
    let extra = segment_path(dir.path(), n);
    let contents = contents(n);
    fs::write(&extra, &contents).unwrap();

    let (writer, emitter) = Writer::builder(dir.path())
        .segment_bytes(segment_bytes)
        .start::<Vec<u8>>()
        .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let rec = writer.recovery().clone();
    assert_eq!(rec.bytes_cut, contents.len() as u64, "{what}: {rec:?}");
    assert_eq!(
        rec.truncated.as_deref(),
        Some(extra.as_path()),
        "{what}: {rec:?}"
    );
    assert!(rec.reason.is_some(), "{what}: {rec:?}");
    assert_eq!(rec.next_seq, n, "{what}: {rec:?}");
    assert_eq!(rec.segments, before.len(), "{what}: {rec:?}");
    assert_eq!(
        rec.records_kept,
        n - before.last().unwrap(),
        "{what}: {rec:?}"
    );
    assert_eq!(
        segment_firsts(dir.path()),
        before,
        "{what}: the short segment is removed"
    );

    for i in n..n + 5 {
        emitter.emit(fixed_payload(i)).unwrap();
    }
    drop(emitter);
    let report = writer.shutdown().unwrap();
    assert_conserved(&report);
    assert_eq!(report.persisted, 5);
    assert_fixed_log(dir.path(), 0, n + 5);
    check_segments_line_up(dir.path(), segment_bytes, 0, n + 5);
}

#[test]
fn short_last_segment_is_removed() {
    short_segment_case("10 header bytes", 12, 64 << 20, |n| {
        format::encode_header(n)[..10].to_vec()
    });
    short_segment_case("10 header bytes, rotated", 25, seg_bytes_for(10), |n| {
        format::encode_header(n)[..10].to_vec()
    });
    // The previous segment is full: the writer must create the removed file anew.
    short_segment_case(
        "10 header bytes, previous full",
        30,
        seg_bytes_for(10),
        |n| format::encode_header(n)[..10].to_vec(),
    );
    short_segment_case("empty file", 12, 64 << 20, |_| Vec::new());
    short_segment_case("31 header bytes", 12, 64 << 20, |n| {
        format::encode_header(n)[..31].to_vec()
    });
    short_segment_case("32 zero bytes", 12, 64 << 20, |_| vec![0; HEADER_LEN]);
}

#[test]
fn only_segment_shorter_than_header_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let seg = segment_path(dir.path(), 0);
    fs::write(&seg, &format::encode_header(0)[..10]).unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    let rec = writer.recovery().clone();
    assert_eq!(rec.bytes_cut, 10, "{rec:?}");
    assert_eq!(rec.next_seq, 0, "{rec:?}");
    assert_eq!(rec.truncated.as_deref(), Some(seg.as_path()));
    emitter.emit(fixed_payload(0)).unwrap();
    drop(emitter);
    assert_conserved(&writer.shutdown().unwrap());
    assert_fixed_log(dir.path(), 0, 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Mid-file damage
// ---------------------------------------------------------------------------------------------

#[test]
fn bit_flip_in_older_segment_reader_errs_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 35, seg_bytes_for(10));
    assert_eq!(segment_firsts(dir.path()), vec![0, 10, 20, 30]);
    let seg = segment_path(dir.path(), 0);
    let bad_at = HEADER_LEN as u64 + 2 * FIXED_FRAME;
    flip_byte(&seg, bad_at + FRAME_HEADER_LEN as u64 + 5);

    let reader = Reader::open(dir.path()).unwrap();
    let mut it = reader.iter();
    for i in 0..2 {
        let e = it.next().expect("a valid record").expect("no error yet");
        assert_eq!(e.seq, i);
    }
    let err = it
        .next()
        .expect("an error item")
        .expect_err("damage must be an error");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {bad_at}")), "{msg}");
    assert!(it.next().is_none(), "the iterator stops after an error");
    assert!(it.next().is_none(), "and stays stopped");

    // from_seq past the damage reads the later segments fine.
    let later: Vec<u64> = reader.from_seq(10).map(|e| e.unwrap().seq).collect();
    assert_eq!(later, (10..35).collect::<Vec<_>>());
}

#[test]
fn bit_flip_in_length_field_of_older_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 25, seg_bytes_for(10));
    let seg = segment_path(dir.path(), 10);
    let bad_at = HEADER_LEN as u64 + 4 * FIXED_FRAME;
    flip_byte(&seg, bad_at); // length 15 -> 31: runs into the next frame
    let items: Vec<_> = Reader::open(dir.path()).unwrap().iter().collect();
    assert_eq!(items.len(), 15, "14 records then one error");
    for (i, item) in items[..14].iter().enumerate() {
        assert_eq!(item.as_ref().unwrap().seq, i as u64);
    }
    let msg = items[14].as_ref().unwrap_err().to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {bad_at}")), "{msg}");
}

#[test]
fn bit_flip_in_last_segment_with_records_after_is_refused_by_strict_and_cut_by_point_in_time() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 35, seg_bytes_for(10));
    let seg = segment_path(dir.path(), 30);
    let bad_at = HEADER_LEN as u64 + FIXED_FRAME; // record 31; 32..34 are valid after it
    flip_byte(&seg, bad_at + FRAME_HEADER_LEN as u64 + 3);
    let msg = assert_open_refused(
        dir.path(),
        &seg,
        seg_bytes_for(10),
        "corruption with valid records after it must not be truncated",
    );
    assert!(msg.contains("offset"), "{msg}");
    assert!(msg.contains(&format!("offset {bad_at}")), "{msg}");

    // Trying again changes nothing either.
    assert_open_refused(dir.path(), &seg, 64 << 20, "still damaged");

    // The reader reports it too, after the records before it.
    let items: Vec<_> = Reader::open(dir.path()).unwrap().iter().collect();
    assert_eq!(items.len(), 32);
    assert!(items[..31].iter().all(|i| i.is_ok()));
    let msg = items[31].as_ref().unwrap_err().to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {bad_at}")), "{msg}");

    // The default, point in time, cuts there (nothing after the first invalid frame of the
    // newest segment can have been acknowledged) and says so.
    assert_cut_at(dir.path(), &seg, seg_bytes_for(10), bad_at, 31);
}

#[test]
fn sequence_break_in_last_segment_is_refused_by_strict_and_cut_by_point_in_time() {
    // A valid frame with the wrong sequence number followed by valid ones.
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 5, 64 << 20);
    let seg = segment_path(dir.path(), 0);
    let mut tail = Vec::new();
    format::encode_frame(&mut tail, 7, 0, b"skips ahead");
    format::encode_frame(&mut tail, 8, 0, b"follows");
    let bad_at = fs::metadata(&seg).unwrap().len();
    append_bytes(&seg, &tail);
    assert_open_refused(dir.path(), &seg, 64 << 20, "a sequence break is damage");
    assert_cut_at(dir.path(), &seg, 64 << 20, bad_at, 5);
}

#[test]
fn stale_sequence_number_at_the_end_of_the_newest_segment_is_an_error_everywhere() {
    // Issue 11 item 4: one valid, checksummed frame with a stale sequence number, the last
    // bytes of the newest segment (what a second writer leaves). The Reader used to end there
    // cleanly, hiding it; the writer's recovery and the Reader must agree that it is damage.
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 5, 64 << 20);
    let seg = segment_path(dir.path(), 0);
    let bad_at = fs::metadata(&seg).unwrap().len();
    let mut tail = Vec::new();
    format::encode_frame(&mut tail, 2, 0, b"stale");
    append_bytes(&seg, &tail);

    let items: Vec<_> = Reader::open(dir.path()).unwrap().iter().collect();
    assert_eq!(items.len(), 6, "5 records, then an error: {items:?}");
    assert!(items[..5].iter().all(|i| i.is_ok()));
    let msg = items[5].as_ref().unwrap_err().to_string();
    assert!(msg.contains("sequence break"), "{msg}");
    assert!(msg.contains(&format!("offset {bad_at}")), "{msg}");
    assert_open_refused(dir.path(), &seg, 64 << 20, "a stale frame is damage");
    // Point in time (the default) cuts it, reporting the sequence break.
    assert_cut_at(dir.path(), &seg, 64 << 20, bad_at, 5);
}

// ---------------------------------------------------------------------------------------------
// 7. Retention
// ---------------------------------------------------------------------------------------------

#[test]
fn retain_segments_keeps_the_newest_two() {
    let dir = tempfile::tempdir().unwrap();
    let sb = seg_bytes_for(10);
    let n = 400;
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .segment_bytes(sb)
        .retain(Retain::Segments(2))
        .start::<Vec<u8>>()
        .unwrap();
    for i in 0..n {
        emitter.emit(fixed_payload(i)).unwrap();
        if i % 97 == 0 {
            emitter.flush().unwrap();
        }
    }
    drop(emitter);
    let report = writer.shutdown().unwrap();
    assert_conserved(&report);
    assert_eq!(report.persisted, n);

    // After the final sync the active segment holds the sync mark, so retention can go down
    // to exactly 2 segments (the active one and its predecessor).
    let firsts = segment_firsts(dir.path());
    assert_eq!(firsts.len(), 2, "segments left: {firsts:?}");
    assert_eq!(report.segments, 2, "{report:?}");
    // 10 records per segment: the last two segments are 380.. and 390..
    assert_eq!(firsts, vec![380, 390]);
    assert!(
        !segment_path(dir.path(), 0).exists(),
        "the oldest are deleted"
    );
    assert_fixed_log(dir.path(), 380, n);
    check_segments_line_up(dir.path(), sb, 380, n);
}

#[test]
fn retain_bytes_keeps_a_bounded_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let sb = seg_bytes_for(10);
    // Three full segments and the active one's three records fit; a fourth full one does not.
    let budget = 3 * sb + 234;
    let n = 333;
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .segment_bytes(sb)
        .retain(Retain::Bytes(budget))
        .start::<Vec<u8>>()
        .unwrap();
    for i in 0..n {
        emitter.emit(fixed_payload(i)).unwrap();
    }
    drop(emitter);
    let report = writer.shutdown().unwrap();
    assert_conserved(&report);
    assert_eq!(report.persisted, n);

    let segs = Reader::open(dir.path()).unwrap().segments().unwrap();
    let total: u64 = segs.iter().map(|s| s.bytes).sum();
    assert!(
        total <= budget,
        "{total} bytes kept, budget {budget}: {segs:?}"
    );
    // Deleting stops as soon as the rest fits: the last deleted segment (at most `sb` bytes)
    // did not fit together with what is left.
    assert!(total + sb > budget, "deleted too much: {total} bytes kept");
    assert!(!segment_path(dir.path(), 0).exists());
    let first = segs[0].first_seq;
    assert!(first > 0);
    assert_fixed_log(dir.path(), first, n);
    check_segments_line_up(dir.path(), sb, first, n);
    // Records 330..333 live in the active segment.
    let firsts: Vec<u64> = segs.iter().map(|s| s.first_seq).collect();
    assert_eq!(firsts, vec![300, 310, 320, 330]);
}

#[test]
fn retain_bytes_smaller_than_a_segment_keeps_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let sb = seg_bytes_for(10);
    write_fixed(dir.path(), 0, 0, sb);
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .segment_bytes(sb)
        .retain(Retain::Bytes(1))
        .start::<Vec<u8>>()
        .unwrap();
    for i in 0..45 {
        emitter.emit(fixed_payload(i)).unwrap();
    }
    drop(emitter);
    assert_conserved(&writer.shutdown().unwrap());
    assert_eq!(segment_firsts(dir.path()), vec![40]);
    assert_fixed_log(dir.path(), 40, 45);
}

#[test]
fn retention_applies_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sb = seg_bytes_for(10);
    write_fixed(dir.path(), 0, 95, sb);
    assert_eq!(segment_firsts(dir.path()).len(), 10);
    let (writer, emitter) = Writer::builder(dir.path())
        .segment_bytes(sb)
        .retain(Retain::Segments(3))
        .start::<Vec<u8>>()
        .unwrap();
    for i in 95..100 {
        emitter.emit(fixed_payload(i)).unwrap();
    }
    drop(emitter);
    assert_conserved(&writer.shutdown().unwrap());
    assert_eq!(segment_firsts(dir.path()), vec![70, 80, 90]);
    assert_fixed_log(dir.path(), 70, 100);
}

// ---------------------------------------------------------------------------------------------
// 8. A segment from a newer format version
// ---------------------------------------------------------------------------------------------

fn patch_version(path: &Path, first_seq: u64, version: u32) {
    let mut bytes = fs::read(path).unwrap();
    bytes[..HEADER_LEN].copy_from_slice(&header_with_version(first_seq, version));
    fs::write(path, bytes).unwrap();
}

#[test]
fn newer_version_in_last_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 25, seg_bytes_for(10));
    let seg = segment_path(dir.path(), 20);
    patch_version(&seg, 20, format::VERSION + 1);
    let msg = assert_open_refused(
        dir.path(),
        &seg,
        seg_bytes_for(10),
        "a newer version must be refused",
    );
    assert!(msg.contains("version"), "{msg}");

    let items: Vec<_> = Reader::open(dir.path()).unwrap().iter().collect();
    assert_eq!(items.len(), 21, "20 records, then the error");
    assert!(items[..20].iter().all(|i| i.is_ok()));
    let msg = items[20].as_ref().unwrap_err().to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains("version"), "{msg}");
}

#[test]
fn newer_version_in_older_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 25, seg_bytes_for(10));
    let seg = segment_path(dir.path(), 0);
    patch_version(&seg, 0, 7);
    let msg = assert_open_refused(
        dir.path(),
        &seg,
        seg_bytes_for(10),
        "a newer version must be refused",
    );
    assert!(msg.contains("version"), "{msg}");

    let mut it = Reader::open(dir.path()).unwrap().iter();
    let msg = it.next().unwrap().unwrap_err().to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains("version"), "{msg}");
    assert!(it.next().is_none());
}

#[test]
fn bad_header_checksum_in_older_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 25, seg_bytes_for(10));
    let seg = segment_path(dir.path(), 10);
    flip_byte(&seg, 17); // first_seq field, CRC no longer matches
    assert_open_refused(
        dir.path(),
        &seg,
        seg_bytes_for(10),
        "a bad header must be refused",
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn reader_open_rejects_what_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("missing");
    let err = Reader::open(&missing).expect_err("missing dir");
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let file = dir.path().join("a-file");
    fs::write(&file, b"not a directory").unwrap();
    let err = Reader::open(&file).expect_err("a file");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("not a directory"), "{err}");

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = Reader::open(&empty).expect_err("an empty dir");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("not a ringwal log"), "{err}");

    // Unrelated files (and names that only look like segments) do not make it a log.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("LOCK"), b"").unwrap();
    fs::write(other.join("42.rwl"), b"x").unwrap();
    fs::write(other.join("notes.txt"), b"x").unwrap();
    let err = Reader::open(&other).expect_err("no segment files");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

#[test]
fn reader_on_segment_that_is_not_ringwal_errs() {
    let dir = tempfile::tempdir().unwrap();
    let seg = segment_path(dir.path(), 0);
    fs::write(&seg, garbage(200, 7)).unwrap();
    let mut it = Reader::open(dir.path()).unwrap().iter();
    let err = it.next().expect("an item").expect_err("bad magic");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains(&seg.display().to_string()),
        "{err}"
    );
    assert!(it.next().is_none());

    let before = snapshot(dir.path());
    let err = Writer::builder(dir.path())
        .start::<Vec<u8>>()
        .expect_err("not a segment");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains(&seg.display().to_string()),
        "{err}"
    );
    let mut after = snapshot(dir.path());
    after.remove("LOCK");
    assert_eq!(after, before);
}

#[test]
fn builder_rejects_invalid_settings() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("log");
    let cases: Vec<(&str, ringwal::Builder)> = vec![
        (
            "Interval(0)",
            Writer::builder(&target).sync(SyncPolicy::Interval(Duration::ZERO)),
        ),
        (
            "Segments(0)",
            Writer::builder(&target).retain(Retain::Segments(0)),
        ),
        (
            "Bytes(0)",
            Writer::builder(&target).retain(Retain::Bytes(0)),
        ),
        (
            "segment_bytes(10)",
            Writer::builder(&target).segment_bytes(10),
        ),
        (
            "segment_bytes(0)",
            Writer::builder(&target).segment_bytes(0),
        ),
        (
            "segment_bytes(63)",
            Writer::builder(&target).segment_bytes((HEADER_LEN + FRAME_HEADER_LEN - 1) as u64),
        ),
    ];
    for (what, builder) in cases {
        let err = builder
            .start::<Vec<u8>>()
            .expect_err(&format!("{what} must be refused"));
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{what}: {err}");
        assert!(
            !target.exists(),
            "{what}: refused settings must not create the dir"
        );
    }
    // The smallest allowed segment size works (one empty record per segment).
    let min = (HEADER_LEN + FRAME_HEADER_LEN) as u64;
    let (writer, emitter) = Writer::builder(&target)
        .segment_bytes(min)
        .start::<Vec<u8>>()
        .unwrap();
    emitter.emit(Vec::new()).unwrap();
    emitter.emit(b"longer than the segment".to_vec()).unwrap();
    drop(emitter);
    let report = writer.shutdown().unwrap();
    assert_conserved(&report);
    assert_eq!(report.persisted, 2);
    let entries = read_all(&target);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].payload, b"longer than the segment");
}

/// A sink of one's own that starts where the sequence numbers would run out is refused at
/// start, as a log on disk that far is (`SegmentLog::open`): the writer used to accept it and
/// its thread then panicked on the overflow (debug; a release build would wrap to 0).
#[test]
fn a_sink_too_close_to_the_end_of_the_sequence_numbers_is_refused() {
    struct At(u64);
    impl Sink for At {
        fn next_seq(&self) -> u64 {
            self.0
        }
        fn append(&mut self, batch: &ringwal::Batch<'_>) -> io::Result<()> {
            self.0 = batch.first_seq() + batch.records();
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    for next in [u64::MAX / 2 + 1, u64::MAX - 1, u64::MAX] {
        let err = Writer::builder("unused-with-a-sink")
            .start_with_sink::<Vec<u8>, _>(At(next))
            .expect_err("a typed writer on a sink at the end of the numbering");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{next}: {err}");
        assert!(err.to_string().contains(&next.to_string()), "{err}");
        let err = Writer::builder("unused-with-a-sink")
            .start_bytes_with_sink(At(next))
            .expect_err("a byte writer on a sink at the end of the numbering");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{next}: {err}");
    }
    // The limit itself is accepted, and records are numbered from it.
    let (writer, emitter) = Writer::builder("unused-with-a-sink")
        .start_with_sink::<Vec<u8>, _>(At(u64::MAX / 2))
        .unwrap();
    emitter.emit(b"a".to_vec()).unwrap();
    emitter.emit(b"b".to_vec()).unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!(
        (report.persisted, report.last_seq),
        (2, Some(u64::MAX / 2 + 1))
    );
}

#[test]
fn builder_on_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"data").unwrap();
    let err = Writer::builder(&file)
        .start::<Vec<u8>>()
        .expect_err("a file is not a log dir");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    assert_eq!(fs::read(&file).unwrap(), b"data");
}

#[test]
fn second_writer_on_same_dir_would_block() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    emitter.emit(fixed_payload(0)).unwrap();
    emitter.flush().unwrap();

    let err = Writer::builder(dir.path())
        .start::<Vec<u8>>()
        .expect_err("the log is locked");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");

    // The first writer is unaffected.
    emitter.emit(fixed_payload(1)).unwrap();
    drop(emitter);
    let report = writer.shutdown().unwrap();
    assert_conserved(&report);
    assert_eq!(report.persisted, 2);

    // Once it is gone the log opens again.
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    assert_eq!(writer.recovery().next_seq, 2);
    emitter.emit(fixed_payload(2)).unwrap();
    drop(emitter);
    assert_conserved(&writer.shutdown().unwrap());
    assert_fixed_log(dir.path(), 0, 3);
}

// ---------------------------------------------------------------------------------------------
// 10. from_seq
// ---------------------------------------------------------------------------------------------

#[test]
fn from_seq_reads_from_that_record_on_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let n = 75;
    write_fixed(dir.path(), 0, n, seg_bytes_for(10));
    let reader = Reader::open(dir.path()).unwrap();
    for from in [0, 1, 9, 10, 11, 19, 20, 37, 69, 70, 74, 75, 76, 1000] {
        let entries: Vec<Entry> = reader
            .from_seq(from)
            .collect::<io::Result<_>>()
            .unwrap_or_else(|e| panic!("from_seq({from}): {e}"));
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (from.min(n)..n).collect::<Vec<_>>(),
            "from_seq({from})"
        );
        for e in &entries {
            assert_eq!(e.payload, fixed_payload(e.seq));
        }
    }
}

#[test]
fn from_seq_before_retained_start_reads_from_oldest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let sb = seg_bytes_for(10);
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .segment_bytes(sb)
        .retain(Retain::Segments(2))
        .start::<Vec<u8>>()
        .unwrap();
    for i in 0..55 {
        emitter.emit(fixed_payload(i)).unwrap();
    }
    drop(emitter);
    assert_conserved(&writer.shutdown().unwrap());
    assert_eq!(segment_firsts(dir.path()), vec![40, 50]);
    let reader = Reader::open(dir.path()).unwrap();
    let seqs: Vec<u64> = reader.from_seq(3).map(|e| e.unwrap().seq).collect();
    assert_eq!(seqs, (40..55).collect::<Vec<_>>());
    let seqs: Vec<u64> = reader.from_seq(47).map(|e| e.unwrap().seq).collect();
    assert_eq!(seqs, (47..55).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------------
// Crafted files must not make the library panic
// ---------------------------------------------------------------------------------------------

#[test]
fn reader_does_not_panic_on_record_with_last_sequence_number() {
    // A segment whose only record has sequence number u64::MAX (a valid file name, header and
    // frame). "Nothing on disk ever makes the library panic."
    let dir = tempfile::tempdir().unwrap();
    let seg = segment_path(dir.path(), u64::MAX);
    let mut bytes = format::encode_header(u64::MAX).to_vec();
    format::encode_frame(&mut bytes, u64::MAX, 0, b"last");
    fs::write(&seg, &bytes).unwrap();
    let scan = format::scan_segment(&bytes).unwrap();
    assert_eq!((scan.records, scan.end), (1, ScanEnd::Clean));

    let path = dir.path().to_path_buf();
    let outcome = std::panic::catch_unwind(move || {
        let reader = Reader::open(&path).unwrap();
        reader.iter().take(10).collect::<Vec<_>>()
    });
    let items = outcome.expect("Reader::iter panicked on a record with seq u64::MAX");
    assert!(!items.is_empty());
    assert_eq!(items[0].as_ref().unwrap().seq, u64::MAX);
}

// ---------------------------------------------------------------------------------------------
// 11. Property tests of the frame format
// ---------------------------------------------------------------------------------------------

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn encode_frames(first_seq: u64, payloads: &[Vec<u8>], dropped: &[u64]) -> Vec<u8> {
    let mut bytes = format::encode_header(first_seq).to_vec();
    for (i, p) in payloads.iter().enumerate() {
        format::encode_frame(&mut bytes, first_seq + i as u64, dropped[i], p);
    }
    bytes
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn frame_round_trips(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        seq in any::<u64>(),
        dropped in any::<u64>(),
        prefix in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut buf = prefix.clone();
        format::encode_frame(&mut buf, seq, dropped, &payload);
        let frame_bytes = &buf[prefix.len()..];
        prop_assert_eq!(frame_bytes.len(), FRAME_HEADER_LEN + payload.len());
        prop_assert_eq!(format::frame_size(frame_bytes), Ok(frame_bytes.len()));
        let (frame, used) = format::decode_frame(frame_bytes).unwrap();
        prop_assert_eq!(used, frame_bytes.len());
        prop_assert_eq!(frame.seq, seq);
        prop_assert_eq!(frame.dropped_before, dropped);
        prop_assert_eq!(frame.payload, &payload[..]);

        // Trailing bytes are not consumed.
        let mut longer = frame_bytes.to_vec();
        longer.extend_from_slice(b"tail");
        let (frame2, used2) = format::decode_frame(&longer).unwrap();
        prop_assert_eq!(used2, frame_bytes.len());
        prop_assert_eq!(frame2, frame);

        // Every strict prefix is incomplete.
        for cut in 0..frame_bytes.len() {
            let r = format::decode_frame(&frame_bytes[..cut]);
            prop_assert!(
                matches!(r, Err(format::FrameError::Incomplete { .. })),
                "prefix {} of {}: {:?}", cut, frame_bytes.len(), r
            );
        }
    }

    #[test]
    fn single_bit_flip_is_detected(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        seq in any::<u64>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let mut buf = Vec::new();
        format::encode_frame(&mut buf, seq, 0, &payload);
        let bit = bit.index(buf.len() * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(format::decode_frame(&buf).is_err(), "flip of bit {} went unnoticed", bit);
    }

    #[test]
    fn scan_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        with_header in any::<bool>(),
        first_seq in any::<u64>(),
    ) {
        let bytes = if with_header {
            let mut b = format::encode_header(first_seq).to_vec();
            b.extend_from_slice(&bytes);
            b
        } else {
            bytes
        };
        if let Ok(scan) = format::scan_segment(&bytes) {
            prop_assert!(scan.valid_len >= HEADER_LEN as u64);
            prop_assert!(scan.valid_len <= bytes.len() as u64);
            match &scan.end {
                ScanEnd::Clean => prop_assert_eq!(scan.valid_len, bytes.len() as u64),
                ScanEnd::Torn { offset, .. } | ScanEnd::Corrupt { offset, .. } => {
                    prop_assert_eq!(*offset, scan.valid_len);
                    prop_assert!(*offset < bytes.len() as u64);
                }
            }
        }
        let _ = format::valid_frame_after(format::Version::V2, &bytes, 0, first_seq);
        let _ = format::valid_frame_after(format::Version::V2, &bytes, bytes.len() + 5, first_seq);
    }

    #[test]
    fn scan_counts_valid_prefix_then_arbitrary_suffix(
        first_seq in 0..u64::MAX / 2,
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..12),
        suffix in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let dropped = vec![0; payloads.len()];
        let mut bytes = encode_frames(first_seq, &payloads, &dropped);
        let prefix_len = bytes.len() as u64;
        bytes.extend_from_slice(&suffix);
        let scan = format::scan_segment(&bytes).unwrap();
        prop_assert_eq!(scan.first_seq, first_seq);
        prop_assert!(scan.records >= payloads.len() as u64);
        prop_assert!(scan.valid_len >= prefix_len);
    }

    #[test]
    fn scan_of_valid_frames_is_exact_and_partial_frame_is_torn(
        first_seq in 0..u64::MAX / 2,
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..12),
        dropped_seed in any::<u64>(),
        next_payload in proptest::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
    ) {
        let dropped: Vec<u64> = (0..payloads.len() as u64)
            .map(|i| (dropped_seed >> (i * 5)) & 7)
            .collect();
        let k = payloads.len() as u64;
        let mut bytes = encode_frames(first_seq, &payloads, &dropped);
        let scan = format::scan_segment(&bytes).unwrap();
        prop_assert_eq!(scan.end, ScanEnd::Clean);
        prop_assert_eq!(scan.records, k);
        prop_assert_eq!(scan.first_seq, first_seq);
        prop_assert_eq!(scan.next_seq(), first_seq + k);
        prop_assert_eq!(scan.valid_len, bytes.len() as u64);
        prop_assert_eq!(scan.dropped, dropped.iter().sum::<u64>());

        // A strict, non-empty prefix of the next frame: a torn tail at the end of the valid ones.
        let valid_len = bytes.len() as u64;
        let mut next = Vec::new();
        format::encode_frame(&mut next, first_seq + k, 0, &next_payload);
        let cut = 1 + cut.index(next.len() - 1);
        bytes.extend_from_slice(&next[..cut]);
        let scan = format::scan_segment(&bytes).unwrap();
        prop_assert_eq!(scan.records, k);
        prop_assert_eq!(scan.valid_len, valid_len);
        prop_assert!(
            matches!(scan.end, ScanEnd::Torn { offset, .. } if offset == valid_len),
            "{:?}", scan.end
        );
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Whatever follows the header of the only segment, the reader and the writer's recovery
    /// neither panic nor disagree: recovery keeps exactly what the reader can read.
    #[test]
    fn reader_and_recovery_agree_on_arbitrary_tails(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
        tail in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let dropped = vec![0; payloads.len()];
        let mut bytes = encode_frames(0, &payloads, &dropped);
        bytes.extend_from_slice(&tail);
        fs::write(segment_path(dir.path(), 0), &bytes).unwrap();
        let expected = format::scan_segment(&bytes).unwrap();

        let items: Vec<_> = Reader::open(dir.path()).unwrap().iter().take(1000).collect();
        let ok = items.iter().take_while(|i| i.is_ok()).count() as u64;
        prop_assert_eq!(ok, expected.records);

        match Writer::builder(dir.path()).start::<Vec<u8>>() {
            Ok((writer, _emitter)) => {
                let corrupt = matches!(expected.end, ScanEnd::Corrupt { .. });
                prop_assert!(!corrupt, "opened despite {:?}", expected.end);
                let rec = writer.recovery().clone();
                prop_assert_eq!(rec.next_seq, expected.records);
                prop_assert_eq!(rec.bytes_cut, bytes.len() as u64 - expected.valid_len);
                let report = writer.shutdown().unwrap();
                prop_assert_eq!(report.emitted, report.persisted + report.dropped);
                prop_assert_eq!(read_all(dir.path()).len() as u64, expected.records);
            }
            Err(e) => {
                let corrupt = matches!(expected.end, ScanEnd::Corrupt { .. });
                prop_assert!(corrupt, "refused {:?}: {}", expected.end, e);
                prop_assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            }
        }
    }
}

#[test]
fn writer_does_not_wrap_sequence_numbers_past_u64_max() {
    // A log whose last record is u64::MAX cannot continue consecutively. Opening it must
    // either be refused, or leave a log that still reads back without error (it must not
    // silently restart at 0 in a file named u64::MAX and then rotate into segment 1, which
    // sorts before it).
    let dir = tempfile::tempdir().unwrap();
    let seg = segment_path(dir.path(), u64::MAX);
    let mut bytes = format::encode_header(u64::MAX).to_vec();
    format::encode_frame(&mut bytes, u64::MAX, 0, b"last");
    fs::write(&seg, &bytes).unwrap();
    match Writer::builder(dir.path())
        .segment_bytes(100)
        .start::<Vec<u8>>()
    {
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing on disk may change");
        }
        Ok((writer, emitter)) => {
            let rec = writer.recovery().clone();
            for p in [b"a", b"b", b"c"] {
                let _ = emitter.emit(p.to_vec());
            }
            drop(emitter);
            let report = writer.shutdown().unwrap();
            assert_conserved(&report);
            let files: Vec<_> = snapshot(dir.path()).into_keys().collect();
            // Read without the (separately tested) overflow in the reader: scan each file.
            let mut expected: Option<u64> = None;
            for s in Reader::open(dir.path()).unwrap().segments().unwrap() {
                let scan = format::scan_segment(&fs::read(&s.path).unwrap()).unwrap();
                assert_eq!(scan.end, ScanEnd::Clean, "{}", s.path.display());
                if let Some(e) = expected {
                    assert_eq!(
                        scan.first_seq, e,
                        "segments do not chain after starting with {rec:?}: {files:?}"
                    );
                }
                expected = Some(scan.next_seq());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile directory entries (issue 11 items 5, 10)
// ---------------------------------------------------------------------------------------------

/// Runs `f` on another thread; a hang (the bug: `open()` of a FIFO blocks forever) fails the
/// test instead of wedging the run.
fn without_hanging<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    deadline::within(what, Duration::from_secs(60), f)
}

fn assert_refused_entry(dir: &Path, entry: &Path, kind: &str) {
    let shown = entry.display().to_string();
    let d = dir.to_path_buf();
    let err = without_hanging("Reader::open", move || Reader::open(&d).unwrap_err());
    let msg = err.to_string();
    assert!(msg.contains(&shown) && msg.contains(kind), "{msg}");
    let d = dir.to_path_buf();
    let err = without_hanging("Writer start", move || {
        Writer::builder(&d)
            .start::<Vec<u8>>()
            .map(|_| ())
            .unwrap_err()
    });
    let msg = err.to_string();
    assert!(msg.contains(&shown) && msg.contains(kind), "{msg}");
}

#[test]
fn a_fifo_named_like_a_segment_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 3, 64 << 20);
    let fifo = segment_path(dir.path(), 3);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo failed");
    assert_refused_entry(dir.path(), &fifo, "a FIFO");
}

#[test]
fn a_symlink_to_dev_zero_as_newest_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 3, 64 << 20);
    let link = segment_path(dir.path(), 3);
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    assert_refused_entry(dir.path(), &link, "a symbolic link");
}

#[test]
fn a_directory_named_like_a_segment_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 3, 64 << 20);
    let sub = segment_path(dir.path(), 3);
    fs::create_dir(&sub).unwrap();
    assert_refused_entry(dir.path(), &sub, "a directory");
}

// ---------------------------------------------------------------------------------------------
// Recovery modes after a power loss (tests/power_loss.rs enumerates the states)
// ---------------------------------------------------------------------------------------------

fn options(durable: bool, mode: RecoveryMode) -> LogOptions {
    LogOptions {
        segment_bytes: seg_bytes_for(10),
        durable,
        recovery: mode,
        ..LogOptions::default()
    }
}

#[test]
fn not_durable_older_segment_lost_tail_is_cut_with_the_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 35, seg_bytes_for(10)); // segments 0, 10, 20, 30
    let seg = segment_path(dir.path(), 10);
    // A power cut under SyncPolicy::Never: the last 4 records of segment 10 never reached the
    // disk (its size did: zeros), the later segments did.
    let cut_at = HEADER_LEN as u64 + 6 * FIXED_FRAME;
    let mut bytes = fs::read(&seg).unwrap();
    bytes[cut_at as usize..].fill(0);
    fs::write(&seg, bytes).unwrap();

    // Strict refuses, naming the file and the offset, and changes nothing.
    let before = snapshot(dir.path());
    let err = SegmentLog::open(dir.path(), options(false, RecoveryMode::Strict)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {cut_at}")), "{msg}");
    assert_eq!(snapshot(dir.path()), before);

    // Point in time cuts the log at the damage: segment 10 there, 20 and 30 removed (nothing
    // after it was synced, so nothing after it was acknowledged).
    let log = SegmentLog::open(dir.path(), options(false, RecoveryMode::PointInTime)).unwrap();
    let rec = log.recovery().clone();
    drop(log);
    assert_eq!(rec.next_seq, 16, "{rec:?}");
    assert_eq!(rec.segments_removed, 2, "{rec:?}");
    assert_eq!(rec.truncated.as_deref(), Some(seg.as_path()), "{rec:?}");
    assert!(
        rec.reason
            .as_deref()
            .unwrap()
            .contains(&format!("offset {cut_at}")),
        "{rec:?}"
    );
    assert_eq!(segment_firsts(dir.path()), vec![0, 10]);
    assert_fixed_log(dir.path(), 0, 16);
    // A second recovery changes nothing; the writer continues at 16.
    let log = SegmentLog::open(dir.path(), options(false, RecoveryMode::PointInTime)).unwrap();
    assert_eq!((log.recovery().bytes_cut, log.next_seq()), (0, 16));
    drop(log);
    write_fixed(dir.path(), 16, 3, seg_bytes_for(10));
    assert_fixed_log(dir.path(), 0, 19);
}

#[test]
fn not_durable_older_segment_ending_short_of_the_next_is_cut_there() {
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 25, seg_bytes_for(10)); // segments 0, 10, 20
    let seg = segment_path(dir.path(), 0);
    // Whole frames lost (the size never grew): segment 0 ends at record 7, 10 starts at 10.
    let file = OpenOptions::new().write(true).open(&seg).unwrap();
    file.set_len(HEADER_LEN as u64 + 7 * FIXED_FRAME).unwrap();
    drop(file);
    let err = SegmentLog::open(dir.path(), options(false, RecoveryMode::Strict)).unwrap_err();
    assert!(err.to_string().contains("next one starts at 10"), "{err}");
    let log = SegmentLog::open(dir.path(), options(false, RecoveryMode::PointInTime)).unwrap();
    assert_eq!(log.next_seq(), 7);
    assert_eq!(log.recovery().segments_removed, 2);
    drop(log);
    assert_fixed_log(dir.path(), 0, 7);
}

#[test]
fn damage_in_a_sealed_segment_of_a_durable_log_is_an_error_in_every_mode() {
    // Durable: a sealed segment was fsynced before the next one was created, so its damage
    // is before the last acknowledged record and no power loss explains it.
    for mode in [RecoveryMode::PointInTime, RecoveryMode::Strict] {
        let dir = tempfile::tempdir().unwrap();
        write_fixed(dir.path(), 0, 25, seg_bytes_for(10)); // segments 0, 10, 20
        let sealed = segment_path(dir.path(), 10);
        let bad_at = HEADER_LEN as u64 + 3 * FIXED_FRAME;
        flip_byte(&sealed, bad_at + FRAME_HEADER_LEN as u64 + 2);
        // The newest segment's creation cut short: recovery removes it, and then reads the
        // sealed one to find the end.
        fs::write(segment_path(dir.path(), 20), b"").unwrap();
        let err = SegmentLog::open(dir.path(), options(true, mode)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&sealed.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("offset {bad_at}")), "{msg}");
        assert!(msg.contains("sealed segment"), "{msg}");
        assert_eq!(fs::metadata(&sealed).unwrap().len(), seg_bytes_for(10));
    }
}

#[test]
fn reordered_tail_of_the_newest_segment_is_cut_by_default() {
    // A power cut that kept a later append but not the one before it: a hole of zeros with
    // valid records after it, at the end of the newest segment.
    let dir = tempfile::tempdir().unwrap();
    write_fixed(dir.path(), 0, 8, 64 << 20);
    let seg = segment_path(dir.path(), 0);
    let hole = HEADER_LEN as u64 + 5 * FIXED_FRAME;
    let mut bytes = fs::read(&seg).unwrap();
    bytes[hole as usize..(hole + FIXED_FRAME) as usize].fill(0);
    fs::write(&seg, bytes).unwrap();
    for durable in [true, false] {
        let err = SegmentLog::open(dir.path(), options(durable, RecoveryMode::Strict)).unwrap_err();
        assert!(err.to_string().contains(&format!("offset {hole}")), "{err}");
    }
    assert_cut_at(dir.path(), &seg, 64 << 20, hole, 5);
}

/// A log written under `SyncPolicy::Never` (not `durable`) and cut by a power loss before its
/// shutdown's sync may have damage in any segment (sealed ones were never fsynced), and a
/// writer started on it next with a syncing policy opens it `durable`. That open must not
/// take the older segments as sealed with an fsync (reading only the newest frame by
/// frame): the log would open, the writer append after a damaged segment, and the `Reader`
/// fail there for ever. It used to.
#[test]
fn durable_open_after_an_unsynced_never_run_recovers_the_older_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let segment_bytes = 256;
    let never = LogOptions {
        durable: false,
        segment_bytes,
        ..LogOptions::default()
    };
    let mut log = SegmentLog::open(dir, never).unwrap();
    for _ in 0..40 {
        let seq = log.next_seq();
        let mut frames = Vec::new();
        format::encode_frame(&mut frames, seq, 0, &fixed_payload(seq));
        log.append(&ringwal::Batch::new(&frames, seq, 1).unwrap())
            .unwrap();
    }
    // The run ends without a sync (killed, then the power cut).
    drop(log);
    let firsts = segment_firsts(dir);
    assert!(firsts.len() >= 3, "{firsts:?}");
    // The power cut lost a write in the middle of the second segment (never fsynced): zeros.
    let second = segment_path(dir, firsts[1]);
    let len = fs::metadata(&second).unwrap().len();
    let mut bytes = fs::read(&second).unwrap();
    for b in &mut bytes[HEADER_LEN + 10..(len as usize).min(HEADER_LEN + 60)] {
        *b = 0;
    }
    fs::write(&second, &bytes).unwrap();

    // A writer with a syncing policy starts on it.
    let durable = LogOptions {
        segment_bytes,
        ..LogOptions::default()
    };
    let mut log = SegmentLog::open(dir, durable).expect("a power loss's state opens");
    let seq = log.next_seq();
    assert!(
        seq <= firsts[2],
        "recovery cut the damaged segment: next {seq}"
    );
    let mut frames = Vec::new();
    format::encode_frame(&mut frames, seq, 0, &fixed_payload(seq));
    log.append(&ringwal::Batch::new(&frames, seq, 1).unwrap())
        .unwrap();
    log.sync().unwrap();
    drop(log);
    let entries: Vec<u64> = Reader::open(dir)
        .unwrap()
        .iter()
        .map(|e| e.map(|e| e.seq).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()
        .expect("the log reads without damage");
    assert_eq!(entries, (0..=seq).collect::<Vec<_>>());
}
