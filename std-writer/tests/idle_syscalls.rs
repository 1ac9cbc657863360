//! Under `Idle::Poll` and `Idle::Spin` an emit makes no syscall, ever; under `Idle::Park` the
//! first emit after a quiet period wakes the writer (a futex wake), which shows the check can
//! see what it looks for. For both kinds of writer: typed (`Emitter::emit`) and byte
//! (`ByteEmitter::emit` and `emit_with`, the strategies named `bytes-*`).
//!
//! How: the test re-runs its own binary under `strace -f` with `RINGWAL_IDLE_SYSCALLS_CHILD`
//! naming the strategy. The child starts a writer with it, lets it go idle, and then, on one
//! thread whose id it prints, makes `EMITS` emits, each between two markers: `getpid` before
//! (`std::process::id`) and `getppid` after (`std::os::unix::process::parent_id`), both real
//! syscalls (glibc caches neither), with a pause after each until the writer sleeps again
//! (`strace::settle`). The parent reads strace's log and counts the syscalls that thread made
//! inside the windows.
//!
//! Without strace: fails under `CI=true`, else prints a loud NOT RUN and passes.

use ringwal::{Idle, Writer};
use std::path::Path;
use std::time::Duration;

#[path = "support/strace.rs"]
mod strace;
use strace::{settle, syscall_of};

const CHILD_ENV: &str = "RINGWAL_IDLE_SYSCALLS_CHILD";
const EMITS: usize = 12;

fn strategy(name: &str) -> Idle {
    match name.strip_prefix("bytes-").unwrap_or(name) {
        "park" => Idle::Park,
        // Far longer than the run: only the explicit wakes (flush, stop) end its sleeps.
        "poll" => Idle::Poll(Duration::from_secs(3600)),
        "poll-short" => Idle::Poll(Duration::from_millis(1)),
        "spin" => Idle::Spin,
        other => panic!("unknown strategy {other}"),
    }
}

/// The child's role: emit inside marked windows on this thread, print its id.
fn child(name: &str) {
    if name.starts_with("bytes-") {
        return byte_child(name);
    }
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .idle(strategy(name))
        .start::<u64>()
        .unwrap();
    // This thread's id, from /proc (a syscall, but outside the windows).
    let me = std::fs::read_link("/proc/thread-self").unwrap();
    let tid = me.file_name().unwrap().to_str().unwrap().to_owned();
    println!("EMITTER_TID={tid}");
    let sleeps = !name.ends_with("spin");
    settle(sleeps);
    for i in 0..EMITS as u64 {
        let a = std::process::id(); // getpid: the window opens
        let r = emitter.emit(i);
        let b = std::os::unix::process::parent_id(); // getppid: it closes
        std::hint::black_box((a, b));
        r.unwrap();
        settle(sleeps);
    }
    emitter.flush().unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, EMITS as u64);
}

/// [`child`] for a byte writer: every other emit writes in place (`emit_with`).
fn byte_child(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .idle(strategy(name))
        .start_bytes()
        .unwrap();
    let me = std::fs::read_link("/proc/thread-self").unwrap();
    let tid = me.file_name().unwrap().to_str().unwrap().to_owned();
    println!("EMITTER_TID={tid}");
    let sleeps = !name.ends_with("spin");
    settle(sleeps);
    for i in 0..EMITS as u64 {
        let a = std::process::id(); // getpid: the window opens
        let r = if i.is_multiple_of(2) {
            emitter.emit(&i.to_le_bytes())
        } else {
            emitter.emit_with(8, |buf| {
                buf.copy_from_slice(&i.to_le_bytes());
                8
            })
        };
        let b = std::os::unix::process::parent_id(); // getppid: it closes
        std::hint::black_box((a, b));
        r.unwrap();
        settle(sleeps);
    }
    emitter.flush().unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, EMITS as u64);
}

/// The calls thread `tid` made inside its marker windows, and how many windows there were.
fn calls_in_windows(log: &str, tid: &str) -> (Vec<String>, usize) {
    let mut inside = false;
    let mut windows = 0;
    let mut calls = Vec::new();
    for line in log.lines() {
        let Some(call) = syscall_of(line, tid) else {
            continue;
        };
        let resumed = line.contains("resumed>");
        match call {
            "getpid" if !resumed => {
                inside = true;
                windows += 1;
            }
            "getppid" => inside = false,
            _ if inside && !resumed => calls.push(line.to_owned()),
            _ => {}
        }
    }
    (calls, windows)
}

/// Runs the child for `name` under strace; returns the emitting thread's calls in its windows.
fn traced(name: &str, out: &Path) -> (Vec<String>, usize) {
    let (log, tid) = strace::trace_child(CHILD_ENV, name, out);
    calls_in_windows(&log, &tid)
}

/// The child's entry point: does nothing unless `CHILD_ENV` is set.
#[test]
fn child_role() {
    if let Ok(name) = std::env::var(CHILD_ENV) {
        child(&name);
    }
}

#[test]
fn emits_make_no_syscall_under_poll_and_spin() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if !strace::available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Non-vacuous: under Park the writer sleeps between emits, and the emits wake it.
    let mut wakes = 0;
    for name in ["park", "bytes-park"] {
        let (park, windows) = traced(name, &tmp.path().join(format!("{name}.log")));
        assert_eq!(windows, EMITS, "{name}: the markers were not all seen");
        let n = park.iter().filter(|l| l.contains("futex(")).count();
        assert!(
            n > 0,
            "{name}: the emits after a pause should wake the writer (futex), saw: {park:#?}"
        );
        wakes += n;
    }
    for name in [
        "poll",
        "poll-short",
        "spin",
        "bytes-poll",
        "bytes-poll-short",
        "bytes-spin",
    ] {
        let (calls, windows) = traced(name, &tmp.path().join(format!("{name}.log")));
        assert_eq!(windows, EMITS, "{name}: the markers were not all seen");
        assert!(
            calls.is_empty(),
            "{name}: the emitting thread made syscalls while emitting: {calls:#?}"
        );
    }
    println!(
        "idle_syscalls: Park emits (typed and byte writers) made {wakes} futex calls in 2 x {EMITS} windows; Poll and Spin none"
    );
}

#[test]
fn the_parser_sees_calls_in_windows_only() {
    let log = "\
7 getpid()                    = 5
7 futex(0x1, FUTEX_WAKE_PRIVATE, 1) = 1
8 futex(0x1, FUTEX_WAIT_PRIVATE, 0, NULL <unfinished ...>
7 getppid()                   = 1
7 clock_nanosleep(CLOCK_REALTIME, 0, {tv_sec=0, tv_nsec=1}, NULL) = 0
7 getpid()                    = 5
7 getppid()                   = 1
8 <... futex resumed>) = 0
";
    let (calls, windows) = calls_in_windows(log, "7");
    assert_eq!(windows, 2);
    assert_eq!(calls.len(), 1);
    assert!(calls[0].contains("FUTEX_WAKE"));
    assert_eq!(calls_in_windows(log, "8").0.len(), 0);
}
