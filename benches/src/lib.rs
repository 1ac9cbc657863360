//! Benchmarks of ringwal against std channels and peer crates. `cargo bench -p ringwal-benches`
//! runs the criterion benchmarks in `benches/`.
//!
//! This library holds what the benchmarks share: a common spin-then-yield backoff, so every
//! peer waits on full/empty the same way; and the tracing events `tracing_compare` times and
//! `tracing_profile` counts ([`tracing_events`]).

/// The two events of `tracing_compare` (and `tracing_profile`), one definition for both so the
/// profile counts exactly what the comparison times. Their target is `tracing_compare`
/// whichever binary calls them (the formatted designs print it).
pub mod tracing_events {
    /// A value logged with `?` (its derived `Debug`).
    #[derive(Debug)]
    pub struct Venue {
        /// The venue's code.
        pub code: &'static str,
    }

    /// `info!(user = 42, order = %id, "order filled")`: 2 fields.
    #[inline(never)]
    pub fn two(id: u64) {
        tracing::info!(target: "tracing_compare", user = 42, order = %id, "order filled");
    }

    /// The same with five fields: `user`, `order = %id`, `qty`, `price`, `venue = ?..`.
    #[inline(never)]
    pub fn five(id: u64) {
        tracing::info!(
            target: "tracing_compare",
            user = 42,
            order = %id,
            qty = 17u32,
            price = 101.25,
            venue = ?Venue { code: "XLON" },
            "order filled"
        );
    }
}

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

/// An ablation for the benchmarks, not a product: ringwal's ring (same slot layout, same
/// stamps, same Acquire/Release on them) with its two lock-prefixed read-modify-writes, the
/// producers' CAS on `tail` and the consumer's CAS on `head`, replaced by a plain load and
/// store. That is only correct with one producer and one consumer, so [`no_rmw_ring`] hands out
/// exactly one [`NoRmwProducer`] and one [`NoRmwConsumer`], each used through `&mut self`.
///
/// Measured beside [`ringwal_core::Ring`] in the same run, it shows what the two CASes cost:
/// they are what many producers, and `force_push` evicting from any thread, need (two threads
/// cannot agree on who owns a position with plain loads and stores alone without one waiting
/// for the other), and what single-producer queues such as rtrb do without.
///
/// ```
/// let (mut tx, mut rx) = ringwal_benches::no_rmw_ring::<u64, 4>();
/// for lap in 0..3 {
///     for v in 0..4 {
///         assert!(tx.try_push(lap * 10 + v).is_ok());
///     }
///     assert_eq!(tx.try_push(99), Err(99), "full");
///     for v in 0..4 {
///         assert_eq!(rx.pop(), Some(lap * 10 + v));
///     }
///     assert_eq!(rx.pop(), None);
/// }
/// ```
pub fn no_rmw_ring<T: Copy + Send, const N: usize>() -> (NoRmwProducer<T, N>, NoRmwConsumer<T, N>) {
    assert!(
        N.is_power_of_two() && N >= 2,
        "N must be a power of two, at least 2"
    );
    let ring = Arc::new(NoRmwShared {
        head: Default::default(),
        tail: Default::default(),
        slots: (0..N)
            .map(|_| NoRmwSlot {
                stamp: AtomicUsize::new(0),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect(),
    });
    (NoRmwProducer(ring.clone()), NoRmwConsumer(ring))
}

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct NoRmwSlot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

struct NoRmwShared<T, const N: usize> {
    head: crossbeam_utils::CachePadded<AtomicUsize>,
    tail: crossbeam_utils::CachePadded<AtomicUsize>,
    slots: Box<[NoRmwSlot<T>]>,
}

// SAFETY: a value moves from the one producer to the one consumer; each slot's value is touched
// only by the side its stamp hands it to (see `try_push` and `pop`), so `T: Send` is enough.
// `T: Copy` means a value left in the ring needs no drop.
unsafe impl<T: Copy + Send, const N: usize> Sync for NoRmwShared<T, N> {}

/// The producer half of [`no_rmw_ring`].
pub struct NoRmwProducer<T, const N: usize>(Arc<NoRmwShared<T, N>>);

/// The consumer half of [`no_rmw_ring`].
pub struct NoRmwConsumer<T, const N: usize>(Arc<NoRmwShared<T, N>>);

impl<T: Copy + Send, const N: usize> NoRmwProducer<T, N> {
    /// `Ring::try_push` with a plain store where the CAS on `tail` was; gives the value back
    /// when the ring is full.
    #[inline(always)]
    pub fn try_push(&mut self, value: T) -> Result<(), T> {
        let ring = &*self.0;
        // Relaxed: only this producer writes `tail`.
        let tail = ring.tail.load(Ordering::Relaxed);
        let slot = &ring.slots[tail & (N - 1)];
        let lap = tail & !(N - 1);
        // Acquire pairs with the consumer's Release free in `pop`: its read of the old value
        // happens-before our write below.
        if slot.stamp.load(Ordering::Acquire) != lap {
            return Err(value);
        }
        // Relaxed: nobody reads `tail` but us.
        ring.tail.store(tail.wrapping_add(1), Ordering::Relaxed);
        // SAFETY: the stamp says the slot is empty and ours (one producer, `&mut self`); the
        // consumer will not read it until our Release store below.
        unsafe { (*slot.value.get()).write(value) };
        // Release pairs with the consumer's Acquire stamp load: it sees the value.
        slot.stamp.store(lap.wrapping_add(1), Ordering::Release);
        Ok(())
    }
}

impl<T: Copy + Send, const N: usize> NoRmwConsumer<T, N> {
    /// `Consumer::pop` with a plain store where the CAS on `head` was.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<T> {
        let ring = &*self.0;
        // Relaxed: only this consumer writes `head`.
        let head = ring.head.load(Ordering::Relaxed);
        let slot = &ring.slots[head & (N - 1)];
        let lap = head & !(N - 1);
        // Acquire pairs with the producer's Release publish in `try_push`.
        if slot.stamp.load(Ordering::Acquire) != lap.wrapping_add(1) {
            return None;
        }
        // Relaxed: nobody reads `head` but us.
        ring.head.store(head.wrapping_add(1), Ordering::Relaxed);
        // SAFETY: the stamp says the slot holds the published value of `head` and only this
        // consumer (`&mut self`) reads it; the producer will not write it before our free.
        let value = unsafe { (*slot.value.get()).assume_init_read() };
        // Release pairs with the producer's Acquire stamp load: our read happens-before its
        // next write into this slot.
        slot.stamp.store(lap.wrapping_add(N), Ordering::Release);
        Some(value)
    }
}
