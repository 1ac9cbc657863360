//! A sink that hangs (a dead NFS mount, a disk that stopped answering: a call that never
//! returns, not one that fails): `shutdown` and `Drop` still return, bounded by
//! `shutdown_timeout`, leave the writer thread detached, and claim durable only what was.
//!
//! A watchdog aborts the process if a test has not finished after a minute, so a regression
//! fails instead of hanging CI.

use ringwal::{Batch, EmitError, Emitter, FlushError, Sink, Writer};
use std::io;
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::Duration;

/// Where the sink hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hang {
    Append,
    Sync,
}

#[derive(Default)]
struct State {
    /// From now on, this call never returns.
    hang: Option<Hang>,
    /// The writer is inside the hung call.
    stuck: bool,
    appended: u64,
    synced: u64,
}

#[derive(Clone, Default)]
struct Control(Arc<(Mutex<State>, Condvar)>);

impl Control {
    fn set(&self, hang: Hang) {
        self.0 .0.lock().unwrap().hang = Some(hang);
    }

    /// Waits until the writer is inside the hung call.
    fn wait_stuck(&self) {
        let (lock, cv) = &*self.0;
        let mut state = lock.lock().unwrap();
        while !state.stuck {
            state = cv.wait(state).unwrap();
        }
    }

    fn counts(&self) -> (u64, u64) {
        let state = self.0 .0.lock().unwrap();
        (state.appended, state.synced)
    }

    /// Called by the sink: never returns if `call` is the one that hangs.
    fn maybe_hang(&self, call: Hang) {
        let (lock, cv) = &*self.0;
        let mut state = lock.lock().unwrap();
        if state.hang != Some(call) {
            return;
        }
        state.stuck = true;
        cv.notify_all();
        // Nobody ever clears `hang`: this waits forever.
        while state.hang == Some(call) {
            state = cv.wait(state).unwrap();
        }
    }
}

/// Keeps record counts in memory; hangs where the control says.
struct HangingSink {
    next: u64,
    control: Control,
}

impl Sink for HangingSink {
    fn next_seq(&self) -> u64 {
        self.next
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        self.control.maybe_hang(Hang::Append);
        self.next = batch.first_seq() + batch.records();
        self.control.0 .0.lock().unwrap().appended = self.next;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.control.maybe_hang(Hang::Sync);
        self.control.0 .0.lock().unwrap().synced = self.next;
        Ok(())
    }
}

fn watchdog() {
    static START: Once = Once::new();
    START.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(60));
            eprintln!("hung_sink: a test has not finished after 60 s: shutdown hangs");
            std::process::abort();
        });
    });
}

/// A writer on a hanging sink: 5 events written and synced, then the sink hangs at `hang`
/// with 10 more accepted.
fn stuck_writer(hang: Hang) -> (Writer<Vec<u8>>, Emitter<Vec<u8>>, Control) {
    watchdog();
    let control = Control::default();
    let sink = HangingSink {
        next: 0,
        control: control.clone(),
    };
    let (writer, emitter) = Writer::builder("unused-with-a-sink")
        .shutdown_timeout(Duration::from_millis(200))
        .capacity(64)
        .start_with_sink::<Vec<u8>, _>(sink)
        .unwrap();
    for i in 0..5u8 {
        emitter.emit(vec![i]).unwrap();
    }
    emitter.flush().unwrap();
    assert_eq!(control.counts(), (5, 5));
    control.set(hang);
    for i in 5..15u8 {
        emitter.emit(vec![i]).unwrap();
    }
    control.wait_stuck();
    (writer, emitter, control)
}

/// After a shutdown that gave up on a stuck writer: emits are refused, flushes return.
fn assert_closed(emitter: &Emitter<Vec<u8>>) {
    assert!(matches!(emitter.emit(vec![99]), Err(EmitError::Closed(_))));
    assert!(matches!(emitter.flush(), Err(FlushError::Closed)));
}

fn shutdown_returns(hang: Hang) {
    let (writer, emitter, control) = stuck_writer(hang);
    let err = match writer.shutdown() {
        Ok(report) => panic!("shutdown on a hung sink succeeded: {report:?}"),
        Err(e) => e,
    };
    eprintln!("{err}");
    assert_eq!(err.error.kind(), io::ErrorKind::TimedOut, "{}", err.error);
    // The stuck thread holds the records: none can be handed back.
    assert!(err.unwritten.is_empty());
    let report = &err.report;
    assert_eq!(report.emitted, 15);
    // Durable: the 5 synced before the hang, not the 10 appended (under `Sync`) but unsynced.
    assert_eq!(report.persisted, 5, "{report:?}");
    assert_eq!(report.dropped, 0);
    assert_eq!(report.queued, 10);
    assert_eq!(report.last_seq, Some(4));
    assert!(!report.healthy);
    assert!(
        err.to_string().contains("10 records not confirmed durable"),
        "{err}"
    );
    if hang == Hang::Sync {
        // The sink did take the 10; only their sync hangs.
        assert_eq!(control.counts(), (15, 5));
    }
    assert_closed(&emitter);
}

fn drop_returns(hang: Hang) {
    let (writer, emitter, _control) = stuck_writer(hang);
    drop(writer);
    assert_closed(&emitter);
}

#[test]
fn shutdown_returns_when_an_append_hangs() {
    shutdown_returns(Hang::Append);
}

#[test]
fn shutdown_returns_when_a_sync_hangs() {
    shutdown_returns(Hang::Sync);
}

#[test]
fn drop_returns_when_an_append_hangs() {
    drop_returns(Hang::Append);
}

#[test]
fn drop_returns_when_a_sync_hangs() {
    drop_returns(Hang::Sync);
}

/// Keeps the payloads it was given. While `slow` is set, an append waits (with `inside` set)
/// until `slow` is cleared: a call that takes long, but returns.
struct SlowSink {
    next: u64,
    control: Arc<(Mutex<Slow>, Condvar)>,
}

#[derive(Default)]
struct Slow {
    slow: bool,
    inside: bool,
    payloads: Vec<Vec<u8>>,
}

impl Sink for SlowSink {
    fn next_seq(&self) -> u64 {
        self.next
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        let (lock, cv) = &*self.control;
        let mut state = lock.lock().unwrap();
        if state.slow {
            state.inside = true;
            cv.notify_all();
            while state.slow {
                state = cv.wait(state).unwrap();
            }
        }
        state.payloads.extend(
            batch
                .frames()
                .filter(|f| !f.marker)
                .map(|f| f.payload.to_vec()),
        );
        self.next = batch.first_seq() + batch.records();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that works but is slow: its append returns only after the shutdown timeout, with
/// more events still in the ring. The writer gives up at the caller's deadline (it used to
/// drain for as long as it took) and hands back exactly what the sink did not get.
#[test]
fn shutdown_gives_up_at_its_timeout_on_a_slow_sink() {
    watchdog();
    const TIMEOUT: Duration = Duration::from_millis(200);
    let control = Arc::new((Mutex::new(Slow::default()), Condvar::new()));
    let sink = SlowSink {
        next: 0,
        control: Arc::clone(&control),
    };
    let (writer, emitter) = Writer::builder("unused-with-a-sink")
        .shutdown_timeout(TIMEOUT)
        .capacity(64)
        .start_with_sink::<Vec<u8>, _>(sink)
        .unwrap();
    let ev = |i: u8| vec![i];
    for i in 0..5 {
        emitter.emit(ev(i)).unwrap();
    }
    emitter.flush().unwrap();
    control.0.lock().unwrap().slow = true;
    for i in 5..10 {
        emitter.emit(ev(i)).unwrap();
    }
    {
        let mut state = control.0.lock().unwrap();
        while !state.inside {
            state = control.1.wait(state).unwrap();
        }
    }
    // The writer is inside the slow append (of some of 5..10); these wait in the ring.
    for i in 10..30 {
        emitter.emit(ev(i)).unwrap();
    }
    // The append returns 30 ms past the shutdown's deadline (well within the 100 ms after
    // which a call counts as stuck).
    let t0 = std::time::Instant::now();
    let release = {
        let control = Arc::clone(&control);
        std::thread::spawn(move || {
            std::thread::sleep(
                (t0 + TIMEOUT + Duration::from_millis(30)) - std::time::Instant::now(),
            );
            control.0.lock().unwrap().slow = false;
            control.1.notify_all();
        })
    };
    let result = writer.shutdown();
    release.join().unwrap();
    let err = match result {
        Ok(report) => panic!(
            "shutdown took {:?}, past its timeout, and succeeded: {report:?}",
            t0.elapsed()
        ),
        Err(e) => e,
    };
    assert_eq!(err.error.kind(), io::ErrorKind::TimedOut, "{}", err.error);
    let report = &err.report;
    // The slow append took the first of 5..10 (the writer may have taken them one batch or a
    // few); everything after it comes back.
    let in_sink = control.0.lock().unwrap().payloads.clone();
    let persisted = in_sink.len() as u64;
    assert!((6..=10).contains(&persisted), "{persisted} in the sink");
    assert_eq!(in_sink, (0..persisted as u8).map(ev).collect::<Vec<_>>());
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (30, persisted, 0),
        "{report:?}"
    );
    let unwritten: Vec<(u64, Vec<u8>)> = err
        .unwritten
        .iter()
        .map(|e| (e.seq, e.payload.clone()))
        .collect();
    assert_eq!(
        unwritten,
        (persisted as u8..30u8)
            .map(|i| (u64::from(i), ev(i)))
            .collect::<Vec<_>>(),
        "the events not in the sink come back"
    );
}
