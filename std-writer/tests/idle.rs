//! `Builder::idle`: every strategy delivers everything; under a long `Idle::Poll` a flush, a
//! shutdown and a `Block` emitter are still served (the writer is unparked for them, not left to
//! its timer); bad settings are refused before the directory is touched.
//!
//! No timed assertions: "promptly" is checked as "at all, under a watchdog far shorter than the
//! poll interval" (an hour here), so a writer that only served them on its timer would trip it.

#[path = "support/deadline.rs"]
mod deadline;

use ringwal::{Idle, Overflow, Reader, Writer};
use std::thread;
use std::time::Duration;

/// Far longer than any test may take: a writer left to this timer would hang the test.
const LONG: Duration = Duration::from_secs(60 * 60);
/// The watchdog: an operation that should be prompt must finish within this.
const WATCHDOG: Duration = Duration::from_secs(60);

fn strategies() -> [Idle; 4] {
    [
        Idle::Park,
        Idle::Poll(Duration::from_millis(1)),
        Idle::Poll(LONG),
        Idle::Spin,
    ]
}

/// Runs `f` on a thread and returns its result, panicking if it takes longer than the watchdog.
fn within_watchdog<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    deadline::within(&format!("{what} (the writer was not woken)"), WATCHDOG, f)
}

#[test]
fn every_strategy_delivers_everything() {
    for idle in strategies() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .idle(idle)
            .start::<u64>()
            .unwrap();
        let threads: Vec<_> = (0..3u64)
            .map(|t| {
                let e = emitter.clone();
                thread::spawn(move || {
                    for i in 0..500u64 {
                        let mut v = t * 1000 + i;
                        // Reject: retry until accepted, so everything is delivered.
                        loop {
                            match e.emit(v) {
                                Ok(()) => break,
                                Err(err) => {
                                    v = err.into_inner();
                                    thread::yield_now();
                                }
                            }
                        }
                        if i % 100 == 0 {
                            thread::sleep(Duration::from_millis(2));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let report = within_watchdog("shutdown", move || writer.shutdown().unwrap());
        assert_eq!(report.emitted, 1500, "{idle:?}");
        assert_eq!(report.persisted, 1500, "{idle:?}");
        let mut got: Vec<u64> = Reader::open(dir.path())
            .unwrap()
            .iter()
            .map(|e| u64::from_le_bytes(e.unwrap().payload.try_into().unwrap()))
            .collect();
        got.sort_unstable();
        let mut want: Vec<u64> = (0..3u64)
            .flat_map(|t| (0..500u64).map(move |i| t * 1000 + i))
            .collect();
        want.sort_unstable();
        assert_eq!(got, want, "{idle:?}");
    }
}

#[test]
fn flush_is_served_under_a_long_poll() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .idle(Idle::Poll(LONG))
        .start::<&'static str>()
        .unwrap();
    // Let the writer go to its (hour-long) sleep first.
    thread::sleep(Duration::from_millis(50));
    for round in 0..3 {
        emitter.emit("x").unwrap();
        let e = emitter.clone();
        within_watchdog("flush", move || e.flush().unwrap());
        assert_eq!(emitter.stats().persisted, round + 1);
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(Reader::open(dir.path()).unwrap().iter().count(), 3);
    within_watchdog("shutdown", move || writer.shutdown().unwrap());
}

#[test]
fn shutdown_is_served_under_a_long_poll() {
    for events in [0, 5] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .idle(Idle::Poll(LONG))
            .start::<&'static str>()
            .unwrap();
        thread::sleep(Duration::from_millis(50));
        for _ in 0..events {
            emitter.emit("y").unwrap();
        }
        let report = within_watchdog("shutdown", move || writer.shutdown().unwrap());
        assert_eq!(report.persisted, events);
    }
}

#[test]
fn block_emitters_are_served_under_a_long_poll() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .idle(Idle::Poll(LONG))
        .overflow(Overflow::Block(None))
        .capacity(4)
        .start::<u32>()
        .unwrap();
    thread::sleep(Duration::from_millis(50));
    // Ten times the ring: the emitters must wait for space, and the writer, asleep on an
    // hour's timer, must be woken to make it.
    let threads: Vec<_> = (0..2u32)
        .map(|t| {
            let e = emitter.clone();
            thread::spawn(move || {
                for i in 0..20 {
                    e.emit(t * 100 + i).unwrap();
                }
            })
        })
        .collect();
    within_watchdog("blocked emits", move || {
        for t in threads {
            t.join().unwrap();
        }
    });
    let report = within_watchdog("shutdown", move || writer.shutdown().unwrap());
    assert_eq!((report.emitted, report.persisted), (40, 40));
}

#[test]
fn bad_poll_intervals_are_refused_before_the_directory_is_touched() {
    let parent = tempfile::tempdir().unwrap();
    for idle in [
        Idle::Poll(Duration::ZERO),
        Idle::Poll(Duration::from_nanos(999)),
        Idle::Poll(Duration::from_secs(60 * 60 + 1)),
        Idle::Poll(Duration::MAX),
    ] {
        let dir = parent.path().join("log");
        let err = Writer::builder(&dir).idle(idle).start::<u32>().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{idle:?}");
        assert!(!dir.exists(), "{idle:?} created the directory");
    }
    // The bounds themselves are accepted.
    for idle in [
        Idle::Poll(Duration::from_micros(1)),
        Idle::Poll(Duration::from_secs(60 * 60)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .idle(idle)
            .start::<u32>()
            .unwrap();
        emitter.emit(1).unwrap();
        let report = within_watchdog("shutdown", move || writer.shutdown().unwrap());
        assert_eq!(report.persisted, 1, "{idle:?}");
    }
}

#[test]
fn the_default_is_park() {
    assert_eq!(Idle::default(), Idle::Park);
}
