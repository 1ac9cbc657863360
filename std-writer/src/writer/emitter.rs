//! [`Emitter`]: the emitting threads' handle. `emit` is the hot path; `flush` waits for the
//! writer.

use super::{Shared, Tx};
use crate::signal::UNHEALTHY;
use crate::{EmitError, FlushError, Overflow, Stats};
use ringwal_core::PushError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `Block` retries this many times (spinning, then yielding) before it parks.
pub(super) const BLOCK_SPINS: u32 = 96;

/// A handle for emitting events: cheap to clone, `Send + Sync`. Clones count refused emits on
/// their own counters (16 of them, round robin; more clones share), so emitters that are
/// refused rarely share a cache line.
pub struct Emitter<T> {
    pub(super) shared: Arc<Shared<T>>,
    stripe: usize,
}

impl<T> std::fmt::Debug for Emitter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("stripe", &self.stripe)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for Emitter<T> {
    fn clone(&self) -> Self {
        Emitter::new(Arc::clone(&self.shared))
    }
}

pub(super) enum Attempt<T> {
    Done(Result<(), EmitError<T>>),
    Retry(T),
}

impl<T> Emitter<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> Self {
        let stripe = shared.signal.stripe();
        Emitter { shared, stripe }
    }

    /// Hands `event` to the writer without waiting for it: one push into the ring and, only
    /// if the writer is parked, one wake (an unpark). No allocation, no lock, no syscall
    /// otherwise, and no atomic read-modify-write but the push's claim of a position; the
    /// writer encodes the event on its own thread.
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
        if sh.reject_when_unhealthy && sh.signal.state() & UNHEALTHY != 0 {
            return self.refuse(EmitError::Unhealthy(event));
        }
        match &sh.tx {
            // The claims are SeqCst (the `_checked` pushes): `Signal::pushed` relies on it.
            Tx::Plain(ring) => match ring.try_push_checked(event) {
                Ok(()) => {
                    sh.signal.pushed();
                    Ok(())
                }
                Err(PushError::Full(event)) => match sh.overflow {
                    Overflow::Block(timeout) => self.block(event, timeout),
                    _ => self.refuse(EmitError::Full(event)),
                },
                Err(PushError::Closed(event)) => self.refuse(EmitError::Closed(event)),
            },
            Tx::Evicting(ring) => match ring.force_push_checked(event) {
                Ok(evicted) => {
                    sh.signal.pushed();
                    drop(evicted);
                    Ok(())
                }
                Err(event) => self.refuse(EmitError::Closed(event)),
            },
            Tx::Bytes(_) => unreachable!("a typed writer's ring is a slot ring"),
        }
    }

    /// Counts a refused emit (so the log can record it) and returns its error: `Closed` if the
    /// ring turned out closed by then (see `signal`'s docs, "Refusals").
    #[cold]
    pub(super) fn refuse(&self, error: EmitError<T>) -> Result<(), EmitError<T>> {
        let sh = &*self.shared;
        let closed = sh.signal.count_refusal(self.stripe, || sh.tx.is_closed());
        Err(match error {
            EmitError::Closed(_) => error,
            _ if closed => EmitError::Closed(error.into_inner()),
            _ => error,
        })
    }

    /// One attempt of a blocked emit (`Overflow::Block`, a plain ring).
    pub(super) fn attempt(&self, event: T) -> Attempt<T> {
        let sh = &*self.shared;
        if sh.reject_when_unhealthy && sh.signal.state() & UNHEALTHY != 0 {
            return Attempt::Done(self.refuse(EmitError::Unhealthy(event)));
        }
        let Tx::Plain(ring) = &sh.tx else {
            unreachable!("Overflow::Block runs on a ring that does not evict")
        };
        match ring.try_push_checked(event) {
            Ok(()) => {
                sh.signal.pushed();
                Attempt::Done(Ok(()))
            }
            Err(PushError::Full(event)) => Attempt::Retry(event),
            Err(PushError::Closed(event)) => Attempt::Done(self.refuse(EmitError::Closed(event))),
        }
    }

    #[cold]
    fn block(&self, mut event: T, timeout: Option<Duration>) -> Result<(), EmitError<T>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        for round in 0..BLOCK_SPINS {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.refuse(EmitError::Full(event));
            }
            crate::sync::relax(round);
            match self.attempt(event) {
                Attempt::Done(r) => return r,
                Attempt::Retry(e) => event = e,
            }
        }
        let mut slot = Some(event);
        let signal = &self.shared.signal;
        let waited = signal.space.wait(deadline, || {
            let event = slot.take()?;
            match self.attempt(event) {
                Attempt::Done(r) => Some(r),
                Attempt::Retry(e) => {
                    slot = Some(e);
                    // Still full: a polling writer is woken to free space now (a parking one
                    // was woken by the push that filled the ring). Only this waiting emit
                    // makes the syscall.
                    signal.nudge();
                    None
                }
            }
        });
        match (waited, slot) {
            (Some(r), _) => r,
            (None, Some(event)) => self.refuse(EmitError::Full(event)),
            (None, None) => unreachable!("the event is in `slot` whenever the wait times out"),
        }
    }

    /// Waits until every event accepted (by any emitter) before this call is written and,
    /// unless the policy is [`SyncPolicy::Never`](crate::SyncPolicy::Never), fsynced. Events evicted by `DropOldest`
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
        self.shared.flush_until(None)
    }

    /// [`flush`](Self::flush), giving up with [`FlushError::Timeout`] after `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.shared.flush_until(Instant::now().checked_add(timeout))
    }

    /// Counters, now (a snapshot).
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}
