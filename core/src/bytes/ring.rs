//! The inline byte ring, usable in a `static`, and its consumer.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;

use super::handles::{Batch, Grant, Record};
use super::raw::{self, ByteCounters, ByteCursor, RawBytes, MAX_BYTES, MIN_BYTES};
use super::storage::{InlineBuf, GRANULE};
use super::ReserveError;
use crate::raw::ClaimOrder;
use crate::ring::TryPopError;

/// A lock-free multi-producer, single-consumer ring of variable-length byte records, `BYTES`
/// bytes inline. Producers reserve room in place ([`try_reserve`](Self::try_reserve)), write,
/// and commit; one [`ByteConsumer`] at a time reads the records in place, in reservation order.
///
/// `BYTES` must be a power of two, at least 16; anything else fails to compile. A record takes
/// 8 bytes of header plus its length rounded up to 8, and may be at most
/// [`max_record_len`](Self::max_record_len) = `BYTES / 2 - 8` bytes long. Nothing allocates,
/// locks or makes a system call; see the [module docs](crate::bytes) for the algorithm and its
/// guarantees. For a size chosen at run time, on the heap, see `byte_channel()` (feature
/// `alloc`): the same algorithm, the same code.
///
/// ```
/// use ringwal_core::ByteRing;
///
/// static LOG: ByteRing<4096> = ByteRing::new();
///
/// // Any thread: write a record in place.
/// let mut grant = LOG.try_reserve(11).unwrap();
/// grant.copy_from_slice(b"temp=21.5 C");
/// grant.commit();
/// LOG.try_push(b"door open").unwrap(); // or copy one in
///
/// // The consumer: read in place, release on drop.
/// let mut consumer = LOG.consumer().unwrap();
/// assert_eq!(&*consumer.read().unwrap(), b"temp=21.5 C");
/// assert_eq!(&*consumer.read().unwrap(), b"door open");
/// assert!(consumer.read().is_err());
/// ```
///
/// A size that is not a power of two does not compile:
///
/// ```compile_fail
/// let ring: ringwal_core::ByteRing<1000> = ringwal_core::ByteRing::new();
/// ```
pub struct ByteRing<const BYTES: usize> {
    counters: ByteCounters,
    buf: InlineBuf<BYTES>,
}

// SAFETY: the ring holds plain bytes; every access to them is ordered by the algorithm (see the
// module docs): a granule is written by one thread at a time and read only after its writer
// published it.
unsafe impl<const BYTES: usize> Sync for ByteRing<BYTES> {}
// SAFETY: as above.
unsafe impl<const BYTES: usize> Send for ByteRing<BYTES> {}

impl<const BYTES: usize> ByteRing<BYTES> {
    /// Evaluated by every constructor, so a bad `BYTES` is a compile error.
    const VALID_CAPACITY: () = assert!(
        BYTES.is_power_of_two() && BYTES >= MIN_BYTES && BYTES <= MAX_BYTES,
        "ByteRing capacity BYTES must be a power of two, at least 16"
    );

    /// An empty ring. `const`, so it can be a `static`.
    ///
    /// ```
    /// static RING: ringwal_core::ByteRing<65536> = ringwal_core::ByteRing::new();
    /// assert_eq!(RING.capacity(), 65536);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_CAPACITY;
        ByteRing {
            counters: ByteCounters::new(),
            buf: InlineBuf::new(),
        }
    }

    /// An empty ring (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_CAPACITY;
        ByteRing {
            counters: ByteCounters::new(),
            buf: InlineBuf::new(),
        }
    }

    /// An empty ring whose positions start at `position` (in 8-byte granules) instead of 0.
    /// Only for tests: it runs a ring across the wrap of its counters (positions wrap at
    /// 2^(`usize::BITS` - 1), so `POSITION_MASK - k` is `k + 1` granules before it, and the
    /// top bit of `position` is ignored), or starts it mid-buffer.
    #[doc(hidden)]
    pub fn new_at(position: usize) -> Self {
        let ring = Self::new();
        ring.raw().start_at(position);
        ring
    }

    #[inline(always)]
    fn raw(&self) -> RawBytes<'_> {
        // SAFETY: the buffer has BYTES / GRANULE granules, a power of two of at least 2 and at
        // most MAX_BYTES / GRANULE (VALID_CAPACITY), and the counters are this ring's.
        unsafe { RawBytes::new(&self.counters, self.buf.view(), BYTES / GRANULE) }
    }

    /// The size of the ring in bytes, `BYTES`.
    pub const fn capacity(&self) -> usize {
        BYTES
    }

    /// The longest record [`try_reserve`](Self::try_reserve) accepts: `BYTES / 2 - 8`. Half the
    /// ring, so that a record always fits into an empty ring wherever its tail is.
    ///
    /// ```
    /// let ring: ringwal_core::ByteRing<1024> = ringwal_core::ByteRing::new();
    /// assert_eq!(ring.max_record_len(), 504);
    /// assert!(ring.try_push(&[0; 504]).is_ok());
    /// assert!(ring.try_push(&[0; 505]).is_err());
    /// ```
    pub const fn max_record_len(&self) -> usize {
        raw::max_record_len(BYTES)
    }

    /// Bytes in use (records, their headers and padding): a snapshot, exact when no reserve or
    /// read runs concurrently.
    pub fn used_bytes(&self) -> usize {
        self.raw().used_bytes()
    }

    /// Whether [`used_bytes`](Self::used_bytes) is 0 (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.used_bytes() == 0
    }

    /// The producers' position: how many 8-byte granules reservations have taken since the ring
    /// was created, modulo 2^(`usize::BITS` - 1) (the slot ring's position space: compare two
    /// with [`position_diff`](crate::position_diff)). A reservation that returned before this
    /// call is counted. With [`ByteConsumer::position`] it gives a flush target: once the
    /// consumer's position has reached this value, every record reserved before the call has
    /// been read, discarded, or is still held by its grant.
    ///
    /// ```
    /// let ring: ringwal_core::ByteRing<256> = ringwal_core::ByteRing::new();
    /// ring.try_push(b"12345678").unwrap(); // a header granule and one payload granule
    /// assert_eq!(ring.reserved(), 2);
    /// ```
    pub fn reserved(&self) -> usize {
        self.raw().reserved()
    }

    /// Reserves room for a record of exactly `len` bytes, in place. Any thread, any number of
    /// threads at once; never waits for another thread (it retries only when another producer
    /// reserved first).
    ///
    /// Errors: [`ReserveError::TooLarge`] if `len` exceeds
    /// [`max_record_len`](Self::max_record_len), whatever the ring holds;
    /// [`ReserveError::Full`] if the room from the tail to the consumer's position, as this
    /// thread sees them, is too small (a record never straddles the end of the buffer, so near
    /// the end it needs the rest of the lap as well).
    ///
    /// ```
    /// use ringwal_core::{ByteRing, ReserveError};
    /// let ring: ByteRing<64> = ByteRing::new();
    /// let grant = ring.try_reserve(24).unwrap(); // 32 bytes with its header
    /// assert!(matches!(ring.try_reserve(40), Err(ReserveError::TooLarge { len: 40, max: 24 })));
    /// grant.commit();
    /// ring.try_reserve(24).unwrap().commit();    // 64 bytes used
    /// assert_eq!(ring.try_reserve(0).unwrap_err(), ReserveError::Full);
    /// ```
    #[inline]
    pub fn try_reserve(&self, len: usize) -> Result<Grant<'_>, ReserveError> {
        let raw = self.raw();
        let start = raw.reserve(len, ClaimOrder::Relaxed)?;
        Ok(Grant::new(raw, start, len))
    }

    /// Copies `bytes` into the ring as one record: [`try_reserve`](Self::try_reserve), copy,
    /// commit.
    ///
    /// ```
    /// let ring: ringwal_core::ByteRing<64> = ringwal_core::ByteRing::new();
    /// ring.try_push(b"hi").unwrap();
    /// assert_eq!(&*ring.consumer().unwrap().read().unwrap(), b"hi");
    /// ```
    #[inline]
    pub fn try_push(&self, bytes: &[u8]) -> Result<(), ReserveError> {
        let mut grant = self.try_reserve(bytes.len())?;
        grant.copy_from_slice(bytes);
        grant.commit();
        Ok(())
    }

    /// Claims the consumer side. `None` while another [`ByteConsumer`] is alive; dropping it
    /// frees the claim, and the next consumer continues where it stopped.
    ///
    /// ```
    /// let ring: ringwal_core::ByteRing<64> = ringwal_core::ByteRing::new();
    /// let first = ring.consumer().unwrap();
    /// assert!(ring.consumer().is_none());
    /// drop(first);
    /// assert!(ring.consumer().is_some());
    /// ```
    pub fn consumer(&self) -> Option<ByteConsumer<'_>> {
        let raw = self.raw();
        let cursor = raw.claim_consumer()?;
        Some(ByteConsumer {
            ring: raw,
            cursor,
            _not_sync: PhantomData,
        })
    }
}

impl<const BYTES: usize> Default for ByteRing<BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BYTES: usize> fmt::Debug for ByteRing<BYTES> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteRing")
            .field("capacity", &BYTES)
            .field("used_bytes", &self.used_bytes())
            .finish_non_exhaustive()
    }
}

/// The single consumer of a [`ByteRing`]: reads records in place, in reservation order.
/// `Send`, not `Sync`, not `Clone`. Obtained from [`ByteRing::consumer`].
pub struct ByteConsumer<'a> {
    ring: RawBytes<'a>,
    cursor: ByteCursor,
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: the consumer's view may move to another thread (the claim flag and `head` are
// atomics, its cursor is plain data it owns); `Cell` above keeps it `!Sync`.
unsafe impl Send for ByteConsumer<'_> {}

impl ByteConsumer<'_> {
    /// The oldest published record, in place; dropping it releases its space. Never waits:
    /// [`TryPopError::Empty`] when no record has been reserved past the consumer, and
    /// [`TryPopError::Pending`] when the next one is reserved but not yet committed (records
    /// behind it wait for it). Discarded grants and padding are stepped over.
    ///
    /// ```
    /// use ringwal_core::{ByteRing, TryPopError};
    /// let ring: ByteRing<256> = ByteRing::new();
    /// let mut consumer = ring.consumer().unwrap();
    /// assert_eq!(consumer.read().unwrap_err(), TryPopError::Empty);
    /// let grant = ring.try_reserve(3).unwrap();
    /// ring.try_push(b"later").unwrap();
    /// assert_eq!(consumer.read().unwrap_err(), TryPopError::Pending);
    /// grant.commit();
    /// assert_eq!(&*consumer.read().unwrap(), &[0, 0, 0]);
    /// assert_eq!(&*consumer.read().unwrap(), b"later");
    /// ```
    #[inline]
    pub fn read(&mut self) -> Result<Record<'_>, TryPopError> {
        read(self.ring, &mut self.cursor)
    }

    /// Every record published from the consumer's position on, up to the first one not yet
    /// committed (or one ring's worth), as one [`Batch`] released at once. `max_bytes` caps the
    /// payload bytes of the batch (the first record is always included, however long): pass
    /// `usize::MAX` for no cap. Never waits; the error says why there is no record, as for
    /// [`read`](Self::read).
    ///
    /// ```
    /// let ring: ringwal_core::ByteRing<256> = ringwal_core::ByteRing::new();
    /// let mut consumer = ring.consumer().unwrap();
    /// for r in [&b"aa"[..], b"bbb", b"c"] {
    ///     ring.try_push(r).unwrap();
    /// }
    /// let batch = consumer.read_batch(5).unwrap(); // "aa" + "bbb" = 5 bytes
    /// assert_eq!(batch.iter().collect::<Vec<_>>(), [&b"aa"[..], b"bbb"]);
    /// drop(batch);
    /// assert_eq!(consumer.read_batch(5).unwrap().iter().next(), Some(&b"c"[..]));
    /// ```
    pub fn read_batch(&mut self, max_bytes: usize) -> Result<Batch<'_>, TryPopError> {
        read_batch(self.ring, &mut self.cursor, max_bytes)
    }

    /// The consumer's position, in the units of [`ByteRing::reserved`] (granules, modulo
    /// 2^(`usize::BITS` - 1)): everything before it has been read and released (or
    /// discarded).
    pub fn position(&self) -> usize {
        self.cursor.position()
    }
}

/// [`ByteConsumer::read`] over any front end.
#[inline(always)]
pub(crate) fn read<'c>(
    ring: RawBytes<'c>,
    cursor: &'c mut ByteCursor,
) -> Result<Record<'c>, TryPopError> {
    let (start, len, end) = ring.try_read(cursor)?;
    Ok(Record::new(ring, cursor, start, len, end))
}

/// [`ByteConsumer::read_batch`] over any front end.
pub(crate) fn read_batch<'c>(
    ring: RawBytes<'c>,
    cursor: &'c mut ByteCursor,
    max_bytes: usize,
) -> Result<Batch<'c>, TryPopError> {
    let extent = ring.scan(cursor, max_bytes)?;
    Ok(Batch::new(ring, cursor, extent))
}

impl Drop for ByteConsumer<'_> {
    fn drop(&mut self) {
        self.ring.release_consumer();
    }
}

impl fmt::Debug for ByteConsumer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteConsumer")
            .field("position", &self.cursor.position())
            .finish_non_exhaustive()
    }
}
