//! Checks of the kind the test suites of peer queues run (crossbeam's `ArrayQueue`, rtrb,
//! heapless, thingbuf, bbqueue), against ringwal's API: drop counting across wrap-around,
//! eviction and hand-offs, values whose `Drop` panics, zero-sized values, the smallest
//! capacities, `static` rings, handles outliving the other side, and for the byte ring
//! zero-length and maximum-length records, padding at the end, shortened and abandoned
//! grants.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ringwal_core::{
    byte_channel, channel, evicting_channel, ByteRing, EvictingRing, Full, ReserveError, Ring,
    TryPopError,
};

/// Counts live values and drops; a value dropped twice trips the assert in `Drop`.
#[derive(Default)]
struct Counter {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

struct Counted {
    counter: Arc<Counter>,
    id: usize,
    dropped: bool,
}

impl Counted {
    fn new(counter: &Arc<Counter>, id: usize) -> Self {
        counter.created.fetch_add(1, Ordering::Relaxed);
        Counted {
            counter: counter.clone(),
            id,
            dropped: false,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert!(!self.dropped, "value {} dropped twice", self.id);
        self.dropped = true;
        self.counter.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl Counter {
    fn assert_all_dropped(&self) {
        assert_eq!(
            self.created.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            "every value created is dropped exactly once"
        );
    }
}

fn laps() -> usize {
    if cfg!(miri) {
        3
    } else {
        50
    }
}

#[test]
fn ring_dropped_with_values_inside_after_many_laps() {
    let counter = Arc::new(Counter::default());
    let mut id = 0;
    {
        let ring: Ring<Counted, 4> = Ring::new();
        let mut c = ring.consumer().unwrap();
        for lap in 0..laps() {
            // An uneven number per lap, so the front moves around the slots.
            for _ in 0..(lap % 2) + 1 {
                ring.try_push(Counted::new(&counter, id))
                    .map_err(|_| ())
                    .unwrap();
                id += 1;
            }
            for _ in 0..lap % 3 {
                drop(c.pop());
            }
            // Keep room for the next lap.
            while ring.len() > 2 {
                drop(c.pop());
            }
        }
        assert!(!ring.is_empty());
    }
    counter.assert_all_dropped();
}

#[test]
fn evicting_ring_dropped_with_staged_and_slot_values_after_evictions() {
    let counter = Arc::new(Counter::default());
    {
        let ring: EvictingRing<Counted, 4> = EvictingRing::new();
        let mut c = ring.consumer().unwrap();
        for id in 0..laps() * 4 + 3 {
            drop(ring.force_push(Counted::new(&counter, id)));
            if id % 5 == 0 {
                drop(c.pop());
            }
        }
        // The consumer claimed a run into the staging buffer; more pushes fill the slots.
        drop(c.pop());
        for id in 10_000..10_004 {
            drop(ring.force_push(Counted::new(&counter, id)));
        }
        drop(c);
    }
    counter.assert_all_dropped();
}

#[test]
fn a_rejected_value_comes_back_untouched_and_is_dropped_once() {
    let counter = Arc::new(Counter::default());
    {
        let ring: Ring<Counted, 2> = Ring::new();
        ring.try_push(Counted::new(&counter, 0)).ok().unwrap();
        ring.try_push(Counted::new(&counter, 1)).ok().unwrap();
        let Full(back) = ring.try_push(Counted::new(&counter, 2)).err().unwrap();
        assert_eq!(back.id, 2);
        assert_eq!(counter.dropped.load(Ordering::Relaxed), 0);
    }
    counter.assert_all_dropped();
}

#[test]
fn channel_ends_outlive_each_other_and_values_are_dropped_once() {
    let counter = Arc::new(Counter::default());
    // The receiver goes first: producers still push until full; the last producer's drop
    // drops what is left.
    let (tx, rx) = channel::<Counted>(4);
    tx.try_push(Counted::new(&counter, 0)).ok().unwrap();
    drop(rx);
    let tx2 = tx.clone();
    for id in 1..4 {
        tx2.try_push(Counted::new(&counter, id)).ok().unwrap();
    }
    assert!(tx.try_push(Counted::new(&counter, 4)).is_err());
    drop(tx);
    assert_eq!(
        counter.dropped.load(Ordering::Relaxed),
        1,
        "only the refused one"
    );
    drop(tx2);
    counter.assert_all_dropped();

    // The producers go first: the receiver still gets everything.
    let (tx, mut rx) = evicting_channel::<Counted>(2);
    for id in 10..15 {
        drop(tx.force_push(Counted::new(&counter, id)).ok().unwrap());
    }
    drop(tx);
    let got: Vec<usize> = rx.drain().map(|v| v.id).collect();
    assert_eq!(got, [13, 14]);
    assert_eq!(rx.evicted(), 3);
    drop(rx);
    counter.assert_all_dropped();
}

#[test]
fn evicting_receiver_dropped_with_staged_values_then_producer_keeps_pushing() {
    let counter = Arc::new(Counter::default());
    let (tx, mut rx) = evicting_channel::<Counted>(4);
    for id in 0..4 {
        tx.force_push(Counted::new(&counter, id)).ok().unwrap();
    }
    drop(rx.pop()); // claims the run: three values staged
    drop(rx);
    for id in 4..20 {
        drop(tx.force_push(Counted::new(&counter, id)).ok().unwrap());
    }
    drop(tx);
    counter.assert_all_dropped();
}

/// A value whose drop panics when its flag is set.
struct PanicOnDrop<'a> {
    armed: bool,
    drops: &'a Cell<usize>,
}

impl Drop for PanicOnDrop<'_> {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
        if self.armed {
            panic!("drop panics");
        }
    }
}

#[test]
fn a_panicking_drop_of_a_popped_value_leaves_the_ring_usable() {
    let drops = Cell::new(0);
    let ring: EvictingRing<PanicOnDrop<'_>, 4> = EvictingRing::new();
    let mut c = ring.consumer().unwrap();
    for i in 0..4 {
        assert!(ring
            .try_push(PanicOnDrop {
                armed: i == 1,
                drops: &drops,
            })
            .is_ok());
    }
    drop(c.pop());
    let r = catch_unwind(AssertUnwindSafe(|| drop(c.pop())));
    assert!(r.is_err());
    assert_eq!(drops.get(), 2);
    // The ring goes on: the staged values and new ones come out in order.
    assert!(ring
        .try_push(PanicOnDrop {
            armed: false,
            drops: &drops,
        })
        .is_ok());
    assert_eq!(c.drain().count(), 3);
    assert_eq!(drops.get(), 5);
    assert!(ring.is_empty());
}

#[test]
fn a_panicking_drop_inside_the_rings_drop_never_drops_twice() {
    let drops = Cell::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let ring: Ring<PanicOnDrop<'_>, 4> = Ring::new();
        for i in 0..3 {
            assert!(ring
                .try_push(PanicOnDrop {
                    armed: i == 1,
                    drops: &drops,
                })
                .is_ok());
        }
    }));
    assert!(r.is_err());
    // The first drops; the second panics (counted before it panics); the third may leak (as
    // crossbeam's `ArrayQueue` does), but nothing is dropped twice.
    assert!((2..=3).contains(&drops.get()), "{}", drops.get());
}

#[test]
fn zero_sized_values_in_every_front_end() {
    let ring: Ring<(), 2> = Ring::new();
    let mut c = ring.consumer().unwrap();
    for _ in 0..laps() {
        ring.try_push(()).unwrap();
        ring.try_push(()).unwrap();
        assert_eq!(ring.try_push(()), Err(Full(())));
        assert_eq!(c.drain().count(), 2);
    }
    let (tx, mut rx) = channel::<()>(2);
    tx.try_push(()).unwrap();
    assert_eq!(rx.pop(), Some(()));
    assert_eq!(rx.pop(), None);
    let (tx, mut rx) = evicting_channel::<()>(2);
    for _ in 0..5 {
        let _ = tx.force_push(());
    }
    assert_eq!(rx.drain().count(), 2);
    assert_eq!(rx.evicted(), 3);

    // A zero-sized type with a drop counts like any other.
    struct Zst;
    static ZST_DROPS: AtomicUsize = AtomicUsize::new(0);
    impl Drop for Zst {
        fn drop(&mut self) {
            ZST_DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }
    {
        let ring: EvictingRing<Zst, 2> = EvictingRing::new();
        for _ in 0..7 {
            drop(ring.force_push(Zst));
        }
    }
    assert_eq!(ZST_DROPS.load(Ordering::Relaxed), 7);
}

#[test]
fn capacity_two_is_exact_and_fifo_over_many_laps() {
    let ring: Ring<usize, 2> = Ring::new();
    let mut c = ring.consumer().unwrap();
    let mut next = 0;
    for i in 0..laps() * 2 {
        ring.try_push(2 * i).unwrap();
        ring.try_push(2 * i + 1).unwrap();
        assert!(ring.is_full());
        assert_eq!(ring.try_push(usize::MAX), Err(Full(usize::MAX)));
        assert_eq!(c.pop(), Some(next));
        assert_eq!(c.pop(), Some(next + 1));
        next += 2;
        assert_eq!(c.try_pop(), Err(TryPopError::Empty));
    }
}

#[test]
fn run_time_capacities_that_are_not_powers_of_two_are_refused() {
    for cap in [0, 1, 3, 5, 6, 7, 12, 1000, usize::MAX] {
        assert!(ringwal_core::try_channel::<u8>(cap).is_err(), "{cap}");
    }
    for cap in [0, 1, 8, 15, 17, 24, 1000] {
        assert!(ringwal_core::try_byte_channel(cap).is_err(), "{cap}");
    }
    // The largest valid capacity is valid, and too large to allocate: an error, not an abort.
    assert!(matches!(
        ringwal_core::try_channel::<u64>(ringwal_core::MAX_CAPACITY),
        Err(ringwal_core::CapacityError::OutOfMemory { .. })
    ));
}

#[test]
fn a_static_ring_and_a_static_byte_ring() {
    static RING: EvictingRing<u32, 8> = EvictingRing::new();
    static BYTES: ByteRing<64> = ByteRing::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..20 {
                RING.force_push(i);
            }
            BYTES.try_push(b"static").unwrap();
        });
    });
    let mut c = RING.consumer().unwrap();
    assert_eq!(c.drain().collect::<Vec<_>>(), (12..20).collect::<Vec<_>>());
    assert_eq!(c.evicted(), 12);
    assert_eq!(&*BYTES.consumer().unwrap().read().unwrap(), b"static");
}

// --- The byte ring ------------------------------------------------------------------------

#[test]
fn zero_length_records_fill_and_drain_over_many_laps() {
    let ring: ByteRing<64> = ByteRing::new();
    let mut c = ring.consumer().unwrap();
    for _ in 0..laps() {
        // Eight granules: eight empty records.
        for _ in 0..8 {
            ring.try_push(&[]).unwrap();
        }
        assert_eq!(ring.try_push(&[]), Err(ReserveError::Full));
        let batch = c.read_batch(0).unwrap();
        assert_eq!(
            batch.len(),
            8,
            "the first record always, then zero-byte ones"
        );
        assert!(batch.iter().all(|r| r.is_empty()));
        drop(batch);
        assert!(ring.is_empty());
    }
}

#[test]
fn a_record_of_exactly_the_maximum_length_fits_wherever_the_tail_is() {
    for offset in 0..8 {
        let ring: ByteRing<128> = ByteRing::new();
        let max = ring.max_record_len();
        assert_eq!(max, 56);
        let mut c = ring.consumer().unwrap();
        // Move the tail (and head) to granule `offset`.
        for _ in 0..offset {
            ring.try_push(&[]).unwrap();
        }
        while c.read().is_ok() {}
        let record: Vec<u8> = (0..max as u8).collect();
        ring.try_push(&record).unwrap();
        assert_eq!(&*c.read().unwrap(), &record[..]);
        assert!(ring.is_empty());
        assert!(matches!(
            ring.try_reserve(max + 1),
            Err(ReserveError::TooLarge { .. })
        ));
    }
}

#[test]
fn a_record_that_does_not_fit_before_the_end_pads_and_wraps_contiguously() {
    let ring: ByteRing<64> = ByteRing::new();
    let mut c = ring.consumer().unwrap();
    ring.try_push(&[1; 20]).unwrap(); // 4 granules
    drop(c.read().unwrap());
    // 4 granules left before the end; 24 bytes need 4: fits exactly.
    ring.try_push(&[2; 24]).unwrap();
    // Now at granule 0 of the next lap.
    ring.try_push(&[3; 8]).unwrap(); // 2 granules
    drop(c.read().unwrap());
    drop(c.read().unwrap());
    // At granule 2: 6 left before the end; 24 bytes fit; then 2 left and 16 bytes need 3.
    ring.try_push(&[4; 24]).unwrap();
    assert_eq!(ring.try_push(&[5; 16]), Err(ReserveError::Full)); // pad 2 + 3 > 4 free
    drop(c.read().unwrap());
    ring.try_push(&[5; 16]).unwrap(); // pads the last 2 granules, starts the next lap
    let r = c.read().unwrap();
    assert_eq!(&*r, &[5; 16]);
    drop(r);
    assert!(ring.is_empty());
    assert_eq!(c.read().unwrap_err(), TryPopError::Empty);
}

#[test]
fn commit_of_fewer_bytes_than_reserved_and_abandoned_grants() {
    let ring: ByteRing<256> = ByteRing::new();
    let mut c = ring.consumer().unwrap();
    for lap in 0..laps() {
        let mut g = ring.try_reserve(100).unwrap();
        assert!(
            g.iter().all(|&b| b == 0),
            "a grant starts zeroed (lap {lap})"
        );
        g.fill(0xAA);
        g.commit_len(3);
        let g = ring.try_reserve(40).unwrap();
        drop(g); // abandoned
        let mut g = ring.try_reserve(17).unwrap();
        g.fill(0x55);
        g.commit_len(0);
        let mut g = ring.try_reserve(9).unwrap();
        g.fill(7);
        g.commit();
        let batch = c.read_batch(usize::MAX).unwrap();
        let got: Vec<&[u8]> = batch.iter().collect();
        assert_eq!(got, [&[0xAA; 3][..], &[][..], &[7; 9][..]]);
        drop(batch);
        assert!(ring.is_empty());
    }
}

#[test]
fn the_smallest_byte_ring() {
    let ring: ByteRing<16> = ByteRing::new();
    assert_eq!(ring.max_record_len(), 0);
    let mut c = ring.consumer().unwrap();
    for _ in 0..laps() {
        ring.try_push(&[]).unwrap();
        ring.try_push(&[]).unwrap();
        assert_eq!(ring.try_push(&[]), Err(ReserveError::Full));
        assert!(matches!(
            ring.try_push(&[0]),
            Err(ReserveError::TooLarge { len: 1, max: 0 })
        ));
        assert_eq!(c.read().unwrap().len(), 0);
        ring.try_reserve(0).unwrap().discard();
        assert_eq!(c.read().unwrap().len(), 0);
        assert_eq!(c.read().unwrap_err(), TryPopError::Empty);
    }
}

#[test]
fn byte_producer_outlives_the_receiver_and_the_other_way_round() {
    let (tx, rx) = byte_channel(64);
    drop(rx);
    tx.try_push(b"after").unwrap();
    let tx2 = tx.clone();
    drop(tx);
    tx2.try_push(b"still").unwrap();
    drop(tx2);

    let (tx, mut rx) = byte_channel(64);
    tx.try_push(b"one").unwrap();
    let held = tx.clone();
    let g = held.try_reserve(5).unwrap();
    drop(tx);
    assert_eq!(&*rx.read().unwrap(), b"one");
    assert_eq!(rx.read().unwrap_err(), TryPopError::Pending);
    g.commit();
    assert_eq!(&*rx.read().unwrap(), &[0; 5]);
    assert_eq!(rx.read().unwrap_err(), TryPopError::Empty);
}

#[test]
fn a_panic_while_a_grant_is_held_discards_it_and_the_ring_goes_on() {
    let ring: ByteRing<64> = ByteRing::new();
    let mut c = ring.consumer().unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut g = ring.try_reserve(8).unwrap();
        g.copy_from_slice(b"partial!");
        panic!("user code panics while writing");
    }));
    assert!(r.is_err());
    ring.try_push(b"next").unwrap();
    assert_eq!(&*c.read().unwrap(), b"next");
    assert!(ring.is_empty());
}

// --- Split rings: the halves hand out `&Ring` -----------------------------------------------

/// `SoloProducer::ring` (and the split consumer's `Consumer::ring`) hand out `&Ring` for as
/// long as the halves live, and `&Ring` has `try_push`. A shared push next to the solo
/// producer, which keeps the ring's tail in itself, must not claim a position the solo
/// producer will write again (that overwrote a live value: a leak here, a data race with a
/// second thread).
#[test]
fn a_shared_push_through_a_split_rings_handles_never_overwrites_a_value() {
    let counter = Arc::new(Counter::default());
    {
        let mut ring: Ring<Counted, 4> = Ring::new();
        let (mut tx, mut rx) = ring.split();
        let mut accepted = Vec::new();
        tx.try_push(Counted::new(&counter, 0)).ok().unwrap();
        accepted.push(0);
        match tx.ring().try_push(Counted::new(&counter, 1)) {
            Ok(()) => accepted.push(1),
            Err(Full(back)) => drop(back),
        }
        match rx.ring().try_push(Counted::new(&counter, 2)) {
            Ok(()) => accepted.push(2),
            Err(Full(back)) => drop(back),
        }
        tx.try_push(Counted::new(&counter, 3)).ok().unwrap();
        accepted.push(3);
        let popped: Vec<usize> = rx.drain().map(|v| v.id).collect();
        drop((tx, rx));
        if popped != accepted {
            // The ring's counters are inconsistent then (its `tail` moved backwards), and its
            // drop would walk the whole position space: leak it and fail.
            std::mem::forget(ring);
            panic!("accepted {accepted:?}, popped {popped:?}");
        }
    }
    counter.assert_all_dropped();
}

#[test]
fn force_push_through_a_split_rings_handles_panics_and_drops_its_value() {
    let counter = Arc::new(Counter::default());
    {
        let mut ring: EvictingRing<Counted, 2> = EvictingRing::new();
        let (mut tx, mut rx) = ring.split();
        tx.try_push(Counted::new(&counter, 0)).ok().unwrap();
        let shared = tx.ring();
        let r = catch_unwind(AssertUnwindSafe(|| {
            shared.force_push(Counted::new(&counter, 1))
        }));
        assert!(r.is_err(), "a shared push next to the solo producer");
        assert_eq!(counter.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(tx.force_push(Counted::new(&counter, 2)).map(|v| v.id), None);
        assert_eq!(
            tx.force_push(Counted::new(&counter, 3)).map(|v| v.id),
            Some(0)
        );
        let popped: Vec<usize> = rx.drain().map(|v| v.id).collect();
        assert_eq!(popped, [2, 3]);
    }
    counter.assert_all_dropped();
}

/// Two threads: the solo producer and a shared push through `SoloProducer::ring`. Before
/// shared pushes were refused during a split, the two wrote the same slot at once (Miri and
/// ThreadSanitizer report the race).
#[test]
fn a_shared_push_races_the_solo_producer_without_sharing_a_slot() {
    let rounds = if cfg!(miri) { 20 } else { 500 };
    // Dropped only if the test passes: with wrong counters, the drop could walk the whole
    // position space.
    let mut ring = std::mem::ManuallyDrop::new(Ring::<u64, 8>::new());
    let (mut tx, mut rx) = ring.split();
    let shared = tx.ring();
    let mut refused = 0;
    // Before the fix the ring's counters went wrong and every side could wait forever: fail
    // instead.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let waiting = |what: &str| {
        assert!(std::time::Instant::now() < deadline, "stuck: {what}");
        std::hint::spin_loop();
    };
    std::thread::scope(|s| {
        // The solo producer is handed back, not dropped, so it outlives the shared pushes.
        let solo = s.spawn(move || {
            for i in 0..rounds {
                while tx.try_push(i).is_err() {
                    waiting("the solo producer");
                }
            }
            tx
        });
        let other = s.spawn(|| {
            for _ in 0..rounds {
                // Only when there is room: a refusal then is the split's, not a full ring's.
                while shared.is_full() {
                    waiting("the shared producer");
                }
                if shared.try_push(u64::MAX).is_err() {
                    refused += 1;
                }
            }
        });
        let mut next = 0;
        while next < rounds {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, next, "the solo producer's values, each once, in order");
                    next += 1;
                }
                None => waiting("the consumer"),
            }
        }
        other.join().unwrap();
        assert_eq!(rx.pop(), None);
        drop(solo.join().unwrap());
    });
    assert_eq!(
        refused, rounds,
        "every shared push is refused while the split lives"
    );
    drop(rx);
    drop(std::mem::ManuallyDrop::into_inner(ring));
}

#[test]
fn a_split_rings_shared_pushes_work_again_once_the_solo_producer_is_gone() {
    let mut ring: EvictingRing<u32, 4> = EvictingRing::new();
    {
        let (mut tx, mut rx) = ring.split();
        tx.try_push(1).unwrap();
        let shared = tx.ring();
        drop(tx);
        shared.try_push(2).unwrap();
        assert_eq!(shared.force_push(3), None);
        assert_eq!(rx.drain().collect::<Vec<_>>(), [1, 2, 3]);
    }
    ring.try_push(4).unwrap();
    let (mut tx, mut rx) = ring.split();
    tx.try_push(5).unwrap();
    assert_eq!(rx.drain().collect::<Vec<_>>(), [4, 5]);
}

// --- Variance: handles are covariant in the lifetime of the ring they borrow ----------------
//
// Compile-time checks (as crossbeam's and rtrb's suites keep): a handle borrowed for a long
// lifetime can be used where a shorter one is expected.

#[allow(dead_code)]
fn variance<'short, 'long: 'short>(
    c: ringwal_core::Consumer<'long, u8, 4>,
    p: ringwal_core::SoloProducer<'long, u8, 4>,
    bc: ringwal_core::ByteConsumer<'long>,
    g: ringwal_core::Grant<'long>,
    lp: ringwal_core::LaneProducer<'long, u8, 4, 2>,
    lc: ringwal_core::LanesConsumer<'long, u8, 4, 2>,
) -> (
    ringwal_core::Consumer<'short, u8, 4>,
    ringwal_core::SoloProducer<'short, u8, 4>,
    ringwal_core::ByteConsumer<'short>,
    ringwal_core::Grant<'short>,
    ringwal_core::LaneProducer<'short, u8, 4, 2>,
    ringwal_core::LanesConsumer<'short, u8, 4, 2>,
) {
    (c, p, bc, g, lp, lc)
}

#[test]
fn a_leaked_consumer_leaks_no_values_and_lanes_drop_theirs() {
    let counter = Arc::new(Counter::default());
    {
        let ring: EvictingRing<Counted, 4> = EvictingRing::new();
        for id in 0..6 {
            drop(ring.force_push(Counted::new(&counter, id)));
        }
        let mut c = ring.consumer().unwrap();
        drop(c.pop()); // the rest of the run is staged
        std::mem::forget(c);
        assert!(ring.consumer().is_none());
        drop(ring.force_push(Counted::new(&counter, 6)));
    }
    counter.assert_all_dropped();
    {
        let lanes: ringwal_core::Lanes<Counted, 2, 3> = ringwal_core::Lanes::new();
        let mut ps: Vec<_> = (0..3).map(|_| lanes.producer().unwrap()).collect();
        let mut id = 100;
        for p in &mut ps {
            for _ in 0..3 {
                // The third push of each lane is refused and dropped here.
                drop(p.try_push(Counted::new(&counter, id)));
                id += 1;
            }
        }
        let mut c = lanes.consumer().unwrap();
        drop(c.pop());
        drop(ps);
        drop(c);
    }
    counter.assert_all_dropped();
}
