//! Multi-threaded stress tests: several producers, one consumer, `try_push` and `force_push`.
//! They check exactly-once delivery (popped + evicted + dropped = pushed, no duplicates) and
//! per-producer order. CI runs them in release mode and under ThreadSanitizer; Miri runs them
//! with small counts. Passing is evidence, not proof: the proof is the loom models.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use std::sync::Mutex;

use ringwal_core::{
    channel, evicting_channel, try_channel, CapacityError, Evict, EvictingRing, Lanes, Mode,
    NoEvict, PushError, Ring, TryPopError,
};

/// Values per producer: large in release, smaller in debug, tiny under Miri.
fn per_producer() -> u64 {
    if cfg!(miri) {
        60
    } else if cfg!(debug_assertions) {
        20_000
    } else {
        300_000
    }
}

const PRODUCERS: u64 = 3;

fn encode(producer: u64, seq: u64) -> u64 {
    (producer << 40) | seq
}

fn decode(v: u64) -> (usize, u64) {
    ((v >> 40) as usize, v & ((1 << 40) - 1))
}

/// Checks per-producer order of what the consumer got and that `got ∪ evicted` is exactly
/// every value pushed, once.
fn check(got: &[u64], evicted: &[u64], per: u64) {
    let mut last: Vec<Option<u64>> = vec![None; PRODUCERS as usize];
    for &v in got {
        let (p, seq) = decode(v);
        if let Some(prev) = last[p] {
            assert!(seq > prev, "producer {p}: {seq} after {prev}");
        }
        last[p] = Some(seq);
    }
    let mut all: Vec<u64> = got.iter().chain(evicted).copied().collect();
    all.sort_unstable();
    let expected: Vec<u64> = (0..PRODUCERS)
        .flat_map(|p| (0..per).map(move |s| encode(p, s)))
        .collect();
    assert_eq!(all.len(), expected.len(), "values lost or duplicated");
    assert!(all == expected, "values lost or duplicated");
}

fn run<const N: usize>(force: bool) {
    if force {
        run_with::<N, Evict>(|ring, v, evicted| evicted.extend(ring.force_push(v)));
    } else {
        run_with::<N, NoEvict>(|ring, v, _| {
            let mut v = v;
            while let Err(full) = ring.try_push(v) {
                v = full.into_inner();
                thread::yield_now();
            }
        });
    }
}

/// One push of value `v` by a producer; evicted values go into the vector.
type PushFn<const N: usize, M> = fn(&Ring<u64, N, M>, u64, &mut Vec<u64>);

fn run_with<const N: usize, M: Mode>(push: PushFn<N, M>) {
    let ring: Arc<Ring<u64, N, M>> = Arc::new(Ring::new());
    let per = per_producer();
    let start = Arc::new(Barrier::new(PRODUCERS as usize + 1));
    let done = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let ring = ring.clone();
            let start = start.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut evicted = Vec::new();
                start.wait();
                for seq in 0..per {
                    push(&ring, encode(p, seq), &mut evicted);
                }
                // Release pairs with the consumer's Acquire load: our pushes happen-before it
                // sees us done, so its last drain sees them.
                done.fetch_add(1, Ordering::Release);
                evicted
            })
        })
        .collect();
    let mut consumer = ring.consumer().unwrap();
    let mut got = Vec::new();
    start.wait();
    loop {
        let finished = done.load(Ordering::Acquire) == PRODUCERS as usize;
        let before = got.len();
        got.extend(consumer.pop());
        got.extend(consumer.drain());
        if finished && got.len() == before {
            break;
        }
        if got.len() == before {
            thread::yield_now();
        }
    }
    let evicted: Vec<u64> = producers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        consumer.evicted(),
        evicted.len() as u64,
        "consumer's eviction count"
    );
    check(&got, &evicted, per);
    assert!(ring.is_empty());
}

#[test]
fn try_push_n4() {
    run::<4>(false);
}

#[test]
fn try_push_n4096() {
    run::<4096>(false);
}

#[test]
fn force_push_n2() {
    run::<2>(true);
}

#[test]
fn force_push_n64() {
    run::<64>(true);
}

/// Mixed pushers and a consumer that comes and goes; values carry a drop counter, so the
/// `Ring`'s `Drop` at the end must drop exactly what is left.
#[test]
fn mixed_with_drop_counting() {
    use std::sync::atomic::AtomicU8;
    let per = per_producer() / 4;
    // One drop counter per value: a leak and a double drop cannot cancel out.
    let drops: Arc<Vec<AtomicU8>> =
        Arc::new((0..PRODUCERS * per).map(|_| AtomicU8::new(0)).collect());
    struct Counted(usize, Arc<Vec<AtomicU8>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1[self.0].fetch_add(1, Ordering::Relaxed);
        }
    }
    {
        let ring: Arc<EvictingRing<Counted, 8>> = Arc::new(EvictingRing::new());
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let ring = ring.clone();
                let drops = drops.clone();
                thread::spawn(move || {
                    for seq in 0..per {
                        let v = Counted((p * per + seq) as usize, drops.clone());
                        if seq % 2 == 0 {
                            drop(ring.force_push(v));
                        } else {
                            drop(ring.try_push(v));
                        }
                    }
                })
            })
            .collect();
        let consumer_thread = {
            let ring = ring.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // A fresh consumer every few values: the claim hand-off under load.
                    if let Some(mut c) = ring.consumer() {
                        for _ in 0..3 {
                            drop(c.pop());
                        }
                    }
                    thread::yield_now();
                }
            })
        };
        for h in handles {
            h.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        consumer_thread.join().unwrap();
        // Some values are still in the ring; dropping the last Arc drops them.
    }
    for (id, d) in drops.iter().enumerate() {
        assert_eq!(
            d.load(Ordering::Relaxed),
            1,
            "value {id} dropped the wrong number of times"
        );
    }
}

#[test]
fn channel_producers_and_receiver() {
    let (tx, mut rx) = channel::<u64>(16);
    let per = per_producer();
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for seq in 0..per {
                    let mut v = encode(p, seq);
                    while let Err(full) = tx.try_push(v) {
                        v = full.into_inner();
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let total = (per * PRODUCERS) as usize;
    let mut got = Vec::with_capacity(total);
    // A lost value must fail the test, not hang it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while got.len() < total {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {total} values arrived",
            got.len()
        );
        let before = got.len();
        got.extend(rx.drain());
        if got.len() == before {
            thread::yield_now();
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(rx.pop(), None);
    check(&got, &[], per);
}

/// crossbeam's `linearizable` scenario: every thread pushes one value and then pops one. A pop
/// starts only after its thread's own push returned, and pops are serialised, so at every pop
/// the ring holds at least one value: `pop` must never say `None`, even while an earlier
/// position is claimed by a producer that has not published it yet (it waits that out).
/// `try_pop` may say `Pending` then, and must never say `Empty`.
///
/// The push side retries on `Full`, as crossbeam's scenario does: a slot freed by another
/// thread's pop, with no happens-before edge to this push, may still look occupied to it (the
/// C++ memory model allows the stale stamp, and Miri's weak-memory emulation produces it), so
/// `Full` here is a transient "no free slot seen yet", not a lost slot. A push that never
/// succeeds would hang: the loop is bounded and fails the test instead.
#[test]
fn pop_is_linearizable_and_try_pop_tells_pending_from_empty() {
    const THREADS: usize = 4;
    let rounds = if cfg!(miri) { 30 } else { 20_000 };
    for use_try_pop in [false, true] {
        let (tx, rx) = channel::<usize>(THREADS);
        let rx = Mutex::new(rx);
        let pending = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..THREADS {
                let (tx, rx, pending) = (tx.clone(), &rx, &pending);
                s.spawn(move || {
                    for i in 0..rounds {
                        let mut v = t * rounds + i;
                        let mut tries = 0u32;
                        while let Err(full) = tx.try_push(v) {
                            v = full.into_inner();
                            tries += 1;
                            assert!(tries < 10_000_000, "a slot never became free");
                            std::hint::spin_loop();
                        }
                        let mut rx = rx.lock().unwrap();
                        if use_try_pop {
                            loop {
                                match rx.try_pop() {
                                    Ok(_) => break,
                                    Err(TryPopError::Pending) => {
                                        pending.fetch_add(1, Ordering::Relaxed);
                                        std::hint::spin_loop();
                                    }
                                    Err(TryPopError::Empty) => {
                                        panic!("try_pop said Empty after this thread's push")
                                    }
                                }
                            }
                        } else {
                            assert!(rx.pop().is_some(), "pop said None after this thread's push");
                        }
                    }
                });
            }
        });
        let mut rx = rx.into_inner().unwrap();
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        assert_eq!(rx.pop(), None);
        // Not asserted (it depends on scheduling), but shown: how often `Pending` was seen.
        if use_try_pop {
            println!("try_pop saw Pending {} times", pending.into_inner());
        }
    }
}

/// A ring of 2^20 slots is built, used and dropped on a thread with a 64 KiB stack: the heap
/// ring never exists as a stack temporary. (Too slow for Miri's interpreter: 2^20 slots.)
#[test]
#[cfg_attr(miri, ignore = "2^20 slots are too many for Miri")]
fn a_huge_heap_ring_on_a_tiny_stack() {
    let handle = thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(|| {
            let (tx, mut rx) = evicting_channel::<[u64; 4]>(1 << 20);
            assert_eq!(tx.capacity(), 1 << 20);
            for i in 0..(1u64 << 20) {
                tx.try_push([i; 4]).unwrap();
            }
            assert!(tx.is_full());
            assert_eq!(tx.try_push([0; 4]).unwrap_err().into_inner(), [0; 4]);
            assert_eq!(tx.force_push([7; 4]), Ok(Some([0; 4])));
            assert_eq!(rx.pop(), Some([1; 4]));
            assert_eq!(rx.evicted(), 1);
            assert_eq!(rx.drain().count(), (1 << 20) - 1);
            drop((tx, rx));
            // And a string ring, whose drop must drop what is left.
            let (tx, _rx) = channel::<String>(1 << 20);
            for i in 0..1000 {
                tx.try_push(i.to_string()).unwrap();
            }
            // An evicting ring of large values: its consumer's staging buffer (STAGE values,
            // 64 KiB here, the whole stack) is built in place on the heap too.
            let (tx, mut rx) = evicting_channel::<[u64; 256]>(2);
            tx.try_push([1; 256]).unwrap();
            assert_eq!(rx.pop().map(|v| v[0]), Some(1));
        })
        .unwrap();
    handle.join().expect("the 64 KiB thread completes");
}

#[test]
fn an_invalid_capacity_is_an_error_from_try_channel_and_a_clear_panic_from_channel() {
    for capacity in [
        0,
        1,
        3,
        1000,
        4095,
        usize::MAX,
        1 << (usize::BITS - 1),
        1 << (usize::BITS - 2),
    ] {
        assert_eq!(
            try_channel::<u8>(capacity).unwrap_err(),
            CapacityError::Invalid { capacity }
        );
    }
    // Valid, but more than any allocator has: an error, not an abort.
    let capacity = 1 << (usize::BITS - 3);
    assert_eq!(
        try_channel::<[u8; 64]>(capacity).unwrap_err(),
        CapacityError::OutOfMemory { capacity }
    );
    assert!(try_channel::<u8>(2).is_ok());
    let panic = std::panic::catch_unwind(|| channel::<u8>(1000)).unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.contains("capacity 1000 is not a power of two"), "{msg}");
}

/// The solo producer (`Ring::split`) against a consumer thread, across many laps of a small
/// ring: every value once, in order; the consumer never told `Pending`.
#[test]
fn solo_producer_and_consumer() {
    let per = per_producer() * 3;
    for evicting in [false, true] {
        if evicting {
            let mut ring: Box<EvictingRing<u64, 8>> = Box::default();
            let (mut tx, mut rx) = ring.split();
            let (got, evicted) = thread::scope(|s| {
                let producer = s.spawn(move || {
                    let mut evicted = Vec::new();
                    for v in 0..per {
                        evicted.extend(tx.force_push(v));
                    }
                    evicted
                });
                let mut got = Vec::new();
                loop {
                    let finished = producer.is_finished();
                    let n = got.len();
                    got.extend(rx.drain());
                    if got.len() == n {
                        if finished {
                            break;
                        }
                        // Both sides yield when they wait, as every test here does: two
                        // threads spinning on one core would wait for each other a time slice
                        // per lap.
                        thread::yield_now();
                    }
                }
                let evicted = producer.join().unwrap();
                // `is_finished` is no synchronisation (a relaxed look at the thread's state): the
                // drain above may have missed the last values. The join is: take the rest.
                got.extend(rx.drain());
                assert_eq!(rx.evicted(), evicted.len() as u64);
                (got, evicted)
            });
            assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
            let mut all: Vec<u64> = got.into_iter().chain(evicted).collect();
            all.sort_unstable();
            assert_eq!(all, (0..per).collect::<Vec<_>>());
        } else {
            let mut ring: Box<Ring<u64, 8>> = Box::default();
            let (mut tx, mut rx) = ring.split();
            thread::scope(|s| {
                s.spawn(move || {
                    for v in 0..per {
                        let mut v = v;
                        while let Err(full) = tx.try_push(v) {
                            v = full.into_inner();
                            thread::yield_now();
                        }
                    }
                });
                let mut next = 0;
                while next < per {
                    // Odd rounds `try_pop`, even ones `pop`: neither ever waits on a split ring,
                    // and `try_pop` never says `Pending` there.
                    let got = if next % 2 == 1 {
                        match rx.try_pop() {
                            Ok(v) => Some(v),
                            Err(e) => {
                                assert_eq!(e, TryPopError::Empty, "a split ring is never Pending");
                                None
                            }
                        }
                    } else {
                        rx.pop()
                    };
                    match got {
                        Some(v) => {
                            assert_eq!(v, next);
                            next += 1;
                        }
                        None => thread::yield_now(),
                    }
                }
            });
            assert_eq!(rx.pop(), None);
        }
    }
}

/// `close` racing producers (the std writer's shutdown): every push that succeeded is counted
/// in the final position `close` returns, none after it succeeds, and a receiver that takes
/// values until its position reaches that final one gets every accepted value (evicted ones
/// counted), each once.
#[test]
fn close_races_producers_and_the_final_position_is_exact() {
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for round in 0..rounds {
        let evicting = round % 2 == 1;
        // A bound, not a target: producers push until they see the close.
        let per: u64 = 1 << 40;
        if evicting {
            let (tx, rx) = evicting_channel::<u64>(8);
            close_race(
                tx.clone(),
                rx,
                per,
                |tx, v| match tx.force_push_checked(v) {
                    Ok(evicted) => Ok(evicted),
                    Err(_) => Err(()),
                },
                move || tx.close(),
            );
        } else {
            let (tx, rx) = channel::<u64>(8);
            close_race(
                tx.clone(),
                rx,
                per,
                |tx, v| match tx.try_push_checked(v) {
                    Ok(()) => Ok(None),
                    Err(PushError::Full(_)) => Ok(Some(u64::MAX)),
                    Err(PushError::Closed(_)) => Err(()),
                },
                move || tx.close(),
            );
        }
    }
}

/// One push: `Ok(None)` accepted, `Ok(Some(v))` accepted and `v` evicted (or, with
/// `u64::MAX`, refused as full: not accepted), `Err` closed.
type CheckedPush<M> = fn(&ringwal_core::Producer<u64, M>, u64) -> Result<Option<u64>, ()>;

fn close_race<M: Mode>(
    tx: ringwal_core::Producer<u64, M>,
    mut rx: ringwal_core::Receiver<u64, M>,
    per: u64,
    push: CheckedPush<M>,
    close: impl FnOnce() -> usize + Send,
) {
    let (accepted, evicted, end, got) = thread::scope(|s| {
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let tx = tx.clone();
                s.spawn(move || {
                    let (mut accepted, mut evicted) = (0u64, Vec::new());
                    for seq in 0..per {
                        match push(&tx, encode(p, seq)) {
                            Ok(None) => accepted += 1,
                            Ok(Some(u64::MAX)) => thread::yield_now(),
                            Ok(Some(v)) => {
                                accepted += 1;
                                evicted.push(v);
                            }
                            Err(()) => {
                                // Closed: every later push must be refused too.
                                assert!(push(&tx, encode(p, seq)).is_err());
                                break;
                            }
                        }
                    }
                    (accepted, evicted)
                })
            })
            .collect();
        let mut got = Vec::new();
        // Let the producers get going (each has pushed at least once), then close while they
        // push.
        while rx.is_empty() && got.is_empty() {
            got.extend(rx.drain());
            thread::yield_now();
        }
        for _ in 0..20 {
            got.extend(rx.drain());
        }
        let end = close();
        // Everything claimed before the close is published soon: take until our position
        // reaches the final one.
        while ringwal_core::position_diff(rx.position(), end) < 0 {
            let n = got.len();
            got.extend(rx.drain());
            if got.len() == n {
                thread::yield_now();
            }
        }
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        let (mut accepted, mut evicted) = (0, Vec::new());
        for p in producers {
            let (a, e) = p.join().unwrap();
            accepted += a;
            evicted.extend(e);
        }
        (accepted, evicted, end, got)
    });
    assert_eq!(
        end as u64, accepted,
        "close's final position counts every accepted push"
    );
    assert_eq!(rx.evicted(), evicted.len() as u64);
    assert_eq!(got.len() as u64 + rx.evicted(), accepted);
    let mut all: Vec<u64> = got.iter().chain(&evicted).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len() as u64, accepted, "each accepted value once");
}

/// `Lanes`: more producer threads than lanes, each producer taking a lane for a stretch of its
/// values, dropping the handle and claiming a lane again (often another thread's old one), while
/// the consumer takes (drains, pops), and is itself dropped and reclaimed now and then.
/// Every value arrives exactly once, and in order within each stretch: a hand-off of a lane
/// (the Release drop, the Acquire claim) must carry the lane's position to the next owner. A
/// producer's next stretch may go through another lane and come out before the rest of its
/// previous one (order is per lane), so order is checked per (producer, stretch).
#[test]
fn lanes_with_hand_offs() {
    const PRODUCERS: u64 = 5;
    const STRETCH: u64 = 37;
    let per = per_producer();
    let lanes: Box<Lanes<u64, 8, 3>> = Box::default();
    let done = AtomicUsize::new(0);
    let got = thread::scope(|s| {
        for p in 0..PRODUCERS {
            let (lanes, done) = (&*lanes, &done);
            s.spawn(move || {
                let mut seq = 0;
                while seq < per {
                    let Some(mut tx) = lanes.producer() else {
                        thread::yield_now();
                        continue;
                    };
                    let end = (seq + STRETCH).min(per);
                    while seq < end {
                        let mut v = encode(p, seq);
                        while let Err(full) = tx.try_push(v) {
                            v = full.into_inner();
                            thread::yield_now();
                        }
                        seq += 1;
                    }
                }
                // Release pairs with the consumer's Acquire load below: a producer counted
                // as done has every push of it visible, so the last empty look is final.
                done.fetch_add(1, Ordering::Release);
            });
        }
        let mut got = Vec::new();
        let mut rx = lanes.consumer().unwrap();
        let mut round = 0u64;
        loop {
            // Acquire: see the producers' Release increment.
            let finished = done.load(Ordering::Acquire) == PRODUCERS as usize;
            let n = got.len();
            // Every way of taking: a drain, `try_pop` (never `Pending`: each lane's producer is
            // a solo one), `pop`.
            match round % 3 {
                0 => got.extend(rx.drain()),
                1 => match rx.try_pop() {
                    Ok(v) => got.push(v),
                    Err(e) => assert_eq!(e, TryPopError::Empty, "a lane is never Pending"),
                },
                _ => got.extend(rx.pop()),
            }
            round += 1;
            if round % 64 == 0 {
                drop(rx);
                rx = lanes.consumer().unwrap();
            }
            if got.len() == n {
                if finished {
                    break;
                }
                thread::yield_now();
            }
        }
        got
    });
    assert!(lanes.is_empty());
    // A producer's stretches may go through different lanes, so only values of one stretch
    // are ordered with each other; every value arrives exactly once.
    let mut last = std::collections::HashMap::new();
    for &v in &got {
        let (p, seq) = decode(v);
        if let Some(prev) = last.insert((p, seq / STRETCH), seq) {
            assert!(
                prev < seq,
                "producer {p}: {seq} after {prev} in one stretch"
            );
        }
    }
    let mut all = got;
    all.sort_unstable();
    let want: Vec<u64> = (0..PRODUCERS)
        .flat_map(|p| (0..per).map(move |seq| encode(p, seq)))
        .collect();
    assert_eq!(all, want);
}
