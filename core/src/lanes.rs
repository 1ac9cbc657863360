//! [`Lanes`]: a multi-producer queue whose producers never share a cache line: one
//! single-producer ring (a lane) per producer handle, one consumer for them all.
//!
//! Each lane is a [`Ring`] pushed to only by its owner, with the solo push that
//! [`Ring::split`]'s producer uses (plain loads and stores, no read-modify-write). What is new
//! here is only who may use a lane:
//!
//! - A producer handle owns one lane: [`Lanes::producer`] claims a free lane with a
//!   compare-and-swap on its `owned` flag (Acquire), the handle's drop releases it (a Release
//!   store). The lane's producer position lives in the ring (`tail`, stored by every solo push),
//!   so the next owner continues from it: its Acquire claim reads the previous owner's Release
//!   release, which follows every store the previous owner made to the lane. Between the two,
//!   no push runs on the lane. The consumer is untouched by a hand-off.
//! - The consumer owns every lane's consumer side: [`Lanes::consumer`] claims one flag for all
//!   of them (compare-and-swap, Acquire), then each ring's own consumer claim, which cannot fail
//!   while the flag is held (no one else claims a lane's consumer). Its drop releases each
//!   ring's claim, then the flag (Release), in that order: the next consumer's lane claims come
//!   after those releases. Each lane's claim carries its cursor across, as for any ring. (That
//!   the flag's Release/Acquire is needed — without it a lane claim could read a stale
//!   "claimed" in the C++ model — is argued, not shown by loom, whose compare-and-swaps always
//!   read the latest value; the release order itself is checked, see `loom-tests/tests/lanes.rs`.)
//!
//! Everything else — how a value is published, how a slot is freed — is the ring's, argued in
//! `raw.rs` and checked there.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;

use crate::raw::{Cursor, SoloCursor};
use crate::ring::{Full, Ring, TryPopError};
use crate::sync::{AtomicBool, Ordering};

/// A bounded multi-producer, single-consumer queue made of `L` single-producer rings (lanes)
/// of `N` slots each: every producer handle owns a lane, so a push is the solo ring's push —
/// plain loads and stores, no read-modify-write, no cache line written by another producer.
///
/// The trade against [`Ring`]: **order is per handle only.** The values pushed through one
/// [`LaneProducer`] come out in the order it pushed them, but values of different handles are
/// not ordered with each other: a value pushed after another handle's push (even one its thread
/// learned of) may be popped first. That includes two handles of one thread: a thread that
/// drops its handle and claims another may get another lane, and its values through the two
/// are not ordered with each other either (keep the handle to keep the order). [`Ring`] pops in claim order and lets any thread push through a shared
/// reference; here a thread needs a [`LaneProducer`] handle, at most `L` exist at a time, and
/// the queue holds up to `L * N` values (`N` per lane: one producer cannot fill another's
/// lane).
///
/// `N` must be a power of two and at least 2, `L` at least 1; anything else fails to compile.
/// `const`-constructible, for a `static`. The lanes are inline: `L` rings of `N` slots (a slot
/// is `T` and an 8-byte stamp, rounded up to `T`'s alignment) and a few hundred bytes of
/// cache-padded counters each, so keep large ones in a `static` or build them where they will
/// stay (`Box::new(Lanes::new())` may build the value on the stack first). Adjacent lanes share
/// no cache line where crossbeam's `CachePadded` pads to the line size or more (x86-64,
/// aarch64, powerpc64: 128 bytes); on targets where it pads less (32-bit Arm, RISC-V, MIPS: 32
/// bytes), one lane's last slot and the next lane's counters may share a line.
///
/// ```
/// use ringwal_core::Lanes;
///
/// static QUEUE: Lanes<u64, 1024, 4> = Lanes::new();
///
/// std::thread::scope(|s| {
///     for t in 0..3u64 {
///         s.spawn(move || {
///             let mut tx = QUEUE.producer().expect("a free lane");
///             for i in 0..100 {
///                 let mut v = t * 1000 + i;
///                 while let Err(full) = tx.try_push(v) {
///                     v = full.into_inner();
///                     std::thread::yield_now();
///                 }
///             }
///         });
///     }
/// });
/// let mut rx = QUEUE.consumer().expect("first consumer");
/// let got: Vec<u64> = rx.drain().collect();
/// assert_eq!(got.len(), 300);
/// // Per producer, in push order:
/// for t in 0..3u64 {
///     let mine: Vec<u64> = got.iter().copied().filter(|v| v / 1000 == t).collect();
///     assert_eq!(mine, (0..100).map(|i| t * 1000 + i).collect::<Vec<_>>());
/// }
/// ```
///
/// `L = 0` does not compile:
///
/// ```compile_fail
/// let lanes: ringwal_core::Lanes<u8, 4, 0> = ringwal_core::Lanes::new();
/// ```
pub struct Lanes<T, const N: usize = 4096, const L: usize = 8> {
    /// Lane `i` has a producer handle. Only compare-and-swapped (claims) and stored (releases).
    owned: [AtomicBool; L],
    /// A [`LanesConsumer`] is alive.
    consumer: AtomicBool,
    lanes: [Ring<T, N>; L],
}

// `Lanes` holds `Ring`s and atomics only, so it is `Send`/`Sync` exactly when `Ring<T, N>` is
// (iff `T: Send`): derived, no `unsafe impl` needed.

impl<T, const N: usize, const L: usize> Lanes<T, N, L> {
    /// Evaluated by every constructor, so `L == 0` is a compile error (`N` is checked by
    /// `Ring::new`).
    const VALID_LANES: () = assert!(L >= 1, "Lanes needs at least one lane (L >= 1)");

    /// Empty lanes, none owned. `const`, so they can be a `static`.
    ///
    /// ```
    /// static Q: ringwal_core::Lanes<u32, 64, 2> = ringwal_core::Lanes::new();
    /// assert_eq!(Q.capacity(), 128);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_LANES;
        Lanes {
            owned: [const { AtomicBool::new(false) }; L],
            consumer: AtomicBool::new(false),
            lanes: [const { Ring::new() }; L],
        }
    }

    /// Empty lanes (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_LANES;
        Lanes {
            owned: core::array::from_fn(|_| AtomicBool::new(false)),
            consumer: AtomicBool::new(false),
            lanes: core::array::from_fn(|_| Ring::new()),
        }
    }

    /// Claims a free lane: `None` while all `L` lanes have a producer handle. Dropping the
    /// handle frees its lane; the next handle to claim it continues after the values already
    /// there (they stay, in order, and count against the lane's `N` slots).
    ///
    /// Lock-free (one compare-and-swap per lane tried); meant to be called once per producer,
    /// not per push. A handle that is never dropped (`mem::forget`) keeps its lane for good.
    ///
    /// ```
    /// let q: ringwal_core::Lanes<u8, 4, 2> = ringwal_core::Lanes::new();
    /// let a = q.producer().unwrap();
    /// let b = q.producer().unwrap();
    /// assert!(q.producer().is_none()); // both lanes taken
    /// drop(a);
    /// assert_eq!(q.producer().unwrap().lane(), 0); // lane 0 is free again
    /// # drop(b);
    /// ```
    pub fn producer(&self) -> Option<LaneProducer<'_, T, N, L>> {
        for (lane, owned) in self.owned.iter().enumerate() {
            // Acquire pairs with the Release store in the previous owner's drop: every push it
            // made (its stores of the lane's `tail`, slots and stamps) happens-before ours, so
            // the cursor below starts after its last value. Relaxed on failure: nothing read.
            if owned
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(LaneProducer {
                    lanes: self,
                    lane,
                    ring: &self.lanes[lane],
                    cursor: self.lanes[lane].raw().solo_cursor(),
                    _not_sync: PhantomData,
                });
            }
        }
        None
    }

    /// Claims the consumer side of every lane. `None` while another [`LanesConsumer`] is alive;
    /// dropping it frees the claim, and the next consumer continues where it stopped. (A
    /// consumer that is never dropped, `mem::forget`, keeps the claim for good.)
    ///
    /// ```
    /// let q: ringwal_core::Lanes<u8, 4, 2> = ringwal_core::Lanes::new();
    /// let first = q.consumer().unwrap();
    /// assert!(q.consumer().is_none());
    /// drop(first);
    /// assert!(q.consumer().is_some());
    /// ```
    pub fn consumer(&self) -> Option<LanesConsumer<'_, T, N, L>> {
        // Acquire pairs with the Release store in the previous consumer's drop, made after it
        // released every lane's consumer claim: those releases happen-before our claims of the
        // lanes below, so each claim's compare-and-swap reads "free" (coherence). The cursors'
        // own hand-off is each lane's claim (Acquire on the lane's flag, Release in its
        // release), as for any ring. Relaxed on failure: nothing read.
        self.consumer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        let cursors = core::array::from_fn(|lane| {
            // Only a `LanesConsumer` claims a lane's consumer side, and we hold the flag: the
            // previous one released every lane before releasing the flag.
            self.lanes[lane]
                .raw()
                .claim_consumer()
                .expect("lane consumers are only claimed under the consumer flag")
        });
        Some(LanesConsumer {
            lanes: self,
            cursors,
            next: 0,
            streak: 0,
            _not_sync: PhantomData,
        })
    }

    /// The number of lanes, `L`: at most this many producer handles at a time.
    pub const fn lanes(&self) -> usize {
        L
    }

    /// The slots of one lane, `N`: how many values one producer can have in the queue.
    pub const fn lane_capacity(&self) -> usize {
        N
    }

    /// All the slots, `L * N`.
    pub const fn capacity(&self) -> usize {
        L * N
    }

    /// How many values the lanes hold: a snapshot (each lane's own snapshot, one after
    /// another), exact when no push or pop runs concurrently.
    pub fn len(&self) -> usize {
        self.lanes.iter().map(Ring::len).sum()
    }

    /// Whether [`len`](Self::len) is 0 (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.lanes.iter().all(Ring::is_empty)
    }
}

impl<T, const N: usize, const L: usize> Default for Lanes<T, N, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize, const L: usize> fmt::Debug for Lanes<T, N, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("lanes", &L)
            .field("lane_capacity", &N)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A producer handle of [`Lanes`]: owns one lane and pushes into it with plain loads and stores
/// (the solo-producer push of [`Ring::split`]). `Send`, not `Sync`, not `Clone`: for another
/// producer, call [`Lanes::producer`] again. Dropping it frees the lane.
pub struct LaneProducer<'a, T, const N: usize = 4096, const L: usize = 8> {
    lanes: &'a Lanes<T, N, L>,
    lane: usize,
    /// `lanes.lanes[lane]`.
    ring: &'a Ring<T, N>,
    cursor: SoloCursor,
    _not_sync: PhantomData<Cell<()>>,
}

impl<'a, T, const N: usize, const L: usize> LaneProducer<'a, T, N, L> {
    /// Pushes `value` into this handle's lane, or returns it in [`Full`] if the lane has no free
    /// slot. Never waits; no read-modify-write.
    ///
    /// ```
    /// let q: ringwal_core::Lanes<u8, 2, 2> = ringwal_core::Lanes::new();
    /// let mut a = q.producer().unwrap();
    /// let mut b = q.producer().unwrap();
    /// a.try_push(1).unwrap();
    /// a.try_push(2).unwrap();
    /// assert_eq!(a.try_push(3).unwrap_err().into_inner(), 3); // a's lane is full
    /// b.try_push(10).unwrap(); // b's is not
    /// ```
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), Full<T>> {
        match self.ring.raw().push_solo::<false>(&mut self.cursor, value) {
            Ok(_) => Ok(()),
            Err(v) => Err(Full(v)),
        }
    }

    /// Which lane this handle owns (0 to `L - 1`).
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// The lanes this handle pushes into (for [`Lanes::producer`], to make another handle).
    pub fn lanes(&self) -> &'a Lanes<T, N, L> {
        self.lanes
    }
}

impl<T, const N: usize, const L: usize> Drop for LaneProducer<'_, T, N, L> {
    fn drop(&mut self) {
        // Release pairs with the Acquire claim of the lane's next owner in `Lanes::producer`:
        // every push of ours (the last store of the lane's `tail` included) happens-before its
        // pushes.
        self.lanes.owned[self.lane].store(false, Ordering::Release);
    }
}

impl<T, const N: usize, const L: usize> fmt::Debug for LaneProducer<'_, T, N, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneProducer")
            .field("lane", &self.lane)
            .field("pushed", &self.ring.pushed())
            .finish_non_exhaustive()
    }
}

/// The single consumer of [`Lanes`]: takes from every lane. Each handle's values come out in
/// its push order. `pop`, `try_pop` and `drain` share one turn: the lane of the last value
/// taken keeps it for up to `N` values in a row (a lap of it), then the next lane with a value
/// gets it, so a busy lane takes at most `N` values in a row while others have values.
/// `Send`, not `Sync`, not `Clone`.
pub struct LanesConsumer<'a, T, const N: usize = 4096, const L: usize = 8> {
    lanes: &'a Lanes<T, N, L>,
    cursors: [Cursor; L],
    /// The lane the next pop looks at first: the lane of the last value popped, until `N`
    /// values in a row came from it.
    next: usize,
    /// Values popped in a row from lane `next`.
    streak: usize,
    _not_sync: PhantomData<Cell<()>>,
}

impl<'a, T, const N: usize, const L: usize> LanesConsumer<'a, T, N, L> {
    /// The lane after `lane`.
    #[inline(always)]
    fn after(lane: usize) -> usize {
        if lane + 1 == L {
            0
        } else {
            lane + 1
        }
    }

    /// Takes a ready value, if any lane has one: from lane `next` on. Reads only the lanes'
    /// slots (never a producer's counter).
    #[inline]
    fn take_ready(&mut self) -> Option<T> {
        // The lane whose turn it is first: with one busy producer, the only look.
        let lane = self.next;
        if let Some(value) = self.lanes.lanes[lane]
            .raw()
            .pop_ready(&mut self.cursors[lane])
        {
            self.streak += 1;
            if self.streak == N {
                // A lap of this lane in a row: the other lanes' turn first.
                self.next = Self::after(lane);
                self.streak = 0;
            }
            return Some(value);
        }
        self.take_from_others()
    }

    /// [`take_ready`](Self::take_ready) past lane `next`, which had nothing: the first lane
    /// after it with a value gets the turn. Kept out of line: the fast path stays small.
    #[inline(never)]
    fn take_from_others(&mut self) -> Option<T> {
        let mut lane = self.next;
        for _ in 1..L {
            lane = Self::after(lane);
            if let Some(value) = self.lanes.lanes[lane]
                .raw()
                .pop_ready(&mut self.cursors[lane])
            {
                // `N >= 2` (a ring's capacity), so one value is never a whole lap.
                self.next = lane;
                self.streak = 1;
                return Some(value);
            }
        }
        None
    }

    /// Pops a value that is ready, never waiting. Lanes are looked at from the lane of the last
    /// value popped, which keeps its turn for up to `N` values in a row (a lap of it), then
    /// passes it on: one busy producer costs one look per value, and cannot hold the others
    /// off for longer than a lap. With no value ready it says [`TryPopError::Empty`], never
    /// `Pending` (see [`pop`](Self::pop) for why that answer is exact).
    ///
    /// ```
    /// use ringwal_core::{Lanes, TryPopError};
    /// let q: Lanes<u8, 4, 2> = Lanes::new();
    /// let mut a = q.producer().unwrap();
    /// let mut b = q.producer().unwrap();
    /// let mut rx = q.consumer().unwrap();
    /// a.try_push(1).unwrap();
    /// a.try_push(2).unwrap();
    /// b.try_push(10).unwrap();
    /// assert_eq!(rx.try_pop(), Ok(1));
    /// assert_eq!(rx.try_pop(), Ok(2)); // lane 0 keeps its turn while it has values
    /// assert_eq!(rx.try_pop(), Ok(10));
    /// assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        self.take_ready().ok_or(TryPopError::Empty)
    }

    /// Pops a value, in the same turn as [`try_pop`](Self::try_pop), or `None` if no lane has
    /// one ready. Never waits, so it is safe where the consumer can preempt a producer (an
    /// interrupt handler).
    ///
    /// `None` is exact (linearizable): every lane had no value at the instant of the first
    /// lane's look. A lane's producer is one handle at a time, and its push takes effect at
    /// its publication: a push still writing holds back only that handle's later pushes, never
    /// another lane's value, so there is nothing to wait for. A value stays published until the
    /// consumer takes it, so a lane found empty later was empty at that first instant too. The
    /// looks read only the lanes' slots, never a producer's counter: polling empty lanes does
    /// not pull the lines every push writes away from their producers.
    ///
    /// ```
    /// let q: ringwal_core::Lanes<u8, 4, 2> = ringwal_core::Lanes::new();
    /// let mut rx = q.consumer().unwrap();
    /// assert_eq!(rx.pop(), None);
    /// q.producer().unwrap().try_push(7).unwrap();
    /// assert_eq!(rx.pop(), Some(7));
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.take_ready()
    }

    /// An iterator over what is ready, never waiting, in the same turn as
    /// [`try_pop`](Self::try_pop): it ends at the first look that finds no lane with a ready
    /// value (and stays ended), or after `L * N` values, so it ends even while producers keep
    /// pushing. Dropping it early leaves the rest in the lanes.
    ///
    /// ```
    /// let q: ringwal_core::Lanes<u8, 4, 2> = ringwal_core::Lanes::new();
    /// let mut a = q.producer().unwrap();
    /// let mut b = q.producer().unwrap();
    /// let mut rx = q.consumer().unwrap();
    /// a.try_push(1).unwrap();
    /// b.try_push(10).unwrap();
    /// a.try_push(2).unwrap();
    /// assert_eq!(rx.drain().collect::<Vec<_>>(), [1, 2, 10]);
    /// ```
    pub fn drain(&mut self) -> LanesDrain<'_, 'a, T, N, L> {
        LanesDrain {
            consumer: self,
            remaining: N * L,
        }
    }

    /// The lanes this consumer reads.
    pub fn lanes(&self) -> &'a Lanes<T, N, L> {
        self.lanes
    }
}

impl<T, const N: usize, const L: usize> Drop for LanesConsumer<'_, T, N, L> {
    fn drop(&mut self) {
        for (ring, cursor) in self.lanes.lanes.iter().zip(&self.cursors) {
            ring.raw().release_consumer(cursor);
        }
        // Release pairs with the Acquire claim in `Lanes::consumer`: the next consumer claims
        // the lanes after every release above, and sees every cursor as we left it.
        self.lanes.consumer.store(false, Ordering::Release);
    }
}

impl<T, const N: usize, const L: usize> fmt::Debug for LanesConsumer<'_, T, N, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LanesConsumer")
            .field("next_lane", &self.next)
            .finish_non_exhaustive()
    }
}

/// The iterator returned by [`LanesConsumer::drain`]: what is ready, in the consumer's turn,
/// never waiting, at most `L * N` values. Fused: after its first `None`, always `None`.
pub struct LanesDrain<'d, 'a, T, const N: usize, const L: usize> {
    consumer: &'d mut LanesConsumer<'a, T, N, L>,
    /// Values it may still yield (0 once it found nothing).
    remaining: usize,
}

impl<T, const N: usize, const L: usize> Iterator for LanesDrain<'_, '_, T, N, L> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.remaining == 0 {
            return None;
        }
        match self.consumer.take_ready() {
            Some(value) => {
                self.remaining -= 1;
                Some(value)
            }
            None => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl<T, const N: usize, const L: usize> core::iter::FusedIterator for LanesDrain<'_, '_, T, N, L> {}

impl<T, const N: usize, const L: usize> fmt::Debug for LanesDrain<'_, '_, T, N, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LanesDrain")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}
