//! The writer's handshakes with emitters and flushers: sleep/wake, close, `Block` waits and
//! flush waits. Public (hidden) only so `loom-tests/` can model it; not part of the API.
//!
//! # The protocol
//!
//! An emit is one push into the ring (`ringwal_core::Producer::try_push_checked`, or
//! `force_push_checked` under `DropOldest`), whose claim is a sequentially consistent
//! compare-and-swap on the ring's `tail`, and, after publishing, one `SeqCst` load of the
//! state word ([`Signal::pushed`]). No fence and no other read-modify-write on the way: on
//! x86 a `SeqCst` compare-and-swap is the same `lock cmpxchg` as a relaxed one and a `SeqCst`
//! load a plain `mov`.
//!
//! ```text
//! emitter E                              writer W (going to sleep)
//! claim: CAS tail (SeqCst)               state |= SLEEPING (SeqCst RMW)
//! write the value, publish it            fence(SeqCst)
//! s = state (SeqCst)                     pushed = tail (SeqCst)
//! if s & SLEEPING: wake W                if pushed == its position and no flush wanted: park
//! ```
//!
//! All four of E's claim, E's state load, W's state change and W's `tail` load are `SeqCst`,
//! so they take places in one total order consistent with each thread's program order. If E's
//! load does not see `SLEEPING`, it comes before W's change in that order; then so does E's
//! claim, which therefore comes before W's `tail` load, which sees it (a `SeqCst` load sees the
//! last `SeqCst` write before it): W does not park. Otherwise E sees `SLEEPING` and wakes W.
//! (Store buffering is forbidden either way.) A claim W sees may be published a few
//! instructions later; W treats "claimed, not yet published" as work still to come.
//!
//! **Close** is the ring's: `Producer::close` sets a flag bit in `tail` with one `SeqCst`
//! `fetch_or`, and every claim is a compare-and-swap on `tail`, which fails from then on. So
//! the position `close` returns is final: no in-flight counter, nothing to wait for but the
//! publication of claims made before it.
//!
//! **Refusals** are counted on [`STRIPES`] cache-padded counters (an emit's handle picks its
//! stripe, round robin), so that the log can record them where they happened. The closing
//! writer reads them after its close, and must see every refusal of an emit that was refused
//! before the close. An emit that is refused counts first and then re-reads `tail` (both
//! `SeqCst`); the writer closes and then reads the counters (both `SeqCst`). If the writer's
//! read misses the count, that read comes before the count in the total order, so the close
//! does too, so the emit's re-read sees the close: it reports [`EmitError::Closed`] — refused
//! after the close, which the log does not account for (it counts in `stats()` only). Every
//! refusal the emit reports as `Full` or `Unhealthy` is in the writer's final count.
//!
//! [`EmitError::Closed`]: crate::EmitError::Closed
//!
//! # Under loom
//!
//! loom treats `SeqCst` accesses as acquire/release (it does not model the single total order
//! of `SeqCst` operations), and models `SeqCst` fences exactly. So in the loom build each
//! side of each handshake above has a `SeqCst` fence right after its first access (the claim in
//! `ringwal-core`, the count in [`Signal::count_refusal`], the close in `ringwal-core`, the
//! `SLEEPING` change here): "RMW; fence; load" on both sides forbids store buffering just as
//! the `SeqCst` accesses do, and that is the property every argument here uses. The models run
//! the real code with those fences; the release build has no fence.
//!
//! # A polled writer (`Idle::Poll`, `Idle::Spin`)
//!
//! A writer built with [`Signal::polled`] never sets `SLEEPING`: it sleeps on a timer
//! ([`Signal::poll_sleep`]) or not at all, so no emit ever unparks it (no syscall on the emit
//! path; [`Signal::pushed`] does not even load the state). Whoever needs it sooner than its
//! timer unparks it unconditionally: a flusher ([`Signal::request_flush`]), a stopper
//! ([`Signal::request_stop`]) and a `Block` emitter about to wait for space
//! ([`Signal::nudge`]). That needs no fence: each makes its change (flush target, `STOP`, or
//! the full ring it saw) before calling `unpark`, and a thread's park token makes an unpark
//! that comes before the writer's `park` end that park at once, while `unpark`
//! happens-before the `park` it ends returns. So a writer that looked for work before the
//! change was made still parks only until the unpark, and then sees the change.
//!
//! [`Waiters`] is the same argument for blocked emitters and flushers: the waiter registers,
//! fences, and re-checks its condition under a mutex; the notifier makes its change, fences, and
//! takes the mutex to notify when it sees a registered waiter.
//!
//! # Waiting tasks
//!
//! Futures wait in the same [`Waiters`] as threads (`Emitter::emit_async` on `space`,
//! `Emitter::flush_async` on `flushed`, a log's follower on [`Appended`]): each registers a
//! [`Waiter`] (a node in an intrusive list under the same mutex, holding its `Waker`) by the
//! same handshake, and [`Waiters::notify`] wakes them with the threads. So the writer's side is
//! unchanged: one fence and one load of the waiter count where it notifies. See
//! [`wake`](self::wake) for the list, the argument, and cancellation.

use crate::sync::{self, fence, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering, Thread};
use crossbeam_utils::CachePadded;
use std::time::{Duration, Instant};

pub mod wake;
use wake::Tasks;
pub use wake::{Appended, WaitList, Waiter};

/// How many refusal counters emitters spread over.
pub const STRIPES: usize = 16;

/// The writer is parked (or about to park) and must be unparked by whoever gives it work.
pub const SLEEPING: usize = 1;
/// Shutdown started: emits are refused from now on.
pub const CLOSED: usize = 2;
/// The sink is failing; the writer is retrying.
pub const UNHEALTHY: usize = 4;
/// The writer thread has finished.
pub const EXITED: usize = 8;
/// Shutdown was requested; the writer will [`close`](Signal::close) and drain.
pub const STOP: usize = 16;

/// Waiters on a condition another thread changes (blocked emitters, flushers): threads in
/// [`wait`](Self::wait), and tasks registered by a [`Waiter`].
#[derive(Debug)]
pub struct Waiters {
    /// Threads in `wait` plus tasks linked in `lock`'s list.
    count: AtomicUsize,
    /// The tasks waiting (see [`wake`](self::wake)); the threads wait on `cv`.
    lock: Mutex<Tasks>,
    cv: Condvar,
}

impl Default for Waiters {
    fn default() -> Self {
        Self::new()
    }
}

impl Waiters {
    /// No waiters.
    pub fn new() -> Self {
        Waiters {
            count: AtomicUsize::new(0),
            lock: Mutex::new(Tasks::default()),
            cv: Condvar::new(),
        }
    }

    /// Calls `ready` until it returns `Some`, waiting for a [`notify`](Self::notify) between
    /// calls; `None` once `deadline` passes. `ready` runs with the waiters' lock held.
    pub fn wait<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        let mut guard = sync::lock(&self.lock);
        // Relaxed: ordered before `ready()`'s loads by the SeqCst fence below.
        self.count.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `notify`: either `ready()` sees the change the notifier made
        // before its fence, or the notifier's count load sees our registration and it takes
        // the lock to notify, which it cannot do between our check and our wait.
        fence(Ordering::SeqCst);
        let result = loop {
            if let Some(r) = ready() {
                break Some(r);
            }
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break None;
                    }
                    Some(d - now)
                }
            };
            guard = sync::wait(&self.cv, guard, timeout);
        };
        // Relaxed: a notifier that still sees us only takes the lock in vain.
        self.count.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        result
    }

    /// Wakes every waiter, if there is one: threads, and tasks (woken after the lock is
    /// released). Call after making the change waiters wait for.
    pub fn notify(&self) {
        // Pairs with the fence in `wait` and in `Waiter::poll_until` (see there).
        fence(Ordering::SeqCst);
        if self.count.load(Ordering::Relaxed) > 0 {
            let tasks = sync::lock(&self.lock);
            self.cv.notify_all();
            self.wake_tasks(tasks);
        }
    }
}

/// How a flush's wait ended ([`Signal::flush_outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// The writer's done position reached the flush's target.
    Done,
    /// A write or sync failed since the flush began.
    Failed,
    /// The writer thread exited without reaching the target.
    Exited,
}

/// The shared handshake state of one writer.
#[derive(Debug)]
pub struct Signal {
    state: CachePadded<AtomicUsize>,
    /// Emits refused (full ring under `Reject`, `Block` timeout, closed, unhealthy), per stripe.
    rejected: [CachePadded<AtomicU64>; STRIPES],
    next_stripe: AtomicUsize,
    writer: Thread,
    /// The writer polls (`Idle::Poll` or `Idle::Spin`): it never sets `SLEEPING`, and
    /// flushers, stoppers and blocked emitters unpark it unconditionally.
    polled: bool,
    /// Emitters blocked on a full ring (`Overflow::Block`).
    pub space: Waiters,
    /// Flushers waiting for `done` to reach their target.
    pub flushed: Waiters,
    /// The highest position a flusher waits for (ring positions, wrapping).
    flush_target: CachePadded<AtomicUsize>,
    /// The writer's position whose records are written (and synced, unless the policy is
    /// `Never`): values popped plus values evicted.
    done: CachePadded<AtomicUsize>,
    /// Bumped on every write or sync failure, so a flusher can tell one happened while it waited.
    failures: AtomicU64,
}

impl Signal {
    /// A signal for the writer thread `writer` (the one that will call the writer-side methods).
    pub fn new(writer: Thread) -> Self {
        Self::with_polling(writer, false)
    }

    /// A signal for a polling writer thread (`Idle::Poll`, `Idle::Spin`): see the module docs.
    pub fn polled(writer: Thread) -> Self {
        Self::with_polling(writer, true)
    }

    fn with_polling(writer: Thread, polled: bool) -> Self {
        Signal {
            polled,
            state: CachePadded::new(AtomicUsize::new(0)),
            rejected: std::array::from_fn(|_| CachePadded::new(AtomicU64::new(0))),
            next_stripe: AtomicUsize::new(0),
            writer,
            space: Waiters::new(),
            flushed: Waiters::new(),
            flush_target: CachePadded::new(AtomicUsize::new(0)),
            done: CachePadded::new(AtomicUsize::new(0)),
            failures: AtomicU64::new(0),
        }
    }

    /// A stripe for a new emitter handle, round robin.
    pub fn stripe(&self) -> usize {
        // Relaxed: any distribution is correct; this only spreads the load.
        self.next_stripe.fetch_add(1, Ordering::Relaxed) % STRIPES
    }

    // ---- emitter side ----

    /// After a push that claimed a position (and published it): wakes a parked writer. One
    /// `SeqCst` load of the state; a polled writer never sleeps announced, so nothing at all.
    /// The claim must have been `SeqCst` (`try_push_checked`, `force_push_checked`): see the
    /// module docs.
    #[inline]
    pub fn pushed(&self) {
        if self.polled {
            return;
        }
        // SeqCst: pairs with the writer's SeqCst `fetch_or(SLEEPING)` and its SeqCst load of
        // `tail`, through the single total order, with our SeqCst claim before this load (module
        // docs). Under loom the claim is followed by a SeqCst fence instead.
        if self.state.load(Ordering::SeqCst) & SLEEPING != 0 {
            self.wake_writer();
        }
    }

    /// Counts a refused emit on `stripe`, then re-reads whether the ring is closed with
    /// `is_closed` (which must load `tail` with `SeqCst`): returns true if it is, and the emit
    /// must then report `Closed` (module docs, "Refusals").
    #[cold]
    pub fn count_refusal(&self, stripe: usize, is_closed: impl FnOnce() -> bool) -> bool {
        // SeqCst: pairs with the closing writer's SeqCst close and its SeqCst loads in
        // `refusals` (module docs).
        self.rejected[stripe].fetch_add(1, Ordering::SeqCst);
        #[cfg(loom)]
        fence(Ordering::SeqCst);
        is_closed()
    }

    /// Every refusal counted so far: a snapshot, except after [`close`](Self::close) on the
    /// closing thread, where it holds every refusal reported as anything but `Closed`.
    pub fn refusals(&self) -> u64 {
        // SeqCst: see `count_refusal`.
        self.rejected.iter().map(|r| r.load(Ordering::SeqCst)).sum()
    }

    /// Unparks the writer if it is (about to be) parked. Only one of several racing callers
    /// makes the syscall.
    pub fn wake_writer(&self) {
        // Relaxed: the unpark is the synchronisation (unpark happens-before park returns).
        if self.state.fetch_and(!SLEEPING, Ordering::Relaxed) & SLEEPING != 0 {
            self.writer.unpark();
        }
    }

    /// The current state (a snapshot).
    pub fn state(&self) -> usize {
        // Relaxed: callers use it as a hint (health for stats), never to order data.
        self.state.load(Ordering::Relaxed)
    }

    /// The current state, Acquire: pairs with the Release in `exited`, so after seeing
    /// `EXITED` the writer's final counters are visible.
    pub fn state_acquire(&self) -> usize {
        self.state.load(Ordering::Acquire)
    }

    // ---- flush ----

    /// Asks the writer to reach `target` soon (write, and sync unless the policy is `Never`),
    /// waking it if it sleeps.
    pub fn request_flush(&self, target: usize) {
        // Relaxed: ordered by the fence below; a request only has to be seen, it carries no
        // data the writer reads through it.
        let mut current = self.flush_target.load(Ordering::Relaxed);
        while (target.wrapping_sub(current) as isize) > 0 {
            match self.flush_target.compare_exchange_weak(
                current,
                target,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        // Pairs with the fence in `prepare_sleep`: either the writer sees our target before
        // parking, or we see SLEEPING and wake it.
        fence(Ordering::SeqCst);
        if self.polled {
            // Never SLEEPING: unpark it ourselves (module docs, "A polled writer").
            self.writer.unpark();
        } else if self.state.load(Ordering::Relaxed) & SLEEPING != 0 {
            self.wake_writer();
        }
    }

    /// A `Block` emitter found the ring full and is about to wait for space: a polling writer
    /// is unparked, so it frees space now rather than at its next timer. (A parking writer
    /// needs nothing: the push that filled the ring woke it.)
    pub fn nudge(&self) {
        if self.polled {
            self.writer.unpark();
        }
    }

    /// Whether the writer polls (see [`polled`](Self::polled)).
    pub fn is_polled(&self) -> bool {
        self.polled
    }

    /// The position a flusher waits for.
    pub fn flush_target(&self) -> usize {
        // Relaxed: see `request_flush`. Inside `prepare_sleep` this load follows the writer's
        // SeqCst fence (that is the handshake); elsewhere the writer uses it as a hint.
        self.flush_target.load(Ordering::Relaxed)
    }

    /// The writer's done position.
    pub fn done(&self) -> usize {
        // Acquire pairs with the Release store in `publish_done`.
        self.done.load(Ordering::Acquire)
    }

    /// How many write or sync failures the writer has seen.
    pub fn failures(&self) -> u64 {
        // Acquire pairs with the Release increment in `record_failure`.
        self.failures.load(Ordering::Acquire)
    }

    /// Whether a flush up to `target`, begun when [`failures`](Self::failures) was `failures`,
    /// is over, and how: the condition `Emitter::flush` and `flush_async` wait for.
    pub fn flush_outcome(&self, target: usize, failures: u64) -> Option<FlushOutcome> {
        // Read first, Acquire: pairs with the Release RMW in `exited`, which the writer thread
        // makes after its last `publish_done` (and `record_failure`). So once we see EXITED,
        // the loads of `done` and `failures` below see the writer's final values, and a flush
        // the writer completed is `Done`, never `Exited`. (Read after `done`, a stale `done`
        // and a fresh EXITED told a flush whose records were written that the writer stopped
        // without writing them: `loom-tests/tests/flush_exit.rs`.)
        let exited = self.state_acquire() & EXITED != 0;
        if Self::reached(self.done(), target) {
            Some(FlushOutcome::Done)
        } else if self.failures() != failures {
            Some(FlushOutcome::Failed)
        } else if exited {
            Some(FlushOutcome::Exited)
        } else {
            None
        }
    }

    // ---- writer side ----

    /// Publishes the writer's done position and wakes flushers.
    pub fn publish_done(&self, position: usize) {
        // Release pairs with the Acquire load in `done`: what the writer did to get there
        // (stats included) is visible to a flusher that sees the position.
        self.done.store(position, Ordering::Release);
        self.flushed.notify();
    }

    /// Records a write or sync failure and wakes flushers so they can report it.
    pub fn record_failure(&self) {
        // Release pairs with the Acquire load in `failures`.
        self.failures.fetch_add(1, Ordering::Release);
        self.flushed.notify();
    }

    /// Sets or clears `UNHEALTHY`. Setting it wakes the emitters waiting for space (blocked
    /// threads and tasks): a failing writer leaves the ring alone, so no space frees, and under
    /// `reject_when_unhealthy` they must now be refused with `Unhealthy` instead of waiting for
    /// the disk to recover.
    pub fn set_unhealthy(&self, unhealthy: bool) {
        // Relaxed: health is advisory; the emit path reads it after its fence, and being one
        // emit late about a health change is fine.
        if unhealthy {
            let prev = self.state.fetch_or(UNHEALTHY, Ordering::Relaxed);
            if prev & UNHEALTHY == 0 {
                // The change waiters for space look at (`Emitter::attempt`,
                // `ByteEmitter::attempt` read `UNHEALTHY` in their `ready` check): the
                // `Waiters` handshake makes a waiter that registered before `notify`'s fence
                // get woken, and one that registers after see the flag (its SeqCst fence,
                // then the Relaxed load in `attempt`, pairs with `notify`'s fence, which
                // follows the RMW above). Only on the change: a waiter that registers later
                // sees the flag itself.
                self.space.notify();
            }
        } else {
            self.state.fetch_and(!UNHEALTHY, Ordering::Relaxed);
        }
    }

    /// Announces the writer is about to park. Returns true if it may park: `idle()` (the
    /// writer's check for work: nothing claimed past its position, read with `SeqCst`; no flush
    /// wanted) holds and no stop was asked. Otherwise SLEEPING is cleared again and the writer
    /// must look for work.
    pub fn prepare_sleep(&self, idle: impl FnOnce() -> bool) -> bool {
        debug_assert!(!self.polled, "a polling writer must never set SLEEPING");
        // SeqCst: pairs with the emitters' SeqCst claim and state load (module docs). The RMW's
        // return value pairs with `request_stop` through the state word's modification order.
        let prev = self.state.fetch_or(SLEEPING, Ordering::SeqCst);
        // Pairs with the fence in `request_flush`; under loom, also with the fence after an
        // emitter's claim (module docs, "Under loom").
        fence(Ordering::SeqCst);
        if prev & STOP == 0 && idle() {
            return true;
        }
        self.state.fetch_and(!SLEEPING, Ordering::Relaxed);
        false
    }

    /// Parks the writer (after `prepare_sleep` returned true) for at most `timeout`, then
    /// clears SLEEPING (an emitter may have cleared it already).
    pub fn sleep(&self, timeout: Option<Duration>) {
        sync::park(timeout);
        self.state.fetch_and(!SLEEPING, Ordering::Relaxed);
    }

    /// A polling writer's sleep: parks for at most `timeout` without announcing it (no
    /// `SLEEPING`, so emitters never wake it); a flush, a stop or a blocked emitter ends it
    /// early (see the module docs).
    pub fn poll_sleep(&self, timeout: Duration) {
        debug_assert!(self.polled, "poll_sleep on a parking writer's signal");
        sync::park(Some(timeout));
    }

    /// Asks the writer to shut down: it will [`close`](Self::close), drain and exit.
    pub fn request_stop(&self) {
        // The RMW's place in the state word's modification order does the pairing: if the
        // writer's `fetch_or(SLEEPING)` came first we see SLEEPING and wake it; if ours came
        // first, its RMW returns STOP and it does not park.
        let prev = self.state.fetch_or(STOP, Ordering::Relaxed);
        if self.polled {
            // Never SLEEPING: unpark it ourselves (module docs, "A polled writer"). The RMW
            // above comes before the unpark, which happens-before its park returns.
            self.writer.unpark();
        } else if prev & SLEEPING != 0 {
            self.wake_writer();
        }
    }

    /// Closes: marks the state `CLOSED` (for waiters), closes the ring with `close_ring` (which
    /// must be the ring's `SeqCst` close, after which no position can be claimed), and wakes
    /// blocked emitters and flushers so they see it. Returns what `close_ring` returned (the
    /// final producers' position). Afterwards [`refusals`](Self::refusals) holds every refusal
    /// not reported as `Closed` (module docs, "Refusals").
    pub fn close(&self, close_ring: impl FnOnce() -> usize) -> usize {
        // Relaxed: for waiters' conditions, which they re-check under their lock after
        // `notify` below (whose fence orders this store before it).
        self.state.fetch_or(CLOSED, Ordering::Relaxed);
        let end = close_ring();
        self.space.notify();
        self.flushed.notify();
        self.wake_writer();
        end
    }

    /// Marks the writer thread finished and wakes everyone still waiting on it.
    pub fn exited(&self) {
        self.state.fetch_or(EXITED | CLOSED, Ordering::Release);
        self.space.notify();
        self.flushed.notify();
    }

    /// Whether position `a` is at or past `b` (ring positions wrap, at 2^(`usize::BITS` - 1)).
    pub fn reached(a: usize, b: usize) -> bool {
        ringwal_core::position_diff(a, b) >= 0
    }
}
