//! [`Emitter::emit_async`] and [`Emitter::flush_async`]: `emit` and `flush` for async code. The
//! fast path is `emit`'s; a wait (for space under `Overflow::Block`, for the writer in a flush)
//! registers the task in the same `Waiters` a blocked thread waits in (`signal::wake`), so the
//! writer's notifications wake tasks and threads alike, and no thread is ever parked.
//!
//! Runtime-agnostic: `std::future::Future` and `std::task::Waker` only.

use super::emitter::Attempt;
use super::{Emitter, Shared};
use crate::signal::{Signal, Waiter, Waiters};
use crate::{EmitError, FlushError, Overflow};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

impl<T> Emitter<T> {
    /// [`emit`](Self::emit) for async code: hands `event` to the writer, and when the ring is
    /// full under [`Overflow::Block`], waits for space without blocking the thread — the task
    /// is woken when the writer frees space (or shuts down).
    ///
    /// The first poll is `emit`'s fast path: one push into the ring (and, only if the writer
    /// is parked, one wake); no allocation, no lock, no other atomic read-modify-write. Only a
    /// `Block` emit that finds the ring full waits: it registers the task's `Waker` in a node
    /// inside this future (no allocation: see the `signal` module's source) and, under
    /// [`Idle::Poll`](crate::Idle::Poll), wakes the writer so it frees space at once. Under
    /// `Reject` and `DropOldest` the first poll completes, exactly as `emit`.
    ///
    /// **No timeout of its own**: `Overflow::Block`'s timeout bounds the blocking `emit`; this
    /// future waits until space frees or the writer shuts down. Bound it with your runtime's
    /// timeout (`tokio::time::timeout`), or [`cancel`](EmitFuture::cancel) it to get the event
    /// back.
    ///
    /// **Counting**: every future counts once, as `emit` does — in `emitted` if the event was
    /// accepted, otherwise in `rejected` (and in the log, as a gap): refused with an error,
    /// cancelled, or dropped before it completed (a timeout, a `select!` that took another
    /// branch, a future never polled). A dropped future drops its event; nothing it hands back
    /// was accepted, and nothing accepted is handed back.
    ///
    /// Like every future it does nothing until polled; the writer's order between emitters is
    /// the order of their pushes, so an emit waiting for space may be overtaken by a later
    /// one (from this task's point of view it is not: the task waits).
    ///
    /// ```
    /// use ringwal::{Overflow, Writer};
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = Writer::builder(dir.path())
    ///     .overflow(Overflow::Block(None)) // a full ring makes the task wait, not the thread
    ///     .capacity(4)
    ///     .start::<String>()
    ///     .unwrap();
    /// for i in 0..100 {
    ///     emitter.emit_async(format!("event {i}")).await.unwrap();
    /// }
    /// emitter.flush_async().await.unwrap();
    /// assert_eq!(writer.shutdown().unwrap().persisted, 100);
    /// # });
    /// ```
    pub fn emit_async(&self, event: T) -> EmitFuture<'_, T> {
        EmitFuture {
            emitter: self,
            event: Some(event),
            tried: false,
            waiter: Waiter::new(&self.shared.signal.space),
        }
    }

    /// [`flush`](Self::flush) for async code: completes once every event accepted (by any
    /// emitter) before its first poll is written and, unless the policy is
    /// [`SyncPolicy::Never`](crate::SyncPolicy::Never), fsynced. The task waits; the thread
    /// does not.
    ///
    /// Errs as `flush` does: [`FlushError::Io`] if a write or sync fails while it waits,
    /// [`FlushError::Closed`] if the writer stopped without writing them. It has no timeout of
    /// its own (never [`FlushError::Timeout`]): bound it with your runtime's. Dropping it
    /// cancels nothing but the wait.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start::<&'static str>().unwrap();
    /// emitter.emit_async("a").await.unwrap();
    /// emitter.flush_async().await.unwrap(); // written and fsynced
    /// assert_eq!(ringwal::Reader::open(dir.path()).unwrap().iter().count(), 1);
    /// # drop(writer);
    /// # });
    /// ```
    pub fn flush_async(&self) -> FlushFuture<'_, T> {
        FlushFuture::new(&self.shared)
    }
}

/// The future of [`Emitter::emit_async`]: `Output = Result<(), EmitError<T>>`.
///
/// Not `Unpin` (a waiting task's registration lives inside it): `.await` pins it for you; to
/// poll it by hand or keep it across `select!` rounds, pin it (`std::pin::pin!`). Dropping it
/// before it completes counts the event as rejected and drops it; [`cancel`](Self::cancel)
/// does the same but hands the event back.
#[must_use = "futures do nothing unless polled; dropping this one counts its event as rejected"]
pub struct EmitFuture<'a, T> {
    emitter: &'a Emitter<T>,
    /// The event, until it is accepted or handed back (then `None`: the future is done).
    event: Option<T>,
    /// Whether the first try (`emit`'s push) was made.
    tried: bool,
    /// The task's registration on the writer's `space` list (structurally pinned).
    waiter: Waiter<&'a Waiters>,
}

impl<T> std::fmt::Debug for EmitFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmitFuture")
            .field("done", &self.event.is_none())
            .field("waiter", &self.waiter)
            .finish_non_exhaustive()
    }
}

/// [`EmitFuture`] split: its emitter, event, first-try flag and (pinned) waiter.
type Parts<'s, 'a, T> = (
    &'a Emitter<T>,
    &'s mut Option<T>,
    &'s mut bool,
    Pin<&'s mut Waiter<&'a Waiters>>,
);

impl<'a, T> EmitFuture<'a, T> {
    /// Splits the pinned future into its parts, the waiter still pinned.
    fn project<'s>(self: Pin<&'s mut Self>) -> Parts<'s, 'a, T> {
        // SAFETY: `waiter` is structurally pinned: it is handed out only pinned, and never
        // moved (`Drop` does not move it either); the other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this` is pinned, so its `waiter` field is.
        let waiter = unsafe { Pin::new_unchecked(&mut this.waiter) };
        (this.emitter, &mut this.event, &mut this.tried, waiter)
    }

    /// Stops the emit and hands the event back, if it was not accepted: `Some` with the error
    /// the emit would return now ([`EmitError::Full`], or [`EmitError::Closed`] once shutdown
    /// has begun), counted as rejected as a dropped future would be; `None` if the future
    /// has completed (its output said what happened to the event). The future is done
    /// afterwards: do not poll it again.
    ///
    /// ```
    /// use ringwal::{EmitError, Overflow, Writer};
    /// use std::future::Future;
    /// use std::pin::pin;
    /// use std::task::{Context, Poll, Waker};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = Writer::builder(dir.path())
    ///     .overflow(Overflow::Block(None))
    ///     .start::<u32>()
    ///     .unwrap();
    /// let mut emit = pin!(emitter.emit_async(7));
    /// // (In async code: `select!` on `&mut emit` and a timer, then cancel it.)
    /// assert!(matches!(emit.as_mut().cancel(), Some(EmitError::Full(7))));
    /// assert_eq!(emitter.stats().rejected, 1);
    /// # drop(writer);
    /// ```
    pub fn cancel(self: Pin<&mut Self>) -> Option<EmitError<T>> {
        let (emitter, event, _, waiter) = self.project();
        let event = event.take()?;
        waiter.cancel();
        emitter.refuse(EmitError::Full(event)).err()
    }
}

impl<T> Future for EmitFuture<'_, T> {
    type Output = Result<(), EmitError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (emitter, slot, tried, mut waiter) = self.project();
        let Some(mut event) = slot.take() else {
            panic!("EmitFuture polled after it completed (or was cancelled)");
        };
        if !*tried {
            *tried = true;
            if !matches!(emitter.shared.overflow, Overflow::Block(_)) {
                // `Reject`, `DropOldest`: never waits.
                return Poll::Ready(emitter.emit(event));
            }
            // `emit`'s fast path under `Block` (its first push), without the spinning.
            match emitter.attempt(event) {
                Attempt::Done(r) => return Poll::Ready(r),
                Attempt::Retry(e) => event = e,
            }
        }
        let mut held = Some(event);
        let polled = waiter.as_mut().poll_until(cx.waker(), || {
            let event = held.take()?;
            match emitter.attempt(event) {
                Attempt::Done(r) => Some(r),
                Attempt::Retry(e) => {
                    held = Some(e);
                    None
                }
            }
        });
        if polled.is_pending() {
            *slot = held;
            // Still full, and registered: a polling writer is woken to free space now (a
            // parking one was woken by the push that filled the ring), as a blocked `emit`
            // does before it waits (`Signal::nudge`).
            emitter.shared.signal.nudge();
        }
        polled
    }
}

impl<T> Drop for EmitFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(event) = self.event.take() {
            // Not accepted (waiting, or never polled): counted once, as rejected, so the log
            // records it as a gap, like a `Block` emit that timed out. (`waiter` unlinks
            // itself when it is dropped, after this.)
            let _ = self.emitter.refuse(EmitError::Full(event));
        }
    }
}

/// The future of [`Emitter::flush_async`]: `Output = Result<(), FlushError>`. Not `Unpin`
/// (see [`EmitFuture`]).
#[must_use = "futures do nothing unless polled"]
pub struct FlushFuture<'a, T> {
    shared: &'a Shared<T>,
    /// From the first poll: the producers' position to reach, and the writer's failure count
    /// then.
    target: Option<(usize, u64)>,
    /// The task's registration on the writer's `flushed` list (structurally pinned).
    waiter: Waiter<&'a Waiters>,
}

impl<T> std::fmt::Debug for FlushFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushFuture")
            .field("target", &self.target)
            .field("waiter", &self.waiter)
            .finish_non_exhaustive()
    }
}

impl<'a, T> FlushFuture<'a, T> {
    /// A flush of the writer `shared` (any emitter handle's: a byte emitter's too).
    pub(super) fn new(shared: &'a Shared<T>) -> Self {
        FlushFuture {
            shared,
            target: None,
            waiter: Waiter::new(&shared.signal.flushed),
        }
    }
}

impl<T> Future for FlushFuture<'_, T> {
    type Output = Result<(), FlushError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `waiter` is structurally pinned (handed out only pinned, never moved); the
        // other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let waiter = unsafe { Pin::new_unchecked(&mut this.waiter) };
        let sh = this.shared;
        let sig = &sh.signal;
        let (target, failures) = match this.target {
            Some(t) => t,
            None => {
                // As `Emitter::flush`: the position now, done already, or ask the writer.
                let target = sh.tx.pushed();
                if Signal::reached(sig.done(), target) {
                    return Poll::Ready(Ok(()));
                }
                let failures = sig.failures();
                sig.request_flush(target);
                this.target = Some((target, failures));
                (target, failures)
            }
        };
        waiter.poll_until(cx.waker(), || sh.flush_outcome(target, failures))
    }
}
