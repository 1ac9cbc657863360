//! What a ring per emitting thread would buy the tracing `Layer`: the latency of one event on
//! several threads, paced at 100k events/s each for 1 s (`tracing_compare`'s paced cells),
//! through designs run in the same process, round after round:
//!
//! - `appender`: `fmt` + tracing-appender `non_blocking` (lossy, its default), the issue's
//!   reference;
//! - `shared ring`: the `Layer` as shipped (one byte ring for every thread, the writer polling
//!   every 1 ms), as in `tracing_compare`;
//! - `shared ring, writer asleep`: the same with a ring large enough for the whole round and a
//!   writer that does not run during it (it polls every 60 s; the rounds' `flush` wakes it):
//!   the emitting threads alone, sharing the ring's reservation line;
//! - `ring per thread, writer asleep`: a `Layer` (with its own ring and log) per thread, each
//!   thread emitting through its own, writers asleep as above: nothing written by one
//!   emitting thread is touched by another, and no writer runs. No design that keeps a
//!   thread's events in memory for a writer can do better than this (a per-thread lane
//!   design included): its figures are the floor of the per-thread-lane design on this host.
//!
//! Rings that the writer does not drain during a round are warmed first (their pages are
//! written once, then flushed), so the round does not pay first-touch page faults. Every round
//! checks that no event was refused.
//!
//! `cargo run --release -p ringwal-benches --bin tracing_lanes [-- --rounds N] [--threads T] [--fields 2|5]`
//! (default 5 rounds, 4 threads, the five-field event). Prints each design's p50 and p99.9 per
//! round, its p50 as a ratio to the appender's in the same round, and the median and worst.

use hdrhistogram::Histogram;
use ringwal_benches::tracing_events;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Clone, Copy, PartialEq)]
enum Design {
    Appender,
    Shared,
    SharedAsleep,
    PerThreadAsleep,
}

impl Design {
    const ALL: [Design; 4] = [
        Design::Appender,
        Design::Shared,
        Design::SharedAsleep,
        Design::PerThreadAsleep,
    ];
    fn name(self) -> &'static str {
        match self {
            Design::Appender => "appender non_blocking (lossy)",
            Design::Shared => "shared ring (as shipped)",
            Design::SharedAsleep => "shared ring, writer asleep",
            Design::PerThreadAsleep => "ring per thread, writer asleep",
        }
    }
}

/// Ring space one event takes until the writer passes it: the Layer reserves
/// `DEFAULT_EVENT_BYTES` and a 16-byte header (the unused part is stepped over by the writer).
const EVENT_SPAN: usize = ringwal_tracing::DEFAULT_EVENT_BYTES + 16;
const EVENTS_PER_THREAD: usize = 100_000;

fn event(five: bool, id: u64) {
    if five {
        tracing_events::five(id)
    } else {
        tracing_events::two(id)
    }
}

/// The ring for `events` events, with room to spare: a power of two.
fn ring_bytes(events: usize) -> usize {
    (events * EVENT_SPAN * 5 / 4).next_power_of_two()
}

/// A Layer and its guard. `asleep`: a ring for `events` events with room to spare and a
/// writer that polls every 60 s.
fn layer(dir: &Path, asleep: Option<usize>) -> (tracing::Dispatch, ringwal_tracing::Guard) {
    let (layer, guard) = ringwal_tracing::Builder::new(dir)
        .writer(|w| {
            let w = w.sync(ringwal::SyncPolicy::Never);
            match asleep {
                None => w.idle(ringwal::Idle::Poll(Duration::from_millis(1))),
                Some(events) => w
                    .capacity(ring_bytes(events))
                    .idle(ringwal::Idle::Poll(Duration::from_secs(60))),
            }
        })
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    (dispatch, guard)
}

/// Emits through `dispatch` until the ring has been lapped once (`ring_events` events), then
/// waits until the writer has written them: every page of the ring has been written once.
fn warm(dispatch: &tracing::Dispatch, guard: &ringwal_tracing::Guard, ring_events: usize) {
    tracing::dispatcher::with_default(dispatch, || {
        for i in 0..ring_events as u64 {
            tracing_events::two(i);
            if i % 4096 == 4095 {
                guard.flush().unwrap();
            }
        }
    });
    guard.flush().unwrap();
}

/// One thread's paced run through `dispatch`, after `barrier`.
fn paced(dispatch: &tracing::Dispatch, barrier: &Barrier, five: bool, t: u64) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    tracing::dispatcher::with_default(dispatch, || {
        barrier.wait();
        let start = Instant::now();
        let end = start + Duration::from_secs(1);
        let period = Duration::from_micros(10);
        let mut next = start;
        let mut n = 0u64;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            if now < next {
                std::hint::spin_loop();
                continue;
            }
            next = (next + period).max(now);
            let t0 = Instant::now();
            event(five, t << 40 | n);
            hist.saturating_record((t0.elapsed().as_nanos() as u64).max(1));
            n += 1;
        }
    });
    hist
}

/// One round of `design` on `threads` threads: the merged histogram.
fn round(design: Design, threads: usize, five: bool) -> Histogram<u64> {
    let dir = tempfile::tempdir().unwrap();
    let barrier = Barrier::new(threads);
    // The designs with one dispatch for every thread, and what ends them.
    let mut appender_guard = None;
    let shared = match design {
        Design::Appender => {
            let file = std::fs::File::create(dir.path().join("appender.log")).unwrap();
            let (nb, guard) = tracing_appender::non_blocking(file);
            appender_guard = Some(guard);
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(nb)
                .with_ansi(false);
            Some((
                tracing::Dispatch::new(tracing_subscriber::registry().with(fmt)),
                None,
            ))
        }
        Design::Shared => {
            let (d, g) = layer(&dir.path().join("log"), None);
            Some((d, Some(g)))
        }
        Design::SharedAsleep => {
            let events = threads * EVENTS_PER_THREAD;
            let (d, g) = layer(&dir.path().join("log"), Some(events));
            warm(&d, &g, ring_bytes(events) / EVENT_SPAN);
            Some((d, Some(g)))
        }
        Design::PerThreadAsleep => None,
    };
    let shared_dispatch = shared.as_ref().map(|(d, _)| d.clone());
    let hists: Vec<Histogram<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let shared_dispatch = shared_dispatch.clone();
                let dir = dir.path().join(format!("thread-{t}"));
                s.spawn(move || {
                    let (dispatch, own) = match shared_dispatch {
                        Some(d) => (d, None),
                        None => {
                            let (d, g) = layer(&dir, Some(EVENTS_PER_THREAD));
                            warm(&d, &g, ring_bytes(EVENTS_PER_THREAD) / EVENT_SPAN);
                            (d, Some(g))
                        }
                    };
                    let hist = paced(&dispatch, barrier, five, t as u64);
                    drop(dispatch);
                    if let Some(guard) = own {
                        let report = guard.shutdown().unwrap();
                        assert_eq!(report.rejected, 0, "{}: refusals", design.name());
                    }
                    hist
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    drop(shared_dispatch);
    if let Some((dispatch, guard)) = shared {
        drop(dispatch);
        if let Some(guard) = guard {
            let report = guard.shutdown().unwrap();
            assert_eq!(report.rejected, 0, "{}: refusals", design.name());
        }
    }
    drop(appender_guard);
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for h in hists {
        all.add(&h).unwrap();
    }
    all
}

fn usage(why: &str) -> ! {
    eprintln!("{why}\nusage: tracing_lanes [--rounds N] [--threads T] [--fields 2|5]");
    std::process::exit(2);
}

fn main() {
    let (mut rounds, mut threads, mut five) = (5usize, 4usize, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| usage(&format!("{what} takes a positive number")))
        };
        match arg.as_str() {
            "--rounds" => rounds = number("--rounds"),
            "--threads" => threads = number("--threads"),
            "--fields" => match number("--fields") {
                2 => five = false,
                5 => five = true,
                _ => usage("--fields is 2 or 5"),
            },
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    println!(
        "{threads} threads, {} fields, paced 100k events/s each for 1 s; p50 and p99.9 in ns",
        if five { 5 } else { 2 }
    );
    // p50 per round and design, for the ratios.
    let mut p50 = vec![[0u64; 4]; rounds];
    for (r, row) in p50.iter_mut().enumerate() {
        for (i, design) in Design::ALL.into_iter().enumerate() {
            let hist = round(design, threads, five);
            row[i] = hist.value_at_quantile(0.5);
            println!(
                "round {:>2}  {:<32} p50 {:>6}  p99.9 {:>7}  p50/appender {:.2}",
                r + 1,
                design.name(),
                row[i],
                hist.value_at_quantile(0.999),
                row[i] as f64 / row[0] as f64
            );
        }
    }
    println!("\nover {rounds} rounds: median (worst)");
    for (i, design) in Design::ALL.into_iter().enumerate() {
        let mut v: Vec<u64> = p50.iter().map(|row| row[i]).collect();
        let mut ratio: Vec<f64> = p50
            .iter()
            .map(|row| row[i] as f64 / row[0] as f64)
            .collect();
        v.sort_unstable();
        ratio.sort_by(f64::total_cmp);
        println!(
            "{:<32} p50 {:>6} ({:>6})  p50/appender {:.2} ({:.2})",
            design.name(),
            v[v.len() / 2],
            v[v.len() - 1],
            ratio[ratio.len() / 2],
            ratio[ratio.len() - 1]
        );
    }
}
