//! Ring vs crossbeam's ArrayQueue and rtrb: uncontended push+pop, consumer-side pop/drain of a
//! full ring, and SPSC throughput. Capacity 4096 each. `cargo bench -p ringwal-benches --bench ring`.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use ringwal_benches::{no_rmw_ring, Backoff};
use ringwal_core::{Consumer, Ring};

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
    // The heap ring of run-time capacity: the same code with the mask read at run time.
    let (tx, mut rx) = ringwal_core::channel::<u64>(black_box(CAP));
    g.bench_function("ringwal_channel", |b| {
        b.iter(|| {
            tx.try_push(black_box(1)).unwrap();
            black_box(rx.pop().unwrap());
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
    // Not a product: ringwal minus its two CASes, to show what they cost (see `no_rmw_ring`).
    let (mut tx, mut rx) = no_rmw_ring::<u64, CAP>();
    g.bench_function("ablation_ringwal_without_its_2_CASes", |b| {
        b.iter(|| {
            tx.try_push(black_box(1)).unwrap();
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

/// Moves `SPSC_N` values from a producer thread to this thread and returns how long the
/// consumer took. `push` hands the value back when full; `take` takes what it can, counting
/// into `n`. Both sides back off the same way for every peer.
fn spsc_once<P: Send, C>(
    producer: P,
    consumer: &mut C,
    push: fn(&mut P, u64) -> Result<(), u64>,
    take: fn(&mut C, &mut u64),
) -> Duration {
    thread::scope(|s| {
        let mut producer = producer;
        s.spawn(move || {
            let mut backoff = Backoff::new();
            for mut v in 0..SPSC_N {
                while let Err(back) = push(&mut producer, v) {
                    v = back;
                    backoff.snooze();
                }
                backoff.reset();
            }
        });
        let start = Instant::now();
        let (mut n, mut backoff) = (0, Backoff::new());
        while n < SPSC_N {
            let before = n;
            take(consumer, &mut n);
            if n == before {
                backoff.snooze();
            } else {
                backoff.reset();
            }
        }
        start.elapsed()
    })
}

/// One producer thread, the consumer on the bench thread; time to move SPSC_N values.
fn spsc(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_throughput");
    g.throughput(Throughput::Elements(SPSC_N));
    g.sample_size(20);
    // The ring's two consumer styles, same producer.
    fn ringwal(take: fn(&mut Consumer<'_, u64, CAP>, &mut u64)) -> Duration {
        let ring: Arc<Ring<u64, CAP>> = Arc::default();
        let mut consumer = ring.consumer().unwrap();
        spsc_once(
            ring.clone(),
            &mut consumer,
            |r, v| r.try_push(v).map_err(|f| f.0),
            take,
        )
    }
    g.bench_function(BenchmarkId::new("ringwal", "drain"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    ringwal(|c, n| {
                        c.drain().for_each(|v| {
                            black_box(v);
                            *n += 1;
                        })
                    })
                })
                .sum()
        })
    });
    g.bench_function(BenchmarkId::new("ringwal", "pop"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    ringwal(|c, n| {
                        if let Some(v) = c.pop() {
                            black_box(v);
                            *n += 1;
                        }
                    })
                })
                .sum()
        })
    });
    g.bench_function(BenchmarkId::new("ArrayQueue", "pop"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let mut q = Arc::new(ArrayQueue::<u64>::new(CAP));
                    spsc_once(
                        q.clone(),
                        &mut q,
                        |q, v| q.push(v),
                        |q, n| {
                            if let Some(v) = q.pop() {
                                black_box(v);
                                *n += 1;
                            }
                        },
                    )
                })
                .sum()
        })
    });
    g.bench_function(BenchmarkId::new("rtrb", "read_chunk"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
                    let push: fn(&mut rtrb::Producer<u64>, u64) -> Result<(), u64> =
                        |p, v| p.push(v).map_err(|rtrb::PushError::Full(x)| x);
                    spsc_once(tx, &mut rx, push, |rx, n| {
                        let k = rx.slots();
                        if k > 0 {
                            rx.read_chunk(k).unwrap().into_iter().for_each(|v| {
                                black_box(v);
                                *n += 1;
                            });
                        }
                    })
                })
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, uncontended, consume_full, spsc);
criterion_main!(benches);
