//! A lock-free, fixed-capacity, multi-producer single-consumer ring buffer for `no_std`.
//!
//! [`Ring<T, N>`](Ring) holds `N` values inline (a power of two, 4096 by default). Any number of
//! threads — or interrupt handlers — push through a shared reference; one [`Consumer`] pops.
//! It allocates nothing, takes no lock and makes no system call, so it can be a `static`:
//!
//! ```
//! use ringwal_core::Ring;
//!
//! // In an interrupt handler, or anywhere: never blocks, never allocates.
//! static SAMPLES: Ring<u16, 256> = Ring::new();
//!
//! fn on_adc_interrupt(sample: u16) {
//!     // A full ring gives the value back; here we count it and move on.
//!     if SAMPLES.try_push(sample).is_err() { /* count the overrun */ }
//! }
//!
//! on_adc_interrupt(512);
//! on_adc_interrupt(513);
//! let mut consumer = SAMPLES.consumer().expect("only one consumer at a time");
//! let batch: Vec<u16> = consumer.drain().collect();
//! assert_eq!(batch, [512, 513]);
//! ```
//!
//! With the `alloc` feature, `channel(capacity)` builds a ring whose capacity is chosen at run
//! time directly on the heap (any size, on any stack) and returns a cloneable `Producer` and a
//! `Receiver`. Both front ends run one implementation of the algorithm: the inline ring with a
//! constant index mask, the heap ring with its mask read at run time.
//!
//! Two ways to push:
//! - [`Ring::try_push`] returns `Err(Full(value))` when the ring is full, with the value intact.
//! - [`Ring::force_push`] never fails: when the ring is full it evicts the oldest value and
//!   returns it (the drop-oldest policy). The consumer counts what it missed:
//!   [`Consumer::evicted`] grows by exactly the number of values evicted between two pops.
//!
//! # Guarantees
//! - Every value pushed is popped exactly once, returned by `force_push` exactly once, or dropped
//!   exactly once by the `Ring`'s `Drop`. Never duplicated, never leaked, never read
//!   uninitialised.
//! - Values from one producer come out in the order that producer pushed them. Across
//!   producers, the order is the order in which their pushes claimed positions.
//! - `Ring<T, N>` is `Send + Sync` exactly when `T: Send`. [`Consumer`] is `Send`, not `Sync`,
//!   not `Clone`, and [`Ring::consumer`] hands out at most one at a time.
//! - Positions are `usize` counters that wrap; every comparison is a wrapping difference, and
//!   `N` divides 2^`usize::BITS`, so nothing changes at the wrap (tests start rings near
//!   `usize::MAX` to check).
//!
//! # Progress, honestly
//! The ring is lock-free in the sense that holds for this family of queues (Vyukov's bounded
//! queue, crossbeam's `ArrayQueue`): no operation takes a lock, and among threads that keep
//! running, some operation always completes. It is not wait-free:
//! - A producer that is preempted between claiming a position and publishing its value holds
//!   the consumer at that position. [`Consumer::try_pop`] and [`Consumer::drain`] never wait
//!   for it: `try_pop` says [`TryPopError::Pending`] (told apart from `Empty`) and the caller
//!   decides when to look again (the std writer backs off). [`Consumer::pop`] is linearizable
//!   like crossbeam's `ArrayQueue::pop` — `None` only when the ring is empty — so it waits for
//!   that producer; a consumer that can preempt a producer of its ring (an interrupt handler, a
//!   higher-priority task on one core) must use `try_pop` or `drain`. Values pushed after that
//!   position stay queued until it is published.
//! - [`Ring::try_push`] never waits for anyone; it reports [`Full`] if the slot it needs still
//!   holds a value (also in the few instructions while the consumer moves the oldest out).
//!   It is safe in an interrupt handler that preempted the consumer.
//! - [`Ring::force_push`] on a full ring may spin while the owner of the oldest position
//!   finishes with it: the consumer moving it out, a producer still writing it, another
//!   `force_push` evicting it — windows of a few instructions with no user code in them. From an
//!   interrupt handler that can preempt the consumer or a producer of the same ring, use
//!   `try_push`: `force_push` there could wait for the very code it interrupted.
//!
//! # How it works
//! The slots carry a per-slot *stamp* (after Dmitry Vyukov's bounded MPMC queue). Positions are
//! unbounded counters: `head` (next to read) and `tail` (next to write), each on its own cache
//! line. Position `p` lives in slot `p mod N`; its *lap* is `p - (p mod N)`. Slot stamps:
//!
//! | stamp      | meaning                                                  |
//! |------------|----------------------------------------------------------|
//! | `lap(p)`     | empty, ready to be written as position `p`             |
//! | `lap(p) + 1` | holds the published value of position `p`              |
//! | `lap(p) + N` | emptied after `p` was taken: ready for `p + N`         |
//!
//! A fresh ring is all zeros, which is why [`Ring::new`] can be `const`.
//!
//! **Push** loads `tail`, then the stamp of its slot (`Acquire`). If the stamp is `lap(tail)`,
//! it claims the position with a CAS on `tail` (`Relaxed`: the CAS only decides who owns the
//! position), writes the value, and publishes it by storing `lap + 1` (`Release`). A stamp
//! behind the lap means the slot still holds position `tail - N`: full. A stamp ahead means
//! another producer won; reload the tail.
//!
//! **Pop** keeps its own cursor. It loads the stamp at the cursor (`Acquire`, pairing with the
//! producer's `Release`, so the value is visible). If it says "published", the consumer claims
//! the position with a CAS on `head` — needed because `force_push` may claim the same position
//! to evict it — moves the value out, and frees the slot by storing `lap + N` (`Release`,
//! pairing with the next producer's `Acquire`: the read of the old value happens-before the
//! write of the new one). If the CAS fails, `force_push` evicted positions; the failure value
//! (or, when the stamp shows the slot already moved on, a reload of `head`) says how many,
//! which is how [`Consumer::evicted`] is counted, at no cost on the common path.
//!
//! **force_push** on a full ring (stamp = `lap(tail) - N + 1`, and `head == tail - N`) claims
//! the oldest position with a CAS on `head`. Having won it, it owns the slot; the slot is not
//! freed, so no producer can have claimed `tail` (a claim needs the "empty" stamp), so `tail`
//! cannot move: the evictor takes the old value, writes its own as position `tail`, stores
//! `tail + 1`, and publishes the stamp. One eviction, one push, no window in which another
//! producer could slip in and make it evict twice.
//!
//! Why a slot is never read before it is written: a taker reads a value only after seeing its
//! "published" stamp with `Acquire`, which pairs with the writer's `Release` store made after
//! the write. Why it is never written before it is read: a writer writes only after seeing the
//! "empty" stamp with `Acquire`, which the taker stores with `Release` after moving the value
//! out. Why a value is taken once: positions are claimed by CAS on `head`, and a stamp for
//! position `p` is only ever compared against `p`'s own lap, so a stale or reused slot cannot
//! be mistaken for a fresh one, across laps and across the `usize` wrap.
//!
//! The consumer claims with one CAS per value, as `ArrayQueue` does. Claiming a batch with one
//! CAS was considered and rejected: values claimed but not yet handed out (a `Drain` paused in
//! user code) would make a `force_push` on a full ring wait for user code — a deadlock if the
//! pusher is the consumer's own thread. The CAS is on a line only the consumer touches while the
//! ring is not full, so it is a local atomic instruction, not a cache-line transfer.
//!
//! # Variable-length records
//! [`ByteRing<BYTES>`](ByteRing) carries byte records of any length up to half its size,
//! written and read in place: producers reserve room ([`ByteRing::try_reserve`]), write through
//! the [`Grant`] and commit; the consumer reads `&[u8]` records in reservation order, one at a
//! time or as a [`Batch`] released at once. Same progress guarantee and proof bar as [`Ring`];
//! no drop-oldest. See the [`bytes`] module for the layout and the argument.
//!
//! Every ordering is checked under loom in `loom-tests/`: every pair of operations
//! exhaustively, three-thread models up to a documented preemption bound, within what loom
//! models of weak memory. The tests also run under Miri and ThreadSanitizer.
#![cfg_attr(not(loom), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(all(
    not(target_has_atomic = "ptr"),
    not(feature = "portable-atomic"),
    not(loom)
))]
compile_error!(
    "ringwal-core: this target has no compare-and-swap; enable the `critical-section` feature \
     (and link a `critical-section` implementation), or the `portable-atomic` feature with \
     `--cfg portable_atomic_unsafe_assume_single_core` on a single-core chip"
);

pub mod bytes;
mod ring;
mod sync;

/// Under `--cfg loom` only: the DPOR-gap workaround atomic (see `sync.rs`), for the std
/// writer's own loom shim. Not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub use sync::loom_workaround as __loom;

/// The atomic counter type this crate is built on, for callers that hand one in
/// ([`Ring::try_push_releasing`]): `core`'s, or portable-atomic's with the feature of that
/// name (a different type, same API; `Ordering` is `core`'s either way).
pub mod atomic {
    #[cfg(loom)]
    pub use crate::sync::loom_workaround::AtomicUsize;
    #[cfg(all(not(loom), not(feature = "portable-atomic")))]
    pub use core::sync::atomic::AtomicUsize;
    #[cfg(all(not(loom), feature = "portable-atomic"))]
    pub use portable_atomic::AtomicUsize;
}

#[cfg(feature = "alloc")]
mod channel;

#[cfg(feature = "format")]
#[cfg_attr(docsrs, doc(cfg(feature = "format")))]
pub mod format;

pub use bytes::{Batch, BatchIter, ByteConsumer, ByteRing, Grant, Record, ReserveError};
pub use ring::{Consumer, Drain, Full, Ring, TryPopError};

#[cfg(feature = "alloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
pub use channel::{channel, channel_at, try_channel, CapacityError, Producer, Receiver};

#[cfg(feature = "alloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
pub use bytes::{
    byte_channel, byte_channel_at, try_byte_channel, ByteCapacityError, ByteProducer, ByteReceiver,
};

#[cfg(test)]
mod tests;

// Thread-safety facts the docs promise, checked at compile time.
const _: () = {
    use core::cell::Cell;
    use static_assertions::{assert_impl_all, assert_not_impl_any};

    // Send + Sync iff T: Send. Cell is Send but not Sync: the ring must still be Sync.
    assert_impl_all!(Ring<u64, 4>: Send, Sync);
    assert_impl_all!(Ring<Cell<u64>, 4>: Send, Sync);
    assert_not_impl_any!(Ring<*const u8, 4>: Send, Sync);
    // The consumer moves between threads but is never shared or duplicated.
    assert_impl_all!(Consumer<'static, u64, 4>: Send);
    assert_not_impl_any!(Consumer<'static, u64, 4>: Sync, Clone);
    assert_not_impl_any!(Consumer<'static, *const u8, 4>: Send);
    assert_impl_all!(Full<u64>: core::error::Error, Send, Sync);
    assert_impl_all!(TryPopError: core::error::Error, Send, Sync, Copy);

    // The byte ring: shared by any number of producers; one consumer, movable, not shared.
    assert_impl_all!(ByteRing<64>: Send, Sync);
    assert_impl_all!(ByteConsumer<'static>: Send);
    assert_not_impl_any!(ByteConsumer<'static>: Sync, Clone);
    assert_impl_all!(Grant<'static>: Send, Sync);
    assert_not_impl_any!(Grant<'static>: Clone);
    assert_impl_all!(Record<'static>: Send, Sync);
    assert_impl_all!(Batch<'static>: Send, Sync);
    assert_impl_all!(ReserveError: core::error::Error, Send, Sync, Copy);
};

#[cfg(feature = "alloc")]
const _: () = {
    use static_assertions::{assert_impl_all, assert_not_impl_any};
    assert_impl_all!(Producer<u64>: Send, Sync, Clone);
    assert_impl_all!(Producer<core::cell::Cell<u64>>: Send, Sync);
    assert_impl_all!(Receiver<u64>: Send);
    assert_not_impl_any!(Receiver<u64>: Clone);
    assert_not_impl_any!(Producer<*const u8>: Send, Sync);
    assert_not_impl_any!(Receiver<*const u8>: Send);
    assert_impl_all!(crate::CapacityError: core::error::Error, Send, Sync);
    assert_impl_all!(ByteProducer: Send, Sync, Clone);
    assert_impl_all!(ByteReceiver: Send);
    assert_not_impl_any!(ByteReceiver: Clone);
    assert_impl_all!(ByteCapacityError: core::error::Error, Send, Sync);
};
