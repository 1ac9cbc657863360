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
pub(crate) struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
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

/// Why [`Consumer::try_pop`] (or `Receiver::try_pop`) returned no value.
///
/// ```
/// use ringwal_core::{Ring, TryPopError};
/// let ring: Ring<u8, 4> = Ring::new();
/// let mut c = ring.consumer().unwrap();
/// assert_eq!(c.try_pop(), Err(TryPopError::Empty));
/// ring.try_push(1).unwrap();
/// assert_eq!(c.try_pop(), Ok(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryPopError {
    /// The ring holds no value: no push has claimed the next position.
    Empty,
    /// A producer (or an evicting `force_push`) has claimed the next position and is still
    /// writing it: a value is on its way, a few instructions from now unless that thread was
    /// preempted. Values pushed after it wait behind it (the ring's order is claim order).
    Pending,
}

impl fmt::Display for TryPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryPopError::Empty => "ring is empty",
            TryPopError::Pending => "the next value is claimed but not yet published",
        })
    }
}

impl core::error::Error for TryPopError {}

/// The consumer's private cursor: where it will read next, and how many positions it has found
/// evicted on its way. Lives in [`Consumer`] or, with `alloc`, in `Receiver`.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// Next position to read. Equal to or behind the shared `head` (evictions move `head` on).
    pub(crate) head: usize,
    /// Positions this cursor stepped over because `force_push` evicted them.
    pub(crate) evicted: u64,
}

/// The two shared position counters, each on its own cache line. Both ring front ends (the
/// inline [`Ring`] and the heap ring behind `channel()`) hold one of these next to their slots.
pub(crate) struct Counters {
    /// Next position to read. Advanced by CAS, by the consumer (`pop`) and by `force_push` when
    /// it evicts; never by anything else. Shares its line with the rarely-touched consumer flag.
    head: CachePadded<HeadSide>,
    /// Next position to write. Advanced by CAS by producers, or by a plain store by a
    /// `force_push` that evicted (see `push_or_evict` for why nobody else can move it then).
    tail: CachePadded<AtomicUsize>,
}

struct HeadSide {
    head: AtomicUsize,
    /// Whether a `Consumer` (or `Receiver`) is alive.
    consumer: AtomicBool,
    /// Where the last consumer's cursor stopped, so the next one starts there and counts the
    /// evictions in between (otherwise they would go unreported across a hand-off).
    resume: AtomicUsize,
}

impl Counters {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Counters {
            head: CachePadded::new(HeadSide {
                head: AtomicUsize::new(0),
                consumer: AtomicBool::new(false),
                resume: AtomicUsize::new(0),
            }),
            tail: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Counters {
            head: CachePadded::new(HeadSide {
                head: AtomicUsize::new(0),
                consumer: AtomicBool::new(false),
                resume: AtomicUsize::new(0),
            }),
            tail: CachePadded::new(AtomicUsize::new(0)),
        }
    }
}

/// The largest capacity a ring may have: positions are compared by wrapping differences read as
/// `isize`, which needs the capacity well inside half the counter range.
pub(crate) const MAX_CAPACITY: usize = 1 << (usize::BITS - 2);

/// One ring, seen through its parts: the counters, the slots and the index mask.
///
/// This is the algorithm. Every push, pop and drop of both front ends is a method here, so the
/// `static` ring and the heap ring run the same code: [`Ring`] builds a `Raw` with the constant
/// mask `N - 1` (which the compiler folds into every index), the heap ring with its run-time
/// mask. Invariant (what makes `slot`'s unchecked index sound): `slots.len()` is a power of two,
/// at least 2 and at most [`MAX_CAPACITY`], and `mask == slots.len() - 1`.
pub(crate) struct Raw<'a, T> {
    counters: &'a Counters,
    slots: &'a [Slot<T>],
    mask: usize,
}

impl<T> Clone for Raw<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Raw<'_, T> {}

impl<'a, T> Raw<'a, T> {
    /// # Panics
    /// In debug builds, if `slots` breaks the invariant above (a bug in a front end).
    #[inline(always)]
    pub(crate) fn new(counters: &'a Counters, slots: &'a [Slot<T>]) -> Self {
        debug_assert!(slots.len().is_power_of_two() && (2..=MAX_CAPACITY).contains(&slots.len()));
        Raw {
            counters,
            slots,
            mask: slots.len().wrapping_sub(1),
        }
    }

    #[inline(always)]
    fn lap(&self, position: usize) -> usize {
        position & !self.mask
    }

    #[inline(always)]
    fn slot(&self, position: usize) -> &'a Slot<T> {
        let index = position & self.mask;
        debug_assert!(index < self.slots.len());
        // Unchecked: for the inline ring the compiler sees the constant length anyway; for the
        // heap ring this saves the bounds check on every push and pop.
        // SAFETY: `mask == slots.len() - 1`, a power of two minus one (every constructor of
        // `Raw` keeps that invariant), so `position & mask < slots.len()`.
        unsafe { self.slots.get_unchecked(index) }
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.mask.wrapping_add(1)
    }

    /// Sets every counter and stamp as if `position` values had passed through an empty ring.
    /// Only for a ring nobody else has seen yet (the `new_at` test constructors).
    pub(crate) fn start_at(&self, position: usize) {
        self.counters.head.head.store(position, Ordering::Relaxed);
        self.counters.head.resume.store(position, Ordering::Relaxed);
        self.counters.tail.store(position, Ordering::Relaxed);
        for i in 0..self.capacity() {
            // The first position at or after `position` that lands in slot `i`.
            let p = position.wrapping_add(i.wrapping_sub(position) & self.mask);
            self.slots[i].stamp.store(self.lap(p), Ordering::Relaxed);
        }
        // Not yet shared: the caller publishes the ring by moving it, which gives the
        // happens-before edge for these relaxed stores (a spawn, a `static` initialiser, an Arc).
    }

    pub(crate) fn len(&self) -> usize {
        // Relaxed: a snapshot with no ordering promise. Reading head first means pops that land
        // in between can only make the difference larger, and the clamp bounds that.
        let head = self.counters.head.head.load(Ordering::Relaxed);
        let tail = self.counters.tail.load(Ordering::Relaxed);
        let len = tail.wrapping_sub(head);
        if (len as isize) < 0 {
            0
        } else {
            len.min(self.capacity())
        }
    }

    #[inline]
    pub(crate) fn pushed(&self) -> usize {
        // Relaxed: a snapshot. Coherence alone makes a push that happens-before this load
        // visible to it; nothing is read through this value.
        self.counters.tail.load(Ordering::Relaxed)
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
    pub(crate) fn push_or_full(
        self,
        value: T,
        in_flight: Option<&AtomicUsize>,
    ) -> Result<(), Full<T>> {
        let tail_counter = &*self.counters.tail;
        let mut tail = tail_counter.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(tail);
            let lap = self.lap(tail);
            // Acquire pairs with the Release stamp store that freed this slot (in `pop` or in an
            // evicting `force_push`): once we see "empty for `tail`", the previous occupant has
            // been moved out, so our write below cannot race that read.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let ahead = stamp.wrapping_sub(lap) as isize;
            if ahead == 0 {
                // Relaxed: the CAS only decides which producer owns position `tail`; the value's
                // visibility is carried by the stamp store below, not by `tail`.
                match tail_counter.compare_exchange_weak(
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
                tail = tail_counter.load(Ordering::Relaxed);
            }
        }
    }

    #[inline(always)]
    pub(crate) fn push_or_evict(self, value: T, in_flight: Option<&AtomicUsize>) -> Option<T> {
        let tail_counter = &*self.counters.tail;
        let head_counter = &self.counters.head.head;
        let mut tail = tail_counter.load(Ordering::Relaxed);
        loop {
            let slot = self.slot(tail);
            let lap = self.lap(tail);
            // Acquire: as in `try_push` (pairs with the Release store that freed the slot), and
            // also with the producer's Release "full" store: if we evict, we read that value.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == lap {
                // Relaxed: ownership of `tail` only; visibility is carried by the stamp.
                match tail_counter.compare_exchange_weak(
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
                tail = tail_counter.load(Ordering::Relaxed);
                continue;
            }
            // Behind: the slot still holds position `oldest = tail - N`. The tail cannot move
            // past `tail` until that slot is freed, so from here on we re-read only the stamp.
            let capacity = self.capacity();
            let oldest = tail.wrapping_sub(capacity);
            if stamp == lap.wrapping_sub(capacity).wrapping_add(1)
                // Published: the ring is full. Evict `oldest` if nobody has claimed it.
                // Relaxed: only compared, then confirmed by the CAS, which is what decides.
                && head_counter.load(Ordering::Relaxed) == oldest
                // Relaxed: the CAS decides who owns `oldest` (the consumer CASes the same word);
                // the value's visibility came with the Acquire stamp load above.
                && head_counter
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
                tail_counter.store(tail.wrapping_add(1), Ordering::Relaxed);
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

    pub(crate) fn claim_consumer(self) -> Option<Cursor> {
        // Acquire pairs with the Release store in `release_consumer`: the new consumer starts
        // from at least the head the previous one left (its last head CAS happens-before).
        self.counters
            .head
            .consumer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(Cursor {
            // Relaxed: written by the previous consumer before its Release store of the flag,
            // which our Acquire CAS above read, so we see its final cursor. Evictions since then
            // are counted by our first pop, as the cursor steps over them.
            head: self.counters.head.resume.load(Ordering::Relaxed),
            evicted: 0,
        })
    }

    pub(crate) fn release_consumer(self, cursor: &Cursor) {
        // Relaxed: published by the Release store below.
        self.counters
            .head
            .resume
            .store(cursor.head, Ordering::Relaxed);
        // Release pairs with the Acquire CAS in `claim_consumer`.
        self.counters.head.consumer.store(false, Ordering::Release);
    }

    /// Pops the value at the cursor, stepping over (and counting) evicted positions. Never
    /// waits; `None` when the next position is empty or claimed but not yet published. Reads
    /// only the consumer's own line and the slot, never `tail` (the producers' hottest line).
    #[inline(always)]
    pub(crate) fn pop_ready(self, cursor: &mut Cursor) -> Option<T> {
        let head_counter = &self.counters.head.head;
        let mut head = cursor.head;
        let result = loop {
            let slot = self.slot(head);
            let lap = self.lap(head);
            // Acquire pairs with the producer's Release "full" store (so the value is visible),
            // and with an evicting force_push's Release store (so its head CAS is visible to the
            // head load below when the stamp shows the slot already moved on).
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == lap.wrapping_add(1) {
                // Relaxed: the CAS only arbitrates ownership of `head` against force_push.
                match head_counter.compare_exchange(
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
                        slot.stamp
                            .store(lap.wrapping_add(self.capacity()), Ordering::Release);
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
                let current = head_counter.load(Ordering::Relaxed);
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

    /// [`pop_ready`](Self::pop_ready), telling apart why there was no value.
    #[inline(always)]
    pub(crate) fn try_pop(self, cursor: &mut Cursor) -> Result<T, TryPopError> {
        match self.pop_ready(cursor) {
            Some(value) => Ok(value),
            None => {
                // Empty or pending: has any push claimed the cursor's position? Relaxed: a push
                // that happens-before this call claimed its position before it returned, so
                // coherence shows its claim here (and its stamp store, which happens-before too,
                // was seen by `pop_ready`'s stamp load: such a push is never reported `Empty`).
                // A claim racing with us may or may not be seen; either answer is true at some
                // instant of the call.
                let tail = self.counters.tail.load(Ordering::Relaxed);
                Err(if tail == cursor.head {
                    TryPopError::Empty
                } else {
                    TryPopError::Pending
                })
            }
        }
    }

    /// Pops the value at the cursor, waiting out a producer (or evictor) that has claimed the
    /// next position and not yet published it. `None` only when the ring is empty.
    #[inline]
    pub(crate) fn pop(self, cursor: &mut Cursor) -> Option<T> {
        loop {
            match self.try_pop(cursor) {
                Ok(value) => return Some(value),
                Err(TryPopError::Empty) => return None,
                // The claimant is a few instructions from publishing (no user code runs between
                // claim and publish), unless it was preempted: see the callers' docs.
                Err(TryPopError::Pending) => spin_loop(),
            }
        }
    }

    /// Drops every value still in the ring.
    ///
    /// # Safety
    /// The caller has exclusive access to the ring (it is being dropped), and whatever gave it
    /// that access (a join, the last `Arc` drop) happens-after every push and pop.
    pub(crate) unsafe fn drop_values(self) {
        // Relaxed loads: exclusive access, and the happens-before edge above, show the final state.
        let mut position = self.counters.head.head.load(Ordering::Relaxed);
        let tail = self.counters.tail.load(Ordering::Relaxed);
        while position != tail {
            let slot = self.slot(position);
            // Every position in [head, tail) was published (no push stops between claiming and
            // publishing: nothing in between can panic). Check anyway: leaking beats UB.
            if slot.stamp.load(Ordering::Relaxed) == self.lap(position).wrapping_add(1) {
                // SAFETY: exclusive access (the caller's contract), and the stamp says the slot
                // holds the initialised value of `position`, which nobody has taken.
                drop(unsafe { slot.take() });
            }
            position = position.wrapping_add(1);
        }
    }
}

/// A bounded, lock-free, multi-producer single-consumer ring of `N` slots.
///
/// `N` must be a power of two and at least 2; anything else fails to compile. Any thread may
/// push through a shared `&Ring` (or a `static`); one [`Consumer`] at a time pops. For a
/// capacity chosen at run time, on the heap, see `channel()` (feature `alloc`): the same
/// algorithm, the same code.
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
    counters: Counters,
    slots: [Slot<T>; N],
}

// SAFETY: the ring moves `T` values between threads (a producer writes one, the consumer or an
// evicting producer takes it), so `T: Send` is needed and enough: a value is only ever accessed by
// the one thread that owns its position (see the crate docs), never shared, so `T: Sync` is not.
unsafe impl<T: Send, const N: usize> Sync for Ring<T, N> {}
// SAFETY: as above; sending the ring sends the values it holds.
unsafe impl<T: Send, const N: usize> Send for Ring<T, N> {}

impl<T, const N: usize> Ring<T, N> {
    /// Evaluated by every constructor, so a bad `N` is a compile error, not a runtime panic.
    const VALID_CAPACITY: () = assert!(
        N >= 2 && N.is_power_of_two() && N <= MAX_CAPACITY,
        "Ring capacity N must be a power of two, at least 2"
    );

    /// An empty ring. `const`, so it can be a `static` and be pushed to from interrupt handlers.
    ///
    /// The ring holds its slots inline: `Ring<T, N>` is about `N * (size_of::<T>() + 8)` bytes,
    /// so put large rings in a `static`, or use `channel()`, which builds its slots on the heap
    /// directly; `Box::new(Ring::new())` may build the ring on the stack first.
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
            counters: Counters::new(),
            slots: [const { Slot::new() }; N],
        }
    }

    /// An empty ring (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_CAPACITY;
        Ring {
            counters: Counters::new(),
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
        ring.raw().start_at(position);
        ring
    }

    #[inline(always)]
    fn raw(&self) -> Raw<'_, T> {
        // The constant length `N` makes the mask a constant after inlining.
        Raw::new(&self.counters, &self.slots)
    }

    /// The number of slots, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many values the ring holds: a snapshot, exact when no push or pop runs concurrently.
    pub fn len(&self) -> usize {
        self.raw().len()
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
        self.raw().pushed()
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
    /// "No free slot" means the slot this push would use still holds a value as far as this
    /// thread can see: the ring holds `N` values, or the consumer has claimed the oldest and is
    /// in the few instructions between claiming and freeing its slot, or it freed the slot so
    /// recently that the freeing store has not reached this thread yet (nothing orders a pop on
    /// one thread before a push on another unless the program does, e.g. with a lock or a
    /// channel; a retry sees the slot free soon after).
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// assert!(ring.try_push(1).is_ok());
    /// assert!(ring.try_push(2).is_ok());
    /// assert_eq!(ring.try_push(3).unwrap_err().into_inner(), 3);
    /// ```
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), Full<T>> {
        self.raw().push_or_full(value, None)
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
    /// use core::sync::atomic::Ordering;
    /// use ringwal_core::atomic::AtomicUsize;
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
        self.raw().push_or_full(value, Some(in_flight))
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
        self.raw().push_or_evict(value, None)
    }

    /// [`force_push`](Self::force_push) with an in-flight counter, as
    /// [`try_push_releasing`](Self::try_push_releasing): decrements `in_flight` by one, with
    /// `Release`, exactly once, once the position is claimed and before it is published.
    ///
    /// ```
    /// use core::sync::atomic::Ordering;
    /// use ringwal_core::atomic::AtomicUsize;
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
        self.raw().push_or_evict(value, Some(in_flight))
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
        let cursor = self.raw().claim_consumer()?;
        Some(Consumer {
            ring: self,
            cursor,
            _not_sync: PhantomData,
        })
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
        // SAFETY: `&mut self` gives exclusive access; whatever made the ring ours (a join, the
        // last owner's drop) happens-after every push and pop.
        unsafe { self.raw().drop_values() }
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
    /// Pops the oldest value, or `None` if the ring is empty.
    ///
    /// Linearizable, as crossbeam's `ArrayQueue::pop`: `None` means no value was in the ring at
    /// some instant during the call. If a producer has claimed the oldest position and not yet
    /// published it, `pop` waits for it (a few instructions, no user code, unless that producer
    /// was preempted right there). So do not call `pop` where the consumer can preempt a
    /// producer of the same ring that then cannot run — an interrupt handler draining a ring the
    /// main loop pushes to, a higher-priority task on one core: it would spin forever. Use
    /// [`try_pop`](Self::try_pop) or [`drain`](Self::drain) there; neither ever waits.
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
        self.ring.raw().pop(&mut self.cursor)
    }

    /// Pops the oldest value if it is ready; never waits. The error says why not:
    /// [`TryPopError::Empty`] (no value in the ring) or [`TryPopError::Pending`] (the oldest
    /// position is claimed by a producer still writing it; values behind it wait for it).
    ///
    /// ```
    /// use ringwal_core::{Ring, TryPopError};
    /// let ring: Ring<u8, 4> = Ring::new();
    /// let mut c = ring.consumer().unwrap();
    /// ring.try_push(7).unwrap();
    /// assert_eq!(c.try_pop(), Ok(7));
    /// assert_eq!(c.try_pop(), Err(TryPopError::Empty));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        self.ring.raw().try_pop(&mut self.cursor)
    }

    /// An iterator that pops what is ready, in order, never waiting: it stops at the first
    /// position that is empty or whose producer has not finished writing it, and after at most
    /// `N` values (one ring's worth), so it ends even while producers keep pushing. Values pushed
    /// while it runs may be included. Dropping it early leaves the rest in the ring.
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 4> = ringwal_core::Ring::new();
    /// let mut c = ring.consumer().unwrap();
    /// ring.try_push(1).unwrap();
    /// ring.try_push(2).unwrap();
    /// let batch: Vec<u8> = c.drain().collect();
    /// assert_eq!(batch, [1, 2]);
    /// ```
    pub fn drain(&mut self) -> Drain<'_, T> {
        Drain::new(self.ring.raw(), &mut self.cursor)
    }

    /// How many values `force_push` evicted before this consumer reached them, counted from where
    /// the previous consumer of the ring stopped (or from the start), so no eviction goes
    /// unreported across a hand-off.
    ///
    /// It grows only inside [`pop`](Self::pop), [`try_pop`](Self::try_pop) and
    /// [`drain`](Self::drain), as the consumer steps over evicted positions, so for a pop that
    /// returns a value, the growth since the previous value is exactly the number of values
    /// evicted between the two: the gap to record.
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
        self.ring.raw().release_consumer(&self.cursor);
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

/// The iterator returned by [`Consumer::drain`] (and `Receiver::drain`): pops what is ready,
/// never waiting, at most one ring's worth.
pub struct Drain<'a, T> {
    ring: Raw<'a, T>,
    cursor: &'a mut Cursor,
    /// Values this drain may still yield.
    remaining: usize,
}

impl<'a, T> Drain<'a, T> {
    pub(crate) fn new(ring: Raw<'a, T>, cursor: &'a mut Cursor) -> Self {
        // At most one ring's worth of values. Bounding by a snapshot of `tail` instead would
        // read the producers' hottest line on every call: a cache miss per batch that made
        // drain 4-5x slower than pop for a consumer keeping up (benches/benches/ring.rs).
        Drain {
            remaining: ring.capacity(),
            ring,
            cursor,
        }
    }
}

impl<T> Drain<'_, T> {
    /// The consumer's [`evicted`](Consumer::evicted) count so far, including the positions this
    /// drain has stepped over: read it after each value to learn the gap before that value.
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// let mut c = ring.consumer().unwrap();
    /// for v in 0..4 { ring.force_push(v); }   // evicts 0 and 1
    /// let mut drain = c.drain();
    /// assert_eq!((drain.next(), drain.evicted()), (Some(2), 2));
    /// assert_eq!((drain.next(), drain.evicted()), (Some(3), 2));
    /// ```
    pub fn evicted(&self) -> u64 {
        self.cursor.evicted
    }
}

impl<T> Iterator for Drain<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.remaining == 0 {
            return None;
        }
        let value = self.ring.pop_ready(self.cursor)?;
        self.remaining -= 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl<T> fmt::Debug for Drain<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("position", &self.cursor.head)
            .field("remaining", &self.remaining)
            .finish()
    }
}
