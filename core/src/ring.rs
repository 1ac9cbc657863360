//! The inline ring: [`Ring`] (and [`EvictingRing`]), its [`Consumer`], its [`SoloProducer`]
//! and the [`Drain`] iterator every consumer shares. The algorithm is in `raw.rs`; the argument
//! for it in the crate docs.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;

use crate::raw::{
    ClaimOrder, Counters, Cursor, Evict, Mode, NoEvict, Raw, Refused, Slot, SoloCursor,
    StagingArea, MAX_CAPACITY,
};

/// The error of a `try_push`: the ring had no free slot. Holds the value, untouched.
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

/// Why a `try_pop` returned no value.
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
    ///
    /// Never returned with a solo producer (the consumer of [`Ring::split`], and
    /// [`LanesConsumer`](crate::LanesConsumer)): a solo push takes effect when it is published,
    /// and nothing waits behind it but its own producer's later pushes.
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

/// A bounded, lock-free, multi-producer single-consumer ring of `N` slots.
///
/// `N` must be a power of two and at least 2; anything else fails to compile. Any thread may
/// push through a shared `&Ring` (or a `static`); one [`Consumer`] at a time pops. For a
/// capacity chosen at run time, on the heap, see `channel()` (feature `alloc`): the same
/// algorithm, the same code.
///
/// The third parameter is the ring's [`Mode`]: [`NoEvict`] by default, whose consumer takes
/// values with plain loads and stores; [`Evict`] (the alias [`EvictingRing`]) adds
/// `force_push`, the drop-oldest push.
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
///
/// Nor does `force_push` on a ring that does not evict:
///
/// ```compile_fail
/// let ring: ringwal_core::Ring<u8, 4> = ringwal_core::Ring::new();
/// ring.force_push(1);
/// ```
pub struct Ring<T, const N: usize = 4096, M: Mode = NoEvict> {
    counters: Counters,
    staging: M::Staging<T>,
    slots: [Slot<T>; N],
}

/// A [`Ring`] with `force_push`: when it is full, the push evicts the oldest value and
/// returns it (drop-oldest). Its consumer claims runs of ready values with one
/// compare-and-swap per run (see [`Mode`]).
///
/// ```
/// use ringwal_core::EvictingRing;
/// static LATEST: EvictingRing<u32, 4> = EvictingRing::new();
/// for v in 0..6 {
///     LATEST.force_push(v); // never fails: the oldest goes when full
/// }
/// let mut c = LATEST.consumer().unwrap();
/// assert_eq!(c.drain().collect::<Vec<_>>(), [2, 3, 4, 5]);
/// assert_eq!(c.evicted(), 2);
/// ```
pub type EvictingRing<T, const N: usize = 4096> = Ring<T, N, Evict>;

// SAFETY: the ring moves `T` values between threads (a producer writes one, the consumer or an
// evicting producer takes it), so `T: Send` is needed and enough: a value is only ever accessed
// by the one thread that owns its position (see the crate docs), never shared, so `T: Sync` is
// not. The staging buffer is only touched by the ring's one consumer.
unsafe impl<T: Send, const N: usize, M: Mode> Sync for Ring<T, N, M> {}
// SAFETY: as above; sending the ring sends the values it holds.
unsafe impl<T: Send, const N: usize, M: Mode> Send for Ring<T, N, M> {}

impl<T, const N: usize, M: Mode> Ring<T, N, M> {
    /// Evaluated by every constructor, so a bad `N` is a compile error, not a runtime panic.
    const VALID_CAPACITY: () = assert!(
        N >= 2 && N.is_power_of_two() && N <= MAX_CAPACITY,
        "Ring capacity N must be a power of two, at least 2"
    );

    /// An empty ring. `const`, so it can be a `static` and be pushed to from interrupt handlers.
    ///
    /// The ring holds its slots inline: `Ring<T, N>` is about `N * (size_of::<T>() + 8)` bytes
    /// (an [`EvictingRing`] another [`STAGE`](crate::STAGE) values for its consumer's staging
    /// buffer), so put large rings in a `static`, or use `channel()`, which builds its slots on
    /// the heap directly; `Box::new(Ring::new())` may build the ring on the stack first.
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
            staging: <M::Staging<T> as StagingArea<T>>::EMPTY,
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
            staging: <M::Staging<T> as StagingArea<T>>::empty(),
            slots: core::array::from_fn(|_| Slot::new()),
        }
    }

    /// An empty ring whose position counters start at `position` (modulo
    /// [`POSITION_MASK`](crate::POSITION_MASK) + 1) instead of 0.
    ///
    /// Only for tests: it lets the model tests and the loom models run a ring across the wrap
    /// of its counters without pushing 2^63 values first.
    #[doc(hidden)]
    pub fn new_at(position: usize) -> Self {
        let ring = Self::new();
        ring.raw().start_at(position & crate::POSITION_MASK);
        ring
    }

    #[inline(always)]
    pub(crate) fn raw(&self) -> Raw<'_, T, M> {
        // The constant length `N` makes the mask a constant after inlining.
        Raw::new(&self.counters, &self.slots, &self.staging)
    }

    /// The number of slots, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many values the ring holds: a snapshot, exact when no push or pop runs concurrently.
    /// For an [`EvictingRing`] this includes the values its consumer has claimed but not yet
    /// handed out (up to [`STAGE`](crate::STAGE) more than `N`).
    pub fn len(&self) -> usize {
        self.raw().len()
    }

    /// The producers' position: how many pushes have claimed a slot since the ring was created
    /// (`try_push` that succeeded plus every `force_push`), modulo 2^(`usize::BITS` - 1)
    /// ([`POSITION_MASK`](crate::POSITION_MASK) + 1). Compare two positions with
    /// [`position_diff`](crate::position_diff).
    ///
    /// A snapshot. A push that returned before this call is always counted (it happens-before
    /// the load); one still running may or may not be.
    ///
    /// ```
    /// let ring: ringwal_core::EvictingRing<u8, 2> = ringwal_core::EvictingRing::new();
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

    /// Whether [`len`](Self::len) is at least `N` (a snapshot).
    pub fn is_full(&self) -> bool {
        self.len() >= N
    }

    /// Pushes `value`, or returns it in [`Full`] if the ring has no free slot.
    ///
    /// Any thread, any number of threads at once. Never waits for another thread: it either
    /// claims a slot (one compare-and-swap on the producers' counter) or reports `Full` (it
    /// retries only when another producer claimed the same position first, so some push always
    /// makes progress). That makes it safe to call from an interrupt handler that may have
    /// preempted the consumer or another producer.
    ///
    /// "No free slot" means the consumer has not yet moved out the value one lap before this
    /// push's position, as far as this thread can see: the ring holds `N` values, or the
    /// consumer freed the slot so recently that its store has not reached this thread yet
    /// (nothing orders a pop on one thread before a push on another unless the program does,
    /// e.g. with a lock or a channel; a retry sees the slot free soon after).
    ///
    /// ```
    /// let ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// assert!(ring.try_push(1).is_ok());
    /// assert!(ring.try_push(2).is_ok());
    /// assert_eq!(ring.try_push(3).unwrap_err().into_inner(), 3);
    /// ```
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), Full<T>> {
        match self.raw().push_shared::<false>(value, ClaimOrder::Relaxed) {
            Ok(_) => Ok(()),
            // A `Ring` is closed only while split: its `SoloProducer` is its only producer
            // then (see `split`), and a shared push is refused as if the ring were full.
            Err(Refused::Full(v) | Refused::Closed(v)) => Err(Full(v)),
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
    pub fn consumer(&self) -> Option<Consumer<'_, T, N, M>> {
        let cursor = self.raw().claim_consumer()?;
        Some(Consumer {
            ring: self,
            cursor,
            _not_sync: PhantomData,
        })
    }

    /// Splits the ring into its only producer and its consumer, for single-producer use: the
    /// [`SoloProducer`] claims positions with plain loads and stores (no read-modify-write at
    /// all, like an SPSC queue), and `&mut self` makes sure no other push can run while the two
    /// halves live. Both continue where the ring is (values already in it stay, in order).
    ///
    /// The halves still reach the ring ([`SoloProducer::ring`], [`Consumer::ring`]), but while
    /// the `SoloProducer` lives the ring refuses every other push: [`try_push`](Self::try_push)
    /// returns [`Full`] and [`force_push`](Ring::force_push) panics. Once it is dropped, other
    /// pushes work again (if the consumer half still lives, it keeps reporting an unpublished
    /// position as `Empty`, never `Pending`, and its `pop` does not wait for it). A
    /// `SoloProducer` that is never dropped (`mem::forget`) keeps the ring refusing them until
    /// the next `split`.
    ///
    /// ```
    /// let mut ring: ringwal_core::Ring<u64, 1024> = ringwal_core::Ring::new();
    /// let (mut tx, mut rx) = ring.split();
    /// std::thread::scope(|s| {
    ///     s.spawn(move || {
    ///         for v in 0..10_000 {
    ///             let mut v = v;
    ///             while let Err(full) = tx.try_push(v) {
    ///                 v = full.into_inner();
    ///                 std::hint::spin_loop();
    ///             }
    ///         }
    ///     });
    ///     let mut next = 0;
    ///     while next < 10_000 {
    ///         if let Some(v) = rx.pop() {
    ///             assert_eq!(v, next);
    ///             next += 1;
    ///         }
    ///     }
    /// });
    /// ```
    pub fn split(&mut self) -> (SoloProducer<'_, T, N, M>, Consumer<'_, T, N, M>) {
        let this: &Self = self;
        let raw = this.raw();
        // `&mut self`: no `Consumer` borrows the ring, so a set claim flag can only be left by a
        // consumer that was leaked (`mem::forget`); its cursor is in the ring, so it is safe to
        // take over.
        raw.force_release_consumer();
        let mut cursor = raw
            .claim_consumer()
            .expect("no consumer can be alive under &mut");
        // While the halves live (`&mut self`), the solo producer is the ring's only producer.
        cursor.solo = true;
        let solo = raw.solo_cursor();
        // The halves hand out `&Ring`, whose shared pushes must not claim positions next to
        // the solo producer: refuse them until it is dropped.
        raw.begin_solo();
        (
            SoloProducer {
                ring: this,
                cursor: solo,
                _not_sync: PhantomData,
            },
            Consumer {
                ring: this,
                cursor,
                _not_sync: PhantomData,
            },
        )
    }
}

impl<T, const N: usize> Ring<T, N, Evict> {
    /// Pushes `value`; if the ring is full, evicts the oldest value and returns it.
    ///
    /// The drop-oldest policy. Safe against a concurrent `pop` and other `force_push`es: each
    /// value is taken exactly once, by the consumer or by exactly one evicting `force_push`, and
    /// the consumer learns how many it missed ([`Consumer::evicted`]). "The oldest" is the
    /// oldest value still in the ring's slots: values the consumer has already claimed (it
    /// claims runs of up to [`STAGE`](crate::STAGE) and moves them into its staging buffer)
    /// are delivered, not evictable.
    ///
    /// Progress: when the ring is full, this needs the oldest position settled. If its owner is
    /// mid-way — the consumer moving a run out, a producer writing it, an earlier `force_push`
    /// evicting — this spins until the owner finishes (no user code runs in those windows). So
    /// a caller that can *preempt* the consumer or a producer of the same ring (an interrupt
    /// handler) must use [`try_push`](Self::try_push).
    ///
    /// # Panics
    /// While the ring is [split](Ring::split) and its [`SoloProducer`] lives (reached through
    /// [`SoloProducer::ring`] or [`Consumer::ring`]): that producer is the ring's only one
    /// then; push through it.
    ///
    /// ```
    /// let ring: ringwal_core::EvictingRing<u8, 2> = ringwal_core::EvictingRing::new();
    /// assert_eq!(ring.force_push(1), None);
    /// assert_eq!(ring.force_push(2), None);
    /// assert_eq!(ring.force_push(3), Some(1)); // 1 was the oldest
    /// let mut c = ring.consumer().unwrap();
    /// assert_eq!(c.pop(), Some(2));
    /// assert_eq!(c.evicted(), 1);
    /// ```
    #[inline]
    pub fn force_push(&self, value: T) -> Option<T> {
        match self.raw().push_shared::<true>(value, ClaimOrder::Relaxed) {
            Ok(evicted) => evicted,
            // A `Ring` is closed only while split (see `split`); an evicting push is never
            // full.
            Err(Refused::Closed(_)) => {
                panic!("force_push on a ring split into a SoloProducer: push through it")
            }
            Err(Refused::Full(_)) => unreachable!("an evicting push is never full"),
        }
    }
}

impl<T, const N: usize, M: Mode> Default for Ring<T, N, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize, M: Mode> fmt::Debug for Ring<T, N, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &N)
            .field("evicts", &M::EVICTS)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T, const N: usize, M: Mode> Drop for Ring<T, N, M> {
    fn drop(&mut self) {
        // SAFETY: `&mut self` gives exclusive access; whatever made the ring ours (a join, the
        // last owner's drop) happens-after every push and pop.
        unsafe { self.raw().drop_values() }
    }
}

/// The single consumer of a [`Ring`]: pops values in order. `Send`, not `Sync`, not `Clone`.
///
/// Obtained from [`Ring::consumer`] or [`Ring::split`]; at most one exists per ring at a time.
pub struct Consumer<'a, T, const N: usize = 4096, M: Mode = NoEvict> {
    ring: &'a Ring<T, N, M>,
    cursor: Cursor,
    _not_sync: PhantomData<Cell<()>>,
}

impl<'a, T, const N: usize, M: Mode> Consumer<'a, T, N, M> {
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
    /// The consumer of [`Ring::split`] never waits in `pop`: its ring's only producer is the
    /// solo one, whose push takes effect when it is published and holds back nothing but that
    /// producer's own later pushes, so an unpublished position is simply not there yet.
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
    /// The consumer of [`Ring::split`] says only `Empty` (see [`TryPopError::Pending`]), and
    /// then reads nothing but the slot it looked at: no read of the producer's counter, whose
    /// line the producer writes on every push.
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
    pub fn try_pop(&mut self) -> Result<T, crate::TryPopError> {
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
    pub fn drain(&mut self) -> Drain<'_, T, M> {
        Drain::new(self.ring.raw(), &mut self.cursor)
    }

    /// How many values `force_push` evicted before this consumer reached them, counted from where
    /// the previous consumer of the ring stopped (or from the start), so no eviction goes
    /// unreported across a hand-off. Always 0 for a ring that does not evict.
    ///
    /// It grows only inside [`pop`](Self::pop), [`try_pop`](Self::try_pop) and
    /// [`drain`](Self::drain), as the consumer steps over evicted positions, so for a pop that
    /// returns a value, the growth since the previous value is exactly the number of values
    /// evicted between the two: the gap to record.
    ///
    /// ```
    /// let ring: ringwal_core::EvictingRing<u8, 2> = ringwal_core::EvictingRing::new();
    /// let mut c = ring.consumer().unwrap();
    /// for v in 0..5 { ring.force_push(v); }   // evicts 0, 1, 2
    /// assert_eq!(c.pop(), Some(3));
    /// assert_eq!(c.evicted(), 3);             // three values lost before 3
    /// ```
    pub fn evicted(&self) -> u64 {
        self.cursor.evicted
    }

    /// The ring this consumer reads. (For the consumer of a [split](Ring::split) ring, that
    /// ring refuses pushes other than its `SoloProducer`'s while it lives.)
    pub fn ring(&self) -> &'a Ring<T, N, M> {
        self.ring
    }
}

impl<T, const N: usize, M: Mode> Drop for Consumer<'_, T, N, M> {
    fn drop(&mut self) {
        self.ring.raw().release_consumer(&self.cursor);
    }
}

impl<T, const N: usize, M: Mode> fmt::Debug for Consumer<'_, T, N, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("position", &(self.cursor.head >> 1))
            .field("evicted", &self.cursor.evicted)
            .finish_non_exhaustive()
    }
}

/// The only producer of a [`Ring`] split with [`Ring::split`]: pushes with plain loads and
/// stores, no read-modify-write (it caches how far it may write and refreshes that from the
/// consumer's counter only when it gets there, as an SPSC queue does). `Send`, not `Sync`, not
/// `Clone`.
pub struct SoloProducer<'a, T, const N: usize = 4096, M: Mode = NoEvict> {
    ring: &'a Ring<T, N, M>,
    cursor: SoloCursor,
    _not_sync: PhantomData<Cell<()>>,
}

impl<'a, T, const N: usize, M: Mode> SoloProducer<'a, T, N, M> {
    /// [`Ring::try_push`] without the compare-and-swap: pushes, or returns the value in
    /// [`Full`]. Never waits.
    ///
    /// ```
    /// let mut ring: ringwal_core::Ring<u8, 2> = ringwal_core::Ring::new();
    /// let (mut tx, mut rx) = ring.split();
    /// assert!(tx.try_push(1).is_ok());
    /// assert!(tx.try_push(2).is_ok());
    /// assert_eq!(tx.try_push(3).unwrap_err().into_inner(), 3);
    /// assert_eq!(rx.pop(), Some(1));
    /// assert!(tx.try_push(3).is_ok());
    /// ```
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), Full<T>> {
        match self.ring.raw().push_solo::<false>(&mut self.cursor, value) {
            Ok(_) => Ok(()),
            Err(v) => Err(Full(v)),
        }
    }

    /// The producers' position (see [`Ring::pushed`]).
    pub fn pushed(&self) -> usize {
        self.ring.pushed()
    }

    /// The ring this producer writes. While this producer lives, the ring refuses every other
    /// push ([`Ring::try_push`] says [`Full`], [`Ring::force_push`] panics): this is its only
    /// producer.
    ///
    /// ```
    /// let mut ring: ringwal_core::Ring<u8, 4> = ringwal_core::Ring::new();
    /// let (mut tx, _rx) = ring.split();
    /// tx.try_push(1).unwrap();
    /// assert!(tx.ring().try_push(2).is_err());
    /// assert_eq!(tx.ring().len(), 1);
    /// ```
    pub fn ring(&self) -> &'a Ring<T, N, M> {
        self.ring
    }
}

impl<T, const N: usize> SoloProducer<'_, T, N, Evict> {
    /// [`EvictingRing::force_push`](Ring::force_push) without the compare-and-swap on the
    /// producers' counter (evicting still takes one, against the consumer).
    ///
    /// ```
    /// let mut ring: ringwal_core::EvictingRing<u8, 2> = ringwal_core::EvictingRing::new();
    /// let (mut tx, mut rx) = ring.split();
    /// assert_eq!(tx.force_push(1), None);
    /// assert_eq!(tx.force_push(2), None);
    /// assert_eq!(tx.force_push(3), Some(1));
    /// assert_eq!(rx.pop(), Some(2));
    /// assert_eq!(rx.evicted(), 1);
    /// ```
    #[inline]
    pub fn force_push(&mut self, value: T) -> Option<T> {
        match self.ring.raw().push_solo::<true>(&mut self.cursor, value) {
            Ok(evicted) => evicted,
            Err(_) => unreachable!("an evicting push always claims"),
        }
    }
}

impl<T, const N: usize, M: Mode> Drop for SoloProducer<'_, T, N, M> {
    fn drop(&mut self) {
        // Shared pushes may claim again, from where this producer stopped.
        self.ring.raw().end_solo(&self.cursor);
    }
}

impl<T, const N: usize, M: Mode> fmt::Debug for SoloProducer<'_, T, N, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoloProducer")
            .field("pushed", &self.pushed())
            .finish_non_exhaustive()
    }
}

/// The iterator returned by `drain()` on a [`Consumer`] (and a `Receiver`): pops what is ready,
/// never waiting, at most one ring's worth.
pub struct Drain<'a, T, M: Mode = NoEvict> {
    ring: Raw<'a, T, M>,
    cursor: &'a mut Cursor,
    /// Values this drain may still yield.
    remaining: usize,
}

impl<'a, T, M: Mode> Drain<'a, T, M> {
    pub(crate) fn new(ring: Raw<'a, T, M>, cursor: &'a mut Cursor) -> Self {
        // At most one ring's worth of values. Bounding by a snapshot of `tail` instead would
        // read the producers' hottest line on every call.
        Drain {
            remaining: ring.capacity(),
            ring,
            cursor,
        }
    }

    /// The consumer's [`evicted`](Consumer::evicted) count so far, including the positions this
    /// drain has stepped over: read it after each value to learn the gap before that value.
    ///
    /// ```
    /// let ring: ringwal_core::EvictingRing<u8, 2> = ringwal_core::EvictingRing::new();
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

impl<T, M: Mode> Iterator for Drain<'_, T, M> {
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

impl<T, M: Mode> fmt::Debug for Drain<'_, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("position", &(self.cursor.head >> 1))
            .field("remaining", &self.remaining)
            .finish()
    }
}
