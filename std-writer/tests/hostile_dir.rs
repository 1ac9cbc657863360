//! A log directory holding things that are not what their names say: a FIFO or a symbolic
//! link named as a shipper checkpoint, `LOG-ID` or `LOCK` (opening a FIFO blocks until the
//! other end opens; a link to `/dev/zero` reads until memory runs out), segments whose
//! headers a point-in-time recovery would have deleted unread, and sizes near `u64::MAX`.
//! Every operation here must end (each runs on a thread with a deadline) and refuse clearly.
#![cfg(unix)]

#[path = "support/deadline.rs"]
mod deadline;

use ringwal::checkpoint::{checkpoints, Checkpoint, LogId, LOG_ID_FILE};
use ringwal::{format, Batch, LogOptions, RecoveryMode, Retain, SegmentLog, Sink};
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `f`'s result, or a panic naming `what` if it does not return within 10 s.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    deadline::within(what, Duration::from_secs(10), f)
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo runs")
        .success();
    assert!(ok, "mkfifo {}", p.display());
}

/// A segment starting at `first` with `n` records.
fn seg(first: u64, n: u64) -> Vec<u8> {
    let mut b = format::encode_header(first).to_vec();
    for s in first..first + n {
        format::encode_frame(&mut b, s, 0, b"payload");
    }
    b
}

fn seg_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format::segment_file_name(first))
}

/// Every file in `dir` with its bytes, sorted by name (symlinks and FIFOs as their kind).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let kind = e.file_type().unwrap();
            let bytes = if kind.is_file() {
                fs::read(e.path()).unwrap()
            } else {
                format!("{kind:?}").into_bytes()
            };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

/// Appends one 60-byte record and syncs.
fn append_one(log: &mut SegmentLog) {
    let next = log.next_seq();
    let mut f = Vec::new();
    format::encode_frame(&mut f, next, 0, &[7u8; 60]);
    log.append(&Batch::new(&f, next, 1).unwrap()).unwrap();
    log.sync().unwrap();
}

fn assert_not_regular(e: &io::Error, names: &str) {
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    let text = e.to_string();
    assert!(text.contains("not a regular file"), "{text}");
    assert!(text.contains(names), "{text}");
}

/// A FIFO named as a checkpoint: retention's floor lookup used to block in `open`, hanging
/// the writer's append. Now the checkpoint is unreadable, and an unreadable checkpoint keeps
/// everything (as a damaged one does).
#[test]
fn a_fifo_checkpoint_keeps_everything_and_does_not_hang_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("ship-x.checkpoint"));
    let p = dir.path().to_path_buf();
    let segments = within("appends under retention", move || {
        let opts = LogOptions {
            segment_bytes: 128,
            retain: Retain::Segments(1),
            ..LogOptions::default()
        };
        let mut log = SegmentLog::open(&p, opts).unwrap();
        for _ in 0..10 {
            append_one(&mut log);
        }
        log.segments()
    });
    assert_eq!(segments, 10, "an unreadable checkpoint keeps every segment");
    let p = dir.path().to_path_buf();
    let list = within("checkpoints()", move || checkpoints(&p).unwrap());
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].0, "x");
    assert_not_regular(list[0].1.as_ref().unwrap_err(), "ship-x.checkpoint");
}

/// A symbolic link named as a checkpoint is not followed, even to a valid checkpoint: it
/// is refused like a FIFO (a link to `/dev/zero` would otherwise read without end).
#[test]
fn a_symlinked_checkpoint_is_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let log = LogId::get_or_create(dir.path()).unwrap();
    let checkpoint = Checkpoint {
        log,
        next_seq: 5,
        position: None,
        gap_shipped: Default::default(),
        destination: String::new(),
    };
    checkpoint.store(elsewhere.path(), "x").unwrap();
    symlink(
        Checkpoint::path(elsewhere.path(), "x").unwrap(),
        Checkpoint::path(dir.path(), "x").unwrap(),
    )
    .unwrap();
    symlink("/dev/zero", Checkpoint::path(dir.path(), "zero").unwrap()).unwrap();
    let p = dir.path().to_path_buf();
    let list = within("checkpoints()", move || checkpoints(&p).unwrap());
    assert_eq!(list.len(), 2);
    for (name, loaded) in &list {
        assert_not_regular(
            loaded.as_ref().unwrap_err(),
            &format!("ship-{name}.checkpoint"),
        );
    }
}

/// A checkpoint is a few hundred bytes; a huge (here sparse) one is refused without being
/// read into memory.
#[test]
fn an_oversized_checkpoint_or_log_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for path in [
        Checkpoint::path(dir.path(), "big").unwrap(),
        dir.path().join(LOG_ID_FILE),
    ] {
        let f = fs::File::create(&path).unwrap();
        f.set_len(1 << 30).unwrap();
    }
    let e = Checkpoint::load(dir.path(), "big").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("larger than"), "{e}");
    let e = LogId::read(dir.path()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("larger than"), "{e}");
}

/// A FIFO named `LOG-ID` used to block `LogId::read` (and so `ringwal info`); a link to
/// `/dev/zero` read until memory ran out.
#[test]
fn a_fifo_or_symlinked_log_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join(LOG_ID_FILE));
    let p = dir.path().to_path_buf();
    let e = within("LogId::read on a FIFO", move || LogId::read(&p)).unwrap_err();
    assert_not_regular(&e, LOG_ID_FILE);
    let p = dir.path().to_path_buf();
    let e = within("LogId::get_or_create on a FIFO", move || {
        LogId::get_or_create(&p)
    })
    .unwrap_err();
    assert_not_regular(&e, LOG_ID_FILE);

    let dir = tempfile::tempdir().unwrap();
    symlink("/dev/zero", dir.path().join(LOG_ID_FILE)).unwrap();
    let p = dir.path().to_path_buf();
    let e = within("LogId::read on a link to /dev/zero", move || {
        LogId::read(&p)
    })
    .unwrap_err();
    assert_not_regular(&e, LOG_ID_FILE);
}

/// A FIFO named `LOCK` used to block `SegmentLog::open` in its write-only open; a symbolic
/// link is not followed either. Both are refused, naming the file, and nothing is written.
#[test]
fn a_fifo_or_symlinked_lock_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(seg_path(dir.path(), 0), seg(0, 3)).unwrap();
    mkfifo(&dir.path().join("LOCK"));
    let p = dir.path().to_path_buf();
    let e = within("open with a FIFO LOCK", move || {
        SegmentLog::open(&p, LogOptions::default()).map(|_| ())
    })
    .unwrap_err();
    assert_not_regular(&e, "LOCK");

    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("target");
    symlink(&target, dir.path().join("LOCK")).unwrap();
    let p = dir.path().to_path_buf();
    let e = within("open with a symlinked LOCK", move || {
        SegmentLog::open(&p, LogOptions::default()).map(|_| ())
    })
    .unwrap_err();
    assert_not_regular(&e, "LOCK");
    assert!(
        !target.exists(),
        "the link was followed and its target created"
    );
}

/// Segment 0 with records 0..3 and a torn tail, then segment 3 with 5 records.
fn torn_then(dir: &Path, later: Vec<u8>) {
    let mut s0 = seg(0, 3);
    s0.extend_from_slice(&[0xAB; 10]);
    fs::write(seg_path(dir, 0), &s0).unwrap();
    fs::write(seg_path(dir, 3), later).unwrap();
}

/// Not durable, a point-in-time cut in segment 0 used to delete segment 3 unread, though its
/// header is from a newer format (or not a segment's): the docs promise an `InvalidData`
/// error in every mode, with nothing changed.
#[test]
fn a_non_durable_point_in_time_cut_refuses_a_later_bad_header_and_changes_nothing() {
    let mut newer = seg(3, 5);
    newer[8..12].copy_from_slice(&9u32.to_le_bytes());
    let crc = format::crc32c(&newer[..28]);
    newer[28..32].copy_from_slice(&crc.to_le_bytes());
    let mut bad_magic = seg(3, 5);
    bad_magic[0] = b'X';
    for (later, says) in [(newer, "version 9"), (bad_magic, "bad magic")] {
        let dir = tempfile::tempdir().unwrap();
        torn_then(dir.path(), later);
        let before = snapshot(dir.path());
        let opts = LogOptions {
            durable: false,
            recovery: RecoveryMode::PointInTime,
            ..LogOptions::default()
        };
        let e = SegmentLog::open(dir.path(), opts)
            .map(|l| l.recovery().clone())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains(says), "{e}");
        assert!(e.to_string().contains(&format::segment_file_name(3)), "{e}");
        // LOCK is made by every open, before recovery; nothing else may change.
        let after: Vec<_> = snapshot(dir.path())
            .into_iter()
            .filter(|(n, _)| n != "LOCK")
            .collect();
        assert_eq!(after, before, "the failed open changed the directory");
    }
}

/// Durable, a cut-short newest segment used to be removed before an older segment's bad
/// header refused the open: a failed open changed the directory.
#[test]
fn a_failed_durable_open_does_not_remove_a_cut_short_newest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut s0 = seg(0, 3);
    s0[0] = b'X';
    fs::write(seg_path(dir.path(), 0), &s0).unwrap();
    fs::write(seg_path(dir.path(), 3), b"0123456789").unwrap();
    let before = snapshot(dir.path());
    let e = SegmentLog::open(dir.path(), LogOptions::default())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("bad magic"), "{e}");
    let after: Vec<_> = snapshot(dir.path())
        .into_iter()
        .filter(|(n, _)| n != "LOCK")
        .collect();
    assert_eq!(after, before, "the failed open changed the directory");
}

/// A segment of one record `first`, extended with a hole to 2^63 - 1 bytes (tmpfs only).
fn huge_sparse_segment(dir: &Path, first: u64) {
    let p = seg_path(dir, first);
    fs::write(&p, seg(first, 1)).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(i64::MAX as u64)
        .expect("a sparse 2^63 - 1 byte file on tmpfs");
}

/// Sparse files of 2^63 - 1 bytes (tmpfs allows them; ext4 stops at 16 TiB, so this runs
/// in `/dev/shm`, and fails, not skips, without it): a point-in-time cut summing the bytes
/// of the segments it removes used to overflow (a panic in debug, a wrapped count in
/// release).
#[cfg(target_os = "linux")]
#[test]
fn a_point_in_time_cut_over_huge_sparse_segments_saturates_its_byte_count() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("tmpfs at /dev/shm");
    let mut s0 = seg(0, 3);
    s0.extend_from_slice(&[0xAB; 10]);
    fs::write(seg_path(dir.path(), 0), &s0).unwrap();
    for first in [3u64, 4] {
        huge_sparse_segment(dir.path(), first);
    }
    let opts = LogOptions {
        durable: false,
        ..LogOptions::default()
    };
    let rec = SegmentLog::open(dir.path(), opts)
        .unwrap()
        .recovery()
        .clone();
    assert_eq!(rec.bytes_cut, u64::MAX, "{rec:?}");
    assert_eq!(rec.segments_removed, 2, "{rec:?}");
}

/// The same sizes as sealed segments under `Retain::Bytes`: the total used to overflow
/// (a panic in debug; in release it wrapped to a small number and nothing was deleted).
#[cfg(target_os = "linux")]
#[test]
fn retain_bytes_over_huge_sparse_segments_still_deletes() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("tmpfs at /dev/shm");
    for first in [0u64, 1] {
        huge_sparse_segment(dir.path(), first);
    }
    fs::write(seg_path(dir.path(), 2), seg(2, 1)).unwrap();
    let opts = LogOptions {
        retain: Retain::Bytes(1 << 20),
        ..LogOptions::default()
    };
    let mut log = SegmentLog::open(dir.path(), opts).unwrap();
    append_one(&mut log);
    assert_eq!(log.segments(), 1, "retention saw a wrapped (small) total");
}
