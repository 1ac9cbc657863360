//! The writer thread, its builder, and the emitter handles.

use crate::format;
use crate::log::{LogOptions, Recovery, SegmentLog};
use crate::reader::Entry;
use crate::record::Record;
use crate::signal::{Signal, CLOSED, EXITED, STOP, STRIPES, UNHEALTHY};
use crate::sink::{Batch, Sink};
use crate::{EmitError, FlushError, Overflow, Report, Retain, ShutdownError, Stats, SyncPolicy};
use crossbeam_utils::CachePadded;
use ringwal_core::{Full, Ring};
use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Backoff after a write or sync failure: 1 ms, doubling, capped at this.
const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// `Block` retries this many times (spinning, then yielding) before it parks.
const BLOCK_SPINS: u32 = 96;
/// An idle writer polls the ring this many rounds (64 spins, then yields: tens of
/// microseconds) before it parks. Under a steady stream of events it so stays awake, and
/// emitters never pay for an unpark; an idle writer still sleeps.
const IDLE_POLLS: u32 = 256;

/// Counters the writer thread publishes for [`Stats`].
#[derive(Debug, Default)]
struct Published {
    persisted: AtomicU64,
    dropped: AtomicU64,
    bytes_written: AtomicU64,
    syncs: AtomicU64,
    write_errors: AtomicU64,
    segments: AtomicU64,
    /// Last sequence number in the sink, plus one (0: none).
    last_seq_plus_one: AtomicU64,
}

/// What emitters, the writer handle and the writer thread share.
pub(crate) struct Shared<T, const N: usize> {
    ring: Ring<T, N>,
    signal: Signal,
    overflow: Overflow,
    reject_when_unhealthy: bool,
    rejected: [CachePadded<AtomicU64>; STRIPES],
    published: Published,
    last_error: Mutex<Option<(io::ErrorKind, String)>>,
}

impl<T, const N: usize> Shared<T, N> {
    fn stats(&self) -> Stats {
        // Acquire pairs with the writer thread's Release `exited`: after it, the counters are
        // final and this sees them.
        let state = self.signal.state_acquire();
        // Relaxed: snapshots; exact once the writer has exited (ordered by the load above).
        let p = &self.published;
        let emitted = self.ring.pushed() as u64;
        let persisted = p.persisted.load(Ordering::Relaxed);
        let dropped = p.dropped.load(Ordering::Relaxed);
        let last = p.last_seq_plus_one.load(Ordering::Relaxed);
        Stats {
            emitted,
            rejected: self
                .rejected
                .iter()
                .map(|r| r.load(Ordering::Relaxed))
                .sum(),
            persisted,
            dropped,
            queued: emitted.saturating_sub(persisted + dropped),
            bytes_written: p.bytes_written.load(Ordering::Relaxed),
            syncs: p.syncs.load(Ordering::Relaxed),
            write_errors: p.write_errors.load(Ordering::Relaxed),
            segments: p.segments.load(Ordering::Relaxed),
            last_seq: last.checked_sub(1),
            healthy: state & UNHEALTHY == 0,
        }
    }

    fn last_error(&self) -> io::Error {
        match &*self.last_error.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((kind, msg)) => io::Error::new(*kind, msg.clone()),
            None => io::Error::other("write failed"),
        }
    }
}

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
}

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

    /// Segment size limit in bytes (default 64 MiB; at least 56). A record larger than this gets
    /// a segment of its own.
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Which old segments to delete. Default [`Retain::All`].
    pub fn retain(mut self, retain: Retain) -> Self {
        self.retain = retain;
        self
    }

    /// Whether `emit` refuses events with [`EmitError::Unhealthy`] while the disk is failing
    /// (default false: they queue in the ring, and the overflow policy applies when it fills).
    pub fn reject_when_unhealthy(mut self, reject: bool) -> Self {
        self.reject_when_unhealthy = reject;
        self
    }

    /// How long `shutdown` keeps retrying a failing disk before it gives up and returns the
    /// unwritten records in its error. Default 30 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
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
        if let Overflow::Block(Some(d)) = self.overflow {
            if d > Duration::from_secs(60 * 60 * 24 * 365) {
                return bad(format!("Overflow::Block timeout {d:?} is too long"));
            }
        }
        Ok(())
    }

    /// Opens (recovering) the log directory and starts the writer thread, with a ring of 4096
    /// events.
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
        self.start_with_capacity::<T, 4096>()
    }

    /// [`start`](Self::start) with a ring of `N` events (a power of two, at least 2).
    pub fn start_with_capacity<T: Record, const N: usize>(
        self,
    ) -> io::Result<(Writer<T, N>, Emitter<T, N>)> {
        self.check()?;
        let log = SegmentLog::open(
            &self.dir,
            LogOptions {
                segment_bytes: self.segment_bytes,
                retain: self.retain,
                durable: self.sync != SyncPolicy::Never,
            },
        )?;
        let recovery = log.recovery().clone();
        self.spawn(log, recovery)
    }

    /// Starts the writer on your own [`Sink`] instead of the segmented log in the builder's
    /// directory (the directory, `segment_bytes` and `retain` are then unused).
    pub fn start_with_sink<T: Record, const N: usize, S: Sink>(
        self,
        sink: S,
    ) -> io::Result<(Writer<T, N>, Emitter<T, N>)> {
        self.check()?;
        let recovery = Recovery {
            segments: sink.segments(),
            next_seq: sink.next_seq(),
            ..Recovery::default()
        };
        self.spawn(sink, recovery)
    }

    fn spawn<T: Record, const N: usize, S: Sink>(
        self,
        sink: S,
        recovery: Recovery,
    ) -> io::Result<(Writer<T, N>, Emitter<T, N>)> {
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Shared<T, N>>>();
        let sync = self.sync;
        let shutdown_timeout = self.shutdown_timeout;
        let handle = std::thread::Builder::new()
            .name("ringwal-writer".into())
            .spawn(move || {
                let shared = rx.recv().map_err(|_| ShutdownError {
                    error: io::Error::other("writer never started"),
                    report: Box::default(),
                    unwritten: Vec::new(),
                })?;
                let worker = Worker::new(Arc::clone(&shared), sink, sync, shutdown_timeout);
                let outcome = catch_unwind(AssertUnwindSafe(|| worker.run()));
                if outcome.is_err() {
                    // Refuse new emits with the close handshake, so none lands unseen.
                    shared.signal.close();
                }
                // Release blocked emitters and flushers.
                shared.signal.exited();
                outcome.unwrap_or_else(|_| {
                    Err(ShutdownError {
                        error: io::Error::other("the writer thread panicked"),
                        report: Box::new(Report {
                            stats: shared.stats(),
                        }),
                        unwritten: Vec::new(),
                    })
                })
            })?;
        let shared = Arc::new(Shared {
            ring: Ring::new(),
            signal: Signal::new(handle.thread().clone()),
            overflow: self.overflow,
            reject_when_unhealthy: self.reject_when_unhealthy,
            rejected: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
            published: Published::default(),
            last_error: Mutex::new(None),
        });
        tx.send(Arc::clone(&shared))
            .map_err(|_| io::Error::other("writer thread died at start"))?;
        let emitter = Emitter::new(Arc::clone(&shared));
        Ok((
            Writer {
                shared,
                handle: Some(handle),
                recovery,
            },
            emitter,
        ))
    }
}

/// The writer: owns the thread that drains the ring to disk. Shut it down with
/// [`shutdown`](Self::shutdown) to get the final [`Report`]; dropping it shuts down too (and
/// ignores errors).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
/// let producers: Vec<_> = (0..2u8)
///     .map(|p| {
///         let emitter = emitter.clone();
///         std::thread::spawn(move || {
///             for i in 0..100u8 {
///                 while emitter.emit(vec![p, i]).is_err() {
///                     std::thread::yield_now(); // Reject: the ring was full; try again
///                 }
///             }
///         })
///     })
///     .collect();
/// for p in producers { p.join().unwrap(); }
/// let report = writer.shutdown().unwrap();
/// assert_eq!(report.persisted, 200);
/// assert_eq!(report.emitted, report.persisted + report.dropped);
/// ```
pub struct Writer<T, const N: usize = 4096> {
    shared: Arc<Shared<T, N>>,
    handle: Option<JoinHandle<Result<Report, ShutdownError>>>,
    recovery: Recovery,
}

impl<T, const N: usize> std::fmt::Debug for Writer<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.shared.stats())
            .finish_non_exhaustive()
    }
}

impl Writer<(), 4096> {
    /// A builder for a writer whose log lives in `dir` (created if missing).
    pub fn builder(dir: impl Into<PathBuf>) -> Builder {
        Builder::new(dir.into())
    }
}

impl<T: Record, const N: usize> Writer<T, N> {
    /// Counters, now (a snapshot).
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// What opening the log found and repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Another emitter handle (same as cloning one).
    pub fn emitter(&self) -> Emitter<T, N> {
        Emitter::new(Arc::clone(&self.shared))
    }

    /// Stops accepting events (later emits get [`EmitError::Closed`]), writes and syncs
    /// everything accepted, joins the thread, and returns the final counters: then
    /// `emitted == persisted + dropped` exactly.
    ///
    /// If the sink keeps failing past the builder's `shutdown_timeout`, the error carries the
    /// records that could not be written, encoded, in order.
    pub fn shutdown(mut self) -> Result<Report, ShutdownError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<Report, ShutdownError> {
        let Some(handle) = self.handle.take() else {
            return Ok(Report {
                stats: self.shared.stats(),
            });
        };
        self.shared.signal.request_stop();
        match handle.join() {
            Ok(result) => result,
            Err(_) => Err(ShutdownError {
                error: io::Error::other("the writer thread panicked"),
                report: Box::new(Report {
                    stats: self.shared.stats(),
                }),
                unwritten: Vec::new(),
            }),
        }
    }
}

impl<T, const N: usize> Drop for Writer<T, N> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.shared.signal.request_stop();
            let _ = handle.join();
        }
    }
}

/// A handle for emitting events: cheap to clone, `Send + Sync`. Give each thread its own clone:
/// clones get their own in-flight counters (16 of them, round robin; more clones share), so
/// emitters rarely share a cache line.
pub struct Emitter<T, const N: usize = 4096> {
    shared: Arc<Shared<T, N>>,
    stripe: usize,
}

impl<T, const N: usize> std::fmt::Debug for Emitter<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("stripe", &self.stripe)
            .finish_non_exhaustive()
    }
}

impl<T, const N: usize> Clone for Emitter<T, N> {
    fn clone(&self) -> Self {
        Emitter::new(Arc::clone(&self.shared))
    }
}

enum Attempt<T> {
    Done(Result<(), EmitError<T>>),
    Retry(T),
}

impl<T, const N: usize> Emitter<T, N> {
    fn new(shared: Arc<Shared<T, N>>) -> Self {
        let stripe = shared.signal.stripe();
        Emitter { shared, stripe }
    }

    fn count_rejected(&self) {
        // Relaxed: a counter; read as a snapshot (exact after the writer exits).
        self.shared.rejected[self.stripe].fetch_add(1, Ordering::Relaxed);
    }

    /// Hands `event` to the writer without waiting for it: one push into the ring and, only
    /// if the writer is asleep, one wake (an unpark). No allocation, no lock, no syscall
    /// otherwise; the writer encodes the event on its own thread.
    ///
    /// When the ring is full, the builder's [`Overflow`] decides: `Reject` returns the event
    /// in [`EmitError::Full`]; `DropOldest` evicts the oldest queued event (dropped on this
    /// thread, counted in `dropped`, and recorded in the log as a gap); `Block` waits for space
    /// (spinning briefly, then parked) up to its timeout. After shutdown began, the event comes
    /// back in [`EmitError::Closed`]; with `reject_when_unhealthy`, in
    /// [`EmitError::Unhealthy`] while the disk is failing. Every call counts once, in
    /// `emitted` (accepted) or `rejected`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start::<&'static str>().unwrap();
    /// match emitter.emit("order 17 filled") {
    ///     Ok(()) => {}
    ///     Err(e) => {
    ///         let why = e.to_string();
    ///         eprintln!("not logged ({why}): {:?}", e.into_inner());
    ///     }
    /// }
    /// # drop(writer);
    /// ```
    #[inline]
    pub fn emit(&self, event: T) -> Result<(), EmitError<T>> {
        let sh = &*self.shared;
        let state = sh.signal.enter(self.stripe);
        let event = match self.admit(state, event) {
            Ok(event) => event,
            Err(refusal) => return self.refused(refusal),
        };
        // The pushes below end the emit themselves: they release the in-flight counter as soon
        // as the position is claimed (see `signal`'s module docs).
        let in_flight = sh.signal.in_flight(self.stripe);
        match sh.overflow {
            Overflow::Reject => match sh.ring.try_push_releasing(event, in_flight) {
                Ok(()) => {
                    sh.signal.woke(state);
                    Ok(())
                }
                Err(Full(event)) => {
                    self.count_rejected();
                    Err(EmitError::Full(event))
                }
            },
            Overflow::DropOldest => {
                let evicted = sh.ring.force_push_releasing(event, in_flight);
                sh.signal.woke(state);
                drop(evicted);
                Ok(())
            }
            Overflow::Block(timeout) => match sh.ring.try_push_releasing(event, in_flight) {
                Ok(()) => {
                    sh.signal.woke(state);
                    Ok(())
                }
                Err(Full(event)) => self.block(event, timeout),
            },
        }
    }

    /// The event back if `state` lets it in, else the refusal: CLOSED, or UNHEALTHY when the
    /// writer was built with `reject_when_unhealthy`.
    #[inline(always)]
    fn admit(&self, state: usize, event: T) -> Result<T, EmitError<T>> {
        if state & (CLOSED | UNHEALTHY) != 0 {
            if state & CLOSED != 0 {
                return Err(EmitError::Closed(event));
            }
            if self.shared.reject_when_unhealthy {
                return Err(EmitError::Unhealthy(event));
            }
        }
        Ok(event)
    }

    /// Ends an entered emit that pushed nothing, counting it rejected.
    #[cold]
    fn refused(&self, error: EmitError<T>) -> Result<(), EmitError<T>> {
        self.shared.signal.leave(self.stripe, 0);
        self.count_rejected();
        Err(error)
    }

    /// One attempt of a blocked emit: enter, check, push (which ends the emit).
    fn attempt(&self, event: T) -> Attempt<T> {
        let sh = &*self.shared;
        let state = sh.signal.enter(self.stripe);
        let event = match self.admit(state, event) {
            Ok(event) => event,
            Err(refusal) => return Attempt::Done(self.refused(refusal)),
        };
        match sh
            .ring
            .try_push_releasing(event, sh.signal.in_flight(self.stripe))
        {
            Ok(()) => {
                sh.signal.woke(state);
                Attempt::Done(Ok(()))
            }
            Err(Full(event)) => Attempt::Retry(event),
        }
    }

    #[cold]
    fn block(&self, mut event: T, timeout: Option<Duration>) -> Result<(), EmitError<T>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        for round in 0..BLOCK_SPINS {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.count_rejected();
                return Err(EmitError::Full(event));
            }
            crate::sync::relax(round);
            match self.attempt(event) {
                Attempt::Done(r) => return r,
                Attempt::Retry(e) => event = e,
            }
        }
        let mut slot = Some(event);
        let waited = self.shared.signal.space.wait(deadline, || {
            let event = slot.take()?;
            match self.attempt(event) {
                Attempt::Done(r) => Some(r),
                Attempt::Retry(e) => {
                    slot = Some(e);
                    None
                }
            }
        });
        match (waited, slot) {
            (Some(r), _) => r,
            (None, Some(event)) => {
                self.count_rejected();
                Err(EmitError::Full(event))
            }
            (None, None) => unreachable!("the event is in `slot` whenever the wait times out"),
        }
    }

    /// Waits until every event accepted (by any emitter) before this call is written and,
    /// unless the policy is [`SyncPolicy::Never`], fsynced. Events evicted by `DropOldest`
    /// count as handled.
    ///
    /// Errs with [`FlushError::Io`] if a write or sync fails while it waits (the writer keeps
    /// retrying; nothing is lost, but nothing is confirmed durable either), and with
    /// [`FlushError::Closed`] if the writer has stopped without writing them.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start::<&'static str>().unwrap();
    /// emitter.emit("a").unwrap();
    /// emitter.flush().unwrap();
    /// let entries: Vec<_> = ringwal::Reader::open(dir.path()).unwrap().iter().collect();
    /// assert_eq!(entries.len(), 1);
    /// # drop(writer);
    /// ```
    pub fn flush(&self) -> Result<(), FlushError> {
        self.flush_until(None)
    }

    /// [`flush`](Self::flush), giving up with [`FlushError::Timeout`] after `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.flush_until(Instant::now().checked_add(timeout))
    }

    fn flush_until(&self, deadline: Option<Instant>) -> Result<(), FlushError> {
        let sh = &*self.shared;
        let sig = &sh.signal;
        let target = sh.ring.pushed();
        if Signal::reached(sig.done(), target) {
            return Ok(());
        }
        let failures = sig.failures();
        sig.request_flush(target);
        let outcome = sig.flushed.wait(deadline, || {
            if Signal::reached(sig.done(), target) {
                Some(Ok(()))
            } else if sig.failures() != failures {
                Some(Err(FlushError::Io(sh.last_error())))
            } else if sig.state_acquire() & EXITED != 0 {
                Some(Err(FlushError::Closed))
            } else {
                None
            }
        });
        outcome.unwrap_or(Err(FlushError::Timeout))
    }

    /// Counters, now (a snapshot).
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}

/// The writer thread's state.
struct Worker<T, const N: usize, S> {
    shared: Arc<Shared<T, N>>,
    sink: S,
    policy: SyncPolicy,
    shutdown_timeout: Duration,
    /// Frames not yet durable: `buf[..appended]` is in the sink (awaiting sync), the rest is
    /// not yet appended. Frame sequence numbers run from `buf_first_seq` to `next_seq`.
    buf: Vec<u8>,
    /// Where one record is encoded before it is framed into `buf`.
    scratch: Vec<u8>,
    buf_first_seq: u64,
    appended: usize,
    appended_seq: u64,
    next_seq: u64,
    /// The first sequence number the sink held records before (persisted counts from it).
    start_seq: u64,
    /// Events lost since the last encoded record (evictions, failed encodes).
    pending_gap: u64,
    /// Ring position (values popped plus evicted) at the end of each batch, with the sequence
    /// number after that batch: when that is durable, `done` reaches the position.
    checkpoints: VecDeque<(u64, usize)>,
    popped: usize,
    evicted: u64,
    dropped: u64,
    bytes_written: u64,
    syncs: u64,
    write_errors: u64,
    done: usize,
    failing: u32,
    retry_at: Option<Instant>,
    last_sync: Instant,
}

impl<T: Record, const N: usize, S: Sink> Worker<T, N, S> {
    fn new(
        shared: Arc<Shared<T, N>>,
        sink: S,
        policy: SyncPolicy,
        shutdown_timeout: Duration,
    ) -> Self {
        let seq = sink.next_seq();
        Worker {
            shared,
            sink,
            policy,
            shutdown_timeout,
            buf: Vec::with_capacity(64 << 10),
            scratch: Vec::with_capacity(256),
            buf_first_seq: seq,
            appended: 0,
            appended_seq: seq,
            next_seq: seq,
            start_seq: seq,
            pending_gap: 0,
            checkpoints: VecDeque::new(),
            popped: 0,
            evicted: 0,
            dropped: 0,
            bytes_written: 0,
            syncs: 0,
            write_errors: 0,
            done: 0,
            failing: 0,
            retry_at: None,
            last_sync: Instant::now(),
        }
    }

    fn durable_seq(&self) -> u64 {
        match self.policy {
            SyncPolicy::Never => self.appended_seq,
            _ => self.buf_first_seq,
        }
    }

    fn encode(&mut self, event: T) {
        // Into a scratch buffer, so an `encode` that misbehaves (clears or rewrites `out`)
        // can only spoil its own record, never frames already in the batch.
        self.scratch.clear();
        let scratch = &mut self.scratch;
        let encoded = catch_unwind(AssertUnwindSafe(move || {
            event.encode(scratch);
            drop(event);
        }));
        let framed = encoded.is_ok() && {
            let start = format::begin_frame(&mut self.buf);
            self.buf.extend_from_slice(&self.scratch);
            format::finish_frame(&mut self.buf, start, self.next_seq, self.pending_gap).is_ok()
        };
        if framed {
            self.next_seq += 1;
            self.pending_gap = 0;
        } else {
            self.dropped += 1;
            self.pending_gap += 1;
        }
        if self.scratch.capacity() > 1 << 20 {
            self.scratch = Vec::new();
        }
    }

    /// Takes up to one ring's worth of events and encodes them. Returns how many it took.
    fn take(&mut self, consumer: &mut ringwal_core::Consumer<'_, T, N>) -> usize {
        let mut took = 0;
        // From our own count, not the consumer's: a `pop` that stepped over evicted positions
        // and then found nothing published has already counted them there.
        let mut evicted = self.evicted;
        while took < N {
            let popped = consumer.pop();
            let now = consumer.evicted();
            self.pending_gap += now - evicted;
            self.dropped += now - evicted;
            evicted = now;
            let Some(event) = popped else { break };
            took += 1;
            self.encode(event);
        }
        let moved = took > 0 || evicted != self.evicted;
        self.evicted = evicted;
        self.popped = self.popped.wrapping_add(took);
        if moved {
            let position = self.popped.wrapping_add(self.evicted as usize);
            self.checkpoints.push_back((self.next_seq, position));
        }
        if took > 0 {
            self.shared.signal.space.notify();
        }
        took
    }

    /// Whether the writer's position (values popped plus values evicted) has reached the
    /// producers' (`Ring::pushed`): nothing claimed is left in the ring. Exact after close.
    fn caught_up(&self) -> bool {
        self.popped.wrapping_add(self.evicted as usize) == self.shared.ring.pushed()
    }

    fn fail(&mut self, e: io::Error) {
        self.write_errors += 1;
        self.failing = self.failing.saturating_add(1);
        let backoff =
            Duration::from_millis(1u64 << self.failing.min(16).saturating_sub(1)).min(MAX_BACKOFF);
        self.retry_at = Some(Instant::now() + backoff);
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((e.kind(), e.to_string()));
        self.shared.signal.set_unhealthy(true);
        // Relaxed: a counter; `record_failure` (Release) orders it before a flusher's check.
        self.shared
            .published
            .write_errors
            .store(self.write_errors, Ordering::Relaxed);
        self.shared.signal.record_failure();
        self.resync();
    }

    fn healthy(&mut self) {
        if self.failing > 0 {
            self.failing = 0;
            self.retry_at = None;
            self.shared.signal.set_unhealthy(false);
        }
    }

    /// After a failure: continue from wherever the sink says it is.
    fn resync(&mut self) {
        let at = self.sink.next_seq();
        if at < self.buf_first_seq {
            // The sink lost records we no longer hold (only possible under `Never`): count them
            // as dropped and renumber what we hold to follow on, the gap recorded.
            // Only what this run wrote can be lost to it: a sink below our start lost records
            // of an earlier run, which are not in our counts.
            let lost = self.buf_first_seq - at.max(self.start_seq);
            // Every record after `at` is gone; the log's gap shows them all.
            let shift = self.buf_first_seq - at;
            self.start_seq = self.start_seq.min(at);
            self.dropped += lost;
            let mut offset = 0;
            let mut seq = at;
            let mut first = true;
            while offset < self.buf.len() {
                let Ok(size) = format::frame_size(&self.buf[offset..]) else {
                    break;
                };
                let frame = &mut self.buf[offset..offset + size];
                let mut gap = [0u8; 8];
                gap.copy_from_slice(&frame[16..24]);
                let mut gap = u64::from_le_bytes(gap);
                if first {
                    gap += shift;
                    first = false;
                }
                format::renumber_frame(frame, seq, gap);
                seq += 1;
                offset += size;
            }
            if first {
                self.pending_gap += shift;
            }
            for c in self.checkpoints.iter_mut() {
                c.0 = c.0.saturating_sub(shift);
            }
            self.buf_first_seq = at;
            self.next_seq -= shift;
            self.appended = 0;
            self.appended_seq = at;
        } else {
            // Everything from `at` on must be appended again; frames before it are in the sink.
            let at = at.min(self.next_seq);
            let mut offset = 0;
            let mut seq = self.buf_first_seq;
            while seq < at {
                match format::frame_size(&self.buf[offset..]) {
                    Ok(size) => offset += size,
                    Err(_) => break,
                }
                seq += 1;
            }
            self.appended = offset;
            self.appended_seq = seq;
        }
    }

    fn write(&mut self) {
        if self.appended == self.buf.len() {
            return;
        }
        let batch = Batch::from_writer(
            &self.buf[self.appended..],
            self.appended_seq,
            self.next_seq - self.appended_seq,
        );
        match self.sink.append(&batch) {
            Ok(()) => {
                self.bytes_written += (self.buf.len() - self.appended) as u64;
                self.appended = self.buf.len();
                self.appended_seq = self.next_seq;
                if self.policy == SyncPolicy::Never {
                    self.buf.clear();
                    self.appended = 0;
                    self.buf_first_seq = self.next_seq;
                }
                // The sink takes writes again (a later sync failure makes it unhealthy anew).
                self.healthy();
            }
            Err(e) => self.fail(e),
        }
    }

    fn sync_due(&self, closing: bool) -> bool {
        if self.appended == 0 || self.appended != self.buf.len() {
            return false;
        }
        match self.policy {
            SyncPolicy::Never => false,
            SyncPolicy::EveryBatch => true,
            SyncPolicy::Interval(d) => {
                closing || self.last_sync.elapsed() >= d || self.flush_wanted()
            }
        }
    }

    fn flush_wanted(&self) -> bool {
        !Signal::reached(self.done, self.shared.signal.flush_target())
    }

    fn sync(&mut self) {
        match self.sink.sync() {
            Ok(()) => {
                self.syncs += 1;
                self.last_sync = Instant::now();
                self.buf.clear();
                self.appended = 0;
                self.buf_first_seq = self.appended_seq;
                self.healthy();
            }
            Err(e) => self.fail(e),
        }
    }

    fn publish(&mut self) {
        let durable = self.durable_seq();
        let mut done = self.done;
        while let Some(&(seq, position)) = self.checkpoints.front() {
            if seq > durable {
                break;
            }
            done = position;
            self.checkpoints.pop_front();
        }
        let p = &self.shared.published;
        // Relaxed: snapshots for `stats`; `publish_done` and `exited` below order them for
        // flushers and for the final report.
        p.persisted
            .store(self.appended_seq - self.start_seq, Ordering::Relaxed);
        p.dropped.store(self.dropped, Ordering::Relaxed);
        p.bytes_written.store(self.bytes_written, Ordering::Relaxed);
        p.syncs.store(self.syncs, Ordering::Relaxed);
        p.write_errors.store(self.write_errors, Ordering::Relaxed);
        p.segments
            .store(self.sink.segments() as u64, Ordering::Relaxed);
        p.last_seq_plus_one
            .store(self.appended_seq, Ordering::Relaxed);
        if done != self.done {
            self.done = done;
            self.shared.signal.publish_done(done);
        }
    }

    fn run(mut self) -> Result<Report, ShutdownError> {
        let shared = Arc::clone(&self.shared);
        let mut consumer = shared
            .ring
            .consumer()
            .expect("the writer is the ring's only consumer");
        let mut closing = false;
        let mut deadline = None;
        let mut idle_rounds = 0u32;
        let mut synced_at_close = false;
        loop {
            if !closing && shared.signal.state() & STOP != 0 {
                // No position can be claimed after this returns: `ring.pushed()` is final, and
                // the drain below runs until the writer's position reaches it.
                shared.signal.close();
                closing = true;
                deadline = Instant::now().checked_add(self.shutdown_timeout);
            }
            let failing = self.retry_at.is_some();
            let mut took = 0;
            // Whether this round looked into the ring (a failing writer leaves it alone so it
            // fills and the overflow policy applies).
            let looked = !failing;
            if looked {
                took = self.take(&mut consumer);
                self.write();
                if self.sync_due(closing) {
                    self.sync();
                }
            } else if self.retry_at.is_some_and(|t| Instant::now() >= t) {
                self.retry_at = None;
                self.write();
                if self.retry_at.is_none() && self.sync_due(closing) {
                    self.sync();
                }
            }
            self.publish();

            let drained = looked && took < N && self.buf.is_empty();
            if closing && drained && self.retry_at.is_none() && self.caught_up() {
                // After close, no position can be claimed any more; once ours reaches the
                // producers' (a push claimed just before close is published a few instructions
                // later) everything accepted is written, and synced unless `Never`, which gets
                // its one sync now.
                if self.policy == SyncPolicy::Never && !synced_at_close {
                    self.sync();
                    synced_at_close = self.retry_at.is_none();
                }
                if self.policy != SyncPolicy::Never || synced_at_close {
                    return Ok(self.finish());
                }
            }
            if closing && deadline.is_some_and(|d| Instant::now() >= d) && self.retry_at.is_some() {
                return Err(self.give_up(&mut consumer));
            }
            if took > 0 {
                idle_rounds = 0;
                continue;
            }
            // Nothing taken: wait for the next reason to work.
            if let Some(t) = self.retry_at {
                let wait = t
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50));
                crate::sync::park(Some(wait));
                continue;
            }
            if closing {
                // Waiting only for a producer mid-publish, or a sync timer.
                crate::sync::relax(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
                continue;
            }
            if idle_rounds < IDLE_POLLS && !self.flush_wanted() {
                crate::sync::relax(idle_rounds);
                idle_rounds += 1;
                continue;
            }
            let timeout = match self.policy {
                SyncPolicy::Interval(d) if self.appended > 0 => {
                    Some(d.saturating_sub(self.last_sync.elapsed()))
                }
                _ => None,
            };
            let ring = &shared.ring;
            let done = self.done;
            let may_sleep = shared.signal.prepare_sleep(|| {
                ring.is_empty() && Signal::reached(done, shared.signal.flush_target())
            });
            if may_sleep {
                idle_rounds = 0;
                shared.signal.sleep(timeout);
            } else {
                crate::sync::relax(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
            }
        }
    }

    fn report(&self) -> Report {
        Report {
            stats: self.shared.stats(),
        }
    }

    /// The final counters. (The thread's wrapper in `spawn` then marks the writer exited.)
    fn finish(mut self) -> Report {
        self.publish();
        self.report()
    }

    /// The disk stayed broken past the shutdown timeout: take everything left, and hand back
    /// every record not confirmed written, encoded, in order.
    fn give_up(mut self, consumer: &mut ringwal_core::Consumer<'_, T, N>) -> ShutdownError {
        // After close: take everything, including a push claimed just before close and still
        // being published.
        let mut round = 0;
        loop {
            self.take(consumer);
            if self.caught_up() {
                break;
            }
            crate::sync::relax(round);
            round = round.saturating_add(1);
        }
        let error = self.shared.last_error();
        // Everything in `buf` is unconfirmed: appended-but-unsynced records too.
        let mut unwritten = Vec::new();
        let mut rest = &self.buf[..];
        while let Ok((frame, used)) = format::decode_frame(rest) {
            unwritten.push(Entry {
                seq: frame.seq,
                payload: frame.payload.to_vec(),
                dropped_before: frame.dropped_before,
            });
            rest = &rest[used..];
        }
        // Report them as neither persisted nor dropped: they are in the error.
        self.appended_seq = self.buf_first_seq;
        self.publish();
        ShutdownError {
            error,
            report: Box::new(self.report()),
            unwritten,
        }
    }
}
