//! The async API under the checks a channel's own test suite makes (tokio's and futures'
//! channel tests): waits that must end (a disk that starts failing, a writer that panics), a
//! future polled with another waker, and exact accounting when many tasks cancel their emits
//! at random.
//!
//! Every wait that must end has a deadline, so a regression fails instead of hanging. No
//! assertion is about speed.

#[path = "support/deadline.rs"]
mod deadline;

use ringwal::{Batch, ByteEmitError, ByteEmitter, EmitError, Emitter, Overflow, Sink, Writer};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Generous bound for what must happen "soon" on a loaded machine.
const SOON: Duration = Duration::from_secs(10);

/// A sink whose appends wait while its gate is shut, then fail, panic or keep the payloads,
/// as the test set it.
struct GateSink {
    next: u64,
    gate: Gate,
}

#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<GateState>, Condvar)>);

#[derive(Default)]
struct GateState {
    shut: bool,
    /// An append is waiting at the shut gate.
    waiting: bool,
    /// Appends fail (ENOSPC-like) after the gate.
    fail: bool,
    payloads: Vec<Vec<u8>>,
}

impl Gate {
    fn shut() -> Self {
        let gate = Gate::default();
        gate.state().shut = true;
        gate
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) {
        self.state().shut = false;
        self.0 .1.notify_all();
    }

    fn writer_stuck(&self) -> bool {
        self.state().waiting
    }
}

impl Sink for GateSink {
    fn next_seq(&self) -> u64 {
        self.next
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        let (lock, cv) = &*self.gate.0;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        while state.shut {
            state.waiting = true;
            state = cv.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting = false;
        if state.fail {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected"));
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

/// A `u64` writer on a shut gate: `Block(timeout)`, ring of 4.
fn gated(
    gate: &Gate,
    timeout: Option<Duration>,
    reject_when_unhealthy: bool,
) -> (Writer<u64>, Emitter<u64>) {
    let dir = tempfile::tempdir().unwrap();
    Writer::builder(dir.path())
        .overflow(Overflow::Block(timeout))
        .capacity(4)
        .reject_when_unhealthy(reject_when_unhealthy)
        .shutdown_timeout(Duration::from_millis(200))
        .start_with_sink(GateSink {
            next: 0,
            gate: gate.clone(),
        })
        .unwrap()
}

/// A byte writer on a shut gate: `Block(None)`, ring of 64 bytes.
fn gated_bytes(gate: &Gate, reject_when_unhealthy: bool) -> (Writer<ringwal::Bytes>, ByteEmitter) {
    let dir = tempfile::tempdir().unwrap();
    Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .capacity(64)
        .reject_when_unhealthy(reject_when_unhealthy)
        .shutdown_timeout(Duration::from_millis(200))
        .start_bytes_with_sink(GateSink {
            next: 0,
            gate: gate.clone(),
        })
        .unwrap()
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn counting_waker() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (count.clone(), Waker::from(count))
}

fn poll_once<F: Future>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

/// Waits (this thread) until `done` holds; panics naming `what` after [`SOON`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {SOON:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Fills the ring of a shut-gate `Block` writer so that it stays full until the gate opens:
/// emits until the writer is stuck at the gate and an emit finds the ring full (that one is
/// cancelled: counted as rejected).
fn fill(emitter: &Emitter<u64>, gate: &Gate) {
    let (_, waker) = counting_waker();
    let mut v = 1_000_000;
    loop {
        let stuck = gate.writer_stuck();
        let mut emit = pin!(emitter.emit_async(v));
        v += 1;
        match poll_once(emit.as_mut(), &waker) {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => {
                assert!(matches!(emit.as_mut().cancel(), Some(EmitError::Full(_))));
                if stuck {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// [`fill`] for the byte writer, with 8-byte records.
fn fill_bytes(emitter: &ByteEmitter, gate: &Gate) {
    let (_, waker) = counting_waker();
    loop {
        let stuck = gate.writer_stuck();
        let mut emit = pin!(emitter.emit_async(b"fill....."));
        match poll_once(emit.as_mut(), &waker) {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => {
                if stuck {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

// ---- a disk that starts failing under `reject_when_unhealthy` ----

/// With `reject_when_unhealthy`, an emit is refused with `Unhealthy` while the disk fails. A
/// task already waiting for space when the disk starts failing must be woken and get its
/// event back as `Unhealthy`: a failing writer leaves the ring alone, so no space will free,
/// and without a wake the task waited until the disk recovered or the writer shut down.
#[test]
fn a_waiting_emit_is_woken_when_the_disk_starts_failing() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(&gate, None, true);
    fill(&emitter, &gate);
    let (count, waker) = counting_waker();
    let mut emit = pin!(emitter.emit_async(42));
    assert!(poll_once(emit.as_mut(), &waker).is_pending());
    gate.state().fail = true;
    gate.open();
    wait_until("the waiting task woken when the disk failed", || {
        count.wakes() > 0
    });
    let got = poll_once(emit.as_mut(), &waker);
    assert!(
        matches!(got, Poll::Ready(Err(EmitError::Unhealthy(42)))),
        "{got:?}"
    );
    assert!(!emitter.stats().healthy);
    drop(writer);
}

/// The byte emitter's waiting emit, likewise: woken, refused `Unhealthy`, its closure never run.
#[test]
fn a_waiting_byte_emit_is_woken_when_the_disk_starts_failing() {
    let gate = Gate::shut();
    let (writer, emitter) = gated_bytes(&gate, true);
    fill_bytes(&emitter, &gate);
    let (count, waker) = counting_waker();
    let ran = AtomicUsize::new(0);
    let mut emit = pin!(emitter.emit_with_async(8, |buf| {
        ran.fetch_add(1, Ordering::SeqCst);
        buf.len()
    }));
    assert!(poll_once(emit.as_mut(), &waker).is_pending());
    gate.state().fail = true;
    gate.open();
    wait_until("the waiting task woken when the disk failed", || {
        count.wakes() > 0
    });
    let got = poll_once(emit.as_mut(), &waker);
    assert!(
        matches!(got, Poll::Ready(Err(ByteEmitError::Unhealthy))),
        "{got:?}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    drop(writer);
}

/// The blocking `emit` has the same wait: blocked for space (a timeout of a minute) when the
/// disk starts failing, it returns `Unhealthy` then, not at its timeout.
#[test]
fn a_blocked_emit_returns_unhealthy_when_the_disk_starts_failing() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(&gate, Some(Duration::from_secs(60)), true);
    fill(&emitter, &gate);
    let blocked = {
        let emitter = emitter.clone();
        std::thread::spawn(move || emitter.emit(42))
    };
    // Let it reach its wait (if it has not, it sees the failure at its first look: same result).
    std::thread::sleep(Duration::from_millis(20));
    gate.state().fail = true;
    gate.open();
    let got = deadline::within("a blocked emit on a failing disk", SOON, move || {
        blocked.join().unwrap()
    });
    assert!(matches!(got, Err(EmitError::Unhealthy(42))), "{got:?}");
    drop(writer);
}

// ---- a discarded byte grant and a parked writer ----

/// A byte writer of 64 bytes (records of at most 24 bytes: two fill it), parked (`Idle::Park`
/// and nothing to do for a while).
fn parked_bytes(overflow: Overflow) -> (tempfile::TempDir, Writer<ringwal::Bytes>, ByteEmitter) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(overflow)
        .capacity(64)
        .start_bytes()
        .unwrap();
    assert_eq!(emitter.max_record_len(), 24);
    // The writer polls for tens of microseconds, then parks.
    std::thread::sleep(Duration::from_millis(50));
    (dir, writer, emitter)
}

/// Two `emit_with_async` whose closures panic (each caught, as a task's panic is by its
/// runtime): their grants, half the ring each, are discarded.
fn discard_the_whole_ring(emitter: &ByteEmitter) {
    for _ in 0..2 {
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            futures_executor::block_on(emitter.emit_with_async(24, |_| panic!("the closure fails")))
        }));
        assert!(panicked.is_err());
    }
}

/// A parked writer is woken by the emit that gives it work (`Signal::pushed`, after the
/// commit). An `emit_with` whose closure panics discards its grant, but its space is freed only
/// when the writer steps over it: the discard must wake the writer too. Without that, a ring
/// filled by discarded grants stayed full while the writer slept, and a `Block` emit waited
/// for ever (under `Idle::Park` nothing else wakes the writer for it).
#[test]
fn a_discarded_grant_wakes_the_parked_writer_so_a_waiting_emit_gets_room() {
    let (_dir, writer, emitter) = parked_bytes(Overflow::Block(None));
    discard_the_whole_ring(&emitter);
    let (count, waker) = counting_waker();
    let mut emit = pin!(emitter.emit_async(b"after"));
    if poll_once(emit.as_mut(), &waker).is_pending() {
        wait_until("the waiting emit woken by freed space", || {
            count.wakes() > 0
        });
        let deadline = Instant::now() + SOON;
        while poll_once(emit.as_mut(), &waker).is_pending() {
            assert!(Instant::now() < deadline, "never got room");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    futures_executor::block_on(emitter.flush_async()).unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!((report.persisted, report.rejected), (1, 2));
}

/// The same under `Reject`: a ring filled by discarded grants must not refuse every later emit
/// while the writer sleeps.
#[test]
fn a_discarded_grant_does_not_leave_a_reject_ring_full() {
    let (_dir, writer, emitter) = parked_bytes(Overflow::Reject);
    discard_the_whole_ring(&emitter);
    let deadline = Instant::now() + SOON;
    loop {
        match futures_executor::block_on(emitter.emit_async(b"after")) {
            Ok(()) => break,
            Err(ByteEmitError::Full) => {
                assert!(
                    Instant::now() < deadline,
                    "the ring stayed full of discarded grants"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, 1);
}
