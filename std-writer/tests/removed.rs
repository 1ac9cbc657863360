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

/// The log's directory moved away (a link count still above 0) and a new log opened at its
/// path: the old log notices at its next sync, and neither its retention nor its rollback
/// touches the new log's files, which have the same names.
#[test]
fn a_moved_or_replaced_directory_is_noticed_and_the_new_one_left_alone() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("log");
    let options = LogOptions {
        segment_bytes: 256,
        retain: ringwal::Retain::Segments(2),
        ..LogOptions::default()
    };
    let mut old = SegmentLog::open(&dir, options.clone()).unwrap();
    for _ in 0..6 {
        append(&mut old, 4, &[1; 40]).unwrap();
        old.sync().unwrap();
    }
    fs::rename(&dir, parent.path().join("log.old")).unwrap();
    let mut new = SegmentLog::open(&dir, options).unwrap();
    for _ in 0..6 {
        append(&mut new, 4, &[2; 40]).unwrap();
        new.sync().unwrap();
    }
    let snapshot = |d: &std::path::Path| {
        let mut files: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.clone(), fs::read(p).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&dir);
    assert!(
        before.len() >= 3,
        "the new log has segments: {}",
        before.len()
    );

    // An append that rotates, or retention after it, would act on paths in the new log.
    let result = append(&mut old, 40, &[1; 40]);
    let sync = old.sync();
    assert!(
        result.is_err() || sync.is_err(),
        "the old log noticed nothing"
    );
    let err = result.err().or(sync.err()).unwrap();
    assert!(
        err.to_string()
            .contains("log directory was moved or replaced"),
        "{err}"
    );
    assert_removed_err(old.sync(), "sync after", "moved or replaced");
    assert_removed_err(
        old.discard_unsynced(),
        "rollback after",
        "moved or replaced",
    );
    assert_eq!(snapshot(&dir), before, "the new log's files were touched");
    append(&mut new, 1, b"still fine").unwrap();
    new.sync().unwrap();
}
