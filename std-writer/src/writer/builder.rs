//! [`Builder`]: the writer's settings, checked, and the start of its thread.

use super::exit::{Exit, Watched};
use super::source::{Source, Typed};
use super::worker::Worker;
use super::{ByteEmitter, Bytes, Emitter, Published, Rx, Shared, Tx, Writer};
use crate::log::{LogOptions, Recovery, RecoveryMode, SegmentLog, SegmentPreamble};
use crate::record::Record;
use crate::signal::Signal;
use crate::sink::Sink;
use crate::{Idle, Overflow, Report, Retain, ShutdownError, SyncPolicy};
use ringwal_core::{
    try_byte_channel, try_channel, try_evicting_channel, ByteCapacityError, ByteProducer,
    ByteReceiver, CapacityError,
};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Configures and starts a writer. From [`Writer::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    dir: PathBuf,
    overflow: Overflow,
    sync: SyncPolicy,
    segment_bytes: u64,
    retain: Retain,
    reject_when_unhealthy: bool,
    shutdown_timeout: Duration,
    /// `None`: the default of the kind of writer started (events or bytes).
    capacity: Option<usize>,
    idle: Idle,
    recovery: RecoveryMode,
    preamble: Option<SegmentPreamble>,
}

/// A typed writer's ring: events, by default.
const DEFAULT_CAPACITY: usize = 4096;
/// A byte writer's ring: bytes, by default (1 MiB).
const DEFAULT_BYTE_CAPACITY: usize = 1 << 20;
/// A byte writer's largest ring: its longest record (half the ring, less 8 bytes) then still
/// fits a frame (`format::MAX_PAYLOAD`, 256 MiB). Below the byte ring's own limit,
/// 2^(`usize::BITS` - 2) bytes, on every target.
const MAX_BYTE_CAPACITY: usize = 512 << 20;
/// A byte writer's smallest ring (the byte ring's own minimum: room for empty records only).
const MIN_BYTE_CAPACITY: usize = 16;

/// The longest `Idle::Poll` interval `start` accepts.
const MAX_POLL: Duration = Duration::from_secs(60 * 60);
/// The shortest (below it, use `Idle::Spin`).
const MIN_POLL: Duration = Duration::from_micros(1);

impl Builder {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Builder {
            dir,
            overflow: Overflow::Reject,
            sync: SyncPolicy::EveryBatch,
            segment_bytes: 64 << 20,
            retain: Retain::All,
            reject_when_unhealthy: false,
            shutdown_timeout: Duration::from_secs(30),
            capacity: None,
            idle: Idle::Park,
            recovery: RecoveryMode::PointInTime,
            preamble: None,
        }
    }

    /// What `emit` does when the ring is full. Default [`Overflow::Reject`].
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// When the writer fsyncs. Default [`SyncPolicy::EveryBatch`].
    pub fn sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }

    /// Segment size limit in bytes (default 64 MiB; at least 64: a segment header and one empty
    /// record, [`format::HEADER_LEN`](crate::format::HEADER_LEN) `+`
    /// [`format::FRAME_HEADER_LEN`](crate::format::FRAME_HEADER_LEN); less is an
    /// [`io::ErrorKind::InvalidInput`] error from `start`, before the directory is touched). A
    /// record larger than this gets a segment of its own.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let err = ringwal::Writer::builder(dir.path().join("log"))
    ///     .segment_bytes(63)
    ///     .start::<String>()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path().join("log"))
    ///     .segment_bytes(64)
    ///     .start::<String>()
    ///     .unwrap();
    /// emitter.emit("each record in a segment of its own".to_string()).unwrap();
    /// assert_eq!(writer.shutdown().unwrap().persisted, 1);
    /// ```
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Which old segments to delete. Default [`Retain::All`].
    pub fn retain(mut self, retain: Retain) -> Self {
        self.retain = retain;
        self
    }

    /// Whether `emit` refuses events with [`EmitError::Unhealthy`](crate::EmitError::Unhealthy) while the disk is failing
    /// (default false: they queue in the ring, and the overflow policy applies when it fills).
    /// An emit already waiting for space under [`Overflow::Block`] (a blocked `emit`, or an
    /// `emit_async` task) when the disk starts failing is woken and refused too.
    pub fn reject_when_unhealthy(mut self, reject: bool) -> Self {
        self.reject_when_unhealthy = reject;
        self
    }

    /// How long a shutdown (also by `Drop`) may take: it keeps retrying a failing disk until
    /// then, and then gives up and returns the records not confirmed written in its error.
    /// It bounds the whole shutdown, even a sink that hangs inside a call (see
    /// [`Writer::shutdown`]). Default 30 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How many events the ring holds: a power of two, at least 2 (default 4096). Anything else
    /// is an [`io::ErrorKind::InvalidInput`] error from `start`, and a ring the allocator cannot
    /// provide an [`io::ErrorKind::OutOfMemory`] error; either before the directory is touched.
    ///
    /// The ring absorbs bursts and writer stalls (an fsync, a slow disk): size it for the
    /// longest burst you must not lose, or the events that arrive in your worst stall
    /// (events per second × stall seconds), whichever is larger. Memory is about
    /// `capacity × (size_of::<T>() + 8)` bytes, allocated once at start on the heap.
    ///
    /// For a byte writer ([`start_bytes`](Self::start_bytes)) it is the ring's size in bytes
    /// (default 1 MiB): a power of two from 16 bytes to 512 MiB, else `start_bytes` fails with
    /// [`io::ErrorKind::InvalidInput`] before the directory is touched. A record takes 8 bytes
    /// of header plus its length rounded up to 8, and may be at most `capacity / 2 - 8` bytes
    /// long ([`ByteEmitter::max_record_len`]; a longer one is refused, `TooLarge`). Size it
    /// for your worst stall in bytes (bytes per second × stall seconds).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path())
    ///     .capacity(1 << 17) // tracing-appender's default is 128,000 lines
    ///     .start::<String>()
    ///     .unwrap();
    /// emitter.emit("hello".to_string()).unwrap();
    /// writer.shutdown().unwrap();
    ///
    /// let err = ringwal::Writer::builder(dir.path()).capacity(1000).start::<String>().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// What the writer does while the ring is empty (default [`Idle::Park`]): park and be
    /// woken by the next emit (which then pays a futex wake), poll on a timer so that `emit`
    /// never makes a syscall ([`Idle::Poll`]; a record reaches the sink within about its
    /// interval, `flush` still returns promptly), or spin on a core of its own ([`Idle::Spin`]).
    /// `Poll` needs an interval from 1 µs to one hour; anything else is an
    /// [`io::ErrorKind::InvalidInput`] error from `start` (the directory is not touched).
    ///
    /// ```
    /// use ringwal::{Idle, Writer};
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = Writer::builder(dir.path())
    ///     .idle(Idle::Poll(Duration::from_millis(1)))
    ///     .start::<String>()
    ///     .unwrap();
    /// emitter.emit("no syscall here".to_string()).unwrap();
    /// writer.shutdown().unwrap(); // wakes the writer at once, whatever its interval
    ///
    /// let err = Writer::builder(dir.path())
    ///     .idle(Idle::Poll(Duration::ZERO))
    ///     .start::<String>()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn idle(mut self, idle: Idle) -> Self {
        self.idle = idle;
        self
    }

    /// What opening the log does with damage a crash or power loss left: cut the newest
    /// segment at its first invalid frame ([`RecoveryMode::PointInTime`], the default), or
    /// refuse damage that valid records follow ([`RecoveryMode::Strict`]). See
    /// [`RecoveryMode`].
    ///
    /// ```
    /// use ringwal::{RecoveryMode, Writer};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, _emitter) = Writer::builder(dir.path())
    ///     .recovery(RecoveryMode::Strict)
    ///     .start::<String>()
    ///     .unwrap();
    /// assert_eq!(writer.recovery().bytes_cut, 0);
    /// ```
    pub fn recovery(mut self, mode: RecoveryMode) -> Self {
        self.recovery = mode;
        self
    }

    /// Context to write at the start of every segment the log creates, so that a reader
    /// starting at any segment can read the records after it ([`SegmentPreamble`], which has
    /// an example). Default none. Not used by [`start_with_sink`](Self::start_with_sink) and
    /// [`start_bytes_with_sink`](Self::start_bytes_with_sink) (the sink makes its segments).
    pub fn segment_preamble(mut self, preamble: SegmentPreamble) -> Self {
        self.preamble = Some(preamble);
        self
    }

    fn check(&self) -> io::Result<()> {
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        match self.sync {
            SyncPolicy::Interval(d) if d.is_zero() => {
                return bad(
                    "SyncPolicy::Interval needs a non-zero interval (use EveryBatch)".into(),
                )
            }
            _ => {}
        }
        match self.retain {
            Retain::Segments(0) => return bad("Retain::Segments needs at least 1".into()),
            Retain::Bytes(0) => return bad("Retain::Bytes needs at least 1 byte".into()),
            _ => {}
        }
        if let Idle::Poll(d) = self.idle {
            if !(MIN_POLL..=MAX_POLL).contains(&d) {
                return bad(format!(
                    "Idle::Poll interval {d:?} is outside {MIN_POLL:?}..={MAX_POLL:?} (use Idle::Spin to never sleep)"
                ));
            }
        }
        if let Overflow::Block(Some(d)) = self.overflow {
            if d > Duration::from_secs(60 * 60 * 24 * 365) {
                return bad(format!("Overflow::Block timeout {d:?} is too long"));
            }
        }
        Ok(())
    }

    /// Opens (recovering) the log directory and starts the writer thread, with a ring of
    /// [`capacity`](Self::capacity) events (default 4096).
    ///
    /// ```
    /// use ringwal::{Overflow, SyncPolicy, Writer};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = Writer::builder(dir.path())
    ///     .overflow(Overflow::Reject)
    ///     .sync(SyncPolicy::EveryBatch)
    ///     .start::<String>()
    ///     .unwrap();
    /// emitter.emit("hello".to_string()).unwrap();
    /// emitter.flush().unwrap();                       // written and fsynced
    /// let report = writer.shutdown().unwrap();
    /// assert_eq!((report.emitted, report.persisted), (1, 1));
    /// ```
    pub fn start<T: Record>(self) -> io::Result<(Writer<T>, Emitter<T>)> {
        self.check_typed()?;
        // The ring first: a start that fails for want of memory leaves the directory alone.
        let ring = self.typed_ring::<T>()?;
        let (log, recovery) = self.open_log()?;
        self.spawn_typed(log, recovery, ring)
    }

    /// Opens (recovering) the log directory and starts a byte writer: emitters write
    /// variable-length byte records in place into a ring of [`capacity`](Self::capacity)
    /// bytes (default 1 MiB) through [`ByteEmitter`]. Nothing allocates per record on either
    /// side. The log is the same as a typed writer's: [`Reader`](crate::Reader), `ringwal cat`
    /// and `verify` read it unchanged.
    ///
    /// Every setting applies as for [`start`](Self::start), but [`Overflow::DropOldest`]:
    /// the byte ring cannot evict records (a producer would have to evict records of other
    /// lengths that the writer may be reading in place), so it is refused with
    /// [`io::ErrorKind::InvalidInput`], as is an invalid capacity, before the directory is
    /// touched.
    ///
    /// ```
    /// use ringwal::{Overflow, Writer};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = Writer::builder(dir.path())
    ///     .capacity(1 << 16) // bytes
    ///     .start_bytes()
    ///     .unwrap();
    /// emitter.emit(b"hello").unwrap();
    /// let report = writer.shutdown().unwrap();
    /// assert_eq!((report.emitted, report.persisted), (1, 1));
    ///
    /// let err = Writer::builder(dir.path())
    ///     .overflow(Overflow::DropOldest)
    ///     .start_bytes()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn start_bytes(self) -> io::Result<(Writer<Bytes>, ByteEmitter)> {
        self.check_bytes()?;
        // The ring first: a start that fails for want of memory leaves the directory alone.
        let ring = self.byte_ring()?;
        let (log, recovery) = self.open_log()?;
        self.spawn_bytes(log, recovery, ring)
    }

    /// [`start_bytes`](Self::start_bytes) on your own [`Sink`] (see
    /// [`start_with_sink`](Self::start_with_sink)).
    pub fn start_bytes_with_sink<S: Sink>(
        self,
        sink: S,
    ) -> io::Result<(Writer<Bytes>, ByteEmitter)> {
        self.check_bytes()?;
        Self::check_sink(&sink)?;
        let recovery = Self::sink_recovery(&sink);
        let ring = self.byte_ring()?;
        self.spawn_bytes(sink, recovery, ring)
    }

    fn open_log(&self) -> io::Result<(SegmentLog, Recovery)> {
        let log = SegmentLog::open(
            &self.dir,
            LogOptions {
                segment_bytes: self.segment_bytes,
                retain: self.retain,
                durable: self.sync != SyncPolicy::Never,
                recovery: self.recovery,
                preamble: self.preamble.clone(),
            },
        )?;
        let recovery = log.recovery().clone();
        Ok((log, recovery))
    }

    /// A sink of your own starts low enough in the sequence numbers never to run out of them:
    /// at most `u64::MAX / 2`, the limit [`SegmentLog::open`] applies to a log on disk (2^63
    /// records take centuries to write). Beyond it the writer's numbering would overflow.
    fn check_sink<S: Sink>(sink: &S) -> io::Result<()> {
        let next = sink.next_seq();
        if next > u64::MAX / 2 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the sink's next_seq {next} is past the limit of {}: sequence numbers \
                     would run out",
                    u64::MAX / 2
                ),
            ));
        }
        Ok(())
    }

    fn sink_recovery<S: Sink>(sink: &S) -> Recovery {
        Recovery {
            segments: sink.segments(),
            next_seq: sink.next_seq(),
            ..Recovery::default()
        }
    }

    /// The settings of a typed writer, checked.
    fn check_typed(&self) -> io::Result<()> {
        self.check()?;
        let capacity = self.capacity.unwrap_or(DEFAULT_CAPACITY);
        if !(capacity >= 2 && capacity.is_power_of_two() && capacity <= ringwal_core::MAX_CAPACITY)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "capacity {capacity} is not a power of two between 2 and {}",
                    ringwal_core::MAX_CAPACITY
                ),
            ));
        }
        Ok(())
    }

    /// The settings of a byte writer, checked.
    fn check_bytes(&self) -> io::Result<()> {
        self.check()?;
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.overflow == Overflow::DropOldest {
            return bad(
                "Overflow::DropOldest is not available for a byte writer (the byte ring \
                 cannot evict records): use Reject or Block"
                    .into(),
            );
        }
        let capacity = self.capacity.unwrap_or(DEFAULT_BYTE_CAPACITY);
        if !(capacity.is_power_of_two()
            && (MIN_BYTE_CAPACITY..=MAX_BYTE_CAPACITY).contains(&capacity))
        {
            return bad(format!(
                "byte capacity {capacity} is not a power of two between {MIN_BYTE_CAPACITY} and \
                 {} bytes",
                MAX_BYTE_CAPACITY
            ));
        }
        Ok(())
    }

    /// [`start`](Self::start) with a ring of `N` events: the same as `.capacity(N).start()`.
    #[deprecated(note = "use `.capacity(n).start()`: the capacity is a run-time setting")]
    pub fn start_with_capacity<T: Record, const N: usize>(
        self,
    ) -> io::Result<(Writer<T>, Emitter<T>)> {
        self.capacity(N).start()
    }

    /// Starts the writer on your own [`Sink`] instead of the segmented log in the builder's
    /// directory (the directory, `segment_bytes`, `retain`, `recovery` and `segment_preamble`
    /// are then unused; [`Writer::recovery`] reports only the sink's `segments` and
    /// `next_seq`). A sink whose
    /// [`next_seq`](Sink::next_seq) is past `u64::MAX / 2` (the limit of a log on disk: the
    /// numbering must not run out) is an [`io::ErrorKind::InvalidInput`] error.
    pub fn start_with_sink<T: Record, S: Sink>(
        self,
        sink: S,
    ) -> io::Result<(Writer<T>, Emitter<T>)> {
        self.check_typed()?;
        Self::check_sink(&sink)?;
        let recovery = Self::sink_recovery(&sink);
        let ring = self.typed_ring::<T>()?;
        self.spawn_typed(sink, recovery, ring)
    }

    /// The ring of a typed writer, allocated (its settings checked by `check_typed`).
    fn typed_ring<T: Record>(&self) -> io::Result<(Tx<T>, Typed<T>)> {
        let capacity_error = |e: CapacityError| match e {
            CapacityError::OutOfMemory { .. } => io::Error::new(io::ErrorKind::OutOfMemory, e),
            _ => io::Error::new(io::ErrorKind::InvalidInput, e),
        };
        let capacity = self.capacity.unwrap_or(DEFAULT_CAPACITY);
        // Only `DropOldest` evicts; every other policy gets the ring whose consumer takes
        // without read-modify-writes.
        let (producer, receiver) = if self.overflow == Overflow::DropOldest {
            let (tx, rx) = try_evicting_channel::<T>(capacity).map_err(capacity_error)?;
            (Tx::Evicting(tx), Rx::Evicting(rx))
        } else {
            let (tx, rx) = try_channel::<T>(capacity).map_err(capacity_error)?;
            (Tx::Plain(tx), Rx::Plain(rx))
        };
        Ok((producer, Typed::new(receiver)))
    }

    fn spawn_typed<T: Record, S: Sink>(
        self,
        sink: S,
        recovery: Recovery,
        (producer, receiver): (Tx<T>, Typed<T>),
    ) -> io::Result<(Writer<T>, Emitter<T>)> {
        let (writer, shared) = self.spawn(sink, recovery, producer, receiver)?;
        Ok((writer, Emitter::new(shared)))
    }

    /// The ring of a byte writer, allocated (its settings checked by `check_bytes`).
    fn byte_ring(&self) -> io::Result<(ByteProducer, ByteReceiver)> {
        let capacity = self.capacity.unwrap_or(DEFAULT_BYTE_CAPACITY);
        try_byte_channel(capacity).map_err(|e| match e {
            ByteCapacityError::OutOfMemory { .. } => io::Error::new(io::ErrorKind::OutOfMemory, e),
            _ => io::Error::new(io::ErrorKind::InvalidInput, e),
        })
    }

    fn spawn_bytes<S: Sink>(
        self,
        sink: S,
        recovery: Recovery,
        (tx, rx): (ByteProducer, ByteReceiver),
    ) -> io::Result<(Writer<Bytes>, ByteEmitter)> {
        let (writer, shared) = self.spawn(sink, recovery, Tx::Bytes(tx), rx)?;
        Ok((writer, ByteEmitter::new(shared)))
    }

    /// Starts the writer thread on `sink`, draining `source` (the consumer side of
    /// `producer`'s ring).
    fn spawn<T, S, Src>(
        self,
        sink: S,
        recovery: Recovery,
        producer: Tx<T>,
        receiver: Src,
    ) -> io::Result<(Writer<T>, Arc<Shared<T>>)>
    where
        T: Send + 'static,
        S: Sink,
        Src: Source + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel::<(Arc<Shared<T>>, Src)>();
        let sync = self.sync;
        let shutdown_timeout = self.shutdown_timeout;
        let idle = self.idle;
        let exit = Arc::new(Exit::new(shutdown_timeout));
        let handle = std::thread::Builder::new()
            .name("ringwal-writer".into())
            .spawn(move || {
                // No shared state: `spawn` failed after starting the thread; nobody waits.
                let Ok((shared, receiver)) = rx.recv() else {
                    return;
                };
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    let sink = Watched::new(sink, Arc::clone(&shared.exit));
                    let worker =
                        Worker::new(Arc::clone(&shared), sink, sync, shutdown_timeout, idle);
                    worker.run(receiver)
                }));
                if outcome.is_err() {
                    // Refuse new emits with the close handshake, so none lands unseen.
                    shared.close();
                    // Nothing will be written any more: `stats().healthy` (and the report
                    // below) must not read as a working writer. After the close, an emit
                    // this refuses as `Unhealthy` reports `Closed` (`refuse`).
                    shared.signal.set_unhealthy(true);
                }
                // Release blocked emitters and flushers.
                shared.signal.exited();
                let result = outcome.unwrap_or_else(|_| {
                    Err(ShutdownError {
                        error: io::Error::other("the writer thread panicked"),
                        report: Box::new(Report {
                            stats: shared.stats(),
                        }),
                        unwritten: Vec::new(),
                    })
                });
                shared.exit.put(result);
            })?;
        let shared = Arc::new(Shared {
            tx: producer,
            signal: match idle {
                Idle::Park => Signal::new(handle.thread().clone()),
                Idle::Poll(_) | Idle::Spin => Signal::polled(handle.thread().clone()),
            },
            overflow: self.overflow,
            reject_when_unhealthy: self.reject_when_unhealthy,
            published: Published::default(),
            last_error: Mutex::new(None),
            exit,
        });
        tx.send((Arc::clone(&shared), receiver))
            .map_err(|_| io::Error::other("writer thread died at start"))?;
        Ok((
            Writer {
                shared: Arc::clone(&shared),
                handle: Some(handle),
                recovery,
            },
            shared,
        ))
    }
}
