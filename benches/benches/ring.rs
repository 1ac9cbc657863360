//! Ring vs crossbeam's ArrayQueue and rtrb: uncontended push+pop, consumer-side pop/drain of a
//! full ring, and SPSC throughput. Capacity 4096 each. `cargo bench -p ringwal-benches --bench ring`.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use ringwal_benches::Backoff;
use ringwal_core::Ring;

const CAP: usize = 4096;

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended_push_pop");
    g.throughput(Throughput::Elements(1));
    let ring: Box<Ring<u64, CAP>> = Box::default();
    let mut consumer = ring.consumer().unwrap();
    g.bench_function("ringwal", |b| {
        b.iter(|| {
            ring.try_push(black_box(1)).unwrap();
            black_box(consumer.pop().unwrap());
        })
    });
    let q = ArrayQueue::<u64>::new(CAP);
    g.bench_function("ArrayQueue", |b| {
        b.iter(|| {
            q.push(black_box(1)).unwrap();
            black_box(q.pop().unwrap());
        })
    });
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    g.bench_function("rtrb", |b| {
        b.iter(|| {
            tx.push(black_box(1)).unwrap();
            black_box(rx.pop().unwrap());
        })
    });
    g.finish();
}

/// Consumer side only: fill the queue (not timed), then time taking all 4096 values out.
fn consume_full(c: &mut Criterion) {
    let mut g = c.benchmark_group("consume_4096");
    g.throughput(Throughput::Elements(CAP as u64));
    let ring: Box<Ring<u64, CAP>> = Box::default();
    let mut consumer = ring.consumer().unwrap();
    let fill = |ring: &Ring<u64, CAP>| (0..CAP as u64).for_each(|v| ring.try_push(v).unwrap());
    g.bench_function("ringwal_pop", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                fill(&ring);
                let s = Instant::now();
                while let Some(v) = consumer.pop() {
                    black_box(v);
                }
                t += s.elapsed();
            }
            t
        })
    });
    g.bench_function("ringwal_drain", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                fill(&ring);
                let s = Instant::now();
                consumer.drain().for_each(|v| {
                    black_box(v);
                });
                t += s.elapsed();
            }
            t
        })
    });
    let q = ArrayQueue::<u64>::new(CAP);
    g.bench_function("ArrayQueue_pop", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                (0..CAP as u64).for_each(|v| q.push(v).unwrap());
                let s = Instant::now();
                while let Some(v) = q.pop() {
                    black_box(v);
                }
                t += s.elapsed();
            }
            t
        })
    });
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    g.bench_function("rtrb_read_chunk", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                (0..CAP as u64).for_each(|v| tx.push(v).unwrap());
                let s = Instant::now();
                let n = rx.slots();
                rx.read_chunk(n).unwrap().into_iter().for_each(|v| {
                    black_box(v);
                });
                t += s.elapsed();
            }
            t
        })
    });
    g.finish();
}

const SPSC_N: u64 = 1 << 20;

/// One producer thread, the consumer on the bench thread; time to move SPSC_N values.
fn spsc(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_throughput");
    g.throughput(Throughput::Elements(SPSC_N));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("ringwal", "drain"), |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                let ring: Arc<Ring<u64, CAP>> = Arc::default();
                let mut consumer = ring.consumer().unwrap();
                let p = {
                    let ring = ring.clone();
                    thread::spawn(move || {
                        let mut bo = Backoff::new();
                        for mut v in 0..SPSC_N {
                            while let Err(f) = ring.try_push(v) {
                                v = f.0;
                                bo.snooze();
                            }
                            bo.reset();
                        }
                    })
                };
                let s = Instant::now();
                let mut n = 0;
                let mut bo = Backoff::new();
                while n < SPSC_N {
                    let before = n;
                    consumer.drain().for_each(|v| {
                        black_box(v);
                        n += 1;
                    });
                    if n == before {
                        bo.snooze();
                    } else {
                        bo.reset();
                    }
                }
                t += s.elapsed();
                drop(consumer);
                p.join().unwrap();
            }
            t
        })
    });
    g.bench_function(BenchmarkId::new("ringwal", "pop"), |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                let ring: Arc<Ring<u64, CAP>> = Arc::default();
                let mut consumer = ring.consumer().unwrap();
                let p = {
                    let ring = ring.clone();
                    thread::spawn(move || {
                        let mut bo = Backoff::new();
                        for mut v in 0..SPSC_N {
                            while let Err(f) = ring.try_push(v) {
                                v = f.0;
                                bo.snooze();
                            }
                            bo.reset();
                        }
                    })
                };
                let s = Instant::now();
                let mut n = 0;
                let mut bo = Backoff::new();
                while n < SPSC_N {
                    match consumer.pop() {
                        Some(v) => {
                            black_box(v);
                            n += 1;
                            bo.reset();
                        }
                        None => bo.snooze(),
                    }
                }
                t += s.elapsed();
                drop(consumer);
                p.join().unwrap();
            }
            t
        })
    });
    g.bench_function(BenchmarkId::new("ArrayQueue", "pop"), |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                let q = Arc::new(ArrayQueue::<u64>::new(CAP));
                let p = {
                    let q = q.clone();
                    thread::spawn(move || {
                        let mut bo = Backoff::new();
                        for mut v in 0..SPSC_N {
                            while let Err(x) = q.push(v) {
                                v = x;
                                bo.snooze();
                            }
                            bo.reset();
                        }
                    })
                };
                let s = Instant::now();
                let mut n = 0;
                let mut bo = Backoff::new();
                while n < SPSC_N {
                    match q.pop() {
                        Some(v) => {
                            black_box(v);
                            n += 1;
                            bo.reset();
                        }
                        None => bo.snooze(),
                    }
                }
                t += s.elapsed();
                p.join().unwrap();
            }
            t
        })
    });
    g.bench_function(BenchmarkId::new("rtrb", "read_chunk"), |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
                let p = thread::spawn(move || {
                    let mut bo = Backoff::new();
                    for mut v in 0..SPSC_N {
                        while let Err(rtrb::PushError::Full(x)) = tx.push(v) {
                            v = x;
                            bo.snooze();
                        }
                        bo.reset();
                    }
                });
                let s = Instant::now();
                let mut n = 0;
                let mut bo = Backoff::new();
                while n < SPSC_N {
                    let k = rx.slots();
                    if k == 0 {
                        bo.snooze();
                        continue;
                    }
                    bo.reset();
                    rx.read_chunk(k).unwrap().into_iter().for_each(|v| {
                        black_box(v);
                        n += 1;
                    });
                }
                t += s.elapsed();
                p.join().unwrap();
            }
            t
        })
    });
    g.finish();
}

criterion_group!(benches, uncontended, consume_full, spsc);
criterion_main!(benches);
