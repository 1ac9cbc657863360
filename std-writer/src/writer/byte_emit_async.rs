//! [`ByteEmitter::emit_async`], [`ByteEmitter::emit_with_async`] and
//! [`ByteEmitter::flush_async`]: the byte path's `emit`, `emit_with` and `flush` for async
//! code. As the typed emitter's ([`emit_async`](super::emit_async)): the first poll is the
//! synchronous fast path; only a reservation that finds the ring full under `Overflow::Block`
//! waits, registered in the writer's `space` list (`signal::wake`), with no thread parked.

use super::byte_emitter::{Attempt, RefuseOnUnwind};
use super::emit_async::FlushFuture;
use super::{ByteEmitter, Bytes};
use crate::signal::{Waiter, Waiters};
use crate::{ByteEmitError, Overflow};
use ringwal_core::Grant;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

impl ByteEmitter {
    /// [`emit`](Self::emit) for async code: copies `record` into the ring as one record, and
    /// when the ring is full under [`Overflow::Block`], waits for room without blocking the
    /// thread (the task is woken when the writer frees space, or shuts down).
    ///
    /// The first poll is `emit`'s fast path (one reservation, the copy, the commit); under
    /// `Reject` it completes at once, as `emit`. No timeout of its own: bound it with your
    /// runtime's. A future dropped before it completed counts its record as rejected (a gap
    /// in the log) and never wrote it: see [`EmitFuture`](crate::EmitFuture), whose rules
    /// these futures share.
    ///
    /// ```
    /// use ringwal::{Overflow, Writer};
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = Writer::builder(dir.path())
    ///     .overflow(Overflow::Block(None))
    ///     .capacity(256) // room for a few records: the task waits, often
    ///     .start_bytes()
    ///     .unwrap();
    /// for i in 0..100u32 {
    ///     emitter.emit_async(&i.to_le_bytes()).await.unwrap();
    /// }
    /// emitter.flush_async().await.unwrap();
    /// assert_eq!(writer.shutdown().unwrap().persisted, 100);
    /// # });
    /// ```
    pub fn emit_async<'a>(
        &'a self,
        record: &'a [u8],
    ) -> ByteEmitFuture<'a, impl FnOnce(&mut [u8]) -> usize + 'a> {
        self.emit_with_async(record.len(), move |buf: &mut [u8]| {
            buf.copy_from_slice(record);
            record.len()
        })
    }

    /// [`emit_with`](Self::emit_with) for async code: reserves room for at most `len` bytes
    /// (waiting for it under `Overflow::Block` without blocking the thread), then calls `write`
    /// on the record's bytes in place, as `emit_with` does, and commits the prefix it used.
    ///
    /// `write` runs inside the poll that got the room, at most once, and never if the emit is
    /// refused or the future is dropped first. Its rules are `emit_with`'s: keep it short (the
    /// writer waits for the commit), no emit, flush or shutdown from inside it.
    ///
    /// ```
    /// use std::io::Write as _;
    ///
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start_bytes().unwrap();
    /// emitter
    ///     .emit_with_async(64, |mut buf| {
    ///         let room = buf.len();
    ///         write!(buf, "user {} bought {} items", 7, 3).unwrap();
    ///         room - buf.len()
    ///     })
    ///     .await
    ///     .unwrap();
    /// emitter.flush_async().await.unwrap();
    /// let first = ringwal::Reader::open(dir.path()).unwrap().iter().next().unwrap().unwrap();
    /// assert_eq!(first.payload, b"user 7 bought 3 items");
    /// # drop(writer);
    /// # });
    /// ```
    pub fn emit_with_async<F>(&self, len: usize, write: F) -> ByteEmitFuture<'_, F>
    where
        F: FnOnce(&mut [u8]) -> usize,
    {
        ByteEmitFuture {
            emitter: self,
            len,
            write: Some(write),
            tried: false,
            waiter: Waiter::new(&self.shared.signal.space),
        }
    }

    /// [`flush`](Self::flush) for async code: the guarantee of `flush` (every record accepted
    /// before its first poll written and, unless the policy is `Never`, fsynced), the task
    /// waiting instead of the thread. As [`Emitter::flush_async`](crate::Emitter::flush_async).
    pub fn flush_async(&self) -> FlushFuture<'_, Bytes> {
        FlushFuture::new(&self.shared)
    }
}

/// The future of [`ByteEmitter::emit_async`] and [`ByteEmitter::emit_with_async`]:
/// `Output = Result<(), ByteEmitError>`. Not `Unpin` (a waiting task's registration lives in
/// it; `.await` pins it). Dropped before it completed: the record is not written and counts
/// as rejected.
#[must_use = "futures do nothing unless polled; dropping this one counts its record as rejected"]
pub struct ByteEmitFuture<'a, F> {
    emitter: &'a ByteEmitter,
    len: usize,
    /// The closure that writes the record, until it ran or the emit was refused (then `None`:
    /// the future is done).
    write: Option<F>,
    /// Whether the first try (`emit_with`'s reservation) was made.
    tried: bool,
    /// The task's registration on the writer's `space` list (structurally pinned).
    waiter: Waiter<&'a Waiters>,
}

impl<F> std::fmt::Debug for ByteEmitFuture<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteEmitFuture")
            .field("len", &self.len)
            .field("done", &self.write.is_none())
            .field("waiter", &self.waiter)
            .finish_non_exhaustive()
    }
}

impl<'a, F: FnOnce(&mut [u8]) -> usize> ByteEmitFuture<'a, F> {
    /// Writes and commits the record into `granted` room, or hands the refusal on.
    fn finish(
        emitter: &'a ByteEmitter,
        write: &mut Option<F>,
        granted: Result<Grant<'a>, ByteEmitError>,
    ) -> Result<(), ByteEmitError> {
        // Taken first: whatever happens next, the future is done, and a `Drop` after a panic
        // in `write` does not count the record a second time (the guard counts it).
        let write = write.take().expect("checked by `poll`");
        let mut grant = granted?;
        let guard = RefuseOnUnwind(emitter);
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
        emitter.shared.signal.pushed();
        Ok(())
    }
}

impl<F: FnOnce(&mut [u8]) -> usize> Future for ByteEmitFuture<'_, F> {
    type Output = Result<(), ByteEmitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `waiter` is structurally pinned: it is handed out only pinned, and never
        // moved (`Drop` does not move it either); the other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this` is pinned, so its `waiter` field is.
        let waiter = unsafe { Pin::new_unchecked(&mut this.waiter) };
        let (emitter, len) = (this.emitter, this.len);
        assert!(
            this.write.is_some(),
            "ByteEmitFuture polled after it completed"
        );
        if !this.tried {
            this.tried = true;
            if !matches!(emitter.shared.overflow, Overflow::Block(_)) {
                // `Reject` (a byte writer has no `DropOldest`): never waits.
                let write = this.write.take().expect("checked above");
                return Poll::Ready(emitter.emit_with(len, write));
            }
            // `emit_with`'s first reservation under `Block`, without the spinning.
            if let Attempt::Done(granted) = emitter.attempt(len) {
                return Poll::Ready(Self::finish(emitter, &mut this.write, granted));
            }
        }
        match waiter.poll_until(cx.waker(), || match emitter.attempt(len) {
            Attempt::Done(granted) => Some(granted),
            Attempt::Retry => None,
        }) {
            Poll::Ready(granted) => Poll::Ready(Self::finish(emitter, &mut this.write, granted)),
            Poll::Pending => {
                // Still full, and registered: a polling writer is woken to free space now,
                // as a blocked `emit` does (`Signal::nudge`).
                emitter.shared.signal.nudge();
                Poll::Pending
            }
        }
    }
}

impl<F> Drop for ByteEmitFuture<'_, F> {
    fn drop(&mut self) {
        if self.write.take().is_some() {
            // Not written (waiting, or never polled): counted once, as rejected, like a `Block`
            // emit that timed out. (`waiter` unlinks itself when it is dropped, after this.)
            let _ = self.emitter.refuse(ByteEmitError::Full);
        }
    }
}
