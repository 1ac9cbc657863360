//! The on-disk format: segment files, their header, and record frames. Public so tools (the
//! `ringwal` CLI, fuzzers, your own readers) can check a log without the writer.
//!
//! A log is a directory of segment files named by the sequence number of their first record,
//! zero-padded to 20 digits: `00000000000000000000.rwl`, `00000000000000004096.rwl`, ...
//!
//! Each segment starts with a [`HEADER_LEN`]-byte header:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | [`MAGIC`] |
//! | 8..12 | format version, u32 little-endian ([`VERSION`]) |
//! | 12..16 | flags, u32 (0) |
//! | 16..24 | first sequence number, u64 LE (equals the file name's) |
//! | 24..28 | reserved (0) |
//! | 28..32 | CRC32C of bytes 0..28 |
//!
//! then records, each framed as:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | payload length, u32 LE (at most [`MAX_PAYLOAD`]) |
//! | 4..8 | CRC32C over bytes 0..4, 8..24 and the payload |
//! | 8..16 | sequence number, u64 LE; consecutive within and across segments |
//! | 16..24 | `dropped_before`: events lost between the previous record and this one |
//! | 24.. | payload |
//!
//! ```
//! use ringwal::format;
//!
//! let mut buf = Vec::new();
//! format::encode_frame(&mut buf, 7, 0, b"hello");
//! let (frame, used) = format::decode_frame(&buf).unwrap();
//! assert_eq!((frame.seq, frame.payload, used), (7, &b"hello"[..], buf.len()));
//! ```

use std::fmt;

/// The first 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"\x89RINGWAL";
/// The format version this build writes and the newest it reads.
pub const VERSION: u32 = 1;
/// Size of the segment header.
pub const HEADER_LEN: usize = 32;
/// Size of a record frame's header (before the payload).
pub const FRAME_HEADER_LEN: usize = 24;
/// The largest payload a frame may carry (256 MiB). Longer records are dropped, and a length
/// field above it is corruption.
pub const MAX_PAYLOAD: usize = 256 << 20;
/// The extension of segment files.
pub const SEGMENT_EXTENSION: &str = "rwl";

/// A segment's file name: its first sequence number, 20 digits, `.rwl`.
///
/// ```
/// assert_eq!(ringwal::format::segment_file_name(42), "00000000000000000042.rwl");
/// assert_eq!(ringwal::format::parse_segment_file_name("00000000000000000042.rwl"), Some(42));
/// assert_eq!(ringwal::format::parse_segment_file_name("42.rwl"), None);
/// ```
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{SEGMENT_EXTENSION}")
}

/// The first sequence number a segment file name stands for, or `None` if it is not one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".rwl")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment header for a segment whose first record will be `first_seq`.
pub fn encode_header(first_seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment header is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes.
    Short(usize),
    /// The file does not start with [`MAGIC`]: not a ringwal segment.
    BadMagic,
    /// Written by a newer ringwal (or an unknown one).
    UnsupportedVersion(u32),
    /// The header's CRC does not match.
    BadChecksum,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Short(n) => write!(f, "segment header is {n} bytes, needs {HEADER_LEN}"),
            HeaderError::BadMagic => f.write_str("not a ringwal segment (bad magic)"),
            HeaderError::UnsupportedVersion(v) => write!(
                f,
                "segment format version {v} is not supported (this build reads up to {VERSION})"
            ),
            HeaderError::BadChecksum => f.write_str("segment header checksum mismatch"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Checks a segment header and returns the first sequence number it records.
pub fn decode_header(bytes: &[u8]) -> Result<u64, HeaderError> {
    if bytes.len() < HEADER_LEN {
        return Err(HeaderError::Short(bytes.len()));
    }
    if bytes[0..8] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or([0; 4]));
    let crc = u32::from_le_bytes(bytes[28..32].try_into().unwrap_or([0; 4]));
    if crc32c::crc32c(&bytes[..28]) != crc {
        return Err(HeaderError::BadChecksum);
    }
    if version != VERSION {
        return Err(HeaderError::UnsupportedVersion(version));
    }
    Ok(u64::from_le_bytes(
        bytes[16..24].try_into().unwrap_or([0; 8]),
    ))
}

/// Starts a frame in `out`: reserves its header. Append the payload, then call
/// [`finish_frame`] with the returned start.
#[inline]
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    start
}

/// A payload longer than [`MAX_PAYLOAD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub usize);

/// Completes the frame [`begin_frame`] started at `start`: everything after its header is the
/// payload. A payload over [`MAX_PAYLOAD`] is removed again (`out` is truncated to `start`).
#[inline]
pub fn finish_frame(
    out: &mut Vec<u8>,
    start: usize,
    seq: u64,
    dropped_before: u64,
) -> Result<(), TooLarge> {
    let len = out.len() - start - FRAME_HEADER_LEN;
    if len > MAX_PAYLOAD {
        out.truncate(start);
        return Err(TooLarge(len));
    }
    let frame = &mut out[start..];
    frame[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    frame[8..16].copy_from_slice(&seq.to_le_bytes());
    frame[16..24].copy_from_slice(&dropped_before.to_le_bytes());
    let crc = frame_crc(frame);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Rewrites the sequence number and `dropped_before` of the complete frame at the start of
/// `frame`, recomputing its CRC.
pub fn renumber_frame(frame: &mut [u8], seq: u64, dropped_before: u64) {
    frame[8..16].copy_from_slice(&seq.to_le_bytes());
    frame[16..24].copy_from_slice(&dropped_before.to_le_bytes());
    let crc = frame_crc(frame);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// CRC of a whole frame (header with any CRC field, then payload): over bytes 0..4 and 8.. .
fn frame_crc(frame: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&frame[0..4]);
    crc32c::crc32c_append(crc, &frame[8..])
}

/// Appends a whole frame holding `payload`.
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD`].
pub fn encode_frame(out: &mut Vec<u8>, seq: u64, dropped_before: u64, payload: &[u8]) {
    let start = begin_frame(out);
    out.extend_from_slice(payload);
    if finish_frame(out, start, seq, dropped_before).is_err() {
        panic!("payload of {} bytes exceeds MAX_PAYLOAD", payload.len());
    }
}

/// A decoded frame, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Events dropped between the previous record and this one.
    pub dropped_before: u64,
    /// The payload.
    pub payload: &'a [u8],
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes end before the frame does (`needed` bytes in all): a torn write, or a frame
    /// still being written.
    Incomplete {
        /// Bytes the frame would need, header included (or just the header's size if even
        /// that is missing).
        needed: usize,
    },
    /// The length field exceeds [`MAX_PAYLOAD`].
    BadLength(u32),
    /// The CRC does not match.
    BadChecksum,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Incomplete { needed } => {
                write!(f, "incomplete record (needs {needed} bytes)")
            }
            FrameError::BadLength(n) => write!(f, "record length {n} exceeds the maximum"),
            FrameError::BadChecksum => f.write_str("record checksum mismatch"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Reads a frame's length field: the frame's total size, if the header is there and sane.
pub fn frame_size(bytes: &[u8]) -> Result<usize, FrameError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Incomplete {
            needed: FRAME_HEADER_LEN,
        });
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if len as usize > MAX_PAYLOAD {
        return Err(FrameError::BadLength(len));
    }
    Ok(FRAME_HEADER_LEN + len as usize)
}

/// Decodes the frame at the start of `bytes`; returns it and the bytes it used.
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame<'_>, usize), FrameError> {
    let size = frame_size(bytes)?;
    if bytes.len() < size {
        return Err(FrameError::Incomplete { needed: size });
    }
    let frame = &bytes[..size];
    let stored = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if frame_crc(frame) != stored {
        return Err(FrameError::BadChecksum);
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&frame[8..16]);
    let mut dropped = [0u8; 8];
    dropped.copy_from_slice(&frame[16..24]);
    Ok((
        Frame {
            seq: u64::from_le_bytes(seq),
            dropped_before: u64::from_le_bytes(dropped),
            payload: &frame[FRAME_HEADER_LEN..],
        },
        size,
    ))
}

/// How a segment's bytes end.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        reason: String,
    },
}

/// What [`scan_segment`] found in one segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// From the header.
    pub first_seq: u64,
    /// Valid frames, in order, before `end`.
    pub records: u64,
    /// Sum of their `dropped_before`.
    pub dropped: u64,
    /// How many of them have a non-zero `dropped_before` (gaps).
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

/// Checks a whole segment: its header, then every frame in order with consecutive sequence
/// numbers starting at the header's. Never panics and allocates nothing, whatever the bytes.
///
/// A bad frame followed by no valid frame is [`ScanEnd::Torn`]; a bad frame followed by a
/// valid frame with a later sequence number is [`ScanEnd::Corrupt`] (looking for one is
/// bounded: past 64 MiB of checksummed candidates it assumes corruption, the safe answer).
pub fn scan_segment(bytes: &[u8]) -> Result<SegmentScan, HeaderError> {
    let first_seq = decode_header(bytes)?;
    let mut scan = SegmentScan {
        first_seq,
        records: 0,
        dropped: 0,
        gaps: 0,
        valid_len: HEADER_LEN as u64,
        end: ScanEnd::Clean,
    };
    let mut offset = HEADER_LEN;
    while offset < bytes.len() {
        let expected = scan.next_seq();
        match decode_frame(&bytes[offset..]) {
            Ok((frame, used)) if frame.seq == expected => {
                scan.records += 1;
                scan.dropped = scan.dropped.saturating_add(frame.dropped_before);
                scan.gaps += u64::from(frame.dropped_before > 0);
                offset += used;
                scan.valid_len = offset as u64;
            }
            Ok((frame, _)) => {
                scan.end = ScanEnd::Corrupt {
                    offset: offset as u64,
                    reason: format!(
                        "sequence break: expected record {expected}, found {}",
                        frame.seq
                    ),
                };
                return Ok(scan);
            }
            Err(reason) => {
                scan.end = match resync(bytes, offset + 1, expected) {
                    Resync::None => ScanEnd::Torn {
                        offset: offset as u64,
                        reason,
                    },
                    Resync::Found(at) => ScanEnd::Corrupt {
                        offset: offset as u64,
                        reason: format!("{reason}; a valid record follows at offset {at}"),
                    },
                    Resync::GaveUp => ScanEnd::Corrupt {
                        offset: offset as u64,
                        reason: format!("{reason}; too much data after it to rule out damage"),
                    },
                };
                return Ok(scan);
            }
        }
    }
    Ok(scan)
}

/// Whether `bytes` holds, at some offset from `from` on, a valid frame whose sequence number
/// could follow `expected`: then a bad frame before it is damage, not a torn tail. Bounded
/// like [`scan_segment`]'s search (and `true`, the safe answer, past the bound).
pub fn valid_frame_after(bytes: &[u8], from: usize, expected: u64) -> bool {
    !matches!(resync(bytes, from, expected), Resync::None)
}

enum Resync {
    None,
    Found(usize),
    GaveUp,
}

/// Looks for a valid frame at any offset from `from` whose sequence number could follow
/// `expected` (at or after it, and no further than one per minimum frame size).
fn resync(bytes: &[u8], from: usize, expected: u64) -> Resync {
    const BUDGET: usize = 64 << 20;
    let mut checked = 0usize;
    let mut at = from;
    while at + FRAME_HEADER_LEN <= bytes.len() {
        let rest = &bytes[at..];
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&rest[8..16]);
        let seq = u64::from_le_bytes(seq);
        let max_ahead = (bytes.len() / FRAME_HEADER_LEN) as u64;
        if seq.wrapping_sub(expected) <= max_ahead {
            if let Ok(size) = frame_size(rest) {
                if size <= rest.len() {
                    checked += size;
                    if checked > BUDGET {
                        return Resync::GaveUp;
                    }
                    if decode_frame(rest).is_ok() {
                        return Resync::Found(at);
                    }
                }
            }
        }
        at += 1;
    }
    Resync::None
}
