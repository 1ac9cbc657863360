//! The ring itself. The algorithm and the argument for every ordering are in the crate docs
//! (`lib.rs`, "How it works"); the comments here name, at each atomic access, what it pairs with.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{spin_loop, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

/// One cell of the ring: a stamp that says which position the cell is ready for, and the value.
///
/// The stamp is stored *relative to the slot's index*: for position `p` in slot `p & (N - 1)`,
/// `lap(p) = p & !(N - 1)` means "empty, ready for position `p`", `lap(p) + 1` means "holds the
/// value of position `p`", and `lap(p) + N` (= `lap(p + N)`) means "empty, ready for `p + N`".
/// A fresh ring is therefore all zeros, which is what lets [`Ring::new`] be a `const fn`.
struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Moves the value out.
    ///
    /// # Safety
    /// The caller owns the position this slot holds (it won the `head` CAS for it), the value was
    /// published (its stamp, read with `Acquire`, said "full"), and nobody else reads or writes
    /// the value until the caller stores a new stamp.
    #[inline(always)]
    unsafe fn take(&self) -> T {
        // SAFETY: the caller guarantees exclusive access and an initialised value (see above).
        self.value.with(|p| unsafe { (*p).assume_init_read() })
    }

    /// Writes a value into the empty slot.
    ///
    /// # Safety
    /// The caller owns the position (it won the `tail` CAS, or evicted the previous occupant and
    /// so holds the slot), the previous value (if any) has been moved out, and nobody else touches
    /// the value until the caller stores the "full" stamp.
    #[inline(always)]
    unsafe fn put(&self, value: T) {
        // SAFETY: the caller guarantees exclusive access (see above); the slot holds no live value.
        self.value.with_mut(|p| unsafe { (*p).write(value) });
    }
}

/// The error of [`Ring::try_push`]: the ring had no free slot. Holds the value, untouched.
///
/// ```
/// use ringwal_core::{Full, Ring};
/// let ring: Ring<&str, 2> = Ring::new();
/// ring.try_push("a").unwrap();
/// ring.try_push("b").unwrap();
/// let Full(back) = ring.try_push("c").unwrap_err();
/// assert_eq!(back, "c");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// Gives the value back.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring is full")
    }
}

impl<T> core::error::Error for Full<T> {}

/// The consumer's private cursor: where it will read next, and how many positions it has found
/// evicted on its way. Lives in [`Consumer`] or, with `alloc`, in `Receiver`.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// Next position to read. Equal to or behind the shared `head` (evictions move `head` on).
    pub(crate) head: usize,
    /// Positions this cursor stepped over because `force_push` evicted them.
    pub(crate) evicted: u64,
}

/// A bounded, lock-free, multi-producer single-consumer ring of `N` slots.
///
/// `N` must be a power of two and at least 2; anything else fails to compile. Any thread may
/// push through a shared `&Ring` (or a `static`); one [`Consumer`] at a time pops.
///
/// ```
/// use ringwal_core::Ring;
///
/// static EVENTS: Ring<u32, 8> = Ring::new();
///
/// EVENTS.try_push(1).unwrap();
/// EVENTS.try_push(2).unwrap();
/// let mut consumer = EVENTS.consumer().expect("first consumer");
/// assert_eq!(consumer.pop(), Some(1));
/// assert_eq!(consumer.drain().collect::<Vec<_>>(), [2]);
/// ```
///
/// A capacity that is not a power of two does not compile:
///
/// ```compile_fail
/// let ring: ringwal_core::Ring<u8, 3> = ringwal_core::Ring::new();
/// ```
pub struct Ring<T, const N: usize = 4096> {
    /// Next position to read. Advanced by CAS, by the consumer (`pop`) and by `force_push` when
    /// it evicts; never by anything else. Shares its line with the rarely-touched consumer flag.
    head: CachePadded<HeadSide>,
    /// Next position to write. Advanced by CAS by producers, or by a plain store by a
    /// `force_push` that evicted (see `force_push` for why nobody else can move it then).
    tail: CachePadded<AtomicUsize>,
    slots: [Slot<T>; N],
}

struct HeadSide {
    head: AtomicUsize,
    /// Whether a `Consumer` (or `Receiver`) is alive.
    consumer: AtomicBool,
    /// Where the last consumer's cursor stopped, so the next one starts there and counts the
    /// evictions in between (otherwise they would go unreported across a hand-off).
    resume: AtomicUsize,
}

// SAFETY: the ring moves `T` values between threads (a producer writes one, the consumer or an
// evicting producer takes it), so `T: Send` is needed and enough: a value is only ever accessed by
// the one thread that owns its position (see the crate docs), never shared, so `T: Sync` is not.
unsafe impl<T: Send, const N: usize> Sync for Ring<T, N> {}
// SAFETY: as above; sending the ring sends the values it holds.
unsafe impl<T: Send, const N: usize> Send for Ring<T, N> {}

impl<T, const N: usize> Ring<T, N> {
    const MASK: usize = N - 1;

    /// Evaluated by every constructor, so a bad `N` is a compile error, not a runtime panic.
    const VALID_CAPACITY: () = assert!(
        N >= 2 && N.is_power_of_two() && N <= 1 << (usize::BITS - 2),
        "Ring capacity N must be a power of two, at least 2"
    );

    /// An empty ring. `const`, so it can be a `static` and be pushed to from interrupt handlers.
    ///
    /// The ring holds its slots inline: `Ring<T, N>` is about `N * (size_of::<T>() + 8)` bytes,
    /// so put large rings in a `static` or behind an `Arc`/`Box`, not on a small stack.
    ///
    /// ```
    /// static RING: ringwal_core::Ring<u64> = ringwal_core::Ring::new();
    /// assert_eq!(RING.capacity(), 4096);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_CAPACITY;
        Ring {
            head: CachePadded::new(HeadSide {
                head: AtomicUsize::new(0),
                consumer: AtomicBool::new(false),
                resume: AtomicUsize::new(0),
            }),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: [const { Slot::new() }; N],
        }
    }

    /// An empty ring (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_CAPACITY;
        Ring {
            head: CachePadded::new(HeadSide {
                head: AtomicUsize::new(0),
                consumer: AtomicBool::new(false),
                resume: AtomicUsize::new(0),
            }),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: core::array::from_fn(|_| Slot::new()),
        }
    }

    /// An empty ring whose position counters start at `position` instead of 0.
    ///
    /// Only for tests: it lets the model tests and the loom models run a ring across the
    /// `usize::MAX` wrap of its counters without pushing 2^64 values first.
    #[doc(hidden)]
    pub fn new_at(position: usize) -> Self {
        let ring = Self::new();
        ring.head.head.store(position, Ordering::Relaxed);
        ring.head.resume.store(position, Ordering::Relaxed);
        ring.tail.store(position, Ordering::Relaxed);
        for i in 0..N {
            // The first position at or after `position` that lands in slot `i`.
            let p = position.wrapping_add(i.wrapping_sub(position) & Self::MASK);
            ring.slots[i].stamp.store(Self::lap(p), Ordering::Relaxed);
        }
        // Not yet shared: the caller publishes the ring by moving it, which gives the
        // happens-before edge for these relaxed stores (a spawn, a `static` initialiser, an Arc).
        ring
    }

    #[inline(always)]
    fn lap(position: usize) -> usize {
        position & !Self::MASK
    }

    #[inline(always)]
    fn slot(&self, position: usize) -> &Slot<T> {
        // Masking keeps the index in bounds; the compiler sees it and drops the bounds check.
        &self.slots[position & Self::MASK]
    }

    /// The number of slots, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many values the ring holds: a snapshot, exact when no push or pop runs concurrently.
    pub fn len(&self) -> usize {
        // Relaxed: a snapshot with no ordering promise. Reading head first means pops that land
        // in between can only make the difference larger, and the clamp bounds that.
        let head = self.head.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let len = tail.wrapping_sub(head);
        if (len as isize) < 0 {
            0
        } else {
            len.min(N)
        }
    }

    /// The producers' position: how many pushes have claimed a slot since the ring was created
    /// (`try_push` that succeeded plus every `force_push`), wrapping at `usize::MAX`.
    ///
    /// A snapshot. A push that returned before this call is always counted (it happens-before
    /// the load); one still running may or may not be. The std writer uses it as a flush target:
    /// it waits until the consumer's position (values popped plus values evicted) reaches it.
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// ring.try_push(1).unwrap();
    /// ring.force_push(2);
    /// ring.force_push(3); // evicts 1
    /// assert_eq!(ring.pushed(), 3);
    /// ```
    pub fn pushed(&self) -> usize {
        // Relaxed: a snapshot. Coherence alone makes a push that happens-before this load
        // visible to it; nothing is read through this value.
        self.tail.load(Ordering::Relaxed)
    }

    /// Whether [`len`](Self::len) is 0 (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`len`](Self::len) is `N` (a snapshot).
    pub fn is_full(&self) -> bool {
        self.len() == N
    }

    /// Pushes `value`, or returns it in [`Full`] if the ring has no free slot.
    ///
    /// Any thread, any number of threads at once. Never waits for another thread: it either
    /// claims a slot or reports `Full` (it retries only when another producer claimed the same
    /// slot first, so some push always makes progress). That makes it safe to call from an
    /// interrupt handler that may have preempted the consumer or another producer.
    ///
    /// "No free slot" means the slot this push would use still holds a value: the ring holds `N`
    /// values, or the consumer has claimed the oldest and is in the few instructions between
    /// claiming and freeing its slot.
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// assert!(ring.try_push(1).is_ok());
    /// assert!(ring.try_push(2).is_ok());
    /// assert_eq!(ring.try_push(3).unwrap_err().into_inner(), 3);
    /// ```
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), Full<T>> {
        self.push_or_full(value, None)
    }

    /// [`try_push`](Self::try_push) for a caller that brackets its pushes with an in-flight
    /// counter (incremented before the push, so that another thread can wait until no push can
    /// still *claim* a position): decrements `in_flight` by one, with `Release`, exactly once —
    /// as soon as the position is claimed, before the value is written, or before returning
    /// `Full`. Every other write to the counter must be a read-modify-write (`fetch_add`,
    /// `fetch_sub`), so the decrements stay in one release sequence; a plain `store` breaks the
    /// guarantee below.
    ///
    /// Decrementing after the push returned would be the same protocol, but that read-modify-write
    /// would wait for the value's cache line to arrive, which the consumer has usually just read:
    /// a cache-line transfer on every push (the std writer's emit latency halved when it moved
    /// here). A thread that sees the decrement (with `Acquire`) sees the claimed position in
    /// [`pushed`](Self::pushed); the value is published a few instructions later (no user code
    /// runs in between), so a consumer that must not miss it waits until its position reaches
    /// `pushed()`.
    ///
    /// ```
    /// use core::sync::atomic::{AtomicUsize, Ordering};
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// let in_flight = AtomicUsize::new(0);
    /// for v in 1..=3 {
    ///     in_flight.fetch_add(1, Ordering::SeqCst);
    ///     let pushed = ring.try_push_releasing(v, &in_flight).is_ok();
    ///     assert_eq!(pushed, v < 3); // the third finds the ring full
    ///     assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    /// }
    /// ```
    #[inline]
    pub fn try_push_releasing(&self, value: T, in_flight: &AtomicUsize) -> Result<(), Full<T>> {
        self.push_or_full(value, Some(in_flight))
    }

    /// Decrements the caller's in-flight counter, if any (see `try_push_releasing`).
    #[inline(always)]
    fn release(in_flight: Option<&AtomicUsize>) {
        if let Some(counter) = in_flight {
            // Release pairs with the Acquire load of whoever waits on the counter: the claim
            // (our `tail` CAS or store) happens-before its load of `tail` after it sees this.
            counter.fetch_sub(1, Ordering::Release);
        }
    }

    #[inline(always)]
    fn push_or_full(&self, value: T, in_flight: Option<&AtomicUsize>) -> Result<(), Full<T>> {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(tail);
            let lap = Self::lap(tail);
            // Acquire pairs with the Release stamp store that freed this slot (in `pop` or in an
            // evicting `force_push`): once we see "empty for `tail`", the previous occupant has
            // been moved out, so our write below cannot race that read.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let ahead = stamp.wrapping_sub(lap) as isize;
            if ahead == 0 {
                // Relaxed: the CAS only decides which producer owns position `tail`; the value's
                // visibility is carried by the stamp store below, not by `tail`.
                match self.tail.compare_exchange_weak(
                    tail,
                    tail.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        Self::release(in_flight);
                        // SAFETY: winning the CAS made position `tail` ours alone, and its slot is
                        // empty (stamp == lap, read with Acquire after the last take).
                        unsafe { slot.put(value) };
                        // Release pairs with the consumer's (or an evicting force_push's) Acquire
                        // stamp load: whoever sees "full" sees the value written above.
                        slot.stamp.store(lap.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => tail = current,
                }
            } else if ahead < 0 {
                // The slot still holds the value of position `tail - N`: no free slot.
                Self::release(in_flight);
                return Err(Full(value));
            } else {
                // Another producer claimed `tail` already; catch up with the tail.
                spin_loop();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Pushes `value`; if the ring is full, evicts the oldest value and returns it.
    ///
    /// The drop-oldest policy. Safe against a concurrent `pop` and other `force_push`es: each
    /// value is taken exactly once, by the consumer or by exactly one evicting `force_push`, and
    /// the consumer learns how many it missed ([`Consumer::evicted`]).
    ///
    /// Progress: when the ring is full, this needs the oldest position to be settled. If its
    /// owner is in the middle of its few instructions — the consumer moving the value out, a
    /// producer writing it, another `force_push` evicting — this spins until the owner finishes
    /// (no user code runs in those windows). So a caller that can *preempt* the consumer or a
    /// producer of the same ring (an interrupt handler) must use [`try_push`](Self::try_push).
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// assert_eq!(ring.force_push(1), None);
    /// assert_eq!(ring.force_push(2), None);
    /// assert_eq!(ring.force_push(3), Some(1)); // 1 was the oldest
    /// let mut c = ring.consumer().unwrap();
    /// assert_eq!(c.pop(), Some(2));
    /// assert_eq!(c.evicted(), 1);
    /// ```
    #[inline]
    pub fn force_push(&self, value: T) -> Option<T> {
        self.push_or_evict(value, None)
    }

    /// [`force_push`](Self::force_push) with an in-flight counter, as
    /// [`try_push_releasing`](Self::try_push_releasing): decrements `in_flight` by one, with
    /// `Release`, exactly once, once the position is claimed and before it is published.
    ///
    /// ```
    /// use core::sync::atomic::{AtomicUsize, Ordering};
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// let in_flight = AtomicUsize::new(0);
    /// for v in 1..=3 {
    ///     in_flight.fetch_add(1, Ordering::SeqCst);
    ///     let evicted = ring.force_push_releasing(v, &in_flight);
    ///     assert_eq!(evicted, if v == 3 { Some(1) } else { None });
    ///     assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    /// }
    /// ```
    #[inline]
    pub fn force_push_releasing(&self, value: T, in_flight: &AtomicUsize) -> Option<T> {
        self.push_or_evict(value, Some(in_flight))
    }

    #[inline(always)]
    fn push_or_evict(&self, value: T, in_flight: Option<&AtomicUsize>) -> Option<T> {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(tail);
            let lap = Self::lap(tail);
            // Acquire: as in `try_push` (pairs with the Release store that freed the slot), and
            // also with the producer's Release "full" store: if we evict, we read that value.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == lap {
                // Relaxed: ownership of `tail` only; visibility is carried by the stamp.
                match self.tail.compare_exchange_weak(
                    tail,
                    tail.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        Self::release(in_flight);
                        // SAFETY: as in `try_push`: position `tail` is ours and its slot empty.
                        unsafe { slot.put(value) };
                        // Release: pairs with the taker's Acquire stamp load.
                        slot.stamp.store(lap.wrapping_add(1), Ordering::Release);
                        return None;
                    }
                    Err(current) => {
                        tail = current;
                        continue;
                    }
                }
            }
            if stamp.wrapping_sub(lap) as isize > 0 {
                // Another producer claimed `tail` already; catch up with the tail.
                spin_loop();
                tail = self.tail.load(Ordering::Relaxed);
                continue;
            }
            // Behind: the slot still holds position `oldest = tail - N`. The tail cannot move
            // past `tail` until that slot is freed, so from here on we re-read only the stamp.
            let oldest = tail.wrapping_sub(N);
            if stamp == lap.wrapping_sub(N).wrapping_add(1)
                // Published: the ring is full. Evict `oldest` if nobody has claimed it.
                // Relaxed: only compared, then confirmed by the CAS, which is what decides.
                && self.head.head.load(Ordering::Relaxed) == oldest
                // Relaxed: the CAS decides who owns `oldest` (the consumer CASes the same word);
                // the value's visibility came with the Acquire stamp load above.
                && self
                    .head
                    .head
                    .compare_exchange(
                        oldest,
                        oldest.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                // We own `oldest`. Its slot is not freed (only its owner, us, frees it), so no
                // producer has seen "empty for `tail`", so none has claimed `tail`: the tail is
                // exactly `tail` and only we may move it. We take the old value, write ours
                // into the same slot as position `tail`, and publish both.
                // SAFETY: we own `oldest` (head CAS) and saw its "full" stamp with Acquire.
                let old = unsafe { slot.take() };
                // SAFETY: the slot is ours until we store a stamp; `old` was moved out.
                unsafe { slot.put(value) };
                // Relaxed: no CAS on `tail` can succeed meanwhile (see above), and no reader
                // needs anything from `tail` but its value. Stored before the stamp so that a
                // producer that sees the new stamp and reloads the tail finds it moved on.
                self.tail.store(tail.wrapping_add(1), Ordering::Relaxed);
                // After the `tail` store: whoever sees the decrement must see the claim.
                Self::release(in_flight);
                // Release: pairs with the consumer's Acquire stamp load, which must then see
                // both our value and our head CAS (so it counts `oldest` as evicted).
                slot.stamp.store(lap.wrapping_add(1), Ordering::Release);
                return Some(old);
            }
            // The owner of `oldest` (a producer still writing it, the consumer or another
            // force_push moving it out) is mid-way: a few instructions. Look at the stamp again.
            spin_loop();
        }
    }

    /// Claims the consumer side. `None` while another [`Consumer`] (or `Receiver`) is alive;
    /// dropping it frees the claim, and the next consumer continues where it stopped.
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 4> = ringwal_core::Ring::new();
    /// let first = ring.consumer().unwrap();
    /// assert!(ring.consumer().is_none());
    /// drop(first);
    /// assert!(ring.consumer().is_some());
    /// ```
    pub fn consumer(&self) -> Option<Consumer<'_, T, N>> {
        let cursor = self.claim_consumer()?;
        Some(Consumer {
            ring: self,
            cursor,
            _not_sync: PhantomData,
        })
    }

    pub(crate) fn claim_consumer(&self) -> Option<Cursor> {
        // Acquire pairs with the Release store in `release_consumer`: the new consumer starts
        // from at least the head the previous one left (its last head CAS happens-before).
        self.head
            .consumer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(Cursor {
            // Relaxed: written by the previous consumer before its Release store of the flag,
            // which our Acquire CAS above read, so we see its final cursor. Evictions since then
            // are counted by our first pop, as the cursor steps over them.
            head: self.head.resume.load(Ordering::Relaxed),
            evicted: 0,
        })
    }

    pub(crate) fn release_consumer(&self, cursor: &Cursor) {
        // Relaxed: published by the Release store below.
        self.head.resume.store(cursor.head, Ordering::Relaxed);
        // Release pairs with the Acquire CAS in `claim_consumer`.
        self.head.consumer.store(false, Ordering::Release);
    }

    /// Pops the value at the cursor, stepping over (and counting) evicted positions.
    #[inline(always)]
    pub(crate) fn pop_with(&self, cursor: &mut Cursor) -> Option<T> {
        let mut head = cursor.head;
        let result = loop {
            let slot = self.slot(head);
            let lap = Self::lap(head);
            // Acquire pairs with the producer's Release "full" store (so the value is visible),
            // and with an evicting force_push's Release store (so its head CAS is visible to the
            // head load below when the stamp shows the slot already moved on).
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == lap.wrapping_add(1) {
                // Relaxed: the CAS only arbitrates ownership of `head` against force_push.
                match self.head.head.compare_exchange(
                    head,
                    head.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: we own position `head` (CAS) and saw its "full" stamp (Acquire).
                        let value = unsafe { slot.take() };
                        // Release pairs with the next producer's Acquire stamp load: our read of
                        // the value happens-before its write into this slot.
                        slot.stamp.store(lap.wrapping_add(N), Ordering::Release);
                        head = head.wrapping_add(1);
                        break Some(value);
                    }
                    Err(current) => {
                        // Only force_push moves head besides us: each step is one eviction.
                        cursor.evicted += current.wrapping_sub(head) as u64;
                        head = current;
                    }
                }
            } else {
                // Not published for `head`: either nothing is there yet, or `head` was evicted
                // (then its evictor's head CAS happens-before the stamp we read, so this load
                // sees head moved on). Relaxed: that happens-before edge is all we need.
                let current = self.head.head.load(Ordering::Relaxed);
                if current == head {
                    break None;
                }
                cursor.evicted += current.wrapping_sub(head) as u64;
                head = current;
            }
        };
        cursor.head = head;
        result
    }
}

impl<T, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> fmt::Debug for Ring<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &N)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T, const N: usize> Drop for Ring<T, N> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can touch the ring; whatever made it ours (a join, the
        // last Arc drop) gives the happens-before edge, so Relaxed loads see the final state.
        let mut position = self.head.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        while position != tail {
            let slot = self.slot(position);
            // Every position in [head, tail) was published (no push stops between claiming and
            // publishing: nothing in between can panic). Check anyway: leaking beats UB.
            if slot.stamp.load(Ordering::Relaxed) == Self::lap(position).wrapping_add(1) {
                // SAFETY: `&mut self` gives exclusive access, and the stamp says the slot holds
                // the initialised value of `position`, which nobody has taken.
                drop(unsafe { slot.take() });
            }
            position = position.wrapping_add(1);
        }
    }
}

/// The single consumer of a [`Ring`]: pops values in order. `Send`, not `Sync`, not `Clone`.
///
/// Obtained from [`Ring::consumer`]; at most one exists per ring at a time.
pub struct Consumer<'a, T, const N: usize = 4096> {
    ring: &'a Ring<T, N>,
    cursor: Cursor,
    _not_sync: PhantomData<Cell<()>>,
}

impl<'a, T, const N: usize> Consumer<'a, T, N> {
    /// Pops the oldest value, or `None` if there is none ready.
    ///
    /// `None` also when the oldest position is claimed by a producer that has not finished
    /// writing it: the consumer never waits for a producer; call again later. Values behind that
    /// position stay queued until it is published (per-position order is the ring's order).
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 4> = ringwal_core::Ring::new();
    /// let mut c = ring.consumer().unwrap();
    /// assert_eq!(c.pop(), None);
    /// ring.try_push(7).unwrap();
    /// assert_eq!(c.pop(), Some(7));
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.ring.pop_with(&mut self.cursor)
    }

    /// An iterator that pops what is ready, in order: it stops at the first position that is
    /// empty or whose producer has not finished writing it, and after at most `N` values (one
    /// ring's worth), so it ends even while producers keep pushing. Values pushed while it runs
    /// may be included. Dropping it early leaves the rest in the ring.
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 4> = ringwal_core::Ring::new();
    /// let mut c = ring.consumer().unwrap();
    /// ring.try_push(1).unwrap();
    /// ring.try_push(2).unwrap();
    /// let batch: Vec<u8> = c.drain().collect();
    /// assert_eq!(batch, [1, 2]);
    /// ```
    pub fn drain(&mut self) -> Drain<'_, T, N> {
        Drain::new(self.ring, &mut self.cursor)
    }

    /// How many values `force_push` evicted before this consumer reached them, counted from where
    /// the previous consumer of the ring stopped (or from the start), so no eviction goes
    /// unreported across a hand-off.
    ///
    /// It grows only inside [`pop`](Self::pop) and [`drain`](Self::drain), as the consumer steps
    /// over evicted positions, so for a `pop` that returns a value, the growth since the previous
    /// value is exactly the number of values evicted between the two: the gap to record.
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// let mut c = ring.consumer().unwrap();
    /// for v in 0..5 { ring.force_push(v); }   // evicts 0, 1, 2
    /// assert_eq!(c.pop(), Some(3));
    /// assert_eq!(c.evicted(), 3);             // three values lost before 3
    /// ```
    pub fn evicted(&self) -> u64 {
        self.cursor.evicted
    }

    /// The ring this consumer reads.
    pub fn ring(&self) -> &'a Ring<T, N> {
        self.ring
    }
}

impl<T, const N: usize> Drop for Consumer<'_, T, N> {
    fn drop(&mut self) {
        self.ring.release_consumer(&self.cursor);
    }
}

impl<T, const N: usize> fmt::Debug for Consumer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("position", &self.cursor.head)
            .field("evicted", &self.cursor.evicted)
            .finish_non_exhaustive()
    }
}

/// The iterator returned by [`Consumer::drain`] (and `Receiver::drain`).
pub struct Drain<'a, T, const N: usize = 4096> {
    ring: &'a Ring<T, N>,
    cursor: &'a mut Cursor,
    /// Values this drain may still yield.
    remaining: usize,
}

impl<'a, T, const N: usize> Drain<'a, T, N> {
    pub(crate) fn new(ring: &'a Ring<T, N>, cursor: &'a mut Cursor) -> Self {
        // At most one ring's worth of values. Bounding by a snapshot of `tail` instead would
        // read the producers' hottest line on every call: a cache miss per batch that made
        // drain 4-5x slower than pop for a consumer keeping up (benches/benches/ring.rs).
        Drain {
            ring,
            cursor,
            remaining: N,
        }
    }
}

impl<T, const N: usize> Iterator for Drain<'_, T, N> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.remaining == 0 {
            return None;
        }
        let value = self.ring.pop_with(self.cursor)?;
        self.remaining -= 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl<T, const N: usize> fmt::Debug for Drain<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("position", &self.cursor.head)
            .field("remaining", &self.remaining)
            .finish()
    }
}
