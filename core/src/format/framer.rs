//! Writing framed records to any byte sink, with no allocation: what a firmware needs to put
//! the log format on flash or a UART (the host's `ringwal cat`, `verify` and `Reader` then read
//! it), and what drains a ring into it.

use core::fmt;

use super::{crc32c, crc32c_append, encode_header, encode_marker, FRAME_HEADER_LEN, MAX_PAYLOAD};

/// Why a [`Framer`] could not write a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramerError<E> {
    /// The sink failed. The framer's state is unchanged (`write_all` counts the value it was
    /// writing as dropped), except that a frame may have been written in part: the reader
    /// sees a torn tail there. Go on in a new segment with [`Framer::next_segment`], which
    /// starts at [`Framer::next_seq`] and carries the losses counted so far.
    Write(E),
    /// A payload longer than [`MAX_PAYLOAD`], or than the encode buffer: nothing was written;
    /// the record counts as dropped (the next record's `dropped_before` says so).
    TooLarge(usize),
    /// The sequence numbers are used up: record `u64::MAX`, the last a log can hold (the
    /// std `Reader` ends there), was written. Nothing was written; the record counts as
    /// dropped. Only a framer started near `u64::MAX` gets here (a number read back from
    /// corrupt flash, say): start a new log.
    Exhausted,
}

impl<E: fmt::Display> fmt::Display for FramerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramerError::Write(e) => write!(f, "writing a frame failed: {e}"),
            FramerError::TooLarge(n) => write!(f, "a record of {n} bytes is too large to frame"),
            FramerError::Exhausted => f.write_str("sequence numbers exhausted (u64::MAX written)"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for FramerError<E> {}

/// Frames records into one segment's byte stream: the segment header first, then each record
/// with the next sequence number and the losses counted since the last one.
///
/// `write` is any sink of bytes: a closure, or with the `embedded-io` feature an
/// `embedded_io::Write` (through `Framer::write_to`). Each frame is handed over as two
/// slices (header, payload), never copied.
///
/// ```
/// use ringwal_core::format::{self, Framer};
///
/// let mut out = Vec::new();
/// let mut framer = Framer::new(0);
/// let mut sink = |bytes: &[u8]| -> Result<(), core::convert::Infallible> {
///     out.extend_from_slice(bytes);
///     Ok(())
/// };
/// framer.write_record(b"boot", &mut sink).unwrap();
/// framer.note_lost(3, 0); // e.g. what `Consumer::evicted` says went missing
/// framer.write_record(b"temp=21", &mut sink).unwrap();
/// let scan = format::scan_segment(&out).unwrap();
/// assert_eq!((scan.records, scan.dropped), (2, 3));
/// ```
#[derive(Debug, Clone)]
pub struct Framer {
    first_seq: u64,
    next_seq: u64,
    started: bool,
    /// Record `u64::MAX` was written: no sequence number is left.
    exhausted: bool,
    dropped: u64,
    refused: u64,
}

impl Framer {
    /// A framer for a new segment whose first record gets `first_seq`. Name the file (or
    /// tell the host) [`segment_file_name_into`](super::segment_file_name_into)`(first_seq, ..)`
    /// (no allocation; `segment_file_name` with the `alloc` feature).
    pub const fn new(first_seq: u64) -> Self {
        Framer {
            first_seq,
            next_seq: first_seq,
            started: false,
            exhausted: false,
            dropped: 0,
            refused: 0,
        }
    }

    /// The segment's first sequence number.
    pub const fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The sequence number the next record gets (`u64::MAX` once
    /// [`exhausted`](Self::exhausted)).
    pub const fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether record `u64::MAX`, the last a log can hold, was written: every later
    /// [`write_record`](Self::write_record) is [`FramerError::Exhausted`].
    pub const fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// A framer for the next segment: it starts at [`next_seq`](Self::next_seq) and carries
    /// the losses counted here and not yet written (so the new segment's first record, or
    /// its marker, reports them). What to go on with after a [`FramerError::Write`]: the
    /// failed segment ends in a torn frame, and a fresh `Framer::new(next_seq)` would forget
    /// those losses.
    ///
    /// ```
    /// use ringwal_core::format::{self, Framer, FramerError};
    ///
    /// let mut framer = Framer::new(0);
    /// framer.note_lost(2, 0);
    /// let mut broken = |_: &[u8]| Err("flash full");
    /// assert_eq!(framer.write_record(b"x", &mut broken), Err(FramerError::Write("flash full")));
    /// let mut next = framer.next_segment();
    /// let mut out = Vec::new();
    /// let mut sink = |b: &[u8]| -> Result<(), ()> { out.extend_from_slice(b); Ok(()) };
    /// next.write_record(b"y", &mut sink).unwrap();
    /// let scan = format::scan_segment(&out).unwrap();
    /// assert_eq!((scan.first_seq, scan.records, scan.dropped), (0, 1, 2));
    /// ```
    pub const fn next_segment(&self) -> Framer {
        Framer {
            first_seq: self.next_seq,
            next_seq: self.next_seq,
            started: false,
            exhausted: self.exhausted,
            dropped: self.dropped,
            refused: self.refused,
        }
    }

    /// Counts events lost before the next record: `dropped` evicted (or not encodable),
    /// `refused` turned away. The next record (or [`finish`](Self::finish)'s marker) carries
    /// them.
    pub fn note_lost(&mut self, dropped: u64, refused: u64) {
        self.dropped = self.dropped.saturating_add(dropped);
        self.refused = self.refused.saturating_add(refused);
    }

    fn start<E>(&mut self, write: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if !self.started {
            write(&encode_header(self.first_seq))?;
            self.started = true;
        }
        Ok(())
    }

    /// Writes one record (the segment header first, if this is the first write). Returns the
    /// record's sequence number. Never panics: after record `u64::MAX` it refuses
    /// ([`FramerError::Exhausted`]).
    pub fn write_record<E>(
        &mut self,
        payload: &[u8],
        write: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, FramerError<E>> {
        if payload.len() > MAX_PAYLOAD {
            self.dropped = self.dropped.saturating_add(1);
            return Err(FramerError::TooLarge(payload.len()));
        }
        if self.exhausted {
            self.dropped = self.dropped.saturating_add(1);
            return Err(FramerError::Exhausted);
        }
        self.start(write).map_err(FramerError::Write)?;
        let mut header = [0u8; FRAME_HEADER_LEN];
        header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[8..16].copy_from_slice(&self.next_seq.to_le_bytes());
        header[16..24].copy_from_slice(&self.dropped.to_le_bytes());
        header[24..32].copy_from_slice(&self.refused.to_le_bytes());
        // The frame CRC: bytes 0..4, 8..32, then the payload (as `frame_crc` computes it over
        // one buffer).
        let crc = crc32c_append(crc32c_append(crc32c(&header[0..4]), &header[8..]), payload);
        header[4..8].copy_from_slice(&crc.to_le_bytes());
        write(&header).map_err(FramerError::Write)?;
        write(payload).map_err(FramerError::Write)?;
        let seq = self.next_seq;
        // Record `u64::MAX` is the last (as for the std reader and writer): no wrap to 0, whose
        // records a reader would never return, and no overflow panic.
        match seq.checked_add(1) {
            Some(next) => self.next_seq = next,
            None => self.exhausted = true,
        }
        self.dropped = 0;
        self.refused = 0;
        Ok(seq)
    }

    /// Encodes each value of `values` with `encode` into `buf` (returning the bytes used, or
    /// `None` if it does not fit: then the value counts as dropped) and writes it as a
    /// record. Returns how many records it wrote; stops at the first write error, counting
    /// the value it was writing as dropped (it was taken from `values`: go on with
    /// [`next_segment`](Self::next_segment), which carries the count).
    ///
    /// `values` is typically a ring consumer's `drain()`: everything published now, never
    /// waiting for a producer.
    pub fn write_all<T, E>(
        &mut self,
        values: impl IntoIterator<Item = T>,
        buf: &mut [u8],
        mut encode: impl FnMut(&T, &mut [u8]) -> Option<usize>,
        write: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut wrote = 0;
        for value in values {
            match encode(&value, buf) {
                Some(n) if n <= buf.len() => match self.write_record(&buf[..n], write) {
                    Ok(_) => wrote += 1,
                    Err(FramerError::Write(e)) => {
                        // Taken from `values` and not written: lost, and the log must say so.
                        self.dropped = self.dropped.saturating_add(1);
                        return Err(e);
                    }
                    // Counted as dropped by `write_record`.
                    Err(FramerError::TooLarge(_) | FramerError::Exhausted) => {}
                },
                _ => self.dropped = self.dropped.saturating_add(1),
            }
        }
        Ok(wrote)
    }

    /// Writes a gap marker for losses counted since the last record, if any (and the header,
    /// if nothing was written yet): call it before the stream ends, so the log's gaps add up
    /// to every loss. Once [`exhausted`](Self::exhausted) there is no sequence number left for
    /// a marker to name: the losses are not written (they stay counted here).
    pub fn finish<E>(&mut self, write: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        self.start(write)?;
        if !self.exhausted && (self.dropped > 0 || self.refused > 0) {
            write(&encode_marker(self.next_seq, self.dropped, self.refused))?;
            self.dropped = 0;
            self.refused = 0;
        }
        Ok(())
    }

    /// A byte sink for [`write_record`](Self::write_record) and friends over an
    /// `embedded_io::Write` (a UART, a flash writer).
    #[cfg(feature = "embedded-io")]
    pub fn write_to<W: embedded_io::Write>(
        w: &mut W,
    ) -> impl FnMut(&[u8]) -> Result<(), W::Error> + '_ {
        move |bytes| w.write_all(bytes)
    }
}
