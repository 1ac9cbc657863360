//! `channel()`: the ring behind an `Arc`, with a cloneable [`Producer`] and one [`Receiver`].

use core::fmt;

use crate::ring::{Cursor, Drain, Full, Ring};
use crate::sync::{Arc, AtomicUsize};

/// Creates a ring of `N` slots on the heap and returns its two ends.
///
/// The [`Producer`] is `Clone`: hand one to every thread that emits. The [`Receiver`] is the
/// ring's single consumer for as long as it lives.
///
/// ```
/// use std::thread;
///
/// let (tx, mut rx) = ringwal_core::channel::<u64, 1024>();
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
pub fn channel<T, const N: usize>() -> (Producer<T, N>, Receiver<T, N>) {
    let ring = Arc::new(Ring::new());
    let cursor = ring
        .claim_consumer()
        .expect("a ring nobody else has seen has no consumer");
    (Producer { ring: ring.clone() }, Receiver { ring, cursor })
}

/// The sending end of a [`channel`]: [`Ring`]'s push methods over a shared `Arc<Ring>`.
pub struct Producer<T, const N: usize = 4096> {
    ring: Arc<Ring<T, N>>,
}

impl<T, const N: usize> Producer<T, N> {
    /// [`Ring::try_push`]: pushes, or returns the value in [`Full`]. Never waits.
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), Full<T>> {
        self.ring.try_push(value)
    }

    /// [`Ring::force_push`]: pushes, evicting and returning the oldest value if full.
    #[inline]
    pub fn force_push(&self, value: T) -> Option<T> {
        self.ring.force_push(value)
    }

    /// [`Ring::try_push_releasing`]: `try_push`, decrementing an in-flight counter once the
    /// position is claimed (or before returning `Full`).
    #[inline]
    pub fn try_push_releasing(&self, value: T, in_flight: &AtomicUsize) -> Result<(), Full<T>> {
        self.ring.try_push_releasing(value, in_flight)
    }

    /// [`Ring::force_push_releasing`]: `force_push`, decrementing an in-flight counter once the
    /// position is claimed.
    #[inline]
    pub fn force_push_releasing(&self, value: T, in_flight: &AtomicUsize) -> Option<T> {
        self.ring.force_push_releasing(value, in_flight)
    }

    /// [`Ring::pushed`]: the producers' position (a snapshot).
    pub fn pushed(&self) -> usize {
        self.ring.pushed()
    }

    /// The number of slots, `N`.
    pub fn capacity(&self) -> usize {
        N
    }

    /// [`Ring::len`]: a snapshot.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// [`Ring::is_empty`]: a snapshot.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// [`Ring::is_full`]: a snapshot.
    pub fn is_full(&self) -> bool {
        self.ring.is_full()
    }
}

impl<T, const N: usize> Clone for Producer<T, N> {
    fn clone(&self) -> Self {
        Producer {
            ring: self.ring.clone(),
        }
    }
}

impl<T, const N: usize> fmt::Debug for Producer<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("ring", &*self.ring)
            .finish()
    }
}

/// The receiving end of a [`channel`]: [`Consumer`](crate::Consumer)'s methods over the
/// `Arc<Ring>`. Not `Clone`; there is exactly one.
pub struct Receiver<T, const N: usize = 4096> {
    ring: Arc<Ring<T, N>>,
    cursor: Cursor,
}

impl<T, const N: usize> Receiver<T, N> {
    /// Pops the oldest value, or `None` if none is ready. See [`Consumer::pop`](crate::Consumer::pop).
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.ring.pop_with(&mut self.cursor)
    }

    /// Pops what is there now. See [`Consumer::drain`](crate::Consumer::drain).
    pub fn drain(&mut self) -> Drain<'_, T, N> {
        Drain::new(&self.ring, &mut self.cursor)
    }

    /// Values evicted before this receiver reached them. See
    /// [`Consumer::evicted`](crate::Consumer::evicted).
    pub fn evicted(&self) -> u64 {
        self.cursor.evicted
    }

    /// The number of slots, `N`.
    pub fn capacity(&self) -> usize {
        N
    }

    /// [`Ring::len`]: a snapshot.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// [`Ring::is_empty`]: a snapshot.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

impl<T, const N: usize> Drop for Receiver<T, N> {
    fn drop(&mut self) {
        self.ring.release_consumer(&self.cursor);
    }
}

impl<T, const N: usize> fmt::Debug for Receiver<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("ring", &*self.ring)
            .field("evicted", &self.cursor.evicted)
            .finish()
    }
}
