//! Checking a whole segment: the header, then every frame in order.

use core::convert::Infallible;
use core::fmt;

use super::{
    crc32c, crc32c_append, decode_segment_header, FrameError, HeaderError, Version, HEADER_LEN,
};

/// What is wrong inside a segment that a crash cannot explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// A valid frame with the wrong sequence number.
    SequenceBreak {
        /// The sequence number the frame should have had.
        expected: u64,
        /// The one it has.
        found: u64,
    },
    /// An invalid frame followed by a valid one.
    ValidFrameFollows {
        /// Why the frame at the damage is invalid.
        error: FrameError,
        /// Where the valid frame after it starts.
        at: u64,
    },
    /// An invalid frame followed by too many checksummed bytes to rule out damage.
    Unverifiable {
        /// Why the frame at the damage is invalid.
        error: FrameError,
    },
    /// A valid frame after record `u64::MAX`, the last sequence number a log can hold: no
    /// writer puts one there (the std writer stops far below it, a firmware's `Framer` stops
    /// at it), and the std `Reader` would not return it.
    PastLastRecord,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::SequenceBreak { expected, found } => {
                write!(
                    f,
                    "sequence break: expected record {expected}, found {found}"
                )
            }
            Corruption::ValidFrameFollows { error, at } => {
                write!(f, "{error}; a valid record follows at offset {at}")
            }
            Corruption::Unverifiable { error } => {
                write!(f, "{error}; too much data after it to rule out damage")
            }
            Corruption::PastLastRecord => {
                write!(
                    f,
                    "a frame after record {}, the last a log can hold: sequence numbers exhausted",
                    u64::MAX
                )
            }
        }
    }
}

impl core::error::Error for Corruption {}

/// How a segment's bytes end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte after the header belongs to a valid frame.
    Clean,
    /// From `offset` on, the bytes are not a valid frame and no valid frame follows: a write
    /// that was cut short (a crash), or one still in progress. Recovery truncates it.
    Torn {
        /// Where the valid frames end.
        offset: u64,
        /// Why the frame at `offset` is not valid.
        reason: FrameError,
    },
    /// The frame at `offset` is invalid but valid frames follow it (or the sequence breaks):
    /// damage inside the log, which nothing truncates.
    Corrupt {
        /// Where the damage starts.
        offset: u64,
        /// What is wrong there.
        reason: Corruption,
    },
}

/// What [`scan_segment`] (or [`scan_segment_in`]) found in one segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// From the header.
    pub version: Version,
    /// From the header.
    pub first_seq: u64,
    /// Valid records, in order, before `end` (markers and preamble frames not counted).
    pub records: u64,
    /// Valid gap markers before `end`.
    pub markers: u64,
    /// Valid preamble frames before `end` (version 3).
    pub preambles: u64,
    /// Sum of the valid frames' `dropped_before` (saturating).
    pub dropped: u64,
    /// Sum of the valid frames' `refused_before` (saturating).
    pub refused: u64,
    /// How many valid frames carry a loss (a non-zero `dropped_before` or `refused_before`).
    pub gaps: u64,
    /// Bytes (header included) up to the end of the last valid frame.
    pub valid_len: u64,
    /// How the bytes end.
    pub end: ScanEnd,
}

impl SegmentScan {
    /// The sequence number the next record after the valid ones would have.
    pub fn next_seq(&self) -> u64 {
        self.first_seq.wrapping_add(self.records)
    }
}

/// A fixed-length sequence of bytes read by position: a segment in memory (`&[u8]`), or a
/// file read piece by piece, so that [`scan_segment_in`] checks a segment of any size in
/// constant memory.
///
/// ```
/// use ringwal_core::format::{self, ReadAt};
///
/// let mut seg = format::encode_header(5).to_vec();
/// format::encode_frame(&mut seg, 5, 0, b"hello");
/// let mut bytes: &[u8] = &seg;
/// let mut first = [0u8; 8];
/// bytes.read_exact_at(0, &mut first).unwrap();
/// // (`bytes.len()` would be the slice's own `len`.)
/// assert_eq!((ReadAt::len(&bytes), first), (seg.len() as u64, format::MAGIC));
/// assert_eq!(format::scan_segment_in(&mut bytes).unwrap(), format::scan_segment(&seg).unwrap());
/// ```
pub trait ReadAt {
    /// Why a read failed (an I/O error; [`Infallible`] for bytes in memory).
    type Error;

    /// How many bytes there are. The scans read nothing at or past it, and treat the
    /// bytes as ending there (a file growing meanwhile is read up to the length it had).
    fn len(&self) -> u64;

    /// Whether there are no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes from `offset` on. The scans only ask for bytes below
    /// [`len`](Self::len); a source that cannot deliver them (a file cut shorter meanwhile)
    /// returns an error.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Where the bytes from `offset` (below [`len`](Self::len)) on may stop being zero: an
    /// offset at or after `offset` such that every byte between is zero, or
    /// [`len`](Self::len) if all are. A file answers from the file system's map of a sparse
    /// file's holes, so the search for a frame after damage steps over a hole without reading
    /// it (a hole of 2^62 bytes would otherwise take years to read). The default, `offset`,
    /// says nothing.
    fn data_from(&mut self, offset: u64) -> Result<u64, Self::Error> {
        Ok(offset)
    }
}

impl ReadAt for &[u8] {
    type Error = Infallible;

    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    /// # Panics
    /// If the range `offset..offset + buf.len()` is not inside the bytes.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Infallible> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

impl<S: ReadAt + ?Sized> ReadAt for &mut S {
    type Error = S::Error;

    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), S::Error> {
        (**self).read_exact_at(offset, buf)
    }

    fn data_from(&mut self, offset: u64) -> Result<u64, S::Error> {
        (**self).data_from(offset)
    }
}

/// Why [`scan_segment_in`] could not check a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError<E> {
    /// The segment header is not valid (nothing after it was read).
    Header(HeaderError),
    /// The source failed to deliver bytes.
    Read(E),
}

impl<E> From<HeaderError> for ScanError<E> {
    fn from(e: HeaderError) -> Self {
        ScanError::Header(e)
    }
}

impl<E: fmt::Display> fmt::Display for ScanError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::Header(e) => fmt::Display::fmt(e, f),
            ScanError::Read(e) => write!(f, "read failed: {e}"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for ScanError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ScanError::Header(e) => Some(e),
            ScanError::Read(e) => Some(e),
        }
    }
}

/// Bytes of payload checksummed per read when a frame is checked from a source.
const CHUNK: usize = 1024;
/// Bytes the resynchronising search reads at a time (it looks at every offset).
const WINDOW: usize = 2048;
/// The largest frame header of any version.
const MAX_FRAME_HEADER: usize = super::FRAME_HEADER_LEN;
/// Past this many bytes of checksummed candidates, the search for a valid frame after damage
/// gives up and assumes corruption.
const BUDGET: u64 = 64 << 20;

/// Checks a whole segment: its header, then every frame in order with consecutive sequence
/// numbers starting at the header's (a marker carries the next record's). Never panics and
/// allocates nothing, whatever the bytes.
///
/// A bad frame followed by no valid frame is [`ScanEnd::Torn`]; a bad frame followed by a
/// valid frame with a later sequence number is [`ScanEnd::Corrupt`] (looking for one is
/// bounded: past 64 MiB of checksummed candidates it assumes corruption, the safe answer).
///
/// [`scan_segment_in`] does the same for bytes read piece by piece (a file).
pub fn scan_segment(bytes: &[u8]) -> Result<SegmentScan, HeaderError> {
    let mut bytes = bytes;
    scan_segment_in(&mut bytes).map_err(|e| match e {
        ScanError::Header(e) => e,
        ScanError::Read(never) => match never {},
    })
}

/// [`scan_segment`] over any [`ReadAt`] source, with the same results, in constant memory:
/// the frames' payloads are checksummed a kilobyte at a time, never held whole, so a segment
/// of any size (a sparse 1 GiB file, say) is checked with a few kilobytes of stack.
pub fn scan_segment_in<S: ReadAt + ?Sized>(
    src: &mut S,
) -> Result<SegmentScan, ScanError<S::Error>> {
    let len = src.len();
    let mut header = [0u8; HEADER_LEN];
    let n = len.min(HEADER_LEN as u64) as usize;
    src.read_exact_at(0, &mut header[..n])
        .map_err(ScanError::Read)?;
    let header = decode_segment_header(&header[..n])?;
    let version = header.version;
    let mut scan = SegmentScan {
        version,
        first_seq: header.first_seq,
        records: 0,
        markers: 0,
        preambles: 0,
        dropped: 0,
        refused: 0,
        gaps: 0,
        valid_len: HEADER_LEN as u64,
        end: ScanEnd::Clean,
    };
    let mut offset = HEADER_LEN as u64;
    while offset < len {
        let expected = scan.next_seq();
        // Record `u64::MAX` was the last: any valid frame after it (its number wrapped to 0,
        // which the check below would accept) is not one a writer made.
        let exhausted = scan.records > 0 && expected == 0;
        match check_frame(src, version, offset).map_err(ScanError::Read)? {
            Ok(_) if exhausted => {
                scan.end = ScanEnd::Corrupt {
                    offset,
                    reason: Corruption::PastLastRecord,
                };
                return Ok(scan);
            }
            Ok(frame) if frame.seq == expected => {
                if frame.marker {
                    scan.markers += 1;
                } else if frame.preamble {
                    scan.preambles += 1;
                } else {
                    scan.records += 1;
                }
                // A preamble frame's gap counts are 0 when written and ignored when read.
                if !frame.preamble {
                    scan.dropped = scan.dropped.saturating_add(frame.dropped_before);
                    scan.refused = scan.refused.saturating_add(frame.refused_before);
                    scan.gaps += u64::from(frame.dropped_before > 0 || frame.refused_before > 0);
                }
                offset += frame.size;
                scan.valid_len = offset;
            }
            Ok(frame) => {
                scan.end = ScanEnd::Corrupt {
                    offset,
                    reason: Corruption::SequenceBreak {
                        expected,
                        found: frame.seq,
                    },
                };
                return Ok(scan);
            }
            Err(error) => {
                let found = resync(src, version, offset + 1, expected).map_err(ScanError::Read)?;
                scan.end = match found {
                    Resync::None => ScanEnd::Torn {
                        offset,
                        reason: error,
                    },
                    Resync::Found(at) => ScanEnd::Corrupt {
                        offset,
                        reason: Corruption::ValidFrameFollows { error, at },
                    },
                    Resync::GaveUp => ScanEnd::Corrupt {
                        offset,
                        reason: Corruption::Unverifiable { error },
                    },
                };
                return Ok(scan);
            }
        }
    }
    Ok(scan)
}

/// Whether `bytes` (frames of `version`) holds, at some offset from `from` on, a valid frame
/// whose sequence number could follow `expected`: then a bad frame before it is damage, not a
/// torn tail. Bounded like [`scan_segment`]'s search (and `true`, the safe answer, past the
/// bound). [`valid_frame_after_in`] does the same for any [`ReadAt`] source.
pub fn valid_frame_after(version: Version, bytes: &[u8], from: usize, expected: u64) -> bool {
    let mut bytes = bytes;
    match valid_frame_after_in(version, &mut bytes, from as u64, expected) {
        Ok(found) => found,
        Err(never) => match never {},
    }
}

/// [`valid_frame_after`] over any [`ReadAt`] source (offsets are the source's), with the same
/// answer, in constant memory.
pub fn valid_frame_after_in<S: ReadAt + ?Sized>(
    version: Version,
    src: &mut S,
    from: u64,
    expected: u64,
) -> Result<bool, S::Error> {
    Ok(!matches!(
        resync(src, version, from, expected)?,
        Resync::None
    ))
}

/// What a frame that checks out says (its payload is not kept).
struct FrameInfo {
    seq: u64,
    dropped_before: u64,
    refused_before: u64,
    marker: bool,
    preamble: bool,
    /// Its size, header included.
    size: u64,
}

/// Checks the frame at `offset` of `src` like [`Version::decode_frame`] checks the one at the
/// start of a slice (same errors, in the same order), reading its payload a chunk at a time.
fn check_frame<S: ReadAt + ?Sized>(
    src: &mut S,
    version: Version,
    offset: u64,
) -> Result<Result<FrameInfo, FrameError>, S::Error> {
    let rest = src.len().saturating_sub(offset);
    let header_len = version.frame_header_len();
    let mut header = [0u8; MAX_FRAME_HEADER];
    let n = rest.min(header_len as u64) as usize;
    src.read_exact_at(offset, &mut header[..n])?;
    let size = match version.frame_size(&header[..n]) {
        Ok(size) => size,
        Err(e) => return Ok(Err(e)),
    };
    if (size as u64) > rest {
        return Ok(Err(FrameError::Incomplete { needed: size }));
    }
    let header = &header[..header_len];
    let mut crc = crc32c_append(crc32c(&header[0..4]), &header[8..]);
    let mut chunk = [0u8; CHUNK];
    let mut at = offset + header_len as u64;
    let end = offset + size as u64;
    while at < end {
        let n = (end - at).min(CHUNK as u64) as usize;
        src.read_exact_at(at, &mut chunk[..n])?;
        crc = crc32c_append(crc, &chunk[..n]);
        at += n as u64;
    }
    if crc != super::le32(header, 4) {
        return Ok(Err(FrameError::BadChecksum));
    }
    let (marker, preamble) = match version.flags(super::le32(header, 0)) {
        Ok(flags) => flags,
        Err(e) => return Ok(Err(e)),
    };
    let refused_before = match version {
        Version::V1 => 0,
        Version::V2 | Version::V3 => super::le64(header, 24),
    };
    Ok(Ok(FrameInfo {
        seq: super::le64(header, 8),
        dropped_before: super::le64(header, 16),
        refused_before,
        marker,
        preamble,
        size: size as u64,
    }))
}

enum Resync {
    None,
    Found(u64),
    GaveUp,
}

/// How many bytes at the start of `bytes` are zero.
fn zero_prefix(bytes: &[u8]) -> usize {
    // Slice equality on bytes is a `memcmp`: fast in debug builds too (the tests scan
    // gigabyte holes in them).
    const ZEROS: [u8; 64] = [0; 64];
    let mut n = 0;
    while n + ZEROS.len() <= bytes.len() && bytes[n..n + ZEROS.len()] == ZEROS {
        n += ZEROS.len();
    }
    n + bytes[n..].iter().take_while(|&&b| b == 0).count()
}

/// Looks for a valid frame at any offset from `from` whose sequence number could follow
/// `expected` (at or after it, and no further than one per minimum frame size). Reads `src` a
/// window at a time; only a plausible candidate (sequence number and length field) is
/// checksummed, through [`check_frame`]. An all-zero header is never a candidate (it is never
/// a valid frame), so a hole of zeros costs nothing against the budget, whatever `expected`
/// is: after the first segment's first record too, it is a torn tail, not unverifiable.
fn resync<S: ReadAt + ?Sized>(
    src: &mut S,
    version: Version,
    from: u64,
    expected: u64,
) -> Result<Resync, S::Error> {
    let len = src.len();
    let header = version.frame_header_len();
    let max_ahead = len / header as u64;
    let mut window = [0u8; WINDOW];
    // `window[..filled]` holds the bytes from `start` on.
    let (mut start, mut filled) = (from, 0usize);
    let mut checked = 0u64;
    let mut at = from;
    while at.saturating_add(header as u64) <= len {
        if at + header as u64 > start + filled as u64 {
            start = at;
            filled = (len - at).min(WINDOW as u64) as usize;
            src.read_exact_at(start, &mut window[..filled])?;
        }
        let here = &window[(at - start) as usize..filled];
        // An all-zero frame header is never a valid frame (its checksum field, 0, is not the
        // checksum of zeros; `an_all_zero_frame_header_is_never_a_frame` checks it, for every
        // version): step over a run of zeros (a sparse file's hole) at once, not byte by byte.
        // (A slice comparison: one `memcmp`, not a loop, at every offset.)
        let zeros = if here[..header] == [0u8; MAX_FRAME_HEADER][..header] {
            zero_prefix(here)
        } else {
            0
        };
        if zeros >= header {
            // Zeros from `at` to `run_end`; to the end of what was read, the source may know
            // how far they go on (a sparse file's hole), without reading them.
            let mut run_end = at + zeros as u64;
            if zeros == here.len() && run_end < len {
                let data = src.data_from(run_end)?;
                run_end = data.clamp(run_end, len);
            }
            // The first frame header not all zeros starts past `run_end - header`.
            at = run_end - header as u64 + 1;
            continue;
        }
        let seq = super::le64(here, 8);
        if seq.wrapping_sub(expected) <= max_ahead {
            if let Ok(size) = version.frame_size(here) {
                if size as u64 <= len - at {
                    checked += size as u64;
                    if checked > BUDGET {
                        return Ok(Resync::GaveUp);
                    }
                    if check_frame(src, version, at)?.is_ok() {
                        return Ok(Resync::Found(at));
                    }
                }
            }
        }
        at += 1;
    }
    Ok(Resync::None)
}
