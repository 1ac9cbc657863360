//! The whole path for variable-length lines (40 to 200 bytes, formatted with `write!` on the
//! producer thread): emit latency while the writer persists, and the sustained rate of lines
//! persisted, for ringwal's byte path (`ByteEmitter::emit_with`, formatting in place), ringwal's
//! typed path with `Vec<u8>`, `sync_channel<String>` + `BufWriter`, and tracing-appender
//! `non_blocking`. The designs are in `lines.rs`; `--only "variable-length"` selects both
//! tables (their titles contain it).

use crate::lines::{
    LineDesign, RingwalBytes, RingwalVec, StdStringChannel, TracingAppenderLines, LINE_MAX,
    LINE_MIN, RING_BYTES, SLOTS,
};
use crate::report::{int, mega, percent, Column, Contestant, RatioColumn};
use crate::scenarios::histogram;
use crate::{Config, PERIOD};
use ringwal_benches::Backoff;
use std::time::{Duration, Instant};

/// Emit latency: this thread emits one line every `period` for `run` while the design's writer
/// persists them; every emit call (formatting included) is timed. A refused line is not
/// retried (it is lost). Columns: p50, p99, p99.9, p99.99, max (ns), lost (refused + dropped),
/// lines in the file.
fn latency<D: LineDesign>(period: Duration, run: Duration) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut design, mut h) = D::start(dir.path());
    let mut hist = histogram();
    let (mut emitted, mut refused) = (0u64, 0u64);
    let start = Instant::now();
    let mut next = start;
    while next.duration_since(start) < run {
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        let t0 = Instant::now();
        let ok = D::try_emit(&mut h, emitted);
        let dt = t0.elapsed().as_nanos() as u64;
        hist.saturating_record(dt.max(1));
        if !ok {
            refused += 1;
            // Not retried: a design that keeps the refused line must not send it later.
            D::forget_refused(&mut h);
        }
        emitted += 1;
        next += period;
    }
    let d = design.drain(h);
    design.close();
    assert_eq!(
        d.persisted + d.dropped + refused,
        emitted,
        "{}: lines unaccounted for",
        D::NAME
    );
    vec![
        hist.value_at_quantile(0.5) as f64,
        hist.value_at_quantile(0.99) as f64,
        hist.value_at_quantile(0.999) as f64,
        hist.value_at_quantile(0.9999) as f64,
        hist.max() as f64,
        (refused + d.dropped) as f64,
        d.persisted as f64,
    ]
}

/// Sustained rate: this thread emits lines as fast as it can for `run` (a refused line is
/// retried after the common backoff; a lossy design's drops are not retried, it never reports
/// them), then waits until everything accepted is in the file. Columns: lines in the file per
/// second (until drained), share of lines dropped.
fn throughput<D: LineDesign>(run: Duration) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut design, mut h) = D::start(dir.path());
    let mut b = Backoff::new();
    let mut emitted = 0u64;
    let start = Instant::now();
    while start.elapsed() < run {
        for _ in 0..256 {
            while !D::try_emit(&mut h, emitted) {
                b.snooze();
            }
            b.reset();
            emitted += 1;
        }
    }
    let d = design.drain(h);
    let elapsed = start.elapsed();
    design.close();
    assert_eq!(
        d.persisted + d.dropped,
        emitted,
        "{}: lines unaccounted for",
        D::NAME
    );
    vec![
        d.persisted as f64 / elapsed.as_secs_f64(),
        d.dropped as f64 / emitted as f64,
    ]
}

/// One of the two measurements, generic over the design.
#[derive(Clone, Copy)]
enum Measure {
    Latency { period: Duration, run: Duration },
    Throughput { run: Duration },
}

impl Measure {
    fn run<D: LineDesign>(self) -> Vec<f64> {
        match self {
            Measure::Latency { period, run } => latency::<D>(period, run),
            Measure::Throughput { run } => throughput::<D>(run),
        }
    }
}

/// The four designs, ringwal's byte path first (the baseline of the ratios).
fn contestants(m: Measure) -> Vec<Contestant> {
    fn add<D: LineDesign + 'static>(v: &mut Vec<Contestant>, m: Measure) {
        v.push(Contestant {
            name: D::NAME.to_string(),
            run: Box::new(move || m.run::<D>()),
        });
    }
    let mut v = Vec::new();
    add::<RingwalBytes>(&mut v, m);
    add::<RingwalVec>(&mut v, m);
    add::<StdStringChannel>(&mut v, m);
    add::<TracingAppenderLines>(&mut v, m);
    v
}

pub fn run_all(cfg: &Config) {
    println!(
        "## Whole path: variable-length lines ({LINE_MIN}-{LINE_MAX} bytes, formatted with \
         `write!`) into a file in a fresh temporary directory\n"
    );
    let designs = format!(
        "Every design formats the same line on the producer thread (`write!`: a sequence \
         number, a level, two fixed-width fields and 1-161 bytes of text, {LINE_MIN}-{LINE_MAX} \
         bytes with the newline, 120 on average) and hands it to one writer thread: ringwal \
         `ByteEmitter::emit_with({LINE_MAX}, ..)` formats straight into its byte ring of \
         {} KiB (about {SLOTS} average lines) and commits the bytes written; ringwal \
         `Emitter<Vec<u8>>` formats into a fresh `Vec<u8>` and emits it into its ring of \
         {SLOTS} slots; both with Overflow::Reject and SyncPolicy::Never, into the CRC-framed \
         segmented log. `sync_channel::<String>({SLOTS})`: `format!` + `try_send`, a writer \
         thread `recv`ing into a `BufWriter<File>`. tracing-appender \
         `NonBlockingBuilder::default().buffered_lines_limit({SLOTS})` (lossy) around a `File`: \
         the line is formatted into a reused `String` (as tracing-subscriber's fmt layer does), \
         then `write_all`, which copies it into a fresh `Vec<u8>`. Allocations per emit: \
         `cargo run --release -p ringwal-benches --bin line_allocs`.",
        RING_BYTES >> 10
    );
    crate::compare(
        cfg.rounds,
        "Variable-length lines: emit latency while the writer persists",
        &[
            designs.clone(),
            format!(
                "One producer emits one line every {PERIOD:?} for {:?}; every emit call, the \
                 formatting included, is timed. A refused (full) or dropped line is not \
                 retried: \"lost\".",
                cfg.latency_run * 2
            ),
        ],
        &crate::latency_columns(&[
            Column {
                header: "lost",
                fmt: int,
            },
            Column {
                header: "in file",
                fmt: int,
            },
        ]),
        &[
            RatioColumn {
                metric: 1,
                higher_is_better: false,
                header: "peer ÷ ringwal bytes, p99 (>1 = ringwal bytes faster)",
            },
            RatioColumn {
                metric: 2,
                higher_is_better: false,
                header: "peer ÷ ringwal bytes, p99.9 (>1 = ringwal bytes faster)",
            },
        ],
        contestants(Measure::Latency {
            period: PERIOD,
            run: cfg.latency_run * 2,
        }),
    );
    crate::compare(
        cfg.rounds,
        "Variable-length lines: sustained persisted lines/s, producer flat out",
        &[
            designs,
            format!(
                "One producer emits as fast as it can for {:?}; a refused line is retried after \
                 the common backoff (tracing-appender never refuses: it drops). Rate = lines in \
                 the file / time until everything accepted is written (not fsynced). \
                 \"dropped\" = share of emitted lines that never reached the file.",
                cfg.sustained_run
            ),
        ],
        &[
            Column {
                header: "M lines/s in file",
                fmt: mega,
            },
            Column {
                header: "dropped",
                fmt: percent,
            },
        ],
        &[RatioColumn {
            metric: 0,
            higher_is_better: true,
            header: "ringwal bytes ÷ peer, lines/s (>1 = ringwal bytes faster)",
        }],
        contestants(Measure::Throughput {
            run: cfg.sustained_run,
        }),
    );
}
