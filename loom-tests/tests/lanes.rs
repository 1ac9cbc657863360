//! loom models of `ringwal_core::Lanes`: the two hand-offs it adds to the solo-producer ring —
//! a lane passing from one producer handle to the next, and the consumer side passing from one
//! `LanesConsumer` to the next. (The pushes and pops inside a lane are the split ring's,
//! modelled in `ring.rs`.) Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release --test lanes`.
//!
//! Each model names a mutation of `core/src/lanes.rs` that makes it fail (run, seen failing,
//! reverted).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

use ringwal_core::{Lanes, TryPopError};
use ringwal_loom_tests::{check, look_twice_never_pending};

/// Two threads each take the only lane once if it is free (no waiting), push one value and
/// drop the handle, while the consumer drains; a lane of 2 slots, so both values fit. Every
/// accepted value comes out exactly once, and never two handles at once.
///
/// Exhaustive (no preemption bound).
///
/// Mutations that fail it: the handle's drop storing `owned` Relaxed, or the claim's
/// compare-and-swap Acquire weakened to Relaxed (the second owner starts from a `tail` that
/// does not show the first owner's push and writes the same slot: a causality violation on
/// the slot, or a value lost).
#[test]
fn a_lane_changes_hands() {
    check(None, || {
        let lanes: Arc<Lanes<u32, 2, 1>> = Arc::new(Lanes::new());
        let inside = Arc::new(AtomicBool::new(false));
        let spawn = |v: u32| {
            let lanes = lanes.clone();
            let inside = inside.clone();
            thread::spawn(move || {
                let mut tx = lanes.producer()?;
                // Relaxed: the swap's atomicity detects two owners at once.
                assert!(
                    !inside.swap(true, Ordering::Relaxed),
                    "two owners of a lane"
                );
                let pushed = tx.try_push(v).is_ok();
                inside.store(false, Ordering::Relaxed);
                drop(tx);
                Some(pushed)
            })
        };
        let a = spawn(1);
        let b = spawn(2);
        let mut rx = lanes.consumer().unwrap();
        let mut got: Vec<u32> = rx.drain().collect();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        got.extend(rx.drain());
        assert!(a.is_some() || b.is_some(), "nobody got the free lane");
        // Two slots and at most two values: no push is refused.
        assert_ne!(a, Some(false), "a push into a lane with room was refused");
        assert_ne!(b, Some(false), "a push into a lane with room was refused");
        got.sort_unstable();
        let sent: Vec<u32> = [(1, a), (2, b)]
            .into_iter()
            .filter(|(_, took)| took.is_some())
            .map(|(v, _)| v)
            .collect();
        assert_eq!(got, sent, "every accepted value exactly once");
    });
}

/// The consumer side changes hands: two threads race to claim the consumer, each taking one
/// value if it gets it and dropping it (the second may claim it right as the first drops it);
/// then the main thread takes the rest. Every value exactly once, in order (one lane of two
/// values; the other lane stays empty and is stepped over). And never two consumers at once.
///
/// Exhaustive (no preemption bound).
///
/// Mutation that fails it: the `LanesConsumer` drop releasing the consumer flag before the
/// lanes' own consumer claims (the next consumer's claim of a lane fails: a panic). Not
/// caught by loom, argued instead: the flag's store and claim weakened to Relaxed (loom's
/// compare-and-swaps always read the latest value, so a lane claim never sees a stale
/// "claimed"; the C++ model allows it without the Release/Acquire edge, and the cursors' own
/// edge is each lane's claim, modelled in `ring.rs`'s `consumer_claim_race`).
#[test]
fn the_consumer_changes_hands() {
    check(None, || {
        let lanes: Arc<Lanes<u32, 2, 2>> = Arc::new(Lanes::new());
        {
            let mut tx = lanes.producer().unwrap();
            tx.try_push(1).unwrap();
            tx.try_push(2).unwrap();
        }
        let inside = Arc::new(AtomicBool::new(false));
        let spawn = || {
            let lanes = lanes.clone();
            let inside = inside.clone();
            thread::spawn(move || {
                let mut rx = lanes.consumer()?;
                // Relaxed: the swap's atomicity detects two consumers at once.
                assert!(
                    !inside.swap(true, Ordering::Relaxed),
                    "two consumers at once"
                );
                let v = rx.try_pop().ok();
                inside.store(false, Ordering::Relaxed);
                drop(rx);
                Some(v)
            })
        };
        let a = spawn();
        let b = spawn();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a.is_some() || b.is_some(), "nobody got the consumer");
        let taken: Vec<u32> = [a, b].into_iter().flatten().flatten().collect();
        let mut rx = lanes.consumer().expect("free after both dropped");
        let rest: Vec<u32> = rx.drain().collect();
        let mut all: Vec<u32> = taken.iter().chain(&rest).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2], "every value exactly once");
        assert_eq!(
            rest,
            [1, 2][taken.len()..],
            "the next consumer continues in order"
        );
    });
}

/// The consumer against a producer mid-push: `try_pop` and `pop` see the value or nothing,
/// never `Pending` (a lane's producer is a solo one: its push takes effect when it is
/// published, and nothing but its own later pushes waits behind it); once the push
/// happened-before a look (the producer's flag, stored Release after the push and read Acquire
/// before the look), that look sees the value. Then the value has come out exactly once.
///
/// Exhaustive (no preemption bound).
///
/// Mutations that fail it: `try_pop` reading the lanes' producer counters again and saying
/// `Pending` for a claimed, unpublished position, as it did before (M20d: "never Pending"); the
/// publish store of a slot's stamp Relaxed (M20e, `write_and_publish`: the look after the flag
/// may read the value unwritten, a causality violation, or miss it).
#[test]
fn a_push_is_seen_once_it_happened_before_and_never_pending() {
    check(None, || {
        let lanes: Arc<Lanes<u32, 2, 2>> = Arc::new(Lanes::new());
        let pushed = Arc::new(AtomicBool::new(false));
        let producer = {
            let (lanes, pushed) = (lanes.clone(), pushed.clone());
            thread::spawn(move || {
                let mut tx = lanes.producer().unwrap();
                tx.try_push(7).unwrap();
                // Release pairs with the consumer's Acquire loads below.
                pushed.store(true, Ordering::Release);
            })
        };
        let mut rx = lanes.consumer().unwrap();
        let mut got = look_twice_never_pending(&mut rx, &pushed, |rx| rx.try_pop(), |rx| rx.pop());
        producer.join().unwrap();
        got.extend(rx.drain());
        assert_eq!(got, [7], "the value exactly once");
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    });
}
