//! The writer's handshakes with emitters and flushers: sleep/wake, close, `Block` waits and
//! flush waits. Public (hidden) only so `loom-tests/` can model it; not part of the API.
//!
//! # The protocol
//!
//! One state word holds `SLEEPING`, `CLOSED` and `UNHEALTHY`. Every emit starts with
//! [`Signal::enter`], which raises one of [`STRIPES`] cache-padded in-flight counters (each
//! `Emitter` handle gets a stripe, round robin; beyond `STRIPES` handles they share), and ends
//! by lowering it: inside the push, as soon as it has claimed a position
//! ([`Signal::in_flight`] handed to `Ring::try_push_releasing`), or with [`Signal::leave`] when
//! it pushes nothing:
//!
//! ```text
//! emitter E                              writer W (going to sleep, or closing)
//! busy[i] += 1                           state |= SLEEPING (or CLOSED)
//! fence(SeqCst)          ---- pairs ---- fence(SeqCst)
//! s = state                              every busy[j] == 0 ?  (Acquire)
//! if s & CLOSED: busy -= 1, reject       ring empty (by `tail`)? flush wanted?
//! claim a position (CAS `tail`)          if all quiet: park
//! busy[i] -= 1 (Release)
//! write the value, publish it
//! if s & SLEEPING: wake W
//! ```
//!
//! The two SeqCst fences order E's increment before its state load and W's state change before
//! its counter loads, so at least one side sees the other (store-buffering is forbidden):
//! either E reads the new state (and wakes W / rejects), or W reads `busy[i] > 0` and does not
//! park (it waits for the counter to drop, and the Release decrement then makes E's claim
//! visible to W's ring check, which reads the producers' position `tail`). So a parked writer
//! always sees a push that raced its parking, and after `close` returns no position can be
//! claimed any more: the ring's `pushed()` is final, and the closing writer drains until its
//! own position reaches it.
//!
//! The decrement comes right after the claim, inside the push (`Ring::try_push_releasing`),
//! not after the value is written: a read-modify-write after the write would wait for the
//! value's cache line, which the writer has usually just read, and that wait was most of an
//! emit's latency. A claimed position is published a few instructions later, with no user code
//! in between; the writer treats "claimed, not yet published" as work still to come (the ring
//! is not empty by `tail`, and the closing drain waits for it).
//!
//! A single shared in-flight counter would give the same guarantee, but every emitter would
//! then bounce one cache line; striping keeps the emit path on a line its own handle owns.
//!
//! # A polled writer (`Idle::Poll`, `Idle::Spin`)
//!
//! A writer built with [`Signal::polled`] never sets `SLEEPING`: it sleeps on a timer
//! ([`Signal::poll_sleep`]) or not at all, so every emit reads a state without `SLEEPING` and
//! never unparks it (no syscall on the emit path). Whoever needs it sooner than its timer
//! unparks it unconditionally: a flusher ([`Signal::request_flush`]), a stopper
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

use crate::sync::{self, fence, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering, Thread};
use crossbeam_utils::CachePadded;
use std::time::{Duration, Instant};

/// How many in-flight counters emitters spread over.
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

/// Waiters on a condition another thread changes (blocked emitters, flushers).
#[derive(Debug)]
pub struct Waiters {
    count: AtomicUsize,
    lock: Mutex<()>,
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
            lock: Mutex::new(()),
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

    /// Wakes every waiter, if there is one. Call after making the change waiters wait for.
    pub fn notify(&self) {
        // Pairs with the fence in `wait` (see there).
        fence(Ordering::SeqCst);
        if self.count.load(Ordering::Relaxed) > 0 {
            let _guard = sync::lock(&self.lock);
            self.cv.notify_all();
        }
    }
}

/// The shared handshake state of one writer.
#[derive(Debug)]
pub struct Signal {
    state: CachePadded<AtomicUsize>,
    busy: [CachePadded<AtomicUsize>; STRIPES],
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
            busy: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
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

    /// Marks an emit in flight on `stripe` and returns the state it must act on.
    #[inline]
    pub fn enter(&self, stripe: usize) -> usize {
        // Relaxed: ordered before the state load by the fence (see the module docs).
        self.busy[stripe].fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `prepare_sleep` and `close`.
        fence(Ordering::SeqCst);
        // Relaxed: the fence above orders it; it carries no data.
        self.state.load(Ordering::Relaxed)
    }

    /// Ends an emit [`enter`](Self::enter) started that pushes nothing (refused: closed, or
    /// unhealthy with `reject_when_unhealthy`); wakes the writer if `state` said it sleeps. An
    /// emit that pushes, or finds the ring full, ends inside the push instead (see
    /// [`in_flight`](Self::in_flight)).
    #[inline]
    pub fn leave(&self, stripe: usize, state: usize) {
        // Release pairs with the writer's Acquire loads in `quiet` (this emit pushed nothing;
        // it only has to stop counting as in flight).
        self.busy[stripe].fetch_sub(1, Ordering::Release);
        if state & SLEEPING != 0 {
            self.wake_writer();
        }
    }

    /// The in-flight counter of `stripe`, for a push that ends the emit itself
    /// (`Ring::try_push_releasing` / `force_push_releasing` decrement it, with Release, as soon
    /// as the position is claimed). Follow the push with [`woke`](Self::woke).
    #[inline]
    pub fn in_flight(&self, stripe: usize) -> &AtomicUsize {
        &self.busy[stripe]
    }

    /// After a push that released the in-flight counter itself: wakes the writer if `state`
    /// (from [`enter`](Self::enter)) said it sleeps.
    #[inline]
    pub fn woke(&self, state: usize) {
        if state & SLEEPING != 0 {
            self.wake_writer();
        }
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

    /// Sets or clears `UNHEALTHY`.
    pub fn set_unhealthy(&self, unhealthy: bool) {
        // Relaxed: health is advisory; the emit path reads it after its fence, and being one
        // emit late about a health change is fine.
        if unhealthy {
            self.state.fetch_or(UNHEALTHY, Ordering::Relaxed);
        } else {
            self.state.fetch_and(!UNHEALTHY, Ordering::Relaxed);
        }
    }

    /// Whether no emit is in flight on any stripe. Acquire pairs with the Release decrement in
    /// `leave`: when it returns true, every push that finished is visible.
    fn quiet(&self) -> bool {
        self.busy.iter().all(|b| b.load(Ordering::Acquire) == 0)
    }

    /// Announces the writer is about to park. Returns true if it may park: no emit was in
    /// flight, and `idle()` (the writer's check for work: ring empty, no flush wanted, not
    /// closed) holds. Otherwise SLEEPING is cleared again and the writer must look for work.
    pub fn prepare_sleep(&self, idle: impl FnOnce() -> bool) -> bool {
        debug_assert!(!self.polled, "a polling writer must never set SLEEPING");
        // Relaxed: ordered before the loads below by the fence. The RMW's return value pairs
        // with `request_stop` through the state word's modification order.
        let prev = self.state.fetch_or(SLEEPING, Ordering::Relaxed);
        // Pairs with the fence in `enter` and in `request_flush` (module docs).
        fence(Ordering::SeqCst);
        if prev & STOP == 0 && self.quiet() && idle() {
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

    /// Refuses every later emit, and waits until no emit is in flight: when this returns, no
    /// position can be claimed in the ring any more, so `Ring::pushed` is final (a value
    /// claimed just before may still be being published: drain until the consumer's position
    /// reaches `pushed`). Wakes blocked emitters so they see it. Called by the writer thread: the
    /// fence here is what orders its own later ring reads.
    pub fn close(&self) {
        // Relaxed: ordered before the loads in `quiet` by the fence.
        self.state.fetch_or(CLOSED, Ordering::Relaxed);
        // Pairs with the fence in `enter`: an emit either sees CLOSED or is seen in flight.
        fence(Ordering::SeqCst);
        let mut round = 0;
        while !self.quiet() {
            sync::relax(round);
            round = round.saturating_add(1);
        }
        self.space.notify();
        self.flushed.notify();
        self.wake_writer();
    }

    /// Marks the writer thread finished and wakes everyone still waiting on it.
    pub fn exited(&self) {
        self.state.fetch_or(EXITED | CLOSED, Ordering::Release);
        self.space.notify();
        self.flushed.notify();
    }

    /// Whether position `a` is at or past `b` (ring positions wrap).
    pub fn reached(a: usize, b: usize) -> bool {
        (b.wrapping_sub(a) as isize) <= 0
    }
}
