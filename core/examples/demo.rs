//! What the ring does, in a few seconds: the two push policies on a tiny ring, then real
//! threads through a `static` ring, with every value accounted for.
//!
//! `cargo run --release -p ringwal-core --example demo`

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ringwal_core::{EvictingRing, Mode, Ring};

fn policies() {
    println!("1. A ring of 4 slots, 8 pushes, then drain:");
    let ring: Ring<u32, 4> = Ring::new();
    let rejected: Vec<u32> = (1..=8)
        .filter_map(|v| ring.try_push(v).err().map(|f| f.0))
        .collect();
    let kept: Vec<u32> = ring.consumer().unwrap().drain().collect();
    println!("   try_push   kept {kept:?}  rejected (handed back) {rejected:?}");

    let ring: EvictingRing<u32, 4> = EvictingRing::new();
    let mut consumer = ring.consumer().unwrap();
    let evicted: Vec<u32> = (1..=8).filter_map(|v| ring.force_push(v)).collect();
    let kept: Vec<u32> = consumer.drain().collect();
    println!(
        "   force_push kept {kept:?}  evicted (oldest first) {evicted:?}  consumer saw {} evicted",
        consumer.evicted()
    );
}

static RING: Ring<u64> = Ring::new();
static EVICTING: EvictingRing<u64> = EvictingRing::new();
const PRODUCERS: u64 = 2;

/// How a producer pushes: `try_push` (a full ring hands the value back) or `force_push`.
#[derive(Clone, Copy)]
enum Push {
    Try,
    Force,
}

impl Push {
    /// Pushes `v`; returns (evicted, rejected).
    fn push(self, v: u64) -> (bool, bool) {
        match self {
            Push::Try => (false, RING.try_push(v).is_err()),
            Push::Force => (EVICTING.force_push(v).is_some(), false),
        }
    }
}

/// Producers push `(id, seq)` for `run_for`; the consumer drains and checks order and counts.
/// Returns whether every value was accounted for.
fn threads(push: Push, slow_consumer: bool, run_for: Duration) -> bool {
    match push {
        Push::Try => run(&RING, push, slow_consumer, run_for),
        Push::Force => run(&EVICTING, push, slow_consumer, run_for),
    }
}

fn run<M: Mode>(
    ring: &'static Ring<u64, 4096, M>,
    push: Push,
    slow_consumer: bool,
    run_for: Duration,
) -> bool {
    let force = matches!(push, Push::Force);
    let stop = AtomicBool::new(false);
    let (pushed, evicted, rejected, got, gaps, order_ok) = thread::scope(|s| {
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|id| {
                let stop = &stop;
                s.spawn(move || {
                    let (mut seq, mut evicted, mut rejected) = (0u64, 0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..256 {
                            let v = id << 48 | seq;
                            seq += 1;
                            let (e, r) = push.push(v);
                            evicted += e as u64;
                            rejected += r as u64;
                        }
                    }
                    (seq, evicted, rejected)
                })
            })
            .collect();
        let mut consumer = ring.consumer().expect("one consumer");
        let start_evicted = consumer.evicted();
        let mut last = [None::<u64>; PRODUCERS as usize];
        let (mut got, mut order_ok) = (0u64, true);
        // Takes what is ready; how many.
        let mut take = |consumer: &mut ringwal_core::Consumer<'_, u64, 4096, M>| {
            let mut n = 0;
            for v in consumer.drain() {
                let (id, seq) = ((v >> 48) as usize, v & ((1 << 48) - 1));
                order_ok &= last[id].is_none_or(|prev| seq > prev);
                last[id] = Some(seq);
                n += 1;
                if slow_consumer {
                    std::hint::black_box((0..200).sum::<u64>());
                }
            }
            got += n;
            n
        };
        let started = Instant::now();
        let mut done = false;
        loop {
            if !done && started.elapsed() >= run_for {
                stop.store(true, Ordering::Relaxed);
                done = true;
            }
            let n = take(&mut consumer);
            if done && n == 0 && producers.iter().all(|p| p.is_finished()) {
                break;
            }
            if n == 0 {
                thread::yield_now();
            }
        }
        let (mut pushed, mut evicted, mut rejected) = (0, 0, 0);
        for p in producers {
            let (a, b, c) = p.join().unwrap();
            pushed += a;
            evicted += b;
            rejected += c;
        }
        // `is_finished` is no synchronisation; the joins are: what the producers pushed is
        // visible now. Take the rest (a drain stops after a ring's worth).
        while take(&mut consumer) > 0 {}
        let gaps = consumer.evicted() - start_evicted;
        (pushed, evicted, rejected, got, gaps, order_ok)
    });
    let conserved = pushed == got + evicted + rejected && gaps == evicted;
    println!(
        "   {:<10} {:<8} {:>12} {:>12} {:>10} {:>10} {:>9.1}  {}",
        if force { "force_push" } else { "try_push" },
        if slow_consumer { "slow" } else { "fast" },
        pushed,
        got,
        rejected,
        evicted,
        got as f64 / run_for.as_secs_f64() / 1e6,
        if conserved && order_ok {
            "ok"
        } else {
            "BROKEN"
        },
    );
    conserved && order_ok
}

fn main() -> ExitCode {
    policies();
    println!();
    println!(
        "2. {PRODUCERS} producer threads into a static Ring<u64, 4096> (force_push: an EvictingRing), 1 s each:"
    );
    println!(
        "   {:<10} {:<8} {:>12} {:>12} {:>10} {:>10} {:>9}  check",
        "push", "consumer", "pushed", "popped", "rejected", "evicted", "M/s"
    );
    let mut ok = true;
    ok &= threads(Push::Try, false, Duration::from_secs(1));
    ok &= threads(Push::Try, true, Duration::from_secs(1));
    ok &= threads(Push::Force, true, Duration::from_secs(1));
    println!();
    println!("   check = pushed == popped + rejected + evicted, the consumer's gap count ==");
    println!("   evicted, and every producer's values came out in order.");
    if ok {
        println!("all invariants held");
        ExitCode::SUCCESS
    } else {
        println!("AN INVARIANT BROKE");
        ExitCode::FAILURE
    }
}
