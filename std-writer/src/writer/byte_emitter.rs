//! [`ByteEmitter`]: the emitting threads' handle of a byte writer (`Builder::start_bytes`).
//! A record is written in place into the byte ring: copied in (`emit`) or produced there by
//! the caller's closure (`emit_with`), then committed; the writer thread frames it straight
//! from the ring. The handshakes with the writer are the typed emitter's (`signal`'s module
//! docs): the reservation's claim is a `SeqCst` compare-and-swap on the ring's `tail`
//! (`ByteProducer::try_reserve_checked`), then after the commit one `SeqCst` load of the state
//! word (`Signal::pushed`); refusals are counted with `Signal::count_refusal` and the ring's
//! `SeqCst` `is_closed`; the close is the ring's.

use super::emitter::BLOCK_SPINS;
use super::Shared;
use crate::signal::UNHEALTHY;
use crate::{ByteEmitError, FlushError, Overflow, Stats};
use ringwal_core::{ByteProducer, Grant, ReserveError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The record type of a byte writer ([`Builder::start_bytes`](crate::Builder::start_bytes)):
/// a [`Writer<Bytes>`](crate::Writer) takes variable-length byte records from
/// [`ByteEmitter`]s, written in place into its ring. Never constructed: it only names the
/// kind of writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bytes {}

/// A handle for emitting variable-length byte records into a byte writer
/// ([`Builder::start_bytes`](crate::Builder::start_bytes)): cheap to clone, `Send + Sync`,
/// usable from a `static`.
///
/// A record is written straight into the writer's ring: [`emit`](Self::emit) copies a slice
/// in; [`emit_with`](Self::emit_with) hands your closure the record's bytes in place, to encode
/// into directly. Either way nothing allocates and, unless the writer must be woken, nothing
/// makes a system call. The writer thread frames each record from the ring into its write
/// buffer (one copy) and writes it in the same log format as a typed writer, so
/// [`Reader`](crate::Reader) and `ringwal cat` read it unchanged.
///
/// Policies, stats, flush and shutdown are the typed [`Emitter`](crate::Emitter)'s, but
/// [`Overflow::DropOldest`], which `start_bytes` refuses.
///
/// ```
/// use std::io::Write as _;
///
/// let dir = tempfile::tempdir().unwrap();
/// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start_bytes().unwrap();
/// emitter.emit(b"user 7 logged in").unwrap();
/// // Format in place: reserve the most the line can take, commit what was written.
/// emitter
///     .emit_with(64, |mut buf| {
///         let room = buf.len();
///         write!(buf, "user {} bought {} items", 7, 3).unwrap();
///         room - buf.len()
///     })
///     .unwrap();
/// emitter.flush().unwrap();
/// let lines: Vec<Vec<u8>> = ringwal::Reader::open(dir.path())
///     .unwrap()
///     .iter()
///     .map(|e| e.unwrap().payload)
///     .collect();
/// assert_eq!(lines, [&b"user 7 logged in"[..], b"user 7 bought 3 items"]);
/// # drop(writer);
/// ```
pub struct ByteEmitter {
    pub(super) shared: Arc<Shared<Bytes>>,
    /// The ring's producer side, this handle's own (no hop through `shared` on `emit`).
    tx: ByteProducer,
    stripe: usize,
}

impl std::fmt::Debug for ByteEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteEmitter")
            .field("stripe", &self.stripe)
            .field("max_record_len", &self.max_record_len())
            .finish_non_exhaustive()
    }
}

impl Clone for ByteEmitter {
    fn clone(&self) -> Self {
        ByteEmitter::new(Arc::clone(&self.shared))
    }
}

/// One try of a blocked reservation.
pub(super) enum Attempt<'a> {
    Done(Result<Grant<'a>, ByteEmitError>),
    Retry,
}

/// Counts a refusal if the emitter's closure panics (or returns a length longer than the
/// grant): the grant is then discarded, and the call is counted once, as rejected.
pub(super) struct RefuseOnUnwind<'a>(pub(super) &'a ByteEmitter);

impl Drop for RefuseOnUnwind<'_> {
    fn drop(&mut self) {
        // Only reached while unwinding: a completed call forgets the guard.
        let _ = self.0.refuse(ByteEmitError::Closed);
        // The grant is discarded next (it is dropped after this guard), and its space comes
        // back only when the writer steps over it: wake a parked writer, as a commit does.
        // Otherwise a ring filled by discarded grants stays full while the writer sleeps, and
        // every later emit is refused (`Reject`) or waits for ever (`Block`: under
        // `Idle::Park` a waiting emit relies on the filling emit's wake). The same handshake
        // as after a commit (`signal`'s module docs): our claim was the reservation's SeqCst
        // compare-and-swap, and `pushed` loads the state with SeqCst after it, so either we
        // see SLEEPING and wake the writer, or the writer's SeqCst load of `tail` sees our
        // claim and it does not park; it treats the claim, not yet discarded, as work to come
        // (it looks again until the discard is visible, then frees the space).
        self.0.shared.signal.pushed();
    }
}

impl ByteEmitter {
    pub(super) fn new(shared: Arc<Shared<Bytes>>) -> Self {
        let stripe = shared.signal.stripe();
        let tx = shared.tx.bytes().clone();
        ByteEmitter { shared, tx, stripe }
    }

    /// The longest record this writer's ring takes: half its
    /// [`capacity`](crate::Builder::capacity), less 8 bytes. A longer one is refused with
    /// [`ByteEmitError::TooLarge`].
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (_writer, emitter) = ringwal::Writer::builder(dir.path())
    ///     .capacity(1 << 16)
    ///     .start_bytes()
    ///     .unwrap();
    /// assert_eq!(emitter.max_record_len(), (1 << 15) - 8);
    /// ```
    pub fn max_record_len(&self) -> usize {
        self.tx.max_record_len()
    }

    /// Copies `record` into the ring as one record, without waiting for the writer: one
    /// reservation (a compare-and-swap), the copy, a commit (a store) and, only if the writer
    /// is parked, one wake (an unpark). No allocation, no lock, no syscall otherwise.
    ///
    /// When the ring is full, the builder's [`Overflow`] decides: `Reject` returns
    /// [`ByteEmitError::Full`]; `Block` waits for space (spinning briefly, then parked) up to
    /// its timeout. After shutdown began: [`ByteEmitError::Closed`]; with
    /// `reject_when_unhealthy`, [`ByteEmitError::Unhealthy`] while the disk is failing; a
    /// record longer than [`max_record_len`](Self::max_record_len):
    /// [`ByteEmitError::TooLarge`]. Every call counts once, in `emitted` (accepted) or
    /// `rejected`, and a refusal is recorded in the log as a gap.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start_bytes().unwrap();
    /// if let Err(e) = emitter.emit(b"order 17 filled") {
    ///     eprintln!("not logged: {e}");
    /// }
    /// # drop(writer);
    /// ```
    #[inline]
    pub fn emit(&self, record: &[u8]) -> Result<(), ByteEmitError> {
        let mut grant = self.reserve(record.len())?;
        grant.copy_from_slice(record);
        grant.commit();
        // After the commit: a writer woken here finds the record published.
        self.shared.signal.pushed();
        Ok(())
    }

    /// Writes a record of at most `len` bytes in place: `write` gets the record's bytes in
    /// the ring (`len` of them, zeroed), writes the record there and returns how many bytes
    /// it used; that prefix is committed (the rest of the room goes back to the ring when the
    /// writer passes it). For encoding or formatting straight into the ring, without a
    /// buffer of your own: reserve the most the record can take.
    ///
    /// Policies and errors are [`emit`](Self::emit)'s; on any error `write` is not called.
    /// `write` runs between the reservation and the commit, so the writer waits for it
    /// there (records reserved after it wait behind it): keep it short, and do not emit,
    /// flush or shut down from inside it. If `write` panics, or returns more than `len`
    /// (which then panics), the record is discarded and the call counts as rejected.
    ///
    /// ```
    /// use std::io::Write as _;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start_bytes().unwrap();
    /// for id in [7u32, 1234567] {
    ///     emitter
    ///         .emit_with(40, |mut buf| {
    ///             let room = buf.len();
    ///             // A line that does not fit is cut (`write!` stops at the end of `buf`).
    ///             let _ = write!(buf, "request {id} served in {} us", 17);
    ///             room - buf.len()
    ///         })
    ///         .unwrap();
    /// }
    /// let report = writer.shutdown().unwrap();
    /// assert_eq!(report.persisted, 2);
    /// let first = ringwal::Reader::open(dir.path()).unwrap().iter().next().unwrap().unwrap();
    /// assert_eq!(first.payload, b"request 7 served in 17 us");
    /// ```
    #[inline]
    pub fn emit_with<F>(&self, len: usize, write: F) -> Result<(), ByteEmitError>
    where
        F: FnOnce(&mut [u8]) -> usize,
    {
        let mut grant = self.reserve(len)?;
        let guard = RefuseOnUnwind(self);
        let used = write(&mut grant);
        // A closure that claims more than it was given is a bug in it: panic here, with
        // the grant still held, so unwinding counts the refusal (the guard, dropped first)
        // before the grant is discarded, as for a panic inside the closure. (Counted after
        // the discard, the writer could step over the discarded space, let a flush through
        // and take a later record of this thread before it saw the count, and the log would
        // put this refusal after that record.)
        assert!(
            used <= grant.len(),
            "emit_with: the closure returned {used}, more than the {} bytes it was given",
            grant.len()
        );
        grant.commit_len(used);
        std::mem::forget(guard);
        self.shared.signal.pushed();
        Ok(())
    }

    /// Reserves room for a record of `len` bytes under the builder's policies.
    #[inline]
    fn reserve(&self, len: usize) -> Result<Grant<'_>, ByteEmitError> {
        let sh = &*self.shared;
        if sh.reject_when_unhealthy && sh.signal.state() & UNHEALTHY != 0 {
            return Err(self.refuse(ByteEmitError::Unhealthy));
        }
        // The claim is SeqCst (`try_reserve_checked`): `Signal::pushed` relies on it.
        match self.tx.try_reserve_checked(len) {
            Ok(grant) => Ok(grant),
            Err(ReserveError::Full) => match sh.overflow {
                Overflow::Block(timeout) => self.block(len, timeout),
                _ => Err(self.refuse(ByteEmitError::Full)),
            },
            Err(e) => Err(self.refuse(e.into())),
        }
    }

    /// Counts a refused emit (so the log can record it) and returns its error: `Closed` if the
    /// ring turned out closed by then (see `signal`'s docs, "Refusals").
    #[cold]
    pub(super) fn refuse(&self, error: ByteEmitError) -> ByteEmitError {
        let closed = self
            .shared
            .signal
            .count_refusal(self.stripe, || self.tx.is_closed());
        if closed {
            ByteEmitError::Closed
        } else {
            error
        }
    }

    /// One try of a blocked reservation (`Overflow::Block`).
    pub(super) fn attempt(&self, len: usize) -> Attempt<'_> {
        let sh = &*self.shared;
        if sh.reject_when_unhealthy && sh.signal.state() & UNHEALTHY != 0 {
            return Attempt::Done(Err(self.refuse(ByteEmitError::Unhealthy)));
        }
        match self.tx.try_reserve_checked(len) {
            Ok(grant) => Attempt::Done(Ok(grant)),
            Err(ReserveError::Full) => Attempt::Retry,
            Err(e) => Attempt::Done(Err(self.refuse(e.into()))),
        }
    }

    #[cold]
    fn block(&self, len: usize, timeout: Option<Duration>) -> Result<Grant<'_>, ByteEmitError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        for round in 0..BLOCK_SPINS {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.refuse(ByteEmitError::Full));
            }
            crate::sync::relax(round);
            if let Attempt::Done(r) = self.attempt(len) {
                return r;
            }
        }
        let signal = &self.shared.signal;
        let waited = signal.space.wait(deadline, || match self.attempt(len) {
            Attempt::Done(r) => Some(r),
            Attempt::Retry => {
                // Still full: a polling writer is woken to free space now (a parking one was
                // woken by the emit that filled the ring). Only this waiting emit makes the
                // syscall.
                signal.nudge();
                None
            }
        });
        waited.unwrap_or_else(|| Err(self.refuse(ByteEmitError::Full)))
    }

    /// Waits until every record accepted (by any emitter) before this call is written and,
    /// unless the policy is [`SyncPolicy::Never`](crate::SyncPolicy::Never), fsynced.
    ///
    /// Errs as [`Emitter::flush`](crate::Emitter::flush) does. A record still being
    /// written by an `emit_with` closure (on another thread) when this is called is waited
    /// for too.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start_bytes().unwrap();
    /// emitter.emit(b"a").unwrap();
    /// emitter.flush().unwrap();
    /// assert_eq!(ringwal::Reader::open(dir.path()).unwrap().iter().count(), 1);
    /// # drop(writer);
    /// ```
    pub fn flush(&self) -> Result<(), FlushError> {
        self.shared.flush_until(None)
    }

    /// [`flush`](Self::flush), giving up with [`FlushError::Timeout`] after `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.shared.flush_until(Instant::now().checked_add(timeout))
    }

    /// Counters, now (a snapshot). A byte writer's positions count bytes, not records, so its
    /// `emitted` counts the records the writer has taken from the ring: a record still in the
    /// ring shows in neither `emitted` nor `queued` until the writer takes it (within
    /// microseconds while it keeps up; [`flush`](Self::flush) waits for it). After shutdown
    /// the counters are exact, as a typed writer's.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}

impl From<ReserveError> for ByteEmitError {
    fn from(e: ReserveError) -> Self {
        match e {
            ReserveError::Full => ByteEmitError::Full,
            ReserveError::Closed => ByteEmitError::Closed,
            ReserveError::TooLarge { len, max } => ByteEmitError::TooLarge { len, max },
        }
    }
}
