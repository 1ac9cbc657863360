//! loom models of the std writer's handshakes (`ringwal::signal`): the writer parking against
//! racing emits, `close` against late emits, a `Block` emitter against the writer freeing
//! space, and a flush or stop request against the writer parking; and a polled writer
//! (`Idle::Poll`/`Spin`, never SLEEPING) against a flush, a stop and a blocked emitter, each
//! of which must unpark it itself. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release --test writer`.
//!
//! Each model drives `Signal` exactly as `std-writer/src/writer.rs` does (`Emitter::emit`,
//! `Emitter::attempt`/`block`, `Emitter::flush_until`, `Worker::run`), with a real
//! (loom-instrumented) `Ring` where the writer checks the ring. The writer is the model's main
//! thread, so `Signal::new(thread::current())` unparks the right thread. Under loom, parking
//! has no timeout (`sync::park`), so a lost wake-up leaves the writer (or a waiter) parked
//! forever and loom reports a deadlock: "terminates" is itself the main assertion.
//!
//! Unless a model says otherwise it runs with no preemption bound (loom's default: exhaustive).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use ringwal::signal::{Signal, CLOSED, STOP};
use ringwal_core::Ring;
use ringwal_loom_tests::check;

type Ring2 = Ring<u32, 2>;

/// The writer's signal (the calling thread is the writer) and a ring of 2, shared.
fn setup() -> (Arc<Signal>, Arc<Ring2>) {
    (
        Arc::new(Signal::new(thread::current())),
        Arc::new(Ring::new()),
    )
}

/// `Emitter::emit` under `Overflow::Reject`, minus the counters: enter, refuse if closed,
/// push (which leaves, releasing the in-flight counter as soon as it claims a position), then
/// wake the writer if the state said it sleeps. Returns whether the ring took `v`.
fn emit(signal: &Signal, ring: &Ring2, stripe: usize, v: u32) -> bool {
    let state = signal.enter(stripe);
    if state & CLOSED != 0 {
        signal.leave(stripe, 0);
        return false;
    }
    match ring.try_push_releasing(v, signal.in_flight(stripe)) {
        Ok(()) => {
            signal.woke(state);
            true
        }
        Err(_) => false,
    }
}

/// The closing writer's drain (`Worker::run` after `close`): take values until its position
/// reaches the producers' (`Ring::pushed`), which is final once `close` returned; a position
/// claimed just before may still be being published, so yield and look again.
/// `got` holds everything the writer took before; with the values `force_push` evicted (which
/// the cursor counts as it steps over them) that is the writer's position.
fn drain_after_close(
    consumer: &mut ringwal_core::Consumer<'_, u32, 2>,
    ring: &Ring2,
    got: &mut Vec<u32>,
) {
    loop {
        got.extend(consumer.drain());
        if got.len() + consumer.evicted() as usize == ring.pushed() {
            return;
        }
        thread::yield_now();
    }
}

/// An emitter thread: a handle's stripe is taken when the handle is made (`Emitter::new`), on
/// the thread that makes it; the emit runs on the new thread.
fn spawn_emitter(signal: &Arc<Signal>, ring: &Arc<Ring2>, v: u32) -> thread::JoinHandle<bool> {
    spawn_emitter_on(signal, ring, signal.stripe(), v)
}

/// [`spawn_emitter`] on a given stripe (handles share stripes beyond `STRIPES`).
fn spawn_emitter_on(
    signal: &Arc<Signal>,
    ring: &Arc<Ring2>,
    stripe: usize,
    v: u32,
) -> thread::JoinHandle<bool> {
    let (signal, ring) = (signal.clone(), ring.clone());
    thread::spawn(move || emit(&signal, &ring, stripe, v))
}

/// The writer's idle step in `Worker::run`: announce sleep, re-check for work (`idle`), park
/// if there is none; otherwise yield (the real writer's `relax`) and look again.
fn idle_step(signal: &Signal, idle: impl FnOnce() -> bool) {
    if signal.prepare_sleep(idle) {
        signal.sleep(None);
    } else {
        thread::yield_now();
    }
}

/// The writer drains the ring and parks when it finds it empty, until it has `want` values.
fn writer_collects(signal: &Signal, ring: &Ring2, want: usize) -> Vec<u32> {
    let mut consumer = ring.consumer().expect("the writer is the only consumer");
    let mut got = Vec::new();
    loop {
        got.extend(consumer.drain());
        if got.len() == want {
            return got;
        }
        idle_step(signal, || ring.is_empty());
    }
}

/// One emit racing the writer going to sleep: the writer either sees the push before it parks
/// or is woken by the emitter, never parked forever with the value in the ring.
#[test]
fn parked_writer_sees_racing_push() {
    check(None, || {
        let (signal, ring) = setup();
        let emitter = spawn_emitter(&signal, &ring, 1);
        let got = writer_collects(&signal, &ring, 1);
        assert!(emitter.join().unwrap(), "an empty ring of 2 took the value");
        assert_eq!(got, [1]);
    });
}

/// Two emits (different stripes, so the writer's `quiet` check reads both counters) racing
/// the writer, which may park, wake for one value and park again before the second.
///
/// Bound: 3 preemptions (174,758 executions, 11 s here). Three threads and the writer's
/// park/yield loop: at a bound of 4 it took 2.5 million executions and 2.5 minutes (unbounded
/// explores a superset of those). The one-emitter model above is exhaustive;
/// at this bound the model still catches each broken variant of the handshake tried on it (the
/// state loaded before the counter is raised, either fence removed, a Relaxed counter
/// decrement or counter check).
#[test]
fn parked_writer_sees_two_racing_pushes() {
    check(Some(3), || {
        let (signal, ring) = setup();
        let a = spawn_emitter(&signal, &ring, 1);
        let b = spawn_emitter(&signal, &ring, 2);
        let mut got = writer_collects(&signal, &ring, 2);
        assert!(a.join().unwrap() && b.join().unwrap(), "room for both");
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

/// An emit racing `close`: once `close` returns, no position can be claimed any more. If the
/// emit was accepted, the writer's drain after `close` (until its position reaches `pushed()`)
/// has it; if it was refused, the ring stays empty.
#[test]
fn close_excludes_late_pushes() {
    check(None, || {
        let (signal, ring) = setup();
        let emitter = spawn_emitter(&signal, &ring, 1);
        let mut consumer = ring.consumer().unwrap();
        signal.close();
        let mut popped = Vec::new();
        drain_after_close(&mut consumer, &ring, &mut popped);
        let accepted = emitter.join().unwrap();
        if accepted {
            assert_eq!(
                popped,
                [1],
                "an accepted emit missing from the drain after close"
            );
        } else {
            assert!(popped.is_empty(), "a refused emit pushed");
            assert!(ring.is_empty(), "a refused emit pushed");
        }
    });
}

/// Two emits on one stripe (handles share stripes beyond `STRIPES`) racing `close`: the writer
/// sees the counter at 0 only at or after the later decrement, inside the release sequence of
/// both, so it sees both claims; they may publish out of order, and the drain waits for both.
///
/// Bound: 3 preemptions (three threads; unbounded it explodes).
#[test]
fn close_excludes_late_pushes_on_a_shared_stripe() {
    check(Some(3), || {
        let (signal, ring) = setup();
        let stripe = signal.stripe();
        let a = spawn_emitter_on(&signal, &ring, stripe, 1);
        let b = spawn_emitter_on(&signal, &ring, stripe, 2);
        let mut consumer = ring.consumer().unwrap();
        signal.close();
        let mut got = Vec::new();
        drain_after_close(&mut consumer, &ring, &mut got);
        let (took_a, took_b) = (a.join().unwrap(), b.join().unwrap());
        got.sort_unstable();
        let want: Vec<u32> = [(took_a, 1), (took_b, 2)]
            .into_iter()
            .filter_map(|(took, v)| took.then_some(v))
            .collect();
        assert_eq!(got, want, "every accepted emit drained, no refused one");
        assert_eq!(consumer.pop(), None);
    });
}

/// `close` against a `DropOldest` emit into a full ring, whose `force_push` evicts: the
/// evicting path releases the in-flight counter only after it has moved `tail`, so the closing
/// writer's drain sees the claimed position and waits for it.
#[test]
fn close_excludes_late_evicting_pushes() {
    check(None, || {
        let (signal, ring) = setup();
        assert!(ring.try_push(1).is_ok() && ring.try_push(2).is_ok());
        let stripe = signal.stripe();
        let emitter = {
            let (signal, ring) = (signal.clone(), ring.clone());
            thread::spawn(move || {
                // `Emitter::emit` under `Overflow::DropOldest`.
                let state = signal.enter(stripe);
                if state & CLOSED != 0 {
                    signal.leave(stripe, 0);
                    return None;
                }
                let evicted = ring.force_push_releasing(3, signal.in_flight(stripe));
                signal.woke(state);
                Some(evicted)
            })
        };
        let mut consumer = ring.consumer().unwrap();
        signal.close();
        let mut got = Vec::new();
        drain_after_close(&mut consumer, &ring, &mut got);
        match emitter.join().unwrap() {
            Some(evicted) => {
                assert_eq!(evicted, Some(1), "the ring was full: 3 evicts the oldest");
                assert_eq!(got, [2, 3]);
                assert_eq!(consumer.evicted(), 1);
            }
            None => assert_eq!(got, [1, 2], "a refused emit pushed"),
        }
    });
}

/// A `Block` emitter on a full ring waits on `signal.space`; the writer pops one value and
/// notifies (as `Worker::take` does). The emitter must not sleep through the freed slot.
#[test]
fn blocked_emitter_sees_freed_space() {
    check(None, || {
        let (signal, ring) = setup();
        assert!(ring.try_push(1).is_ok() && ring.try_push(2).is_ok());
        let stripe = signal.stripe();
        let emitter = {
            let (signal, ring) = (signal.clone(), ring.clone());
            thread::spawn(move || {
                // `Emitter::block`'s wait, with `Emitter::attempt` as the condition.
                let mut slot = Some(3);
                signal.space.wait(None, || {
                    let v = slot.take()?;
                    let state = signal.enter(stripe);
                    assert_eq!(state & CLOSED, 0, "nobody closes in this model");
                    match ring.try_push_releasing(v, signal.in_flight(stripe)) {
                        Ok(()) => {
                            signal.woke(state);
                            Some(())
                        }
                        Err(full) => {
                            slot = Some(full.into_inner());
                            None
                        }
                    }
                })
            })
        };
        let mut consumer = ring.consumer().unwrap();
        assert_eq!(consumer.pop(), Some(1));
        signal.space.notify();
        assert_eq!(
            emitter.join().unwrap(),
            Some(()),
            "no deadline: waits until done"
        );
        let rest: Vec<u32> = consumer.drain().collect();
        assert_eq!(rest, [2, 3]);
    });
}

/// A flusher asks for position 1 and waits on `signal.flushed`; the writer (which has nothing
/// else to do) parks unless a flush is wanted, and publishes `done` when it sees the request.
/// Neither may sleep through the other: the writer must see the request (or be woken by it),
/// and the flusher must see `done` (or be notified).
#[test]
fn flush_request_wakes_parked_writer() {
    check(None, || {
        let signal = Arc::new(Signal::new(thread::current()));
        let flusher = {
            let signal = signal.clone();
            thread::spawn(move || {
                if Signal::reached(signal.done(), 1) {
                    return;
                }
                signal.request_flush(1);
                signal
                    .flushed
                    .wait(None, || Signal::reached(signal.done(), 1).then_some(()))
                    .expect("no deadline");
            })
        };
        let done = 0;
        loop {
            let target = signal.flush_target();
            if !Signal::reached(done, target) {
                // (The real writer writes and syncs up to `target` first.)
                signal.publish_done(target);
                break;
            }
            idle_step(&signal, || Signal::reached(done, signal.flush_target()));
        }
        flusher.join().unwrap();
        assert_eq!(signal.done(), 1);
        assert_eq!(signal.flush_target(), 1);
    });
}

/// `request_stop` racing the writer going to sleep: the writer checks `STOP` at the top of its
/// loop, and `prepare_sleep` refuses to park once the stop's RMW precedes its own; otherwise
/// the stopper sees `SLEEPING` and wakes it.
#[test]
fn stop_request_wakes_parked_writer() {
    check(None, || {
        let signal = Arc::new(Signal::new(thread::current()));
        let stopper = {
            let signal = signal.clone();
            thread::spawn(move || signal.request_stop())
        };
        while signal.state() & STOP == 0 {
            // Nothing else to do: the ring is empty and no flush is wanted.
            idle_step(&signal, || true);
        }
        stopper.join().unwrap();
    });
}

/// The whole shutdown: a stop request, an emit and the writer, which drains and parks until it
/// sees `STOP`, then closes and drains once more (`Worker::run`). Whatever the emitter was
/// told, it holds: an accepted value is in the writer's hands when it finishes, a refused one
/// never reaches the ring.
///
/// Bound: 4 preemptions (73,913 executions, 5 s here; 5 took 22 s, and unbounded it did not
/// finish in 15 minutes). Three threads with the writer's park/yield loop; the two-thread
/// models above cover each pair exhaustively.
#[test]
fn stop_then_close_keeps_every_accepted_emit() {
    check(Some(4), || {
        let (signal, ring) = setup();
        let emitter = spawn_emitter(&signal, &ring, 1);
        let stopper = {
            let signal = signal.clone();
            thread::spawn(move || signal.request_stop())
        };
        let mut consumer = ring.consumer().unwrap();
        let mut got: Vec<u32> = Vec::new();
        loop {
            if signal.state() & STOP != 0 {
                signal.close();
                drain_after_close(&mut consumer, &ring, &mut got);
                break;
            }
            got.extend(consumer.drain());
            idle_step(&signal, || ring.is_empty());
        }
        let accepted = emitter.join().unwrap();
        stopper.join().unwrap();
        assert_eq!(got, if accepted { &[1][..] } else { &[][..] });
        assert!(ring.is_empty());
    });
}

// ---- a polled writer (`Idle::Poll`, `Idle::Spin`) ----
//
// A polled writer never sets SLEEPING (emitters never wake it) and sleeps with
// `Signal::poll_sleep`, which under loom parks until unparked: the timer that would end it in
// real life is not modelled, so a model that terminates shows the explicit unpark arrived.

/// A polling writer's signal (the calling thread is the writer).
fn setup_polled() -> (Arc<Signal>, Arc<Ring2>) {
    (
        Arc::new(Signal::polled(thread::current())),
        Arc::new(Ring::new()),
    )
}

/// A flush racing the polled writer's sleep: the writer looks for a flush request and then
/// sleeps without announcing it; the flusher sets its target and unparks it unconditionally.
/// The writer must not sleep through the request, nor the flusher through `done`.
///
/// Mutation checked: `request_flush` unparking only on SLEEPING (as for a parking writer)
/// deadlocks this model (the writer parks forever with the request pending).
#[test]
fn polled_writer_serves_a_racing_flush() {
    check(None, || {
        let (signal, _) = setup_polled();
        let flusher = {
            let signal = signal.clone();
            thread::spawn(move || {
                signal.request_flush(1);
                signal
                    .flushed
                    .wait(None, || Signal::reached(signal.done(), 1).then_some(()))
                    .expect("no deadline");
            })
        };
        let done = 0;
        loop {
            let target = signal.flush_target();
            if !Signal::reached(done, target) {
                signal.publish_done(target);
                break;
            }
            signal.poll_sleep(std::time::Duration::from_secs(3600));
        }
        flusher.join().unwrap();
        assert_eq!(signal.done(), 1);
    });
}

/// An emit, then a flush of it, on one thread, racing the polled writer: the emit never wakes
/// it (its state never says SLEEPING), the flush does; the writer then takes the value and
/// reaches the flush target (waiting out the value if it sees the target first, as
/// `Worker::run` relaxes while a flush is wanted).
///
/// Mutation checked: as for the model above, `request_flush` unparking only on SLEEPING
/// deadlocks it.
#[test]
fn polled_writer_serves_an_emit_then_flush() {
    check(None, || {
        let (signal, ring) = setup_polled();
        let stripe = signal.stripe();
        let emitter = {
            let (signal, ring) = (signal.clone(), ring.clone());
            thread::spawn(move || {
                let state = signal.enter(stripe);
                assert_eq!(
                    state & ringwal::signal::SLEEPING,
                    0,
                    "a polled writer slept"
                );
                ring.try_push_releasing(1, signal.in_flight(stripe))
                    .expect("room");
                signal.woke(state);
                let target = ring.pushed();
                signal.request_flush(target);
                signal
                    .flushed
                    .wait(None, || {
                        Signal::reached(signal.done(), target).then_some(())
                    })
                    .expect("no deadline");
            })
        };
        let mut consumer = ring.consumer().unwrap();
        let mut got = Vec::new();
        loop {
            got.extend(consumer.drain());
            let target = signal.flush_target();
            if !Signal::reached(got.len(), target) {
                // Flush wanted, value not yet seen: look again (no sleep).
                thread::yield_now();
                continue;
            }
            if target == 1 {
                signal.publish_done(got.len());
                break;
            }
            signal.poll_sleep(std::time::Duration::from_secs(3600));
        }
        emitter.join().unwrap();
        assert_eq!(got, [1]);
    });
}

/// A stop racing the polled writer's sleep: `request_stop` unparks it unconditionally.
///
/// Mutation checked: `request_stop` unparking only when its RMW saw SLEEPING (as for a
/// parking writer) deadlocks this model.
#[test]
fn polled_writer_serves_a_racing_stop() {
    check(None, || {
        let (signal, _) = setup_polled();
        let stopper = {
            let signal = signal.clone();
            thread::spawn(move || signal.request_stop())
        };
        while signal.state() & STOP == 0 {
            signal.poll_sleep(std::time::Duration::from_secs(3600));
        }
        stopper.join().unwrap();
    });
}

/// A `Block` emitter on a ring that filled while the polled writer slept (nothing woke it):
/// the emitter, finding no room, nudges the writer (`Signal::nudge`) and waits on `space`; the
/// writer wakes, drains, notifies. The emitter's value then goes in; the writer's next timer
/// (not modelled: the model collects it after the join) would take it.
///
/// Mutation checked: `nudge` doing nothing for a polled writer deadlocks this model (the writer
/// sleeps on its timer, the emitter waits for space).
#[test]
fn polled_writer_serves_a_blocked_emitter() {
    check(None, || {
        let (signal, ring) = setup_polled();
        ring.try_push(1).unwrap();
        ring.try_push(2).unwrap();
        let stripe = signal.stripe();
        let emitter = {
            let (signal, ring) = (signal.clone(), ring.clone());
            thread::spawn(move || {
                let mut slot = Some(3);
                signal
                    .space
                    .wait(None, || {
                        let v = slot.take()?;
                        let state = signal.enter(stripe);
                        match ring.try_push_releasing(v, signal.in_flight(stripe)) {
                            Ok(()) => {
                                signal.woke(state);
                                Some(())
                            }
                            Err(full) => {
                                slot = Some(full.into_inner());
                                signal.nudge();
                                None
                            }
                        }
                    })
                    .expect("no deadline");
            })
        };
        let mut consumer = ring.consumer().unwrap();
        let mut got = Vec::new();
        // It was asleep when the ring filled.
        signal.poll_sleep(std::time::Duration::from_secs(3600));
        loop {
            let before = got.len();
            got.extend(consumer.drain());
            if got.len() > before {
                signal.space.notify();
            }
            if got.len() >= 2 {
                break;
            }
            signal.poll_sleep(std::time::Duration::from_secs(3600));
        }
        emitter.join().unwrap();
        got.extend(consumer.drain());
        assert_eq!(got, [1, 2, 3]);
    });
}
