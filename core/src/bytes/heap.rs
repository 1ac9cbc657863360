//! `byte_channel(capacity)`: a byte ring whose size is chosen at run time, on the heap, behind
//! an `Arc`, with a cloneable [`ByteProducer`] and one [`ByteReceiver`]. The same algorithm and
//! code (`raw::RawBytes`) as [`ByteRing`](super::ByteRing), over a heap buffer.

use core::fmt;

use super::handles::{Batch, Grant, Record};
use super::raw::{self, ByteCounters, ByteCursor, RawBytes, MAX_BYTES, MIN_BYTES};
use super::ring::{read, read_batch};
use super::storage::{HeapBuf, GRANULE};
use super::ReserveError;
use crate::raw::ClaimOrder;
use crate::ring::TryPopError;
use crate::sync::Arc;

/// Why [`try_byte_channel`] could not build a ring.
///
/// ```
/// use ringwal_core::{try_byte_channel, ByteCapacityError};
/// assert_eq!(
///     try_byte_channel(1000).unwrap_err(),
///     ByteCapacityError::Invalid { capacity: 1000 }
/// );
/// assert!(try_byte_channel(1 << 20).is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ByteCapacityError {
    /// The capacity is not a power of two of at least 16 bytes (and at most
    /// 2^(`usize::BITS` - 2)).
    Invalid {
        /// The capacity asked for, in bytes.
        capacity: usize,
    },
    /// The allocator could not provide the buffer.
    OutOfMemory {
        /// The capacity asked for, in bytes.
        capacity: usize,
    },
}

impl fmt::Display for ByteCapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ByteCapacityError::Invalid { capacity } => write!(
                f,
                "byte ring capacity {capacity} is not a power of two between 16 and 2^{}",
                usize::BITS - 2
            ),
            ByteCapacityError::OutOfMemory { capacity } => {
                write!(f, "cannot allocate a byte ring of {capacity} bytes")
            }
        }
    }
}

impl core::error::Error for ByteCapacityError {}

/// The heap ring: the counters and a zeroed heap buffer of `granules` granules.
struct HeapByteRing {
    counters: ByteCounters,
    buf: HeapBuf,
    granules: usize,
}

// SAFETY: as for `ByteRing`: plain bytes, every access ordered by the algorithm.
unsafe impl Sync for HeapByteRing {}
// SAFETY: as above.
unsafe impl Send for HeapByteRing {}

impl HeapByteRing {
    fn try_new(capacity: usize) -> Result<Self, ByteCapacityError> {
        if !(capacity.is_power_of_two() && (MIN_BYTES..=MAX_BYTES).contains(&capacity)) {
            return Err(ByteCapacityError::Invalid { capacity });
        }
        let granules = capacity / GRANULE;
        let buf = HeapBuf::try_new(granules).ok_or(ByteCapacityError::OutOfMemory { capacity })?;
        Ok(HeapByteRing {
            counters: ByteCounters::new(),
            buf,
            granules,
        })
    }

    #[inline(always)]
    fn raw(&self) -> RawBytes<'_> {
        // SAFETY: `try_new` checked `granules` (a power of two, 2 ..= MAX_BYTES / GRANULE) and
        // allocated exactly that many; the counters are this ring's.
        unsafe { RawBytes::new(&self.counters, self.buf.view(), self.granules) }
    }
}

/// Creates a byte ring of `capacity` bytes on the heap and returns its two ends.
///
/// `capacity` is chosen at run time and must be a power of two, at least 16;
/// [`try_byte_channel`] returns an error instead of panicking. The ring is the same algorithm,
/// and the same code, as [`ByteRing`](super::ByteRing).
///
/// # Panics
/// If `capacity` is invalid or cannot be allocated (see [`ByteCapacityError`]).
///
/// ```
/// use std::thread;
///
/// let (tx, mut rx) = ringwal_core::byte_channel(1 << 16);
/// let producers: Vec<_> = (0..2u8)
///     .map(|id| {
///         let tx = tx.clone();
///         thread::spawn(move || {
///             for i in 0..100u8 {
///                 // Write in place: producer id, then `i` copies of `i`.
///                 let mut grant = loop {
///                     match tx.try_reserve(1 + usize::from(i)) {
///                         Ok(grant) => break grant,
///                         Err(_) => thread::yield_now(), // full: the consumer is behind
///                     }
///                 };
///                 grant[0] = id;
///                 grant[1..].fill(i);
///                 grant.commit();
///             }
///         })
///     })
///     .collect();
/// let mut next = [0u8; 2];
/// while next != [100, 100] {
///     if let Ok(batch) = rx.read_batch(usize::MAX) {
///         for record in &batch {
///             let id = usize::from(record[0]);
///             assert_eq!(record.len(), 1 + usize::from(next[id]), "in order, per producer");
///             next[id] += 1;
///         }
///     }
/// }
/// for p in producers { p.join().unwrap(); }
/// ```
pub fn byte_channel(capacity: usize) -> (ByteProducer, ByteReceiver) {
    match try_byte_channel(capacity) {
        Ok(ends) => ends,
        Err(e) => panic!("ringwal_core::byte_channel: {e}"),
    }
}

/// [`byte_channel`], returning [`ByteCapacityError`] instead of panicking.
pub fn try_byte_channel(
    capacity: usize,
) -> Result<(ByteProducer, ByteReceiver), ByteCapacityError> {
    Ok(ends(Arc::new(HeapByteRing::try_new(capacity)?)))
}

/// A byte channel whose positions start at `position` granules (see `ByteRing::new_at`). Only
/// for tests.
///
/// # Panics
/// If `capacity` is invalid.
#[doc(hidden)]
pub fn byte_channel_at(capacity: usize, position: usize) -> (ByteProducer, ByteReceiver) {
    let ring = HeapByteRing::try_new(capacity).expect("a valid test capacity");
    ring.raw().start_at(position);
    ends(Arc::new(ring))
}

fn ends(ring: Arc<HeapByteRing>) -> (ByteProducer, ByteReceiver) {
    let cursor = ring
        .raw()
        .claim_consumer()
        .expect("a ring nobody else has seen has no consumer");
    (
        ByteProducer { ring: ring.clone() },
        ByteReceiver { ring, cursor },
    )
}

/// The producing end of a [`byte_channel`]: [`ByteRing`](super::ByteRing)'s producer methods
/// over a shared heap ring, and [`close`](Self::close). `Clone`: one per emitting thread.
pub struct ByteProducer {
    ring: Arc<HeapByteRing>,
}

impl ByteProducer {
    /// [`ByteRing::try_reserve`](super::ByteRing::try_reserve): room for `len` bytes in place.
    /// On a [closed](Self::close) channel: [`ReserveError::Closed`].
    #[inline]
    pub fn try_reserve(&self, len: usize) -> Result<Grant<'_>, ReserveError> {
        let raw = self.ring.raw();
        let start = raw.reserve(len, ClaimOrder::Relaxed)?;
        Ok(Grant::new(raw, start, len))
    }

    /// [`try_reserve`](Self::try_reserve) whose claim is a sequentially consistent
    /// read-modify-write (on x86 the same instruction as a relaxed one), so a caller can
    /// order a later `SeqCst` load after it: another thread that makes a `SeqCst` change and
    /// then looks at [`reserved_seqcst`](Self::reserved_seqcst) either sees this reservation
    /// or has its change seen by that load. The std writer's sleep handshake is built on that
    /// (as on `Producer::try_push_checked` for the slot ring).
    ///
    /// ```
    /// use ringwal_core::ReserveError;
    /// let (tx, mut rx) = ringwal_core::byte_channel(64);
    /// let mut grant = tx.try_reserve_checked(3).unwrap();
    /// grant.copy_from_slice(b"abc");
    /// grant.commit();
    /// tx.close();
    /// assert_eq!(tx.try_reserve_checked(3).unwrap_err(), ReserveError::Closed);
    /// assert_eq!(&*rx.read().unwrap(), b"abc");
    /// ```
    #[inline]
    pub fn try_reserve_checked(&self, len: usize) -> Result<Grant<'_>, ReserveError> {
        let raw = self.ring.raw();
        let start = raw.reserve(len, ClaimOrder::SeqCst)?;
        Ok(Grant::new(raw, start, len))
    }

    /// Closes the channel to producers: every reservation from now on, from any clone, fails
    /// with [`ReserveError::Closed`]. Records already reserved stay: those committed are read
    /// as usual, discarded ones skipped, and a grant still open is waited for by the
    /// receiver as before. Returns the final producers' position (the unit of
    /// [`reserved`](Self::reserved)): a receiver that must see every record reserved before
    /// the close reads until its [position](ByteReceiver::position) reaches it.
    ///
    /// Unlike the slot ring's close, a reservation made before the close may be committed
    /// long after it: the grant's owner runs its own code in between.
    ///
    /// The closing read-modify-write is sequentially consistent.
    ///
    /// ```
    /// let (tx, mut rx) = ringwal_core::byte_channel(64);
    /// tx.try_push(b"last").unwrap();
    /// let end = tx.close();
    /// assert!(tx.is_closed());
    /// assert!(tx.try_push(b"late").is_err());
    /// let mut got = Vec::new();
    /// while rx.position() != end {
    ///     if let Ok(record) = rx.read() {
    ///         got.push(record.to_vec());
    ///     }
    /// }
    /// assert_eq!(got, [b"last".to_vec()]);
    /// ```
    pub fn close(&self) -> usize {
        self.ring.raw().close()
    }

    /// Whether [`close`](Self::close) was called (by any clone). A `SeqCst` load (see
    /// [`try_reserve_checked`](Self::try_reserve_checked)).
    pub fn is_closed(&self) -> bool {
        self.ring.raw().is_closed()
    }

    /// [`ByteRing::try_push`](super::ByteRing::try_push): copies `bytes` in as one record.
    #[inline]
    pub fn try_push(&self, bytes: &[u8]) -> Result<(), ReserveError> {
        let mut grant = self.try_reserve(bytes.len())?;
        grant.copy_from_slice(bytes);
        grant.commit();
        Ok(())
    }

    /// The size of the ring in bytes, as given to [`byte_channel`].
    pub fn capacity(&self) -> usize {
        self.ring.raw().capacity()
    }

    /// [`ByteRing::max_record_len`](super::ByteRing::max_record_len): `capacity / 2 - 8`.
    pub fn max_record_len(&self) -> usize {
        raw::max_record_len(self.capacity())
    }

    /// [`ByteRing::used_bytes`](super::ByteRing::used_bytes): a snapshot.
    pub fn used_bytes(&self) -> usize {
        self.ring.raw().used_bytes()
    }

    /// Whether [`used_bytes`](Self::used_bytes) is 0 (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.used_bytes() == 0
    }

    /// [`ByteRing::reserved`](super::ByteRing::reserved): the producers' position (granules,
    /// modulo 2^(`usize::BITS` - 1)), a snapshot.
    pub fn reserved(&self) -> usize {
        self.ring.raw().reserved()
    }

    /// [`reserved`](Self::reserved), read with `SeqCst` (see
    /// [`try_reserve_checked`](Self::try_reserve_checked)).
    pub fn reserved_seqcst(&self) -> usize {
        self.ring.raw().reserved_seqcst()
    }
}

impl Clone for ByteProducer {
    fn clone(&self) -> Self {
        ByteProducer {
            ring: self.ring.clone(),
        }
    }
}

impl fmt::Debug for ByteProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteProducer")
            .field("capacity", &self.capacity())
            .field("used_bytes", &self.used_bytes())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The receiving end of a [`byte_channel`]: [`ByteConsumer`](super::ByteConsumer)'s methods
/// over the shared heap ring. Not `Clone`; there is exactly one.
pub struct ByteReceiver {
    ring: Arc<HeapByteRing>,
    cursor: ByteCursor,
}

impl ByteReceiver {
    /// [`ByteConsumer::read`](super::ByteConsumer::read): the oldest published record, in
    /// place; never waits.
    #[inline]
    pub fn read(&mut self) -> Result<Record<'_>, TryPopError> {
        read(self.ring.raw(), &mut self.cursor)
    }

    /// [`ByteConsumer::read_batch`](super::ByteConsumer::read_batch): every published record,
    /// up to `max_bytes` of payload, released at once.
    pub fn read_batch(&mut self, max_bytes: usize) -> Result<Batch<'_>, TryPopError> {
        read_batch(self.ring.raw(), &mut self.cursor, max_bytes)
    }

    /// [`ByteConsumer::position`](super::ByteConsumer::position): everything before it is
    /// released. In the unit of [`ByteProducer::reserved`] and of what
    /// [`ByteProducer::close`] returns.
    pub fn position(&self) -> usize {
        self.cursor.position()
    }

    /// The size of the ring in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.raw().capacity()
    }

    /// [`ByteRing::used_bytes`](super::ByteRing::used_bytes): a snapshot.
    pub fn used_bytes(&self) -> usize {
        self.ring.raw().used_bytes()
    }

    /// Whether [`used_bytes`](Self::used_bytes) is 0 (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.used_bytes() == 0
    }
}

impl fmt::Debug for ByteReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteReceiver")
            .field("capacity", &self.capacity())
            .field("position", &self.cursor.position())
            .finish_non_exhaustive()
    }
}
