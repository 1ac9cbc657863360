//! The algorithm, shared by every front end (the inline [`Ring`](crate::Ring) and its
//! [`SoloProducer`](crate::SoloProducer), the heap rings behind `channel()`).
//!
//! The argument for the whole design is in the crate docs ("How it works"); the comments here
//! name, at each atomic access, what it pairs with.
//!
//! # Units
//! Positions are counted in *ticks*: position `p` is the tick `2p`, so bit 0 of a tick is
//! free. In `tail` it is the [`CLOSED`] flag (the std writer closes a ring with one
//! `fetch_or`, and every later claim fails because its compare-and-swap sees the bit); in a
//! slot's stamp it means "published". Ticks wrap at `usize::MAX`, so positions wrap at
//! 2^(`usize::BITS` - 1); every comparison is a wrapping difference read as a signed number,
//! and the capacity divides the position space, so nothing changes at the wrap.

use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{spin_loop, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

/// One position in ticks.
pub(crate) const TICK: usize = 2;
/// `tail`'s flag: the ring is closed to producers (see [`Raw::close`]).
pub(crate) const CLOSED: usize = 1;

/// Positions wrap at `POSITION_MASK + 1` = 2^(`usize::BITS` - 1): [`Ring::pushed`] and the
/// consumer's counts are positions modulo this. Compare two positions with
/// [`position_diff`].
///
/// [`Ring::pushed`]: crate::Ring::pushed
pub const POSITION_MASK: usize = usize::MAX >> 1;

/// `a - b` for two positions (as returned by `pushed()`), as a signed distance: correct across
/// the wrap of the position counter as long as the two are less than 2^(`usize::BITS` - 2)
/// apart.
///
/// ```
/// use ringwal_core::{position_diff, POSITION_MASK};
/// assert_eq!(position_diff(5, 3), 2);
/// assert_eq!(position_diff(3, 5), -2);
/// assert_eq!(position_diff(1, POSITION_MASK), 2); // across the wrap
/// ```
#[inline]
pub fn position_diff(a: usize, b: usize) -> isize {
    // In ticks the wrap is usize's own, so the plain wrapping difference is right.
    ((a << 1).wrapping_sub(b << 1) as isize) >> 1
}

/// Whether tick `a` comes before tick `b` (wrapping).
#[inline(always)]
pub(crate) fn before(a: usize, b: usize) -> bool {
    (a.wrapping_sub(b) as isize) < 0
}

/// How many values a consumer of an evicting ring moves out of the ring per compare-and-swap
/// (at most): its staging buffer's size.
pub const STAGE: usize = 32;

/// The largest capacity a ring may have, 2^(`usize::BITS` - 3): positions are compared by
/// wrapping differences read as signed numbers, which needs a lap well inside half the
/// position space.
pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 3);

mod sealed {
    pub trait Sealed {}
}

/// Whether a ring can evict: the type parameter that selects a ring's consumer protocol.
///
/// - [`NoEvict`] (the default): no `force_push`. Nothing but the consumer ever takes a value,
///   so the consumer takes with plain loads and stores, no read-modify-write at all.
/// - [`Evict`]: `force_push` evicts the oldest value when the ring is full. The consumer and
///   an evicting producer must then agree on who takes each value, so the consumer claims
///   runs of up to [`STAGE`] ready values with one compare-and-swap and moves them into a
///   staging buffer that belongs to the ring's consumer side.
///
/// Sealed: these two are the only modes.
pub trait Mode: sealed::Sealed + Send + Sync + 'static {
    /// Whether `force_push` exists (and the consumer claims by compare-and-swap).
    const EVICTS: bool;
    /// The consumer's staging buffer: nothing for [`NoEvict`].
    #[doc(hidden)]
    type Staging<T>: StagingArea<T>;
}

/// The default ring mode: no eviction, a consumer without read-modify-writes. See [`Mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NoEvict;

/// The evicting ring mode (`force_push`, drop-oldest). See [`Mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Evict;

impl sealed::Sealed for NoEvict {}
impl sealed::Sealed for Evict {}

impl Mode for NoEvict {
    const EVICTS: bool = false;
    type Staging<T> = NoStaging;
}

impl Mode for Evict {
    const EVICTS: bool = true;
    type Staging<T> = Staging<T>;
}

/// The consumer's staging buffer, as the algorithm sees it. Only the ring's current consumer
/// touches it (the consumer claim's Acquire/Release hands it over), so its methods are
/// `unsafe`: the caller is that consumer.
#[doc(hidden)]
pub trait StagingArea<T> {
    /// An empty buffer.
    #[cfg(not(loom))]
    const EMPTY: Self;
    /// An empty buffer (loom's cells are not `const`).
    #[cfg(loom)]
    fn empty() -> Self;
    /// Makes the memory at `slot` an empty buffer, in place: a heap ring's staging buffer is
    /// never built as a stack temporary (32 large values would not fit on a small stack).
    ///
    /// # Safety
    /// `slot` is valid for writes and suitably aligned for `Self`.
    unsafe fn init_in_place(slot: *mut Self);
    /// The next staged value, if any.
    ///
    /// # Safety
    /// The caller is the ring's consumer (or has exclusive access to the ring).
    unsafe fn pop(&self) -> Option<T>;
    /// Stores `values` (the staging buffer is empty).
    ///
    /// # Safety
    /// As for `pop`; and the buffer is empty.
    unsafe fn fill(&self, values: impl Iterator<Item = T>);
    /// How many values are staged.
    ///
    /// # Safety
    /// As for `pop`.
    unsafe fn staged(&self) -> usize;
}

/// [`NoEvict`]'s staging buffer: none.
#[doc(hidden)]
#[derive(Debug)]
pub struct NoStaging;

impl<T> StagingArea<T> for NoStaging {
    #[cfg(not(loom))]
    const EMPTY: Self = NoStaging;
    #[cfg(loom)]
    fn empty() -> Self {
        NoStaging
    }
    unsafe fn init_in_place(_slot: *mut Self) {
        // A zero-sized type: nothing to write.
    }
    #[inline(always)]
    unsafe fn pop(&self) -> Option<T> {
        None
    }
    #[inline(always)]
    unsafe fn fill(&self, values: impl Iterator<Item = T>) {
        // Never called: only an evicting consumer stages.
        debug_assert!(false, "a non-evicting ring stages nothing");
        values.for_each(drop);
    }
    #[inline(always)]
    unsafe fn staged(&self) -> usize {
        0
    }
}

/// [`Evict`]'s staging buffer: up to [`STAGE`] values the consumer has claimed and moved out
/// of the slots, handed out by the next pops. It belongs to the ring (not to one `Consumer`),
/// so values staged by a consumer that is dropped go to the next one.
#[doc(hidden)]
pub struct Staging<T> {
    values: UnsafeCell<[MaybeUninit<T>; STAGE]>,
    /// `values[next..end]` are staged.
    next: UnsafeCell<usize>,
    end: UnsafeCell<usize>,
}

impl<T> StagingArea<T> for Staging<T> {
    #[cfg(not(loom))]
    const EMPTY: Self = Staging {
        values: UnsafeCell::new([const { MaybeUninit::uninit() }; STAGE]),
        next: UnsafeCell::new(0),
        end: UnsafeCell::new(0),
    };

    #[cfg(loom)]
    fn empty() -> Self {
        Staging {
            values: UnsafeCell::new(core::array::from_fn(|_| MaybeUninit::uninit())),
            next: UnsafeCell::new(0),
            end: UnsafeCell::new(0),
        }
    }

    #[cfg(not(loom))]
    unsafe fn init_in_place(slot: *mut Self) {
        // SAFETY: `slot` is valid for writes and aligned (the caller's contract). The values
        // stay uninitialised, which `[MaybeUninit<T>; STAGE]` (behind the transparent
        // `UnsafeCell`) allows; the two indices are written.
        unsafe {
            core::ptr::addr_of_mut!((*slot).next).write(UnsafeCell::new(0));
            core::ptr::addr_of_mut!((*slot).end).write(UnsafeCell::new(0));
        }
    }

    #[cfg(loom)]
    unsafe fn init_in_place(slot: *mut Self) {
        // loom's cells carry state that must be constructed; loom models use small values.
        // SAFETY: `slot` is valid for writes and aligned (the caller's contract).
        unsafe { slot.write(Self::empty()) }
    }

    #[inline(always)]
    unsafe fn pop(&self) -> Option<T> {
        // SAFETY (all three cells): the caller is the only thread touching the staging buffer
        // (the trait's contract).
        let next = self.next.with(|p| unsafe { *p });
        let end = self.end.with(|p| unsafe { *p });
        if next == end {
            return None;
        }
        // SAFETY: `values[next]` was initialised by `fill` and not yet moved out (next < end).
        let value = self
            .values
            .with(|p| unsafe { (*p).get_unchecked(next).assume_init_read() });
        // SAFETY: exclusive access, as above.
        self.next.with_mut(|p| unsafe { *p = next + 1 });
        Some(value)
    }

    #[inline(always)]
    unsafe fn fill(&self, values: impl Iterator<Item = T>) {
        let mut n = 0;
        self.values.with_mut(|p| {
            for v in values.take(STAGE) {
                // SAFETY: exclusive access (the trait's contract); the buffer is empty, so
                // nothing live is overwritten; `n < STAGE` by `take`.
                unsafe { (*p).get_unchecked_mut(n).write(v) };
                n += 1;
            }
        });
        // SAFETY: exclusive access.
        self.next.with_mut(|p| unsafe { *p = 0 });
        // SAFETY: exclusive access.
        self.end.with_mut(|p| unsafe { *p = n });
    }

    #[inline(always)]
    unsafe fn staged(&self) -> usize {
        // SAFETY: exclusive access (the trait's contract).
        let next = self.next.with(|p| unsafe { *p });
        // SAFETY: as above.
        let end = self.end.with(|p| unsafe { *p });
        end - next
    }
}

/// One cell of the ring: a stamp that says which position the cell's value was published for,
/// and the value.
///
/// The stamp is `tick | 1` once the value of the position at `tick` is written; before that it
/// holds an older position's stamp, or 0 in a fresh ring (even, so never "published"). Only
/// producers write stamps; the consumer only reads them, so the lines a producer writes next
/// lap are never ones the consumer has written.
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
    /// The caller owns the position this slot holds (the consumer at its cursor, or the
    /// evictor that won the `head` compare-and-swap for it), saw its "published" stamp with
    /// `Acquire`, and nobody else reads or writes the value until the caller lets the slot go.
    #[inline(always)]
    unsafe fn take(&self) -> T {
        // SAFETY: the caller guarantees exclusive access and an initialised value (see above).
        self.value.with(|p| unsafe { (*p).assume_init_read() })
    }

    /// Writes a value into the free slot.
    ///
    /// # Safety
    /// The caller owns the position (it claimed it), the previous occupant of the slot has
    /// been moved out and that move happens-before this call, and nobody else touches the
    /// value until the caller publishes it.
    #[inline(always)]
    unsafe fn put(&self, value: T) {
        // SAFETY: the caller guarantees exclusive access (see above); the slot holds no live value.
        self.value.with_mut(|p| unsafe { (*p).write(value) });
    }
}

/// The producers' shared line: the claim counter and the cached bound of free positions.
struct ProducerSide {
    /// The next tick to claim, with [`CLOSED`] in bit 0. Advanced by compare-and-swap (shared
    /// producers) or by a plain store (a solo producer, the only writer then).
    tail: AtomicUsize,
    /// A cached bound: every tick before it is free to write (its previous occupant, one lap
    /// earlier, has been moved out). Refreshed from the consumer's `freed` when a producer
    /// reaches it. Only ever set from a value of `freed`, so it is never too high; a stale
    /// (lower) value only costs another refresh.
    limit: AtomicUsize,
}

/// The consumer's line.
struct ConsumerSide {
    /// Evicting rings only: the next tick nobody has claimed to take. Advanced by
    /// compare-and-swap, by the consumer (a run of values) and by evicting producers (one
    /// value each). Unused (0) in a non-evicting ring.
    head: AtomicUsize,
    /// Every position before this tick has been moved out of its slot for good (taken by the
    /// consumer, or evicted by the producer that owns the slot's next position). Stored by
    /// the consumer only, with `Release`, after it moved the values out; producers load it with
    /// `Acquire` before writing a slot of the next lap.
    freed: AtomicUsize,
    /// Evicting rings only: the tick of the next staged value to hand out (for `len`).
    yielded: AtomicUsize,
    /// Whether a consumer is alive.
    consumer: AtomicBool,
}

/// The shared counters, each side on its own cache line. Every front end holds one of these
/// next to its slots.
pub(crate) struct Counters {
    prod: CachePadded<ProducerSide>,
    cons: CachePadded<ConsumerSide>,
}

impl Counters {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Counters {
            prod: CachePadded::new(ProducerSide {
                tail: AtomicUsize::new(0),
                limit: AtomicUsize::new(0),
            }),
            cons: CachePadded::new(ConsumerSide {
                head: AtomicUsize::new(0),
                freed: AtomicUsize::new(0),
                yielded: AtomicUsize::new(0),
                consumer: AtomicBool::new(false),
            }),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Counters {
            prod: CachePadded::new(ProducerSide {
                tail: AtomicUsize::new(0),
                limit: AtomicUsize::new(0),
            }),
            cons: CachePadded::new(ConsumerSide {
                head: AtomicUsize::new(0),
                freed: AtomicUsize::new(0),
                yielded: AtomicUsize::new(0),
                consumer: AtomicBool::new(false),
            }),
        }
    }
}

/// The consumer's private cursor: where it reads next, and how many positions it found
/// evicted on its way.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// The next tick to read. Equal to `freed` whenever no call of the consumer is running.
    pub(crate) head: usize,
    /// Positions this cursor stepped over because `force_push` evicted them.
    pub(crate) evicted: u64,
    /// The ring's only producer is a solo one (`Ring::split`), whose pushes nobody waits
    /// behind: an unpublished position is then reported `Empty` without reading `tail`.
    pub(crate) solo: bool,
}

/// A solo producer's private cursor: it is the only producer, so it keeps `tail` and its cached
/// bound here and only publishes `tail` for snapshots.
#[derive(Debug)]
pub(crate) struct SoloCursor {
    tail: usize,
    limit: usize,
}

/// Why a push did not claim a position.
pub(crate) enum Refused<T> {
    /// No free slot (and the push does not evict).
    Full(T),
    /// The ring was closed ([`Raw::close`]).
    Closed(T),
}

/// How a claim is ordered: `Relaxed` for the public pushes, `SeqCst` for the std writer's,
/// which pairs its claim with a later `SeqCst` load of its own state word (see
/// `std-writer/src/signal.rs`). On x86 both are the same `lock cmpxchg`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
pub(crate) enum ClaimOrder {
    Relaxed,
    SeqCst,
}

impl ClaimOrder {
    #[inline(always)]
    fn ordering(self) -> Ordering {
        match self {
            ClaimOrder::Relaxed => Ordering::Relaxed,
            ClaimOrder::SeqCst => Ordering::SeqCst,
        }
    }
}

/// One ring, seen through its parts: the counters, the slots, the consumer's staging buffer and
/// the index mask.
///
/// Every push, pop and drop of every front end is a method here. [`Ring`](crate::Ring) builds a
/// `Raw` with the constant mask `N - 1` (folded into every index), the heap ring with its
/// run-time mask. Invariant (what makes `slot`'s unchecked index sound): `slots.len()` is a
/// power of two, at least 2 and at most [`MAX_CAPACITY`], and `mask == slots.len() - 1`.
pub(crate) struct Raw<'a, T, M: Mode> {
    counters: &'a Counters,
    slots: &'a [Slot<T>],
    staging: &'a M::Staging<T>,
    mask: usize,
    _mode: PhantomData<M>,
}

impl<T, M: Mode> Clone for Raw<'_, T, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, M: Mode> Copy for Raw<'_, T, M> {}

impl<'a, T, M: Mode> Raw<'a, T, M> {
    /// # Panics
    /// In debug builds, if `slots` breaks the invariant above (a bug in a front end).
    #[inline(always)]
    pub(crate) fn new(
        counters: &'a Counters,
        slots: &'a [Slot<T>],
        staging: &'a M::Staging<T>,
    ) -> Self {
        debug_assert!(slots.len().is_power_of_two() && (2..=MAX_CAPACITY).contains(&slots.len()));
        Raw {
            counters,
            slots,
            staging,
            mask: slots.len().wrapping_sub(1),
            _mode: PhantomData,
        }
    }

    #[inline(always)]
    fn slot(&self, tick: usize) -> &'a Slot<T> {
        let index = (tick >> 1) & self.mask;
        debug_assert!(index < self.slots.len());
        // Unchecked: for the inline ring the compiler sees the constant length anyway; for the
        // heap ring this saves the bounds check on every push and pop.
        // SAFETY: `mask == slots.len() - 1`, a power of two minus one (every constructor of
        // `Raw` keeps that invariant), so `(tick >> 1) & mask < slots.len()`.
        unsafe { self.slots.get_unchecked(index) }
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.mask.wrapping_add(1)
    }

    /// One lap, in ticks.
    #[inline(always)]
    fn span(&self) -> usize {
        self.capacity() << 1
    }

    /// Sets every counter as if `position` values had passed through an empty ring. Only for
    /// a ring nobody else has seen yet (the `new_at` test constructors).
    pub(crate) fn start_at(&self, position: usize) {
        let tick = position << 1;
        let prod = &*self.counters.prod;
        let cons = &*self.counters.cons;
        prod.tail.store(tick, Ordering::Relaxed);
        prod.limit.store(tick, Ordering::Relaxed);
        cons.head.store(tick, Ordering::Relaxed);
        cons.freed.store(tick, Ordering::Relaxed);
        cons.yielded.store(tick, Ordering::Relaxed);
        // Stamps stay 0: even, so "published" for no position. Not yet shared: the caller
        // publishes the ring by moving it, which gives the happens-before edge for these
        // relaxed stores (a spawn, a `static` initialiser, an Arc).
    }

    /// The producers' tick (closed flag removed): a snapshot.
    #[inline(always)]
    fn tail_tick(&self) -> usize {
        // Relaxed: a snapshot. Coherence alone makes a claim that happens-before this load
        // visible to it; nothing is read through this value.
        self.counters.prod.tail.load(Ordering::Relaxed) & !CLOSED
    }

    /// How many values the ring holds (a snapshot; exact when nothing runs concurrently).
    pub(crate) fn len(&self) -> usize {
        let cons = &*self.counters.cons;
        // Relaxed: a snapshot with no ordering promise. The consumer's side is read first, so
        // pops that land in between can only make the difference larger; the clamp bounds it.
        let (front, staged) = if M::EVICTS {
            let head = cons.head.load(Ordering::Relaxed);
            let freed = cons.freed.load(Ordering::Relaxed);
            let yielded = cons.yielded.load(Ordering::Relaxed);
            let staged = (freed.wrapping_sub(yielded) as isize).clamp(0, STAGE as isize * 2);
            (head, staged as usize >> 1)
        } else {
            (cons.freed.load(Ordering::Relaxed), 0)
        };
        let tail = self.tail_tick();
        let in_slots = tail.wrapping_sub(front) as isize;
        let in_slots = if in_slots < 0 {
            0
        } else {
            (in_slots as usize >> 1).min(self.capacity())
        };
        in_slots + staged
    }

    /// The producers' position: how many positions have been claimed (modulo
    /// 2^(`usize::BITS` - 1)). A snapshot.
    #[inline]
    pub(crate) fn pushed(&self) -> usize {
        self.tail_tick() >> 1
    }

    /// [`pushed`](Self::pushed) with a `SeqCst` load: pairs with a `SeqCst` claim through the
    /// single total order (a thread that made a `SeqCst` change before this load either sees
    /// the claim here, or the claimant's later `SeqCst` load sees its change).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn pushed_seqcst(&self) -> usize {
        (self.counters.prod.tail.load(Ordering::SeqCst) & !CLOSED) >> 1
    }

    /// Whether [`close`](Self::close) was called.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn is_closed(&self) -> bool {
        // SeqCst: the std writer's refusal handshake re-reads the flag after counting a refusal
        // (see `std-writer/src/signal.rs`); elsewhere a snapshot of a flag that never clears.
        self.counters.prod.tail.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Closes the ring to producers: every claim after this fails with [`Refused::Closed`].
    /// Returns the final producers' position: every position before it was claimed before the
    /// close and will be published (no push stops between claiming and publishing).
    ///
    /// Only for rings whose producers claim by compare-and-swap (a solo producer stores `tail`
    /// and would overwrite the flag).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn close(&self) -> usize {
        // SeqCst: the std writer reads its refusal counters after this with SeqCst, and an
        // emit that counted a refusal re-reads `tail` with SeqCst after counting: one of the
        // two sees the other (see `std-writer/src/signal.rs`). The RMW itself is what stops
        // claims: every claim is a compare-and-swap on this word, which fails once the flag
        // is set.
        let tail = self.counters.prod.tail.fetch_or(CLOSED, Ordering::SeqCst);
        // loom treats SeqCst accesses as AcqRel; the fence is what it models of this SeqCst
        // RMW (see `std-writer/src/signal.rs`, "Under loom").
        #[cfg(loom)]
        crate::sync::fence(Ordering::SeqCst);
        (tail & !CLOSED) >> 1
    }

    /// Refreshes the cached bound from the consumer's `freed`. Returns the new bound if `tick`
    /// is now before it (free), `None` if the ring is full for `tick`.
    #[inline(always)]
    fn refresh_limit(&self, tick: usize) -> Option<usize> {
        // Acquire pairs with the consumer's Release store of `freed`, made after it moved the
        // values out: their reads happen-before our write of a slot they occupied.
        let freed = self.counters.cons.freed.load(Ordering::Acquire);
        let limit = freed.wrapping_add(self.span());
        if before(tick, limit) {
            Some(limit)
        } else {
            None
        }
    }

    /// Writes `value` into the slot of the claimed position `tick` and publishes it.
    ///
    /// # Safety
    /// The caller claimed `tick`, and the slot's previous occupant (one lap earlier) has been
    /// moved out, that move happening-before this call.
    #[inline(always)]
    unsafe fn write_and_publish(&self, tick: usize, value: T) {
        let slot = self.slot(tick);
        // SAFETY: the caller's contract.
        unsafe { slot.put(value) };
        // Release pairs with the consumer's (or an evictor's) Acquire stamp load: whoever sees
        // "published for `tick`" sees the value written above.
        slot.stamp.store(tick | 1, Ordering::Release);
    }

    /// A push by one of possibly many producers: claims a position with a compare-and-swap on
    /// `tail`. When the ring is full, refuses (`EVICT_ON_FULL == false`) or, on an evicting
    /// ring, evicts the value in the slot it needs and returns it (see `may_evict_for`).
    #[inline(always)]
    pub(crate) fn push_shared<const EVICT_ON_FULL: bool>(
        self,
        value: T,
        order: ClaimOrder,
    ) -> Result<Option<T>, Refused<T>> {
        debug_assert!(!EVICT_ON_FULL || M::EVICTS);
        let prod = &*self.counters.prod;
        let mut tail = prod.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(Refused::Closed(value));
            }
            // Acquire pairs with the Release store of `limit` below (by whichever producer
            // refreshed it), which followed that producer's Acquire load of `freed`: the
            // consumer's moves out of every slot before `limit` happen-before our write.
            let mut limit = prod.limit.load(Ordering::Acquire);
            let mut full = false;
            if !before(tail, limit) {
                match self.refresh_limit(tail) {
                    Some(fresh) => {
                        limit = fresh;
                        // Release: see the Acquire load above. A slower producer may store an
                        // older bound over ours; that only costs someone a refresh.
                        prod.limit.store(limit, Ordering::Release);
                    }
                    None if EVICT_ON_FULL => {
                        if !self.may_evict_for(tail) {
                            // Someone is mid-way with the oldest position (a few instructions):
                            // look again. We hold nothing meanwhile.
                            spin_loop();
                            tail = prod.tail.load(Ordering::Relaxed);
                            continue;
                        }
                        full = true;
                    }
                    None => return Err(Refused::Full(value)),
                }
            }
            debug_assert!(full || before(tail, limit));
            // The claim. Relaxed for the public pushes: it only decides which producer owns
            // `tail` (the value's visibility is the stamp's business, the slot's freedom was
            // established by the Acquire loads above). SeqCst for the std writer (see
            // `ClaimOrder`). It fails if another producer claimed `tail` first, or if the ring
            // was closed (the flag changed the word).
            match prod.tail.compare_exchange_weak(
                tail,
                tail.wrapping_add(TICK),
                order.ordering(),
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    #[cfg(loom)]
                    if order == ClaimOrder::SeqCst {
                        // loom treats SeqCst accesses as AcqRel; the fence is what it models of
                        // the SeqCst claim (see `std-writer/src/signal.rs`).
                        crate::sync::fence(Ordering::SeqCst);
                    }
                    if full {
                        // SAFETY: we claimed `tail` after `may_evict_for(tail)` held.
                        return Ok(unsafe { self.evict_claimed(tail, value) });
                    }
                    // SAFETY: we claimed `tail`, and it is before `limit`: its slot's previous
                    // occupant was moved out (see the Acquire loads above). Nobody else evicts
                    // it: only the owner of `tail` evicts the position one lap before.
                    unsafe { self.write_and_publish(tail, value) };
                    return Ok(None);
                }
                Err(now) => tail = now,
            }
        }
    }

    /// A push by the ring's only producer: no compare-and-swap, the bound cached in `cursor`.
    #[inline(always)]
    pub(crate) fn push_solo<const EVICT_ON_FULL: bool>(
        self,
        cursor: &mut SoloCursor,
        value: T,
    ) -> Result<Option<T>, T> {
        debug_assert!(!EVICT_ON_FULL || M::EVICTS);
        let tail = cursor.tail;
        let mut full = false;
        if !before(tail, cursor.limit) {
            loop {
                match self.refresh_limit(tail) {
                    Some(fresh) => cursor.limit = fresh,
                    None if EVICT_ON_FULL => {
                        if !self.may_evict_for(tail) {
                            // The consumer is moving the oldest out (a few instructions).
                            spin_loop();
                            continue;
                        }
                        full = true;
                    }
                    None => return Err(value),
                }
                break;
            }
        }
        cursor.tail = tail.wrapping_add(TICK);
        // Relaxed: `tail` is only a snapshot for others (`len`, `pushed`, `try_pop`'s Empty vs
        // Pending); the value's publication is the stamp's Release store. Stored before the
        // value is published, as a shared producer's claim is. With [`CLOSED`] set: while a
        // solo producer lives, every shared claim must fail (see `begin_solo`), and this store
        // is the only write of `tail` then, so it keeps the flag.
        self.counters
            .prod
            .tail
            .store(cursor.tail | CLOSED, Ordering::Relaxed);
        if full {
            // SAFETY: we claimed `tail` after `may_evict_for(tail)` held.
            return Ok(unsafe { self.evict_claimed(tail, value) });
        }
        // SAFETY: `tail` is ours and before the bound: its slot is free (as in `push_shared`).
        unsafe { self.write_and_publish(tail, value) };
        Ok(None)
    }

    /// A solo producer's cursor for this ring, continuing from its `tail`. The flag in `tail`,
    /// if any, is a previous solo producer's (see [`begin_solo`](Self::begin_solo)).
    pub(crate) fn solo_cursor(&self) -> SoloCursor {
        // Relaxed: called with exclusive access (`split(&mut self)`), on a ring nobody else
        // has seen, or by a `Lanes` producer right after its Acquire claim of the lane, which
        // pairs with the previous owner's Release release: its last store of `tail` is
        // visible.
        let tail = self.counters.prod.tail.load(Ordering::Relaxed) & !CLOSED;
        SoloCursor { tail, limit: tail }
    }

    /// Makes this ring refuse shared claims while a solo producer lives: sets [`CLOSED`] in
    /// `tail`, which every shared claim (a compare-and-swap expecting it clear) then sees. A
    /// solo producer keeps its position in its own cursor and stores `tail` without reading
    /// it, so a shared claim next to it would take a position the solo producer writes again
    /// (a live value overwritten, or two threads writing one slot). `Ring::split` hands out
    /// `&Ring` through its halves (`SoloProducer::ring`, `Consumer::ring`), so this must be
    /// refused at run time. Every solo push keeps the flag (`push_solo`);
    /// [`end_solo`](Self::end_solo) clears it.
    ///
    /// Only with exclusive access (`split(&mut self)`): nothing else runs on the ring.
    pub(crate) fn begin_solo(&self) {
        // Relaxed: exclusive access; whoever later reaches the ring through the halves got
        // them from this thread after this store (a spawn, a scope, a channel), which orders
        // it before their loads.
        let tail = self.counters.prod.tail.load(Ordering::Relaxed);
        self.counters
            .prod
            .tail
            .store(tail | CLOSED, Ordering::Relaxed);
    }

    /// The solo producer is gone: clears the flag [`begin_solo`](Self::begin_solo) set, so
    /// shared claims continue from its position.
    pub(crate) fn end_solo(&self, cursor: &SoloCursor) {
        // Relaxed: the solo producer is the only writer of `tail` until this store, and a
        // shared claim needs nothing from it but the value (coherence): the slot it writes
        // next is freed through the consumer's `freed` (Acquire), and an evictor acquires the
        // stamp of the value it evicts, as for any claim.
        self.counters
            .prod
            .tail
            .store(cursor.tail, Ordering::Relaxed);
    }

    /// Whether a push that found the ring full may claim `tick` and evict the position one lap
    /// earlier, `old`: nobody has claimed `old` to take it (`head == old`) and it is published.
    /// Checked *before* claiming, so that a push never waits while holding a claim others
    /// depend on (a preempted waiter would stall every push behind it; measured: a 2-slot ring
    /// with three evicting producers on two cores fell to ~300 pushes/s when evictors claimed
    /// first and waited for the oldest position afterwards).
    ///
    /// When it holds, only the consumer can take `old` before we do: another evictor would
    /// have to own `tick` (the claim decides), and a producer would have to own `old` (it is
    /// published already).
    #[inline(always)]
    fn may_evict_for(&self, tick: usize) -> bool {
        let old = tick.wrapping_sub(self.span());
        // Relaxed: compared only; the compare-and-swap in `evict_claimed` decides.
        self.counters.cons.head.load(Ordering::Relaxed) == old
            // Acquire pairs with `old`'s producer's Release publish: if we evict it, we read
            // its value (nobody writes that slot before we do: its next position is `tick`).
            && self.slot(tick).stamp.load(Ordering::Acquire) == old | 1
    }

    /// A push that found the ring full, saw [`may_evict_for`](Self::may_evict_for) hold and then
    /// claimed `tick`: evicts `old` (one lap earlier) and returns its value, unless the consumer
    /// claimed `old` first; then it waits for the consumer to finish moving its run out (a few
    /// instructions, no user code) and returns `None`. Writes and publishes `value` as `tick`.
    ///
    /// # Safety
    /// The caller claimed `tick` on an evicting ring, after `may_evict_for(tick)` held.
    #[inline(never)]
    unsafe fn evict_claimed(&self, tick: usize, value: T) -> Option<T> {
        let cons = &*self.counters.cons;
        let old = tick.wrapping_sub(self.span());
        // Relaxed: the compare-and-swap only arbitrates ownership of `old` against the
        // consumer's run claims; the value's visibility came with the Acquire stamp load in
        // `may_evict_for`.
        if cons
            .head
            .compare_exchange(
                old,
                old.wrapping_add(TICK),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            let slot = self.slot(tick);
            // SAFETY: we own `old` (won `head` for it), saw it published (Acquire, before our
            // claim), and nobody else touches the slot: its next position, `tick`, is ours.
            let evicted = unsafe { slot.take() };
            // SAFETY: the slot's previous value was moved out just above, by us.
            unsafe { self.write_and_publish(tick, value) };
            return Some(evicted);
        }
        // Only the consumer moves `head` off `old` besides us: it claimed `old` in a run. Wait
        // until it has moved the run out: Acquire pairs with its Release store of `freed`.
        while !before(old, cons.freed.load(Ordering::Acquire)) {
            spin_loop();
        }
        // SAFETY: we own `tick`, and `old` was moved out before `freed` passed it.
        unsafe { self.write_and_publish(tick, value) };
        None
    }

    pub(crate) fn claim_consumer(self) -> Option<Cursor> {
        let cons = &*self.counters.cons;
        // Acquire pairs with the Release store in `release_consumer`: the new consumer starts
        // from the cursor (and the staging buffer) the previous one left.
        cons.consumer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(Cursor {
            // Relaxed: stored by the previous consumer before its Release store of the flag,
            // which our Acquire claim read. Evictions since then are counted by our first pop.
            head: cons.freed.load(Ordering::Relaxed),
            evicted: 0,
            solo: false,
        })
    }

    /// Clears the consumer claim flag. Only with exclusive access to the ring, where a set flag
    /// can only be left by a consumer that was leaked (`mem::forget`).
    pub(crate) fn force_release_consumer(self) {
        // Relaxed: exclusive access (the caller's `&mut`).
        self.counters.cons.consumer.store(false, Ordering::Relaxed);
    }

    pub(crate) fn release_consumer(self, cursor: &Cursor) {
        debug_assert_eq!(
            cursor.head,
            self.counters.cons.freed.load(Ordering::Relaxed),
            "the cursor is published in `freed` after every call"
        );
        // Release pairs with the Acquire claim in `claim_consumer`: the next consumer sees our
        // cursor and the staging buffer as we left them.
        self.counters.cons.consumer.store(false, Ordering::Release);
    }

    /// Takes the value at the cursor if it is published. Never waits; `None` when the next
    /// position is empty or claimed but not yet published. Reads only the consumer's own line
    /// and the slots, never `tail` (the producers' hottest line).
    #[inline(always)]
    pub(crate) fn pop_ready(self, cursor: &mut Cursor) -> Option<T> {
        if M::EVICTS {
            return self.pop_staged(cursor);
        }
        let head = cursor.head;
        let slot = self.slot(head);
        // Acquire pairs with the producer's Release publish: the value is visible.
        if slot.stamp.load(Ordering::Acquire) != head | 1 {
            return None;
        }
        // SAFETY: position `head` is ours (in a non-evicting ring nobody but the consumer
        // takes), and its stamp said published (Acquire).
        let value = unsafe { slot.take() };
        cursor.head = head.wrapping_add(TICK);
        // Release pairs with the producers' Acquire load of `freed` (`refresh_limit`): our
        // read of the value happens-before the write of the slot's next position.
        self.counters
            .cons
            .freed
            .store(cursor.head, Ordering::Release);
        Some(value)
    }

    /// An evicting ring's pop: from the staging buffer, claiming a new run when it is empty.
    #[inline(always)]
    fn pop_staged(self, cursor: &mut Cursor) -> Option<T> {
        // SAFETY: we are the consumer (the caller holds the cursor, which only a claimed
        // consumer has).
        if let Some(v) = unsafe { self.staging.pop() } {
            self.note_yielded(cursor);
            return Some(v);
        }
        // The common case of a consumer keeping up: exactly one value ready. Claim it with one
        // compare-and-swap, no staging (the same orderings as `claim_run`, run == 1).
        let head = cursor.head;
        let next = head.wrapping_add(TICK);
        // Acquire (both): pairs with the producers' Release publish (see `claim_run`).
        if self.slot(head).stamp.load(Ordering::Acquire) == head | 1
            && self.slot(next).stamp.load(Ordering::Acquire) != next | 1
        {
            let cons = &*self.counters.cons;
            // Relaxed: arbitrates ownership of `head` against an evictor (see `claim_run`).
            if cons
                .head
                .compare_exchange(head, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: position `head` is ours (the compare-and-swap) and was seen published
                // (Acquire); nobody touches the slot until we store `freed` past it.
                let value = unsafe { self.slot(head).take() };
                cursor.head = next;
                // Release pairs with the producers' Acquire loads of `freed` (see `claim_run`).
                cons.freed.store(next, Ordering::Release);
                // Relaxed: a snapshot for `len` (nothing is staged).
                cons.yielded.store(next, Ordering::Relaxed);
                return Some(value);
            }
        }
        self.claim_run(cursor)
    }

    /// Publishes (for `len`) where the staged values still to hand out begin.
    #[inline(always)]
    fn note_yielded(&self, cursor: &Cursor) {
        // SAFETY: we are the consumer (see `pop_staged`).
        let staged = unsafe { self.staging.staged() };
        // Relaxed: a snapshot for `len`.
        self.counters
            .cons
            .yielded
            .store(cursor.head.wrapping_sub(staged * TICK), Ordering::Relaxed);
    }

    /// An evicting ring's consumer claims the run of published values at its cursor (at most
    /// [`STAGE`]) with one compare-and-swap on `head`, moves them out of their slots (the first
    /// to the caller, the rest into the staging buffer), and frees the slots. Steps over (and
    /// counts) positions evicted before it got there. `None`: nothing published at the cursor.
    #[inline(never)]
    fn claim_run(self, cursor: &mut Cursor) -> Option<T> {
        let cons = &*self.counters.cons;
        let mut head = cursor.head;
        loop {
            let mut run = 0;
            // Acquire pairs with each producer's Release publish: the values are visible. A run
            // never reaches a position one lap on (that slot's stamp is still the earlier one).
            while run < STAGE
                && self
                    .slot(head.wrapping_add(run * TICK))
                    .stamp
                    .load(Ordering::Acquire)
                    == head.wrapping_add(run * TICK) | 1
            {
                run += 1;
            }
            if run == 0 {
                // Not published at `head`: nothing there yet, or `head` was evicted and its
                // evictor already published its own value over it (its `head` CAS comes before
                // that Release publish, which our Acquire stamp load read, so this load sees
                // `head` moved on). Relaxed: that happens-before edge is all it needs.
                let now = cons.head.load(Ordering::Relaxed);
                if now == head {
                    cursor.head = head;
                    return None;
                }
                self.step_over_evicted(cursor, head, now);
                head = now;
                continue;
            }
            // Relaxed: the compare-and-swap only arbitrates ownership against evictors, which
            // claim one position each, at `head`; visibility came with the stamps.
            match cons.head.compare_exchange(
                head,
                head.wrapping_add(run * TICK),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let raw = self;
                    // SAFETY (this take and the ones below): positions `head .. head + run` are
                    // ours (the compare-and-swap), each seen published with Acquire; nobody else
                    // touches these slots until we store `freed` past them.
                    let first = unsafe { raw.slot(head).take() };
                    if run > 1 {
                        let rest = (1..run).map(|i| {
                            // SAFETY: as for `first` above: positions up to `head + run` are
                            // ours, each seen published.
                            unsafe { raw.slot(head.wrapping_add(i * TICK)).take() }
                        });
                        // SAFETY: we are the consumer and the staging buffer is empty (we only
                        // claim when it is).
                        unsafe { self.staging.fill(rest) };
                    }
                    cursor.head = head.wrapping_add(run * TICK);
                    // Release pairs with the producers' Acquire loads of `freed`
                    // (`refresh_limit`, `evict_claimed`): our moves happen-before their writes.
                    cons.freed.store(cursor.head, Ordering::Release);
                    self.note_yielded(cursor);
                    return Some(first);
                }
                Err(now) => {
                    // Only evictors move `head` besides us, one position each.
                    self.step_over_evicted(cursor, head, now);
                    head = now;
                }
            }
        }
    }

    /// The consumer found positions `from .. to` evicted: counts them, and moves `freed` past
    /// them (each evicted slot belongs to its evictor, which owns the slot's next position, so
    /// nobody else can write there; and the next consumer, starting from `freed`, must not
    /// count them again).
    fn step_over_evicted(&self, cursor: &mut Cursor, from: usize, to: usize) {
        cursor.evicted += (to.wrapping_sub(from) >> 1) as u64;
        let cons = &*self.counters.cons;
        // Release: as every store of `freed` (no value moved here, but uniform is simpler to
        // argue: it never weakens anything).
        cons.freed.store(to, Ordering::Release);
        // Relaxed: a snapshot for `len` (the staging buffer is empty here).
        cons.yielded.store(to, Ordering::Relaxed);
    }

    /// The consumer's position: values handed out plus values evicted, from the ring's start
    /// (positions, not ticks). Values claimed into the staging buffer and not yet handed out
    /// are not counted. (Only the heap channel's `Receiver::position` asks.)
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn position(self, cursor: &Cursor) -> usize {
        // SAFETY: the caller holds the cursor, so it is the consumer.
        let staged = unsafe { self.staging.staged() };
        cursor.head.wrapping_sub(staged * TICK) >> 1
    }

    /// [`pop_ready`](Self::pop_ready), telling apart why there was no value.
    #[inline(always)]
    pub(crate) fn try_pop(self, cursor: &mut Cursor) -> Result<T, crate::TryPopError> {
        match self.pop_ready(cursor) {
            Some(value) => Ok(value),
            // A solo producer's push takes effect at its publication: nothing pushed after it
            // can be ready while it is not (it is that thread's next push), so reporting it
            // `Empty` is true at the instant of our stamp load, and a push that
            // happens-before this call was seen published by it. Not reading `tail` here keeps
            // a consumer that polls an empty ring off the producer's line: the producer stores
            // `tail` on every push, and each such read cost it a transfer of that line
            // (measured: `compare`'s SPSC 64-byte throughput, popping one value at a time,
            // 7-8 M values/s with the read and 35 without, same run).
            None if cursor.solo => Err(crate::TryPopError::Empty),
            None => {
                // Empty or pending: has any push claimed the cursor's position? A push that
                // happens-before this call claimed its position before it returned, so
                // coherence shows its claim here (and its stamp store, which happens-before
                // too, was seen by `pop_ready`'s stamp load: such a push is never reported
                // `Empty`). A claim racing with us may or may not be seen; either answer is
                // true at some instant of the call.
                Err(if self.claimed_past(cursor) {
                    crate::TryPopError::Pending
                } else {
                    crate::TryPopError::Empty
                })
            }
        }
    }

    /// Whether a push has claimed the cursor's position (published or not): `tail` is past it.
    /// A snapshot, as `try_pop`'s.
    #[inline]
    pub(crate) fn claimed_past(self, cursor: &Cursor) -> bool {
        self.tail_tick() != cursor.head
    }

    /// Pops the value at the cursor, waiting out a producer (or evictor) that has claimed the
    /// next position and not yet published it. `None` only when the ring is empty.
    #[inline]
    pub(crate) fn pop(self, cursor: &mut Cursor) -> Option<T> {
        loop {
            match self.try_pop(cursor) {
                Ok(value) => return Some(value),
                Err(crate::TryPopError::Empty) => return None,
                // The claimant is a few instructions from publishing (no user code runs between
                // claim and publish), unless it was preempted: see the callers' docs.
                Err(crate::TryPopError::Pending) => spin_loop(),
            }
        }
    }

    /// Drops every value still in the ring (staged ones included).
    ///
    /// # Safety
    /// The caller has exclusive access to the ring (it is being dropped), and whatever gave it
    /// that access (a join, the last `Arc` drop) happens-after every push and pop.
    pub(crate) unsafe fn drop_values(self) {
        // SAFETY: exclusive access (the caller's contract).
        while let Some(v) = unsafe { self.staging.pop() } {
            drop(v);
        }
        let cons = &*self.counters.cons;
        // Relaxed loads: exclusive access, and the happens-before edge above, show the final
        // state. Positions before `head` (evicting) or `freed` were taken.
        let mut tick = if M::EVICTS {
            cons.head.load(Ordering::Relaxed)
        } else {
            cons.freed.load(Ordering::Relaxed)
        };
        let tail = self.tail_tick();
        while tick != tail {
            let slot = self.slot(tick);
            // Every position in [front, tail) was published (no push stops between claiming
            // and publishing: nothing in between can panic). Check anyway: leaking beats UB.
            if slot.stamp.load(Ordering::Relaxed) == tick | 1 {
                // SAFETY: exclusive access (the caller's contract), and the stamp says the
                // slot holds the initialised value of this position, which nobody has taken.
                drop(unsafe { slot.take() });
            }
            tick = tick.wrapping_add(TICK);
        }
    }
}
