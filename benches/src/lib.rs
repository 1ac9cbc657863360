//! Benchmarks of ringwal against std channels and peer crates. `cargo bench -p ringwal-benches`
//! runs the criterion benchmarks in `benches/`.
//!
//! This library holds what the benchmarks share: a common spin-then-yield backoff, so every
//! peer waits on full/empty the same way.

/// Waits a little after a failed non-blocking operation: spins first, then yields.
#[derive(Debug, Default)]
pub struct Backoff {
    step: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spins `2^step` times for the first few calls, then yields the thread.
    pub fn snooze(&mut self) {
        if self.step <= 6 {
            for _ in 0..1u32 << self.step {
                std::hint::spin_loop();
            }
            self.step += 1;
        } else {
            std::thread::yield_now();
        }
    }

    /// Back to spinning after progress.
    pub fn reset(&mut self) {
        self.step = 0;
    }
}

/// An ablation for the benchmarks, not a queue: ringwal's ring (same slot layout, same stamps,
/// same Acquire/Release on them) with its two lock-prefixed read-modify-writes, the producers'
/// CAS on `tail` and the consumer's CAS on `head`, replaced by a plain load and store.
///
/// Without those CASes it is only correct for one thread, so it is `!Sync` (and holds values in
/// a `Cell`: no `unsafe`). Timing it beside [`ringwal_core::Ring`] in the same run shows what the
/// two CASes cost: they are what many producers, and `force_push` evicting from any thread, need
/// (two threads agreeing on who owns a position cannot be done with loads and stores alone
/// without waiting), and what single-producer queues such as rtrb do without.
///
/// ```
/// let ring = ringwal_benches::NoRmwRing::<u64, 4>::new();
/// for lap in 0..3 {
///     for v in 0..4 {
///         assert!(ring.try_push(lap * 10 + v));
///     }
///     assert!(!ring.try_push(99), "full");
///     for v in 0..4 {
///         assert_eq!(ring.pop(), Some(lap * 10 + v));
///     }
///     assert_eq!(ring.pop(), None);
/// }
/// ```
pub struct NoRmwRing<T: Copy, const N: usize> {
    head: crossbeam_utils::CachePadded<AtomicUsize>,
    tail: crossbeam_utils::CachePadded<AtomicUsize>,
    slots: Box<[(AtomicUsize, Cell<T>)]>,
}

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

impl<T: Copy + Default, const N: usize> NoRmwRing<T, N> {
    const MASK: usize = N - 1;

    /// An empty ring of `N` slots (a power of two).
    pub fn new() -> Self {
        assert!(N.is_power_of_two() && N >= 2);
        NoRmwRing {
            head: Default::default(),
            tail: Default::default(),
            slots: (0..N)
                .map(|_| (AtomicUsize::new(0), Cell::new(T::default())))
                .collect(),
        }
    }

    /// `Ring::try_push` with a plain store where the CAS on `tail` was. False when full.
    #[inline(always)]
    pub fn try_push(&self, value: T) -> bool {
        let tail = self.tail.load(Ordering::Relaxed);
        let (stamp, cell) = &self.slots[tail & Self::MASK];
        let lap = tail & !Self::MASK;
        if stamp.load(Ordering::Acquire) != lap {
            return false;
        }
        self.tail.store(tail.wrapping_add(1), Ordering::Relaxed);
        cell.set(value);
        stamp.store(lap.wrapping_add(1), Ordering::Release);
        true
    }

    /// `Consumer::pop` with a plain store where the CAS on `head` was.
    #[inline(always)]
    pub fn pop(&self) -> Option<T> {
        let head = self.head.load(Ordering::Relaxed);
        let (stamp, cell) = &self.slots[head & Self::MASK];
        let lap = head & !Self::MASK;
        if stamp.load(Ordering::Acquire) != lap.wrapping_add(1) {
            return None;
        }
        self.head.store(head.wrapping_add(1), Ordering::Relaxed);
        let value = cell.get();
        stamp.store(lap.wrapping_add(N), Ordering::Release);
        Some(value)
    }
}

impl<T: Copy + Default, const N: usize> Default for NoRmwRing<T, N> {
    fn default() -> Self {
        Self::new()
    }
}
