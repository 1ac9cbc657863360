//! The writer: its thread, its builder, and the emitter handles, one file each.
//!
//! - [`builder`]: [`Builder`], which validates the settings, opens the log and spawns the thread;
//! - [`emitter`]: [`Emitter`], the hot path (`emit`) and `flush`;
//! - [`byte_emitter`]: [`ByteEmitter`], the byte path's hot path (`emit`, `emit_with`);
//! - [`emit_async`]: `Emitter::emit_async` and the async flush of both emitters, their futures;
//! - [`byte_emit_async`]: `ByteEmitter::emit_async`, `emit_with_async` and `flush_async`;
//! - [`worker`]: the writer thread's loop (drain, append, sync, publish, shut down), the same
//!   for both paths;
//! - [`source`]: what the worker drains ([`Source`](source::Source): the slot ring, whose
//!   events it encodes, or the byte ring, whose records it copies);
//! - [`frames`]: the worker's batch buffer, where every record is framed;
//! - [`exit`]: how a shutdown waits for the writer thread's result with a deadline;
//! - [`guard`]: [`FlushGuard`], which flushes on drop;
//! - this file: what they share ([`Shared`]) and the [`Writer`] handle.

mod builder;
mod byte_emit_async;
mod byte_emitter;
mod emit_async;
mod emitter;
mod exit;
mod frames;
mod guard;
mod source;
mod worker;

pub use builder::Builder;
pub use byte_emit_async::ByteEmitFuture;
pub use byte_emitter::{ByteEmitter, Bytes};
pub use emit_async::{EmitFuture, FlushFuture};
pub use emitter::Emitter;
pub use guard::FlushGuard;

use crate::record::Record;
use crate::signal::{FlushOutcome, Signal, UNHEALTHY};
use crate::{FlushError, Overflow, Recovery, Report, ShutdownError, Stats};
use exit::Exit;
use ringwal_core::{ByteProducer, Evict, Producer, Receiver};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// Counters the writer thread publishes for [`Stats`].
#[derive(Debug, Default)]
pub(super) struct Published {
    pub(super) persisted: AtomicU64,
    pub(super) dropped: AtomicU64,
    /// Records the writer has taken out of the ring (a byte writer's `emitted`).
    pub(super) taken: AtomicU64,
    pub(super) bytes_written: AtomicU64,
    pub(super) syncs: AtomicU64,
    pub(super) write_errors: AtomicU64,
    pub(super) segments: AtomicU64,
    /// Last sequence number in the sink, plus one (0: none).
    pub(super) last_seq_plus_one: AtomicU64,
    /// Records of this run confirmed durable (synced; under `SyncPolicy::Never`: appended).
    pub(super) durable: AtomicU64,
    /// The sequence number after the last durable record (0: none).
    pub(super) durable_seq: AtomicU64,
}

/// The ring's producer side: for a `Writer<T>` an evicting ring under `Overflow::DropOldest`
/// (its pushes evict when it is full), a plain one otherwise (its consumer takes without
/// read-modify-writes); for a `Writer<Bytes>` (`T` = [`Bytes`]) always the byte ring. Its
/// positions count values in the slot rings, 8-byte granules in the byte ring; either way
/// they are what the writer's flush and close handshakes compare.
pub(super) enum Tx<T> {
    Plain(Producer<T>),
    Evicting(Producer<T, Evict>),
    Bytes(ByteProducer),
}

/// The ring's consumer side, held by the writer thread; the same mode as its [`Tx`].
pub(super) enum Rx<T> {
    Plain(Receiver<T>),
    Evicting(Receiver<T, Evict>),
}

impl<T> Tx<T> {
    /// How many positions emits have claimed (a snapshot).
    #[inline]
    pub(super) fn pushed(&self) -> usize {
        match self {
            Tx::Plain(p) => p.pushed(),
            Tx::Evicting(p) => p.pushed(),
            Tx::Bytes(p) => p.reserved(),
        }
    }

    /// [`pushed`](Self::pushed), read with `SeqCst` (the sleep handshake: `signal`'s docs).
    #[inline]
    pub(super) fn pushed_seqcst(&self) -> usize {
        match self {
            Tx::Plain(p) => p.pushed_seqcst(),
            Tx::Evicting(p) => p.pushed_seqcst(),
            Tx::Bytes(p) => p.reserved_seqcst(),
        }
    }

    /// Whether the ring is closed, read with `SeqCst` (the refusal handshake).
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        match self {
            Tx::Plain(p) => p.is_closed(),
            Tx::Evicting(p) => p.is_closed(),
            Tx::Bytes(p) => p.is_closed(),
        }
    }

    /// Closes the ring to emits; returns the final producers' position.
    fn close(&self) -> usize {
        match self {
            Tx::Plain(p) => p.close(),
            Tx::Evicting(p) => p.close(),
            Tx::Bytes(p) => p.close(),
        }
    }

    /// The byte ring (a `Writer<Bytes>`'s only kind of `Tx`).
    fn bytes(&self) -> &ByteProducer {
        match self {
            Tx::Bytes(p) => p,
            _ => unreachable!("a byte writer's ring is the byte ring"),
        }
    }
}

/// What emitters, the writer handle and the writer thread share.
pub(crate) struct Shared<T> {
    /// The ring's producer side (the writer thread holds its consumer side).
    pub(super) tx: Tx<T>,
    pub(super) signal: Signal,
    pub(super) overflow: Overflow,
    pub(super) reject_when_unhealthy: bool,
    pub(super) published: Published,
    pub(super) last_error: Mutex<Option<(io::ErrorKind, String)>>,
    pub(super) exit: Arc<Exit>,
}

impl<T> Shared<T> {
    /// Refuses every later emit (the ring's close), wakes waiters; returns the final producers'
    /// position (see `signal`'s docs, "Close").
    pub(super) fn close(&self) -> usize {
        self.signal.close(|| self.tx.close())
    }

    fn stats(&self) -> Stats {
        // Acquire pairs with the writer thread's Release `exited`: after it, the counters are
        // final and this sees them.
        let state = self.signal.state_acquire();
        // Relaxed: snapshots; exact once the writer has exited (ordered by the load above).
        let p = &self.published;
        let emitted = match self.tx {
            // Positions count granules: the writer counts the records it takes out (records
            // still in the ring are counted once it has taken them).
            Tx::Bytes(_) => p.taken.load(Ordering::Relaxed),
            _ => self.tx.pushed() as u64,
        };
        let persisted = p.persisted.load(Ordering::Relaxed);
        let dropped = p.dropped.load(Ordering::Relaxed);
        let last = p.last_seq_plus_one.load(Ordering::Relaxed);
        Stats {
            emitted,
            rejected: self.signal.refusals(),
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

    /// The error of a shutdown whose writer did not answer in time (stuck in a sink call):
    /// refuses emits from now on (the writer may never have seen the stop), releases flushers
    /// and blocked emitters, and reports only what the writer published as durable.
    fn stuck(&self) -> ShutdownError {
        self.close();
        // Unhealthy until the detached writer's sink call returns and a write succeeds:
        // `stats()` must agree with the report below.
        self.signal.set_unhealthy(true);
        self.signal.exited();
        let mut stats = self.stats();
        // Relaxed: snapshots of what the writer published; each only grows.
        let durable = self.published.durable.load(Ordering::Relaxed);
        stats.persisted = durable;
        stats.queued = stats.emitted.saturating_sub(durable + stats.dropped);
        stats.last_seq = self
            .published
            .durable_seq
            .load(Ordering::Relaxed)
            .checked_sub(1);
        stats.healthy = false;
        ShutdownError {
            error: io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the sink did not return within the shutdown timeout ({:?}): {} records \
                     not confirmed durable; the writer thread is left running, detached",
                    self.exit.timeout(),
                    stats.queued
                ),
            ),
            report: Box::new(Report { stats }),
            unwritten: Vec::new(),
        }
    }

    fn last_error(&self) -> io::Error {
        match &*self.last_error.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((kind, msg)) => io::Error::new(*kind, msg.clone()),
            None => io::Error::other("write failed"),
        }
    }

    /// Whether a flush up to `target`, begun when the writer's failure count was `failures`,
    /// is over, and what it returns then: the condition of `flush` (`flush_until`) and of
    /// `flush_async`.
    pub(super) fn flush_outcome(
        &self,
        target: usize,
        failures: u64,
    ) -> Option<Result<(), FlushError>> {
        Some(match self.signal.flush_outcome(target, failures)? {
            FlushOutcome::Done => Ok(()),
            FlushOutcome::Failed => Err(FlushError::Io(self.last_error())),
            FlushOutcome::Exited => Err(FlushError::Closed),
        })
    }

    /// `flush` and `flush_timeout` of both emitters: waits until the writer's done position
    /// reaches the producers' position now (or `deadline` passes).
    fn flush_until(&self, deadline: Option<Instant>) -> Result<(), FlushError> {
        let sig = &self.signal;
        let target = self.tx.pushed();
        if Signal::reached(sig.done(), target) {
            return Ok(());
        }
        let failures = sig.failures();
        sig.request_flush(target);
        let outcome = sig
            .flushed
            .wait(deadline, || self.flush_outcome(target, failures));
        outcome.unwrap_or(Err(FlushError::Timeout))
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
pub struct Writer<T> {
    pub(super) shared: Arc<Shared<T>>,
    pub(super) handle: Option<JoinHandle<()>>,
    pub(super) recovery: Recovery,
}

impl<T> std::fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.shared.stats())
            .finish_non_exhaustive()
    }
}

impl Writer<()> {
    /// A builder for a writer whose log lives in `dir` (created if missing).
    pub fn builder(dir: impl Into<PathBuf>) -> Builder {
        Builder::new(dir.into())
    }
}

impl<T: Record> Writer<T> {
    /// Another emitter handle (same as cloning one).
    pub fn emitter(&self) -> Emitter<T> {
        Emitter::new(Arc::clone(&self.shared))
    }
}

impl Writer<Bytes> {
    /// Another byte emitter handle (same as cloning one).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, _emitter) = ringwal::Writer::builder(dir.path()).start_bytes().unwrap();
    /// writer.emitter().emit(b"hello").unwrap();
    /// assert_eq!(writer.shutdown().unwrap().persisted, 1);
    /// ```
    pub fn emitter(&self) -> ByteEmitter {
        ByteEmitter::new(Arc::clone(&self.shared))
    }
}

impl<T> Writer<T> {
    /// Counters, now (a snapshot).
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// What opening the log found and repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Stops accepting events (later emits get [`EmitError::Closed`](crate::EmitError::Closed)), writes and syncs
    /// everything accepted, joins the thread, and returns the final counters: then
    /// `emitted == persisted + dropped` exactly.
    ///
    /// The builder's `shutdown_timeout` bounds the whole call. If the sink keeps failing past
    /// it (or is too slow to take everything by then), the error carries the records that
    /// could not be confirmed written, encoded, in order. If the sink is stuck inside a call
    /// (a hung disk: an `append` or `sync` that does not return), `shutdown` returns a
    /// [`TimedOut`](io::ErrorKind::TimedOut) error once that call has not returned for 100 ms
    /// past the timeout, and leaves the writer thread running, detached. (A writer that does
    /// not answer for another reason, say a record's `encode` that never returns, is given up
    /// on the same way, at most `max(shutdown_timeout, 1 s)` past the timeout.) The records it
    /// holds are then out of reach (`unwritten` is empty); the error's report counts as
    /// persisted only what the writer had confirmed durable, and the rest in `queued`.
    pub fn shutdown(mut self) -> Result<Report, ShutdownError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<Report, ShutdownError> {
        let Some(handle) = self.handle.take() else {
            return Ok(Report {
                stats: self.shared.stats(),
            });
        };
        let deadline = self.shared.exit.begin();
        self.shared.signal.request_stop();
        match self.shared.exit.wait(deadline) {
            Some(result) => {
                // The thread has handed over its result and is ending: this join is short.
                let _ = handle.join();
                result
            }
            // Dropping the handle detaches the thread.
            None => Err(self.shared.stuck()),
        }
    }
}

impl<T> Drop for Writer<T> {
    /// Shuts down as [`Writer::shutdown`] does (bounded by the same timeout), ignoring errors.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let deadline = self.shared.exit.begin();
            self.shared.signal.request_stop();
            match self.shared.exit.wait(deadline) {
                Some(_) => {
                    let _ = handle.join();
                }
                None => {
                    let _ = self.shared.stuck();
                }
            }
        }
    }
}
