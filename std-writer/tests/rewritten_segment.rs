//! A follower whose segment file is rewritten under it: rebuilt in place by a restarted
//! writer's recovery (same inode), or replaced by another file of the same name (new inode).
//! It reads the new file from where it was in the sequence, never delivers a record twice,
//! delivers a new preamble again, and reports a file whose records differ from the ones it
//! already delivered as an error (it neither stalls nor reports false damage).

use ringwal::{format, Batch, LogOptions, Reader, SegmentLog, SegmentPreamble, Sink};
use std::fs;
use std::path::Path;

/// A version-2 segment (no preamble) holding records `first..first + n` with `payload`.
fn seg(first: u64, n: u64, payload: &[u8]) -> Vec<u8> {
    let mut b = format::encode_header(first).to_vec();
    for s in first..first + n {
        format::encode_frame(&mut b, s, 0, payload);
    }
    b
}

fn records(first: u64, n: u64, payload: &[u8]) -> Vec<u8> {
    let mut frames = Vec::new();
    for s in first..first + n {
        format::encode_frame(&mut frames, s, 0, payload);
    }
    frames
}

fn with_preamble(bytes: &'static [u8]) -> LogOptions {
    LogOptions {
        preamble: Some(SegmentPreamble::new(move |p| p.push(bytes).unwrap())),
        ..LogOptions::default()
    }
}

/// Up to `n` items, as sequence numbers or error messages.
fn next_items(iter: &mut ringwal::Iter, n: usize) -> Vec<Result<u64, String>> {
    iter.by_ref()
        .take(n)
        .map(|e| e.map(|e| e.seq).map_err(|e| e.to_string()))
        .collect()
}

/// A writer restarting with another preamble rebuilds the newest, record-less segment in
/// place (truncated, new header and preamble): a follower that had read the old preamble reads
/// the new one and the records after it, instead of reporting damage at its old offset.
#[test]
fn a_follower_reads_on_when_a_restarted_writer_rebuilds_the_newest_segment() {
    let dir = tempfile::tempdir().unwrap();
    drop(SegmentLog::open(dir.path(), with_preamble(&[b'A'; 100])).unwrap());
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    assert!(iter.next().is_none());
    assert_eq!(iter.take_preamble(), vec![vec![b'A'; 100]]);

    let mut log = SegmentLog::open(dir.path(), with_preamble(b"B")).unwrap();
    let frames = records(0, 10, b"record payload");
    log.append(&Batch::new(&frames, 0, 10).unwrap()).unwrap();
    log.sync().unwrap();

    let more = next_items(&mut iter, 20);
    assert_eq!(more, (0..10).map(Ok).collect::<Vec<_>>());
    assert!(!iter.has_failed());
    // The decoder needs the new preamble for the records after it.
    assert_eq!(iter.take_preamble(), vec![b"B".to_vec()]);
}

/// The same, with the follower looking while the rebuilt segment holds only its new header
/// and preamble: it delivers that preamble, then the records as they come.
#[test]
fn a_follower_reads_a_rebuilt_segment_before_its_first_record() {
    let dir = tempfile::tempdir().unwrap();
    drop(SegmentLog::open(dir.path(), with_preamble(&[b'A'; 100])).unwrap());
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    assert!(iter.next().is_none());
    let mut log = SegmentLog::open(dir.path(), with_preamble(b"B")).unwrap();
    assert!(iter.next().is_none());
    assert!(!iter.has_failed());
    assert_eq!(iter.take_preamble(), vec![b"B".to_vec()]);
    let frames = records(0, 3, b"x");
    log.append(&Batch::new(&frames, 0, 3).unwrap()).unwrap();
    assert_eq!(next_items(&mut iter, 10), vec![Ok(0), Ok(1), Ok(2)]);
    assert!(iter.take_preamble().is_empty());
}

/// A segment deleted and written again under the same name, holding the records delivered
/// and more: the follower goes on with the first record it has not delivered (it used to
/// read the deleted file forever, returning `None`). The same preamble is not delivered twice.
#[test]
fn a_follower_reads_on_when_its_segment_is_replaced_by_a_longer_copy() {
    // The two versions of the segment, as a writer with a preamble writes them.
    let scratch = tempfile::tempdir().unwrap();
    let mut log = SegmentLog::open(scratch.path(), with_preamble(b"P")).unwrap();
    let name = format::segment_file_name(0);
    log.append(&Batch::new(&records(0, 3, b"r"), 0, 3).unwrap())
        .unwrap();
    log.sync().unwrap();
    let three = fs::read(scratch.path().join(&name)).unwrap();
    log.append(&Batch::new(&records(3, 3, b"r"), 3, 3).unwrap())
        .unwrap();
    log.sync().unwrap();
    let six = fs::read(scratch.path().join(&name)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(&name);
    fs::write(&path, &three).unwrap();
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    assert_eq!(next_items(&mut iter, 10), vec![Ok(0), Ok(1), Ok(2)]);
    assert_eq!(iter.take_preamble(), vec![b"P".to_vec()]);

    replace(&path, &six);
    assert_eq!(next_items(&mut iter, 10), vec![Ok(3), Ok(4), Ok(5)]);
    assert!(!iter.has_failed());
    assert!(iter.take_preamble().is_empty(), "the same preamble again");
}

/// A file of the same name whose records differ from the ones delivered is another log: a
/// clear error, not those records delivered again nor a silent stall.
#[test]
fn a_segment_replaced_by_other_records_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format::segment_file_name(0));
    fs::write(&path, seg(0, 3, b"first")).unwrap();
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    assert_eq!(next_items(&mut iter, 10), vec![Ok(0), Ok(1), Ok(2)]);

    replace(&path, &seg(0, 6, b"other"));
    let more = next_items(&mut iter, 10);
    assert_eq!(more.len(), 1, "{more:?}");
    let err = more[0].as_ref().unwrap_err();
    assert!(
        err.contains("rewritten") && err.contains("record 2"),
        "{err}"
    );
    assert!(iter.has_failed());
}

/// Fewer records than delivered: the follower waits (a copy in progress, or a writer about to
/// append) and goes on once the file holds the records after those it delivered.
#[test]
fn a_segment_replaced_by_a_shorter_copy_is_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format::segment_file_name(0));
    fs::write(&path, seg(0, 3, b"r")).unwrap();
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    assert_eq!(next_items(&mut iter, 10).len(), 3);

    replace(&path, &seg(0, 1, b"r"));
    assert!(iter.next().is_none());
    assert!(!iter.has_failed());
    // Cut in place to less than a header, then written out in full.
    fs::write(&path, &seg(0, 1, b"r")[..10]).unwrap();
    assert!(iter.next().is_none());
    assert!(!iter.has_failed());
    fs::write(&path, seg(0, 5, b"r")).unwrap();
    assert_eq!(next_items(&mut iter, 10), vec![Ok(3), Ok(4)]);
}

/// `ringwal tail -f` across a writer's restart: a live `Follow` waiting on a log whose last
/// run wrote no record gets the next run's preamble and records (it used to end on an error).
#[test]
fn a_live_follow_goes_on_across_a_writer_restart_that_rebuilds_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    drop(SegmentLog::open(dir.path(), with_preamble(&[b'A'; 100])).unwrap());
    let mut follow = Reader::open(dir.path())
        .unwrap()
        .follow()
        .poll_interval(std::time::Duration::from_millis(5));
    let path = dir.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut log = SegmentLog::open(&path, with_preamble(b"B")).unwrap();
        for seq in 0..3 {
            log.append(&Batch::new(&records(seq, 1, b"live"), seq, 1).unwrap())
                .unwrap();
        }
        log.sync().unwrap();
    });
    // On a thread, so that a follower that stalls fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < 3 {
            let entry = follow.next_blocking().expect("goes on").unwrap();
            if entry.seq == 0 {
                // The new preamble comes before the first record it describes.
                assert_eq!(follow.take_preamble().last(), Some(&b"B".to_vec()));
            }
            got.push(entry.seq);
        }
        let _ = tx.send((got, follow.as_iter().has_failed()));
    });
    writer.join().unwrap();
    let (got, failed) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the follower stalled (or panicked)");
    assert_eq!(got, [0, 1, 2]);
    assert!(!failed);
}

/// Losses recorded by gap markers are counted once, though a replaced segment's markers are
/// read again.
#[test]
fn gap_markers_of_a_replaced_segment_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format::segment_file_name(0));
    // A run that lost 5 events and wrote no record.
    let mut old = seg(0, 0, b"");
    old.extend_from_slice(&format::encode_marker(0, 5, 0));
    fs::write(&path, &old).unwrap();
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    assert!(iter.next().is_none());
    assert_eq!(iter.trailing_gap().dropped, 5);

    let mut new = old.clone();
    format::encode_frame(&mut new, 0, 0, b"r");
    replace(&path, &new);
    let entry = iter.next().unwrap().unwrap();
    assert_eq!((entry.seq, entry.dropped_before), (0, 5));
    assert!(iter.next().is_none());
}

/// Deleted and created again (a new inode), as `rm` and a copy do.
fn replace(path: &Path, bytes: &[u8]) {
    fs::remove_file(path).unwrap();
    fs::write(path, bytes).unwrap();
}
