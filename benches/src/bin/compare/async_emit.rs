//! Async emit: emit latency from tokio tasks, ringwal's `Emitter::emit_async` under
//! `Overflow::Block` against `tokio::sync::mpsc` (bounded, 4096) and thingbuf's async MPSC
//! channel (4096), each with a writer task draining into a file. Every `.await` of an emit
//! is timed; a full queue makes the task wait (back-pressure, nothing lost), so the tail of
//! the distribution is how long a task waits for the writer.

use crate::peers::Payload;
use crate::report::{int, mega, Column, Contestant, RatioColumn};
use crate::scenarios::histogram;
use hdrhistogram::Histogram;
use ringwal::{Overflow, SyncPolicy, Writer};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Queue capacity of every design.
const CAP: usize = 4096;
/// Emitting tasks.
const TASKS: usize = 4;
/// The runtime's worker threads (the host has 2 cores).
const WORKERS: usize = 2;

/// Sizes of one run: events per task.
pub struct AsyncEmit {
    pub per_task: u64,
}

fn payload(task: usize, i: u64) -> Payload {
    let mut bytes = [task as u8; 64];
    bytes[..8].copy_from_slice(&i.to_le_bytes());
    Payload(bytes)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `TASKS` tasks on `rt`, each emitting `per_task` events through `emit` (an async call, timed
/// around its `.await`); returns the merged histogram.
fn emit_from_tasks<E, F>(rt: &tokio::runtime::Runtime, per_task: u64, emit: E) -> Histogram<u64>
where
    E: Fn(Payload) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send,
{
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let emit = emit.clone();
                tokio::spawn(async move {
                    let mut hist = histogram();
                    for i in 0..per_task {
                        let p = payload(t, i);
                        let t0 = Instant::now();
                        emit(p).await;
                        hist.record(t0.elapsed().as_nanos() as u64).ok();
                    }
                    hist
                })
            })
            .collect();
        let mut all = histogram();
        for t in tasks {
            all.add(t.await.expect("an emitting task")).ok();
        }
        all
    })
}

/// The row: p50, p99, p99.9, p99.99, max (ns), M records/s end to end, records in the file.
fn row(hist: &Histogram<u64>, records: u64, elapsed: Duration) -> Vec<f64> {
    vec![
        hist.value_at_quantile(0.5) as f64,
        hist.value_at_quantile(0.99) as f64,
        hist.value_at_quantile(0.999) as f64,
        hist.value_at_quantile(0.9999) as f64,
        hist.max() as f64,
        records as f64 / elapsed.as_secs_f64(),
        records as f64,
    ]
}

fn ringwal_run(dir: &Path, per_task: u64) -> Vec<f64> {
    let rt = runtime();
    let (writer, emitter) = Writer::builder(dir)
        .capacity(CAP)
        .overflow(Overflow::Block(None))
        .sync(SyncPolicy::Never)
        .start::<[u8; 64]>()
        .expect("start");
    let emitter = Arc::new(emitter);
    let flusher = emitter.clone();
    let started = Instant::now();
    let hist = emit_from_tasks(&rt, per_task, move |p: Payload| {
        let emitter = emitter.clone();
        async move {
            emitter.emit_async(p.0).await.expect("Block: accepted");
        }
    });
    // Everything written (under `SyncPolicy::Never` a flush waits for the writes, not for an
    // fsync), as the peers' writer tasks end with their `BufWriter` flushed; the shutdown's
    // final fsync of the whole file is not timed (no peer fsyncs).
    rt.block_on(flusher.flush_async()).expect("flush");
    let elapsed = started.elapsed();
    let report = writer.shutdown().expect("shutdown");
    row(&hist, report.persisted, elapsed)
}

/// A writer task draining batches into a buffered file: what a tokio service writes by hand.
struct FileWriter(std::io::BufWriter<std::fs::File>);

impl FileWriter {
    fn new(dir: &Path) -> Self {
        let file = std::fs::File::create(dir.join("records")).expect("create");
        FileWriter(std::io::BufWriter::with_capacity(64 << 10, file))
    }
    fn write(&mut self, p: &Payload) {
        self.0.write_all(&p.0).expect("write");
    }
    fn finish(mut self) {
        self.0.flush().expect("flush");
    }
}

fn tokio_mpsc_run(dir: &Path, per_task: u64) -> Vec<f64> {
    let rt = runtime();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Payload>(CAP);
    let mut file = FileWriter::new(dir);
    let started = Instant::now();
    let writer = rt.spawn(async move {
        let mut batch = Vec::with_capacity(256);
        let mut n = 0u64;
        while rx.recv_many(&mut batch, 256).await > 0 {
            for p in batch.drain(..) {
                file.write(&p);
                n += 1;
            }
        }
        file.finish();
        n
    });
    let hist = emit_from_tasks(&rt, per_task, move |p: Payload| {
        let tx = tx.clone();
        async move {
            tx.send(p).await.expect("the writer task runs");
        }
    });
    let n = rt.block_on(writer).expect("the writer task");
    row(&hist, n, started.elapsed())
}

fn thingbuf_run(dir: &Path, per_task: u64) -> Vec<f64> {
    let rt = runtime();
    let (tx, rx) = thingbuf::mpsc::channel::<Payload>(CAP);
    let mut file = FileWriter::new(dir);
    let started = Instant::now();
    let writer = rt.spawn(async move {
        let mut n = 0u64;
        while let Some(p) = rx.recv_ref().await {
            file.write(&p);
            n += 1;
        }
        file.finish();
        n
    });
    let hist = emit_from_tasks(&rt, per_task, move |p: Payload| {
        let tx = tx.clone();
        async move {
            tx.send(p).await.expect("the writer task runs");
        }
    });
    let n = rt.block_on(writer).expect("the writer task");
    row(&hist, n, started.elapsed())
}

fn contestant(name: &str, per_task: u64, run: fn(&Path, u64) -> Vec<f64>) -> Contestant {
    Contestant {
        name: name.to_string(),
        run: Box::new(move || {
            let dir = tempfile::tempdir().expect("tempdir");
            run(dir.path(), per_task)
        }),
    }
}

pub fn run(rounds: usize, cfg: &AsyncEmit) {
    let title = "Async emit from tokio tasks: emit latency, ringwal emit_async (Block) vs async channels + a writer task";
    crate::compare(
        rounds,
        title,
        &[
            format!(
                "{TASKS} tokio tasks on a `multi_thread` runtime of {WORKERS} workers each emit \
                 {} 64-byte records as fast as `.await` lets them; every emit's `.await` is \
                 timed (the clock's cost included). A full queue makes the task wait: nothing \
                 is lost, and the tail is the wait for the writer. ringwal: \
                 `Emitter::emit_async` under `Overflow::Block(None)`, ring of {CAP}, \
                 `SyncPolicy::Never`, its writer thread (outside the runtime) writing the \
                 CRC-framed segmented log. `tokio::sync::mpsc::channel({CAP})`: `send().await`, a \
                 writer task on the same runtime `recv_many`-ing into a 64 KiB `BufWriter<File>` \
                 (raw bytes, no framing). thingbuf `mpsc::channel({CAP})` (async): \
                 `send().await`, the same writer task with `recv_ref`.",
                cfg.per_task
            ),
            "M records/s: all records over the time from the first emit until the last is \
             written to the file (ringwal: `flush_async` under `SyncPolicy::Never`; the \
             channels: closed, drained and the `BufWriter` flushed); no design fsyncs within \
             the timing."
                .to_string(),
        ],
        &crate::latency_columns(&[
            Column {
                header: "M records/s",
                fmt: mega,
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
                header: "peer ÷ ringwal, p99 (>1 = ringwal faster)",
            },
            RatioColumn {
                metric: 5,
                higher_is_better: true,
                header: "ringwal ÷ peer, records/s (>1 = ringwal faster)",
            },
        ],
        vec![
            contestant("ringwal emit_async (Block)", cfg.per_task, ringwal_run),
            contestant(
                "tokio mpsc(4096) + writer task",
                cfg.per_task,
                tokio_mpsc_run,
            ),
            contestant(
                "thingbuf async mpsc(4096) + writer task",
                cfg.per_task,
                thingbuf_run,
            ),
        ],
    );
}
