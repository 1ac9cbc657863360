//! loom models of the async wake protocol (`ringwal::signal::wake`): tasks waiting in the
//! writer's `Waiters` lists as nodes of an intrusive list, each registered by a `Waiter` in its
//! future, woken by `Waiters::notify`; and a log's follower waiting on `Appended`. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release --test async_wake`.
//!
//! Each model drives `Signal`, `Waiter` and `Appended` exactly as `std-writer/src/` does:
//! `EmitFuture::poll` (`Waiter::poll_until` with `Emitter::attempt` as its condition: one
//! `try_push_checked`), a future dropped while it waits (`Waiter`'s `Drop`), `Worker::take`
//! (pop, then `signal.space.notify()`), `Shared::close` (`Signal::close` with the ring's close),
//! and `Follow::poll_next_entry` against `SegmentLog::append` (the append, then
//! `Appended::appended`), with a loom atomic standing in for the log file. The futures run on
//! `loom::future::block_on`, whose waker unparks the blocked thread: a lost wake-up leaves it
//! parked forever and loom reports a deadlock, so "terminates" is itself the main assertion.
//! The node links are a loom `UnsafeCell` (`crate::sync::UnsafeCell`), so loom also checks
//! that no two threads touch a node's links without the list's lock between them.
//!
//! Each model's doc names the mutation (in `loom-tests/mutations.py`) seen to fail it.
//! Unless a model says otherwise it runs with no preemption bound (exhaustive).
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use ringwal::signal::{Appended, Signal, Waiter};
use ringwal_core::{channel, Producer, PushError, Receiver};
use ringwal_loom_tests::check;
use std::future::poll_fn;
use std::pin::pin;
use std::task::{Poll, Wake, Waker};

/// The writer's signal (the calling thread is the writer) and a full ring of 2 (holding 1 and
/// 2), its producer shared.
fn full_ring() -> (Arc<Signal>, Arc<Producer<u32>>, Receiver<u32>) {
    let (tx, rx) = channel(2);
    tx.try_push(1).unwrap();
    tx.try_push(2).unwrap();
    (Arc::new(Signal::new(thread::current())), Arc::new(tx), rx)
}

/// `Emitter::attempt` under `Overflow::Block`: one push; `None` (try again) if the ring is
/// full; `Some(Err(v))` if it is closed.
fn attempt(signal: &Signal, tx: &Producer<u32>, held: &mut Option<u32>) -> Option<Result<(), u32>> {
    let v = held.take()?;
    match tx.try_push_checked(v) {
        Ok(()) => {
            signal.pushed();
            Some(Ok(()))
        }
        Err(PushError::Full(v)) => {
            *held = Some(v);
            None
        }
        Err(PushError::Closed(v)) => Some(Err(v)),
    }
}

/// `EmitFuture` under `Block` on a full ring: waits in `signal.space` until its push succeeds
/// (`Ok`) or the ring is closed (`Err` with the value back).
async fn emit_async(signal: &Signal, tx: &Producer<u32>, v: u32) -> Result<(), u32> {
    let mut waiter = pin!(Waiter::new(&signal.space));
    let mut held = Some(v);
    poll_fn(|cx| {
        waiter
            .as_mut()
            .poll_until(cx.waker(), || attempt(signal, tx, &mut held))
    })
    .await
}

/// A waker that only counts (a task polled by hand, then dropped).
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A task waits for space in a full ring while the writer frees a slot and notifies (a
/// waiter registering while space frees). The task must not sleep through the freed slot,
/// and the list must end empty with its waiter count back at 0.
///
/// Mutation that fails it: W1 (`Waiter::poll_until` without its fence after registering: the
/// task's re-check misses the freed slot while the writer's count load misses the
/// registration; a deadlock).
#[test]
fn task_waiting_for_space_sees_freed_space() {
    check(None, || {
        let (signal, tx, mut rx) = full_ring();
        let emitter = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || block_on(emit_async(&signal, &tx, 3)))
        };
        // `Worker::take`: values out, then the space notification.
        assert_eq!(rx.pop(), Some(1));
        signal.space.notify();
        assert_eq!(emitter.join().unwrap(), Ok(()));
        let rest: Vec<u32> = rx.drain().collect();
        assert_eq!(rest, [2, 3]);
        assert_eq!(signal.space.tasks(), 0);
        assert_eq!(signal.space.waiting(), 0);
    });
}

/// Two tasks wait for space; one (`A`, polled once by hand) is cancelled — its future dropped,
/// which unlinks its node — while the writer frees two slots, notifying after each. The other
/// (`B`) must still be woken and get its value in; `A`'s value is in the ring exactly when its
/// one poll said `Ready` (nothing accepted is lost, nothing refused is written); the list ends
/// empty with its count at 0 (a cancelled node unlinked once, whether or not a notifier had
/// already taken it out).
///
/// Mutation that fails it: W2 (`Waiter::cancel` unlinks the node whenever it was registered,
/// even after a notifier already took it out of the list: the list's head, length and count
/// are corrupted; the count assertion fails, or `B` is lost and never woken).
///
/// Preemption bound 2: three threads, two rings of pushes and the list's lock make the
/// exhaustive search long; at bound 2 it explores 21,100 executions in about 2 s (at bound 3,
/// 323,212 in 29 s, also passing), and W2 is caught at bound 2.
#[test]
fn cancelled_task_racing_a_notify() {
    check(Some(2), || {
        let (signal, tx, mut rx) = full_ring();
        let a = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || {
                let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
                let waker = Waker::from(count);
                let mut held = Some(3);
                let mut waiter = pin!(Waiter::new(&signal.space));
                let polled = waiter
                    .as_mut()
                    .poll_until(&waker, || attempt(&signal, &tx, &mut held));
                // The future is dropped here (cancelled), its waiter with it.
                polled.is_ready()
            })
        };
        let b = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || block_on(emit_async(&signal, &tx, 4)))
        };
        assert_eq!(rx.pop(), Some(1));
        signal.space.notify();
        assert_eq!(rx.pop(), Some(2));
        signal.space.notify();
        let a_pushed = a.join().unwrap();
        assert_eq!(b.join().unwrap(), Ok(()));
        let rest: Vec<u32> = rx.drain().collect();
        assert_eq!(rest.contains(&3), a_pushed);
        assert!(rest.contains(&4));
        assert_eq!(signal.space.tasks(), 0);
        assert_eq!(signal.space.waiting(), 0);
    });
}

/// A task waits for space in a full ring that nobody drains, while the writer shuts down
/// (`Shared::close`: `Signal::close` with the ring's close). The task must be woken and get
/// its value back as refused (`Closed`), never hang, and the ring's final position is 2.
///
/// Mutation that fails it: W3 (`Signal::close` without its `space.notify()`: the waiting task
/// is never woken; a deadlock).
#[test]
fn close_races_a_waiting_task() {
    check(None, || {
        let (signal, tx, _rx) = full_ring();
        let emitter = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || block_on(emit_async(&signal, &tx, 3)))
        };
        let end = signal.close(|| tx.close());
        assert_eq!(end, 2);
        assert_eq!(emitter.join().unwrap(), Err(3));
        assert_eq!(signal.space.tasks(), 0);
        assert_eq!(signal.space.waiting(), 0);
    });
}

/// A follower task (`Follow::poll_next_entry`: read the generation, read the log, wait for the
/// generation to change) against a writer appending one record (`SegmentLog::append`: write,
/// then `Appended::appended`). The follower must see the record; the log is a loom atomic
/// read `Relaxed`, so it is the generation's Acquire/Release that makes a record visible to a
/// follower woken for it.
///
/// Mutation that fails it: W4 (`Appended`'s bump `Relaxed`: a follower that sees the bump before
/// it waits reads the log without the append, waits for a bump that already happened; a
/// deadlock).
#[test]
fn append_wakes_a_follower() {
    check(None, || {
        let appended = Arc::new(Appended::new());
        let log = Arc::new(AtomicUsize::new(0));
        let follower = {
            let (appended, log) = (appended.clone(), log.clone());
            thread::spawn(move || {
                let mut waiter = pin!(Waiter::new(&appended.waiters));
                block_on(poll_fn(|cx| loop {
                    // Before reading: an append we do not see bumps the generation after this.
                    let seen = appended.generation();
                    let records = log.load(Ordering::Relaxed);
                    if records > 0 {
                        waiter.as_mut().cancel();
                        return Poll::Ready(records);
                    }
                    let woken = waiter
                        .as_mut()
                        .poll_until(cx.waker(), || (appended.generation() != seen).then_some(()));
                    if woken.is_pending() {
                        return Poll::Pending;
                    }
                }))
            })
        };
        log.store(1, Ordering::Relaxed);
        appended.appended();
        assert_eq!(follower.join().unwrap(), 1);
        assert_eq!(appended.waiters.tasks(), 0);
        assert_eq!(appended.waiters.waiting(), 0);
    });
}
