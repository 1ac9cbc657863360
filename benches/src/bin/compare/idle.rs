//! Idle strategies: emit latency at low event rates, and the writer thread's CPU, for
//! `Idle::Park`, `Idle::Poll(1 ms)`, `Idle::Poll(100 ms)` (with the ring sized for it), `Idle::Spin`, tracing-appender's `non_blocking` worker, and
//! a bare ring (ringwal-core's heap channel, drained by a thread that sleeps 1 ms between
//! drains: no writer, no handshake) on the same events.
//!
//! The bare ring is the control: an emit after a pause touches cache lines (the ring's tail and
//! slot; in the writer, the state word too) that the consumer or the
//! OS has since evicted or taken, and the emitting thread itself wakes with cold caches after a
//! sleep. Whatever slowdown at low rates the bare ring shows in the same run is the host's, not
//! the library's.

use crate::report::{int, print_table, run_rounds, Column, Contestant, RatioColumn};
use crate::scenarios::histogram;
use ringwal::{Idle, Overflow, SyncPolicy, Writer};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The record: 64 bytes, as in the whole-path scenarios.
type Rec = [u8; 64];

/// The Poll interval measured (see the README: a record is written within about this), and a
/// longer one: a polling writer's idle CPU is about one timer wake per interval.
pub const POLL: Duration = Duration::from_millis(1);
pub const POLL_LONG: Duration = Duration::from_millis(100);
/// The README's sizing rule for a polled writer: capacity >= peak rate x interval. The busiest
/// rate here (one event per 10 us) for 100 ms is 10,000 events; with 4096 slots about 5,100
/// of the 20,000 were refused before the writer's first wake.
pub const POLL_LONG_CAPACITY: usize = 16384;

/// How the emitting thread waits for the next event's time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pacing {
    /// Spin on `Instant::now()` until the deadline (the thread stays on its core, caches warm).
    Spin,
    /// `thread::sleep` until 30 µs before the deadline, then spin (the thread leaves its core:
    /// how a low-rate producer usually waits).
    Sleep,
}

/// One rate: one event per `period`, `events` of them, paced by `pacing`.
#[derive(Clone, Copy)]
pub struct Rate {
    pub period: Duration,
    pub events: u64,
    pub pacing: Pacing,
}

/// The rates measured; `quick` runs fewer events per rate.
pub fn rates(quick: bool) -> Vec<Rate> {
    let scale = |full: u64, quick_n: u64| if quick { quick_n } else { full };
    vec![
        Rate {
            period: Duration::from_micros(10),
            events: scale(100_000, 20_000),
            pacing: Pacing::Spin,
        },
        Rate {
            period: Duration::from_micros(100),
            events: scale(10_000, 2_000),
            pacing: Pacing::Spin,
        },
        Rate {
            period: Duration::from_millis(1),
            events: scale(2_000, 300),
            pacing: Pacing::Sleep,
        },
        Rate {
            period: Duration::from_millis(10),
            events: scale(300, 60),
            pacing: Pacing::Sleep,
        },
        Rate {
            period: Duration::from_millis(10),
            events: scale(300, 60),
            pacing: Pacing::Spin,
        },
    ]
}

/// The ids of this process's threads now.
fn threads() -> HashSet<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// CPU time (seconds) thread `tid` of this process has used: the scheduler's
/// `se.sum_exec_runtime` (nanosecond resolution), or, where that file is missing, utime +
/// stime from `stat` (clock ticks, assumed 100 Hz).
fn cpu_seconds(tid: &str) -> f64 {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/sched")) {
        if let Some(ms) = s
            .lines()
            .find(|l| l.starts_with("se.sum_exec_runtime"))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            return ms / 1e3;
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    f.get(11)
        .zip(f.get(12))
        .map_or(0.0, |(u, s)| (u + s) as f64 / 100.0)
}

fn cpu_of(tids: &[String]) -> f64 {
    tids.iter().map(|t| cpu_seconds(t)).sum()
}

/// A started design: its emit (true: accepted) and its finisher (waits until everything is
/// written; returns the records persisted).
type Started = (Box<dyn FnMut(Rec) -> bool>, Box<dyn FnOnce() -> u64>);

/// One design under test: started over `dir`, it hands back the emit closure and a finisher
/// that waits until everything is written and returns how many records it persisted.
trait Design {
    fn start(dir: &Path) -> Started;
}

fn ringwal_design(idle: Idle, dir: &Path) -> Started {
    ringwal_design_sized(idle, 4096, dir)
}

fn ringwal_design_sized(idle: Idle, capacity: usize, dir: &Path) -> Started {
    let (writer, emitter) = Writer::builder(dir)
        .capacity(capacity)
        .overflow(Overflow::Reject)
        .sync(SyncPolicy::Never)
        .idle(idle)
        .start::<Rec>()
        .expect("start");
    let e2 = emitter.clone();
    (
        Box::new(move |r| emitter.emit(r).is_ok()),
        Box::new(move || {
            drop(e2);
            writer.shutdown().expect("shutdown").persisted
        }),
    )
}

struct Park;
struct Poll;
struct PollLong;
struct Spin;
struct Appender;
struct Bare;

impl Design for Park {
    fn start(dir: &Path) -> Started {
        ringwal_design(Idle::Park, dir)
    }
}
impl Design for Poll {
    fn start(dir: &Path) -> Started {
        ringwal_design(Idle::Poll(POLL), dir)
    }
}
impl Design for PollLong {
    fn start(dir: &Path) -> Started {
        ringwal_design_sized(Idle::Poll(POLL_LONG), POLL_LONG_CAPACITY, dir)
    }
}
impl Design for Spin {
    fn start(dir: &Path) -> Started {
        ringwal_design(Idle::Spin, dir)
    }
}
impl Design for Appender {
    fn start(dir: &Path) -> Started {
        let path = dir.join("records");
        let file = std::fs::File::create(&path).expect("create");
        let (mut writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(crate::peers::CAP)
            .finish(file);
        let dropped = writer.error_counter();
        (
            Box::new(move |r| {
                writer.write_all(&r).expect("write_all");
                true
            }),
            Box::new(move || {
                // Waits until the worker has written everything queued.
                drop(guard);
                let len = std::fs::metadata(&path).expect("stat").len();
                let _ = dropped.dropped_lines();
                len / 64
            }),
        )
    }
}
impl Design for Bare {
    fn start(_dir: &Path) -> Started {
        let (producer, mut receiver) = ringwal_core::channel::<Rec>(crate::peers::CAP);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let consumer = std::thread::spawn(move || {
            let mut got = 0u64;
            loop {
                // Acquire pairs with the Release store below: after it, every push is visible.
                let stopping = stop2.load(Ordering::Acquire);
                for r in receiver.drain() {
                    std::hint::black_box(r);
                    got += 1;
                }
                if stopping {
                    return got;
                }
                std::thread::sleep(POLL);
            }
        });
        (
            Box::new(move |r| producer.try_push(r).is_ok()),
            Box::new(move || {
                // Release pairs with the consumer's Acquire load.
                stop.store(true, Ordering::Release);
                consumer.join().expect("consumer")
            }),
        )
    }
}

/// One measurement: start the design, let it go idle, emit `rate.events` records paced by
/// `rate.pacing`, timing every emit; the CPU of the threads the design started, per wall
/// second of the emitting window. Columns: p50, p99, p99.9, max (ns), writer CPU (ms per s),
/// lost.
fn measure<D: Design>(rate: Rate) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = threads();
    let (mut emit, finish) = D::start(dir.path());
    let mine: Vec<String> = threads().difference(&before).cloned().collect();
    // Idle first: the first emit is after a quiet period, as every later one at low rates.
    std::thread::sleep(Duration::from_millis(20));
    let mut hist = histogram();
    let cpu0 = cpu_of(&mine);
    let start = Instant::now();
    let mut next = start + rate.period;
    for i in 0..rate.events {
        if rate.pacing == Pacing::Sleep {
            let now = Instant::now();
            let margin = Duration::from_micros(30);
            if next > now + margin {
                std::thread::sleep(next - now - margin);
            }
        }
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        let mut rec = [0x5a; 64];
        rec[..8].copy_from_slice(&i.to_le_bytes());
        let t0 = Instant::now();
        let ok = emit(rec);
        let dt = t0.elapsed().as_nanos() as u64;
        hist.saturating_record(dt.max(1));
        std::hint::black_box(ok); // a refused record is lost: counted below
        next += rate.period;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_of(&mine) - cpu0;
    drop(emit);
    let persisted = finish();
    vec![
        hist.value_at_quantile(0.5) as f64,
        hist.value_at_quantile(0.99) as f64,
        hist.value_at_quantile(0.999) as f64,
        hist.value_at_quantile(0.9999) as f64,
        hist.max() as f64,
        cpu / wall * 1e3,
        rate.events.saturating_sub(persisted) as f64,
    ]
}

fn contestants(rate: Rate) -> Vec<Contestant> {
    vec![
        Contestant {
            name: format!("ringwal Idle::Poll({POLL:?})"),
            run: Box::new(move || measure::<Poll>(rate)),
        },
        Contestant {
            name: format!("ringwal Idle::Poll({POLL_LONG:?}), capacity {POLL_LONG_CAPACITY}"),
            run: Box::new(move || measure::<PollLong>(rate)),
        },
        Contestant {
            name: "ringwal Idle::Park".into(),
            run: Box::new(move || measure::<Park>(rate)),
        },
        Contestant {
            name: "ringwal Idle::Spin".into(),
            run: Box::new(move || measure::<Spin>(rate)),
        },
        Contestant {
            name: "tracing-appender non_blocking + File".into(),
            run: Box::new(move || measure::<Appender>(rate)),
        },
        Contestant {
            name: format!("bare ring (core channel; consumer drains every {POLL:?})"),
            run: Box::new(move || measure::<Bare>(rate)),
        },
    ]
}

/// Runs the scenario (one table per rate, then a summary), unless `--only` excludes it.
pub fn run(rounds: usize, quick: bool) {
    const TITLE: &str = "Idle strategies";
    if !crate::selected(TITLE) {
        return;
    }
    // Relaxed: a count read by the main thread only, after every scenario ran.
    crate::RAN.fetch_add(1, Ordering::Relaxed);
    eprintln!("running: {TITLE}");
    println!("## {TITLE}: emit latency at low rates, and the writer's CPU\n");
    let columns = crate::latency_columns(&[
        Column {
            header: "writer CPU ms/s",
            fmt: |x| format!("{x:.1}"),
        },
        Column {
            header: "lost",
            fmt: int,
        },
    ]);
    let ratios = [
        RatioColumn {
            metric: 1,
            higher_is_better: false,
            header: "peer ÷ Poll, p99",
        },
        RatioColumn {
            metric: 4,
            higher_is_better: false,
            header: "peer ÷ Poll, writer CPU",
        },
    ];
    let notes = vec![
        "ringwal: 64-byte records, Overflow::Reject, SyncPolicy::Never; tracing-appender: \
         `buffered_lines_limit(4096)` around a File, `write_all` of the same 64 bytes (it \
         allocates a Vec per record); bare ring: `ringwal_core::channel(4096)` `try_push`, \
         drained by a thread sleeping 1 ms between drains (the control: no writer, no handshake)."
            .to_string(),
        "Every emit call is timed (two `Instant::now()`, ~25-40 ns, included). Writer CPU: \
         the scheduler's `se.sum_exec_runtime` (/proc/self/task/TID/sched) of the threads the \
         design started, over the emitting window, in ms per wall second. Each design starts \
         fresh and idles 20 ms before the first event."
            .to_string(),
    ];
    let mut p99: Vec<(String, Vec<f64>)> = Vec::new();
    for rate in rates(quick) {
        let title = format!(
            "{TITLE}: one event per {:?} ({} events, {} pacing)",
            rate.period,
            rate.events,
            match rate.pacing {
                Pacing::Spin => "spin-until-deadline",
                Pacing::Sleep => "sleep-then-spin",
            }
        );
        let mut cs = contestants(rate);
        let results = run_rounds(rounds, &mut cs);
        let names: Vec<String> = cs.iter().map(|c| c.name.clone()).collect();
        print_table(&title, &notes, &columns, &ratios, &names, &results);
        std::io::stdout().flush().ok();
        for (i, name) in names.iter().enumerate() {
            let mut v: Vec<f64> = results[i].iter().map(|r| r[1]).collect();
            v.sort_by(f64::total_cmp);
            let median = v[v.len() / 2];
            match p99.iter_mut().find(|(n, _)| n == name) {
                Some((_, m)) => m.push(median),
                None => p99.push((name.clone(), vec![median])),
            }
        }
    }
    println!("### {TITLE}: p99 at low rates ÷ p99 at one event per 10 µs (medians)\n");
    println!("| peer | 1 ms (sleep) ÷ 10 µs | 10 ms (sleep) ÷ 10 µs | 10 ms (spin) ÷ 10 µs |");
    println!("|---|---:|---:|---:|");
    for (name, m) in &p99 {
        println!(
            "| {name} | {:.2}x | {:.2}x | {:.2}x |",
            m[2] / m[0],
            m[3] / m[0],
            m[4] / m[0]
        );
    }
    println!();
}
