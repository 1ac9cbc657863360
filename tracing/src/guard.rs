//! Starting the writer for tracing: [`Builder`], [`init`], and the [`Guard`] that flushes and
//! shuts it down.

use crate::callsites::Callsites;
use crate::clock::Clock;
use crate::layer::{Layer, DEFAULT_EVENT_BYTES};
use ringwal::{ByteEmitter, Bytes, FlushError, Report, ShutdownError, Stats, Writer};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// The byte ring's default size for tracing: 4 MiB (about 40,000 events of 100 bytes).
pub const DEFAULT_RING_BYTES: usize = 4 << 20;

/// Starts a ringwal byte writer for tracing and makes the [`Layer`] (and the
/// [`MakeWriter`](crate::MakeWriter) or [`Logger`](crate::Logger) if wanted) writing to it.
///
/// The writer's options (fsync policy, segment size, retention, overflow policy, idle strategy,
/// shutdown timeout, ring size) are ringwal's own [`ringwal::Builder`]: pass one to
/// [`Builder::with_writer`], or adjust the default with [`Builder::writer`].
///
/// Every segment starts with the metadata of every callsite seen so far and the spans open
/// there (its preamble: one record of about 100 to 300 bytes per callsite, and one per open
/// span the size of its fields), so that it can be read on its own: keep
/// the segment size well above that (the default, 64 MiB, is; a segment smaller than its
/// preamble holds one record).
///
/// ```
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// let (layer, guard) = ringwal_tracing::Builder::new(dir.path())
///     .writer(|w| {
///         w.sync(ringwal::SyncPolicy::Interval(Duration::from_millis(100)))
///             .segment_bytes(64 << 20)
///             .retain(ringwal::Retain::Bytes(1 << 30))
///             .idle(ringwal::Idle::Poll(Duration::from_millis(1)))
///     })
///     .build()
///     .unwrap();
/// # drop((layer, guard));
/// ```
#[derive(Debug)]
pub struct Builder {
    writer: ringwal::Builder,
    event_bytes: usize,
    tsc: bool,
}

impl Builder {
    /// A writer into `dir` (created if missing) with ringwal's defaults but a byte ring of
    /// [`DEFAULT_RING_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Builder::with_writer(Writer::builder(dir).capacity(DEFAULT_RING_BYTES))
    }

    /// Uses `writer`'s options as they are (its [`capacity`](ringwal::Builder::capacity) is
    /// the byte ring's size in bytes: set it, the typed default of 4096 is small for text),
    /// but for its [`segment_preamble`](ringwal::Builder::segment_preamble): the layer's
    /// (every callsite's metadata, so that each segment can be read on its own) replaces one
    /// set there.
    pub fn with_writer(writer: ringwal::Builder) -> Self {
        Builder {
            writer,
            event_bytes: DEFAULT_EVENT_BYTES,
            tsc: true,
        }
    }

    /// Changes the writer's options.
    pub fn writer(mut self, f: impl FnOnce(ringwal::Builder) -> ringwal::Builder) -> Self {
        self.writer = f(self.writer);
        self
    }

    /// The room reserved in the ring for one event or span record (default
    /// [`DEFAULT_EVENT_BYTES`], at least 64, at most the ring's largest record). A record
    /// needing more is cut at a field and marked truncated (`[truncated]` in `ringwal cat`);
    /// the unused part of the room goes back to the ring.
    pub fn event_bytes(mut self, bytes: usize) -> Self {
        self.event_bytes = bytes;
        self
    }

    /// Whether the layer may read its timestamps from the CPU's time-stamp counter (default
    /// `true`). It does where the kernel keeps time with it when the layer is built (x86-64
    /// Linux whose clocksource is `tsc`; KVM guests on `kvm-clock` do not): a read costs
    /// about a quarter of a system-clock read, and the log ties the counter to Unix time with
    /// clock records — at the start, in every segment's preamble, and renewed at least once a
    /// second while events are recorded (also at once after the counter went backwards, e.g.
    /// a resume from suspend) — so readers show Unix times, accurate to about a microsecond.
    /// Its records are format version 2, which needs a reader of this version or later.
    ///
    /// Elsewhere, or with `false`, every timestamp is a system-clock read and the records are
    /// format version 1 (older readers read them). Choose `false` where reading the counter
    /// is slow (a hypervisor that traps it) or forbidden (`prctl(PR_SET_TSC)`: it would be a
    /// `SIGSEGV`). The [`Logger`](crate::Logger) always reads the system clock.
    ///
    /// Building a layer that uses the counter measures its rate first: a millisecond's spin
    /// on the building thread.
    pub fn tsc(mut self, tsc: bool) -> Self {
        self.tsc = tsc;
        self
    }

    /// Starts the writer: the layer to add to a subscriber, and the guard to keep alive.
    pub fn build(self) -> io::Result<(Layer, Guard)> {
        let callsites = Arc::new(Callsites::new());
        let clock = Arc::new(Clock::new(self.tsc));
        let (writer, emitter) = self
            .writer
            .segment_preamble(crate::layer::segment_preamble(
                callsites.clone(),
                clock.clone(),
            ))
            .start_bytes()?;
        let layer = Layer::new(emitter.clone(), self.event_bytes, callsites, clock);
        Ok((layer, Guard::new(writer, emitter, self.event_bytes)))
    }

    /// Starts the writer and installs `tracing_subscriber::registry().with(layer)` as the
    /// global default subscriber. Fails if one is already set.
    pub fn init(self) -> io::Result<Guard> {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let (layer, guard) = self.build()?;
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .map_err(|e| io::Error::new(io::ErrorKind::AlreadyExists, e))?;
        Ok(guard)
    }
}

/// [`Builder::new(dir).init()`](Builder::init): the two-line setup.
///
/// ```no_run
/// let _guard = ringwal_tracing::init("logs").unwrap();
/// tracing::info!(user = 42, "started");
/// ```
pub fn init(dir: impl Into<PathBuf>) -> io::Result<Guard> {
    Builder::new(dir).init()
}

/// Owns the writer. Dropping it flushes and shuts the writer down (bounded by the writer's
/// `shutdown_timeout`), so keep it alive to the end of `main`, as tracing-appender's
/// `WorkerGuard`. [`shutdown`](Self::shutdown) does the same and reports. Events recorded after
/// the writer stopped are refused and not written (no writer is left to record their gap), so
/// drop the guard last.
#[must_use = "dropping the guard shuts the writer down: bind it (`let _guard = ..`) for the life of main"]
#[derive(Debug)]
pub struct Guard {
    writer: Option<Writer<Bytes>>,
    emitter: ByteEmitter,
    event_bytes: usize,
}

impl Guard {
    fn new(writer: Writer<Bytes>, emitter: ByteEmitter, event_bytes: usize) -> Self {
        Guard {
            writer: Some(writer),
            emitter,
            event_bytes,
        }
    }

    /// Waits until everything recorded before the call is written and (unless
    /// `SyncPolicy::Never`) fsynced.
    pub fn flush(&self) -> Result<(), FlushError> {
        self.emitter.flush()
    }

    /// The writer's counters: `rejected` counts the events the ring refused (each also a gap
    /// in the log).
    pub fn stats(&self) -> Stats {
        self.emitter.stats()
    }

    /// The writer's emitter (for example for a [`MakeWriter`](crate::MakeWriter) or a
    /// [`Logger`](crate::Logger) writing to the same log).
    pub fn emitter(&self) -> &ByteEmitter {
        &self.emitter
    }

    /// A [`MakeWriter`](crate::MakeWriter) into this log, for `fmt().with_writer(..)`.
    pub fn make_writer(&self) -> crate::MakeWriter {
        crate::MakeWriter::new(self.emitter.clone())
    }

    /// A [`Logger`](crate::Logger) into this log (same binary capture as the layer).
    #[cfg(feature = "log")]
    pub fn logger(&self, level: log::LevelFilter) -> crate::Logger {
        crate::Logger::new(self.emitter.clone(), level, self.event_bytes)
    }

    /// Drains, syncs and stops the writer, within its `shutdown_timeout`.
    pub fn shutdown(mut self) -> Result<Report, ShutdownError> {
        self.writer
            .take()
            .expect("the writer is only taken here or in drop")
            .shutdown()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            // Errors are the shutdown's to report; a drop cannot.
            let _ = writer.shutdown();
        }
    }
}
