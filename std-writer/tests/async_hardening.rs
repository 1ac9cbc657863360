//! The async API under the checks a channel's own test suite makes (tokio's and futures'
//! channel tests): waits that must end (a disk that starts failing, a writer that panics), a
//! future polled with another waker, and exact accounting when many tasks cancel their emits
//! at random.
//!
//! Every wait that must end has a deadline, so a regression fails instead of hanging. No
//! assertion is about speed.

#[path = "support/deadline.rs"]
mod deadline;
#[path = "support/gate.rs"]
mod gate;

use gate::{counting_waker, fill, poll_once, Gate, GateSink};

use ringwal::{
    ByteEmitError, ByteEmitter, EmitError, Emitter, Entry, FlushError, Overflow, Reader,
    SyncPolicy, Writer,
};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

/// Generous bound for what must happen "soon" on a loaded machine.
const SOON: Duration = Duration::from_secs(10);

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

/// Waits (this thread) until `done` holds; panics naming `what` after [`SOON`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {SOON:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The records [`fill_bytes`] emits.
const FILL: &[u8] = b"fill.....";

/// [`fill`] for the byte writer, with records of [`FILL`].
fn fill_bytes(emitter: &ByteEmitter, gate: &Gate) {
    let (_, waker) = counting_waker();
    loop {
        let stuck = gate.writer_stuck();
        let mut emit = pin!(emitter.emit_async(FILL));
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
    // As long as `fill_bytes`' records: the ring, unchanged since, has no room for it.
    let mut emit = pin!(emitter.emit_with_async(FILL.len(), |buf| {
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

// ---- wakers, a dying writer, a runtime thread that must stay free ----

/// A waiting emit polled again with another task's waker is woken on that one (the node's
/// stored waker is replaced), not on the first.
#[test]
fn a_waiting_emit_is_woken_on_its_latest_waker() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(&gate, None, false);
    fill(&emitter, &gate);
    let (first, waker1) = counting_waker();
    let (second, waker2) = counting_waker();
    let mut emit = pin!(emitter.emit_async(5));
    assert!(poll_once(emit.as_mut(), &waker1).is_pending());
    assert!(poll_once(emit.as_mut(), &waker2).is_pending());
    gate.open();
    wait_until("woken on the second waker", || second.wakes() > 0);
    assert_eq!(first.wakes(), 0, "the replaced waker was woken");
    assert!(matches!(
        poll_once(emit.as_mut(), &waker2),
        Poll::Ready(Ok(()))
    ));
    writer.shutdown().unwrap();
    assert!(gate.payloads().contains(&5u64.to_le_bytes().to_vec()));
}

/// The same for a waiting flush.
#[test]
fn a_waiting_flush_is_woken_on_its_latest_waker() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(&gate, None, false);
    emitter.emit(1).unwrap();
    let (first, waker1) = counting_waker();
    let (second, waker2) = counting_waker();
    let mut flush = pin!(emitter.flush_async());
    assert!(poll_once(flush.as_mut(), &waker1).is_pending());
    assert!(poll_once(flush.as_mut(), &waker2).is_pending());
    gate.open();
    wait_until("woken on the second waker", || second.wakes() > 0);
    assert_eq!(first.wakes(), 0, "the replaced waker was woken");
    let deadline = Instant::now() + SOON;
    loop {
        match poll_once(flush.as_mut(), &waker2) {
            Poll::Ready(r) => break r.unwrap(),
            Poll::Pending => assert!(Instant::now() < deadline, "the flush never completed"),
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    writer.shutdown().unwrap();
}

/// The writer thread dies (its sink panics) while a task waits for space and another for a
/// flush: both complete, with `Closed`, instead of waiting for a writer that is gone.
#[test]
fn a_panicking_writer_releases_waiting_tasks_with_closed() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(&gate, None, false);
    fill(&emitter, &gate);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (emitted, flushed) = rt.block_on(async {
        let emit = {
            let emitter = emitter.clone();
            tokio::spawn(async move { emitter.emit_async(7).await })
        };
        let flush = {
            let emitter = emitter.clone();
            tokio::spawn(async move { emitter.flush_async().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!emit.is_finished() && !flush.is_finished());
        gate.state().panic = true;
        gate.open();
        let emitted = tokio::time::timeout(SOON, emit).await.expect("emit hung");
        let flushed = tokio::time::timeout(SOON, flush).await.expect("flush hung");
        (emitted.unwrap(), flushed.unwrap())
    });
    assert!(matches!(emitted, Err(EmitError::Closed(7))), "{emitted:?}");
    assert!(matches!(flushed, Err(FlushError::Closed)), "{flushed:?}");
    assert!(writer.shutdown().is_err());
}

/// `flush_async` on a `current_thread` runtime with the sink stalled: the runtime thread stays
/// free (a timer on it fires while the flush waits), so a flush that blocked the thread would
/// show as a timeout that could not elapse.
#[test]
fn flush_async_leaves_a_current_thread_runtime_free() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(&gate, None, false);
    emitter.emit(1).unwrap();
    // A backstop, so that a flush that blocked the thread returns (and the assertion below
    // fails) instead of hanging the test; the test itself opens the gate long before.
    let backstop = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            gate.open();
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut flush = pin!(emitter.flush_async());
        let waited = tokio::time::timeout(Duration::from_millis(20), flush.as_mut()).await;
        assert!(
            waited.is_err(),
            "the flush returned while the sink was stalled: {waited:?}"
        );
        gate.open();
        tokio::time::timeout(SOON, flush)
            .await
            .expect("the flush never completed")
            .unwrap();
    });
    writer.shutdown().unwrap();
    drop(backstop); // detached: it only opens an open gate
}

/// A clean shutdown flushes everything accepted: a flush made afterwards has nothing left to
/// wait for and succeeds (`Closed` means "stopped without writing them").
#[test]
fn a_flush_after_a_clean_shutdown_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<u64>().unwrap();
    for i in 0..10 {
        emitter.emit(i).unwrap();
    }
    writer.shutdown().unwrap();
    let flushed = futures_executor::block_on(emitter.flush_async());
    assert!(matches!(flushed, Ok(())), "{flushed:?}");
}

// ---- many tasks cancelling at random ----

/// 64 tasks on a `multi_thread` runtime emit through a ring of 2 under `Block`, each emit
/// bounded by a timeout of 0 to 200 µs (so many are cancelled while waiting, some before
/// their first poll). Checked: every emit that
/// returned `Ok` is in the log exactly once, no cancelled or refused one is; the report counts
/// the accepted as persisted and every cancellation before the close as rejected; the log's
/// gaps add up to those refusals; an emit after the shutdown gets `Closed`, counted once.
#[test]
fn random_cancellations_keep_the_accounting_exact() {
    for round in 0..2u64 {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .overflow(Overflow::Block(None))
            .capacity(2)
            .sync(SyncPolicy::Never)
            .start::<u64>()
            .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let cancelled = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let tasks: Vec<_> = (0..64u64)
                .map(|t| {
                    let (emitter, accepted, cancelled) =
                        (emitter.clone(), accepted.clone(), cancelled.clone());
                    tokio::spawn(async move {
                        for i in 0..200u64 {
                            let v = t << 32 | i;
                            let micros = (v ^ round).wrapping_mul(0x9E37_79B9) % 200;
                            let bound = Duration::from_micros(micros);
                            match tokio::time::timeout(bound, emitter.emit_async(v)).await {
                                Ok(Ok(())) => accepted.lock().unwrap().push(v),
                                Ok(Err(e)) => panic!("refused: {e}"),
                                Err(_) => {
                                    cancelled.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                tokio::time::timeout(Duration::from_secs(60), task)
                    .await
                    .expect("a task hung")
                    .unwrap();
            }
        });
        let report = writer.shutdown().unwrap();
        let late = futures_executor::block_on(emitter.emit_async(u64::MAX));
        assert!(matches!(late, Err(EmitError::Closed(u64::MAX))), "{late:?}");

        let mut accepted = accepted.lock().unwrap().clone();
        let cancelled = cancelled.load(Ordering::SeqCst) as u64;
        println!(
            "round {round}: {} accepted, {cancelled} cancelled",
            accepted.len()
        );
        assert!(
            cancelled > 0 && !accepted.is_empty(),
            "the scenario did not happen: {} accepted, {cancelled} cancelled",
            accepted.len()
        );
        assert_eq!(report.persisted, accepted.len() as u64);
        assert_eq!(report.emitted, report.persisted);
        assert_eq!(report.rejected, cancelled);
        assert_eq!(
            emitter.stats().rejected,
            cancelled + 1,
            "the late emit counts once"
        );
        let entries: Vec<Entry> = Reader::open(dir.path())
            .unwrap()
            .iter()
            .map(|e| e.unwrap())
            .collect();
        let refused: u64 = entries.iter().map(|e| e.refused_before).sum();
        assert_eq!(refused, cancelled, "the log's gaps");
        let mut written: Vec<u64> = entries
            .iter()
            .map(|e| u64::from_le_bytes(e.payload[..].try_into().unwrap()))
            .collect();
        written.sort_unstable();
        accepted.sort_unstable();
        assert_eq!(written, accepted);
    }
}

// ---- auto traits ----

/// Compiles only if `T` is not `Unpin` (two impls apply to an `Unpin` type, so the call is
/// ambiguous then).
trait AmbiguousIfUnpin<A> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfUnpin<()> for T {}
impl<T: ?Sized + Unpin> AmbiguousIfUnpin<u8> for T {}

fn is_send<T: Send>() {}

/// A record that is `Send` but not `Sync`, as `Record` allows.
struct NotSync(std::cell::Cell<u32>);

impl ringwal::Record for NotSync {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.get().to_le_bytes());
    }
}

/// The futures are `Send` (a task holding one across an `.await` can be spawned on a
/// `multi_thread` runtime), also for a record that is not `Sync`, and not `Unpin`, as their
/// documentation says (a waiting task's registration lives inside them).
#[test]
fn the_futures_are_send_and_not_unpin() {
    is_send::<ringwal::EmitFuture<'static, u64>>();
    is_send::<ringwal::EmitFuture<'static, NotSync>>();
    is_send::<ringwal::FlushFuture<'static, NotSync>>();
    is_send::<ringwal::ByteEmitFuture<'static, fn(&mut [u8]) -> usize>>();
    <ringwal::EmitFuture<'static, u64> as AmbiguousIfUnpin<_>>::check();
    <ringwal::FlushFuture<'static, u64> as AmbiguousIfUnpin<_>>::check();
    <ringwal::ByteEmitFuture<'static, fn(&mut [u8]) -> usize> as AmbiguousIfUnpin<_>>::check();
}

// ---- many waiters and a shutdown ----

/// 200 tasks (more than a notifier wakes per batch) wait for space on a `multi_thread`
/// runtime; the stalled sink resumes and the writer is shut down while they still wait or
/// race for the freed space. Every task completes, with `Ok` (its event is in the log) or
/// `Closed` (it is not), and the counts agree with the log.
#[test]
fn a_shutdown_completes_every_waiting_task() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(&gate, None, false);
    fill(&emitter, &gate);
    let rejected_before = emitter.stats().rejected;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..200u64)
        .map(|v| {
            let emitter = emitter.clone();
            rt.spawn(async move { (v, emitter.emit_async(v).await) })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    assert!(tasks.iter().all(|t| !t.is_finished()), "the ring was full");
    // The sink resumes, and the shutdown comes while the tasks race for the freed space.
    gate.open();
    std::thread::sleep(Duration::from_millis(2));
    let report = writer.shutdown().unwrap();
    let outcomes = rt.block_on(async {
        let mut outcomes = Vec::new();
        for task in tasks {
            let done = tokio::time::timeout(SOON, task).await;
            outcomes.push(done.expect("a waiting task hung").unwrap());
        }
        outcomes
    });
    let mut accepted = Vec::new();
    let mut closed = 0u64;
    for (v, outcome) in outcomes {
        match outcome {
            Ok(()) => accepted.push(v),
            Err(EmitError::Closed(back)) => {
                assert_eq!(back, v);
                closed += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    println!("{} accepted, {closed} closed", accepted.len());
    assert_eq!(accepted.len() as u64 + closed, 200);
    let written: Vec<u64> = gate
        .payloads()
        .iter()
        .map(|p| u64::from_le_bytes(p[..8].try_into().unwrap()))
        .filter(|v| *v < 200)
        .collect();
    let mut sorted = written.clone();
    sorted.sort_unstable();
    accepted.sort_unstable();
    assert_eq!(
        sorted, accepted,
        "the log holds exactly the accepted events"
    );
    assert_eq!(report.emitted, report.persisted);
    assert_eq!(
        emitter.stats().rejected,
        rejected_before + closed,
        "each refused task counted once"
    );
}

// ---- `Block`'s timeout ----

/// `Block`'s timeout bounds the blocking `emit` only (documented): an `emit_async` under
/// `Block(Some(1 ms))` is still waiting well past it, is not refused, and completes once space
/// frees.
#[test]
fn block_timeout_does_not_bound_an_async_emit() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(&gate, Some(Duration::from_millis(1)), false);
    fill(&emitter, &gate);
    let rejected = emitter.stats().rejected;
    let (count, waker) = counting_waker();
    let mut emit = pin!(emitter.emit_async(9));
    assert!(poll_once(emit.as_mut(), &waker).is_pending());
    std::thread::sleep(Duration::from_millis(20));
    assert!(poll_once(emit.as_mut(), &waker).is_pending());
    assert_eq!(emitter.stats().rejected, rejected);
    gate.open();
    wait_until("woken when space freed", || count.wakes() > 0);
    let deadline = Instant::now() + SOON;
    loop {
        match poll_once(emit.as_mut(), &waker) {
            Poll::Ready(r) => break r.unwrap(),
            Poll::Pending => assert!(Instant::now() < deadline, "never got room"),
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    writer.shutdown().unwrap();
    assert!(gate.payloads().contains(&9u64.to_le_bytes().to_vec()));
}

// ---- idle strategies ----

/// Under `Idle::Poll` with an interval of a minute and under `Idle::Spin`, emitters never wake
/// the writer; a task that must wait for space wakes it itself (`nudge`), and `flush_async`
/// too. Four tasks pushing 200 events each through a ring of 4, then a flush, end long before
/// the interval.
#[test]
fn waiting_tasks_wake_a_polling_writer() {
    for idle in [
        ringwal::Idle::Poll(Duration::from_secs(60)),
        ringwal::Idle::Spin,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .overflow(Overflow::Block(None))
            .capacity(4)
            .idle(idle)
            .start::<u64>()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..4u64)
                .map(|t| {
                    let emitter = emitter.clone();
                    tokio::spawn(async move {
                        for i in 0..200 {
                            emitter.emit_async(t << 32 | i).await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                tokio::time::timeout(SOON, task)
                    .await
                    .unwrap_or_else(|_| panic!("{idle:?}: a waiting task was never woken"))
                    .unwrap();
            }
            tokio::time::timeout(SOON, emitter.flush_async())
                .await
                .unwrap_or_else(|_| panic!("{idle:?}: the flush never completed"))
                .unwrap();
        });
        assert_eq!(writer.shutdown().unwrap().persisted, 800, "{idle:?}");
    }
}
