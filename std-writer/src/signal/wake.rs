//! The async side of [`Waiters`]: tasks wait in the same lists as threads, each registered by a
//! [`Waiter`] that lives in the waiting future, and [`Waiters::notify`] wakes them together with
//! the threads. And [`Appended`], what a follower of a log waits on.
//!
//! # A waiting task
//!
//! A task waits as a node of an intrusive, doubly linked list (the [`Tasks`] in the `Waiters`'
//! mutex, the shape of tokio's `Notify` and semaphore): the node is part of the [`Waiter`] in
//! the future that waits — pinned, so the list may point at it — and holds the task's `Waker`.
//! Registering allocates nothing (but what the executor's `Waker::clone` does; tokio's
//! increments a reference count) and holds the lock for a few pointer writes. A future that
//! never waits never touches the list nor the lock.
//!
//! Why nodes in the futures rather than a structure in `Waiters`: a slab of wakers (a
//! `Vec<Option<Waker>>` with a free list) allocates each time the number of waiting tasks
//! passes its high-water mark, and keeps that memory; a fixed array bounds how many tasks can
//! wait (the next one would have to spin, or allocate). A node costs nothing until its task
//! waits, needs no bound, and never allocates. The price is `unsafe` code, all of it in this
//! file, every access to a node's links under the lock (loom checks that: the links are a loom
//! `UnsafeCell` in the models).
//!
//! # The handshake
//!
//! It is [`Waiters::wait`]'s, with the stored waker in place of the condition variable:
//!
//! ```text
//! waiter (Waiter::poll_until)                  notifier (Waiters::notify)
//! lock; link node, store waker; count += 1      make the change (space freed, done published)
//! unlock                                        fence(SeqCst)
//! fence(SeqCst)                                 if count > 0:
//! if ready(): unlink (lock), Ready                lock; unlink every node, take its waker
//! else Pending                                    unlock; wake the wakers
//! ```
//!
//! If the notifier's `count` load misses the registration, the notifier's fence comes before
//! the waiter's in the single total order of `SeqCst` fences, so `ready()`, after the waiter's
//! fence, sees the change made before the notifier's. Otherwise the notifier takes the lock
//! after the node was linked (it was linked under the lock, before the waiter's fence) and
//! wakes the waker stored with it. A waker is taken out of the list only to be woken; a task
//! woken for a change that does not help it (another emitter took the slot) polls, finds
//! `ready()` false, and registers again. So no wake-up is lost.
//!
//! `notify` wakes every registered task, not one: a slot freed may go to any emitter (a
//! non-waiting `emit` included), and a task woken alone could be cancelled before it polls,
//! which would oblige it to pass the notification on. Waking all keeps that out of the
//! protocol; a task that loses the race re-registers. (The writer frees space a batch at a
//! time, so the woken tasks usually all find room.)
//!
//! **Cancellation.** A future dropped while waiting unlinks its node under the lock
//! (`Waiter`'s `Drop`); the notifier follows links only under the lock; so no pointer to a
//! dropped node is ever followed. A notifier that took a node's waker holds it by value (the
//! node is already out of the list): waking it after the future is gone is harmless.
//!
//! **Wakers are woken outside the lock**, at most [`WAKE_BATCH`] at a time: a `wake` may run
//! executor code, which must not find the lock held (it may poll a future that registers
//! again). `notify` wakes at most the tasks registered when it took the lock: later ones
//! registered after its change and saw it themselves, so the loop is bounded.

use super::Waiters;
use crate::sync::{self, fence, AtomicUsize, MutexGuard, Ordering, UnsafeCell};
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Poll, Waker};

/// A notifier takes at most this many wakers out of the list before it releases the lock to
/// wake them.
pub const WAKE_BATCH: usize = 32;

/// The tasks registered in one [`Waiters`], oldest first: an intrusive list through the
/// [`Waiter`]s of the waiting futures. Read and changed only with the `Waiters`' lock held.
#[derive(Debug, Default)]
pub struct Tasks {
    head: Option<NonNull<Node>>,
    tail: Option<NonNull<Node>>,
    len: usize,
}

// SAFETY: `Tasks` is the data of the `Waiters` mutex and is only used with it held. Its
// pointers lead to nodes that are alive while linked (a `Waiter` unlinks its node under that
// lock before the node goes away: its `Drop`), and what the list reaches through them is
// `Waker`s (Send + Sync) and other links. So another thread may hold and use it under the lock.
unsafe impl Send for Tasks {}

/// A task's place in a [`Tasks`] list.
struct Node {
    /// Only ever accessed with the list's lock held (owner and notifier alike).
    links: UnsafeCell<Links>,
    /// The list points at the node: it must not move while linked.
    _pinned: PhantomPinned,
}

// SAFETY: every access to `links` (the node's only data) is made with the lock of the list the
// node belongs to held, from whichever thread: the lock serialises them.
unsafe impl Send for Node {}
// SAFETY: as for `Send`: shared access goes through `links` under the lock only.
unsafe impl Sync for Node {}

#[derive(Default)]
struct Links {
    prev: Option<NonNull<Node>>,
    next: Option<NonNull<Node>>,
    /// The task to wake; taken out when the node is unlinked by a notifier.
    waker: Option<Waker>,
    /// In the list now.
    linked: bool,
}

/// Runs `f` on `node`'s links.
///
/// # Safety
///
/// The lock of the `Waiters` list `node` belongs to is held by the caller, and `node` is alive.
/// No other `links` call is active (they do not nest).
unsafe fn links<R>(node: NonNull<Node>, f: impl FnOnce(&mut Links) -> R) -> R {
    // SAFETY: the node is alive (caller), so the shared reference is valid; it is only used to
    // reach the `UnsafeCell`.
    let node = unsafe { node.as_ref() };
    node.links.with_mut(|l| {
        // SAFETY: the lock of the node's list is held (caller), and every access to `links`
        // is made with it held and does not nest: this exclusive reference is the only one
        // for the closure's run.
        f(unsafe { &mut *l })
    })
}

impl Tasks {
    /// How many tasks are registered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no task is registered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Links `node` at the back.
    ///
    /// # Safety
    ///
    /// The list's lock is held; `node` is alive, pinned (it stays where it is until unlinked),
    /// and not linked.
    unsafe fn push_back(&mut self, node: NonNull<Node>) {
        let tail = self.tail;
        // SAFETY: the caller's contract; `tail` is linked, so alive.
        unsafe {
            links(node, |l| {
                debug_assert!(!l.linked);
                l.prev = tail;
                l.next = None;
                l.linked = true;
            });
            match tail {
                Some(t) => links(t, |l| l.next = Some(node)),
                None => self.head = Some(node),
            }
        }
        self.tail = Some(node);
        self.len += 1;
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    ///
    /// The list's lock is held; `node` is alive and linked in this list.
    unsafe fn unlink(&mut self, node: NonNull<Node>) {
        // SAFETY: the caller's contract; `prev` and `next` are linked, so alive.
        unsafe {
            let (prev, next) = links(node, |l| {
                debug_assert!(l.linked);
                l.linked = false;
                (l.prev.take(), l.next.take())
            });
            match prev {
                Some(p) => links(p, |l| l.next = next),
                None => self.head = next,
            }
            match next {
                Some(n) => links(n, |l| l.prev = prev),
                None => self.tail = prev,
            }
        }
        self.len -= 1;
    }

    /// Unlinks the oldest node and takes its waker out.
    ///
    /// # Safety
    ///
    /// The list's lock is held.
    unsafe fn pop_front(&mut self) -> Option<Option<Waker>> {
        let node = self.head?;
        // SAFETY: lock held (caller); a linked node is alive.
        unsafe {
            self.unlink(node);
            Some(links(node, |l| l.waker.take()))
        }
    }
}

impl Waiters {
    /// The second half of [`notify`](Self::notify), with the lock held and the condition
    /// variable notified: unlinks the registered tasks and wakes them, outside the lock,
    /// [`WAKE_BATCH`] at a time (module docs).
    pub(super) fn wake_tasks<'a>(&'a self, mut tasks: MutexGuard<'a, Tasks>) {
        // The tasks registered now; any registered later saw the change themselves.
        let mut left = tasks.len;
        while left > 0 {
            let mut batch: [Option<Waker>; WAKE_BATCH] = Default::default();
            let mut taken = 0;
            while taken < WAKE_BATCH && left > 0 {
                // SAFETY: the lock is held (`tasks` is its guard).
                let Some(waker) = (unsafe { tasks.pop_front() }) else {
                    break;
                };
                // Relaxed: under the lock; `count` is read by notifiers after their fence,
                // and a notifier that still counts this task only takes the lock in vain.
                self.count.fetch_sub(1, Ordering::Relaxed);
                batch[taken] = waker;
                taken += 1;
                left -= 1;
            }
            drop(tasks);
            for waker in batch.iter_mut().take(taken).filter_map(Option::take) {
                waker.wake();
            }
            if left == 0 || taken == 0 {
                return;
            }
            tasks = sync::lock(&self.lock);
            // Some may have deregistered meanwhile (their futures completed or were dropped).
            left = left.min(tasks.len);
        }
    }

    /// How many tasks are registered now (a snapshot, for tests and models).
    pub fn tasks(&self) -> usize {
        sync::lock(&self.lock).len()
    }

    /// The waiter count notifiers check (threads in `wait` plus registered tasks): a snapshot,
    /// for tests and models, which check it returns to 0.
    pub fn waiting(&self) -> usize {
        // Relaxed: a snapshot; the models read it after joining every thread.
        self.count.load(Ordering::Relaxed)
    }
}

/// Leads a [`Waiter`] to its [`Waiters`] list.
///
/// # Safety
///
/// [`waiters`](Self::waiters) returns the same list every time it is called on one value, and
/// that list lives at least as long as the value: a `Waiter` must find the list its node is
/// linked in to unlink it.
pub unsafe trait WaitList {
    /// The list.
    fn waiters(&self) -> &Waiters;
}

// SAFETY: a reference leads to the same value every time, and the value outlives it.
unsafe impl WaitList for &Waiters {
    fn waiters(&self) -> &Waiters {
        self
    }
}

/// A future's registration in a [`Waiters`] list: where its task waits for a condition another
/// thread changes (space in the ring, the writer's done position, an append). Lives in the
/// future, pinned with it; unlinks itself on drop. See the module docs.
pub struct Waiter<L: WaitList> {
    list: L,
    node: Node,
    /// Whether `node` may be linked: set when it is linked by `poll_until`, cleared when it is
    /// unlinked by the owner (a notifier unlinks it without clearing this: the next
    /// `deregister` then finds it unlinked under the lock). Spares a future that never waited
    /// the lock.
    registered: bool,
}

impl<L: WaitList> std::fmt::Debug for Waiter<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl<L: WaitList> Waiter<L> {
    /// A waiter on `list`, not registered.
    pub fn new(list: L) -> Self {
        Waiter {
            list,
            node: Node {
                links: UnsafeCell::new(Links::default()),
                _pinned: PhantomPinned,
            },
            registered: false,
        }
    }

    /// The list this waiter waits on.
    pub fn list(&self) -> &L {
        &self.list
    }

    /// Splits the pinned waiter into its list, its node (as the pointer the list keeps) and its
    /// registered flag.
    fn project(self: Pin<&mut Self>) -> (&L, NonNull<Node>, &mut bool) {
        // SAFETY: `node` is structurally pinned and this hands out only a pointer to it, never
        // moving it; `list` and `registered` are not pinned (moving them out would be fine).
        let this = unsafe { self.get_unchecked_mut() };
        (&this.list, NonNull::from(&this.node), &mut this.registered)
    }

    /// Returns `Ready` with what `ready` returns once it returns `Some`; otherwise registers the
    /// task (`waker`) so that the next [`Waiters::notify`] wakes it, and returns `Pending`.
    /// `ready` is called once or twice: before registering, and after (the handshake in the
    /// module docs). It runs without the lock held. On `Ready` the waiter is deregistered.
    pub fn poll_until<R>(
        mut self: Pin<&mut Self>,
        waker: &Waker,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Poll<R> {
        if let Some(r) = ready() {
            self.cancel();
            return Poll::Ready(r);
        }
        self.as_mut().register(waker);
        // Pairs with the fence in `Waiters::notify`: either `ready()` sees the change the
        // notifier made before its fence, or the notifier's count load sees our registration
        // (made under the lock, before this fence) and it wakes the waker we stored.
        fence(Ordering::SeqCst);
        if let Some(r) = ready() {
            self.cancel();
            return Poll::Ready(r);
        }
        Poll::Pending
    }

    /// Links the node (if a notifier unlinked it, or it never was) and stores `waker` in it
    /// (unless the stored one wakes the same task).
    fn register(self: Pin<&mut Self>, waker: &Waker) {
        let (list, node, registered) = self.project();
        let waiters = list.waiters();
        let replaced = {
            let mut tasks = sync::lock(&waiters.lock);
            // SAFETY: the lock is held; the node is ours, alive and pinned.
            let (linked, replaced) = unsafe {
                links(node, |l| {
                    let replaced = match &l.waker {
                        Some(w) if w.will_wake(waker) => None,
                        _ => l.waker.replace(waker.clone()),
                    };
                    (l.linked, replaced)
                })
            };
            if !linked {
                // SAFETY: the lock is held; the node is alive, pinned (it stays in place until
                // `Drop` unlinks it), and not linked.
                unsafe { tasks.push_back(node) };
                // Relaxed: under the lock, before our SeqCst fence in `poll_until`, which
                // orders it before our `ready()` (module docs).
                waiters.count.fetch_add(1, Ordering::Relaxed);
            }
            replaced
        };
        *registered = true;
        // Dropped without the lock held: dropping a waker may run executor code.
        drop(replaced);
    }

    /// Deregisters: unlinks the node if it is linked and drops its waker. Nothing to do (no
    /// lock taken) if the waiter never registered. A waiter that is dropped does this itself.
    pub fn cancel(self: Pin<&mut Self>) {
        let (list, node, registered) = self.project();
        if !*registered {
            return;
        }
        let waiters = list.waiters();
        let waker = {
            let mut tasks = sync::lock(&waiters.lock);
            // SAFETY: the lock is held; the node is ours and alive.
            let (linked, waker) = unsafe { links(node, |l| (l.linked, l.waker.take())) };
            if linked {
                // SAFETY: the lock is held; the node is alive and linked in this list.
                unsafe { tasks.unlink(node) };
                // Relaxed: see `wake_tasks`.
                waiters.count.fetch_sub(1, Ordering::Relaxed);
            }
            waker
        };
        *registered = false;
        drop(waker);
    }
}

impl<L: WaitList> Drop for Waiter<L> {
    fn drop(&mut self) {
        // SAFETY: a waiter being dropped is not moved again; when it was pinned it is still
        // where it was pinned (the drop guarantee), which is where the list points.
        unsafe { Pin::new_unchecked(self) }.cancel();
    }
}

/// What a follower of a log waits on: the appends of a writer in this process to that log
/// (the log's `SegmentLog` announces each one), and writers attaching and detaching.
///
/// ```text
/// writer (after an append)               follower (Follow::poll_next_entry)
/// generation += 1 (Release RMW)          seen = generation (Acquire)
/// waiters.notify()                       read the log: nothing new
///                                        waiter.poll_until(|| generation != seen)
/// ```
///
/// The follower reads `generation` before it reads the log, so an append it did not see in
/// the file has its bump after `seen`, and the handshake of [`Waiters`] does the rest: the
/// follower's re-check sees the bump, or the writer's `notify` wakes it.
#[derive(Debug)]
pub struct Appended {
    /// Bumped after every append, attach and detach.
    generation: AtomicUsize,
    /// How many writers in this process have the log open (0 or 1: a log has one writer).
    writers: AtomicUsize,
    /// Followers waiting for the next bump.
    pub waiters: Waiters,
}

impl Default for Appended {
    fn default() -> Self {
        Self::new()
    }
}

impl Appended {
    /// No writer, nothing appended.
    pub fn new() -> Self {
        Appended {
            generation: AtomicUsize::new(0),
            writers: AtomicUsize::new(0),
            waiters: Waiters::new(),
        }
    }

    /// The number of announcements so far (wrapping): read it before looking at the log.
    pub fn generation(&self) -> usize {
        // Acquire pairs with the Release bump in `bump`: a follower that sees a bump sees the
        // `writers` change made before it.
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a writer in this process has the log open (so it announces its appends).
    pub fn attached(&self) -> bool {
        // Relaxed: read after `generation` (Acquire), which orders it after the change that
        // bumped it; a change after that bumps again and wakes the follower.
        self.writers.load(Ordering::Relaxed) > 0
    }

    /// Writer side, after an append: wakes followers.
    pub fn appended(&self) {
        self.bump();
    }

    /// A writer in this process opened the log.
    pub fn attach(&self) {
        // Relaxed: published by the Release bump that follows.
        self.writers.fetch_add(1, Ordering::Relaxed);
        self.bump();
    }

    /// That writer closed it.
    pub fn detach(&self) {
        // Relaxed: published by the Release bump that follows.
        self.writers.fetch_sub(1, Ordering::Relaxed);
        self.bump();
    }

    fn bump(&self) {
        // Release pairs with the Acquire load in `generation`. The bump is the change followers
        // wait for; `notify`'s fence orders it before its check for waiters (module docs).
        self.generation.fetch_add(1, Ordering::Release);
        self.waiters.notify();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The list's bookkeeping, single-threaded and with a notifier thread; run under Miri too
    //! (`cargo +nightly miri test -p ringwal --lib wake`), which checks the pointer use.
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(StdAtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    fn wakes(c: &Count) -> usize {
        c.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn a_registered_task_is_woken_once_and_unlinked() {
        let waiters = Waiters::new();
        let (c, waker) = counter();
        let mut w = pin!(Waiter::new(&waiters));
        assert!(w.as_mut().poll_until(&waker, || None::<()>).is_pending());
        assert_eq!(waiters.tasks(), 1);
        waiters.notify();
        assert_eq!(wakes(&c), 1);
        assert_eq!(waiters.tasks(), 0);
        // Nothing registered any more: a second notify wakes nobody.
        waiters.notify();
        assert_eq!(wakes(&c), 1);
        // Registers again when polled again.
        assert!(w.as_mut().poll_until(&waker, || None::<()>).is_pending());
        assert_eq!(waiters.tasks(), 1);
        assert_eq!(w.as_mut().poll_until(&waker, || Some(7)), Poll::Ready(7));
        assert_eq!(waiters.tasks(), 0);
        waiters.notify();
        assert_eq!(wakes(&c), 1, "a completed waiter is not woken");
    }

    #[test]
    fn ready_at_once_never_registers() {
        let waiters = Waiters::new();
        let (c, waker) = counter();
        let mut w = pin!(Waiter::new(&waiters));
        assert_eq!(w.as_mut().poll_until(&waker, || Some(1)), Poll::Ready(1));
        assert!(!w.registered);
        assert_eq!(waiters.tasks(), 0);
        // The waker was never cloned.
        assert_eq!(Arc::strong_count(&c), 2);
    }

    #[test]
    fn ready_on_the_second_look_deregisters() {
        let waiters = Waiters::new();
        let (_c, waker) = counter();
        let mut w = pin!(Waiter::new(&waiters));
        let mut looks = 0;
        let r = w.as_mut().poll_until(&waker, || {
            looks += 1;
            (looks == 2).then_some(())
        });
        assert_eq!(r, Poll::Ready(()));
        assert_eq!(waiters.tasks(), 0);
        assert_eq!(waiters.count.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn polling_again_with_the_same_waker_does_not_clone_it() {
        let waiters = Waiters::new();
        let (c, waker) = counter();
        let mut w = pin!(Waiter::new(&waiters));
        for _ in 0..3 {
            assert!(w.as_mut().poll_until(&waker, || None::<()>).is_pending());
        }
        // `waker` and the one stored in the node.
        assert_eq!(Arc::strong_count(&c), 3);
        assert_eq!(waiters.tasks(), 1);
        // Another task's waker replaces it.
        let (c2, waker2) = counter();
        assert!(w.as_mut().poll_until(&waker2, || None::<()>).is_pending());
        assert_eq!(Arc::strong_count(&c), 2);
        assert_eq!(Arc::strong_count(&c2), 3);
        waiters.notify();
        assert_eq!((wakes(&c), wakes(&c2)), (0, 1));
    }

    #[test]
    fn dropped_waiters_leave_the_list_consistent() {
        let waiters = Waiters::new();
        let counters: Vec<_> = (0..5).map(|_| counter()).collect();
        let mut boxed: Vec<_> = counters
            .iter()
            .map(|(_, waker)| {
                let mut w = Box::pin(Waiter::new(&waiters));
                assert!(w.as_mut().poll_until(waker, || None::<()>).is_pending());
                Some(w)
            })
            .collect();
        assert_eq!(waiters.tasks(), 5);
        // Head, middle and tail dropped (cancelled futures).
        for i in [0, 2, 4] {
            boxed[i] = None;
        }
        assert_eq!(waiters.tasks(), 2);
        assert_eq!(waiters.count.load(Ordering::Relaxed), 2);
        waiters.notify();
        let woken: Vec<usize> = counters.iter().map(|(c, _)| wakes(c)).collect();
        assert_eq!(woken, [0, 1, 0, 1, 0]);
        assert_eq!(waiters.count.load(Ordering::Relaxed), 0);
        // The dropped ones gave their wakers back.
        assert_eq!(Arc::strong_count(&counters[0].0), 2);
    }

    #[test]
    fn more_tasks_than_a_batch_are_all_woken() {
        let waiters = Waiters::new();
        let n = 2 * WAKE_BATCH + 5;
        let counters: Vec<_> = (0..n).map(|_| counter()).collect();
        let mut ws: Vec<_> = (0..n).map(|_| Box::pin(Waiter::new(&waiters))).collect();
        for (w, (_, waker)) in ws.iter_mut().zip(&counters) {
            assert!(w.as_mut().poll_until(waker, || None::<()>).is_pending());
        }
        assert_eq!(waiters.tasks(), n);
        waiters.notify();
        assert!(counters.iter().all(|(c, _)| wakes(c) == 1));
        assert_eq!(waiters.tasks(), 0);
        assert_eq!(waiters.count.load(Ordering::Relaxed), 0);
    }

    /// A waker that, when woken, registers its waiter again (an executor that polls inside
    /// `wake`): `notify` must not hold the lock while waking, nor loop forever.
    #[test]
    fn a_wake_that_registers_again_neither_deadlocks_nor_loops() {
        struct Shared(Arc<Waiters>);
        // SAFETY: an `Arc` leads to the same list every time and keeps it alive.
        unsafe impl WaitList for Shared {
            fn waiters(&self) -> &Waiters {
                &self.0
            }
        }
        struct Reenter {
            waiters: Arc<Waiters>,
            waiter: std::sync::Mutex<Option<Pin<Box<Waiter<Shared>>>>>,
            wakes: StdAtomicUsize,
        }
        impl Wake for Reenter {
            fn wake(self: Arc<Self>) {
                self.wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let waker = Waker::from(self.clone());
                let mut w = self.waiter.lock().unwrap();
                let w =
                    w.get_or_insert_with(|| Box::pin(Waiter::new(Shared(self.waiters.clone()))));
                assert!(w.as_mut().poll_until(&waker, || None::<()>).is_pending());
            }
        }
        let waiters = Arc::new(Waiters::new());
        let r = Arc::new(Reenter {
            waiters: waiters.clone(),
            waiter: std::sync::Mutex::new(None),
            wakes: StdAtomicUsize::new(0),
        });
        Waker::from(r.clone()).wake();
        assert_eq!(waiters.tasks(), 1);
        waiters.notify();
        assert_eq!(r.wakes.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Registered again from inside the wake, after the notify's drain.
        assert_eq!(waiters.tasks(), 1);
        *r.waiter.lock().unwrap() = None;
        assert_eq!(waiters.tasks(), 0);
    }

    /// A notifier on another thread while waiters register, complete and are dropped: every
    /// registered task is woken or deregistered, and the list ends empty.
    #[test]
    fn a_notifier_thread_racing_registrations() {
        let waiters = Arc::new(Waiters::new());
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        let notifier = {
            let (waiters, flag) = (waiters.clone(), flag.clone());
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    waiters.notify();
                }
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                waiters.notify();
            })
        };
        let (c, waker) = counter();
        loop {
            let mut w = Box::pin(Waiter::new(&*waiters));
            let done = w.as_mut().poll_until(&waker, || {
                flag.load(std::sync::atomic::Ordering::SeqCst).then_some(())
            });
            if done.is_ready() {
                break;
            }
            // Dropped here, linked or not.
        }
        notifier.join().unwrap();
        assert_eq!(waiters.tasks(), 0);
        assert_eq!(waiters.count.load(Ordering::Relaxed), 0);
        drop(c);
    }
}
