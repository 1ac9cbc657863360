//! `channel(capacity)`: a ring whose capacity is chosen at run time, on the heap, behind an
//! `Arc`, with a cloneable [`Producer`] and one [`Receiver`].
//!
//! The heap ring is the same algorithm as [`Ring`](crate::Ring) — the same code (`raw::Raw`) —
//! over a boxed slice of slots instead of an inline array, with the index mask read at run time.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;

use crate::raw::{
    ClaimOrder, Counters, Cursor, Evict, Mode, NoEvict, Raw, Refused, Slot, StagingArea,
    MAX_CAPACITY,
};
use crate::ring::{Drain, Full, TryPopError};
use crate::sync::Arc;

/// Why [`try_channel`] could not build a ring.
///
/// ```
/// use ringwal_core::{try_channel, CapacityError};
/// assert_eq!(try_channel::<u8>(1000).unwrap_err(), CapacityError::Invalid { capacity: 1000 });
/// assert!(try_channel::<u8>(1024).is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CapacityError {
    /// The capacity is not a power of two of at least 2 (and at most 2^(`usize::BITS` - 3)).
    Invalid {
        /// The capacity asked for.
        capacity: usize,
    },
    /// The allocator could not provide the slots.
    OutOfMemory {
        /// The capacity asked for.
        capacity: usize,
    },
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CapacityError::Invalid { capacity } => write!(
                f,
                "ring capacity {capacity} is not a power of two between 2 and 2^{}",
                usize::BITS - 3
            ),
            CapacityError::OutOfMemory { capacity } => {
                write!(f, "cannot allocate a ring of {capacity} slots")
            }
        }
    }
}

impl core::error::Error for CapacityError {}

/// Why [`Producer::try_push_checked`] did not push: the ring was full, or closed with
/// [`Producer::close`]. Holds the value, untouched.
///
/// ```
/// let (tx, _rx) = ringwal_core::channel::<u8>(2);
/// tx.close();
/// let e = tx.try_push_checked(1).unwrap_err();
/// assert!(matches!(e, ringwal_core::PushError::Closed(1)));
/// assert_eq!(e.into_inner(), 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushError<T> {
    /// No free slot.
    Full(T),
    /// The channel was closed to producers.
    Closed(T),
}

impl<T> PushError<T> {
    /// Gives the value back.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) | PushError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "Full(..)",
            PushError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "ring is full",
            PushError::Closed(_) => "ring is closed",
        })
    }
}

impl<T> core::error::Error for PushError<T> {}

impl<T> From<Refused<T>> for PushError<T> {
    fn from(r: Refused<T>) -> Self {
        match r {
            Refused::Full(v) => PushError::Full(v),
            Refused::Closed(v) => PushError::Closed(v),
        }
    }
}

/// The heap ring: the shared counters, the consumer's staging buffer and a boxed slice of
/// slots, whose length is the capacity.
struct HeapRing<T, M: Mode> {
    counters: Counters,
    staging: Box<M::Staging<T>>,
    slots: Box<[Slot<T>]>,
}

/// An empty staging buffer on the heap, built in place (never a stack temporary); `None` if
/// the allocator cannot provide it.
fn boxed_staging<T, M: Mode>() -> Option<Box<M::Staging<T>>> {
    let layout = Layout::new::<M::Staging<T>>();
    let ptr: *mut M::Staging<T> = if layout.size() == 0 {
        NonNull::dangling().as_ptr()
    } else {
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc::alloc(layout) };
        if raw.is_null() {
            return None;
        }
        raw.cast()
    };
    // SAFETY: `ptr` is valid for writes and aligned for the type: freshly allocated with its
    // layout, or dangling for a zero-sized type (valid for zero-sized writes).
    unsafe { <M::Staging<T> as StagingArea<T>>::init_in_place(ptr) };
    // SAFETY: `ptr` was allocated by the global allocator with `Layout::new::<Self>()` (or is
    // the dangling pointer `Box` uses for zero-sized types) and now holds an initialised value.
    Some(unsafe { Box::from_raw(ptr) })
}

// SAFETY: as for `Ring`: values move between threads (so `T: Send`), and each is only ever
// touched by the one thread that owns its position, never shared (so not `T: Sync`); the
// staging buffer only by the one consumer.
unsafe impl<T: Send, M: Mode> Sync for HeapRing<T, M> {}
// SAFETY: as above.
unsafe impl<T: Send, M: Mode> Send for HeapRing<T, M> {}

impl<T, M: Mode> HeapRing<T, M> {
    fn try_new(capacity: usize) -> Result<Self, CapacityError> {
        if !(capacity.is_power_of_two() && (2..=MAX_CAPACITY).contains(&capacity)) {
            return Err(CapacityError::Invalid { capacity });
        }
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(capacity)
            .map_err(|_| CapacityError::OutOfMemory { capacity })?;
        // Each slot is written in place in the heap buffer: no ring-sized temporary ever exists
        // on the stack, so a ring of millions of slots builds on a thread with a small stack.
        slots.extend((0..capacity).map(|_| Slot::new()));
        let staging = boxed_staging::<T, M>().ok_or(CapacityError::OutOfMemory { capacity })?;
        Ok(HeapRing {
            counters: Counters::new(),
            staging,
            slots: slots.into_boxed_slice(),
        })
    }

    #[inline(always)]
    fn raw(&self) -> Raw<'_, T, M> {
        Raw::new(&self.counters, &self.slots, &*self.staging)
    }
}

impl<T, M: Mode> Drop for HeapRing<T, M> {
    fn drop(&mut self) {
        // SAFETY: `&mut self` gives exclusive access; the last `Arc` drop that got us here
        // happens-after every handle's last push or pop.
        unsafe { self.raw().drop_values() }
    }
}

/// Creates a ring of `capacity` slots on the heap and returns its two ends.
///
/// `capacity` is chosen at run time and must be a power of two, at least 2; [`try_channel`]
/// returns an error instead of panicking. The slots are built in place on the heap, so any
/// capacity works on any stack. The ring is the same algorithm, and the same code, as
/// [`Ring`](crate::Ring); [`evicting_channel`] is the one with `force_push`.
///
/// The [`Producer`] is `Clone`: hand one to every thread that emits. The [`Receiver`] is the
/// ring's single consumer for as long as it lives.
///
/// # Panics
/// If `capacity` is invalid or the slots cannot be allocated (see [`CapacityError`]).
///
/// ```
/// use std::thread;
///
/// let (tx, mut rx) = ringwal_core::channel::<u64>(1024);
/// let handles: Vec<_> = (0..2)
///     .map(|id| {
///         let tx = tx.clone();
///         thread::spawn(move || {
///             for i in 0..100 {
///                 let mut v = id * 1000 + i;
///                 while let Err(full) = tx.try_push(v) {
///                     v = full.into_inner();
///                     thread::yield_now();
///                 }
///             }
///         })
///     })
///     .collect();
/// let mut got = Vec::new();
/// while got.len() < 200 {
///     got.extend(rx.drain());
/// }
/// for h in handles { h.join().unwrap(); }
/// // Per producer, values arrive in the order they were pushed.
/// for id in 0..2 {
///     let mine: Vec<u64> = got.iter().copied().filter(|v| v / 1000 == id).collect();
///     assert_eq!(mine, (0..100).map(|i| id * 1000 + i).collect::<Vec<_>>());
/// }
/// ```
pub fn channel<T>(capacity: usize) -> (Producer<T>, Receiver<T>) {
    match try_channel(capacity) {
        Ok(ends) => ends,
        Err(e) => panic!("ringwal_core::channel: {e}"),
    }
}

/// [`channel`], returning [`CapacityError`] instead of panicking for a capacity that is not a
/// power of two of at least 2, or that the allocator cannot provide.
pub fn try_channel<T>(capacity: usize) -> Result<(Producer<T>, Receiver<T>), CapacityError> {
    try_channel_with(capacity)
}

/// [`channel`] for an evicting ring: its [`Producer`] has `force_push` (drop-oldest), and its
/// [`Receiver`] claims runs of ready values with one compare-and-swap each (see
/// [`Mode`](crate::Mode)).
///
/// # Panics
/// As [`channel`].
///
/// ```
/// let (tx, mut rx) = ringwal_core::evicting_channel::<u32>(2);
/// tx.force_push(1).unwrap();
/// tx.force_push(2).unwrap();
/// assert_eq!(tx.force_push(3), Ok(Some(1)));
/// assert_eq!(rx.pop(), Some(2));
/// assert_eq!(rx.evicted(), 1);
/// ```
pub fn evicting_channel<T>(capacity: usize) -> (Producer<T, Evict>, Receiver<T, Evict>) {
    match try_evicting_channel(capacity) {
        Ok(ends) => ends,
        Err(e) => panic!("ringwal_core::evicting_channel: {e}"),
    }
}

/// [`evicting_channel`], returning [`CapacityError`] instead of panicking.
#[allow(clippy::type_complexity)] // the two ends, spelled out, read better than an alias
pub fn try_evicting_channel<T>(
    capacity: usize,
) -> Result<(Producer<T, Evict>, Receiver<T, Evict>), CapacityError> {
    try_channel_with(capacity)
}

/// A channel of either [`Mode`](crate::Mode), returning [`CapacityError`] instead of panicking.
#[allow(clippy::type_complexity)] // the two ends, spelled out, read better than an alias
pub fn try_channel_with<T, M: Mode>(
    capacity: usize,
) -> Result<(Producer<T, M>, Receiver<T, M>), CapacityError> {
    let ring = Arc::new(HeapRing::try_new(capacity)?);
    Ok(ends(ring))
}

/// A channel whose position counters start at `position` (see `Ring::new_at`). Only for tests.
///
/// # Panics
/// If `capacity` is invalid.
#[doc(hidden)]
pub fn channel_at<T, M: Mode>(
    capacity: usize,
    position: usize,
) -> (Producer<T, M>, Receiver<T, M>) {
    let ring = HeapRing::try_new(capacity).expect("a valid test capacity");
    ring.raw().start_at(position & crate::POSITION_MASK);
    ends(Arc::new(ring))
}

fn ends<T, M: Mode>(ring: Arc<HeapRing<T, M>>) -> (Producer<T, M>, Receiver<T, M>) {
    let cursor = ring
        .raw()
        .claim_consumer()
        .expect("a ring nobody else has seen has no consumer");
    (Producer { ring: ring.clone() }, Receiver { ring, cursor })
}

/// The sending end of a [`channel`]: [`Ring`](crate::Ring)'s push methods over a shared ring,
/// and [`close`](Self::close).
pub struct Producer<T, M: Mode = NoEvict> {
    ring: Arc<HeapRing<T, M>>,
}

impl<T, M: Mode> Producer<T, M> {
    /// [`Ring::try_push`](crate::Ring::try_push): pushes, or returns the value in [`Full`].
    /// Never waits. On a [closed](Self::close) channel it returns `Full` too
    /// ([`try_push_checked`](Self::try_push_checked) tells the two apart).
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), Full<T>> {
        match self
            .ring
            .raw()
            .push_shared::<false>(value, ClaimOrder::Relaxed)
        {
            Ok(_) => Ok(()),
            Err(Refused::Full(v) | Refused::Closed(v)) => Err(Full(v)),
        }
    }

    /// [`try_push`](Self::try_push), telling a full channel from a closed one.
    ///
    /// Its claim is a sequentially consistent read-modify-write (on x86 the same instruction
    /// as a relaxed one), so a caller can order a later `SeqCst` load after it: another
    /// thread that makes a `SeqCst` change and then looks at [`pushed`](Self::pushed) with
    /// `SeqCst` either sees this push or has its change seen by that load. The std writer's
    /// sleep handshake is built on that.
    ///
    /// ```
    /// let (tx, mut rx) = ringwal_core::channel::<u8>(2);
    /// assert!(tx.try_push_checked(1).is_ok());
    /// assert!(tx.try_push_checked(2).is_ok());
    /// assert!(matches!(tx.try_push_checked(3), Err(ringwal_core::PushError::Full(3))));
    /// assert_eq!(rx.pop(), Some(1));
    /// ```
    #[inline]
    pub fn try_push_checked(&self, value: T) -> Result<(), PushError<T>> {
        match self
            .ring
            .raw()
            .push_shared::<false>(value, ClaimOrder::SeqCst)
        {
            Ok(_) => Ok(()),
            Err(r) => Err(r.into()),
        }
    }

    /// Closes the channel to producers: every push from now on, from any clone, fails
    /// ([`PushError::Closed`] from `try_push_checked`). Values already pushed stay and are
    /// received as usual. Returns the final producers' position: every push that claimed a
    /// position before the close counts, and its value is published a few instructions after
    /// its claim (no user code runs in between), so a receiver that must see them all receives
    /// until its position (values received plus values evicted) reaches it.
    ///
    /// The closing read-modify-write is sequentially consistent.
    ///
    /// ```
    /// let (tx, mut rx) = ringwal_core::channel::<u8>(4);
    /// tx.try_push(1).unwrap();
    /// assert_eq!(tx.close(), 1);
    /// assert!(tx.is_closed());
    /// assert!(tx.try_push(2).is_err());
    /// assert_eq!(rx.pop(), Some(1));
    /// ```
    pub fn close(&self) -> usize {
        self.ring.raw().close()
    }

    /// Whether [`close`](Self::close) was called (by any clone). A `SeqCst` load (see
    /// [`try_push_checked`](Self::try_push_checked)).
    pub fn is_closed(&self) -> bool {
        self.ring.raw().is_closed()
    }

    /// [`Ring::pushed`](crate::Ring::pushed): the producers' position (a snapshot).
    #[inline]
    pub fn pushed(&self) -> usize {
        self.ring.raw().pushed()
    }

    /// [`pushed`](Self::pushed), read with `SeqCst` (see
    /// [`try_push_checked`](Self::try_push_checked)).
    #[inline]
    pub fn pushed_seqcst(&self) -> usize {
        self.ring.raw().pushed_seqcst()
    }

    /// The number of slots, as given to [`channel`].
    pub fn capacity(&self) -> usize {
        self.ring.slots.len()
    }

    /// [`Ring::len`](crate::Ring::len): a snapshot.
    pub fn len(&self) -> usize {
        self.ring.raw().len()
    }

    /// [`Ring::is_empty`](crate::Ring::is_empty): a snapshot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`Ring::is_full`](crate::Ring::is_full): a snapshot.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }
}

impl<T> Producer<T, Evict> {
    /// [`EvictingRing::force_push`](crate::Ring::force_push): pushes, evicting and returning
    /// the oldest value if full. On a [closed](Self::close) channel the value comes back in
    /// `Err` (nothing is evicted).
    ///
    /// ```
    /// let (tx, _rx) = ringwal_core::evicting_channel::<u8>(2);
    /// assert_eq!(tx.force_push(1), Ok(None));
    /// assert_eq!(tx.force_push(2), Ok(None));
    /// assert_eq!(tx.force_push(3), Ok(Some(1)));
    /// tx.close();
    /// assert_eq!(tx.force_push(4), Err(4));
    /// ```
    #[inline]
    pub fn force_push(&self, value: T) -> Result<Option<T>, T> {
        match self
            .ring
            .raw()
            .push_shared::<true>(value, ClaimOrder::Relaxed)
        {
            Ok(evicted) => Ok(evicted),
            Err(Refused::Full(v) | Refused::Closed(v)) => Err(v),
        }
    }

    /// [`force_push`](Self::force_push) with a sequentially consistent claim (see
    /// [`try_push_checked`](Self::try_push_checked)).
    #[inline]
    pub fn force_push_checked(&self, value: T) -> Result<Option<T>, T> {
        match self
            .ring
            .raw()
            .push_shared::<true>(value, ClaimOrder::SeqCst)
        {
            Ok(evicted) => Ok(evicted),
            Err(Refused::Full(v) | Refused::Closed(v)) => Err(v),
        }
    }
}

impl<T, M: Mode> Clone for Producer<T, M> {
    fn clone(&self) -> Self {
        Producer {
            ring: self.ring.clone(),
        }
    }
}

impl<T, M: Mode> fmt::Debug for Producer<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("evicts", &M::EVICTS)
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The receiving end of a [`channel`]: [`Consumer`](crate::Consumer)'s methods over the shared
/// ring. Not `Clone`; there is exactly one.
pub struct Receiver<T, M: Mode = NoEvict> {
    ring: Arc<HeapRing<T, M>>,
    cursor: Cursor,
}

impl<T, M: Mode> Receiver<T, M> {
    /// Pops the oldest value, or `None` if the ring is empty; waits out a producer that is
    /// mid-publish. See [`Consumer::pop`](crate::Consumer::pop), and where not to use it.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.ring.raw().pop(&mut self.cursor)
    }

    /// Pops the oldest value if it is ready; never waits. See
    /// [`Consumer::try_pop`](crate::Consumer::try_pop).
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        self.ring.raw().try_pop(&mut self.cursor)
    }

    /// Pops what is ready now, never waiting. See [`Consumer::drain`](crate::Consumer::drain).
    pub fn drain(&mut self) -> Drain<'_, T, M> {
        Drain::new(self.ring.raw(), &mut self.cursor)
    }

    /// Values evicted before this receiver reached them. See
    /// [`Consumer::evicted`](crate::Consumer::evicted).
    pub fn evicted(&self) -> u64 {
        self.cursor.evicted
    }

    /// This receiver's position: values it received plus values it stepped over because they
    /// were evicted (an evicting ring's values claimed into its staging buffer but not yet
    /// received do not count), from the start of the ring (modulo 2^(`usize::BITS` - 1), as
    /// [`Producer::pushed`]). Once it reaches the producers' final position after a
    /// [`close`](Producer::close), every value pushed has been received or evicted.
    ///
    /// ```
    /// let (tx, mut rx) = ringwal_core::channel::<u8>(4);
    /// tx.try_push(1).unwrap();
    /// let end = tx.close();
    /// while rx.position() != end {
    ///     rx.pop();
    /// }
    /// ```
    pub fn position(&self) -> usize {
        self.ring.raw().position(&self.cursor)
    }

    /// The number of slots, as given to [`channel`].
    pub fn capacity(&self) -> usize {
        self.ring.slots.len()
    }

    /// [`Ring::len`](crate::Ring::len): a snapshot.
    pub fn len(&self) -> usize {
        self.ring.raw().len()
    }

    /// [`Ring::is_empty`](crate::Ring::is_empty): a snapshot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T, M: Mode> Drop for Receiver<T, M> {
    fn drop(&mut self) {
        self.ring.raw().release_consumer(&self.cursor);
    }
}

impl<T, M: Mode> fmt::Debug for Receiver<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("evicted", &self.cursor.evicted)
            .finish_non_exhaustive()
    }
}
