//! The byte ring's algorithm, shared by the inline [`ByteRing`](super::ByteRing) and the heap
//! ring of `byte_channel()`. The argument for every ordering is in the module docs
//! (`bytes/mod.rs`, "How it works"); the comments here name, at each atomic access, what it
//! pairs with.

use crossbeam_utils::CachePadded;

use super::storage::{Bytes, GRANULE, GRANULE_SHIFT};
use super::ReserveError;
use crate::raw::{ClaimOrder, CLOSED};
use crate::ring::TryPopError;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};

/// Header word: not written yet (free space, or reserved and not yet published).
const EMPTY: usize = 0;
/// Header kind in the low two bits: a published record; the rest of the word is its length in
/// bytes.
const KIND_RECORD: usize = 1;
/// Header kind: granules to step over (padding before the end of the buffer, a discarded
/// grant, the unused tail of a shortened one); the rest of the word is how many granules,
/// this header's own included.
const KIND_SKIP: usize = 2;
const KIND_BITS: u32 = 2;
const KIND_MASK: usize = (1 << KIND_BITS) - 1;

/// The largest capacity in bytes: positions count granules, and every comparison of two
/// positions is a wrapping difference that must stay far from the wrap (see the module docs).
pub(crate) const MAX_BYTES: usize = 1 << (usize::BITS - 2);
/// The smallest capacity in bytes: two granules, so a record of length 0 fits.
pub(crate) const MIN_BYTES: usize = 2 * GRANULE;

/// Granules a record of `len` bytes occupies: its header granule and its payload rounded up.
/// `len` is at most the ring's maximum record length, so this cannot overflow.
#[inline(always)]
fn span_of(len: usize) -> usize {
    1 + ((len + GRANULE - 1) >> GRANULE_SHIFT)
}

#[inline(always)]
fn record_header(len: usize) -> usize {
    (len << KIND_BITS) | KIND_RECORD
}

#[inline(always)]
fn skip_header(granules: usize) -> usize {
    (granules << KIND_BITS) | KIND_SKIP
}

/// Position `tick` moved on by `granules` granules. Positions are counted in ticks of two, so
/// that bit 0 of `tail` is free for [`CLOSED`] (as in the slot ring, `crate::raw`).
#[inline(always)]
fn advance(tick: usize, granules: usize) -> usize {
    tick.wrapping_add(granules << 1)
}

/// Granules from tick `from` to tick `to`: the wrapping difference, exact when `to` is at or
/// after `from` and less than 2^(`usize::BITS` - 1) granules on; when `to` is before `from`
/// (a stale tail) it is at least 2^(`usize::BITS` - 2), far more than any ring holds.
#[inline(always)]
fn granules_between(to: usize, from: usize) -> usize {
    to.wrapping_sub(from) >> 1
}

/// Whether tick `a` is at or before tick `b` (wrapping; the two are far less than
/// 2^(`usize::BITS` - 2) apart).
#[inline(always)]
fn at_or_before(a: usize, b: usize) -> bool {
    (b.wrapping_sub(a) as isize) >= 0
}

/// The two shared counters, each on its own cache line. Positions are counted in *ticks*: the
/// position of granule count `p` is the tick `2p` (wrapping at `usize::MAX`, so positions
/// wrap at 2^(`usize::BITS` - 1) granules), and lives in granule `p & mask`.
pub(crate) struct ByteCounters {
    /// Written by the consumer only (a plain `Release` store), read by producers. A tick.
    head: CachePadded<HeadSide>,
    /// The producers' line: `tail` and the cached bound `limit`.
    prod: CachePadded<ProducerSide>,
}

struct ProducerSide {
    /// The tick of the first granule not yet reserved, with [`CLOSED`] in bit 0. Advanced by
    /// producers' CAS only; the flag is set by `close`'s `fetch_or` (after which every CAS
    /// fails).
    tail: AtomicUsize,
    /// A cached bound: every granule before this tick is free for producers (the consumer has
    /// released it, and its reads and zeroing of it happen-before a write by a producer that
    /// acquired this value). Always `head + G` (in ticks) for some `head` a producer acquired,
    /// so never too high; refreshed from `head` only when a reservation does not fit below
    /// it, so producers do not load the consumer's line on every reservation. A stale (lower)
    /// value only costs a refresh; 0 at start (every first reservation refreshes).
    limit: AtomicUsize,
}

struct HeadSide {
    /// Everything before this tick is released: read, zeroed, free for producers.
    head: AtomicUsize,
    /// Whether a `ByteConsumer` (or the `ByteReceiver`) is alive.
    consumer: AtomicBool,
}

impl ByteCounters {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        ByteCounters {
            head: CachePadded::new(HeadSide {
                head: AtomicUsize::new(0),
                consumer: AtomicBool::new(false),
            }),
            prod: CachePadded::new(ProducerSide {
                tail: AtomicUsize::new(0),
                limit: AtomicUsize::new(0),
            }),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        ByteCounters {
            head: CachePadded::new(HeadSide {
                head: AtomicUsize::new(0),
                consumer: AtomicBool::new(false),
            }),
            prod: CachePadded::new(ProducerSide {
                tail: AtomicUsize::new(0),
                limit: AtomicUsize::new(0),
            }),
        }
    }
}

/// The consumer's private state: the shared `head`, which only the consumer writes, mirrored so
/// that reading it costs nothing. Lives in `ByteConsumer` or `ByteReceiver`.
#[derive(Debug)]
pub(crate) struct ByteCursor {
    /// A tick (see [`ByteCounters`]).
    pub(crate) head: usize,
}

impl ByteCursor {
    /// The consumer's position in granules (modulo 2^(`usize::BITS` - 1)): the unit of
    /// `reserved()` and `close()`.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.head >> 1
    }
}

/// Where the next published record is, as found by [`RawBytes::walk`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Walk {
    /// A published record: its header at `start`, `len` payload bytes, the next position `end`.
    Ready {
        start: usize,
        len: usize,
        end: usize,
    },
    /// The header at this position is not written yet: free space (the tail) or a reservation
    /// not yet published. Everything before it (skips only) may be released.
    NotReady(usize),
}

/// What a batch covers: `records` published records with `bytes` payload bytes in all, in the
/// positions `start..end` (skips included).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Extent {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) records: usize,
    pub(crate) bytes: usize,
}

/// One ring seen through its parts: counters, bytes and the granule mask. Every operation of
/// both front ends is a method here, so the `static` ring and the heap ring run the same code
/// (the inline ring's mask is a constant after inlining).
///
/// Invariant: the buffer has `mask + 1` granules, a power of two between 2 and
/// `MAX_BYTES / GRANULE`.
#[derive(Clone, Copy)]
pub(crate) struct RawBytes<'a> {
    counters: &'a ByteCounters,
    bytes: Bytes<'a>,
    mask: usize,
}

impl<'a> RawBytes<'a> {
    /// # Safety
    /// `bytes` has exactly `granules` granules, a power of two between 2 and
    /// `MAX_BYTES / GRANULE`, and `counters` belong to it.
    #[inline(always)]
    pub(crate) unsafe fn new(
        counters: &'a ByteCounters,
        bytes: Bytes<'a>,
        granules: usize,
    ) -> Self {
        debug_assert!(granules.is_power_of_two() && granules >= 2);
        RawBytes {
            counters,
            bytes,
            mask: granules - 1,
        }
    }

    /// Granules in the buffer.
    #[inline(always)]
    fn granules(self) -> usize {
        self.mask + 1
    }

    /// Capacity in bytes.
    #[inline(always)]
    pub(crate) fn capacity(self) -> usize {
        self.granules() << GRANULE_SHIFT
    }

    /// The longest record: half the ring, less its header, so that a record fits into an
    /// empty ring wherever the tail is (see the module docs, "Padding").
    #[inline(always)]
    pub(crate) fn max_record_len(self) -> usize {
        max_record_len(self.capacity())
    }

    /// The granule of position (tick) `tick`.
    #[inline(always)]
    fn index(self, tick: usize) -> usize {
        (tick >> 1) & self.mask
    }

    /// The header word of position (tick) `tick`.
    #[inline(always)]
    fn header(self, tick: usize) -> &'a AtomicUsize {
        // SAFETY: `index(tick) <= mask < granules`, the buffer's length (the invariant).
        unsafe { self.bytes.header(self.index(tick)) }
    }

    /// Sets both counters to `position` (in granules), as if that many granules had passed
    /// through an empty ring. Only for a ring nobody else has seen (the `*_at` test
    /// constructors). Positions wrap at 2^(`usize::BITS` - 1): the top bit of `position` is
    /// ignored.
    pub(crate) fn start_at(self, position: usize) {
        let tick = position << 1;
        // Relaxed: not shared yet; whatever shares it (a spawn, an Arc) orders these stores.
        self.counters.head.head.store(tick, Ordering::Relaxed);
        self.counters.prod.tail.store(tick, Ordering::Relaxed);
        // A bound with no room: the first reservation refreshes it from `head`.
        self.counters.prod.limit.store(tick, Ordering::Relaxed);
    }

    /// Bytes in use (records, headers, padding): a snapshot, exact when quiescent.
    pub(crate) fn used_bytes(self) -> usize {
        // Relaxed: a snapshot with no ordering promise. Head first: whatever moves in between
        // only makes the difference larger, and the clamp bounds it.
        let head = self.counters.head.head.load(Ordering::Relaxed);
        let tail = self.counters.prod.tail.load(Ordering::Relaxed) & !CLOSED;
        let used = granules_between(tail, head);
        if used > self.granules() {
            0
        } else {
            used << GRANULE_SHIFT
        }
    }

    /// The producers' position (granules reserved so far, modulo 2^(`usize::BITS` - 1)): a
    /// snapshot.
    pub(crate) fn reserved(self) -> usize {
        // Relaxed: a reservation that happened-before this load is visible to it by coherence;
        // nothing is read through the value.
        (self.counters.prod.tail.load(Ordering::Relaxed) & !CLOSED) >> 1
    }

    /// [`reserved`](Self::reserved) with a `SeqCst` load: pairs with a `SeqCst` claim through
    /// the single total order (a thread that made a `SeqCst` change before this load either
    /// sees the claim here, or the claimant's later `SeqCst` load sees its change). The std
    /// writer's sleep handshake (`std-writer/src/signal.rs`).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn reserved_seqcst(self) -> usize {
        (self.counters.prod.tail.load(Ordering::SeqCst) & !CLOSED) >> 1
    }

    /// Whether [`close`](Self::close) was called.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn is_closed(self) -> bool {
        // SeqCst: the std writer's refusal handshake re-reads the flag after counting a refusal
        // (`std-writer/src/signal.rs`, "Refusals"); elsewhere a snapshot of a flag that never
        // clears.
        self.counters.prod.tail.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Closes the ring to producers: every reservation after this fails with
    /// [`ReserveError::Closed`]. Returns the final producers' position (granules): every
    /// position before it was reserved before the close, and will be committed or discarded
    /// by its grant (or stall the consumer, if the grant is forgotten).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn close(self) -> usize {
        // SeqCst: the std writer reads its refusal counters after this with SeqCst, and an
        // emit that counted a refusal re-reads `tail` with SeqCst after counting: one of the
        // two sees the other (`std-writer/src/signal.rs`). The RMW itself is what stops
        // reservations: every claim is a compare-and-swap on this word, which fails once the
        // flag is set (and `reserve` checks the flag before it tries again).
        let tail = self.counters.prod.tail.fetch_or(CLOSED, Ordering::SeqCst);
        // loom treats SeqCst accesses as AcqRel; the fence is what it models of this SeqCst
        // RMW (`std-writer/src/signal.rs`, "Under loom").
        #[cfg(loom)]
        crate::sync::fence(Ordering::SeqCst);
        (tail & !CLOSED) >> 1
    }

    /// Reserves room for a record of `len` bytes; returns the position (tick) of its header.
    /// `order` is the claim's ordering: `Relaxed` for the public reservations, `SeqCst` for
    /// the std writer's (`ClaimOrder`).
    #[inline(always)]
    pub(crate) fn reserve(self, len: usize, order: ClaimOrder) -> Result<usize, ReserveError> {
        let max = self.max_record_len();
        if len > max {
            return Err(ReserveError::TooLarge { len, max });
        }
        let span = span_of(len);
        let granules = self.granules();
        let prod = &*self.counters.prod;
        let head_counter = &self.counters.head.head;
        let mut tail = prod.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(ReserveError::Closed);
            }
            let to_end = granules - self.index(tail);
            // A record never straddles the end: if it does not fit before the end, the rest of
            // this lap becomes a padding record and the record starts the next lap.
            let pad = if span > to_end { to_end } else { 0 };
            let end = advance(tail, pad + span);
            // Acquire pairs with the Release store of `limit` below, by whichever producer
            // refreshed it, which followed that producer's Acquire load of `head`: the
            // consumer's reads and zeroing of every granule before `limit` happen-before our
            // writes there.
            let limit = prod.limit.load(Ordering::Acquire);
            if !at_or_before(end, limit) {
                // Acquire pairs with the consumer's Release store of `head` (in `release`): its
                // reads of the records before `head`, and its zeroing of their granules,
                // happen-before anything we write there.
                let head = head_counter.load(Ordering::Acquire);
                if granules_between(tail, head) > granules {
                    // Our `tail` is older than the consumer's `head` (both moved on since we
                    // read it). The record the consumer released last was published after its
                    // producer's CAS moved `tail` past it, and that CAS happens-before the head
                    // we just read, so a fresh load returns a tail at or past `head`.
                    tail = prod.tail.load(Ordering::Relaxed);
                    continue;
                }
                let fresh = advance(head, granules);
                if !at_or_before(end, fresh) {
                    return Err(ReserveError::Full);
                }
                // Release: see the Acquire load of `limit` above. A slower producer may store
                // an older bound over ours; that only costs someone a refresh.
                prod.limit.store(fresh, Ordering::Release);
            }
            // The claim. Relaxed for the public reservations: the CAS only decides which
            // producer owns `tail..end`; the space was found free by the Acquire load of
            // `limit` or `head` above (`head` only grows, and `limit` is never past
            // `head + G`), and the record's visibility is carried by its header's Release
            // store. SeqCst for the std writer (`ClaimOrder`). It fails if another producer
            // reserved first (a stale `tail`, which passed the bound check above without
            // meaning, is caught here too), or if the ring was closed (the flag changed the
            // word).
            let claim = match order {
                ClaimOrder::Relaxed => Ordering::Relaxed,
                ClaimOrder::SeqCst => Ordering::SeqCst,
            };
            match prod
                .tail
                .compare_exchange_weak(tail, end, claim, Ordering::Relaxed)
            {
                Ok(_) => {
                    #[cfg(loom)]
                    if order == ClaimOrder::SeqCst {
                        // loom treats SeqCst accesses as AcqRel; the fence is what it models of
                        // the SeqCst claim (`std-writer/src/signal.rs`, "Under loom").
                        crate::sync::fence(Ordering::SeqCst);
                    }
                    if pad != 0 {
                        self.bytes.touch_write(self.index(tail), 1);
                        // Release pairs with the consumer's Acquire header load: the consumer
                        // zeroes these granules after stepping over them, and that non-atomic
                        // write must happen-after this atomic store.
                        self.header(tail).store(skip_header(pad), Ordering::Release);
                    }
                    let start = advance(tail, pad);
                    self.bytes.touch_write(self.index(start) + 1, span - 1);
                    return Ok(start);
                }
                Err(current) => tail = current,
            }
        }
    }

    /// The payload of the record whose header is at `start`: `len` bytes right after it.
    ///
    /// # Safety
    /// `start` and `len` describe a record of this ring (reserved with `len`, or read from a
    /// published header), so `start & mask` plus its span is at most `granules`.
    #[inline(always)]
    pub(crate) unsafe fn payload(self, start: usize) -> *mut u8 {
        // SAFETY: `index(start) + 1 <= granules` (the record, header included, fits before
        // the end), so this is in bounds or one past the end (then `len` is 0).
        unsafe { self.bytes.payload(self.index(start) + 1) }
    }

    /// Publishes the record reserved at `start` with `len` bytes (of `reserved` reserved). Its
    /// unused granules, if any, become a skip record the consumer steps over. `len <= reserved`
    /// (the grant checks it).
    #[inline(always)]
    pub(crate) fn commit(self, start: usize, reserved: usize, len: usize) {
        debug_assert!(len <= reserved);
        let span = span_of(len);
        let reserved_span = span_of(reserved);
        let index = self.index(start);
        // The grant's payload writes end here (the grant is consumed).
        self.bytes.touch_write(index + 1, reserved_span - 1);
        if span < reserved_span {
            let rest = advance(start, span);
            self.bytes.touch_write(self.index(rest), 1);
            // Relaxed: sequenced before the Release store below, which the consumer acquires
            // before it ever looks at this position (it reaches it by stepping over the
            // record), so this store happens-before that load and the consumer's zeroing.
            self.header(rest)
                .store(skip_header(reserved_span - span), Ordering::Relaxed);
        }
        self.bytes.touch_write(index, 1);
        // Release pairs with the consumer's Acquire header load: whoever sees the header sees
        // the payload written through the grant (and the skip header above).
        self.header(start)
            .store(record_header(len), Ordering::Release);
    }

    /// Discards the grant reserved at `start` with `len` bytes: its granules become a skip
    /// record.
    #[inline(always)]
    pub(crate) fn discard(self, start: usize, len: usize) {
        let span = span_of(len);
        let index = self.index(start);
        self.bytes.touch_write(index, span);
        // Release pairs with the consumer's Acquire header load: the grant's payload writes
        // (the consumer does not read them, but zeroes them on release) happen-before it.
        self.header(start)
            .store(skip_header(span), Ordering::Release);
    }

    /// Walks from `position` over skip records to the next record. Never waits. `base` is the
    /// consumer's `head`: the walk never goes a whole ring past it (the granule there is
    /// `base`'s own, not the next lap's, when the ring is full of skips and records).
    ///
    /// # Panics
    /// On a header no correct producer writes (a bug in this module, not a user error): the
    /// checks keep a corrupt header from producing an out-of-bounds slice.
    #[inline(always)]
    pub(crate) fn walk(self, base: usize, mut position: usize) -> Walk {
        loop {
            let ahead = self.granules() - granules_between(position, base);
            if ahead == 0 {
                return Walk::NotReady(position);
            }
            let index = self.index(position);
            // Acquire pairs with the Release store that published this header (commit,
            // discard, padding): the payload written before it is visible, and every write to
            // these granules happens-before our reads and our zeroing on release.
            let header = self.header(position).load(Ordering::Acquire);
            let value = header >> KIND_BITS;
            let room = ahead.min(self.granules() - index);
            match header & KIND_MASK {
                KIND_RECORD => {
                    assert!(value <= self.max_record_len(), "ByteRing: corrupt header");
                    let span = span_of(value);
                    assert!(span <= room, "ByteRing: corrupt header");
                    self.bytes.touch_read(index, span);
                    return Walk::Ready {
                        start: position,
                        len: value,
                        end: advance(position, span),
                    };
                }
                KIND_SKIP => {
                    assert!(value >= 1 && value <= room, "ByteRing: corrupt header");
                    self.bytes.touch_read(index, 1);
                    position = advance(position, value);
                }
                _ => {
                    assert!(header == EMPTY, "ByteRing: corrupt header");
                    return Walk::NotReady(position);
                }
            }
        }
    }

    /// Releases everything before `end` (read records and skips): zeroes it, then publishes
    /// the new `head`.
    #[inline(always)]
    pub(crate) fn release(self, cursor: &mut ByteCursor, end: usize) {
        let count = granules_between(end, cursor.head);
        debug_assert!(count <= self.granules(), "release of {count} granules");
        let index = self.index(cursor.head);
        let first = count.min(self.granules() - index);
        // The consumer owns these granules: they are published records and skips before
        // `end`, which no producer touches again until it sees the `head` stored below.
        // SAFETY: in bounds (`index + first <= granules`, and `0..count - first` with
        // `count - first <= index`), and owned by the consumer (above).
        unsafe {
            self.bytes.zero(index, first);
            if count > first {
                self.bytes.zero(0, count - first);
            }
        }
        // Release pairs with the producers' Acquire load of `head` (in `reserve`): our reads
        // of the records and the zeroing above happen-before their writes into this space.
        self.counters.head.head.store(end, Ordering::Release);
        cursor.head = end;
    }

    /// The next published record (`start`, `len`, `end`), or why there is none. Skips stepped over on the way to an
    /// unpublished position are released at once (they hold space producers may need).
    #[inline(always)]
    pub(crate) fn try_read(
        self,
        cursor: &mut ByteCursor,
    ) -> Result<(usize, usize, usize), TryPopError> {
        match self.walk(cursor.head, cursor.head) {
            Walk::Ready { start, len, end } => Ok((start, len, end)),
            Walk::NotReady(position) => Err(self.not_ready(cursor, position)),
        }
    }

    /// Releases the skips before `position` and tells `Empty` from `Pending`.
    #[cold]
    fn not_ready(self, cursor: &mut ByteCursor, position: usize) -> TryPopError {
        if position != cursor.head {
            self.release(cursor, position);
        }
        // Relaxed: a reservation that happened-before this call moved `tail` before it returned,
        // so coherence shows it here (and if its commit happened-before too, `walk`'s Acquire
        // load saw that header: a completed push is never reported `Empty`). One racing with us
        // may or may not be seen; either answer was true at some point of the call.
        let tail = self.counters.prod.tail.load(Ordering::Relaxed) & !CLOSED;
        if tail == position {
            TryPopError::Empty
        } else {
            TryPopError::Pending
        }
    }

    /// Finds the published records from the cursor on, stopping at the first unpublished
    /// position, or before a record that would take the payload total past `max_bytes` (the
    /// first record is always taken). Never more than one ring's worth. The extent ends where
    /// the walk stopped, so the skips before that point are released with the batch.
    pub(crate) fn scan(
        self,
        cursor: &mut ByteCursor,
        max_bytes: usize,
    ) -> Result<Extent, TryPopError> {
        let start = cursor.head;
        let mut position = start;
        let mut records = 0;
        let mut bytes: usize = 0;
        loop {
            match self.walk(start, position) {
                Walk::Ready {
                    start: record,
                    len,
                    end,
                } => {
                    if records > 0 && bytes.saturating_add(len) > max_bytes {
                        // The skips before this record go with the batch.
                        position = record;
                        break;
                    }
                    records += 1;
                    bytes += len;
                    position = end;
                }
                Walk::NotReady(stop) => {
                    if records == 0 {
                        return Err(self.not_ready(cursor, stop));
                    }
                    // The skips before the unpublished position go with the batch.
                    position = stop;
                    break;
                }
            }
        }
        Ok(Extent {
            start,
            end: position,
            records,
            bytes,
        })
    }

    /// The record at `position` inside a scanned extent, or the skip there: `(next, record)`
    /// with `record = Some((start, len))` for a record. Only for positions a `scan` has walked
    /// with Acquire loads, so a Relaxed load returns the same header.
    #[inline(always)]
    pub(crate) fn step(self, position: usize) -> (usize, Option<usize>) {
        // Relaxed: `scan` read this header with Acquire already, and nobody writes it again
        // before the consumer releases it (read-read coherence: we see that value again).
        let header = self.header(position).load(Ordering::Relaxed);
        let value = header >> KIND_BITS;
        let to_end = self.granules() - self.index(position);
        if header & KIND_MASK == KIND_RECORD {
            assert!(
                value <= self.max_record_len() && span_of(value) <= to_end,
                "ByteRing: corrupt header"
            );
            (advance(position, span_of(value)), Some(value))
        } else {
            assert!(
                header & KIND_MASK == KIND_SKIP && value >= 1 && value <= to_end,
                "ByteRing: corrupt header"
            );
            (advance(position, value), None)
        }
    }

    pub(crate) fn claim_consumer(self) -> Option<ByteCursor> {
        // Acquire pairs with the Release store in `release_consumer`: the previous consumer's
        // last `head` store and its zeroing happen-before everything we do.
        self.counters
            .head
            .consumer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(ByteCursor {
            // Relaxed: the previous consumer (the only writer) stored it before releasing the
            // flag, which we acquired.
            head: self.counters.head.head.load(Ordering::Relaxed),
        })
    }

    pub(crate) fn release_consumer(self) {
        // Release pairs with the Acquire CAS in `claim_consumer`.
        self.counters.head.consumer.store(false, Ordering::Release);
    }
}

/// [`RawBytes::max_record_len`] for a capacity in bytes.
pub(crate) const fn max_record_len(capacity: usize) -> usize {
    capacity / 2 - GRANULE
}
