//! The queue scenarios: one generic driver each, run for every peer through [`Queue`].
//!
//! Every wait on a full or empty queue is `ringwal_benches::Backoff` (spin, then yield), the
//! same for every peer.

use crate::peers::{
    CbArrayQueue, CbChannel, Flume, Heapless, Item, Queue, Ringwal, RingwalChannel,
    RingwalEvicting, RingwalLanes, RingwalSolo, Rtrb, StdSync, Thingbuf,
};
use crate::report::Contestant;
use hdrhistogram::Histogram;
use ringwal_benches::Backoff;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// A scenario: a driver generic over the peer, returning one value per table column.
pub trait Scenario: Clone + 'static {
    type T: Item;
    /// Whether there is only one producer (then the peers that are not `MULTI_PRODUCER`
    /// take part).
    fn single_producer(&self) -> bool;
    /// Whether to add the "ringwal (drain)" entry (consumer-style throughput scenarios).
    fn with_drain(&self) -> bool {
        false
    }
    fn run<Q: Queue<Self::T>>(&self) -> Vec<f64>;
}

/// Every peer that fits the scenario; ringwal (pop) first, the baseline of the ratios.
pub fn contestants<S: Scenario>(s: &S) -> Vec<Contestant> {
    fn add<S: Scenario, Q: Queue<S::T>>(v: &mut Vec<Contestant>, s: &S) {
        if !(Q::MULTI_PRODUCER || s.single_producer()) {
            return;
        }
        let s = s.clone();
        v.push(Contestant {
            name: Q::NAME.to_string(),
            run: Box::new(move || s.run::<Q>()),
        });
    }
    let mut v = Vec::new();
    add::<S, Ringwal<S::T, false>>(&mut v, s);
    if s.with_drain() {
        add::<S, Ringwal<S::T, true>>(&mut v, s);
    }
    add::<S, RingwalSolo<S::T>>(&mut v, s);
    add::<S, RingwalLanes<S::T, false>>(&mut v, s);
    if s.with_drain() {
        add::<S, RingwalLanes<S::T, true>>(&mut v, s);
    }
    add::<S, RingwalEvicting<S::T>>(&mut v, s);
    add::<S, RingwalChannel<S::T>>(&mut v, s);
    add::<S, StdSync<S::T>>(&mut v, s);
    add::<S, CbChannel<S::T>>(&mut v, s);
    add::<S, Flume<S::T>>(&mut v, s);
    add::<S, CbArrayQueue<S::T>>(&mut v, s);
    add::<S, Thingbuf<S::T>>(&mut v, s);
    add::<S, Heapless<S::T>>(&mut v, s);
    add::<S, Rtrb<S::T>>(&mut v, s);
    v
}

/// Pushes `value`, backing off while the queue is full. Returns how many pushes failed.
#[inline(always)]
fn push_retrying<T: Item, Q: Queue<T>>(tx: &mut Q::Tx<'_>, mut value: T, b: &mut Backoff) -> u64 {
    let mut failed = 0;
    while let Err(back) = Q::try_push(tx, value) {
        value = back;
        failed += 1;
        b.snooze();
    }
    b.reset();
    failed
}

/// Producer handles for `producers` threads.
fn producer_handles<'a, T: Item, Q: Queue<T>>(tx: Q::Tx<'a>, producers: usize) -> Vec<Q::Tx<'a>> {
    assert!(producers == 1 || Q::MULTI_PRODUCER);
    let mut txs: Vec<_> = (1..producers).map(|_| Q::clone_tx(&tx)).collect();
    txs.push(tx);
    txs
}

/// Checks arrival order per producer and counts: each producer's values must arrive as
/// 0, 1, 2, ... (cheap: one compare per value).
struct OrderCheck {
    next: Vec<u64>,
    received: u64,
}

impl OrderCheck {
    fn new(producers: usize) -> Self {
        OrderCheck {
            next: vec![0; producers],
            received: 0,
        }
    }

    #[inline(always)]
    fn check<T: Item>(&mut self, v: T) {
        let p = v.producer();
        assert!(v.seq() == self.next[p], "out of order from producer {p}");
        self.next[p] += 1;
        self.received += 1;
    }

    fn assert_complete(&self, per_producer: u64) {
        assert!(self.next.iter().all(|&n| n == per_producer), "lost values");
    }
}

/// Throughput: `producers` threads push `per_producer` values each as fast as they can; the
/// calling thread consumes until all arrived. Columns: values/s (all producers together).
#[derive(Clone)]
pub struct Throughput<T> {
    pub producers: usize,
    pub per_producer: u64,
    pub _item: std::marker::PhantomData<T>,
}

impl<T: Item> Scenario for Throughput<T> {
    type T = T;
    fn single_producer(&self) -> bool {
        self.producers == 1
    }
    fn with_drain(&self) -> bool {
        true
    }

    fn run<Q: Queue<T>>(&self) -> Vec<f64> {
        let (producers, per_producer) = (self.producers, self.per_producer);
        let mut q = Q::new();
        let (tx, mut rx) = q.split();
        let txs = producer_handles::<T, Q>(tx, producers);
        let start = Barrier::new(producers + 1);
        let elapsed = thread::scope(|s| {
            for (p, mut tx) in txs.into_iter().enumerate() {
                let start = &start;
                s.spawn(move || {
                    let mut b = Backoff::new();
                    start.wait();
                    for seq in 0..per_producer {
                        push_retrying::<T, Q>(&mut tx, T::make(p, seq), &mut b);
                    }
                });
            }
            let total = producers as u64 * per_producer;
            let mut check = OrderCheck::new(producers);
            let mut b = Backoff::new();
            start.wait();
            let t0 = Instant::now();
            while check.received < total {
                if Q::take(&mut rx, |v| check.check(v)) == 0 {
                    b.snooze();
                } else {
                    b.reset();
                }
            }
            let elapsed = t0.elapsed();
            check.assert_complete(per_producer);
            elapsed
        });
        vec![(producers as u64 * per_producer) as f64 / elapsed.as_secs_f64()]
    }
}

/// Uncontended: one thread pushes one value and pops it, `ops` times. Columns: ns per
/// push+pop pair.
#[derive(Clone)]
pub struct Uncontended<T> {
    pub ops: u64,
    pub _item: std::marker::PhantomData<T>,
}

impl<T: Item> Scenario for Uncontended<T> {
    type T = T;
    fn single_producer(&self) -> bool {
        true
    }

    fn run<Q: Queue<T>>(&self) -> Vec<f64> {
        let mut q = Q::new();
        let (mut tx, mut rx) = q.split();
        let t0 = Instant::now();
        for seq in 0..self.ops {
            if Q::try_push(&mut tx, black_box(T::make(0, seq))).is_err() {
                panic!("an empty queue was full");
            }
            black_box(Q::try_pop(&mut rx).expect("just pushed"));
        }
        vec![t0.elapsed().as_nanos() as f64 / self.ops as f64]
    }
}

/// A histogram of nanoseconds, 1 ns to 10 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds")
}

/// Latency under load: one producer (this thread) pushes one value every `period` (spinning on
/// `Instant` until it is due) for `run`, while a consumer thread takes them as they come.
/// Every `try_push` call is timed (a failed one too), and failed calls counted (then backoff
/// and retry). Columns: p50, p99, p99.9, max (ns), failed pushes.
#[derive(Clone)]
pub struct Latency<T> {
    pub period: Duration,
    pub run: Duration,
    pub _item: std::marker::PhantomData<T>,
}

impl<T: Item> Scenario for Latency<T> {
    type T = T;
    fn single_producer(&self) -> bool {
        true
    }

    fn run<Q: Queue<T>>(&self) -> Vec<f64> {
        let mut q = Q::new();
        let (mut tx, mut rx) = q.split();
        let done = AtomicBool::new(false);
        let mut hist = histogram();
        let mut failed = 0u64;
        let mut pushed = 0u64;
        thread::scope(|s| {
            // The consumer's handle moves to its thread: left in this frame, it could share a
            // cache line with the producer's handle, which every push writes (measured: that
            // false sharing put one entry's p50 at 160 ns against 30, depending only on the
            // frame's layout).
            let done = &done;
            let consumer = s.spawn(move || {
                let mut check = OrderCheck::new(1);
                let mut b = Backoff::new();
                loop {
                    if Q::take(&mut rx, |v| check.check(v)) > 0 {
                        b.reset();
                        continue;
                    }
                    // Acquire: every push happened before `done` was set; take the rest.
                    if done.load(Ordering::Acquire) {
                        while Q::take(&mut rx, |v| check.check(v)) > 0 {}
                        return check.received;
                    }
                    b.snooze();
                }
            });
            let mut b = Backoff::new();
            let start = Instant::now();
            let mut next = start;
            while next.duration_since(start) < self.run {
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
                let mut value = T::make(0, pushed);
                loop {
                    let t0 = Instant::now();
                    let r = Q::try_push(&mut tx, value);
                    let dt = t0.elapsed().as_nanos() as u64;
                    hist.saturating_record(dt.max(1));
                    match r {
                        Ok(()) => break,
                        Err(back) => {
                            value = back;
                            failed += 1;
                            b.snooze();
                        }
                    }
                }
                b.reset();
                pushed += 1;
                next += self.period;
            }
            done.store(true, Ordering::Release);
            let received = consumer.join().unwrap();
            assert_eq!(received, pushed, "lost values");
        });
        vec![
            hist.value_at_quantile(0.5) as f64,
            hist.value_at_quantile(0.99) as f64,
            hist.value_at_quantile(0.999) as f64,
            hist.value_at_quantile(0.9999) as f64,
            hist.max() as f64,
            failed as f64,
        ]
    }
}

/// Bursts into a nearly full queue: a producer thread pushes `bursts` bursts of 4096 values back
/// to back, as fast as it can (backoff and retry when full); the consumer (this thread) pops up
/// to 64, then spins ~1 µs, and again. Columns: values/s, failed pushes / all push calls.
#[derive(Clone)]
pub struct Burst<T> {
    pub bursts: u64,
    pub _item: std::marker::PhantomData<T>,
}

/// Values per burst.
pub const BURST: u64 = 4096;
/// Values the slow consumer takes before each pause.
pub const SLOW_BATCH: usize = 64;
/// The slow consumer's pause.
pub const SLOW_PAUSE: Duration = Duration::from_micros(1);

impl<T: Item> Scenario for Burst<T> {
    type T = T;
    fn single_producer(&self) -> bool {
        true
    }

    fn run<Q: Queue<T>>(&self) -> Vec<f64> {
        let total = self.bursts * BURST;
        let mut q = Q::new();
        let (mut tx, mut rx) = q.split();
        let start = Barrier::new(2);
        let (elapsed, failed) = thread::scope(|s| {
            // The producer's handle moves to its thread (see `Latency::run`).
            let start = &start;
            let producer = s.spawn(move || {
                let mut b = Backoff::new();
                let mut failed = 0;
                start.wait();
                for burst in 0..self.bursts {
                    for i in 0..BURST {
                        let value = T::make(0, burst * BURST + i);
                        failed += push_retrying::<T, Q>(&mut tx, value, &mut b);
                    }
                }
                failed
            });
            let mut check = OrderCheck::new(1);
            start.wait();
            let t0 = Instant::now();
            while check.received < total {
                for _ in 0..SLOW_BATCH {
                    if Q::take(&mut rx, |v| check.check(v)) == 0 {
                        break;
                    }
                }
                let pause = Instant::now();
                while pause.elapsed() < SLOW_PAUSE {
                    std::hint::spin_loop();
                }
            }
            let elapsed = t0.elapsed();
            check.assert_complete(total);
            (elapsed, producer.join().unwrap())
        });
        vec![
            total as f64 / elapsed.as_secs_f64(),
            failed as f64 / (failed + total) as f64,
        ]
    }
}
