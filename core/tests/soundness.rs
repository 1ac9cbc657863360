//! A soundness review's probes: public-API combinations that could break the ring's invariants
//! (handles obtained twice, leaked halves and grants, references to shared internals combined
//! with every other call, over-aligned values, a solo producer handing over to shared pushes
//! on another thread). Each runs under Miri (`cargo +nightly miri test --test soundness`),
//! which reports data races, uninitialised reads, misaligned accesses and double drops.
//! All pass on the current code: no defect found by these.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ringwal_core::{
    byte_channel, channel, evicting_channel, ByteRing, EvictingRing, Lanes, Ring, TryPopError,
};

/// Counts drops; a value dropped twice trips the assert.
struct Counted {
    drops: Arc<AtomicUsize>,
    id: usize,
    dropped: bool,
}

impl Counted {
    fn new(drops: &Arc<AtomicUsize>, id: usize) -> Self {
        Counted {
            drops: drops.clone(),
            id,
            dropped: false,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert!(!self.dropped, "value {} dropped twice", self.id);
        self.dropped = true;
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// An over-aligned value: every slot, staged value and heap buffer must honour the alignment
/// (Miri checks every access).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(128))]
struct Aligned(u64);

#[test]
fn leaked_halves_then_split_again_lose_and_duplicate_nothing() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut created = 0;
    {
        let mut ring: EvictingRing<Counted, 4> = EvictingRing::new();
        for id in 0..6 {
            drop(ring.force_push(Counted::new(&drops, id)));
            created += 1;
        }
        {
            let (mut tx, mut rx) = ring.split();
            // The consumer claims a run: one value out, the rest staged in the ring.
            assert_eq!(rx.pop().map(|v| v.id), Some(2));
            drop(tx.force_push(Counted::new(&drops, 6)));
            created += 1;
            std::mem::forget(tx);
            std::mem::forget(rx);
        }
        // Both halves leaked: shared pushes are refused, no consumer can be claimed.
        assert!(ring.try_push(Counted::new(&drops, 99)).is_err());
        created += 1;
        assert!(ring.consumer().is_none());
        let (mut tx, mut rx) = ring.split();
        // The staged values and the slots' values come out once each, in order.
        let mut ids: Vec<usize> = rx.drain().map(|v| v.id).collect();
        drop(tx.force_push(Counted::new(&drops, 7)));
        created += 1;
        ids.extend(rx.drain().map(|v| v.id));
        assert_eq!(ids, [3, 4, 5, 6, 7]);
        drop((tx, rx));
        ring.try_push(Counted::new(&drops, 8)).ok().unwrap();
        created += 1;
    }
    assert_eq!(drops.load(Ordering::Relaxed), created);
}

#[test]
fn a_second_consumer_through_the_halves_refs_only_after_the_first_is_gone() {
    let mut ring: Ring<u32, 4> = Ring::new();
    let (mut tx, rx) = ring.split();
    assert!(tx.ring().consumer().is_none());
    assert!(rx.ring().consumer().is_none());
    tx.try_push(1).unwrap();
    drop(rx);
    // A consumer claimed through the solo producer's `&Ring` continues where the split one
    // stopped, and sees the solo pushes.
    let mut c = tx.ring().consumer().unwrap();
    tx.try_push(2).unwrap();
    assert_eq!(c.pop(), Some(1));
    assert_eq!(c.pop(), Some(2));
    assert_eq!(c.try_pop(), Err(TryPopError::Empty));
    drop(tx);
    c.ring().try_push(3).unwrap();
    assert_eq!(c.pop(), Some(3));
}

/// The solo producer is dropped on one thread; the consumer, on another, then pushes through
/// its `&Ring` and evicts values the solo producer wrote, racing a third thread's force_push.
#[test]
fn shared_pushes_after_the_solo_producer_is_dropped_on_another_thread() {
    let rounds = if cfg!(miri) { 12 } else { 2000 };
    let drops = Arc::new(AtomicUsize::new(0));
    let mut created = 0;
    {
        let mut ring: EvictingRing<Counted, 4> = EvictingRing::new();
        let (mut tx, mut rx) = ring.split();
        let shared = rx.ring();
        std::thread::scope(|s| {
            let d = drops.clone();
            s.spawn(move || {
                for id in 0..rounds {
                    drop(tx.force_push(Counted::new(&d, id)));
                }
                drop(tx);
            })
            .join()
            .unwrap();
            created += rounds;
            let d = drops.clone();
            let other = s.spawn(move || {
                for id in 0..rounds {
                    drop(shared.force_push(Counted::new(&d, 1000 + id)));
                }
            });
            let mut last_solo = None;
            for id in 0..rounds {
                drop(shared.force_push(Counted::new(&drops, 2000 + id)));
                if let Some(v) = rx.pop() {
                    if v.id < 1000 {
                        assert!(last_solo < Some(v.id), "the solo producer's order");
                        last_solo = Some(v.id);
                    }
                }
            }
            other.join().unwrap();
            created += 2 * rounds;
            rx.drain().for_each(drop);
        });
    }
    assert_eq!(drops.load(Ordering::Relaxed), created);
}

#[test]
fn over_aligned_values_in_every_front_end() {
    let mut ring: EvictingRing<Aligned, 4> = EvictingRing::new();
    for v in 0..10 {
        ring.force_push(Aligned(v));
    }
    {
        let mut c = ring.consumer().unwrap();
        assert_eq!(c.pop(), Some(Aligned(6)));
        assert_eq!(c.drain().collect::<Vec<_>>(), [7, 8, 9].map(Aligned));
    }
    {
        let (mut tx, mut rx) = ring.split();
        for v in 10..20 {
            tx.force_push(Aligned(v));
        }
        assert_eq!(rx.pop(), Some(Aligned(16)));
    }
    let plain: Ring<Aligned, 2> = Ring::new();
    plain.try_push(Aligned(1)).unwrap();
    assert_eq!(plain.consumer().unwrap().pop(), Some(Aligned(1)));

    let (tx, mut rx) = evicting_channel::<Aligned>(4);
    for v in 0..40 {
        tx.force_push(Aligned(v)).unwrap();
    }
    assert_eq!(rx.pop(), Some(Aligned(36)));
    assert_eq!(rx.position(), 37);
    let (tx, mut rx) = channel::<Aligned>(2);
    tx.try_push(Aligned(5)).unwrap();
    assert_eq!(rx.pop(), Some(Aligned(5)));

    let lanes: Lanes<Aligned, 2, 2> = Lanes::new();
    let mut p = lanes.producer().unwrap();
    p.try_push(Aligned(3)).unwrap();
    assert_eq!(lanes.consumer().unwrap().pop(), Some(Aligned(3)));
}

#[test]
fn lanes_handles_leaked_or_claimed_again() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let lanes: Lanes<Counted, 2, 2> = Lanes::new();
        let mut a = lanes.producer().unwrap();
        a.try_push(Counted::new(&drops, 0)).ok().unwrap();
        // A second producer through the first one's `&Lanes` takes the other lane.
        let mut b = a.lanes().producer().unwrap();
        assert_ne!(a.lane(), b.lane());
        assert!(b.lanes().producer().is_none());
        b.try_push(Counted::new(&drops, 1)).ok().unwrap();
        std::mem::forget(a); // its lane stays owned, its value stays in the lane
        drop(b);
        let mut b = lanes.producer().unwrap();
        b.try_push(Counted::new(&drops, 2)).ok().unwrap();
        let mut c = lanes.consumer().unwrap();
        assert!(c.lanes().consumer().is_none());
        let mut ids: Vec<usize> = c.drain().map(|v| v.id).collect();
        ids.sort();
        assert_eq!(ids, [0, 1, 2]);
        b.try_push(Counted::new(&drops, 3)).ok().unwrap();
        std::mem::forget(c);
        assert!(lanes.consumer().is_none());
    }
    // Value 3 is in a lane of the dropped `Lanes`: dropped with it.
    assert_eq!(drops.load(Ordering::Relaxed), 4);
}

#[test]
fn byte_ring_grants_and_records_leaked_reordered_and_sent() {
    let ring: ByteRing<64> = ByteRing::new();
    let mut c = ring.consumer().unwrap();
    // Two grants at once, committed in reverse order.
    let mut g1 = ring.try_reserve(5).unwrap();
    let mut g2 = ring.try_reserve(3).unwrap();
    g2.copy_from_slice(b"two");
    g1.copy_from_slice(b"first");
    assert_eq!(c.read().err(), Some(TryPopError::Pending));
    g2.commit();
    assert_eq!(c.read().err(), Some(TryPopError::Pending));
    g1.commit_len(4);
    // A leaked record is not released: it is read again.
    std::mem::forget(c.read().unwrap());
    assert_eq!(&*c.read().unwrap(), b"firs");
    assert_eq!(&*c.read().unwrap(), b"two");
    // A leaked grant holds the consumer at its position forever; records after it wait.
    std::mem::forget(ring.try_reserve(1).unwrap());
    ring.try_push(b"after").unwrap();
    assert_eq!(c.read().err(), Some(TryPopError::Pending));
    drop(c);

    // Records, batches and their iterators read on another thread.
    let (tx, mut rx) = byte_channel(64);
    tx.try_push(b"abc").unwrap();
    tx.try_push(b"").unwrap();
    tx.try_push(b"defghijk").unwrap();
    let batch = rx.read_batch(usize::MAX).unwrap();
    let iter = batch.iter();
    let got = std::thread::scope(|s| {
        s.spawn(move || iter.map(<[u8]>::to_vec).collect::<Vec<_>>())
            .join()
            .unwrap()
    });
    assert_eq!(got, [b"abc".to_vec(), vec![], b"defghijk".to_vec()]);
    std::mem::forget(batch);
    // Leaked batch: nothing released, the same three records again.
    assert_eq!(rx.read_batch(usize::MAX).unwrap().len(), 3);
    assert_eq!(rx.read().err(), Some(TryPopError::Empty));
    let mut g = tx.try_reserve(tx.max_record_len()).unwrap();
    g.fill(7);
    std::thread::scope(|s| {
        s.spawn(move || g.commit());
    });
    let r = rx.read().unwrap();
    let len = std::thread::scope(|s| s.spawn(|| r.len()).join().unwrap());
    assert_eq!(len, 24);
    assert!(r.iter().all(|&b| b == 7));
}

#[test]
fn rings_near_the_wrap_of_the_position_counter() {
    for start in [
        usize::MAX,
        ringwal_core::POSITION_MASK,
        ringwal_core::POSITION_MASK - 2,
    ] {
        let mut ring: EvictingRing<u32, 2> = EvictingRing::new_at(start);
        for v in 0..5 {
            ring.force_push(v);
        }
        {
            let (mut tx, mut rx) = ring.split();
            assert_eq!(rx.pop(), Some(3));
            tx.force_push(5);
            tx.force_push(6);
            // 4 was claimed (staged) with 3, so it is delivered, not evicted.
            let rest: Vec<u32> = std::iter::from_fn(|| rx.pop()).collect();
            assert_eq!(rest, [4, 5, 6]);
            assert_eq!(rx.evicted(), 3);
        }
        ring.try_push(7).unwrap();
        assert_eq!(ring.consumer().unwrap().pop(), Some(7));
        let bytes: ByteRing<32> = ByteRing::new_at(start);
        let mut c = bytes.consumer().unwrap();
        for round in 0..5u8 {
            bytes.try_push(&[round]).unwrap();
            assert_eq!(&*c.read().unwrap(), &[round]);
        }
    }
}

/// The hand-off from a solo producer to shared pushes with no synchronisation between the two
/// threads but the ring itself: a shared producer retries through `&Ring` until the solo
/// producer, on another thread, is dropped; the consumer, on a third, takes every value once
/// (Miri: no data race, under many seeds of its weak-memory emulation).
#[test]
fn shared_pushes_race_the_solo_producers_drop() {
    let rounds = if cfg!(miri) { 6 } else { 500 };
    for evict in [false, true] {
        let drops = Arc::new(AtomicUsize::new(0));
        {
            let mut ring: EvictingRing<Counted, 2> = EvictingRing::new();
            let (mut tx, mut rx) = ring.split();
            let shared = tx.ring();
            let mut got = Vec::new();
            std::thread::scope(|s| {
                let d = drops.clone();
                s.spawn(move || {
                    for id in 0..rounds {
                        let mut v = Counted::new(&d, id);
                        if evict {
                            drop(tx.force_push(v));
                            continue;
                        }
                        while let Err(full) = tx.try_push(v) {
                            v = full.into_inner();
                            std::hint::spin_loop();
                        }
                    }
                });
                let d = drops.clone();
                s.spawn(move || {
                    for id in 0..rounds {
                        let mut v = Counted::new(&d, 1_000_000 + id);
                        while let Err(full) = shared.try_push(v) {
                            v = full.into_inner();
                            std::hint::spin_loop();
                        }
                    }
                    if evict {
                        for id in 0..rounds {
                            drop(shared.force_push(Counted::new(&d, 2_000_000 + id)));
                        }
                    }
                });
                // The consumer on this thread until both are done.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                let total = if evict { 3 * rounds } else { 2 * rounds };
                while got.len() + (rx.evicted() as usize) < total {
                    assert!(std::time::Instant::now() < deadline, "stuck");
                    match rx.pop() {
                        Some(v) => got.push(v.id),
                        None => std::thread::yield_now(),
                    }
                }
            });
            got.extend(std::iter::from_fn(|| rx.pop()).map(|v| v.id));
            let mut sorted = got.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), got.len(), "a value delivered twice");
            for range in [0..1_000_000, 1_000_000..2_000_000, 2_000_000..3_000_000] {
                let mine: Vec<usize> = got.iter().copied().filter(|v| range.contains(v)).collect();
                assert!(
                    mine.windows(2).all(|w| w[0] < w[1]),
                    "one producer's values out of order"
                );
            }
            if !evict {
                assert_eq!(got.len(), 2 * rounds);
            } else {
                assert_eq!(got.len() as u64 + rx.evicted(), 3 * rounds as u64);
            }
        }
        assert_eq!(
            drops.load(Ordering::Relaxed),
            if evict { 3 * rounds } else { 2 * rounds }
        );
    }
}

/// A drain abandoned or unwound mid-iteration (a panic in the loop body that consumes it): the
/// consumer goes on from the next value, each value once, staged ones included.
#[test]
fn drains_leaked_or_unwound_mid_iteration() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let ring: EvictingRing<Counted, 8> = EvictingRing::new();
        for id in 0..12 {
            drop(ring.force_push(Counted::new(&drops, id)));
        }
        let mut c = ring.consumer().unwrap();
        // A drain abandoned after one value (`Drain` has no destructor: leaking it is the
        // same as letting it go, nothing depends on one).
        assert_eq!(c.drain().next().map(|v| v.id), Some(4));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for v in c.drain() {
                if v.id == 6 {
                    panic!("user code panics while draining");
                }
            }
        }));
        assert!(r.is_err());
        for id in 12..14 {
            drop(ring.force_push(Counted::new(&drops, id)));
        }
        let ids: Vec<usize> = std::iter::from_fn(|| c.pop()).map(|v| v.id).collect();
        assert_eq!(ids, [7, 8, 9, 10, 11, 12, 13]);
        assert_eq!(c.evicted(), 4);
        for id in 14..30 {
            drop(ring.force_push(Counted::new(&drops, id)));
        }
        let mut lanes_values = 0;
        let lanes: Lanes<Counted, 4, 2> = Lanes::new();
        let mut p = lanes.producer().unwrap();
        for id in 100..103 {
            p.try_push(Counted::new(&drops, id)).ok().unwrap();
        }
        let mut lc = lanes.consumer().unwrap();
        assert!(lc.drain().next().is_some()); // abandoned, as above
        lanes_values += 1;
        lanes_values += lc.drain().count();
        assert_eq!(lanes_values, 3);
    }
    assert_eq!(drops.load(Ordering::Relaxed), 30 + 3);
}
