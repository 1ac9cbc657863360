//! [`Follow`]: a log's live follow, as blocking calls, as a future per entry, and (feature
//! `stream`) as a `futures_core::Stream`; and how a writer of this process announces its
//! appends to it.
//!
//! A writer's log ([`SegmentLog`](crate::SegmentLog)) announces every append to the
//! [`Appended`] of its directory, which followers in the same process find by the directory's
//! canonical path (a process-wide table of weak references). A follower waits on it by the
//! handshake of `signal::Waiters` (`signal::wake`, "Appended"), so it wakes as soon as an
//! append returns, with no timer. A log written by another process announces nothing here:
//! the follower then also looks again every poll interval (default 100 ms) — for the async
//! follow, a helper thread of this process (`ringwal-follow-timer`, started by the first
//! follow that needs it) wakes the task. A writer of this process that opens or closes the
//! log is announced too, so a follower switches between the two as it happens.

use super::{Entry, Iter};
use crate::signal::{Appended, WaitList, Waiter, Waiters};
use std::collections::BinaryHeap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often a follower looks for records a writer of another process appended, by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The poll interval's bounds ([`Follow::poll_interval`] clamps to them).
const MIN_POLL: Duration = Duration::from_millis(1);
const MAX_POLL: Duration = Duration::from_secs(60);

/// The `Appended` of each log directory a writer or follower of this process has open, by
/// canonical path. Weak: an entry lives while a writer or follower holds it.
static LOGS: Mutex<Vec<(PathBuf, Weak<Appended>)>> = Mutex::new(Vec::new());

/// The `Appended` of the log in `dir`, shared by every writer and follower of this process
/// that names the same directory (through any path that resolves to it).
fn appended_for(dir: &Path) -> Arc<Appended> {
    let key = std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf());
    let mut logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    logs.retain(|(_, weak)| weak.strong_count() > 0);
    // `find_map`, not `find`: an entry whose last holder just went may still be listed.
    if let Some(found) = logs
        .iter()
        .find_map(|(path, weak)| (*path == key).then(|| weak.upgrade()).flatten())
    {
        return found;
    }
    let appended = Arc::new(Appended::new());
    logs.push((key, Arc::downgrade(&appended)));
    appended
}

/// A writer's announcements to the followers of its log in this process: attached while it
/// lives, one announcement per append. Held by [`SegmentLog`](crate::SegmentLog).
#[derive(Debug)]
pub(crate) struct Announcer(Arc<Appended>);

impl Announcer {
    /// Attaches to the followers of the log in `dir` (the writer has locked it).
    pub(crate) fn new(dir: &Path) -> Self {
        let appended = appended_for(dir);
        appended.attach();
        Announcer(appended)
    }

    /// After an append: wakes the followers. One fence and one load when nobody follows.
    pub(crate) fn appended(&self) {
        self.0.appended();
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.0.detach();
    }
}

/// The list a follower's task waits in: its log's `Appended` waiters.
struct Followed(Arc<Appended>);

// SAFETY: an `Arc` leads to the same `Appended` (and so the same list) every time, and keeps
// it alive as long as the `Followed` lives.
unsafe impl WaitList for Followed {
    fn waiters(&self) -> &Waiters {
        &self.0.waiters
    }
}

/// A live follow of a log: its records from a starting point, then each record as it is
/// appended, forever (until an error stops it). From [`Reader::follow`](crate::Reader::follow)
/// or [`Iter::follow`].
///
/// Three ways to take the next entry, all `io::Result<Entry>`:
/// - [`next_blocking`](Self::next_blocking) blocks the thread until there is one;
/// - [`next_async`](Self::next_async)`.await` (or [`poll_next_entry`](Self::poll_next_entry))
///   makes the task wait instead;
/// - with the crate feature `stream`, `Follow` is a `futures_core::Stream` (and
///   `FusedStream`), for `StreamExt` and friends.
///
/// **Waking.** A writer in this process wakes its log's followers as each append returns (no
/// polling, no timer). Records a writer in another process appends are found by looking again
/// every [`poll_interval`](Self::poll_interval) (default 100 ms): a blocking follow sleeps
/// that long at most; an async follow is woken by a helper thread of this process
/// (`ringwal-follow-timer`, started by the first follow that needs it, idle otherwise). So a
/// record another process appended is seen within about one interval.
///
/// **Errors** are [`Iter`]'s: retention deleting records before the follower read them is one
/// `Err` (kind `NotFound`), and the follow goes on; any other error is the last item (then
/// `None`, and the stream is terminated).
///
/// **Reading** happens in the call that returns the entry, with ordinary file reads of the log
/// (buffered, 64 KiB at a time): records a writer just appended are in the page cache, so on
/// an async runtime a call costs microseconds. A follower far behind on a cold cache reads
/// from disk in those calls; each returns one entry, so a task yields between them.
///
/// ```
/// use ringwal::{Reader, Writer};
///
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # rt.block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let (writer, emitter) = Writer::builder(dir.path()).start::<String>().unwrap();
/// let mut follow = Reader::open(dir.path()).unwrap().follow();
/// let tail = tokio::spawn(async move {
///     let mut seen = Vec::new();
///     while seen.len() < 3 {
///         let entry = follow.next_async().await.expect("a live follow ends only on an error");
///         seen.push(String::from_utf8(entry.unwrap().payload).unwrap());
///     }
///     seen
/// });
/// for i in 0..3 {
///     emitter.emit_async(format!("event {i}")).await.unwrap();
/// }
/// assert_eq!(tail.await.unwrap(), ["event 0", "event 1", "event 2"]);
/// writer.shutdown().unwrap();
/// # });
/// ```
pub struct Follow {
    iter: Iter,
    appended: Arc<Appended>,
    /// The task's registration on `appended` (allocated once, with the follow: a `Follow` is
    /// `Unpin`).
    waiter: Pin<Box<Waiter<Followed>>>,
    interval: Duration,
    /// The poll timer set for this follow, and the waker it wakes: not set again before it
    /// fires, unless the task changed.
    armed: Option<(Instant, Waker)>,
}

impl std::fmt::Debug for Follow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follow")
            .field("iter", &self.iter)
            .field("writer_attached", &self.writer_attached())
            .field("poll_interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Iter {
    /// Follows the log from where this iterator is: its remaining records, then each new one
    /// as it is appended. See [`Follow`].
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start::<String>().unwrap();
    /// for i in 0..5 {
    ///     emitter.emit(format!("event {i}")).unwrap();
    /// }
    /// emitter.flush().unwrap();
    /// // From record 3 on, live.
    /// let mut follow = ringwal::Reader::open(dir.path()).unwrap().from_seq(3).follow();
    /// assert_eq!(follow.next_blocking().unwrap().unwrap().seq, 3);
    /// assert_eq!(follow.next_blocking().unwrap().unwrap().seq, 4);
    /// emitter.emit("event 5".to_string()).unwrap(); // wakes the follower (same process)
    /// assert_eq!(follow.next_blocking().unwrap().unwrap().payload, b"event 5");
    /// # drop(writer);
    /// ```
    pub fn follow(self) -> Follow {
        let appended = appended_for(&self.dir);
        Follow {
            waiter: Box::pin(Waiter::new(Followed(appended.clone()))),
            appended,
            iter: self,
            interval: DEFAULT_POLL_INTERVAL,
            armed: None,
        }
    }
}

impl Follow {
    /// How often to look for records when no writer of this process has the log open (it is
    /// written by another process, or by none yet): at most this long after an append, the
    /// follower sees it. Clamped to 1 ms ..= 60 s. Default 100 ms (as `ringwal tail -f`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// # let (writer, _emitter) = ringwal::Writer::builder(dir.path()).start::<String>().unwrap();
    /// let follow = ringwal::Reader::open(dir.path())
    ///     .unwrap()
    ///     .follow()
    ///     .poll_interval(Duration::from_millis(10));
    /// assert_eq!(follow.interval(), Duration::from_millis(10));
    /// # drop(writer);
    /// ```
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.clamp(MIN_POLL, MAX_POLL);
        self
    }

    /// The poll interval in use.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a writer of this process has the log open now, so appends wake this follower
    /// (otherwise it polls).
    pub fn writer_attached(&self) -> bool {
        self.appended.attached()
    }

    /// The iterator underneath: [`has_failed`](Iter::has_failed),
    /// [`trailing_gap`](Iter::trailing_gap), [`position`](Iter::position).
    pub fn as_iter(&self) -> &Iter {
        &self.iter
    }

    /// The preamble frames read since the last call ([`Iter::take_preamble`]).
    pub fn take_preamble(&mut self) -> Vec<Vec<u8>> {
        self.iter.take_preamble()
    }

    /// The next entry, blocking the thread until there is one. `None` only after an error
    /// stopped the follow (that error was the item before).
    pub fn next_blocking(&mut self) -> Option<io::Result<Entry>> {
        loop {
            // Before reading: an append we do not see in the file bumps it after this.
            let seen = self.appended.generation();
            if let Some(item) = self.iter.next() {
                return Some(item);
            }
            if self.iter.has_failed() {
                return None;
            }
            let deadline = if self.appended.attached() {
                // Every append wakes us, and a detaching writer too.
                None
            } else {
                Instant::now().checked_add(self.interval)
            };
            let appended = &self.appended;
            appended
                .waiters
                .wait(deadline, || (appended.generation() != seen).then_some(()));
        }
    }

    /// The next entry, as a future: the task waits, the thread does not. `None` only after an
    /// error stopped the follow. Dropping the future cancels the wait and loses nothing.
    pub fn next_async(&mut self) -> impl Future<Output = Option<io::Result<Entry>>> + Send + '_ {
        std::future::poll_fn(move |cx| self.poll_next_entry(cx))
    }

    /// The next entry if there is one now; otherwise registers the task (`cx`'s waker) to be
    /// woken when a writer of this process appends, or, without one, after the poll interval,
    /// and returns `Pending`. `Ready(None)` only after an error stopped the follow. What
    /// [`next_async`](Self::next_async) and the `Stream` implementation poll.
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Entry>>> {
        loop {
            // Before reading: an append we do not see in the file bumps it after this (the
            // handshake in `signal::wake`, "Appended").
            let seen = self.appended.generation();
            if let Some(item) = self.iter.next() {
                self.waiter.as_mut().cancel();
                return Poll::Ready(Some(item));
            }
            if self.iter.has_failed() {
                self.waiter.as_mut().cancel();
                return Poll::Ready(None);
            }
            // Read after `seen`: if a writer attaches or detaches after this, it bumps the
            // generation, and we look again.
            let attached = self.appended.attached();
            let appended = &self.appended;
            let woken = self
                .waiter
                .as_mut()
                .poll_until(cx.waker(), || (appended.generation() != seen).then_some(()));
            if woken.is_ready() {
                // Something was announced since `seen`: read again.
                continue;
            }
            if !attached {
                if let Err(e) = self.arm_timer(cx.waker()) {
                    return Poll::Ready(Some(Err(e)));
                }
            }
            return Poll::Pending;
        }
    }

    /// Has the timer thread wake `waker` one poll interval from now, unless a timer set for
    /// the same task has not fired yet.
    fn arm_timer(&mut self, waker: &Waker) -> io::Result<()> {
        let now = Instant::now();
        if let Some((at, armed)) = &self.armed {
            if *at > now && armed.will_wake(waker) {
                return Ok(());
            }
        }
        let at = now + self.interval;
        timer::wake_at(at, waker.clone())?;
        self.armed = Some((at, waker.clone()));
        Ok(())
    }
}

#[cfg(feature = "stream")]
impl futures_core::Stream for Follow {
    type Item = io::Result<Entry>;

    /// [`Follow::poll_next_entry`].
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_entry(cx)
    }
}

#[cfg(feature = "stream")]
impl futures_core::FusedStream for Follow {
    /// After an error stopped the follow (it was the last item).
    fn is_terminated(&self) -> bool {
        self.iter.has_failed()
    }
}

/// The helper thread that wakes async followers of logs no writer of this process announces:
/// a queue of (deadline, waker), the thread sleeping until the earliest.
mod timer {
    use super::*;
    use std::cmp::Ordering;

    struct Due {
        at: Instant,
        /// Ties broken by arrival.
        seq: u64,
        waker: Waker,
    }

    impl PartialEq for Due {
        fn eq(&self, other: &Self) -> bool {
            (self.at, self.seq) == (other.at, other.seq)
        }
    }
    impl Eq for Due {}
    impl PartialOrd for Due {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Due {
        /// Reversed: `BinaryHeap` is a max-heap; the earliest deadline comes out first.
        fn cmp(&self, other: &Self) -> Ordering {
            (other.at, other.seq).cmp(&(self.at, self.seq))
        }
    }

    #[derive(Default)]
    struct Queue {
        due: BinaryHeap<Due>,
        next_seq: u64,
    }

    struct Timer {
        queue: Mutex<Queue>,
        /// Signalled when a deadline earlier than every queued one arrives.
        earlier: Condvar,
    }

    /// The timer, its thread started on first use.
    static TIMER: Mutex<Option<&'static Timer>> = Mutex::new(None);

    fn timer() -> io::Result<&'static Timer> {
        let mut slot = TIMER.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(timer) = *slot {
            return Ok(timer);
        }
        // Lives as long as the process (as its thread). If the spawn fails, this one small
        // allocation is lost and the next follow tries again.
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            queue: Mutex::new(Queue::default()),
            earlier: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("ringwal-follow-timer".into())
            .spawn(move || run(timer))?;
        *slot = Some(timer);
        Ok(timer)
    }

    /// Wakes `waker` at `at` (or soon after).
    pub(super) fn wake_at(at: Instant, waker: Waker) -> io::Result<()> {
        let timer = timer()?;
        let mut queue = timer.queue.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = queue.due.peek().is_none_or(|d| at < d.at);
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.due.push(Due { at, seq, waker });
        drop(queue);
        if earliest {
            timer.earlier.notify_one();
        }
        Ok(())
    }

    fn run(timer: &'static Timer) {
        let mut wake = Vec::new();
        let mut queue = timer.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while queue.due.peek().is_some_and(|d| d.at <= now) {
                wake.extend(queue.due.pop().map(|d| d.waker));
            }
            if !wake.is_empty() {
                // Woken without the lock held: a wake may run executor code that follows
                // again (and so calls `wake_at`).
                drop(queue);
                wake.drain(..).for_each(Waker::wake);
                queue = timer.queue.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            queue = match queue.due.peek().map(|d| d.at - now) {
                None => timer.earlier.wait(queue).unwrap_or_else(|e| e.into_inner()),
                Some(wait) => {
                    timer
                        .earlier
                        .wait_timeout(queue, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}
