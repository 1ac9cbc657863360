//! The whole path, emitter to disk: emit latency under a sustained load, the rate the
//! writer sustains, and reading a log of many segments back. Prints markdown tables.
//!
//! `cargo bench -p ringwal --bench writer` (add `-- --quick` for a short run).

use hdrhistogram::Histogram;
use ringwal::{format, Overflow, Reader, SyncPolicy, Writer};
use std::time::{Duration, Instant};

const PAYLOAD: usize = 64;

/// Emit latency with `producers` threads, each emitting one 64-byte record every `period`,
/// for `seconds`, while the writer persists with `sync`.
fn latency(producers: usize, period: Duration, seconds: f64, sync: SyncPolicy) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Reject)
        .sync(sync)
        .start::<[u8; PAYLOAD]>()
        .unwrap();
    let run = Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let emitter = emitter.clone();
            std::thread::spawn(move || {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
                let mut rejected = 0u64;
                let start = Instant::now();
                let mut next = start;
                let mut i = 0u64;
                while next.duration_since(start) < run {
                    while Instant::now() < next {
                        std::hint::spin_loop();
                    }
                    let mut record = [p as u8; PAYLOAD];
                    record[..8].copy_from_slice(&i.to_le_bytes());
                    let t0 = Instant::now();
                    let r = emitter.emit(record);
                    let dt = t0.elapsed().as_nanos() as u64;
                    hist.record(dt.max(1)).unwrap();
                    if r.is_err() {
                        rejected += 1;
                    }
                    i += 1;
                    next += period;
                }
                (hist, rejected)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let mut rejected = 0;
    for t in threads {
        let (h, r) = t.join().unwrap();
        hist.add(h).unwrap();
        rejected += r;
    }
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, report.persisted + report.dropped);
    Row {
        label: format!(
            "{producers} producer{} x {:.0} k/s, {sync:?}",
            if producers > 1 { "s" } else { "" },
            1e-3 / period.as_secs_f64()
        ),
        p50: hist.value_at_quantile(0.5),
        p99: hist.value_at_quantile(0.99),
        p999: hist.value_at_quantile(0.999),
        max: hist.max(),
        emitted: report.emitted,
        rejected,
        syncs: report.syncs,
    }
}

struct Row {
    label: String,
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
    emitted: u64,
    rejected: u64,
    syncs: u64,
}

/// Records/s the writer persists with producers emitting as fast as `Block` lets them.
fn throughput(producers: usize, seconds: f64, sync: SyncPolicy) -> (f64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .sync(sync)
        .start::<[u8; PAYLOAD]>()
        .unwrap();
    let run = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let emitter = emitter.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while start.elapsed() < run {
                    for _ in 0..256 {
                        let mut record = [p as u8; PAYLOAD];
                        record[..8].copy_from_slice(&i.to_le_bytes());
                        emitter.emit(record).unwrap();
                        i += 1;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Count what was persisted by the end of the run, flush included.
    emitter.flush().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let stats = emitter.stats();
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, report.persisted + report.dropped);
    (
        stats.persisted as f64 / elapsed,
        stats.persisted,
        stats.syncs,
    )
}

fn clock_overhead() -> u64 {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
    for _ in 0..100_000 {
        let t0 = Instant::now();
        let dt = t0.elapsed().as_nanos() as u64;
        hist.record(dt.max(1)).unwrap();
    }
    hist.value_at_quantile(0.5)
}

/// Reads back a log of `segments` segments of 10 records each: the best of three runs.
fn read_segments(segments: u64) -> Duration {
    let dir = tempfile::tempdir().expect("temporary directory");
    for first in (0..segments * 10).step_by(10) {
        let mut bytes = format::encode_header(first).to_vec();
        for seq in first..first + 10 {
            format::encode_frame(&mut bytes, seq, 0, &[seq as u8; PAYLOAD]);
        }
        std::fs::write(dir.path().join(format::segment_file_name(first)), bytes)
            .expect("write a segment");
    }
    let reader = Reader::open(dir.path()).expect("open the log");
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u64;
            for entry in reader.iter() {
                assert_eq!(entry.expect("read a record").seq, n);
                n += 1;
            }
            assert_eq!(n, segments * 10);
            start.elapsed()
        })
        .min()
        .expect("three runs")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let secs = if quick { 0.5 } else { 3.0 };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("ringwal writer benchmark: {cpus} CPUs, {PAYLOAD}-byte records, ring 4096");
    println!(
        "clock read (Instant::now + elapsed) p50: {} ns, included in the latencies below\n",
        clock_overhead()
    );

    println!("## Emit latency while the writer persists (Reject; ns)\n");
    println!("| load | p50 | p99 | p99.9 | max | emitted | rejected | syncs |");
    println!("|---|---|---|---|---|---|---|---|");
    for (producers, sync) in [
        (1, SyncPolicy::EveryBatch),
        (2, SyncPolicy::EveryBatch),
        (1, SyncPolicy::Never),
        (2, SyncPolicy::Never),
    ] {
        let r = latency(producers, Duration::from_micros(2), secs, sync);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label, r.p50, r.p99, r.p999, r.max, r.emitted, r.rejected, r.syncs
        );
    }

    println!("\n## Sustained persisted records/s (Block, producers as fast as they can)\n");
    println!("| sync | producers | records/s | persisted | syncs |");
    println!("|---|---|---|---|---|");
    for sync in [SyncPolicy::Never, SyncPolicy::EveryBatch] {
        for producers in [1, 2] {
            let (rate, persisted, syncs) = throughput(producers, secs, sync);
            println!(
                "| {sync:?} | {producers} | {:.2} M | {persisted} | {syncs} |",
                rate / 1e6
            );
        }
    }

    println!("\n## Reading a log back (Reader::iter, 10 records per segment, best of 3)\n");
    println!("| segments | seconds | µs per segment |");
    println!("|---|---|---|");
    for segments in [1_000u64, 10_000] {
        let t = read_segments(segments);
        println!(
            "| {segments} | {:.3} | {:.1} |",
            t.as_secs_f64(),
            t.as_secs_f64() * 1e6 / segments as f64
        );
    }
}
