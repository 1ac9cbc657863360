//! Under `Idle::Poll` an event through the `Layer` makes no syscall (nor does a span's open,
//! enter, exit and close, nor a `Logger` record); under `Idle::Park` the first event after a
//! quiet period wakes the writer (a futex wake), which shows the check sees what it looks for.
//!
//! How (as `std-writer/tests/idle_syscalls.rs`): the test re-runs its own binary under
//! `strace -f` with `CHILD_ENV` naming the strategy; the child, on one thread whose id it
//! prints, records each event between two markers (`getpid` before, `getppid` after), with a
//! pause after each until the writer sleeps again (`strace::settle`); the parent counts that
//! thread's syscalls inside the windows. Without strace: fails under `CI=true`, else prints
//! NOT RUN and passes.

use std::path::Path;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;

#[path = "../../std-writer/tests/support/strace.rs"]
mod strace;
use strace::{settle, syscall_of};

const CHILD_ENV: &str = "RINGWAL_TRACING_IDLE_SYSCALLS_CHILD";
const EVENTS: usize = 12;

fn window(f: impl FnOnce()) {
    let a = std::process::id(); // getpid: the window opens
    f();
    let b = std::os::unix::process::parent_id(); // getppid: it closes
    std::hint::black_box((a, b));
}

fn child(name: &str) {
    let idle = match name {
        "park" => ringwal::Idle::Park,
        "poll" => ringwal::Idle::Poll(Duration::from_secs(3600)),
        other => panic!("unknown strategy {other}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = ringwal_tracing::Builder::new(dir.path())
        .writer(|w| w.idle(idle))
        .build()
        .unwrap();
    let logger = guard.logger(log::LevelFilter::Info);
    let log_one = |i: usize| {
        log::Log::log(
            &logger,
            &log::Record::builder()
                .level(log::Level::Info)
                .args(format_args!("log {i}"))
                .build(),
        )
    };
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // Warm-up outside the windows: callsites seen, the thread's number given.
        let each = |i: usize| {
            let span = tracing::info_span!("req", i);
            let _e = span.enter();
            tracing::info!(user = 42u64, order = %i, "order filled");
        };
        each(0);
        log_one(0);
        let me = std::fs::read_link("/proc/thread-self").unwrap();
        let tid = me.file_name().unwrap().to_str().unwrap().to_owned();
        println!("EMITTER_TID={tid}");
        settle(true);
        for i in 0..EVENTS {
            if i % 2 == 0 {
                window(|| each(i));
            } else {
                window(|| log_one(i));
            }
            settle(true);
        }
    });
    let report = guard.shutdown().unwrap();
    assert_eq!(report.rejected, 0);
}

/// The calls thread `tid` made inside its marker windows, and how many windows there were,
/// counted from its read of `/proc/thread-self` on (the setup before it calls `getpid` too:
/// the layer's session record holds the process id).
fn calls_in_windows(log: &str, tid: &str) -> (Vec<String>, usize) {
    let (mut inside, mut windows, mut calls) = (false, 0, Vec::new());
    let mut started = false;
    for line in log.lines() {
        let Some(call) = syscall_of(line, tid) else {
            continue;
        };
        if !started {
            started = call.starts_with("readlink") && line.contains("/proc/thread-self");
            continue;
        }
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
fn events_make_no_syscall_under_poll() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if !strace::available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (park, windows) = traced("park", &tmp.path().join("park.log"));
    assert_eq!(windows, EVENTS, "park: the markers were not all seen");
    assert!(
        park.iter().any(|l| l.contains("futex(")),
        "park: events after a pause should wake the writer (futex), saw: {park:#?}"
    );
    let (poll, windows) = traced("poll", &tmp.path().join("poll.log"));
    assert_eq!(windows, EVENTS, "poll: the markers were not all seen");
    assert!(
        poll.is_empty(),
        "poll: the emitting thread made syscalls: {poll:#?}"
    );
}
