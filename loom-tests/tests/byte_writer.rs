//! loom models of a byte writer's handshakes (`ringwal::signal` with the byte ring of
//! `Builder::start_bytes`): the writer parking against a racing reservation, `close` against
//! a committed and a discarded reservation, and a refusal racing `close`. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release --test byte_writer`.
//!
//! Each model drives `Signal` and a real (loom-instrumented) heap byte ring exactly as
//! `std-writer/src/writer/` does for a byte writer (`ByteEmitter::emit`/`emit_with`: a
//! `try_reserve_checked` whose claim is a `SeqCst` compare-and-swap, the record written and
//! committed, then `Signal::pushed`; `ByteEmitter::refuse`: `Signal::count_refusal` with the
//! ring's `SeqCst` `is_closed`; `Worker::run`: `read_batch` until nothing is ready, the idle
//! check `reserved_seqcst() == position` inside `Signal::prepare_sleep`, and at shutdown
//! `Signal::close` with the ring's close and a drain until the position reaches the final
//! one). Under loom, which does not model the total order of `SeqCst` accesses, the same code
//! has a `SeqCst` fence after each side's first access (`std-writer/src/signal.rs`, "Under
//! loom"). The writer is the model's main thread. Parking has no timeout under loom, so a lost
//! wake-up is a deadlock loom reports: "terminates" is itself an assertion.
//!
//! Each model's doc names the mutation that made it fail (run, seen failing, restored).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use ringwal::signal::{Signal, STOP};
use ringwal_core::{byte_channel, ByteProducer, ByteReceiver, ReserveError};
use ringwal_loom_tests::check;

/// The writer's signal (the calling thread is the writer) and a byte ring of 64 bytes (8
/// granules, records of at most 24 bytes), its producer shared.
fn setup() -> (Arc<Signal>, Arc<ByteProducer>, ByteReceiver) {
    let (tx, rx) = byte_channel(64);
    (Arc::new(Signal::new(thread::current())), Arc::new(tx), rx)
}

/// `ByteEmitter::emit_with` under `Overflow::Reject`: reserve (a SeqCst claim), write the
/// record in place, commit it (or, with `commit == false`, drop the grant: what a panicking
/// closure does), then `Signal::pushed`; a refusal is counted and re-checks the close.
/// Returns whether the ring granted the reservation.
fn emit_with(signal: &Signal, tx: &ByteProducer, stripe: usize, v: u8, commit: bool) -> bool {
    match tx.try_reserve_checked(8) {
        Ok(mut grant) => {
            grant.fill(v);
            if commit {
                grant.commit();
                signal.pushed();
            } else {
                drop(grant);
                signal.count_refusal(stripe, || tx.is_closed());
            }
            true
        }
        Err(_) => {
            signal.count_refusal(stripe, || tx.is_closed());
            false
        }
    }
}

fn spawn_emitter(
    signal: &Arc<Signal>,
    tx: &Arc<ByteProducer>,
    v: u8,
    commit: bool,
) -> thread::JoinHandle<bool> {
    let stripe = signal.stripe();
    let (signal, tx) = (signal.clone(), tx.clone());
    thread::spawn(move || emit_with(&signal, &tx, stripe, v, commit))
}

/// The writer's drain (`Source::take` for the byte ring): batches until nothing is ready.
fn take(rx: &mut ByteReceiver, got: &mut Vec<Vec<u8>>) {
    while let Ok(batch) = rx.read_batch(usize::MAX) {
        got.extend(batch.iter().map(<[u8]>::to_vec));
    }
}

/// The writer's idle step: announce sleep, check for work (nothing reserved past its
/// position, read with SeqCst), park if there is none; otherwise yield and look again.
fn idle_step(signal: &Signal, tx: &ByteProducer, rx: &ByteReceiver) {
    let position = rx.position();
    if signal.prepare_sleep(|| tx.reserved_seqcst() == position) {
        signal.sleep(None);
    } else {
        thread::yield_now();
    }
}

/// The closing writer: `Signal::close` with the ring's close, then drain until the position
/// reaches the final one (a reservation made before the close may still be being written).
fn close_and_drain(
    signal: &Signal,
    tx: &ByteProducer,
    rx: &mut ByteReceiver,
    got: &mut Vec<Vec<u8>>,
) -> usize {
    let end = signal.close(|| tx.close());
    loop {
        take(rx, got);
        if rx.position() == end {
            return end;
        }
        thread::yield_now();
    }
}

/// One `emit_with` racing the writer going to sleep: the writer either sees the reservation
/// before it parks (and waits for the record to be committed) or is woken by the emitter
/// after the commit; it never parks for good with a record in the ring.
///
/// Exhaustive (1,249 executions, 0.2 s here). Mutations that fail it (loom: "deadlock", the
/// writer parked with the record in the ring; `loom-tests/mutations.py` B4, B5): the fence
/// after the byte ring's SeqCst claim removed (`bytes/raw.rs`, what loom models of the SeqCst
/// claim); the model's emit without `Signal::pushed` after the commit.
#[test]
fn parked_writer_sees_a_racing_reservation() {
    check(None, || {
        let (signal, tx, mut rx) = setup();
        let emitter = spawn_emitter(&signal, &tx, 1, true);
        let mut got = Vec::new();
        loop {
            take(&mut rx, &mut got);
            if !got.is_empty() {
                break;
            }
            idle_step(&signal, &tx, &rx);
        }
        assert!(
            emitter.join().unwrap(),
            "an empty ring granted the reservation"
        );
        assert_eq!(got, [vec![1; 8]]);
    });
}

/// Two emits racing the writer, which may park, wake for one record and park again before
/// the second, and may find the second committed while the first (reserved first) is still
/// being written.
///
/// Bound: 2 preemptions (9,806 executions, 1.2 s here; at 3: 139,633 in 16 s, over a few
/// seconds' budget; the model above is exhaustive). At this bound it still fails (deadlock)
/// under the first mutation listed there (B4b).
#[test]
fn parked_writer_sees_two_racing_reservations() {
    check(Some(2), || {
        let (signal, tx, mut rx) = setup();
        let a = spawn_emitter(&signal, &tx, 1, true);
        let b = spawn_emitter(&signal, &tx, 2, true);
        let mut got = Vec::new();
        while got.len() < 2 {
            take(&mut rx, &mut got);
            if got.len() < 2 {
                idle_step(&signal, &tx, &rx);
            }
        }
        assert!(a.join().unwrap() && b.join().unwrap(), "room for both");
        got.sort();
        assert_eq!(got, [vec![1; 8], vec![2; 8]]);
    });
}

/// A committed and a discarded reservation racing `close`: the final position counts exactly
/// the granted reservations; the closing writer's drain reaches it (stepping over the
/// discarded space), gets the committed record if it was granted, never the discarded one.
///
/// Bound: 3 preemptions (13,030 executions, 2.4 s here). Mutation that fails it (B1b): the
/// byte ring's claim made with a `fetch_add` instead of the compare-and-swap (a claim that ignores
/// the closed flag lands after the close: "the final position"). (A plain store of the
/// advanced tail fails it too, earlier, as a data race between the two emitters.)
#[test]
fn close_keeps_a_committed_and_skips_a_discarded_reservation() {
    check(Some(3), || {
        let (signal, tx, mut rx) = setup();
        let a = spawn_emitter(&signal, &tx, 1, true);
        let b = spawn_emitter(&signal, &tx, 2, false);
        let mut got = Vec::new();
        let end = close_and_drain(&signal, &tx, &mut rx, &mut got);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(
            end,
            2 * (usize::from(a) + usize::from(b)),
            "the final position"
        );
        assert_eq!(got, if a { vec![vec![1; 8]] } else { vec![] });
        assert_eq!(tx.reserved(), end, "nothing reserved after the close");
    });
}

/// A refusal racing `close` (an emit that finds the ring full while the writer closes): if
/// the emit reports `Full` (not `Closed`), the closing writer's count of refusals includes
/// it, so the log accounts for it; if the count misses it, the emit reports `Closed`.
///
/// Exhaustive (742 executions, 0.1 s here). Mutation that fails it ("a Full refusal the
/// closing writer did not count"; M12b): the fence after the refusal count removed
/// (`Signal::count_refusal`, what loom models of the emitter's SeqCst RMW). On the writer's
/// side, removing the fence after the byte ring's close (`bytes/raw.rs`) still passes:
/// `Signal::close` then notifies the waiters, whose `notify` begins with a SeqCst fence (in
/// the release build the SeqCst `fetch_or` itself is the order).
#[test]
fn a_byte_refusal_before_close_is_counted_by_the_closing_writer() {
    check(None, || {
        let (signal, tx, mut rx) = setup();
        tx.try_push(&[1; 24]).unwrap();
        tx.try_push(&[2; 24]).unwrap();
        let stripe = signal.stripe();
        let emitter = {
            let (signal, tx) = (signal.clone(), tx.clone());
            thread::spawn(move || match tx.try_reserve_checked(0) {
                Ok(_) => unreachable!("nobody frees space in this model"),
                // `ByteEmitter::refuse`: reported as `Full` unless the re-check sees the close.
                Err(ReserveError::Full) => !signal.count_refusal(stripe, || tx.is_closed()),
                Err(_) => {
                    signal.count_refusal(stripe, || tx.is_closed());
                    false
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
        assert_eq!(got, [vec![1; 24], vec![2; 24]]);
    });
}

/// The whole shutdown: a stop request, an `emit_with` and the writer, which drains and parks
/// until it sees `STOP`, then closes and drains until the final position. Whatever the emitter
/// was told holds: a granted record is in the writer's hands when it finishes, a refused one
/// never reaches the ring.
///
/// Bound: 3 preemptions (25,813 executions, 4.6 s here; three threads with the writer's
/// park/yield loop). Fails under the `fetch_add` claim mutation above (B1c: a record granted
/// after the close is not drained).
#[test]
fn stop_then_close_keeps_every_granted_record() {
    check(Some(3), || {
        let (signal, tx, mut rx) = setup();
        let emitter = spawn_emitter(&signal, &tx, 1, true);
        let stopper = {
            let signal = signal.clone();
            thread::spawn(move || signal.request_stop())
        };
        let mut got = Vec::new();
        loop {
            if signal.state() & STOP != 0 {
                close_and_drain(&signal, &tx, &mut rx, &mut got);
                break;
            }
            take(&mut rx, &mut got);
            idle_step(&signal, &tx, &rx);
        }
        let granted = emitter.join().unwrap();
        stopper.join().unwrap();
        assert_eq!(got, if granted { vec![vec![1; 8]] } else { vec![] });
    });
}
