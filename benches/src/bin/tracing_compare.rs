//! The tracing integration against tracing-appender, on the same events, in one run:
//!
//! - `info!(user = 42, order = %id, "order filled")` and a five-field `info!`;
//! - 1 and 4 emitting threads; paced (100k events/s per thread, 1 s) and flat out (1 s);
//! - through: the ringwal-tracing `Layer` (binary capture); `fmt` + ringwal `MakeWriter`;
//!   `fmt` + tracing-appender `non_blocking` (lossy, its default, and `lossy(false)`);
//!   `fmt` writing straight to a `File`; and `fmt` writing to `io::sink` (formatting alone, the
//!   floor of every `fmt`-based design).
//!
//! Per cell: the latency of one event (the macro call, clock reads included) p50/p99/p99.9/max,
//! the events per second sustained (events kept ÷ time from the first emit until they are all
//! written), the events
//! lost, and whether the loss is reported (in the log itself, or only in a counter).
//! No fsync anywhere (tracing-appender never fsyncs: ringwal runs `SyncPolicy::Never`), and
//! ringwal's writer polls every 1 ms (`Idle::Poll`: an emit never makes a syscall).
//!
//! `cargo run --release -p ringwal-benches --bin tracing_compare [-- --seconds S] [--only TEXT]...`
//! (`--only`: the designs whose name contains TEXT, e.g. `--only Layer --only lossy`)

use hdrhistogram::Histogram;
use ringwal_benches::tracing_events;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Clone, Copy, PartialEq)]
enum Design {
    Layer,
    MakeWriter,
    AppenderLossy,
    AppenderBlocking,
    File,
    Sink,
}

impl Design {
    const ALL: [Design; 6] = [
        Design::Layer,
        Design::MakeWriter,
        Design::AppenderLossy,
        Design::AppenderBlocking,
        Design::File,
        Design::Sink,
    ];
    fn name(self) -> &'static str {
        match self {
            Design::Layer => "ringwal-tracing Layer",
            Design::MakeWriter => "fmt + ringwal MakeWriter",
            Design::AppenderLossy => "fmt + appender non_blocking (lossy)",
            Design::AppenderBlocking => "fmt + appender lossy(false)",
            Design::File => "fmt + File",
            Design::Sink => "fmt + io::sink (fmt alone)",
        }
    }
}

#[derive(Clone, Copy)]
enum Shape {
    Two,
    Five,
}

fn event(shape: Shape, id: u64) {
    match shape {
        Shape::Two => tracing_events::two(id),
        Shape::Five => tracing_events::five(id),
    }
}

struct Outcome {
    hist: Histogram<u64>,
    events: u64,
    kept: u64,
    lost: u64,
    reported: &'static str,
    elapsed: Duration,
}

fn count_lines(path: &Path) -> u64 {
    let mut s = Vec::new();
    File::open(path).unwrap().read_to_end(&mut s).unwrap();
    s.iter().filter(|&&b| b == b'\n').count() as u64
}

fn fmt_layer<W>(w: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(w)
            .with_ansi(false),
    )
}

/// Emits on `threads` threads through `dispatch`; returns the merged histogram, events sent
/// and the time the emitting took.
fn drive(
    dispatch: &tracing::Dispatch,
    threads: usize,
    shape: Shape,
    paced: bool,
    seconds: f64,
) -> (Histogram<u64>, u64, Instant) {
    let barrier = Arc::new(Barrier::new(threads));
    let started = Instant::now();
    let results: Vec<(Histogram<u64>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let dispatch = dispatch.clone();
                let barrier = barrier.clone();
                s.spawn(move || {
                    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
                    let mut n = 0u64;
                    tracing::dispatcher::with_default(&dispatch, || {
                        barrier.wait();
                        let start = Instant::now();
                        let end = start + Duration::from_secs_f64(seconds);
                        let period = Duration::from_micros(10);
                        let mut next = start;
                        loop {
                            let now = Instant::now();
                            if now >= end {
                                break;
                            }
                            if paced {
                                if now < next {
                                    std::hint::spin_loop();
                                    continue;
                                }
                                next = (next + period).max(now);
                            }
                            let t0 = Instant::now();
                            event(shape, (t as u64) << 40 | n);
                            let dt = t0.elapsed().as_nanos() as u64;
                            hist.saturating_record(dt.max(1));
                            n += 1;
                        }
                    });
                    (hist, n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut events = 0;
    for (h, n) in results {
        hist.add(&h).unwrap();
        events += n;
    }
    (hist, events, started)
}

fn run(design: Design, threads: usize, shape: Shape, paced: bool, seconds: f64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    match design {
        Design::Layer | Design::MakeWriter => {
            let (layer, guard) = ringwal_tracing::Builder::new(dir.path().join("log"))
                .writer(|w| {
                    w.sync(ringwal::SyncPolicy::Never)
                        .idle(ringwal::Idle::Poll(Duration::from_millis(1)))
                })
                .build()
                .unwrap();
            let dispatch = if design == Design::Layer {
                tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
            } else {
                drop(layer);
                tracing::Dispatch::new(fmt_layer(guard.make_writer()))
            };
            let (hist, events, started) = drive(&dispatch, threads, shape, paced, seconds);
            drop(dispatch);
            // Written (SyncPolicy::Never: not fsynced, as the peers): the end of the run.
            guard.flush().unwrap();
            let elapsed = started.elapsed();
            // Not timed: the shutdown's final fsync of the whole file, which no peer pays.
            let report = guard.shutdown().unwrap();
            // Layer: session, callsite and clock records are records too, and counted if
            // refused (a handful at most); count events as sent.
            let lost = report.rejected;
            Outcome {
                hist,
                events,
                kept: events - lost.min(events),
                lost,
                reported: "in the log",
                elapsed,
            }
        }
        Design::AppenderLossy | Design::AppenderBlocking => {
            let path = dir.path().join("appender.log");
            let file = File::create(&path).unwrap();
            let (nb, wguard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(design == Design::AppenderLossy)
                .finish(file);
            let counter = nb.error_counter();
            let dispatch = tracing::Dispatch::new(fmt_layer(nb));
            let (hist, events, started) = drive(&dispatch, threads, shape, paced, seconds);
            drop(dispatch);
            drop(wguard); // flushes (up to its fixed 1 s timeout)
            let elapsed = started.elapsed();
            let kept = count_lines(&path);
            let lost = events - kept.min(events);
            let counted = counter.dropped_lines() as u64;
            Outcome {
                hist,
                events,
                kept,
                lost,
                reported: if lost == 0 {
                    "-"
                } else if counted >= lost {
                    "counter only"
                } else if counted > 0 {
                    "partly, counter only"
                } else {
                    "no"
                },
                elapsed,
            }
        }
        Design::Sink => {
            // No writer at all: what formatting costs on the caller's thread, the floor of
            // every `fmt`-based design above.
            let dispatch = tracing::Dispatch::new(fmt_layer(std::io::sink));
            let (hist, events, started) = drive(&dispatch, threads, shape, paced, seconds);
            Outcome {
                hist,
                events,
                kept: events,
                lost: 0,
                reported: "-",
                elapsed: started.elapsed(),
            }
        }
        Design::File => {
            let path = dir.path().join("plain.log");
            let file = File::create(&path).unwrap();
            let dispatch = tracing::Dispatch::new(fmt_layer(std::sync::Mutex::new(file)));
            let (hist, events, started) = drive(&dispatch, threads, shape, paced, seconds);
            drop(dispatch);
            let elapsed = started.elapsed();
            let kept = count_lines(&path);
            Outcome {
                hist,
                events,
                kept,
                lost: events - kept.min(events),
                reported: "-",
                elapsed,
            }
        }
    }
}

fn main() {
    let mut seconds = 1.0;
    // `--only TEXT` (repeatable): the designs whose name contains TEXT.
    let mut only: Vec<String> = Vec::new();
    let usage = |why: &str| -> ! {
        eprintln!("{why}\nusage: tracing_compare [--seconds S] [--only TEXT]...");
        std::process::exit(2)
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = match args.next().map(|s| s.parse::<f64>()) {
                    Some(Ok(s)) if s > 0.0 && s.is_finite() => s,
                    _ => usage("--seconds takes a positive number"),
                }
            }
            "--only" => only.push(args.next().unwrap_or_else(|| usage("--only takes a name"))),
            "-h" | "--help" => usage("every design side by side (see the module docs)"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    println!(
        "{:<36} {:>4} {:>6} {:>7} {:>8} {:>8} {:>9} {:>10} {:>12} {:>10} {:>11}",
        "design",
        "thr",
        "fields",
        "pace",
        "p50 ns",
        "p99 ns",
        "p99.9 ns",
        "max ns",
        "kept ev/s",
        "lost",
        "reported"
    );
    for paced in [true, false] {
        for threads in [1usize, 4] {
            for (shape, fields) in [(Shape::Two, 2), (Shape::Five, 5)] {
                for design in Design::ALL {
                    if !only.is_empty() && !only.iter().any(|o| design.name().contains(o.as_str()))
                    {
                        continue;
                    }
                    let o = run(design, threads, shape, paced, seconds);
                    println!(
                        "{:<36} {:>4} {:>6} {:>7} {:>8} {:>8} {:>9} {:>10} {:>12.0} {:>10} {:>11}",
                        design.name(),
                        threads,
                        fields,
                        if paced { "100k/s" } else { "flat" },
                        o.hist.value_at_quantile(0.5),
                        o.hist.value_at_quantile(0.99),
                        o.hist.value_at_quantile(0.999),
                        o.hist.max(),
                        o.kept as f64 / o.elapsed.as_secs_f64(),
                        o.lost,
                        o.reported,
                    );
                    let _ = o.events;
                }
            }
        }
    }
}
