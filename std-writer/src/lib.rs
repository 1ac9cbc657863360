//! Getting events out of latency-critical code and onto disk without making the emitting
//! thread wait.
//!
//! Emitters push events into a lock-free ring ([`ringwal_core::Ring`]) and return at once.
//! One writer thread drains the ring, encodes the events ([`Record`]), and appends them in
//! batches to a crash-safe, segmented, CRC-framed log ([`SegmentLog`], or your own [`Sink`]),
//! with one fsync per batch (group commit). A [`Reader`] reads the log back, also while it is
//! being written.
//!
//! ```
//! use ringwal::{Overflow, Reader, SyncPolicy, Writer};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (writer, emitter) = Writer::builder(dir.path())
//!     .overflow(Overflow::Reject)        // a full ring hands the event back
//!     .sync(SyncPolicy::EveryBatch)      // one fsync per batch
//!     .start::<String>()?;
//!
//! emitter.emit("user 7 logged in".to_string()).unwrap();
//! emitter.emit("user 7 bought 3 items".to_string()).unwrap();
//! emitter.flush()?;                      // both written and fsynced
//!
//! for entry in Reader::open(dir.path())?.iter() {
//!     let entry = entry?;
//!     println!("{} {}", entry.seq, String::from_utf8_lossy(&entry.payload));
//! }
//!
//! let report = writer.shutdown()?;       // drains, syncs, joins
//! assert_eq!(report.emitted, report.persisted + report.dropped);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Variable-length records, written in place
//!
//! [`Builder::start_bytes`] starts a writer whose emitters ([`ByteEmitter`]) write byte records
//! of any length straight into a byte ring ([`ringwal_core::ByteRing`]'s heap form): copied in
//! with [`emit`](ByteEmitter::emit), or formatted or encoded in place with
//! [`emit_with`](ByteEmitter::emit_with). Nothing allocates on either thread; the writer frames
//! each record from the ring into its write buffer (one copy, the CRC computed over it) and
//! writes the same log a typed writer does.
//!
//! ```
//! use std::io::Write as _;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (writer, emitter) = ringwal::Writer::builder(dir.path())
//!     .capacity(1 << 20) // the ring, in bytes
//!     .start_bytes()?;
//! emitter.emit_with(128, |mut buf| {
//!     let room = buf.len();
//!     write!(buf, "user {} logged in from {}", 7, "10.0.0.7").unwrap();
//!     room - buf.len() // the bytes to commit
//! })?;
//! let report = writer.shutdown()?;
//! assert_eq!(report.persisted, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Async
//!
//! No runtime dependency: std `Future`s and `Waker`s. [`Emitter::emit_async`] and
//! [`ByteEmitter::emit_async`] / [`emit_with_async`](ByteEmitter::emit_with_async) make
//! `emit`'s push at their first poll; only a full ring under [`Overflow::Block`] makes the task
//! wait (registered inside its future, woken by the writer: no thread parked, no allocation).
//! [`Emitter::flush_async`] waits for `flush`'s guarantee. [`Reader::follow`] gives a live
//! [`Follow`] of the log, woken by the appends of a writer in this process:
//! [`next_async`](Follow::next_async), or with the feature `stream` a `futures_core::Stream`.
//!
//! ```
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let (writer, emitter) = ringwal::Writer::builder(dir.path())
//!     .overflow(ringwal::Overflow::Block(None))
//!     .start::<&'static str>()
//!     .unwrap();
//! let mut follow = ringwal::Reader::open(dir.path()).unwrap().follow();
//! emitter.emit_async("user 7 logged in").await.unwrap();
//! let entry = follow.next_async().await.unwrap().unwrap();
//! assert_eq!(entry.payload, b"user 7 logged in");
//! # drop(writer);
//! # });
//! ```
//!
//! # Guarantees
//!
//! - **The emit path** is one ring push and, only when the writer is parked, one unpark:
//!   no allocation, no lock, no syscall otherwise (a test counts allocations).
//! - **Nothing is lost silently.** Every `emit` is counted once, in `emitted` (accepted) or
//!   `rejected`, and after shutdown `emitted == persisted + dropped` exactly. Events evicted by
//!   [`Overflow::DropOldest`] show in the log itself, as the next record's
//!   [`Entry::dropped_before`].
//! - **Crash safety.** A record is durable once a [`flush`](Emitter::flush) that covers it has
//!   returned (under [`SyncPolicy::EveryBatch`] and [`SyncPolicy::Interval`]), also across a
//!   power loss. Opening a directory recovers it: by default ([`RecoveryMode::PointInTime`])
//!   the newest segment is cut at its first invalid frame — a torn tail, or lost and reordered
//!   writes — which no acknowledged record follows, and the cut is reported ([`Recovery`]);
//!   [`RecoveryMode::Strict`] refuses damage that valid records follow instead. Damage a crash
//!   cannot cause (a bad header, a sealed segment) is an error naming the file and offset.
//!   `tests/power_loss.rs` checks every crash state a POSIX file system allows (a bounded
//!   enumeration). Nothing on disk makes the library panic.
//! - **A failing disk** (ENOSPC, EIO) loses nothing accepted: the writer keeps the batch and
//!   retries with capped exponential backoff (1 ms doubling to 250 ms), `healthy` turns false,
//!   the ring fills and the overflow policy applies. A failed fsync is never retried as if
//!   nothing happened: the log rolls back to its last successful sync and the writer appends
//!   the unconfirmed records again (same sequence numbers, none twice).
//!
//! # How the writer sleeps
//!
//! When the ring is empty the writer parks. Emitters see that in the same state word they
//! check for shutdown, so waking it costs them nothing while it is awake. The handshake (and
//! the one that wakes `Block` emitters when space frees) is argued in the `signal` module's
//! source and checked under loom in `loom-tests/`.

#![warn(missing_docs)]

#[cfg(not(loom))]
pub mod checkpoint;
#[cfg(not(loom))]
pub mod format;
#[cfg(not(loom))]
mod log;
#[cfg(not(loom))]
mod reader;
#[cfg(not(loom))]
mod record;
#[doc(hidden)]
pub mod signal;
#[cfg(not(loom))]
mod sink;
mod sync;
#[cfg(not(loom))]
#[doc(hidden)]
pub mod vfs;
#[cfg(not(loom))]
mod writer;

#[cfg(not(loom))]
pub use crate::{
    log::{LogOptions, Preamble, Recovery, RecoveryMode, SegmentLog, SegmentPreamble},
    reader::{Entry, Follow, Gap, Iter, Reader, SegmentInfo, DEFAULT_POLL_INTERVAL},
    record::Record,
    sink::{Batch, Sink},
    writer::{
        Builder, ByteEmitFuture, ByteEmitter, Bytes, EmitFuture, Emitter, FlushFuture, FlushGuard,
        Writer,
    },
};

#[cfg(not(loom))]
pub use ringwal_core;

use std::fmt;
use std::io;
use std::time::Duration;

/// What [`Emitter::emit`] does when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Hand the event back in [`EmitError::Full`]. The emitter never waits. The default.
    #[default]
    Reject,
    /// Evict the oldest queued event to make room; never reject. The loss is counted
    /// (`dropped`) and recorded in the log as the next record's `dropped_before`.
    DropOldest,
    /// Wait for space: spin briefly, then park until the writer frees a slot, up to the
    /// timeout (`None`: no limit), then return [`EmitError::Full`]. A timeout longer than a
    /// year is refused by `start` ([`io::ErrorKind::InvalidInput`]): use `None`.
    ///
    /// ```
    /// use ringwal::{Overflow, Writer};
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let err = Writer::builder(dir.path())
    ///     .overflow(Overflow::Block(Some(Duration::MAX)))
    ///     .start::<String>()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    Block(Option<Duration>),
}

/// What the writer thread does while the ring is empty, and so what an emit costs after a
/// quiet period. Set with [`Builder::idle`].
///
/// | strategy | emit (not waiting for space) | writer CPU while idle | a record reaches the sink |
/// |---|---|---|---|
/// | `Park` (default) | one ring push; one futex wake if the writer slept | none (parked) | at once |
/// | `Poll(d)` | one ring push, never a syscall | one wake per `d` (see below) | within about `d` |
/// | `Spin` | one ring push, never a syscall | one core, all the time | at once |
///
/// `flush`, shutdown and a `Block` emit that must wait for space wake the writer explicitly
/// under every strategy, so they are served promptly even under a long `Poll`.
///
/// ```
/// use ringwal::{Idle, Writer};
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// // Emits never make a syscall; a record is on disk within about 1 ms (or at `flush`).
/// let (writer, emitter) = Writer::builder(dir.path())
///     .idle(Idle::Poll(Duration::from_millis(1)))
///     .start::<&'static str>()
///     .unwrap();
/// emitter.emit("order 17 filled").unwrap();
/// emitter.flush().unwrap(); // wakes the polling writer; does not wait for its timer
/// writer.shutdown().unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idle {
    /// Park when idle; the first emit after a quiet period unparks the writer (a futex wake,
    /// a few microseconds on that emit). The writer first polls the ring briefly (tens of
    /// microseconds) before it parks, so a steady stream never pays the wake. The default.
    #[default]
    Park,
    /// Sleep on a timer and never be woken by an emit: `emit` makes no syscall, ever (but a
    /// `Block` emit that must wait for space). Adaptive: after a wake that found the ring
    /// filling (more than an eighth of its capacity) the next sleep is halved (down to
    /// 50 µs), after one that found little (under a thirty-second) it is doubled, up to this
    /// `Duration`; a quiet writer so wakes once per `Duration`, a busy one often enough that
    /// the ring does not fill. Latency to the sink: a record is written within about the
    /// `Duration` (plus the timer's slack, ~50 µs on Linux, and the write itself); `flush`
    /// does not wait for the timer. A burst that starts while the writer sleeps its full
    /// `Duration` must fit in the ring until it wakes (nothing wakes it sooner): size the ring
    /// for at least *peak rate × `Duration`* (at one event per µs and `Poll(10 ms)`, 10,000
    /// slots: `capacity(1 << 14)`), or the overflow policy applies to the rest. Between 1 µs
    /// and one hour; else `start` fails with [`io::ErrorKind::InvalidInput`].
    Poll(Duration),
    /// Busy-poll (spin, yielding now and then), never sleep: for a writer with a core of its
    /// own. Lowest latency to disk, no syscall on `emit`, one core's worth of CPU.
    Spin,
}

/// When the writer fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// After every batch: each batch is one write and one fsync (group commit). The default.
    #[default]
    EveryBatch,
    /// At most this long after a batch is written (and whenever a `flush` asks).
    Interval(Duration),
    /// Never during the run (the OS writes back when it likes); `flush` waits only for the
    /// write. Shutdown syncs once, every segment. What survives a power loss (not a process
    /// crash: then everything written survives) is what the last shutdown synced, and of what
    /// was written since, a prefix: recovery ([`RecoveryMode::PointInTime`]) reads every
    /// segment, cuts the log at the first damaged one (torn, holes of lost writes, or ending
    /// short of the next) and removes the segments after it. The writer opens its log as not
    /// durable under this policy; a log written under it and not shut down cleanly should be
    /// opened so too (a durable open checks only the newest segment frame by frame).
    Never,
}

/// Which old segments to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retain {
    /// Keep every segment. The default.
    #[default]
    All,
    /// Delete the oldest segments while all of them together exceed this many bytes. A hard
    /// bound: it deletes segments a shipper has not shipped yet, too (the shipper then
    /// reports the records lost and ships a gap message in their place).
    Bytes(u64),
    /// Keep at most this many segments (oldest deleted first), but never one holding a
    /// record a shipper has not shipped yet (at or after the lowest
    /// [`checkpoint`] in the directory): while a shipper lags, more
    /// segments stay.
    Segments(usize),
}

/// Why [`Emitter::emit`] did not accept an event. Each variant hands the event back.
pub enum EmitError<T> {
    /// The ring is full (`Reject`, or `Block` past its timeout).
    Full(T),
    /// The writer is shutting down or gone.
    Closed(T),
    /// The disk is failing and the writer was built with `reject_when_unhealthy(true)`.
    Unhealthy(T),
}

impl<T> EmitError<T> {
    /// The event that was not accepted.
    ///
    /// ```
    /// let e = ringwal::EmitError::Full(5);
    /// assert_eq!(e.into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            EmitError::Full(t) | EmitError::Closed(t) | EmitError::Unhealthy(t) => t,
        }
    }
}

impl<T> fmt::Debug for EmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Full(_) => f.write_str("Full(..)"),
            EmitError::Closed(_) => f.write_str("Closed(..)"),
            EmitError::Unhealthy(_) => f.write_str("Unhealthy(..)"),
        }
    }
}

impl<T> fmt::Display for EmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmitError::Full(_) => "ring is full",
            EmitError::Closed(_) => "writer is shut down",
            EmitError::Unhealthy(_) => "writer is unhealthy (the disk is failing)",
        })
    }
}

impl<T> std::error::Error for EmitError<T> {}

/// Why [`ByteEmitter::emit`] (or `emit_with`) did not accept a record. The record is the
/// caller's own slice (or was never written), so nothing is handed back.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let (writer, emitter) = ringwal::Writer::builder(dir.path())
///     .capacity(1024)
///     .start_bytes()
///     .unwrap();
/// let e = emitter.emit(&[0; 600]).unwrap_err();
/// assert_eq!(e, ringwal::ByteEmitError::TooLarge { len: 600, max: 504 });
/// assert_eq!(e.to_string(), "record of 600 bytes is longer than the ring's maximum of 504");
/// writer.shutdown().unwrap();
/// assert_eq!(emitter.emit(b"late"), Err(ringwal::ByteEmitError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteEmitError {
    /// The ring is full (`Reject`, or `Block` past its timeout).
    Full,
    /// The writer is shutting down or gone.
    Closed,
    /// The disk is failing and the writer was built with `reject_when_unhealthy(true)`.
    Unhealthy,
    /// The record is longer than the ring can hold ([`ByteEmitter::max_record_len`]): no
    /// retry will succeed.
    TooLarge {
        /// The length asked for.
        len: usize,
        /// The longest record the ring takes.
        max: usize,
    },
}

impl fmt::Display for ByteEmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByteEmitError::Full => f.write_str("ring is full"),
            ByteEmitError::Closed => f.write_str("writer is shut down"),
            ByteEmitError::Unhealthy => f.write_str("writer is unhealthy (the disk is failing)"),
            ByteEmitError::TooLarge { len, max } => write!(
                f,
                "record of {len} bytes is longer than the ring's maximum of {max}"
            ),
        }
    }
}

impl std::error::Error for ByteEmitError {}

/// Why a flush did not confirm the records it waited for.
#[derive(Debug)]
pub enum FlushError {
    /// The timeout passed first.
    Timeout,
    /// The writer stopped without writing them (its shutdown failed).
    Closed,
    /// A write or sync failed while waiting. The writer keeps retrying, so the records may
    /// still be written later, but they are not confirmed durable now.
    Io(io::Error),
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushError::Timeout => f.write_str("flush timed out"),
            FlushError::Closed => f.write_str("writer stopped before the flush completed"),
            FlushError::Io(e) => write!(f, "flush failed: {e}"),
        }
    }
}

impl std::error::Error for FlushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FlushError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Counters of a writer: a snapshot from [`Emitter::stats`] or [`Writer::stats`].
///
/// At any time `emitted == persisted + dropped + queued`; after shutdown `queued == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Events accepted by `emit`. For a byte writer ([`Builder::start_bytes`]), whose ring
    /// counts bytes, not records: the records the writer has taken out of the ring (a record
    /// still in the ring is counted once taken; exact after a `flush` that covers it, and
    /// after shutdown).
    pub emitted: u64,
    /// `emit` calls that returned an error (full, closed, unhealthy).
    pub rejected: u64,
    /// Records appended to the sink (durable once the next sync succeeds, unless the policy
    /// is `Never`).
    pub persisted: u64,
    /// Accepted events that will never be written: evicted by `DropOldest`, or whose encoding
    /// panicked or exceeded [`format::MAX_PAYLOAD`]. Evictions are counted when the writer
    /// steps over them, so while it is held up (a failing disk) they show in `queued`.
    pub dropped: u64,
    /// Accepted events not yet persisted nor dropped (in the ring or the writer's batch).
    pub queued: u64,
    /// Bytes appended to the sink (frames, headers included; segment headers not).
    pub bytes_written: u64,
    /// Successful syncs.
    pub syncs: u64,
    /// Failed appends and syncs.
    pub write_errors: u64,
    /// Segments in the log.
    pub segments: u64,
    /// The last sequence number in the log, if any record is.
    pub last_seq: Option<u64>,
    /// False while writes or syncs are failing, and for good once the writer thread has died
    /// (a panic in the sink: every emit is then refused as `Closed`).
    pub healthy: bool,
}

/// The final counters [`Writer::shutdown`] returns (a [`Stats`] with `queued == 0` after a
/// clean shutdown); its fields are readable directly (`report.persisted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// The counters.
    pub stats: Stats,
}

impl std::ops::Deref for Report {
    type Target = Stats;
    fn deref(&self) -> &Stats {
        &self.stats
    }
}

/// A shutdown that could not persist everything by its timeout (or whose writer thread
/// panicked).
#[derive(Debug)]
pub struct ShutdownError {
    /// The last write or sync error; [`TimedOut`](io::ErrorKind::TimedOut) when the sink was
    /// merely too slow, or stuck inside a call (then the writer thread is left detached).
    pub error: io::Error,
    /// The counters at the end: `emitted == persisted + dropped + queued`, and `queued` is
    /// what was not confirmed durable (`unwritten.len()`, unless the writer was stuck in the
    /// sink: then `persisted` counts only what it had confirmed durable, and `unwritten` is
    /// empty).
    pub report: Box<Report>,
    /// The records not confirmed written, encoded, in order, with the sequence numbers the
    /// writer gave them. Some may already be in the log (appended, but their sync failed).
    /// Empty if the writer was stuck in a sink call: the records are out of reach.
    pub unwritten: Vec<Entry>,
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `unwritten` is empty when the writer was stuck in the sink: `queued` counts them.
        let lost = self.report.queued.max(self.unwritten.len() as u64);
        write!(
            f,
            "shutdown could not persist {lost} records: {}",
            self.error
        )
    }
}

impl std::error::Error for ShutdownError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The README's examples (they use both crates), compiled and run as doctests.
#[cfg(all(doctest, not(loom)))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[cfg(loom)]
#[doc(hidden)]
/// Under loom only the handshakes compile; `Entry` is needed by nothing there.
#[derive(Debug)]
pub struct Entry;
