//! The whole path, emit to file: 64-byte records persisted to a fresh temporary directory by
//! three designs, each with a queue of 4096 records between the producer and one writer thread.

use crate::report::Contestant;
use crate::scenarios::histogram;
use ringwal::{EmitError, Emitter, Overflow, SyncPolicy, Writer};
use ringwal_benches::Backoff;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The record: 64 bytes, the same for every design.
pub type Rec = [u8; 64];

fn record(seq: u64) -> Rec {
    let mut r = [0x5a; 64];
    r[..8].copy_from_slice(&seq.to_le_bytes());
    r
}

/// What a design reports once everything it accepted is in the file.
pub struct Drained {
    /// Records in the file.
    pub persisted: u64,
    /// Records the design accepted and then dropped without telling the producer.
    pub dropped: u64,
    /// ringwal only: segments sealed so far. Under `SyncPolicy::Never` each rotation fsyncs
    /// the new segment's header and the directory (`Stats::syncs` does not count these, so it
    /// is not used here).
    pub sealed: u64,
}

/// A producer-to-file design.
pub trait Pipeline: Sized {
    const NAME: &'static str;
    type Handle;
    /// Starts the writer thread over a fresh file or log in `dir`.
    fn start(dir: &Path) -> (Self, Self::Handle);
    /// Hands one record over without waiting; `Err` gives it back (the design refused it).
    fn try_emit(h: &mut Self::Handle, rec: Rec) -> Result<(), Rec>;
    /// Drops the handle and waits until every accepted record is written to the file (handed
    /// to the OS; not fsynced).
    fn drain(&mut self, h: Self::Handle) -> Drained;
    /// Stops the writer thread (not timed).
    fn close(self) {}
}

/// ringwal: `Emitter::emit` with `Overflow::Reject` and `SyncPolicy::Never`, into its
/// segmented, CRC-framed log.
pub struct RingwalWriter(Option<Writer<Rec>>);

impl Pipeline for RingwalWriter {
    const NAME: &'static str = "ringwal Writer (Reject, Never)";
    type Handle = Emitter<Rec>;

    fn start(dir: &Path) -> (Self, Self::Handle) {
        let (writer, emitter) = Writer::builder(dir)
            .overflow(Overflow::Reject)
            .sync(SyncPolicy::Never)
            .start::<Rec>()
            .expect("start writer");
        (RingwalWriter(Some(writer)), emitter)
    }
    #[inline(always)]
    fn try_emit(h: &mut Self::Handle, rec: Rec) -> Result<(), Rec> {
        match h.emit(rec) {
            Ok(()) => Ok(()),
            Err(EmitError::Full(r)) => Err(r),
            Err(e) => panic!("emit: {e}"),
        }
    }
    fn drain(&mut self, h: Self::Handle) -> Drained {
        h.flush().expect("flush");
        let stats = h.stats();
        Drained {
            persisted: stats.persisted,
            dropped: stats.dropped,
            sealed: stats.segments.saturating_sub(1),
        }
    }
    fn close(mut self) {
        let report = self.0.take().unwrap().shutdown().expect("shutdown");
        assert_eq!(report.emitted, report.persisted + report.dropped);
    }
}

/// [`RingwalWriter`] with `Idle::Poll(10 ms)`: emits never wake the writer, which sleeps on an
/// adaptive timer (halved while the ring fills past 1/8, down to 50 µs). Here it shows that the
/// adaptive sleep keeps up with a producer flat out: a fixed 10 ms sleep would let a 4096 ring
/// take at most 409,600 records/s.
pub struct RingwalPolled(RingwalWriter);

impl Pipeline for RingwalPolled {
    const NAME: &'static str = "ringwal Writer (Reject, Never, Idle::Poll(10ms))";
    type Handle = Emitter<Rec>;

    fn start(dir: &Path) -> (Self, Self::Handle) {
        let (writer, emitter) = Writer::builder(dir)
            .overflow(Overflow::Reject)
            .sync(SyncPolicy::Never)
            .idle(ringwal::Idle::Poll(Duration::from_millis(10)))
            .start::<Rec>()
            .expect("start writer");
        (RingwalPolled(RingwalWriter(Some(writer))), emitter)
    }
    #[inline(always)]
    fn try_emit(h: &mut Self::Handle, rec: Rec) -> Result<(), Rec> {
        RingwalWriter::try_emit(h, rec)
    }
    fn drain(&mut self, h: Self::Handle) -> Drained {
        self.0.drain(h)
    }
    fn close(self) {
        self.0.close()
    }
}

/// `std::sync::mpsc::sync_channel(4096)`, `try_send`, and a writer thread that `recv()`s and
/// writes each record into a `BufWriter<File>` (flushed at the end).
pub struct StdChannelFile {
    writer: Option<JoinHandle<u64>>,
    path: PathBuf,
}

impl Pipeline for StdChannelFile {
    const NAME: &'static str = "std sync_channel + BufWriter<File>";
    type Handle = mpsc::SyncSender<Rec>;

    fn start(dir: &Path) -> (Self, Self::Handle) {
        let path = dir.join("records");
        let file = File::create(&path).expect("create file");
        let (tx, rx) = mpsc::sync_channel::<Rec>(crate::peers::CAP);
        let writer = std::thread::spawn(move || {
            let mut out = BufWriter::new(file);
            let mut n = 0;
            while let Ok(rec) = rx.recv() {
                out.write_all(&rec).expect("write");
                n += 1;
            }
            out.flush().expect("flush");
            n
        });
        let pipeline = StdChannelFile {
            writer: Some(writer),
            path,
        };
        (pipeline, tx)
    }
    #[inline(always)]
    fn try_emit(h: &mut Self::Handle, rec: Rec) -> Result<(), Rec> {
        match h.try_send(rec) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(r)) => Err(r),
            Err(mpsc::TrySendError::Disconnected(_)) => panic!("writer gone"),
        }
    }
    fn drain(&mut self, h: Self::Handle) -> Drained {
        drop(h);
        let written = self.writer.take().unwrap().join().expect("writer thread");
        let len = std::fs::metadata(&self.path).expect("stat").len();
        assert_eq!(len, written * 64, "file size");
        Drained {
            persisted: written,
            dropped: 0,
            sealed: 0,
        }
    }
}

/// tracing-appender's non-blocking writer around a `File`, built with
/// `buffered_lines_limit(4096)` (the same capacity as the others; its default is 128 000) and its
/// default lossy mode: a record that finds the channel full is dropped and counted in
/// `error_counter()`, and `write_all` still returns `Ok`. Its worker writes each record to the
/// file with its own `write_all` (no buffering), and flushes after each batch.
pub struct TracingAppender {
    guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    dropped: tracing_appender::non_blocking::ErrorCounter,
    path: PathBuf,
}

impl Pipeline for TracingAppender {
    const NAME: &'static str = "tracing-appender non_blocking (lossy) + File";
    type Handle = tracing_appender::non_blocking::NonBlocking;

    fn start(dir: &Path) -> (Self, Self::Handle) {
        let path = dir.join("records");
        let file = File::create(&path).expect("create file");
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(crate::peers::CAP)
            .finish(file);
        let pipeline = TracingAppender {
            guard: Some(guard),
            dropped: writer.error_counter(),
            path,
        };
        (pipeline, writer.clone())
    }
    #[inline(always)]
    fn try_emit(h: &mut Self::Handle, rec: Rec) -> Result<(), Rec> {
        h.write_all(&rec).expect("write_all");
        Ok(())
    }
    fn drain(&mut self, h: Self::Handle) -> Drained {
        drop(h);
        // Dropping the guard sends Shutdown behind the queued lines and waits (up to 1 s) until
        // the worker has written them all.
        drop(self.guard.take());
        let len = std::fs::metadata(&self.path).expect("stat").len();
        assert_eq!(len % 64, 0, "torn record");
        Drained {
            persisted: len / 64,
            dropped: self.dropped.dropped_lines() as u64,
            sealed: 0,
        }
    }
}

/// Emit latency: this thread emits one record every `period` for `run` while the design's
/// writer persists them; every emit call is timed. A refused record is not retried (it is lost).
/// Columns: p50, p99, p99.9, max (ns), lost (refused + dropped), records in the file.
pub fn latency<P: Pipeline>(period: Duration, run: Duration) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut pipeline, mut h) = P::start(dir.path());
    let mut hist = histogram();
    let (mut emitted, mut refused) = (0u64, 0u64);
    let start = Instant::now();
    let mut next = start;
    while next.duration_since(start) < run {
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        let rec = record(emitted);
        let t0 = Instant::now();
        let r = P::try_emit(&mut h, rec);
        let dt = t0.elapsed().as_nanos() as u64;
        hist.saturating_record(dt.max(1));
        if r.is_err() {
            refused += 1;
        }
        emitted += 1;
        next += period;
    }
    let d = pipeline.drain(h);
    pipeline.close();
    assert_eq!(
        d.persisted + d.dropped + refused,
        emitted,
        "records unaccounted for"
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

/// Sustained rate: this thread emits records as fast as it can for `run` (a refused record is
/// retried after the common backoff; a lossy design's drops are not retried, it never reports
/// them), then waits until everything accepted is in the file. Columns: records in the file per
/// second (until drained), share of records dropped, segments sealed.
pub fn throughput<P: Pipeline>(run: Duration) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut pipeline, mut h) = P::start(dir.path());
    let mut b = Backoff::new();
    let mut emitted = 0u64;
    let start = Instant::now();
    while start.elapsed() < run {
        for _ in 0..256 {
            let mut rec = record(emitted);
            while let Err(back) = P::try_emit(&mut h, rec) {
                rec = back;
                b.snooze();
            }
            b.reset();
            emitted += 1;
        }
    }
    let d = pipeline.drain(h);
    let elapsed = start.elapsed();
    pipeline.close();
    assert_eq!(
        d.persisted + d.dropped,
        emitted,
        "{}: records unaccounted for",
        P::NAME
    );
    vec![
        d.persisted as f64 / elapsed.as_secs_f64(),
        d.dropped as f64 / emitted as f64,
        d.sealed as f64,
    ]
}

/// A whole-path driver, generic over the design (as `Scenario` is over the queue).
pub trait Driver: Clone + 'static {
    fn run<P: Pipeline>(&self) -> Vec<f64>;
}

/// [`latency`] as a [`Driver`].
#[derive(Clone)]
pub struct Latency {
    pub period: Duration,
    pub run: Duration,
}

impl Driver for Latency {
    fn run<P: Pipeline>(&self) -> Vec<f64> {
        latency::<P>(self.period, self.run)
    }
}

/// [`throughput`] as a [`Driver`].
#[derive(Clone)]
pub struct Throughput {
    pub run: Duration,
}

impl Driver for Throughput {
    fn run<P: Pipeline>(&self) -> Vec<f64> {
        throughput::<P>(self.run)
    }
}

/// The three designs, ringwal first (the baseline of the ratios).
pub fn contestants<D: Driver>(d: &D) -> Vec<Contestant> {
    fn add<D: Driver, P: Pipeline>(v: &mut Vec<Contestant>, d: &D) {
        let d = d.clone();
        v.push(Contestant {
            name: P::NAME.to_string(),
            run: Box::new(move || d.run::<P>()),
        });
    }
    let mut v = Vec::new();
    add::<D, RingwalWriter>(&mut v, d);
    add::<D, RingwalPolled>(&mut v, d);
    add::<D, StdChannelFile>(&mut v, d);
    add::<D, TracingAppender>(&mut v, d);
    v
}
