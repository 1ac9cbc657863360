//! How a shutdown waits for the writer thread without trusting the sink to return: the
//! thread hands its result over through [`Exit`], and the shutting-down caller waits for it
//! with a deadline (it joins the thread only once the result has arrived). A sink call that
//! never returns (a hung disk, an NFS mount gone away) so leaves the thread detached instead of
//! hanging `shutdown` and `Drop`. [`Watched`] wraps the sink to show when the writer is inside
//! one of its calls.

use crate::sink::{Batch, Sink};
use crate::{Report, ShutdownError};
use std::io;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Past the deadline, a sink call that has not returned for this long counts as stuck.
const STUCK_AFTER: Duration = Duration::from_millis(100);
/// Past the deadline, while the writer is in its own code (handing back what it holds), the
/// caller waits at most `shutdown_timeout` longer, and at least this long.
const MIN_HAND_BACK: Duration = Duration::from_secs(1);

/// The writer thread's result, handed to whoever shuts it down.
pub(crate) struct Exit {
    result: Mutex<Option<Result<Report, ShutdownError>>>,
    ready: Condvar,
    /// Sink calls begun plus sink calls ended: odd while the writer is inside one.
    sink_calls: AtomicU64,
    timeout: Duration,
    /// When the shutdown must be over: set when it is requested; the writer gives up then.
    deadline: Mutex<Option<Instant>>,
}

impl Exit {
    pub(super) fn new(timeout: Duration) -> Self {
        Exit {
            result: Mutex::new(None),
            ready: Condvar::new(),
            sink_calls: AtomicU64::new(0),
            timeout,
            deadline: Mutex::new(None),
        }
    }

    /// Called by the shutting-down caller before it asks the writer to stop: fixes the
    /// shutdown's deadline (`None`: none), for the caller's wait and the writer's give-up alike.
    pub(super) fn begin(&self) -> Option<Instant> {
        let deadline = Instant::now().checked_add(self.timeout);
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = deadline;
        deadline
    }

    /// The deadline [`begin`](Self::begin) fixed (`None` before it, or without one).
    pub(super) fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The builder's `shutdown_timeout`.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Called by the writer thread, once, with its result.
    pub(super) fn put(&self, result: Result<Report, ShutdownError>) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        self.ready.notify_all();
    }

    /// Waits for the writer's result: until `deadline` (from [`begin`](Self::begin); the
    /// writer finishes or gives up by then), then while the writer is handing back what it
    /// holds. `None` if it is stuck in a sink call (one that has not returned for
    /// `STUCK_AFTER`), or still has not answered `max(timeout, MIN_HAND_BACK)` after the
    /// deadline.
    pub(super) fn wait(&self, deadline: Option<Instant>) -> Option<Result<Report, ShutdownError>> {
        let Some(deadline) = deadline else {
            // No deadline: wait as long as it takes.
            let mut slot = self.result.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(result) = slot.take() {
                    return Some(result);
                }
                slot = self.ready.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
        };
        if let Some(result) = self.wait_until(deadline) {
            return Some(result);
        }
        let cap = deadline
            .checked_add(self.timeout.max(MIN_HAND_BACK))
            .unwrap_or(deadline);
        loop {
            // Acquire pairs with the Release increments in `Watched`: nothing more than
            // ordering the counter's reads among themselves is needed, but it costs nothing.
            let calls = self.sink_calls.load(Ordering::Acquire);
            let step_end = Instant::now() + STUCK_AFTER;
            if let Some(result) = self.wait_until(step_end.min(cap)) {
                return Some(result);
            }
            let inside = calls % 2 == 1;
            if (inside && self.sink_calls.load(Ordering::Acquire) == calls) || Instant::now() >= cap
            {
                return None;
            }
        }
    }

    fn wait_until(&self, deadline: Instant) -> Option<Result<Report, ShutdownError>> {
        let mut slot = self.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(result) = slot.take() {
                return Some(result);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            slot = self
                .ready
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn enter(&self) {
        // Release: see `wait`.
        self.sink_calls.fetch_add(1, Ordering::Release);
    }

    fn leave(&self) {
        self.sink_calls.fetch_add(1, Ordering::Release);
    }
}

/// The user's sink, with each call (append, sync, and its drop) counted in [`Exit`], so a
/// shutdown can tell a writer stuck in the sink from one busy in its own code.
pub(super) struct Watched<S: Sink> {
    sink: ManuallyDrop<S>,
    exit: Arc<Exit>,
}

impl<S: Sink> Watched<S> {
    pub(super) fn new(sink: S, exit: Arc<Exit>) -> Self {
        Watched {
            sink: ManuallyDrop::new(sink),
            exit,
        }
    }
}

impl<S: Sink> Sink for Watched<S> {
    fn next_seq(&self) -> u64 {
        self.sink.next_seq()
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        self.exit.enter();
        let result = self.sink.append(batch);
        self.exit.leave();
        result
    }

    fn sync(&mut self) -> io::Result<()> {
        self.exit.enter();
        let result = self.sink.sync();
        self.exit.leave();
        result
    }

    fn segments(&self) -> usize {
        self.sink.segments()
    }
}

impl<S: Sink> Drop for Watched<S> {
    fn drop(&mut self) {
        // Closing files can hang too (NFS).
        self.exit.enter();
        // SAFETY: `sink` is dropped exactly once, here, and never used after.
        unsafe { ManuallyDrop::drop(&mut self.sink) };
        self.exit.leave();
    }
}
