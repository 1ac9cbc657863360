//! The log's exclusive lock survives the deletion of `dir/LOCK`: a second writer is refused,
//! in the same process and from another one (issue 11 item 8).
//!
//! The cross-process test re-executes this test binary as a child (see
//! [`lock_child_process_entry`]) that holds the log until its stdin closes.

#![cfg(unix)]

use ringwal::{LogOptions, SegmentLog, Sink, Writer};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

/// Set (to the log directory) in the child process only.
const CHILD_ENV: &str = "RINGWAL_LOCK_CHILD";
/// The name of the child's entry point, as the test harness knows it.
const CHILD_TEST: &str = "lock_child_process_entry";
/// What the child prints once it holds the log (the harness may print its own text before it
/// on the same line: "test lock_child_process_entry ... ").
const CHILD_LOCKED: &str = "RINGWAL-CHILD-HOLDS-THE-LOG";

/// Held while spawning the child, and by the tests that expect a lock to be free. Between
/// `fork` and `exec` a child holds a copy of every descriptor of this process, and with it
/// any `flock` on them: a lock a test just dropped would still be held for that moment.
static FORK: Mutex<()> = Mutex::new(());

fn no_fork() -> MutexGuard<'static, ()> {
    FORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asserts `result` is the "another writer has this log open" refusal.
fn assert_refused<T>(result: io::Result<T>, what: &str) {
    let err = match result {
        Ok(_) => panic!("{what}: a second writer got the log"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{what}: {err}");
    assert!(
        err.to_string().contains("another writer has this log open"),
        "{what}: {err}"
    );
}

#[test]
fn deleted_lock_file_still_excludes_a_second_writer_in_the_process() {
    let _no_fork = no_fork();
    let dir = tempfile::tempdir().unwrap();
    let mut log = SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
    fs::remove_file(dir.path().join("LOCK")).unwrap();

    assert_refused(
        SegmentLog::open(dir.path(), LogOptions::default()),
        "SegmentLog::open",
    );
    assert_refused(
        Writer::builder(dir.path()).start::<Vec<u8>>(),
        "Writer::builder(..).start",
    );
    // From another thread too.
    let path = dir.path().to_path_buf();
    let other = std::thread::spawn(move || {
        SegmentLog::open(&path, LogOptions::default())
            .map(drop)
            .map_err(|e| (e.kind(), e.to_string()))
    })
    .join()
    .unwrap();
    let (kind, msg) = other.expect_err("a second writer on another thread got the log");
    assert_eq!(kind, io::ErrorKind::WouldBlock, "{msg}");

    // The holder is unaffected, and once it is gone the log opens again.
    log.sync().unwrap();
    drop(log);
    let log = SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
    assert!(dir.path().join("LOCK").exists(), "LOCK is created again");
    drop(log);
}

#[test]
fn a_lock_file_held_by_an_older_writer_still_excludes() {
    let _no_fork = no_fork();
    // Writers of older versions lock only `dir/LOCK`.
    let dir = tempfile::tempdir().unwrap();
    let lock = File::create(dir.path().join("LOCK")).unwrap();
    lock.try_lock().unwrap();
    assert_refused(
        SegmentLog::open(dir.path(), LogOptions::default()),
        "SegmentLog::open",
    );
    drop(lock);
    SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
}

/// Not a test: the entry point of the child process that
/// `deleted_lock_file_still_excludes_a_second_writer_across_processes` spawns. In a normal
/// test run the variable is unset and this returns at once.
#[test]
fn lock_child_process_entry() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let log = SegmentLog::open(Path::new(&dir), LogOptions::default()).expect("child: open");
    println!("{CHILD_LOCKED}");
    // Hold the log until the parent closes our stdin.
    let mut rest = Vec::new();
    let _ = io::stdin().read_to_end(&mut rest);
    drop(log);
}

/// Kills the child if the parent panics (so no writer outlives the test).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn deleted_lock_file_still_excludes_a_second_writer_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().expect("current_exe");
    let spawning = no_fork();
    let mut child = KillOnDrop(
        Command::new(exe)
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env_remove("RUST_TEST_THREADS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child"),
    );
    drop(spawning);
    // Wait until the child holds the log.
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the child exited before it locked the log")
            .unwrap();
        if line.contains(CHILD_LOCKED) {
            break;
        }
    }

    fs::remove_file(dir.path().join("LOCK")).unwrap();
    assert_refused(
        SegmentLog::open(dir.path(), LogOptions::default()),
        "SegmentLog::open",
    );
    assert_refused(
        Writer::builder(dir.path()).start::<Vec<u8>>(),
        "Writer::builder(..).start",
    );

    // Closing its stdin ends the child; then the log is free.
    drop(child.0.stdin.take());
    for _ in lines {}
    let status = child.0.wait().unwrap();
    assert!(status.success(), "child: {status}");
    let log = SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
    assert_eq!(log.next_seq(), 0);
}
