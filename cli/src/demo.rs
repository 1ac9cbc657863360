//! `ringwal demo`: the whole system, shown working, with every invariant checked.

use hdrhistogram::Histogram;
use ringwal::{EmitError, Emitter, Overflow, Reader, Record, Report, SyncPolicy, Writer};
use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// `println!`, returning a write error instead of panicking (`> /dev/full`); a closed stdout
/// (`ringwal demo | head`) is not one: the demo goes on without printing, and its exit status
/// still says whether every invariant held.
macro_rules! outln {
    ($($arg:tt)*) => {
        out_line(format_args!($($arg)*))?
    };
}

fn out_line(line: std::fmt::Arguments<'_>) -> io::Result<()> {
    match writeln!(io::stdout(), "{line}") {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}

/// `ringwal demo` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the logs (one subdirectory per run; must not hold logs already).
    /// Default: a fresh temporary directory, deleted at the end unless --keep.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Length of each overload run, in seconds.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Producer threads in the overload runs.
    #[arg(long, default_value_t = 2)]
    producers: usize,
    /// Events per second per producer (0: as fast as they can).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Which overflow policy to run under load.
    #[arg(long, value_enum, default_value_t = PolicyArg::All)]
    policy: PolicyArg,
    /// When the writer fsyncs: every-batch, never, or an interval in milliseconds (e.g. 5ms).
    #[arg(long, default_value = "every-batch", value_parser = parse_sync)]
    sync: SyncPolicy,
    /// Keep the log directory (its path is printed).
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PolicyArg {
    Reject,
    DropOldest,
    Block,
    All,
}

fn parse_sync(s: &str) -> Result<SyncPolicy, String> {
    match s {
        "every-batch" => Ok(SyncPolicy::EveryBatch),
        "never" => Ok(SyncPolicy::Never),
        _ => {
            let ms = s.strip_suffix("ms").unwrap_or(s);
            match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(SyncPolicy::Interval(Duration::from_millis(ms))),
                _ => Err(format!(
                    "`{s}`: expected every-batch, never, or an interval such as 5ms"
                )),
            }
        }
    }
}

fn policy_name(p: Overflow) -> &'static str {
    match p {
        Overflow::Reject => "Reject",
        Overflow::DropOldest => "DropOldest",
        Overflow::Block(_) => "Block",
    }
}

// ---- part 1: the policies on a 4-slot ring ----

/// Holds the writer inside `encode` until opened, so the ring fills behind it.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>, // (writer is waiting, open)
    cv: Condvar,
}

impl Gate {
    fn wait_entered(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.0 {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
    fn open(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

struct Small {
    value: u32,
    gate: Option<Arc<Gate>>,
}

impl Record for Small {
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(gate) = &self.gate {
            let mut s = gate.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = true;
            gate.cv.notify_all();
            while !s.1 {
                s = gate.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        }
        out.extend_from_slice(self.value.to_string().as_bytes());
    }
}

fn list(values: &[u32]) -> String {
    let items: Vec<String> = values.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Pushes 1..=8 into a 4-slot ring while the writer is held on event 0; then lets it drain
/// and reads the log back. Returns a problem, if an invariant broke.
fn illustrate(dir: &Path, overflow: Overflow) -> io::Result<Option<String>> {
    let (writer, emitter) = Writer::builder(dir)
        .overflow(overflow)
        .capacity(4)
        .start::<Small>()?;
    let gate = Arc::new(Gate::default());
    emitter
        .emit(Small {
            value: 0,
            gate: Some(Arc::clone(&gate)),
        })
        .map_err(|e| io::Error::other(e.to_string()))?;
    gate.wait_entered();
    let mut rejected = Vec::new();
    let mut waited = Duration::ZERO;
    if let Overflow::Block(_) = overflow {
        // The producer blocks on the 5th push until the writer frees slots.
        let producer = {
            let emitter = emitter.clone();
            std::thread::spawn(move || {
                let mut waited = Duration::ZERO;
                for value in 1..=8 {
                    let t0 = Instant::now();
                    let _ = emitter.emit(Small { value, gate: None });
                    waited = waited.max(t0.elapsed());
                }
                waited
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        gate.open();
        waited = producer
            .join()
            .map_err(|_| io::Error::other("producer panicked"))?;
    } else {
        for value in 1..=8 {
            if let Err(e) = emitter.emit(Small { value, gate: None }) {
                rejected.push(e.into_inner().value);
            }
        }
        gate.open();
    }
    let report = writer
        .shutdown()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut kept = Vec::new();
    let mut dropped_gaps = Vec::new();
    for entry in Reader::open(dir)?.iter() {
        let entry = entry?;
        let value: u32 = String::from_utf8_lossy(&entry.payload)
            .parse()
            .unwrap_or(u32::MAX);
        if entry.dropped_before > 0 {
            dropped_gaps.push((entry.dropped_before, value));
        }
        if value != 0 {
            kept.push(value);
        }
    }
    let dropped = report.dropped;
    let line = match overflow {
        Overflow::Reject => format!(
            "kept {}  rejected (handed back) {}",
            list(&kept),
            list(&rejected)
        ),
        Overflow::DropOldest => {
            let gaps: Vec<String> = dropped_gaps
                .iter()
                .map(|(n, before)| format!("{n} dropped before {before}"))
                .collect();
            format!(
                "kept {}  dropped {dropped} (the log says: {})",
                list(&kept),
                if gaps.is_empty() {
                    "none".into()
                } else {
                    gaps.join(", ")
                }
            )
        }
        Overflow::Block(_) => format!(
            "kept {}  the producer waited up to {} ms for space",
            list(&kept),
            waited.as_millis()
        ),
    };
    outln!("   {:<10} {line}", policy_name(overflow));
    let mut problems = Vec::new();
    if report.emitted != report.persisted + report.dropped {
        problems.push(format!("conservation broke: {report:?}"));
    }
    let expected_kept: Vec<u32> = match overflow {
        Overflow::Reject => (1..=4).collect(),
        Overflow::DropOldest => (5..=8).collect(),
        Overflow::Block(_) => (1..=8).collect(),
    };
    if kept != expected_kept {
        problems.push(format!("{}: kept {kept:?}", policy_name(overflow)));
    }
    if overflow == Overflow::Reject && rejected != [5, 6, 7, 8] {
        problems.push(format!("Reject: rejected {rejected:?}"));
    }
    if overflow == Overflow::DropOldest && dropped_gaps != [(4, 5)] {
        problems.push(format!("DropOldest: gaps {dropped_gaps:?}"));
    }
    Ok((!problems.is_empty()).then(|| problems.join("; ")))
}

// ---- part 2: overload ----

const PAYLOAD: usize = 64;

/// Producer id, and the producer's count of events accepted before this one.
#[derive(Clone, Copy)]
struct Event {
    producer: u32,
    index: u64,
}

impl Record for Event {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut bytes = [b'.'; PAYLOAD];
        bytes[..4].copy_from_slice(&self.producer.to_le_bytes());
        bytes[4..12].copy_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&bytes);
    }
}

struct ProducerResult {
    accepted: u64,
    rejected: u64,
    latency: Histogram<u64>,
}

fn produce(emitter: Emitter<Event>, producer: u32, until: Instant, rate: u64) -> ProducerResult {
    let mut latency =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds");
    let period = (rate > 0).then(|| Duration::from_secs_f64(1.0 / rate as f64));
    let mut next = Instant::now();
    let (mut accepted, mut rejected) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        if let Some(p) = period {
            if now < next {
                std::hint::spin_loop();
                continue;
            }
            next += p;
        }
        let event = Event {
            producer,
            index: accepted,
        };
        let t0 = Instant::now();
        let result = emitter.emit(event);
        let dt = t0.elapsed().as_nanos() as u64;
        let _ = latency.record(dt.max(1));
        match result {
            Ok(()) => accepted += 1,
            Err(EmitError::Full(_) | EmitError::Unhealthy(_)) => rejected += 1,
            Err(EmitError::Closed(_)) => {
                rejected += 1;
                break;
            }
        }
    }
    ProducerResult {
        accepted,
        rejected,
        latency,
    }
}

struct Row {
    policy: Overflow,
    report: Report,
    rejected: u64,
    elapsed: f64,
    latency: Histogram<u64>,
    problems: Vec<String>,
}

fn human_ns(ns: u64) -> String {
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn overload(dir: &Path, policy: Overflow, args: &Args, live: bool) -> io::Result<Row> {
    let (writer, emitter) = Writer::builder(dir)
        .overflow(policy)
        .sync(args.sync)
        .start::<Event>()?;
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    let producers: Vec<_> = (0..args.producers)
        .map(|p| {
            let emitter = emitter.clone();
            let rate = args.rate;
            std::thread::spawn(move || produce(emitter, p as u32, until, rate))
        })
        .collect();
    let name = policy_name(policy);
    let mut out = io::stdout();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now().min(until)));
        if live {
            let s = emitter.stats();
            let _ = write!(
                out,
                "\r   {name:<10} {:>4.1} s  emitted {:>12}  persisted {:>12}  rejected {:>12}  dropped {:>12} ",
                started.elapsed().as_secs_f64(),
                thousands(s.emitted),
                thousands(s.persisted),
                thousands(s.rejected),
                thousands(s.dropped)
            );
            let _ = out.flush();
        }
    }
    let mut latency =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds");
    let mut accepted = HashMap::new();
    let mut rejected = 0;
    for (p, t) in producers.into_iter().enumerate() {
        let r = t
            .join()
            .map_err(|_| io::Error::other("producer panicked"))?;
        let _ = latency.add(&r.latency);
        accepted.insert(p as u32, r.accepted);
        rejected += r.rejected;
    }
    let report = writer
        .shutdown()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let elapsed = started.elapsed().as_secs_f64();
    if live {
        let _ = write!(out, "\r{:<110}\r", "");
        let _ = out.flush();
    }
    let problems = check(dir, policy, &report, rejected, &accepted)?;
    Ok(Row {
        policy,
        report,
        rejected,
        elapsed,
        latency,
        problems,
    })
}

/// Conservation, then a read-back of the whole log: every frame's CRC (the reader checks it),
/// consecutive sequence numbers, every producer's events in order, every gap accounted for.
fn check(
    dir: &Path,
    policy: Overflow,
    report: &Report,
    rejected: u64,
    accepted: &HashMap<u32, u64>,
) -> io::Result<Vec<String>> {
    let mut problems = Vec::new();
    let total_accepted: u64 = accepted.values().sum();
    if report.emitted != report.persisted + report.dropped {
        problems.push(format!(
            "emitted {} != persisted {} + dropped {}",
            report.emitted, report.persisted, report.dropped
        ));
    }
    if report.emitted != total_accepted {
        problems.push(format!(
            "emitted {} != accepted by producers {total_accepted}",
            report.emitted
        ));
    }
    if report.rejected != rejected {
        problems.push(format!(
            "rejected {} != refused to producers {rejected}",
            report.rejected
        ));
    }
    if policy != Overflow::DropOldest && report.dropped != 0 {
        problems.push(format!("{} dropped events", report.dropped));
    }
    let mut next_index: HashMap<u32, u64> = HashMap::new();
    let (mut records, mut gap_total, mut skipped) = (0u64, 0u64, 0u64);
    for entry in Reader::open(dir)?.iter() {
        let entry = entry?;
        // A fresh log starts at 0: record n is the (n+1)th.
        if entry.seq != records {
            problems.push(format!("record {} where {records} was due", entry.seq));
            break;
        }
        records += 1;
        gap_total += entry.dropped_before;
        if entry.payload.len() != PAYLOAD {
            problems.push(format!(
                "record {}: {} bytes",
                entry.seq,
                entry.payload.len()
            ));
            break;
        }
        let producer = u32::from_le_bytes(entry.payload[..4].try_into().unwrap_or([0; 4]));
        let index = u64::from_le_bytes(entry.payload[4..12].try_into().unwrap_or([0; 8]));
        let next = next_index.entry(producer).or_insert(0);
        if index < *next || (policy != Overflow::DropOldest && index != *next) {
            problems.push(format!(
                "producer {producer}: event {index} after {}",
                next.wrapping_sub(1)
            ));
            break;
        }
        skipped += index - *next;
        *next = index + 1;
    }
    // Evicted events never reached the log; the ones at each producer's end are invisible to
    // the per-producer walk, so compare totals.
    let tail_dropped: u64 = accepted
        .iter()
        .map(|(p, n)| n - next_index.get(p).copied().unwrap_or(0).min(*n))
        .sum();
    if records != report.persisted {
        problems.push(format!(
            "log holds {records} records, persisted {}",
            report.persisted
        ));
    }
    if gap_total != report.dropped {
        problems.push(format!(
            "the log's gaps add to {gap_total}, dropped {}",
            report.dropped
        ));
    }
    if skipped + tail_dropped != report.dropped {
        problems.push(format!(
            "producers' missing events add to {}, dropped {}",
            skipped + tail_dropped,
            report.dropped
        ));
    }
    Ok(problems)
}

/// `ringwal demo`.
pub fn run(args: Args) -> io::Result<ExitCode> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--seconds must be between 0 and 3600",
        ));
    }
    if args.producers == 0 || args.producers > 64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--producers must be between 1 and 64",
        ));
    }
    let mut temp = None;
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            let dir = tempfile::Builder::new().prefix("ringwal-demo-").tempdir()?;
            let path = dir.path().to_path_buf();
            temp = Some(dir);
            path
        }
    };
    let sub = |name: &str| -> io::Result<PathBuf> {
        let dir = root.join(name);
        if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{}: not empty; the demo needs fresh directories",
                    dir.display()
                ),
            ));
        }
        Ok(dir)
    };
    let live = io::stdout().is_terminal();
    let mut problems = Vec::new();

    outln!(
        "1. A ring of 4 slots, the writer held on event 0, 8 more pushed, then drained to disk:"
    );
    for (name, policy) in [
        ("tiny-reject", Overflow::Reject),
        ("tiny-drop-oldest", Overflow::DropOldest),
        ("tiny-block", Overflow::Block(None)),
    ] {
        if let Some(p) = illustrate(&sub(name)?, policy)? {
            problems.push(p);
        }
    }

    let policies: Vec<Overflow> = match args.policy {
        PolicyArg::Reject => vec![Overflow::Reject],
        PolicyArg::DropOldest => vec![Overflow::DropOldest],
        PolicyArg::Block => vec![Overflow::Block(None)],
        PolicyArg::All => vec![
            Overflow::Reject,
            Overflow::DropOldest,
            Overflow::Block(None),
        ],
    };
    let rate = if args.rate == 0 {
        "as fast as they can".to_string()
    } else {
        format!("{} events/s each", thousands(args.rate))
    };
    outln!(
        "\n2. {} producer{} ({rate}) for {} s per policy, 64-byte records, ring of 4096, sync {:?}:",
        args.producers,
        if args.producers == 1 { "" } else { "s" },
        args.seconds,
        args.sync
    );
    let mut rows = Vec::new();
    for policy in policies {
        let name = match policy {
            Overflow::Reject => "overload-reject",
            Overflow::DropOldest => "overload-drop-oldest",
            Overflow::Block(_) => "overload-block",
        };
        rows.push(overload(&sub(name)?, policy, &args, live)?);
    }
    outln!(
        "   {:<10} {:>11} {:>11} {:>11} {:>10} {:>11} {:>8} {:>8} {:>8} {:>8}",
        "policy",
        "emitted",
        "persisted",
        "rejected",
        "dropped",
        "records/s",
        "p50",
        "p99",
        "p99.9",
        "max"
    );
    for row in &rows {
        let l = &row.latency;
        outln!(
            "   {:<10} {:>11} {:>11} {:>11} {:>10} {:>11} {:>8} {:>8} {:>8} {:>8}",
            policy_name(row.policy),
            thousands(row.report.emitted),
            thousands(row.report.persisted),
            thousands(row.rejected),
            thousands(row.report.dropped),
            thousands((row.report.persisted as f64 / row.elapsed) as u64),
            human_ns(l.value_at_quantile(0.5)),
            human_ns(l.value_at_quantile(0.99)),
            human_ns(l.value_at_quantile(0.999)),
            human_ns(l.max()),
        );
    }
    outln!("   (latency: one emit call, clock reads included; records/s: persisted per second)");

    outln!("\n3. Checks, per policy: emitted == persisted + dropped; every refusal counted;");
    outln!("   the log read back: every CRC, consecutive sequence numbers, each producer's");
    outln!("   events in order, and the gaps adding up to the dropped count.");
    for row in &rows {
        if row.problems.is_empty() {
            outln!(
                "   {:<10} ok: {} = {} + {}; {} records read back",
                policy_name(row.policy),
                thousands(row.report.emitted),
                thousands(row.report.persisted),
                thousands(row.report.dropped),
                thousands(row.report.persisted)
            );
        } else {
            outln!(
                "   {:<10} FAILED: {}",
                policy_name(row.policy),
                row.problems.join("; ")
            );
            problems.extend(row.problems.iter().cloned());
        }
    }
    if args.keep || args.dir.is_some() {
        outln!("\nlogs kept in {}", root.display());
        if let Some(dir) = temp.take() {
            let _ = dir.keep();
        }
    }
    if problems.is_empty() {
        outln!("\nall invariants held");
        Ok(ExitCode::SUCCESS)
    } else {
        outln!("\nINVARIANTS BROKEN: {}", problems.join("; "));
        Ok(ExitCode::FAILURE)
    }
}
