//! Unit tests of single-threaded behaviour; the model-based and multi-threaded tests live in
//! `core/tests/`, the concurrent proofs in `loom-tests/`.

extern crate std;

use std::cell::RefCell;
use std::rc::Rc;
use std::vec::Vec;

use crate::{EvictingRing, Full, Ring, POSITION_MASK, STAGE};

/// Records its id in a shared log when dropped, so tests can check drops are exact.
struct Noisy(u32, Rc<RefCell<Vec<u32>>>);

impl Drop for Noisy {
    fn drop(&mut self) {
        self.1.borrow_mut().push(self.0);
    }
}

#[test]
fn fifo_and_full() {
    let ring: Ring<u32, 4> = Ring::new();
    assert!(ring.is_empty());
    for i in 0..4 {
        ring.try_push(i).unwrap();
    }
    assert!(ring.is_full());
    assert_eq!(ring.len(), 4);
    assert_eq!(ring.try_push(9), Err(Full(9)));
    let mut c = ring.consumer().unwrap();
    assert_eq!(c.pop(), Some(0));
    ring.try_push(4).unwrap();
    assert_eq!(c.drain().collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(c.pop(), None);
    assert_eq!(c.evicted(), 0);
}

#[test]
fn force_push_evicts_oldest_and_consumer_counts_the_gap() {
    let ring: EvictingRing<u32, 2> = EvictingRing::new();
    let mut c = ring.consumer().unwrap();
    assert_eq!(ring.force_push(1), None);
    assert_eq!(c.pop(), Some(1));
    assert_eq!(ring.force_push(2), None);
    assert_eq!(ring.force_push(3), None);
    assert_eq!(ring.force_push(4), Some(2));
    assert_eq!(ring.force_push(5), Some(3));
    assert_eq!(
        c.evicted(),
        0,
        "evictions are counted when the consumer steps over them"
    );
    assert_eq!(c.pop(), Some(4));
    assert_eq!(c.evicted(), 2);
    assert_eq!(c.pop(), Some(5));
    assert_eq!(c.evicted(), 2);
    assert_eq!(c.pop(), None);
}

#[test]
fn evictions_are_counted_when_the_consumer_steps_over_them() {
    let ring: EvictingRing<u32, 2> = EvictingRing::new();
    let mut c = ring.consumer().unwrap();
    for v in 0..4 {
        ring.force_push(v);
    }
    // 0 and 1 evicted; 2, 3 held.
    assert_eq!(c.drain().next(), Some(2));
    assert_eq!(c.evicted(), 2);
    assert_eq!(c.pop(), Some(3));
    assert_eq!(c.pop(), None);
}

#[test]
fn drain_takes_what_is_ready_and_at_most_one_ring() {
    let ring: Ring<u32, 4> = Ring::new();
    let mut c = ring.consumer().unwrap();
    for v in 0..4 {
        ring.try_push(v).unwrap();
    }
    let mut d = c.drain();
    assert_eq!(d.size_hint(), (0, Some(4)));
    let mut got = Vec::new();
    for next in 4..10 {
        match d.next() {
            Some(v) => got.push(v),
            None => break,
        }
        // A push while draining (a slot was just freed) may be taken by the same drain...
        ring.try_push(next).unwrap();
    }
    // ...but one drain never takes more than N values, so a steady stream cannot pin it.
    assert_eq!(got, [0, 1, 2, 3]);
    assert_eq!(c.drain().collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert_eq!(c.drain().next(), None);
}

#[test]
fn one_consumer_at_a_time_and_the_next_continues() {
    let ring: Ring<u32, 4> = Ring::new();
    for i in 0..3 {
        ring.try_push(i).unwrap();
    }
    let mut a = ring.consumer().unwrap();
    assert!(ring.consumer().is_none());
    assert_eq!(a.pop(), Some(0));
    drop(a);
    let mut b = ring.consumer().unwrap();
    assert_eq!(b.pop(), Some(1));
    assert_eq!(b.pop(), Some(2));
}

#[test]
fn drop_drops_exactly_what_is_left() {
    let log = Rc::new(RefCell::new(Vec::new()));
    {
        let ring: EvictingRing<Noisy, 4> = EvictingRing::new();
        for i in 0..4 {
            assert!(ring.try_push(Noisy(i, log.clone())).is_ok());
        }
        // Rejected value comes back and is dropped here, once.
        let back = ring
            .try_push(Noisy(99, log.clone()))
            .unwrap_err()
            .into_inner();
        assert_eq!(back.0, 99);
        drop(back);
        // Evicted value comes back to the caller.
        let evicted = ring.force_push(Noisy(4, log.clone())).unwrap();
        assert_eq!(evicted.0, 0);
        drop(evicted);
        let mut c = ring.consumer().unwrap();
        let popped = c.pop().unwrap();
        assert_eq!(popped.0, 1);
        drop(popped);
        assert_eq!(*log.borrow(), [99, 0, 1]);
        // 2, 3 and 4 are staged (the pop claimed them all): the ring's drop drops them.
        assert_eq!(ring.len(), 3);
    }
    let mut dropped = log.borrow().clone();
    dropped.sort_unstable();
    assert_eq!(dropped, [0, 1, 2, 3, 4, 99]);
}

#[test]
fn counters_cross_the_wrap_without_eviction() {
    let ring: Ring<u64, 4> = Ring::new_at(POSITION_MASK - 5);
    let mut c = ring.consumer().unwrap();
    for round in 0..20u64 {
        for i in 0..3 {
            ring.try_push(round * 3 + i).unwrap();
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(
            c.drain().collect::<std::vec::Vec<_>>(),
            [round * 3, round * 3 + 1, round * 3 + 2]
        );
    }
    assert_eq!(ring.pushed(), (POSITION_MASK - 5 + 60) & POSITION_MASK);
}

#[test]
fn counters_cross_the_wrap() {
    // `new_at` masks: this starts 6 positions before the wrap.
    let ring: EvictingRing<u64, 4> = EvictingRing::new_at(usize::MAX - 5);
    let mut c = ring.consumer().unwrap();
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    for _ in 0..20 {
        for _ in 0..3 {
            ring.try_push(next_in).unwrap();
            next_in += 1;
        }
        assert_eq!(ring.len(), 3);
        for _ in 0..3 {
            assert_eq!(c.pop(), Some(next_out));
            next_out += 1;
        }
    }
    // And eviction across the wrap.
    for v in 100..110 {
        ring.force_push(v);
    }
    assert_eq!(c.drain().collect::<Vec<_>>(), [106, 107, 108, 109]);
    assert_eq!(c.evicted(), 6);
}

#[test]
fn zero_sized_values() {
    let ring: EvictingRing<(), 2> = EvictingRing::new();
    let mut c = ring.consumer().unwrap();
    ring.try_push(()).unwrap();
    ring.try_push(()).unwrap();
    assert!(ring.try_push(()).is_err());
    assert_eq!(ring.force_push(()), Some(()));
    assert_eq!(c.drain().count(), 2);
    assert_eq!(c.evicted(), 1);
}

#[test]
fn full_error_formats() {
    let e = Full(5u8);
    assert_eq!(std::format!("{e}"), "ring is full");
    assert_eq!(std::format!("{e:?}"), "Full(..)");
    assert_eq!(e.into_inner(), 5);
}

#[test]
fn default_capacity_is_4096() {
    let ring: std::boxed::Box<Ring<u8>> = std::boxed::Box::default();
    assert_eq!(ring.capacity(), 4096);
}

#[test]
fn evictions_are_not_lost_across_a_consumer_hand_off() {
    let ring: EvictingRing<u32, 2> = EvictingRing::new();
    let first = ring.consumer().unwrap();
    for v in 0..5 {
        ring.force_push(v); // evicts 0, 1, 2 while nobody pops
    }
    assert_eq!(first.evicted(), 0);
    drop(first);
    let mut second = ring.consumer().unwrap();
    assert_eq!(second.pop(), Some(3));
    assert_eq!(
        second.evicted(),
        3,
        "the new consumer starts where the old one stopped"
    );
}

#[test]
fn staged_values_survive_a_consumer_hand_off() {
    let ring: EvictingRing<u32, 8> = EvictingRing::new();
    for v in 0..5 {
        ring.try_push(v).unwrap();
    }
    let mut first = ring.consumer().unwrap();
    assert_eq!(first.pop(), Some(0)); // claims 0..5 into the staging buffer
    assert_eq!(ring.len(), 4);
    drop(first);
    let mut second = ring.consumer().unwrap();
    assert_eq!(second.drain().collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(ring.len(), 0);
}

#[test]
fn force_push_never_evicts_a_staged_value() {
    let ring: EvictingRing<u32, 2> = EvictingRing::new();
    let mut c = ring.consumer().unwrap();
    ring.try_push(1).unwrap();
    ring.try_push(2).unwrap();
    assert_eq!(c.pop(), Some(1)); // 2 is staged: delivered, no longer in the slots
    assert_eq!(ring.force_push(3), None);
    assert_eq!(ring.force_push(4), None);
    assert_eq!(ring.len(), 3);
    assert!(ring.is_full());
    assert_eq!(
        ring.force_push(5),
        Some(3),
        "the oldest in the slots, not the staged 2"
    );
    assert_eq!(c.pop(), Some(2));
    assert_eq!(c.evicted(), 0);
    assert_eq!(c.pop(), Some(4));
    assert_eq!(c.evicted(), 1);
    assert_eq!(c.pop(), Some(5));
    assert_eq!(c.pop(), None);
}

#[test]
fn a_run_is_at_most_stage_values() {
    let ring: EvictingRing<u32, 64> = EvictingRing::new();
    for v in 0..64 {
        ring.try_push(v).unwrap();
    }
    let mut c = ring.consumer().unwrap();
    assert_eq!(c.pop(), Some(0));
    // The run took STAGE values out of the slots: that many are free again.
    for v in 64..64 + STAGE as u32 {
        ring.try_push(v).unwrap();
    }
    assert!(ring.try_push(999).is_err());
    assert_eq!(c.drain().count(), 64);
    assert_eq!(c.drain().count(), STAGE - 1);
}

#[test]
fn split_gives_a_solo_producer_that_continues_where_the_ring_is() {
    let mut ring: Ring<u32, 4> = Ring::new();
    ring.try_push(1).unwrap();
    {
        let (mut tx, mut rx) = ring.split();
        tx.try_push(2).unwrap();
        tx.try_push(3).unwrap();
        tx.try_push(4).unwrap();
        assert!(tx.try_push(5).is_err());
        assert_eq!(rx.pop(), Some(1));
        tx.try_push(5).unwrap();
        assert_eq!(tx.pushed(), 5);
        assert_eq!(rx.drain().collect::<Vec<_>>(), [2, 3, 4, 5]);
    }
    // Back to shared pushes after the split ends.
    ring.try_push(6).unwrap();
    assert_eq!(ring.consumer().unwrap().pop(), Some(6));
}

#[test]
fn split_takes_over_from_a_leaked_consumer() {
    let mut ring: Ring<u32, 4> = Ring::new();
    ring.try_push(1).unwrap();
    core::mem::forget(ring.consumer().unwrap());
    assert!(ring.consumer().is_none());
    let (_tx, mut rx) = ring.split();
    assert_eq!(rx.pop(), Some(1));
}
