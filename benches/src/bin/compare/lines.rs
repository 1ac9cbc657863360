//! Variable-length log lines (40 to 200 bytes, formatted with `write!`) from a producer to a
//! file, by four designs, each with one writer thread. Shared by the `compare` scenario
//! (`byte_path.rs`: latency and rate) and the `line_allocs` binary (allocations per emit,
//! counted by a global allocator that `compare` does not install).
//!
//! Every design does the same formatting, on the producer thread, of the same line: a
//! sequence number, a level, two fixed-width fields and 2..=162 bytes of message text, ending
//! in a newline. Each writes it the way its users do:
//!
//! - ringwal `ByteEmitter::emit_with`: straight into the byte ring, in place (the writer frames
//!   it into its log: one copy, no allocation);
//! - ringwal `Emitter<Vec<u8>>`: into a fresh `Vec<u8>` (one allocation), moved into the slot
//!   ring; the writer encodes and frees it;
//! - `std::sync::mpsc::sync_channel::<String>`: `format!` (a fresh `String`), `try_send`; a
//!   writer thread `recv`s and writes it into a `BufWriter<File>`;
//! - tracing-appender `non_blocking` (lossy): into a reused `String` (as tracing-subscriber's
//!   fmt layer formats into a buffer of its own), then `write_all` of it, which copies it into
//!   a fresh `Vec<u8>` for the channel; its worker writes each to the `File`.

use ringwal::{
    ByteEmitError, ByteEmitter, Bytes, EmitError, Emitter, Overflow, SyncPolicy, Writer,
};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The longest line, newline included.
pub const LINE_MAX: usize = 200;
/// The shortest line.
pub const LINE_MIN: usize = 40;
/// The slot queues' capacity (lines), as in every other scenario.
pub const SLOTS: usize = 4096;
/// The byte ring's capacity: 4096 lines of the average length (120 bytes) take about this much
/// (a record there is its length rounded up to 8, plus an 8-byte header).
pub const RING_BYTES: usize = 512 << 10;

const TEXT: &str = "GET /api/v1/orders/8812/items?expand=price,stock served from cache shard 7 \
after revalidation; upstream latency within budget, response compressed, client keep-alive \
honoured; no retries";

/// The message text of line `seq`: 1..=161 bytes of `TEXT`.
#[inline]
fn text_of(seq: u64) -> &'static str {
    &TEXT[..1 + (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % 161]
}

/// The formatting of line `seq`, the same for every design: 38 bytes of fields, the text, a
/// newline.
macro_rules! line {
    ($seq:expr) => {
        format_args!(
            "{:>10} INFO req={:08x} user={:03} {}\n",
            $seq,
            ($seq as u32) ^ 0x5bd1_e995,
            $seq % 1000,
            text_of($seq)
        )
    };
}

/// Writes line `seq` into `w` (`write!`).
#[inline]
pub fn format_line<W: std::io::Write>(w: &mut W, seq: u64) -> std::io::Result<()> {
    w.write_fmt(line!(seq))
}

/// Line `seq` as a fresh `String` (`format!`).
#[inline]
pub fn line_string(seq: u64) -> String {
    std::fmt::format(line!(seq))
}

/// Writes line `seq` into a `String` (`write!`).
#[inline]
pub fn format_line_fmt(w: &mut String, seq: u64) -> std::fmt::Result {
    std::fmt::Write::write_fmt(w, line!(seq))
}

/// What a design reports once everything it accepted is in the file.
pub struct Drained {
    /// Lines in the file (or log).
    pub persisted: u64,
    /// Lines the design accepted and then dropped without telling the producer.
    pub dropped: u64,
}

/// A producer-to-file design for lines.
pub trait LineDesign: Sized {
    const NAME: &'static str;
    type Handle;
    /// Starts the writer thread over a fresh file or log in `dir`.
    fn start(dir: &Path) -> (Self, Self::Handle);
    /// Formats line `seq` and hands it over without waiting; `false` if the design refused it
    /// (a retry formats it again, or resends what it kept).
    fn try_emit(h: &mut Self::Handle, seq: u64) -> bool;
    /// After a refused `try_emit` that is not to be retried: forget the line kept for the
    /// retry.
    fn forget_refused(_h: &mut Self::Handle) {}
    /// Drops the handle and waits until every accepted line is written to the file (handed to
    /// the OS; not fsynced).
    fn drain(&mut self, h: Self::Handle) -> Drained;
    /// Stops the writer thread (not timed).
    fn close(self) {}
}

/// ringwal's byte path: `ByteEmitter::emit_with`, formatting in place, `Overflow::Reject`,
/// `SyncPolicy::Never`.
pub struct RingwalBytes(Option<Writer<Bytes>>);

impl LineDesign for RingwalBytes {
    const NAME: &'static str = "ringwal ByteEmitter::emit_with (Reject, Never)";
    type Handle = ByteEmitter;

    fn start(dir: &Path) -> (Self, Self::Handle) {
        let (writer, emitter) = Writer::builder(dir)
            .overflow(Overflow::Reject)
            .sync(SyncPolicy::Never)
            .capacity(RING_BYTES)
            .start_bytes()
            .expect("start writer");
        (RingwalBytes(Some(writer)), emitter)
    }
    #[inline(always)]
    fn try_emit(h: &mut Self::Handle, seq: u64) -> bool {
        let r = h.emit_with(LINE_MAX, |mut buf| {
            let room = buf.len();
            format_line(&mut buf, seq).expect("a line fits");
            room - buf.len()
        });
        match r {
            Ok(()) => true,
            Err(ByteEmitError::Full) => false,
            Err(e) => panic!("emit_with: {e}"),
        }
    }
    fn drain(&mut self, h: Self::Handle) -> Drained {
        h.flush().expect("flush");
        let stats = h.stats();
        Drained {
            persisted: stats.persisted,
            dropped: stats.dropped,
        }
    }
    fn close(mut self) {
        let report = self.0.take().unwrap().shutdown().expect("shutdown");
        assert_eq!(report.emitted, report.persisted + report.dropped);
    }
}

/// ringwal's typed path with `Vec<u8>`: the line formatted into a fresh `Vec<u8>`, emitted
/// (`Overflow::Reject`, `SyncPolicy::Never`); a refused one is kept and emitted again.
pub struct RingwalVec(Option<Writer<Vec<u8>>>);

/// The typed emitter and the line it was refused last (emitted again on the next try).
pub struct VecHandle {
    emitter: Emitter<Vec<u8>>,
    kept: Option<Vec<u8>>,
}

impl LineDesign for RingwalVec {
    const NAME: &'static str = "ringwal Emitter<Vec<u8>> (Reject, Never)";
    type Handle = VecHandle;

    fn start(dir: &Path) -> (Self, Self::Handle) {
        let (writer, emitter) = Writer::builder(dir)
            .overflow(Overflow::Reject)
            .sync(SyncPolicy::Never)
            .capacity(SLOTS)
            .start::<Vec<u8>>()
            .expect("start writer");
        (
            RingwalVec(Some(writer)),
            VecHandle {
                emitter,
                kept: None,
            },
        )
    }
    #[inline(always)]
    fn try_emit(h: &mut Self::Handle, seq: u64) -> bool {
        let line = h.kept.take().unwrap_or_else(|| {
            let mut v = Vec::with_capacity(LINE_MAX);
            format_line(&mut v, seq).expect("write to a Vec");
            v
        });
        match h.emitter.emit(line) {
            Ok(()) => true,
            Err(EmitError::Full(line)) => {
                h.kept = Some(line);
                false
            }
            Err(e) => panic!("emit: {e}"),
        }
    }
    fn forget_refused(h: &mut Self::Handle) {
        h.kept = None;
    }
    fn drain(&mut self, h: Self::Handle) -> Drained {
        h.emitter.flush().expect("flush");
        let stats = h.emitter.stats();
        Drained {
            persisted: stats.persisted,
            dropped: stats.dropped,
        }
    }
    fn close(mut self) {
        let report = self.0.take().unwrap().shutdown().expect("shutdown");
        assert_eq!(report.emitted, report.persisted + report.dropped);
    }
}

/// `sync_channel::<String>(4096)`: `format!`, `try_send` (a refused `String` is kept and sent
/// again); a writer thread `recv`s each into a `BufWriter<File>` (flushed at the end).
pub struct StdStringChannel {
    writer: Option<JoinHandle<(u64, u64)>>,
    path: PathBuf,
}

/// The sender and the line it was refused last.
pub struct StringHandle {
    tx: mpsc::SyncSender<String>,
    kept: Option<String>,
}

impl LineDesign for StdStringChannel {
    const NAME: &'static str = "std sync_channel<String> + BufWriter<File>";
    type Handle = StringHandle;

    fn start(dir: &Path) -> (Self, Self::Handle) {
        let path = dir.join("lines");
        let file = File::create(&path).expect("create file");
        let (tx, rx) = mpsc::sync_channel::<String>(SLOTS);
        let writer = std::thread::spawn(move || {
            let mut out = BufWriter::new(file);
            let (mut lines, mut bytes) = (0, 0);
            while let Ok(line) = rx.recv() {
                out.write_all(line.as_bytes()).expect("write");
                lines += 1;
                bytes += line.len() as u64;
            }
            out.flush().expect("flush");
            (lines, bytes)
        });
        let design = StdStringChannel {
            writer: Some(writer),
            path,
        };
        (design, StringHandle { tx, kept: None })
    }
    #[inline(always)]
    fn try_emit(h: &mut Self::Handle, seq: u64) -> bool {
        let line = h.kept.take().unwrap_or_else(|| line_string(seq));
        match h.tx.try_send(line) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(line)) => {
                h.kept = Some(line);
                false
            }
            Err(mpsc::TrySendError::Disconnected(_)) => panic!("writer gone"),
        }
    }
    fn forget_refused(h: &mut Self::Handle) {
        h.kept = None;
    }
    fn drain(&mut self, h: Self::Handle) -> Drained {
        drop(h);
        let (lines, bytes) = self.writer.take().unwrap().join().expect("writer thread");
        let len = std::fs::metadata(&self.path).expect("stat").len();
        assert_eq!(len, bytes, "file size");
        Drained {
            persisted: lines,
            dropped: 0,
        }
    }
}

/// tracing-appender's non-blocking writer around a `File`, `buffered_lines_limit(4096)`, its
/// default lossy mode (a line that finds the channel full is dropped and counted in
/// `error_counter()`): the line is formatted into a reused `String`, then `write_all`.
pub struct TracingAppenderLines {
    guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    dropped: tracing_appender::non_blocking::ErrorCounter,
    path: PathBuf,
}

/// The writer and the producer's own formatting buffer.
pub struct AppenderHandle {
    writer: tracing_appender::non_blocking::NonBlocking,
    buf: String,
}

impl LineDesign for TracingAppenderLines {
    const NAME: &'static str = "tracing-appender non_blocking (lossy) + File";
    type Handle = AppenderHandle;

    fn start(dir: &Path) -> (Self, Self::Handle) {
        let path = dir.join("lines");
        let file = File::create(&path).expect("create file");
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(SLOTS)
            .finish(file);
        let design = TracingAppenderLines {
            guard: Some(guard),
            dropped: writer.error_counter(),
            path,
        };
        let handle = AppenderHandle {
            writer,
            buf: String::with_capacity(LINE_MAX),
        };
        (design, handle)
    }
    #[inline(always)]
    fn try_emit(h: &mut Self::Handle, seq: u64) -> bool {
        h.buf.clear();
        format_line_fmt(&mut h.buf, seq).expect("write to a String");
        h.writer.write_all(h.buf.as_bytes()).expect("write_all");
        true
    }
    fn drain(&mut self, h: Self::Handle) -> Drained {
        drop(h);
        // Dropping the guard sends Shutdown behind the queued lines and waits (up to 1 s)
        // until the worker has written them all.
        drop(self.guard.take());
        let bytes = std::fs::read(&self.path).expect("read");
        Drained {
            persisted: bytes.iter().filter(|&&b| b == b'\n').count() as u64,
            dropped: self.dropped.dropped_lines() as u64,
        }
    }
}
