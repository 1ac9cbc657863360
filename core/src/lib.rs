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
//! `Receiver`. Every front end runs one implementation of the algorithm: the inline ring with a
//! constant index mask, the heap ring with its mask read at run time.
//!
//! Three ways to push:
//! - [`Ring::try_push`] (any thread, any number of threads): returns `Err(Full(value))` when
//!   the ring is full, with the value intact. One compare-and-swap on the producers' counter.
//! - [`SoloProducer::try_push`], from [`Ring::split`]: the ring's only producer, which pushes
//!   with plain loads and stores (no read-modify-write, like an SPSC queue).
//! - [`EvictingRing::force_push`](Ring::force_push) never fails: when the ring is full it
//!   evicts the oldest value and returns it (the drop-oldest policy). The consumer counts what
//!   it missed: [`Consumer::evicted`] grows by exactly the number of values evicted between two
//!   pops. Eviction is a property of the ring's type ([`Mode`]): a ring that cannot evict
//!   (the default, [`NoEvict`]) has a consumer with no read-modify-write at all.
//!
//! For many producers that never share a cache line, [`Lanes`] gives each producer handle a
//! ring of its own (the solo push above, per lane) and one [`LanesConsumer`] takes from all of
//! them: order is then per handle only (values of different handles are not ordered with each
//! other), in exchange for pushes without read-modify-writes.
//!
//! # Guarantees
//! - Every value pushed is popped exactly once, returned by `force_push` exactly once, or dropped
//!   exactly once by the `Ring`'s `Drop`. Never duplicated, never leaked, never read
//!   uninitialised.
//! - Values from one producer come out in the order that producer pushed them. Across
//!   producers of a [`Ring`] (or `channel`), the order is the order in which their pushes
//!   claimed positions: a push that happens-before another (the second thread learned of the
//!   first push through any synchronisation) comes out before it. ([`Lanes`] orders per handle
//!   only.)
//! - `Ring<T, N>` is `Send + Sync` exactly when `T: Send`. [`Consumer`] is `Send`, not `Sync`,
//!   not `Clone`, and [`Ring::consumer`] hands out at most one at a time.
//! - Positions are counters that wrap at 2^(`usize::BITS` - 1) ([`POSITION_MASK`]); every
//!   comparison is a wrapping difference, and `N` divides the position space, so nothing
//!   changes at the wrap (tests start rings near the wrap to check).
//!
//! # Progress, honestly
//! The ring is lock-free in the sense that holds for this family of queues (Vyukov's bounded
//! queue, crossbeam's `ArrayQueue`, the LMAX Disruptor's multi-producer sequencer): no
//! operation takes a lock, and among threads that keep running, some operation always
//! completes. It is not wait-free:
//! - A producer that is preempted between claiming a position and publishing its value holds
//!   the consumer at that position. [`Consumer::try_pop`] and [`Consumer::drain`] never wait
//!   for it: `try_pop` says [`TryPopError::Pending`] (told apart from `Empty`) and the caller
//!   decides when to look again (the std writer backs off). [`Consumer::pop`] is linearizable
//!   like crossbeam's `ArrayQueue::pop` — `None` only when the ring is empty — so it waits for
//!   that producer; a consumer that can preempt a producer of its ring (an interrupt handler, a
//!   higher-priority task on one core) must use `try_pop` or `drain`. Values pushed after that
//!   position stay queued until it is published.
//!   A solo producer ([`Ring::split`], each lane of [`Lanes`]) holds back nothing but its own
//!   later pushes: its push takes effect when published, so those consumers never say
//!   `Pending` and their `pop` never waits.
//! - [`Ring::try_push`] never waits for anyone; it reports [`Full`] if the consumer has not
//!   yet moved out the value one lap before its position. It is safe in an interrupt handler
//!   that preempted the consumer.
//! - `force_push` on a full ring may spin while the oldest position is settled: its producer
//!   still writing it, the consumer moving a run of values out, an earlier `force_push`
//!   evicting — windows of a few instructions with no user code in them. From an interrupt
//!   handler that can preempt the consumer or a producer of the same ring, use `try_push`:
//!   `force_push` there could wait for the very code it interrupted.
//!
//! # How it works
//! Positions are unbounded counters (internally in *ticks* of two, so that bit 0 of a counter
//! is free for a flag). Position `p` lives in slot `p mod N`. The shared state is split by who
//! writes it, each part on its own cache line:
//!
//! | where | written by | read by |
//! |---|---|---|
//! | `tail`: next position to claim, and `limit`: a cached bound of free positions | producers | producers |
//! | `freed`: every position before it has been moved out of its slot | the consumer | producers, when they reach `limit` |
//! | `head` (evicting rings only): next position nobody has claimed to take | the consumer and evictors (CAS) | the same |
//! | each slot's stamp: "published for position `p`" (`2p + 1`) and its value | the producer of `p` | the consumer |
//!
//! **Push** loads `tail` and `limit` (one line). If `tail` is before `limit` the slot is free;
//! otherwise it refreshes: it loads `freed` (`Acquire`, pairing with the consumer's `Release`
//! store made after it moved the values out) and stores `freed + N` as the new `limit`
//! (`Release`, so that a producer that later loads it with `Acquire` inherits that edge). If the
//! slot is still occupied, the ring is full. Then it claims the position with a compare-and-swap
//! on `tail` (`Relaxed`: it only decides who owns the position), writes the value, and
//! publishes it by storing the stamp `2p + 1` (`Release`). A producer never loads a line the
//! consumer writes except `freed`, once per lap or so: it does not wait for the lines the
//! consumer has just read to come back. A [`SoloProducer`] does the same with a plain store to
//! `tail` and its bound cached in itself.
//!
//! **Pop** (a ring that does not evict) keeps its own cursor. It loads the stamp at the cursor
//! (`Acquire`, pairing with the producer's `Release`, so the value is visible). If it says
//! "published for this position", the consumer moves the value out and stores its new cursor in
//! `freed` (`Release`, pairing with the producers' `Acquire` load: the read of the old value
//! happens-before the write of the new one). No read-modify-write: nobody else ever takes a
//! value. The consumer writes only its own line, never a slot.
//!
//! **An evicting ring** has a second taker, so the consumer and the evictor must agree on each
//! value through `head`. The consumer counts the published run at its cursor (up to [`STAGE`]
//! stamps), claims the whole run with one compare-and-swap `head: c -> c + run`, moves the
//! values into the ring's staging buffer (so a paused `Drain` holds no slots, and an evictor
//! never waits for user code), and stores `freed`. If the compare-and-swap fails, evictors took
//! positions at its cursor: the failure value says how many (that is [`Consumer::evicted`]).
//!
//! **force_push** on a full ring evicts the position in the slot it needs, `old = t - N` for
//! the tail `t`, and only that one, so there is at most one eviction per push and no race
//! between evictors for the same value. It first checks that nobody has claimed `old` to take
//! it (`head == old`) and that `old` is published (`Acquire`); only then does it claim `t` with
//! the usual compare-and-swap on `tail`, and then `old` with a compare-and-swap on `head`. If it
//! wins, it moves the old value out, writes its own and publishes it. If the consumer claimed
//! `old` in between (in a run), it waits until `freed` passes `old` (the consumer's move, a few
//! instructions) and writes without evicting. A push never waits while holding a claim that
//! others wait for: checking before claiming is what keeps a preempted thread from stalling
//! every push behind it.
//!
//! **Why a slot is never written before it is read:** a producer writes position `p` only after
//! seeing, through an `Acquire` chain ending at the consumer's `Release` store of `freed`, that
//! `p - N` was moved out — or, when it evicted `p - N`, after moving it out itself. **Why it is
//! never read before it is written:** a taker reads only after seeing the stamp `2p + 1` with
//! `Acquire`. **Why a value is taken once:** in a ring that does not evict only the consumer
//! takes; in one that does, positions are claimed by compare-and-swap on `head`, and an evictor
//! may only claim the one position in the slot of the tail it claimed. Stamps name the full position,
//! so a stale one can never pass for a fresh one, across laps and across the wrap.
//!
//! **Closing** (for the std writer, through `channel()`'s `Producer::close`): one `fetch_or`
//! sets bit 0 of `tail`; every claim is a compare-and-swap on `tail` and fails from then on, so
//! the value `close` returns is the final number of claims, with no fence on the push path.
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
//! models of weak memory (one is argued instead, because loom cannot show it failing: the
//! `Lanes` consumer flag's Release/Acquire, see `lanes.rs`). The tests also run under Miri and ThreadSanitizer.
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
mod lanes;
mod raw;
mod ring;
mod sync;

/// Under `--cfg loom` only: the DPOR-gap workaround atomic (see `sync.rs`), for the std
/// writer's own loom shim. Not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub use sync::loom_workaround as __loom;

#[cfg(feature = "alloc")]
mod channel;

#[cfg(feature = "format")]
#[cfg_attr(docsrs, doc(cfg(feature = "format")))]
pub mod format;

pub use bytes::{Batch, BatchIter, ByteConsumer, ByteRing, Grant, Record, ReserveError};
pub use lanes::{LaneProducer, Lanes, LanesConsumer, LanesDrain};
pub use raw::{position_diff, Evict, Mode, NoEvict, MAX_CAPACITY, POSITION_MASK, STAGE};
pub use ring::{Consumer, Drain, EvictingRing, Full, Ring, SoloProducer, TryPopError};

#[cfg(feature = "alloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
pub use channel::{
    channel, channel_at, evicting_channel, try_channel, try_channel_with, try_evicting_channel,
    CapacityError, Producer, PushError, Receiver,
};

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
    assert_impl_all!(EvictingRing<u64, 4>: Send, Sync);
    assert_impl_all!(EvictingRing<Cell<u64>, 4>: Send, Sync);
    assert_not_impl_any!(EvictingRing<*const u8, 4>: Send, Sync);
    // The consumer moves between threads but is never shared or duplicated.
    assert_impl_all!(Consumer<'static, u64, 4>: Send);
    assert_not_impl_any!(Consumer<'static, u64, 4>: Sync, Clone);
    assert_not_impl_any!(Consumer<'static, *const u8, 4>: Send);
    assert_impl_all!(Consumer<'static, u64, 4, Evict>: Send);
    assert_not_impl_any!(Consumer<'static, u64, 4, Evict>: Sync, Clone);
    // So is the solo producer: one thread at a time, never duplicated.
    assert_impl_all!(Lanes<u64, 4, 2>: Send, Sync);
    assert_impl_all!(Lanes<Cell<u64>, 4, 2>: Send, Sync);
    assert_not_impl_any!(Lanes<*const u8, 4, 2>: Send, Sync);
    assert_impl_all!(LaneProducer<'static, u64, 4, 2>: Send);
    assert_not_impl_any!(LaneProducer<'static, u64, 4, 2>: Sync, Clone);
    assert_not_impl_any!(LaneProducer<'static, *const u8, 4, 2>: Send);
    assert_impl_all!(LanesConsumer<'static, u64, 4, 2>: Send);
    assert_not_impl_any!(LanesConsumer<'static, u64, 4, 2>: Sync, Clone);
    assert_impl_all!(SoloProducer<'static, u64, 4>: Send);
    assert_not_impl_any!(SoloProducer<'static, u64, 4>: Sync, Clone);
    assert_not_impl_any!(SoloProducer<'static, *const u8, 4>: Send);
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
    assert_impl_all!(Producer<u64, Evict>: Send, Sync, Clone);
    assert_impl_all!(Receiver<u64, Evict>: Send);
    assert_not_impl_any!(Receiver<u64, Evict>: Clone);
    assert_impl_all!(crate::PushError<u64>: core::error::Error, Send, Sync);
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
