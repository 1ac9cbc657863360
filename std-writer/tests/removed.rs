//! A log directory (or its active segment) removed under a running writer is noticed and
//! reported, never taken for persisted records (issue 11 item 9).

#![cfg(unix)]

use ringwal::{format, Batch, LogOptions, SegmentLog, Sink, SyncPolicy, Writer};
use std::fs;
use std::io;
use std::time::Duration;

/// Appends `count` records of `payload` at the log's position.
fn append(log: &mut SegmentLog, count: u64, payload: &[u8]) -> io::Result<()> {
    let first = log.next_seq();
    let mut frames = Vec::new();
    for seq in first..first + count {
        format::encode_frame(&mut frames, seq, 0, payload);
    }
    log.append(&Batch::new(&frames, first, count).unwrap())
}

fn assert_removed_err(result: io::Result<()>, what: &str, message: &str) {
    let err = result.expect_err(what);
    assert!(err.to_string().contains(message), "{what}: {err}");
}

#[test]
fn a_removed_directory_fails_the_next_sync_and_every_append_after() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    let mut log = SegmentLog::open(&dir, LogOptions::default()).unwrap();
    append(&mut log, 3, b"kept").unwrap();
    log.sync().unwrap();

    fs::remove_dir_all(&dir).unwrap();
    // Writes into the removed files still succeed: the sync is where it shows.
    append(&mut log, 2, b"lost").unwrap();
    assert_removed_err(
        log.sync(),
        "sync after removal",
        "log directory was removed",
    );
    assert_eq!(
        log.next_seq(),
        3,
        "the unsynced records went with the directory"
    );
    assert_removed_err(
        append(&mut log, 1, b"more"),
        "append after removal",
        "log directory was removed",
    );
    assert_removed_err(log.sync(), "second sync", "log directory was removed");
    assert!(!dir.exists(), "nothing recreated the directory");
}

#[test]
fn a_removed_directory_fails_the_next_rotation() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    let options = LogOptions {
        segment_bytes: 256,
        ..LogOptions::default()
    };
    let mut log = SegmentLog::open(&dir, options).unwrap();
    append(&mut log, 1, b"kept").unwrap();
    log.sync().unwrap();

    fs::remove_dir_all(&dir).unwrap();
    // A directory of the same name made since: the log must not start a segment in it.
    fs::create_dir(&dir).unwrap();
    assert_removed_err(
        append(&mut log, 20, &[7; 40]),
        "an append that rotates",
        "log directory was removed",
    );
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written into the new directory"
    );
}

#[test]
fn a_removed_active_segment_fails_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
    append(&mut log, 2, b"kept").unwrap();
    log.sync().unwrap();
    let segment = dir.path().join(format::segment_file_name(0));
    fs::remove_file(&segment).unwrap();
    append(&mut log, 1, b"lost").unwrap();
    assert_removed_err(log.sync(), "sync", "active segment was removed");
}

#[test]
fn a_writer_reports_its_directory_removed() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    let (writer, emitter) = Writer::builder(&dir)
        .sync(SyncPolicy::EveryBatch)
        // The sink never recovers: shutdown gives up after this.
        .shutdown_timeout(Duration::from_millis(300))
        .start::<Vec<u8>>()
        .unwrap();
    for i in 0..10u8 {
        emitter.emit(vec![i; 16]).unwrap();
    }
    emitter.flush().unwrap();
    assert!(emitter.stats().healthy);

    fs::remove_dir_all(&dir).unwrap();
    let mut accepted = 0;
    for i in 0..10u8 {
        if emitter.emit(vec![100 + i; 16]).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted > 0, "the first emit after the removal is accepted");
    match emitter.flush() {
        Err(ringwal::FlushError::Io(e)) => {
            assert!(e.to_string().contains("log directory was removed"), "{e}")
        }
        other => panic!("flush after the directory was removed: {other:?}"),
    }
    assert!(!emitter.stats().healthy, "{:?}", emitter.stats());
    drop(emitter);

    let err = writer
        .shutdown()
        .expect_err("shutdown cannot persist into a removed directory");
    assert!(
        err.error.to_string().contains("log directory was removed"),
        "{}",
        err.error
    );
    let stats = &err.report.stats;
    assert_eq!(
        stats.persisted, 10,
        "only the records before the removal: {stats:?}"
    );
    assert_eq!(err.unwritten.len(), accepted, "{stats:?}");
    assert!(err.unwritten.iter().all(|e| e.seq >= 10));
    assert_eq!(
        stats.emitted,
        stats.persisted + stats.dropped + err.unwritten.len() as u64
    );
}
