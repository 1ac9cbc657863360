//! ringwal against std channels and peer crates, every peer measured in the same run, rounds
//! interleaved. Prints one markdown table per scenario.
//!
//! `cargo run --release -p ringwal-benches --bin compare` (add `-- --quick` for the short run
//! CI does).
//!
//! Fairness rules: every queue has capacity 4096, carries the
//! same values, is driven only through its non-blocking calls, and waits on full/empty with the
//! same `ringwal_benches::Backoff`. Round `r` runs every peer once, starting from peer `r`;
//! tables give the median and [min, max] over the rounds.

mod async_emit;
mod byte_path;
mod bytes;
mod idle;
mod lines;
mod peers;
mod plot;
mod report;
mod scenarios;
mod versions;
mod whole_path;

use peers::Payload;
use report::{int, mega, ns1, percent, print_table, run_rounds, Column, Contestant, RatioColumn};
use scenarios::{Burst, Latency, Throughput, Uncontended};
use std::io::Write;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// Sizes of one run.
struct Config {
    rounds: usize,
    /// Values per producer in the throughput scenarios.
    per_producer: u64,
    /// Push+pop pairs in the uncontended scenario.
    uncontended_ops: u64,
    /// How long the paced producer runs in the latency scenarios.
    latency_run: Duration,
    /// Bursts of 4096 in the burst scenario.
    bursts: u64,
    /// How long the whole-path producer runs flat out.
    sustained_run: Duration,
}

const QUICK: Config = Config {
    rounds: 3,
    per_producer: 1 << 19,
    uncontended_ops: 1 << 21,
    latency_run: Duration::from_millis(100),
    bursts: 64,
    sustained_run: Duration::from_millis(250),
};

const FULL: Config = Config {
    rounds: 7,
    per_producer: 1 << 22,
    uncontended_ops: 1 << 24,
    latency_run: Duration::from_millis(500),
    bursts: 512,
    sustained_run: Duration::from_secs(1),
};

/// The pacing of the latency scenarios: one push (emit) per microsecond.
const PERIOD: Duration = Duration::from_micros(1);

/// Median cost of `Instant::now()` + `elapsed()`: included in every latency below.
fn clock_overhead() -> u64 {
    let mut hist = scenarios::histogram();
    for _ in 0..100_000 {
        let t0 = Instant::now();
        let dt = t0.elapsed().as_nanos() as u64;
        hist.saturating_record(dt.max(1));
    }
    hist.value_at_quantile(0.5)
}

/// Core-to-core round trip: two threads bounce a counter through one atomic, 200 000 times;
/// nanoseconds per round trip. On a VM this moves between runs (where the host places the
/// vCPUs), and every cross-thread number below moves with it, so it is printed at the start
/// and at the end of the run.
fn round_trip_ns() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    const TRIPS: u64 = 200_000;
    let ball = AtomicU64::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..TRIPS {
                while ball.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                ball.store(2 * i + 2, Ordering::Release);
            }
        });
        for i in 0..TRIPS {
            ball.store(2 * i + 1, Ordering::Release);
            while ball.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
        }
    });
    t0.elapsed().as_nanos() as f64 / TRIPS as f64
}

/// `--only TEXT`: run only the scenarios whose title contains TEXT (case-insensitive).
static ONLY: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Whether `--only` (given or not, once or several times) lets the scenario titled `title` run.
fn selected(title: &str) -> bool {
    let only = ONLY.lock().unwrap_or_else(|e| e.into_inner());
    only.is_empty()
        || only
            .iter()
            .any(|o| title.to_lowercase().contains(o.as_str()))
}

/// `--plot DIR`: where to write the SVG charts, if asked.
static PLOT_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Every table printed so far, for `--plot`.
static RECORDED: std::sync::Mutex<Vec<plot::Recorded>> = std::sync::Mutex::new(Vec::new());

/// How many scenarios ran (for `--only`, which must match at least one).
static RAN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The machine facts printed under every table (CPUs, CPU model, rustc, crate versions), so a
/// table copied on its own still says where it was measured.
static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Runs the rounds of one comparison and prints its table, the machine facts, the load average
/// and a fresh core-to-core round trip (it moves several-fold between runs on a shared machine).
fn compare(
    rounds: usize,
    title: &str,
    notes: &[String],
    columns: &[Column],
    ratios: &[RatioColumn],
    mut contestants: Vec<Contestant>,
) {
    if !selected(title) {
        return;
    }
    // Relaxed: a count read by this thread only, after every scenario ran.
    RAN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    eprintln!("running: {title}");
    let results = run_rounds(rounds, &mut contestants);
    let names: Vec<String> = contestants.iter().map(|c| c.name.clone()).collect();
    print_table(title, notes, columns, ratios, &names, &results);
    RECORDED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(plot::Recorded {
            title: title.to_string(),
            headers: columns.iter().map(|c| c.header).collect(),
            names: names.clone(),
            results: results.clone(),
        });
    println!(
        "_Measured on: {}; load average {}; core-to-core round trip after this table: {:.0} ns._\n",
        MACHINE.get().map_or("?", String::as_str),
        versions::load_average().unwrap_or_else(|| "?".into()),
        round_trip_ns()
    );
    std::io::stdout().flush().ok();
}

fn throughput_columns() -> (Vec<Column>, Vec<RatioColumn>) {
    (
        vec![Column {
            header: "M values/s",
            fmt: mega,
        }],
        vec![RatioColumn {
            metric: 0,
            higher_is_better: true,
            header: "ringwal ÷ peer, M values/s: ringwal is Nx (>1 = ringwal faster)",
        }],
    )
}

fn latency_columns(extra: &[Column]) -> Vec<Column> {
    let mut columns = vec![
        Column {
            header: "p50 ns",
            fmt: int,
        },
        Column {
            header: "p99 ns",
            fmt: int,
        },
        Column {
            header: "p99.9 ns",
            fmt: int,
        },
        Column {
            header: "p99.99 ns",
            fmt: int,
        },
        Column {
            header: "max ns",
            fmt: int,
        },
    ];
    columns.extend_from_slice(extra);
    columns
}

fn latency_ratios() -> Vec<RatioColumn> {
    vec![
        RatioColumn {
            metric: 0,
            higher_is_better: false,
            header: "peer ÷ ringwal, p50 (>1 = ringwal faster)",
        },
        RatioColumn {
            metric: 1,
            higher_is_better: false,
            header: "peer ÷ ringwal, p99 (>1 = ringwal faster)",
        },
    ]
}

fn main() {
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--bench" => {} // passed by `cargo bench`
            "--plot" if PLOT_DIR.get().is_none() => match args.next() {
                Some(dir) => PLOT_DIR.set(dir.into()).expect("set once"),
                None => {
                    eprintln!("compare: --plot needs a directory to write the SVG charts into");
                    std::process::exit(2);
                }
            },
            "--only" => match args.next() {
                Some(text) => ONLY
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(text.to_lowercase()),
                None => {
                    eprintln!("compare: --only needs a text to match scenario titles against");
                    std::process::exit(2);
                }
            },
            _ => {
                eprintln!(
                    "usage: compare [--quick] [--only TEXT] [--plot DIR]\n  every peer side by side, \
                     rounds interleaved; --quick: 3 short rounds (a minute or two), the full run \
                     takes minutes; --only TEXT (repeatable): only the scenarios whose title contains one of them; \
                     --plot DIR: also write each table as an SVG chart into DIR"
                );
                std::process::exit(if arg == "--help" || arg == "-h" { 0 } else { 2 });
            }
        }
    }
    let cfg = if quick { QUICK } else { FULL };
    let wall = Instant::now();
    // About 10x a normal run's length.
    report::watchdog(Duration::from_secs(if quick { 300 } else { 3600 }));

    println!(
        "# ringwal vs peers ({} run)\n",
        if quick { "quick" } else { "full" }
    );
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("- CPUs (available_parallelism): {cpus}");
    if let Some(model) = versions::cpu_model() {
        println!("- CPU: {model}");
    }
    if let Some(load) = versions::load_average() {
        println!("- load average at start: {load}");
    }
    println!("- rustc on PATH (`rustc -V` now): {}", versions::rustc());
    println!(
        "- build: {}",
        if cfg!(debug_assertions) {
            "DEBUG (numbers meaningless; use --release)"
        } else {
            "release"
        }
    );
    let crates: Vec<String> = versions::CRATES
        .iter()
        .map(|c| format!("{c} {}", versions::of(c)))
        .collect();
    println!("- crates (Cargo.lock): {}", crates.join(", "));
    MACHINE
        .set(format!(
            "{cpus} CPUs ({}), {}, {}",
            versions::cpu_model().unwrap_or_else(|| "CPU model unknown".into()),
            versions::rustc(),
            crates.join(", ")
        ))
        .expect("set once");
    println!(
        "- rounds: {} (interleaved: round r runs every peer once, starting at peer r); \
         cells are median [min, max] over rounds",
        cfg.rounds
    );
    println!(
        "- every queue: capacity {} and non-blocking calls only; on full/empty: \
         ringwal_benches::Backoff (spin 1, 2, .. 64, then yield)",
        peers::CAP
    );
    println!("- {}", peers::heapless_check());
    println!(
        "- ringwal's entries: `Ring` (pop) and (drain): `try_push` from any thread (one CAS on the \
         producers' counter), a consumer with no read-modify-write; `Ring::split` (single-producer \
         scenarios only): the solo producer, no read-modify-write at all; `EvictingRing`: the ring \
         with `force_push` (the writer's under DropOldest), whose consumer claims runs by CAS; \
         `channel`: the heap ring of run-time capacity; `Lanes` (pop) and (drain): {} lanes of {} \
         slots, one per producer handle (its push the solo push, no read-modify-write), order \
         per producer only; the consumer's `try_pop`, or its `drain` lane after lane",
        peers::LANES,
        peers::LANE_CAP
    );
    println!(
        "- clock read (Instant::now + elapsed) p50: {} ns, included in every latency",
        clock_overhead()
    );
    println!(
        "- core-to-core round trip (two threads bouncing one atomic) at start: {:.0} ns",
        round_trip_ns()
    );
    println!();

    let n = cfg.rounds;
    let (tp_columns, tp_ratios) = throughput_columns();
    let drain_note = "\"ringwal Ring (drain)\" takes values with `Consumer::drain()` (what is \
                      ready, up to 4096 per call), \"ringwal Lanes (drain)\" with \
                      `LanesConsumer::drain()`; every other entry takes one value per call \
                      (peers' own batch calls such as rtrb `read_chunk` or channel `try_iter` \
                      are not used)."
        .to_string();

    println!("## Queues\n");
    compare(
        n,
        "SPSC throughput, u64 (also the MPSC 1-producer case)",
        &[
            format!(
                "1 producer thread pushes {} values; the consumer checks count and order.",
                cfg.per_producer
            ),
            drain_note.clone(),
        ],
        &tp_columns,
        &tp_ratios,
        scenarios::contestants(&Throughput::<u64> {
            producers: 1,
            per_producer: cfg.per_producer,
            _item: PhantomData,
        }),
    );
    compare(
        n,
        "SPSC throughput, 64-byte payload ([u8; 64])",
        &[
            format!(
                "1 producer thread pushes {} values of 64 bytes; the consumer checks count and \
                 order.",
                cfg.per_producer
            ),
            drain_note.clone(),
        ],
        &tp_columns,
        &tp_ratios,
        scenarios::contestants(&Throughput::<Payload> {
            producers: 1,
            per_producer: cfg.per_producer,
            _item: PhantomData,
        }),
    );
    for producers in [2, 4] {
        compare(
            n,
            &format!("MPSC throughput, u64, {producers} producers"),
            &[
                format!(
                    "{producers} producer threads push {} values each (on {cpus} CPUs); the \
                     consumer checks count and per-producer order. rtrb is SPSC-only.{}",
                    cfg.per_producer,
                    if producers + 1 > cpus {
                        " More threads than CPUs: they time-share the cores, so much of the \
                         pushing and popping happens while the other side is not running \
                         (less cache-line contention than with a core each)."
                    } else {
                        ""
                    }
                ),
                drain_note.clone(),
            ],
            &tp_columns,
            &tp_ratios,
            scenarios::contestants(&Throughput::<u64> {
                producers,
                per_producer: cfg.per_producer,
                _item: PhantomData,
            }),
        );
    }
    compare(
        n,
        "Uncontended push + pop on one thread, u64",
        &[format!(
            "{} times: push one value, pop it.",
            cfg.uncontended_ops
        )],
        &[Column {
            header: "ns per push+pop",
            fmt: ns1,
        }],
        &[RatioColumn {
            metric: 0,
            higher_is_better: false,
            header: "peer ÷ ringwal, ns (>1 = ringwal faster)",
        }],
        scenarios::contestants(&Uncontended::<u64> {
            ops: cfg.uncontended_ops,
            _item: PhantomData,
        }),
    );
    compare(
        n,
        "Push latency under load, u64",
        &[format!(
            "One producer pushes one value every {PERIOD:?} (spinning on Instant) for {:?} \
             while a consumer thread takes them. Every try_push call is timed, failed ones \
             too; a failed push backs off and retries, and counts in \"failed pushes\".",
            cfg.latency_run
        )],
        &latency_columns(&[Column {
            header: "failed pushes",
            fmt: int,
        }]),
        &latency_ratios(),
        scenarios::contestants(&Latency::<u64> {
            period: PERIOD,
            run: cfg.latency_run,
            _item: PhantomData,
        }),
    );
    compare(
        n,
        "Bursts into a nearly full queue, u64",
        &[format!(
            "The producer pushes {} bursts of {} values back to back as fast as it can \
             (backoff and retry when full); the consumer pops up to {}, then spins {:?}, and \
             again. \"failed\" = failed push calls / all push calls.",
            cfg.bursts,
            scenarios::BURST,
            scenarios::SLOW_BATCH,
            scenarios::SLOW_PAUSE
        )],
        &[
            Column {
                header: "M values/s",
                fmt: mega,
            },
            Column {
                header: "failed pushes",
                fmt: percent,
            },
        ],
        &tp_ratios,
        scenarios::contestants(&Burst::<u64> {
            bursts: cfg.bursts,
            _item: PhantomData,
        }),
    );

    bytes::run_all(&cfg);

    println!("## Whole path: 64-byte records into a file in a fresh temporary directory\n");
    let designs_note = "Designs: ringwal `Emitter::emit` with Overflow::Reject and \
                        SyncPolicy::Never (CRC-framed segmented log in 64 MiB segments; under Never \
                        a new segment and the directory are fsynced when it is created, a \
                        sealed one only at shutdown); `sync_channel(4096)` + `try_send`, a writer \
                        thread `recv()`ing into a `BufWriter<File>`; tracing-appender \
                        `NonBlockingBuilder::default().buffered_lines_limit(4096)` (default \
                        lossy mode: a full channel drops the record and counts it in \
                        `error_counter()`) around a `File`, records written with \
                        `write_all` on a clone of its `NonBlocking`."
        .to_string();
    compare(
        n,
        "Emit latency while the writer persists",
        &[
            designs_note.clone(),
            format!(
                "One producer emits one record every {PERIOD:?} for {:?}; every emit call is \
                 timed. A refused (full) or dropped record is not retried: \"lost\".",
                cfg.latency_run * 2
            ),
        ],
        &latency_columns(&[
            Column {
                header: "lost",
                fmt: int,
            },
            Column {
                header: "in file",
                fmt: int,
            },
        ]),
        &latency_ratios(),
        whole_path::contestants(&whole_path::Latency {
            period: PERIOD,
            run: cfg.latency_run * 2,
        }),
    );
    compare(
        n,
        "Sustained persisted records/s, producer flat out",
        &[
            designs_note,
            format!(
                "One producer emits as fast as it can for {:?}; a refused record is retried \
                 after the common backoff (tracing-appender never refuses: it drops). Rate = \
                 records in the file / time until everything accepted is written (not \
                 fsynced). \"dropped\" = share of emitted records that never reached the file.",
                cfg.sustained_run
            ),
        ],
        &[
            Column {
                header: "M records/s in file",
                fmt: mega,
            },
            Column {
                header: "dropped",
                fmt: percent,
            },
            Column {
                header: "segments sealed",
                fmt: int,
            },
        ],
        &[RatioColumn {
            metric: 0,
            higher_is_better: true,
            header: "ringwal ÷ peer, records/s: ringwal is Nx (>1 = ringwal faster)",
        }],
        whole_path::contestants(&whole_path::Throughput {
            run: cfg.sustained_run,
        }),
    );

    byte_path::run_all(&cfg);

    idle::run(n, quick);

    async_emit::run(
        n,
        &async_emit::AsyncEmit {
            per_task: if quick { 50_000 } else { 250_000 },
        },
    );

    println!(
        "core-to-core round trip at end: {:.0} ns; wall time {:.1} s",
        round_trip_ns(),
        wall.elapsed().as_secs_f64()
    );
    let only = ONLY.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !only.is_empty() && RAN.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        eprintln!("compare: no scenario title contains any of {only:?}");
        std::process::exit(2);
    }
    if let Some(dir) = PLOT_DIR.get() {
        let tables = RECORDED.lock().unwrap_or_else(|e| e.into_inner());
        match plot::write_all(dir, &tables) {
            Ok(files) => {
                for f in files {
                    println!("- chart: {}", f.display());
                }
            }
            Err(e) => {
                eprintln!("compare: writing the charts into {}: {e}", dir.display());
                std::process::exit(1);
            }
        }
    }
}
