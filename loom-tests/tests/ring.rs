//! loom models of `ringwal_core`'s ring, in both modes (`Ring`, whose consumer takes with plain
//! loads and stores, and `EvictingRing`, whose consumer claims runs by compare-and-swap against
//! `force_push`), its solo producer and the heap channel's close: every interleaving and every
//! weak-memory outcome loom can produce, for small rings. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release --test ring`.
//!
//! Unless a model says otherwise it runs with no preemption bound (loom's default: exhaustive).
//!
//! Each model names a mutation of `core/src/raw.rs` that makes it fail (run, seen failing,
//! reverted): the models are not vacuous. loom reports a weakened ordering as a causality
//! violation (a value read through an `UnsafeCell` without a happens-before edge to its
//! write), a wrong claim as a failed assertion or a double drop (`Track`).
#![cfg(loom)]

use loom::alloc::Track;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use ringwal_core::{
    channel, evicting_channel, position_diff, EvictingRing, PushError, Ring, TryPopError,
};
use ringwal_loom_tests::{check, look_twice_never_pending};

/// Two producers and the consumer on N = 2, across a lap and across the `usize::MAX` wrap of
/// the counters: every value delivered exactly once, each producer's values in order.
///
/// No thread spin-waits (that would multiply the paths without adding behaviours): producers
/// try each push once and keep what was rejected, the consumer pops three times (each may find
/// nothing), and what is left is drained after the joins. Every value must be in exactly one of
/// popped / rejected / left, and B's accepted values must come out in B's order.
///
/// Bound: 3 preemptions (three threads: unbounded it does not finish in the CI budget; every
/// two-thread pairing of these operations is exhaustive in the models below).
///
/// Mutations that fail it: the consumer's `freed` store Relaxed (`pop_ready`: a producer's
/// write of the next lap races the consumer's read, a causality violation); the producers'
/// `limit` store or load Relaxed (a producer writes a slot on the strength of a bound another
/// producer refreshed, with no edge to the consumer's read: causality violation); the
/// producer's stamp store Relaxed (the consumer reads an unwritten value).
#[test]
fn two_producers_and_consumer_n2_wrap() {
    check(Some(3), || {
        // Counters start two steps before the wrap of the positions: a third push lands past
        // it, in the second lap of the two slots.
        let ring: Arc<Ring<u32, 2>> = Arc::new(Ring::new_at(usize::MAX - 1));
        let try_all = |values: &'static [u32]| {
            let ring = ring.clone();
            thread::spawn(move || {
                values
                    .iter()
                    .filter_map(|&v| ring.try_push(v).err().map(|f| f.into_inner()))
                    .collect::<Vec<u32>>()
            })
        };
        let a = try_all(&[10]);
        let b = try_all(&[20, 21]);
        let mut c = ring.consumer().unwrap();
        let mut got: Vec<u32> = (0..3).filter_map(|_| c.drain().next()).collect();
        let mut rejected = a.join().unwrap();
        rejected.extend(b.join().unwrap());
        got.extend(c.drain());
        assert_eq!(c.pop(), None);
        assert!(
            rejected.len() <= 1,
            "at most one push can meet a full ring: {rejected:?}"
        );
        let mut all: Vec<u32> = got.iter().chain(&rejected).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [10, 20, 21], "exactly once");
        let b_order: Vec<u32> = got.iter().copied().filter(|v| *v >= 20).collect();
        assert!(
            b_order.windows(2).all(|w| w[0] < w[1]),
            "per-producer order: {got:?}"
        );
        assert_eq!(c.evicted(), 0);
    });
}

/// `try_push` on a full ring racing a `pop`: either it fits (after the pop freed a slot) or it
/// returns the very value it was given; nothing else changes.
///
/// Mutation that fails it: the consumer's `freed` store Relaxed (`pop_ready`): the push's write
/// races the pop's read, a causality violation.
#[test]
fn try_push_on_full_races_pop() {
    check(None, || {
        let ring: Arc<Ring<Track<u32>, 2>> = Arc::new(Ring::new());
        assert!(ring.try_push(Track::new(1)).is_ok());
        assert!(ring.try_push(Track::new(2)).is_ok());
        let pusher = {
            let ring = ring.clone();
            thread::spawn(move || match ring.try_push(Track::new(3)) {
                Ok(()) => None,
                Err(full) => Some(full.into_inner()),
            })
        };
        let mut c = ring.consumer().unwrap();
        assert_eq!(c.pop().map(|v| *v.get_ref()), Some(1));
        let rejected = pusher.join().unwrap();
        let rest: Vec<u32> = c.drain().map(|v| *v.get_ref()).collect();
        match rejected {
            None => assert_eq!(rest, [2, 3]),
            Some(v) => {
                assert_eq!(*v.get_ref(), 3, "Full hands back the caller's value");
                assert_eq!(rest, [2]);
            }
        }
    });
}

/// An evicting ring of two slots holding `[1, 2]`: full, so the next `force_push` must evict.
fn full_ring_of_1_2() -> Arc<EvictingRing<Track<u32>, 2>> {
    let ring: Arc<EvictingRing<Track<u32>, 2>> = Arc::new(EvictingRing::new());
    assert!(ring.try_push(Track::new(1)).is_ok());
    assert!(ring.try_push(Track::new(2)).is_ok());
    ring
}

/// Everything left, after the other threads joined. Pops until empty: a `drain` stops after one
/// ring's worth, and an evicting ring can hold that plus what its consumer has staged.
fn take_rest(c: &mut ringwal_core::Consumer<'_, Track<u32>, 2, ringwal_core::Evict>) -> Vec<u32> {
    std::iter::from_fn(|| c.pop())
        .map(|v| *v.get_ref())
        .collect()
}

/// A thread that force-pushes `v` and returns what it evicted.
fn spawn_force_push(
    ring: &Arc<EvictingRing<Track<u32>, 2>>,
    v: u32,
) -> thread::JoinHandle<Option<u32>> {
    let ring = ring.clone();
    thread::spawn(move || ring.force_push(Track::new(v)).map(|t| *t.get_ref()))
}

/// Checks the outcome of force-pushes racing pops on a ring that started as `[1, 2]` (full) and
/// then got `pushed` (values > 2, in any relative order): every value is in exactly one place
/// (popped, evicted, or still queued), what was taken from the front (popped or evicted) is all
/// older than what remains, and the consumer's eviction count is exact.
fn check_full_ring_outcome(popped: &[u32], evicted: &[u32], rest: &[u32], pushed: &[u32]) {
    let taken: Vec<u32> = popped.iter().chain(evicted).copied().collect();
    let mut all: Vec<u32> = taken.iter().chain(rest).copied().collect();
    all.sort_unstable();
    let mut expected = vec![1, 2];
    expected.extend(pushed);
    expected.sort_unstable();
    assert_eq!(all, expected, "exactly once");
    // Two slots, and what the consumer staged (at most two more here).
    assert!(rest.len() <= 4);
    // 1 and 2 were pushed first; the later ones in an order the race decides.
    let rank = |v: u32| v.min(3);
    for t in &taken {
        for r in rest {
            assert!(
                rank(*t) < rank(*r) || (rank(*t) == 3 && rank(*r) == 3),
                "took {t} while {r} (older) remains: taken {taken:?}, rest {rest:?}"
            );
        }
    }
    // The values popped come out oldest first.
    assert!(
        popped.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
        "order {popped:?}"
    );
}

/// `force_push` on a full ring racing the consumer, whose first `next()` claims the run `[1, 2]`
/// with one compare-and-swap (staging 2): exactly once, the oldest evicted or none, count exact.
///
/// Mutations that fail it: `evict_claimed` taking `old` without winning the compare-and-swap on
/// `head` (the evictor and the consumer both take 1: a double drop); `evict_claimed` writing
/// without waiting for `freed` when the consumer won `old` (its write races the consumer's
/// move: causality violation); `claim_run`'s store of `freed` Relaxed (same race). (Removing
/// `may_evict_for`'s `head == old` check is *not* caught, rightly: the compare-and-swap decides
/// who takes `old`; the check only keeps a push from waiting while it holds a claim, a
/// progress property — see `may_evict_for` for the convoy it prevents.)
#[test]
fn force_push_races_pop() {
    check(None, || {
        let ring = full_ring_of_1_2();
        let mut c = ring.consumer().unwrap();
        let f = spawn_force_push(&ring, 3);
        let popped: Vec<u32> = c.drain().next().map(|v| *v.get_ref()).into_iter().collect();
        let evicted: Vec<u32> = f.join().unwrap().into_iter().collect();
        let rest = take_rest(&mut c);
        check_full_ring_outcome(&popped, &evicted, &rest, &[3]);
        assert_eq!(c.evicted(), evicted.len() as u64, "eviction count");
    });
}

/// Two `force_push`es on a full ring racing each other (the consumer takes the rest after):
/// each evicts a different value, the two oldest, and the count is exact.
///
/// Mutation that fails it: `evict_claimed` evicting the position one later than the slot it
/// claimed (`old + 1`): a push waits for a `head` that never comes, and loom reports the model
/// exceeding its maximum branches (a hang).
#[test]
fn force_push_races_force_push() {
    check(None, || {
        let ring = full_ring_of_1_2();
        let mut c = ring.consumer().unwrap();
        let f3 = spawn_force_push(&ring, 3);
        let f4 = spawn_force_push(&ring, 4);
        let mut evicted: Vec<u32> = f3.join().unwrap().into_iter().collect();
        evicted.extend(f4.join().unwrap());
        evicted.sort_unstable();
        assert_eq!(
            evicted,
            [1, 2],
            "each force_push evicted one of the two oldest"
        );
        let rest = take_rest(&mut c);
        check_full_ring_outcome(&[], &evicted, &rest, &[3, 4]);
        assert_eq!(c.evicted(), 2, "eviction count");
    });
}

/// All three at once: two `force_push`es and a `pop` on a full ring.
///
/// Bound: 1 preemption. The two force_pushes may each spin-wait on the other's (or the
/// consumer's) claim-to-free window, and the spins multiply the paths. The two-thread models above
/// cover each pair of these operations exhaustively; this one adds the three-way
/// interleavings reachable with one preemption.
///
/// Mutation that fails it: `evict_claimed` taking `old` without winning `head` (a causality
/// violation: the evictor and the consumer both read the slot).
#[test]
fn force_push_races_pop_and_force_push() {
    check(Some(1), || {
        let ring = full_ring_of_1_2();
        let mut c = ring.consumer().unwrap();
        let f3 = spawn_force_push(&ring, 3);
        let f4 = spawn_force_push(&ring, 4);
        let popped: Vec<u32> = c.drain().next().map(|v| *v.get_ref()).into_iter().collect();
        let mut evicted: Vec<u32> = f3.join().unwrap().into_iter().collect();
        evicted.extend(f4.join().unwrap());
        let rest = take_rest(&mut c);
        check_full_ring_outcome(&popped, &evicted, &rest, &[3, 4]);
        assert_eq!(c.evicted(), evicted.len() as u64, "eviction count");
    });
}

/// One producer force-pushing through a ring of 2 while the consumer pops: the values the
/// consumer gets are in order and the eviction count matches exactly what was evicted.
///
/// Mutation that fails it: stepping over evicted positions without counting them
/// (`step_over_evicted`): "eviction count when popping 3".
///
/// Bound: 3 preemptions (110,317 executions, 7.5 s here; 4 took 730k and 50 s, unbounded it
/// did not finish in 5 minutes): a full ring's push retries while the consumer moves a run
/// out (`may_evict_for`), and every retry is a scheduling point.
#[test]
fn force_push_stream_against_consumer() {
    check(Some(3), || {
        let ring: Arc<EvictingRing<u32, 2>> = Arc::new(EvictingRing::new());
        let mut c = ring.consumer().unwrap();
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut evicted = Vec::new();
                for v in 1..=4 {
                    evicted.extend(ring.force_push(v));
                }
                evicted
            })
        };
        // Each value with the consumer's eviction count right after popping it.
        let mut got: Vec<(u32, u64)> = Vec::new();
        for _ in 0..2 {
            if let Some(v) = c.drain().next() {
                got.push((v, c.evicted()));
            }
        }
        let evicted = producer.join().unwrap();
        while let Some(v) = c.pop() {
            got.push((v, c.evicted()));
        }
        let values: Vec<u32> = got.iter().map(|g| g.0).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "order: {values:?}");
        let mut all: Vec<u32> = values.iter().chain(&evicted).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4], "exactly once");
        // The gap is counted before the right value: when v is popped, the count equals the
        // number of evicted values older than v, even though it was read mid-race.
        for &(v, count) in &got {
            let older = evicted.iter().filter(|&&e| e < v).count() as u64;
            assert_eq!(
                count, older,
                "eviction count when popping {v}: {got:?} / {evicted:?}"
            );
        }
        assert_eq!(c.evicted(), evicted.len() as u64, "eviction count");
    });
}

/// Two threads race for `consumer()`: never two at once, at least one wins, and a consumer
/// claimed after another was dropped continues where it stopped (no value popped twice).
///
/// The "two consumers at once" flag is Relaxed on purpose: a SeqCst flag would itself order
/// the two consumers and hide a claim that does not (the byte ring's hand-off model found
/// that). Mutation that fails it: `release_consumer`'s store, or `claim_consumer`'s
/// compare-and-swap, Relaxed (the second consumer reads the cursor, `freed`, without an edge
/// to the first one's pops: a value taken twice, or a causality violation).
#[test]
fn consumer_claim_race() {
    check(None, || {
        let ring: Arc<Ring<u32, 2>> = Arc::new(Ring::new());
        ring.try_push(1).unwrap();
        ring.try_push(2).unwrap();
        let inside = Arc::new(AtomicBool::new(false));
        let spawn = || {
            let ring = ring.clone();
            let inside = inside.clone();
            thread::spawn(move || {
                let mut c = ring.consumer()?;
                // Relaxed: see the doc comment; the swap's atomicity is what detects overlap.
                assert!(
                    !inside.swap(true, Ordering::Relaxed),
                    "two consumers at once"
                );
                let v = c.drain().next();
                inside.store(false, Ordering::Relaxed);
                drop(c);
                Some(v)
            })
        };
        let a = spawn();
        let b = spawn();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a.is_some() || b.is_some(), "nobody got the consumer");
        let popped: Vec<u32> = [a, b].into_iter().flatten().flatten().collect();
        let mut c = ring.consumer().expect("free after both dropped");
        let rest: Vec<u32> = c.drain().collect();
        let mut all: Vec<u32> = popped.iter().chain(&rest).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2], "exactly once across consumers");
        assert_eq!(
            rest,
            [1, 2][popped.len()..],
            "the next consumer continues in order"
        );
    });
}

/// A ring dropped with values inside, after concurrent pushes, an eviction and a pop: every
/// value is dropped exactly once (per-id counters) and nothing leaks (loom's `Track`).
///
/// Bound: 3 preemptions (three threads; unbounded it ran for over 9 minutes).
///
/// Mutation that fails it: the ring's `Drop` forgetting the staged values instead of dropping
/// them ("value 2 dropped 0 times").
#[test]
fn drop_with_values_inside() {
    struct Counted {
        id: usize,
        drops: Arc<[AtomicUsize; 4]>,
        _track: Track<()>,
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            self.drops[self.id].fetch_add(1, Ordering::Relaxed);
        }
    }
    check(Some(3), || {
        let drops: Arc<[AtomicUsize; 4]> = Arc::new(core::array::from_fn(|_| AtomicUsize::new(0)));
        let mk = |id| Counted {
            id,
            drops: drops.clone(),
            _track: Track::new(()),
        };
        {
            let ring: Arc<EvictingRing<Counted, 2>> = Arc::new(EvictingRing::new());
            assert!(ring.try_push(mk(0)).is_ok());
            let t1 = {
                let ring = ring.clone();
                let v = mk(1);
                thread::spawn(move || drop(ring.try_push(v)))
            };
            let t2 = {
                let ring = ring.clone();
                let v = mk(2);
                thread::spawn(move || drop(ring.force_push(v)))
            };
            let popped = ring.consumer().unwrap().drain().next();
            drop(popped);
            let v = mk(3);
            drop(ring.try_push(v));
            t1.join().unwrap();
            t2.join().unwrap();
            // Last Arc: the Ring's Drop runs here and drops what is left.
        }
        for (id, d) in drops.iter().enumerate() {
            assert_eq!(
                d.load(Ordering::Relaxed),
                1,
                "value {id} dropped {d:?} times"
            );
        }
    });
}

/// The `alloc` channel: cloned producers on two threads, the receiver on the main thread;
/// values are tracked, so a leak or double drop fails. Two values in two slots: never full, so
/// no push waits; the receiver pops twice concurrently, then takes the rest after the joins.
///
/// Bound: 3 preemptions, as the inline ring's three-thread model above (the same `Raw` code;
/// unbounded this one took about 6 minutes of the CI budget).
///
/// Mutation that fails it: the producer's stamp store Relaxed (the receiver reads the value
/// without an edge to its write: a causality violation).
#[test]
fn channel_two_producers() {
    check(Some(3), || {
        let (tx, mut rx) = channel::<Track<u32>>(2);
        let spawn = |v: u32| {
            let tx = tx.clone();
            thread::spawn(move || assert!(tx.try_push(Track::new(v)).is_ok(), "room for both"))
        };
        let a = spawn(1);
        let b = spawn(2);
        drop(tx);
        let mut got: Vec<u32> = (0..2)
            .filter_map(|_| rx.drain().next())
            .map(|v| *v.get_ref())
            .collect();
        a.join().unwrap();
        b.join().unwrap();
        got.extend(rx.drain().map(|v| *v.get_ref()));
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert!(rx.pop().is_none());
    });
}

/// One pop through a `Consumer` or `Receiver`: `pop()` when `waiting`, which must return a
/// value; else `try_pop()`, which must never say `Empty` (a completed push is in the ring).
macro_rules! pop_after_completed_push {
    ($c:expr, $waiting:expr) => {
        if $waiting {
            let v = $c.pop();
            assert!(v.is_some(), "pop said None after a completed push");
            v
        } else {
            match $c.try_pop() {
                Ok(v) => Some(v),
                Err(TryPopError::Pending) => None,
                Err(TryPopError::Empty) => panic!("try_pop said Empty after a completed push"),
            }
        }
    };
}

/// What the consumer may see once B's push has completed (B joined) while A, which may have
/// claimed position 0 first, may still be mid-publish: `pop` must return a value (it waits A
/// out: linearizable, as crossbeam's `ArrayQueue`), and `try_pop` a value or `Pending`, never
/// `Empty`. Afterwards both values come out exactly once. Through the inline ring here, the
/// heap ring below (the same code with a constant or a run-time mask).
///
/// Mutation that fails it (and the channel's model below): `Raw::try_pop` answering `Empty`
/// whenever the head position is unpublished, without the tail check ("pop said None after a
/// completed push").
#[test]
fn ring_pop_waits_out_a_pending_push_and_try_pop_says_pending() {
    for waiting in [true, false] {
        check(None, move || {
            let ring: Arc<Ring<u32, 2>> = Arc::new(Ring::new());
            let spawn = |v: u32| {
                let ring = ring.clone();
                thread::spawn(move || ring.try_push(v).unwrap())
            };
            let a = spawn(1);
            let b = spawn(2);
            b.join().unwrap();
            let mut c = ring.consumer().unwrap();
            let mut got: Vec<u32> = pop_after_completed_push!(c, waiting).into_iter().collect();
            a.join().unwrap();
            got.extend(c.drain());
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            assert_eq!(c.try_pop(), Err(TryPopError::Empty));
        });
    }
}

/// The same model through `channel(2)`'s heap ring.
#[test]
fn channel_pop_waits_out_a_pending_push_and_try_pop_says_pending() {
    for waiting in [true, false] {
        check(None, move || {
            let (tx, mut rx) = channel::<u32>(2);
            let spawn = |v: u32| {
                let tx = tx.clone();
                thread::spawn(move || tx.try_push(v).unwrap())
            };
            let a = spawn(1);
            let b = spawn(2);
            b.join().unwrap();
            let mut got: Vec<u32> = pop_after_completed_push!(rx, waiting).into_iter().collect();
            a.join().unwrap();
            got.extend(rx.drain());
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        });
    }
}

/// The solo producer (`Ring::split`) against the consumer, across two laps of a ring of 2 and
/// the wrap of the positions: each push is tried once; what was accepted comes out once, in
/// order; a push is refused only when two values are in the ring.
///
/// Mutation that fails it: `push_solo` writing anyway when `refresh_limit` says the ring is
/// full (a value overwrites an unread one: "every accepted value once, in order").
#[test]
fn solo_producer_against_consumer_across_the_wrap() {
    check(None, || {
        // loom has no scoped threads: the ring is leaked (a few bytes per execution) so that
        // `split`'s halves are `'static` and the producer can move to a thread.
        let ring: &'static mut Ring<u32, 2> = Box::leak(Box::new(Ring::new_at(usize::MAX - 2)));
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            (1..=4)
                .map(|v| tx.try_push(v).is_ok())
                .collect::<Vec<bool>>()
        });
        let mut got: Vec<u32> = (0..2).filter_map(|_| rx.drain().next()).collect();
        let accepted = producer.join().unwrap();
        got.extend(rx.drain());
        let sent: Vec<u32> = (1..=4u32).filter(|v| accepted[*v as usize - 1]).collect();
        assert_eq!(got, sent, "every accepted value once, in order");
        assert!(accepted[0] && accepted[1], "an empty ring of 2 takes two");
    });
}

/// A split ring hands out `&Ring` through its halves (`SoloProducer::ring`): a shared push
/// through it, racing the solo producer's pushes on another thread, is refused while that
/// producer lives (the solo producer keeps its position to itself and stores `tail` without
/// reading it, so a shared claim would take a position it writes again); once the producer is
/// dropped, a shared push claims the next position. The consumer gets every value once, in
/// order.
///
/// Exhaustive (no preemption bound).
///
/// Mutation that fails it: `push_solo` storing `tail` without the `CLOSED` flag `split` set
/// (M31: the shared push claims a position the solo producer then writes again).
#[test]
fn a_split_ring_refuses_shared_pushes_while_its_solo_producer_lives() {
    check(None, || {
        let ring: &'static mut Ring<u32, 4> = Box::leak(Box::new(Ring::new()));
        let (mut tx, mut rx) = ring.split();
        let shared: &'static Ring<u32, 4> = tx.ring();
        let other = thread::spawn(move || shared.try_push(100).is_ok());
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        assert!(
            !other.join().unwrap(),
            "a shared push succeeded next to the solo producer"
        );
        drop(tx);
        shared.try_push(3).unwrap();
        let got: Vec<u32> = rx.drain().collect();
        assert_eq!(got, [1, 2, 3], "every value once, in order");
    });
}

/// The consumer of a split ring against its producer mid-push: `try_pop` and `pop` see the
/// value or nothing, never `Pending` (the solo producer's push takes effect when published;
/// the consumer does not read `tail` to tell "claimed" from "empty"); once the push
/// happened-before a look (a flag stored Release after it, read Acquire before the look), the
/// look sees it. Then the value has come out exactly once.
///
/// Exhaustive (no preemption bound).
///
/// Mutation that fails it: `split` leaving its consumer's cursor shared (`solo` false), so
/// that `try_pop` reads `tail` and says `Pending` while the push is between its `tail` store
/// and its publish (M29: "never Pending").
#[test]
fn split_consumer_sees_what_happened_before_and_is_never_pending() {
    check(None, || {
        let ring: &'static mut Ring<u32, 2> = Box::leak(Box::new(Ring::new()));
        let (mut tx, mut rx) = ring.split();
        let pushed = Arc::new(AtomicBool::new(false));
        let producer = {
            let pushed = pushed.clone();
            thread::spawn(move || {
                tx.try_push(7).unwrap();
                // Release pairs with the consumer's Acquire loads below.
                pushed.store(true, Ordering::Release);
            })
        };
        let mut got = look_twice_never_pending(&mut rx, &pushed, |rx| rx.try_pop(), |rx| rx.pop());
        producer.join().unwrap();
        got.extend(rx.drain());
        assert_eq!(got, [7], "the value exactly once");
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    });
}

/// The solo producer of an evicting ring force-pushing through it while the consumer pops:
/// exactly once, in order, eviction count exact. (A solo producer claims with a plain store,
/// and evicts with the same compare-and-swap on `head` as a shared one.)
///
/// Bound: 3 preemptions, as the shared producer's model above (the same retries).
///
/// Mutation that fails it: stepping over evicted positions without counting them ("eviction
/// count").
#[test]
fn solo_force_push_against_consumer() {
    check(Some(3), || {
        let ring: &'static mut EvictingRing<u32, 2> = Box::leak(Box::new(EvictingRing::new()));
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            let mut evicted = Vec::new();
            for v in 1..=4 {
                evicted.extend(tx.force_push(v));
            }
            evicted
        });
        let mut got: Vec<u32> = (0..2).filter_map(|_| rx.drain().next()).collect();
        let evicted = producer.join().unwrap();
        // Until empty: a drain stops after one ring's worth, and staged values come on top.
        got.extend(std::iter::from_fn(|| rx.pop()));
        assert!(got.windows(2).all(|w| w[0] < w[1]), "order: {got:?}");
        let mut all: Vec<u32> = got.iter().chain(&evicted).copied().collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4], "exactly once");
        assert_eq!(rx.evicted(), evicted.len() as u64, "eviction count");
    });
}

/// `close` racing a `try_push_checked` (the std writer's shutdown): the position `close`
/// returns counts the push exactly when it was accepted, and a receiver that takes values until
/// its position reaches it gets the value (waiting out its publication); a refused push says
/// `Closed` and leaves the ring empty.
///
/// Mutation that fails it: claims that ignore the closed flag (a `fetch_add` on `tail` instead of
/// the compare-and-swap): close's answer misses an accepted push ("close's answer counts exactly
/// the accepted push").
#[test]
fn close_races_a_claim() {
    check(None, || {
        let (tx, mut rx) = channel::<u32>(2);
        let pusher = {
            let tx = tx.clone();
            thread::spawn(move || match tx.try_push_checked(7) {
                Ok(()) => true,
                Err(PushError::Closed(7)) => false,
                Err(e) => panic!("an empty ring of 2 refused as full: {e:?}"),
            })
        };
        let end = tx.close();
        let mut got = Vec::new();
        while position_diff(rx.position(), end) < 0 {
            match rx.try_pop() {
                Ok(v) => got.push(v),
                Err(_) => thread::yield_now(),
            }
        }
        let accepted = pusher.join().unwrap();
        assert_eq!(
            end, accepted as usize,
            "close's answer counts exactly the accepted push"
        );
        assert_eq!(got, if accepted { vec![7] } else { vec![] });
        assert_eq!(
            rx.try_pop(),
            Err(TryPopError::Empty),
            "an accepted push after close"
        );
    });
}

/// `close` racing an evicting push into a full ring: if the push got in, it evicted the oldest
/// and the receiver, taking until its position reaches the final one, has the rest; otherwise
/// it was refused and nothing moved.
///
/// Mutation that fails it: claims that ignore the closed flag, as above (the final position
/// misses the accepted push).
#[test]
fn close_races_an_evicting_claim() {
    check(None, || {
        let (tx, mut rx) = evicting_channel::<u32>(2);
        tx.try_push(1).unwrap();
        tx.try_push(2).unwrap();
        let pusher = {
            let tx = tx.clone();
            thread::spawn(move || tx.force_push_checked(3))
        };
        let end = tx.close();
        let mut got = Vec::new();
        while position_diff(rx.position(), end) < 0 {
            match rx.try_pop() {
                Ok(v) => got.push(v),
                Err(_) => thread::yield_now(),
            }
        }
        match pusher.join().unwrap() {
            Ok(Some(evicted)) => {
                assert_eq!(end, 3);
                assert_eq!(evicted, 1, "full: the oldest goes");
                assert_eq!(got, [2, 3]);
                assert_eq!(rx.evicted(), 1);
            }
            Ok(None) => {
                // The receiver claimed 1 (and 2) before the push could evict it: the push
                // waited for the slot to be freed and evicted nothing.
                assert_eq!(end, 3);
                assert_eq!(got, [1, 2, 3]);
                assert_eq!(rx.evicted(), 0);
            }
            Err(back) => {
                assert_eq!(back, 3, "a refused push hands its value back");
                assert_eq!(end, 2);
                assert_eq!(got, [1, 2]);
            }
        }
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    });
}

/// An evicting ring's consumer claims a run into its staging buffer and is dropped; the next
/// consumer, on another thread, continues from the staged values while a `force_push` races it:
/// staged values are delivered (never evicted), each value once, the eviction count exact across
/// the hand-off.
///
/// Mutation that fails it: a claimed run whose rest is not staged ("the staged value comes
/// first"). (The hand-off's ordering is `consumer_claim_race`'s business: here the first
/// consumer runs before the second's thread is spawned, and the spawn orders them.)
#[test]
fn staged_values_survive_a_hand_off_racing_force_push() {
    check(None, || {
        let ring: Arc<EvictingRing<Track<u32>, 2>> = Arc::new(EvictingRing::new());
        ring.try_push(Track::new(1)).unwrap();
        ring.try_push(Track::new(2)).unwrap();
        {
            let mut first = ring.consumer().unwrap();
            // Claims [1, 2]: 1 handed out, 2 staged; the slots are free again.
            assert_eq!(first.pop().map(|v| *v.get_ref()), Some(1));
        }
        ring.try_push(Track::new(3)).unwrap();
        ring.try_push(Track::new(4)).unwrap();
        let second = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut c = ring.consumer().expect("the first one is gone");
                let got: Vec<u32> = c.drain().map(|v| *v.get_ref()).collect();
                (got, c.evicted())
            })
        };
        let evicted = ring.force_push(Track::new(5)).map(|v| *v.get_ref());
        let (mut got, count) = second.join().unwrap();
        assert_eq!(got[0], 2, "the staged value comes first: {got:?}");
        let mut third = ring.consumer().unwrap();
        got.extend(std::iter::from_fn(|| third.pop()).map(|v| *v.get_ref()));
        let mut all: Vec<u32> = got.iter().copied().chain(evicted).collect();
        all.sort_unstable();
        assert_eq!(all, [2, 3, 4, 5], "exactly once");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "order: {got:?}");
        assert_ne!(evicted, Some(2), "a staged value is delivered, not evicted");
        assert_eq!(
            count + third.evicted(),
            evicted.is_some() as u64,
            "eviction count"
        );
    });
}

/// An eviction the consumer steps over, and then a hand-off: every eviction is counted by
/// exactly one consumer. The case that needs care: the ring holds 1 and a position claimed by a
/// producer that has not yet published it (2); a `force_push` evicts 1; the consumer steps over
/// the evicted position and finds nothing published behind it. It must still move `freed` (the
/// next consumer's starting point) past what it counted, or the next consumer counts it again.
///
/// The evictor is joined before the first consumer looks, so the model needs a single
/// preemption (the producer between its claim and its publish) and runs exhaustively.
///
/// Mutation that fails it: `step_over_evicted` not storing `freed` ("eviction count").
#[test]
fn evictions_are_counted_once_across_a_hand_off() {
    check(None, || {
        let ring: Arc<EvictingRing<Track<u32>, 2>> = Arc::new(EvictingRing::new());
        ring.try_push(Track::new(1)).unwrap();
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || ring.try_push(Track::new(2)).is_ok())
        };
        let evictor = spawn_force_push(&ring, 3);
        let evicted: Vec<u32> = evictor.join().unwrap().into_iter().collect();
        let (first, first_count) = {
            let mut c = ring.consumer().unwrap();
            let v = c.try_pop().ok().map(|v| *v.get_ref());
            (v, c.evicted())
        };
        let pushed_2 = producer.join().unwrap();
        let mut c = ring.consumer().unwrap();
        let rest = take_rest(&mut c);
        let mut all: Vec<u32> = first.iter().chain(&evicted).chain(&rest).copied().collect();
        all.sort_unstable();
        let expected: &[u32] = if pushed_2 { &[1, 2, 3] } else { &[1, 3] };
        assert_eq!(all, expected, "exactly once");
        assert_eq!(
            first_count + c.evicted(),
            evicted.len() as u64,
            "eviction count"
        );
    });
}
