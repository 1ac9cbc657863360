//! `channel(capacity)`: a ring whose capacity is chosen at run time, on the heap, behind an
//! `Arc`, with a cloneable [`Producer`] and one [`Receiver`].
//!
//! The heap ring is the same algorithm as [`Ring`](crate::Ring) — the same code (`ring::Raw`) —
//! over a boxed slice of slots instead of an inline array, with the index mask read at run time.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::ring::{Counters, Cursor, Drain, Full, Raw, Slot, TryPopError, MAX_CAPACITY};
use crate::sync::{Arc, AtomicUsize};

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
    /// The capacity is not a power of two of at least 2 (and at most 2^(`usize::BITS` - 2)).
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
                usize::BITS - 2
            ),
            CapacityError::OutOfMemory { capacity } => {
                write!(f, "cannot allocate a ring of {capacity} slots")
            }
        }
    }
}

impl core::error::Error for CapacityError {}

/// The heap ring: the shared counters and a boxed slice of slots, whose length is the capacity.
struct HeapRing<T> {
    counters: Counters,
    slots: Box<[Slot<T>]>,
}

// SAFETY: as for `Ring`: values move between threads (so `T: Send`), and each is only ever
// touched by the one thread that owns its position, never shared (so not `T: Sync`).
unsafe impl<T: Send> Sync for HeapRing<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for HeapRing<T> {}

impl<T> HeapRing<T> {
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
        Ok(HeapRing {
            counters: Counters::new(),
            slots: slots.into_boxed_slice(),
        })
    }

    #[inline(always)]
    fn raw(&self) -> Raw<'_, T> {
        Raw::new(&self.counters, &self.slots)
    }
}

impl<T> Drop for HeapRing<T> {
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
/// [`Ring`](crate::Ring).
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
    let ring = Arc::new(HeapRing::try_new(capacity)?);
    Ok(ends(ring))
}

/// A channel whose position counters start at `position` (see `Ring::new_at`). Only for tests.
///
/// # Panics
/// If `capacity` is invalid.
#[doc(hidden)]
pub fn channel_at<T>(capacity: usize, position: usize) -> (Producer<T>, Receiver<T>) {
    let ring = HeapRing::try_new(capacity).expect("a valid test capacity");
    ring.raw().start_at(position);
    ends(Arc::new(ring))
}

fn ends<T>(ring: Arc<HeapRing<T>>) -> (Producer<T>, Receiver<T>) {
    let cursor = ring
        .raw()
        .claim_consumer()
        .expect("a ring nobody else has seen has no consumer");
    (Producer { ring: ring.clone() }, Receiver { ring, cursor })
}

/// The sending end of a [`channel`]: [`Ring`](crate::Ring)'s push methods over a shared ring.
pub struct Producer<T> {
    ring: Arc<HeapRing<T>>,
}

impl<T> Producer<T> {
    /// [`Ring::try_push`](crate::Ring::try_push): pushes, or returns the value in [`Full`].
    /// Never waits.
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), Full<T>> {
        self.ring.raw().push_or_full(value, None)
    }

    /// [`Ring::force_push`](crate::Ring::force_push): pushes, evicting and returning the oldest
    /// value if full.
    #[inline]
    pub fn force_push(&self, value: T) -> Option<T> {
        self.ring.raw().push_or_evict(value, None)
    }

    /// [`Ring::try_push_releasing`](crate::Ring::try_push_releasing): `try_push`, decrementing
    /// an in-flight counter once the position is claimed (or before returning `Full`).
    #[inline]
    pub fn try_push_releasing(&self, value: T, in_flight: &AtomicUsize) -> Result<(), Full<T>> {
        self.ring.raw().push_or_full(value, Some(in_flight))
    }

    /// [`Ring::force_push_releasing`](crate::Ring::force_push_releasing): `force_push`,
    /// decrementing an in-flight counter once the position is claimed.
    #[inline]
    pub fn force_push_releasing(&self, value: T, in_flight: &AtomicUsize) -> Option<T> {
        self.ring.raw().push_or_evict(value, Some(in_flight))
    }

    /// [`Ring::pushed`](crate::Ring::pushed): the producers' position (a snapshot).
    #[inline]
    pub fn pushed(&self) -> usize {
        self.ring.raw().pushed()
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
        self.len() == self.capacity()
    }
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Producer {
            ring: self.ring.clone(),
        }
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The receiving end of a [`channel`]: [`Consumer`](crate::Consumer)'s methods over the shared
/// ring. Not `Clone`; there is exactly one.
pub struct Receiver<T> {
    ring: Arc<HeapRing<T>>,
    cursor: Cursor,
}

impl<T> Receiver<T> {
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
    pub fn drain(&mut self) -> Drain<'_, T> {
        Drain::new(self.ring.raw(), &mut self.cursor)
    }

    /// Values evicted before this receiver reached them. See
    /// [`Consumer::evicted`](crate::Consumer::evicted).
    pub fn evicted(&self) -> u64 {
        self.cursor.evicted
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

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.ring.raw().release_consumer(&self.cursor);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("evicted", &self.cursor.evicted)
            .finish_non_exhaustive()
    }
}
