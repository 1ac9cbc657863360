//! The handles both front ends hand out: a producer's [`Grant`], the consumer's [`Record`] and
//! [`Batch`]. Each holds a `RawBytes` view, so the inline and the heap ring share them.

use core::fmt;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};

use super::raw::{ByteCursor, Extent, RawBytes};

/// Room for one record, reserved in place in the ring by `try_reserve`. Derefs to exactly the
/// `len` bytes asked for (initially zero, or whatever the caller wrote since).
///
/// - [`commit`](Self::commit) publishes the record; [`commit_len`](Self::commit_len) publishes
///   only its first bytes.
/// - Dropping it without committing (or [`discard`](Self::discard)) withdraws it: the consumer
///   steps over its space, and nobody waits.
/// - Until it is committed or dropped, the consumer stops at it (records reserved after it
///   wait behind it; other producers do not). `mem::forget` on a grant is not undefined
///   behaviour, but the consumer then waits at it forever: the ring stalls.
///
/// ```
/// use ringwal_core::ByteRing;
/// static RING: ByteRing<1024> = ByteRing::new();
///
/// let mut grant = RING.try_reserve(5).unwrap();
/// grant.copy_from_slice(b"hello");
/// grant.commit();
///
/// let mut consumer = RING.consumer().unwrap();
/// assert_eq!(&*consumer.read().unwrap(), b"hello");
/// ```
#[must_use = "a grant that is not committed is discarded when dropped"]
pub struct Grant<'a> {
    ring: RawBytes<'a>,
    start: usize,
    len: usize,
}

// SAFETY: a grant gives access to its own reserved bytes only, which no other thread touches
// until it is committed or discarded; committing or discarding from another thread is the same
// atomic store. The ring it points into is `Sync`.
unsafe impl Send for Grant<'_> {}
// SAFETY: `&Grant` only reads the grant's own bytes.
unsafe impl Sync for Grant<'_> {}

impl<'a> Grant<'a> {
    pub(crate) fn new(ring: RawBytes<'a>, start: usize, len: usize) -> Self {
        Grant { ring, start, len }
    }

    /// Publishes the record: the consumer will read these `len` bytes.
    #[inline]
    pub fn commit(self) {
        let this = ManuallyDrop::new(self);
        this.ring.commit(this.start, this.len, this.len);
    }

    /// Publishes only the first `len` bytes; the rest of the reserved room is given back to the
    /// ring when the consumer passes it (for a record whose length is known only once written:
    /// reserve the most, commit what was used).
    ///
    /// # Panics
    /// If `len` is longer than the grant (which is then discarded, as by a drop).
    ///
    /// ```
    /// let ring: ringwal_core::ByteRing<256> = ringwal_core::ByteRing::new();
    /// let mut grant = ring.try_reserve(64).unwrap();
    /// let n = {
    ///     let mut w = &mut grant[..];
    ///     std::io::Write::write_all(&mut w, b"id=42").unwrap();
    ///     64 - w.len()
    /// };
    /// grant.commit_len(n);
    /// assert_eq!(&*ring.consumer().unwrap().read().unwrap(), b"id=42");
    /// ```
    #[inline]
    pub fn commit_len(self, len: usize) {
        // Before taking the grant apart: a panic here drops it, which discards it.
        assert!(
            len <= self.len,
            "ByteRing: commit_len({len}) on a grant of {} bytes",
            self.len
        );
        let this = ManuallyDrop::new(self);
        this.ring.commit(this.start, this.len, len);
    }

    /// Withdraws the grant (what dropping it does): the consumer steps over its space.
    ///
    /// ```
    /// let ring: ringwal_core::ByteRing<256> = ringwal_core::ByteRing::new();
    /// ring.try_reserve(10).unwrap().discard();
    /// ring.try_push(b"kept").unwrap();
    /// assert_eq!(&*ring.consumer().unwrap().read().unwrap(), b"kept");
    /// ```
    pub fn discard(self) {
        drop(self);
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `start`/`len` describe this grant's reservation (fits before the end of the
        // buffer), whose bytes are ours alone until commit or discard; they are initialised
        // (the ring starts zeroed and the consumer zeroes what it releases).
        unsafe { core::slice::from_raw_parts(self.ring.payload(self.start), self.len) }
    }
}

impl DerefMut for Grant<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference to those bytes.
        unsafe { core::slice::from_raw_parts_mut(self.ring.payload(self.start), self.len) }
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        self.ring.discard(self.start, self.len);
    }
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("position", &(self.start >> 1))
            .field("len", &self.len)
            .finish()
    }
}

/// One record read from a byte ring, in place (no copy). Derefs to its bytes; dropping it
/// releases its space to the producers (`mem::forget` keeps it: the next read returns it
/// again).
///
/// ```
/// let ring: ringwal_core::ByteRing<256> = ringwal_core::ByteRing::new();
/// ring.try_push(b"abc").unwrap();
/// let mut consumer = ring.consumer().unwrap();
/// let record = consumer.read().unwrap();
/// assert_eq!(record.len(), 3);
/// assert_eq!(&record[..], b"abc");
/// drop(record); // the space is free again
/// assert_eq!(ring.used_bytes(), 0);
/// ```
#[must_use = "a record is released as soon as it is dropped"]
pub struct Record<'c> {
    ring: RawBytes<'c>,
    cursor: &'c mut ByteCursor,
    start: usize,
    len: usize,
    end: usize,
}

// SAFETY: a record is the consumer's view of published bytes no producer touches until it is
// released; the consumer (whose cursor it borrows) is `Send`.
unsafe impl Send for Record<'_> {}
// SAFETY: `&Record` only reads those bytes.
unsafe impl Sync for Record<'_> {}

impl<'c> Record<'c> {
    pub(crate) fn new(
        ring: RawBytes<'c>,
        cursor: &'c mut ByteCursor,
        start: usize,
        len: usize,
        end: usize,
    ) -> Self {
        Record {
            ring,
            cursor,
            start,
            len,
            end,
        }
    }
}

impl Deref for Record<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `walk` found this record's published header (Acquire, so its bytes are
        // visible) and checked that it fits before the end; the bytes are not released (and so
        // not reused) before this record is dropped.
        unsafe { core::slice::from_raw_parts(self.ring.payload(self.start), self.len) }
    }
}

impl Drop for Record<'_> {
    #[inline]
    fn drop(&mut self) {
        self.ring.release(self.cursor, self.end);
    }
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("position", &(self.start >> 1))
            .field("len", &self.len)
            .finish()
    }
}

/// The records that were ready when it was taken, read in place, released all at once when it
/// is dropped (one zeroing pass, one store the producers see). Iterate it with
/// [`iter`](Self::iter) (or `for record in &batch`), as often as needed.
///
/// This is the call for a consumer that copies records somewhere: frame each one into a write
/// buffer (one copy, a checksum computed on the way), then drop the batch.
///
/// ```
/// let ring: ringwal_core::ByteRing<1024> = ringwal_core::ByteRing::new();
/// for line in ["one", "two", "three"] {
///     ring.try_push(line.as_bytes()).unwrap();
/// }
/// let mut consumer = ring.consumer().unwrap();
/// let batch = consumer.read_batch(usize::MAX).unwrap();
/// assert_eq!(batch.len(), 3);
/// let mut out = Vec::new();
/// for record in &batch {
///     out.extend_from_slice(&(record.len() as u32).to_le_bytes());
///     out.extend_from_slice(record);
/// }
/// drop(batch); // releases all three
/// assert!(ring.is_empty());
/// assert_eq!(out.len(), 3 * 4 + 11);
/// ```
#[must_use = "a batch is released as soon as it is dropped"]
pub struct Batch<'c> {
    ring: RawBytes<'c>,
    cursor: &'c mut ByteCursor,
    extent: Extent,
}

// SAFETY: as for `Record`.
unsafe impl Send for Batch<'_> {}
// SAFETY: as for `Record`.
unsafe impl Sync for Batch<'_> {}

impl<'c> Batch<'c> {
    pub(crate) fn new(ring: RawBytes<'c>, cursor: &'c mut ByteCursor, extent: Extent) -> Self {
        Batch {
            ring,
            cursor,
            extent,
        }
    }

    /// How many records the batch holds (at least one).
    pub fn len(&self) -> usize {
        self.extent.records
    }

    /// Always `false`: a batch holds at least one record (`read_batch` says why not instead).
    pub fn is_empty(&self) -> bool {
        self.extent.records == 0
    }

    /// The records' lengths added up (payload bytes, no headers or padding).
    pub fn payload_len(&self) -> usize {
        self.extent.bytes
    }

    /// The records in order, as `&[u8]` in place, valid while the batch lives.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            ring: self.ring,
            position: self.extent.start,
            remaining: self.extent.records,
        }
    }

    /// Releases the batch (what dropping it does).
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        self.ring.release(self.cursor, self.extent.end);
    }
}

impl<'b> IntoIterator for &'b Batch<'_> {
    type Item = &'b [u8];
    type IntoIter = BatchIter<'b>;

    fn into_iter(self) -> BatchIter<'b> {
        self.iter()
    }
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("records", &self.extent.records)
            .field("payload_len", &self.extent.bytes)
            .finish()
    }
}

/// The iterator of [`Batch::iter`]: the batch's records in order.
#[derive(Clone)]
pub struct BatchIter<'b> {
    ring: RawBytes<'b>,
    position: usize,
    remaining: usize,
}

// SAFETY: it only reads the records of a batch it borrows (see `Batch`).
unsafe impl Send for BatchIter<'_> {}
// SAFETY: as above.
unsafe impl Sync for BatchIter<'_> {}

impl<'b> Iterator for BatchIter<'b> {
    type Item = &'b [u8];

    #[inline]
    fn next(&mut self) -> Option<&'b [u8]> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            let (next, record) = self.ring.step(self.position);
            let start = self.position;
            self.position = next;
            if let Some(len) = record {
                self.remaining -= 1;
                // SAFETY: `scan` walked this record (Acquire: its bytes are visible) inside
                // the batch's extent, and `step` checked it fits before the end; the batch,
                // which 'b borrows, releases it only when dropped.
                return Some(unsafe { core::slice::from_raw_parts(self.ring.payload(start), len) });
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

impl fmt::Debug for BatchIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchIter")
            .field("remaining", &self.remaining)
            .finish()
    }
}
