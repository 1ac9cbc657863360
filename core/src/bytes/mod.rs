//! Variable-length records without allocation: [`ByteRing`], a lock-free multi-producer,
//! single-consumer ring of byte records written and read in place.
//!
//! A producer reserves room for a record ([`ByteRing::try_reserve`]), writes it through the
//! returned [`Grant`] (a `&mut [u8]` of exactly the length asked for, inside the ring), and
//! commits it. The consumer reads published records in reservation order as `&[u8]`, in
//! place: one at a time ([`ByteConsumer::read`], released when the [`Record`] is dropped) or
//! as a [`Batch`] released at once ([`ByteConsumer::read_batch`]), which is what a writer
//! framing records into its write buffer wants: one copy, a checksum computed on the way.
//! Nothing allocates, takes a lock or makes a system call, so the ring can be a `static`
//! written from interrupt handlers. With the `alloc` feature, `byte_channel(capacity)` builds
//! one of a run-time size on the heap: the same algorithm, the same code.
//!
//! ```
//! use ringwal_core::ByteRing;
//! use std::io::Write as _;
//!
//! static EVENTS: ByteRing<4096> = ByteRing::new();
//!
//! // Producer (any thread): format straight into the ring, commit what was written.
//! let mut grant = EVENTS.try_reserve(64).expect("room");
//! let mut w = &mut grant[..];
//! write!(w, "sensor {} read {}", 3, 1017).unwrap();
//! let written = 64 - w.len();
//! grant.commit_len(written);
//!
//! // Consumer: in place, no copy.
//! let mut consumer = EVENTS.consumer().expect("one consumer at a time");
//! let batch = consumer.read_batch(usize::MAX).expect("a record");
//! assert_eq!(batch.iter().next(), Some(&b"sensor 3 read 1017"[..]));
//! ```
//!
//! # Guarantees
//! - Every committed record is read exactly once, byte for byte, in reservation order (so per
//!   producer, in the order that producer reserved). A discarded grant (dropped without
//!   commit) and the unused end of a shortened one ([`Grant::commit_len`]) are skipped.
//! - A record never straddles the end of the buffer: every `&[u8]` and `&mut [u8]` handed out
//!   is contiguous. A record may be up to `capacity / 2 - 8` bytes; a longer one is
//!   [`ReserveError::TooLarge`], never a panic. A grant's bytes start zeroed.
//! - `ByteRing<BYTES>` is `Send + Sync`; [`ByteConsumer`] is `Send`, not `Sync`, not `Clone`,
//!   and [`ByteRing::consumer`] hands out at most one at a time.
//! - Drop-oldest is not offered for byte records: a producer would have to evict records of
//!   several lengths that the consumer may be reading in place. Producers get
//!   [`ReserveError::Full`] and decide (the std writer refuses `Overflow::DropOldest` for its
//!   byte path).
//!
//! # Progress, honestly
//! Lock-free in the sense that holds for this family of queues: no lock, and among threads that
//! keep running some operation always completes. Not wait-free:
//! - A producer holding a grant (between `try_reserve` and commit or drop, which may include
//!   user code) holds the consumer at its record: [`ByteConsumer::read`] says
//!   [`TryPopError::Pending`](crate::TryPopError::Pending) (told apart from `Empty`), and the
//!   records reserved after it wait behind it. Other producers are not held: they keep
//!   reserving until the ring is full. `mem::forget` on a grant is not undefined behaviour, but
//!   the consumer then waits at it forever (the ring stalls): do not forget grants.
//! - The consumer never waits (there is no waiting `read`: the record it would wait for may be
//!   in user code). `try_reserve` never waits for another thread: it retries only when another
//!   producer reserved first, so it is safe in an interrupt handler.
//!
//! # Layout
//! The buffer is a power of two of 8-byte *granules*. Positions count granules, modulo
//! 2^(`usize::BITS` - 1), and position `p` is granule `p mod G`. The counters hold them as
//! *ticks* of two (`2p`, wrapping at `usize::MAX`), as the slot ring does, so that bit 0 of
//! `tail` is free for the closed flag (see "Close" below). A record is a header
//! granule and its payload rounded up to granules, so every header and every payload is
//! 8-aligned (enough for any primitive a user encodes in place, on every target). The header is
//! one `usize` word at the start of the header granule, accessed atomically:
//!
//! | header word   | meaning                                                             |
//! |---------------|---------------------------------------------------------------------|
//! | `0`           | not written: free space, or reserved and not yet committed           |
//! | `len << 2 | 1` | a committed record of `len` bytes (occupying `1 + ceil(len / 8)` granules) |
//! | `n << 2 | 2`   | skip `n` granules (this one included): padding, a discarded grant, the unused end of a shortened one |
//!
//! Counters: `tail` (next granule to reserve, advanced by producers' CAS, with the closed flag
//! in bit 0) and `head` (everything before it is released; stored only by the consumer), each
//! on its own cache line.
//!
//! **Padding.** A record that does not fit before the end of the buffer makes the rest of the
//! lap a skip record and starts at granule 0 of the next lap; both are reserved by one CAS. The
//! longest record is half the ring (`capacity / 2 - 8` bytes), which is what makes every legal
//! record fit into an empty ring wherever the tail is: if the record (`s` granules) does not fit
//! before the end, fewer than `s <= G / 2` granules are left there, so the tail is past
//! `G / 2`, and padding plus record take at most `G - s + s = G`.
//!
//! # How it works
//! **Reserve** loads `tail` (reporting `Closed` if its flag is set), computes the padding and
//! the end of the reservation, and checks it against `limit`, a bound the producers cache on
//! their own line (`Acquire`): every granule before it is free. Only when the reservation
//! does not fit below it does the producer load the consumer's `head` (`Acquire`) and store
//! the fresh bound `head + G` (`Release`), reporting `Full` if it does not fit below that
//! either. So producers do not load the line the consumer writes on every reservation, only
//! about once a lap (the slot ring does the same with its `freed` counter). A bound is only
//! ever a `head + G` some producer acquired, so never too high; a slower producer storing an
//! older one only costs a refresh. Then it claims `tail .. tail + pad + span` with a CAS on
//! `tail` (`Relaxed`: it only decides which producer owns the space; `SeqCst` for
//! `try_reserve_checked`, see "Close"), writes the padding's skip header if any (`Release`),
//! and hands out the payload. A failed CAS retries with the tail it returned (checking the
//! flag again).
//!
//! **Commit** stores the record header (`Release`). `commit_len` first writes a skip header
//! over the unused granules (`Relaxed`: sequenced before the `Release` below, and the consumer
//! only reaches it by stepping over the record it acquired). **Discard** stores a skip header
//! over the whole reservation (`Release`).
//!
//! **Read** loads the header at its position (`Acquire`, pairing with those `Release` stores:
//! the payload is visible). A skip header moves it on; a record is handed out; `0` means not
//! published yet: `tail == position` says `Empty`, else `Pending`. A walk never goes a whole
//! ring past `head`: in a ring full of records and skips, the granule one ring on is the
//! consumer's own oldest header, not a new one. **Release** (dropping a
//! record or a batch) zeroes every granule it passes, header words included, then stores the
//! new `head` (`Release`, pairing with the refreshing producer's `Acquire` load, whose
//! `Release` store of `limit` the others acquire: the consumer's reads and its zeroing
//! happen-before any write into that space by the next lap).
//!
//! **The stale-header trap, and why zeroing closes it.** A producer's header store comes after
//! its CAS on `tail`, so for a moment the space is reserved and its header not yet written. If
//! that word still held what it held a lap ago — a header, or payload bytes that look like
//! one (a producer may write any bytes) — the consumer would read a record that is not there
//! while the producer writes it. Position-tagging the header cannot fix that (payload bytes can
//! forge any tag) and on 32-bit targets a tag would wrap after 4 GiB anyway. Instead the
//! consumer zeroes what it releases before storing `head`, so the invariant is: *every granule
//! from `tail` to `head + G` reads as zero*. The consumer looks at a header only at a record
//! boundary at or before `tail`. Such a word was last written either by its owner (a producer's
//! store, which the consumer acquires or has not yet seen) or by the consumer itself (zeroing,
//! or the ring's initial zeros), in that modification order: the owner reserved it only after
//! acquiring the `head` that the consumer stored after zeroing, so the zero happens-before the
//! owner's store; and the consumer's own zeroing is sequenced before its later loads, which
//! therefore see the zero or the owner's header, never anything older. No producer ever loads a
//! header.
//!
//! **Atomic and plain accesses to the same bytes.** A granule is a header word (atomic) in one
//! lap and payload (plain) in another. Every plain access is ordered with every atomic one by
//! happens-before: a producer writes payload and header only inside its reservation, after its
//! `Acquire` of `head` (so after the consumer's zeroing and reads of the lap before); the
//! consumer reads payload only after acquiring the header that published it, and zeroes only
//! after acquiring every header in the range (padding and discards are published with `Release`
//! for exactly this reason, though the consumer reads nothing behind them). That is the
//! condition `AtomicUsize::from_ptr` states. The loom models check it: under `--cfg loom` each
//! granule's memory has a shadow cell that every access reports to (see `storage.rs`).
//!
//! **The wrap.** Ticks are compared only by wrapping differences (`tail - head <= 2G`), and
//! `2G` divides 2^`usize::BITS`, so granule `(t / 2) mod G` is continuous across `usize::MAX`;
//! tests start rings just before the wrap (`ByteRing::new_at`). Positions count granules, not
//! bytes, so a 32-bit counter wraps after 2^31 granules, 16 GiB, not 4. A producer that read
//! `tail` and `head` and is preempted before its CAS re-checks nothing but `tail`: if exactly
//! 2^(`usize::BITS` - 1) granules (16 GiB on a 32-bit target) pass through the ring meanwhile,
//! its CAS would succeed on stale space. This is the same accepted window as in crossbeam's
//! `ArrayQueue` (a counter's full wrap during one preemption), 4 times wider here than for a
//! ring counting bytes.
//!
//! **A stale tail.** If a producer's `tail` is older than the `head` it then loads, the
//! difference wraps past `G`; it reloads `tail`, which is then at or past `head` (the record
//! the consumer released last was published after its producer's CAS moved `tail` past it, so
//! that CAS happens-before the `head` we acquired). A stale tail that passes the check
//! against the cached `limit` (which it may: it is behind) fails its CAS, and retries with
//! the current one.
//!
//! **Full is a snapshot.** `Full` means: with the tail and head this thread read, the record
//! (and its padding) does not fit. With an older tail than the current one the answer is the
//! same (a later tail only leaves less room, padding included), so it was true when the tail was
//! read, up to the consumer releasing more since.
//!
//! **Empty versus Pending.** As for the slot ring: a reservation that happened-before the read
//! moved `tail` (coherence shows it), and if its commit happened-before too, the `Acquire`
//! header load saw it, so a completed push is never reported `Empty`.
//!
//! **Close** (heap rings, `ByteProducer::close`, for the std writer's shutdown) sets bit 0 of
//! `tail` with one `SeqCst` `fetch_or` and returns the final position. Every claim is a CAS on
//! `tail` that expects the flag clear, so none succeeds after it; every position before the
//! final one was claimed before it, and is committed or discarded by its grant (or stalls the
//! consumer, if forgotten). `try_reserve_checked` claims with a `SeqCst` CAS so that the std
//! writer can pair the claim with later `SeqCst` loads (`reserved_seqcst`, `is_closed`, its
//! own state word): the protocol is argued in `std-writer/src/signal.rs`. `Empty` versus
//! `Pending` masks the flag out of `tail`.
//!
//! **Consumer hand-off.** The claim flag is taken with an `Acquire` CAS and given back with a
//! `Release` store; the next consumer starts at `head`, and every read and zeroing of the one
//! before happens-before it. Records and batches are always released when dropped, so `head`
//! is the whole consumer state.
//!
//! Every ordering is checked under loom in `loom-tests/tests/byte_ring.rs` (two producers and
//! the consumer across the `usize` wrap with padding, a discarded and a shortened grant, a full
//! ring racing the consumer's release, consumer hand-off, a ring dropped with records and a
//! forgotten grant inside, close racing a reservation, a committed and a discarded grant, and
//! a refusal), each model shown to fail under a mutation. The tests also run under
//! Miri (stacked and tree borrows) and ThreadSanitizer.

mod handles;
#[cfg(feature = "alloc")]
mod heap;
mod raw;
mod ring;
mod storage;

use core::fmt;

pub use handles::{Batch, BatchIter, Grant, Record};
#[cfg(feature = "alloc")]
pub use heap::{
    byte_channel, byte_channel_at, try_byte_channel, ByteCapacityError, ByteProducer, ByteReceiver,
};
pub use ring::{ByteConsumer, ByteRing};

/// Why `try_reserve` (or `try_push`, `try_reserve_checked`) could not reserve room for a
/// record.
///
/// ```
/// use ringwal_core::{ByteRing, ReserveError};
/// let ring: ByteRing<64> = ByteRing::new();
/// let err = ring.try_push(&[0; 100]).unwrap_err();
/// assert_eq!(err, ReserveError::TooLarge { len: 100, max: 24 });
/// assert_eq!(err.to_string(), "record of 100 bytes is longer than this ring's maximum of 24");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReserveError {
    /// Not enough room between the tail and the consumer now (the consumer is behind, or a
    /// grant not yet committed holds it). Retrying later may succeed.
    Full,
    /// The record is longer than the ring can ever hold (`capacity / 2 - 8` bytes): no retry
    /// will succeed.
    TooLarge {
        /// The length asked for.
        len: usize,
        /// The ring's longest record.
        max: usize,
    },
    /// The ring was closed to producers (`ByteProducer::close`, heap rings only): no retry
    /// will succeed.
    Closed,
}

impl fmt::Display for ReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReserveError::Full => f.write_str("byte ring is full"),
            ReserveError::Closed => f.write_str("byte ring is closed"),
            ReserveError::TooLarge { len, max } => write!(
                f,
                "record of {len} bytes is longer than this ring's maximum of {max}"
            ),
        }
    }
}

impl core::error::Error for ReserveError {}
