//! loom models of the std writer's handshakes (`ringwal::signal`): the writer parking against
//! racing emits, `close` against late emits, a `Block` emitter against the writer freeing
//! space, and a flush or stop request against the writer parking; and a polled writer
//! (`Idle::Poll`/`Spin`, never SLEEPING) against a flush, a stop and a blocked emitter, each
//! of which must unpark it itself. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release --test writer`.
//!
//! Each model drives `Signal` exactly as `std-writer/src/writer/` does (`Emitter::emit`,
//! `Emitter::attempt`/`block`, `Emitter::refuse`, `Emitter::flush_until`, `Worker::run`), with
//! a real (loom-instrumented) heap ring, the writer's, where the writer checks the ring. The
//! release build pairs the emitter's SeqCst claim and state load with the writer's SeqCst
//! accesses; under loom, which does not model the total order of SeqCst accesses, the same
//! code has a SeqCst fence after each side's first access (`std-writer/src/signal.rs`,
//! "Under loom"), which the models exercise. The writer is the model's main
//! thread, so `Signal::new(thread::current())` unparks the right thread. Under loom, parking
//! has no timeout (`sync::park`), so a lost wake-up leaves the writer (or a waiter) parked
//! forever and loom reports a deadlock: "terminates" is itself the main assertion.
//!
//! Unless a model says otherwise it runs with no preemption bound (loom's default: exhaustive).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use ringwal::signal::{Signal, STOP};
use ringwal_core::{channel, evicting_channel, Evict, Producer, PushError, Receiver};
use ringwal_loom_tests::check;

/// The writer's signal (the calling thread is the writer) and a ring of 2 (the heap ring the
/// writer uses: `Overflow::Reject` and `Block` get this one), its producer shared.
fn setup() -> (Arc<Signal>, Arc<Producer<u32>>, Receiver<u32>) {
    let (tx, rx) = channel(2);
    (Arc::new(Signal::new(thread::current())), Arc::new(tx), rx)
}

/// `Emitter::emit` under `Overflow::Reject`, minus the counters it does not touch: the push
/// (a SeqCst claim), then `Signal::pushed` (wake a parked writer); a refusal is counted and
/// re-checks the close. Returns whether the ring took `v`.
fn emit(signal: &Signal, tx: &Producer<u32>, stripe: usize, v: u32) -> bool {
    match tx.try_push_checked(v) {
        Ok(()) => {
            signal.pushed();
            true
        }
        Err(PushError::Full(_) | PushError::Closed(_)) => {
            signal.count_refusal(stripe, || tx.is_closed());
            false
        }
    }
}

/// The closing writer (`Worker::run` after `Shared::close`): close, then take values until its
/// position reaches the final one `close` returned; a position claimed just before may still be
/// being published, so yield and look again.
fn close_and_drain<M: ringwal_core::Mode>(
    signal: &Signal,
    tx: &Producer<u32, M>,
    rx: &mut Receiver<u32, M>,
    got: &mut Vec<u32>,
) -> usize {
    let end = signal.close(|| tx.close());
    loop {
        got.extend(rx.drain());
        if rx.position() == end {
            return end;
        }
        thread::yield_now();
    }
}

/// An emitter thread with its own stripe (`Emitter::new` takes one on the thread that makes
/// the handle).
fn spawn_emitter(
    signal: &Arc<Signal>,
    tx: &Arc<Producer<u32>>,
    v: u32,
) -> thread::JoinHandle<bool> {
    let stripe = signal.stripe();
    let (signal, tx) = (signal.clone(), tx.clone());
    thread::spawn(move || emit(&signal, &tx, stripe, v))
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

/// The writer's check for work before parking (`Worker::run`): nothing claimed past its
/// position, read with SeqCst.
fn nothing_claimed(tx: &Producer<u32>, rx: &Receiver<u32>) -> bool {
    tx.pushed_seqcst() == rx.position()
}

/// The writer drains the ring and parks when it finds nothing claimed, until it has `want`
/// values.
fn writer_collects(
    signal: &Signal,
    tx: &Producer<u32>,
    rx: &mut Receiver<u32>,
    want: usize,
) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        got.extend(rx.drain());
        if got.len() == want {
            return got;
        }
        idle_step(signal, || nothing_claimed(tx, rx));
    }
}

/// One emit racing the writer going to sleep: the writer either sees the claim before it parks
/// or is woken by the emitter, never parked forever with the value in the ring.
///
/// Mutations that fail it (a deadlock: the writer parked with the value in the ring): the
/// fence after the emitter's SeqCst claim removed (what loom models of the SeqCst claim and
/// state load, `raw.rs`); the fence in `prepare_sleep` removed; `Signal::pushed` loading the
/// state before the push.
#[test]
fn parked_writer_sees_racing_push() {
    check(None, || {
        let (signal, tx, mut rx) = setup();
        let emitter = spawn_emitter(&signal, &tx, 1);
        let got = writer_collects(&signal, &tx, &mut rx, 1);
        assert!(emitter.join().unwrap(), "an empty ring of 2 took the value");
        assert_eq!(got, [1]);
    });
}

/// Two emits racing the writer, which may park, wake for one value and park again before the
/// second.
///
/// Bound: 3 preemptions (three threads and the writer's park/yield loop; the one-emitter model
/// above is exhaustive). Mutation that fails it at this bound: the fence after the emitter's
/// claim removed (a deadlock).
#[test]
fn parked_writer_sees_two_racing_pushes() {
    check(Some(3), || {
        let (signal, tx, mut rx) = setup();
        let a = spawn_emitter(&signal, &tx, 1);
        let b = spawn_emitter(&signal, &tx, 2);
        let mut got = writer_collects(&signal, &tx, &mut rx, 2);
        assert!(a.join().unwrap() && b.join().unwrap(), "room for both");
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

/// An emit racing `close`: the final position counts the emit exactly when it was accepted;
/// an accepted value is in the writer's drain after the close, a refused one never reaches the
/// ring.
///
/// Mutation that fails it: claims that ignore the closed flag (a `fetch_add` on `tail` instead of
/// the compare-and-swap): `end` misses the accepted emit.
#[test]
fn close_excludes_late_pushes() {
    check(None, || {
        let (signal, tx, mut rx) = setup();
        let emitter = spawn_emitter(&signal, &tx, 1);
        let mut got = Vec::new();
        let end = close_and_drain(&signal, &tx, &mut rx, &mut got);
        let accepted = emitter.join().unwrap();
        assert_eq!(end, accepted as usize);
        assert_eq!(got, if accepted { vec![1] } else { vec![] });
        assert_eq!(rx.pop(), None, "a push after close");
    });
}

/// Two emits racing `close`: every accepted one drained (they may publish out of order; the
/// drain waits for both), no refused one in the ring.
///
/// Bound: 3 preemptions (three threads). Mutation that fails it: claims that ignore the closed
/// flag (the drain and the late claim race on a slot: a causality violation).
#[test]
fn close_excludes_late_pushes_from_two_emitters() {
    check(Some(3), || {
        let (signal, tx, mut rx) = setup();
        let a = spawn_emitter(&signal, &tx, 1);
        let b = spawn_emitter(&signal, &tx, 2);
        let mut got = Vec::new();
        let end = close_and_drain(&signal, &tx, &mut rx, &mut got);
        let (took_a, took_b) = (a.join().unwrap(), b.join().unwrap());
        got.sort_unstable();
        let want: Vec<u32> = [(took_a, 1), (took_b, 2)]
            .into_iter()
            .filter_map(|(took, v)| took.then_some(v))
            .collect();
        assert_eq!(end, want.len());
        assert_eq!(got, want, "every accepted emit drained, no refused one");
        assert_eq!(rx.pop(), None);
    });
}

/// A refusal racing `close` (an emit that finds the ring full while the writer closes): if the
/// emit reports `Full` (not `Closed`), the closing writer's count of refusals includes it, so the
/// log accounts for it (its trailing gap marker); if the writer's count misses it, the emit
/// reports `Closed`.
///
/// Mutations that fail it ("a Full refusal the closing writer did not count"): the fence after
/// the refusal count removed (`Signal::count_refusal`); or the close side's fences removed —
/// the one `Raw::close` has under loom and those of the notifications that follow it in
/// `Signal::close` (either alone is enough, so only removing both fails the model). These are
/// what loom models of the SeqCst accesses on both sides.
#[test]
fn a_refusal_before_close_is_counted_by_the_closing_writer() {
    check(None, || {
        let (signal, tx, mut rx) = setup();
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        let stripe = signal.stripe();
        let emitter = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || {
                // `Emitter::emit` + `refuse` under `Overflow::Reject`: the ring is full.
                match tx.try_push_checked(3) {
                    Ok(()) => unreachable!("nobody frees a slot in this model"),
                    Err(PushError::Full(_)) => {
                        // Reported as `Full` unless the re-check sees the close.
                        !signal.count_refusal(stripe, || tx.is_closed())
                    }
                    Err(PushError::Closed(_)) => {
                        signal.count_refusal(stripe, || tx.is_closed());
                        false
                    }
                }
            })
        };
        let mut got = Vec::new();
        close_and_drain(&signal, &tx, &mut rx, &mut got);
        let counted = signal.refusals();
        let reported_full = emitter.join().unwrap();
        if reported_full {
            assert_eq!(
                counted, 1,
                "a Full refusal the closing writer did not count"
            );
        }
        assert_eq!(got, [1, 2]);
    });
}

/// `close` against a `DropOldest` emit into a full ring, whose `force_push_checked` evicts: an
/// accepted push is in the final position and in the drain, the oldest evicted (unless the
/// drain took it first); a refused one changed nothing.
///
/// Mutation that fails it: claims that ignore the closed flag (`end` misses the accepted emit).
#[test]
fn close_excludes_late_evicting_pushes() {
    check(None, || {
        let signal = Arc::new(Signal::new(thread::current()));
        let (tx, mut rx) = evicting_channel::<u32>(2);
        let tx: Arc<Producer<u32, Evict>> = Arc::new(tx);
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        let stripe = signal.stripe();
        let emitter = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || {
                // `Emitter::emit` under `Overflow::DropOldest`.
                match tx.force_push_checked(3) {
                    Ok(evicted) => {
                        signal.pushed();
                        Some(evicted)
                    }
                    Err(_) => {
                        signal.count_refusal(stripe, || tx.is_closed());
                        None
                    }
                }
            })
        };
        let mut got = Vec::new();
        let end = close_and_drain(&signal, &tx, &mut rx, &mut got);
        match emitter.join().unwrap() {
            Some(Some(evicted)) => {
                assert_eq!(end, 3);
                assert_eq!(evicted, 1, "the ring was full: 3 evicts the oldest");
                assert_eq!(got, [2, 3]);
                assert_eq!(rx.evicted(), 1);
            }
            Some(None) => {
                // The writer's drain claimed 1 before the emit could evict it.
                assert_eq!(end, 3);
                assert_eq!(got, [1, 2, 3]);
                assert_eq!(rx.evicted(), 0);
            }
            None => {
                assert_eq!(end, 2);
                assert_eq!(got, [1, 2], "a refused emit pushed");
            }
        }
    });
}

/// A `Block` emitter on a full ring waits on `signal.space`; the writer pops one value and
/// notifies (as `Worker::take` does). The emitter must not sleep through the freed slot.
///
/// Mutation that fails it: `Waiters::wait` without its fence (the emitter sleeps through the
/// notification: a deadlock).
#[test]
fn blocked_emitter_sees_freed_space() {
    check(None, || {
        let (signal, tx, mut rx) = setup();
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        let emitter = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || {
                // `Emitter::block`'s wait, with `Emitter::attempt` as the condition.
                let mut slot = Some(3);
                signal.space.wait(None, || {
                    let v = slot.take()?;
                    match tx.try_push_checked(v) {
                        Ok(()) => {
                            signal.pushed();
                            Some(())
                        }
                        Err(PushError::Full(v)) => {
                            slot = Some(v);
                            None
                        }
                        Err(PushError::Closed(_)) => unreachable!("nobody closes here"),
                    }
                })
            })
        };
        assert_eq!(rx.pop(), Some(1));
        signal.space.notify();
        assert_eq!(
            emitter.join().unwrap(),
            Some(()),
            "no deadline: waits until done"
        );
        let rest: Vec<u32> = rx.drain().collect();
        assert_eq!(rest, [2, 3]);
    });
}

/// A flusher asks for position 1 and waits on `signal.flushed`; the writer (which has nothing
/// else to do) parks unless a flush is wanted, and publishes `done` when it sees the request.
/// Neither may sleep through the other: the writer must see the request (or be woken by it),
/// and the flusher must see `done` (or be notified).
///
/// Mutation that fails it: `request_flush` without its fence (the writer parks with the request
/// pending: a deadlock).
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
///
/// Mutation that fails it: `request_stop` never waking a parked writer (a deadlock).
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
/// Bound: 4 preemptions (three threads with the writer's park/yield loop; the two-thread
/// models above cover each pair exhaustively). Mutation that fails it: claims that ignore the
/// closed flag (an accepted emit missing from the drain). (Removing the fence after the
/// emitter's claim is not caught here, rightly: the stopper's own wake unparks the writer.)
#[test]
fn stop_then_close_keeps_every_accepted_emit() {
    check(Some(4), || {
        let (signal, tx, mut rx) = setup();
        let emitter = spawn_emitter(&signal, &tx, 1);
        let stopper = {
            let signal = signal.clone();
            thread::spawn(move || signal.request_stop())
        };
        let mut got: Vec<u32> = Vec::new();
        loop {
            if signal.state() & STOP != 0 {
                close_and_drain(&signal, &tx, &mut rx, &mut got);
                break;
            }
            got.extend(rx.drain());
            idle_step(&signal, || nothing_claimed(&tx, &rx));
        }
        let accepted = emitter.join().unwrap();
        stopper.join().unwrap();
        assert_eq!(got, if accepted { &[1][..] } else { &[][..] });
        assert_eq!(rx.pop(), None);
    });
}

// ---- a polled writer (`Idle::Poll`, `Idle::Spin`) ----
//
// A polled writer never sets SLEEPING (emitters never wake it) and sleeps with
// `Signal::poll_sleep`, which under loom parks until unparked: the timer that would end it in
// real life is not modelled, so a model that terminates shows the explicit unpark arrived.

/// A polling writer's signal (the calling thread is the writer), and a ring of 2.
fn setup_polled() -> (Arc<Signal>, Arc<Producer<u32>>, Receiver<u32>) {
    let (tx, rx) = channel(2);
    (
        Arc::new(Signal::polled(thread::current())),
        Arc::new(tx),
        rx,
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
        let (signal, _, _) = setup_polled();
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
        let (signal, tx, mut rx) = setup_polled();
        let emitter = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || {
                tx.try_push_checked(1).expect("room");
                // A polled writer is never woken by an emit.
                signal.pushed();
                let target = tx.pushed();
                signal.request_flush(target);
                signal
                    .flushed
                    .wait(None, || {
                        Signal::reached(signal.done(), target).then_some(())
                    })
                    .expect("no deadline");
            })
        };
        let mut got = Vec::new();
        loop {
            got.extend(rx.drain());
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
        let (signal, _, _) = setup_polled();
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
        let (signal, tx, mut rx) = setup_polled();
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        let emitter = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || {
                let mut slot = Some(3);
                signal
                    .space
                    .wait(None, || {
                        let v = slot.take()?;
                        match tx.try_push_checked(v) {
                            Ok(()) => {
                                signal.pushed();
                                Some(())
                            }
                            Err(e) => {
                                slot = Some(e.into_inner());
                                signal.nudge();
                                None
                            }
                        }
                    })
                    .expect("no deadline");
            })
        };
        let mut got = Vec::new();
        // It was asleep when the ring filled.
        signal.poll_sleep(std::time::Duration::from_secs(3600));
        loop {
            let before = got.len();
            got.extend(rx.drain());
            if got.len() > before {
                signal.space.notify();
            }
            if got.len() >= 2 {
                break;
            }
            signal.poll_sleep(std::time::Duration::from_secs(3600));
        }
        emitter.join().unwrap();
        got.extend(rx.drain());
        assert_eq!(got, [1, 2, 3]);
    });
}
