//! The on-disk (and on-flash, on-wire) format of a ringwal log: segment files, their header,
//! and record frames. `no_std` and allocation-free (the `Vec` helpers need `alloc`), so a
//! firmware writes the same frames the host's `ringwal cat`, `verify` and `Reader` read. This
//! module is the one place the format is written down and the one implementation of it: the
//! std crate re-exports it as `ringwal::format`.
//!
//! # Segments
//!
//! A log is a directory of segment files named by the sequence number of their first record,
//! zero-padded to 20 digits: `00000000000000000000.rwl`, `00000000000000004096.rwl`, ...
//!
//! Each segment starts with a [`HEADER_LEN`]-byte header:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | [`MAGIC`] |
//! | 8..12 | format version, u32 little-endian: 3 ([`VERSION`]); 1 and 2 are still read |
//! | 12..16 | flags, u32 (0) |
//! | 16..24 | first sequence number, u64 LE (equals the file name's) |
//! | 24..28 | reserved (0) |
//! | 28..32 | CRC32C of bytes 0..28 |
//!
//! # Frames (versions 2 and 3)
//!
//! then frames, each:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | u32 LE: payload length (at most [`MAX_PAYLOAD`]) in bits 0..29; bit 31 set marks a *gap marker*; bit 30 set (version 3 only) a *preamble frame*; bit 29 is 0 |
//! | 4..8 | CRC32C over bytes 0..4, 8..32 and the payload |
//! | 8..16 | sequence number, u64 LE; consecutive over records within and across segments |
//! | 16..24 | `dropped_before`: events evicted (`DropOldest`) between the previous record and this one |
//! | 24..32 | `refused_before`: events refused (full ring, closed or unhealthy writer) there |
//! | 32.. | payload |
//!
//! A **gap marker** carries no payload and is not a record: it does not consume a sequence
//! number (its sequence field holds the number the next record will have). It records losses
//! that no later record could carry, e.g. events refused after the last record before a
//! shutdown. A reader adds a marker's counts to the next record's (or reports them as the log's
//! trailing gap), so the gaps in a log always sum to the events lost.
//!
//! A **preamble frame** (version 3) carries a payload but is not a record either: it does not
//! consume a sequence number (its sequence field holds the number the next record will have)
//! and its gap counts are 0 (ignored when read). A writer puts preamble frames right after the
//! header of each segment it creates, with what a reader starting at that segment needs to
//! make sense of the records after it (the callsite metadata of a tracing log, say: see the
//! writer's `segment_preamble`). Readers skip them unless asked for them. Version 3 differs
//! from version 2 only by allowing them; a writer writes version-3 headers only on segments
//! that get preamble frames (so readers of version 2 read every other log), and appends to a
//! version-2 segment without writing any.
//!
//! # Frames (version 1, read only)
//!
//! A 24-byte header: length (no flag bits), CRC over bytes 0..4, 8..24 and the payload,
//! sequence number, `dropped_before`; no `refused_before` (read as 0), no markers. A writer
//! that finds a version-1 newest segment starts a fresh version-2 segment after it.
//!
//! ```
//! use ringwal_core::format;
//!
//! let mut buf = [0u8; 64];
//! let used = format::encode_frame_into(&mut buf, 7, 0, 2, b"hello").unwrap();
//! let (frame, size) = format::decode_frame(&buf[..used]).unwrap();
//! assert_eq!((frame.seq, frame.refused_before, frame.payload, size), (7, 2, &b"hello"[..], used));
//! ```

use core::fmt;

mod crc;
mod framer;
mod scan;

pub use crc::{crc32c, crc32c_append};
pub use framer::{Framer, FramerError};
pub use scan::{
    scan_segment, scan_segment_in, valid_frame_after, valid_frame_after_in, Corruption, ReadAt,
    ScanEnd, ScanError, SegmentScan,
};

#[cfg(feature = "alloc")]
use alloc::{string::String, vec::Vec};

/// The first 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"\x89RINGWAL";
/// The newest format version this build reads and writes. It writes version 3 only for
/// segments with preamble frames, version 2 otherwise ([`encode_header`]), so that readers of
/// version 2 read every log that does not use preambles.
pub const VERSION: u32 = 3;
/// Size of the segment header.
pub const HEADER_LEN: usize = 32;
/// Size of a version-2 (and 3) frame's header (before the payload).
pub const FRAME_HEADER_LEN: usize = 32;
/// The largest payload a frame may carry (256 MiB). Longer records are refused by encoders,
/// and a length field above it is corruption.
pub const MAX_PAYLOAD: usize = 256 << 20;
/// The extension of segment files.
pub const SEGMENT_EXTENSION: &str = "rwl";
/// The length of a segment file name (20 digits, a dot, the extension).
pub const SEGMENT_NAME_LEN: usize = 24;

/// Bit 31 of a version-2 length field: the frame is a gap marker.
const MARKER_FLAG: u32 = 1 << 31;
/// Bit 30 of a version-3 length field: the frame is a preamble frame.
const PREAMBLE_FLAG: u32 = 1 << 30;
/// Bits of a version-3 length field that must be 0.
const RESERVED_BITS: u32 = 1 << 29;

/// A segment format version this build reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The original format: 24-byte frame headers, no refusal counts, no markers. Read only.
    V1,
    /// Version 2: 32-byte frame headers with refusal counts, gap markers. Read, and
    /// appended to (with no preamble frame).
    V2,
    /// The current format ([`VERSION`]): version 2 plus preamble frames.
    V3,
}

impl Version {
    /// The newest version this build writes ([`VERSION`]).
    pub const CURRENT: Version = Version::V3;

    /// The version number stored in a segment header.
    pub const fn number(self) -> u32 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version a header's number stands for, if this build reads it.
    pub const fn from_number(n: u32) -> Option<Version> {
        match n {
            1 => Some(Version::V1),
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }

    /// Size of a frame header in this version.
    pub const fn frame_header_len(self) -> usize {
        match self {
            Version::V1 => 24,
            Version::V2 | Version::V3 => FRAME_HEADER_LEN,
        }
    }

    /// Whether a writer of this build may append records to a segment of this version
    /// (versions 2 and 3: their records are framed alike).
    pub const fn appendable(self) -> bool {
        matches!(self, Version::V2 | Version::V3)
    }

    /// The flag bits of a length field, if valid in this version: `(marker, preamble)`.
    fn flags(self, raw: u32) -> Result<(bool, bool), FrameError> {
        let (marker, preamble) = (raw & MARKER_FLAG != 0, raw & PREAMBLE_FLAG != 0);
        let len = raw & !(MARKER_FLAG | PREAMBLE_FLAG);
        let ok = match self {
            Version::V1 => true,
            Version::V2 => raw & (RESERVED_BITS | PREAMBLE_FLAG) == 0 && (!marker || len == 0),
            // A frame is a marker (no payload) or a preamble frame, never both.
            Version::V3 => raw & RESERVED_BITS == 0 && (!marker || (len == 0 && !preamble)),
        };
        match (ok, self) {
            (false, _) => Err(FrameError::BadLength(raw)),
            (true, Version::V1) => Ok((false, false)),
            (true, _) => Ok((marker, preamble)),
        }
    }

    /// Reads a frame's length field: the frame's total size, if the header is there and sane.
    pub fn frame_size(self, bytes: &[u8]) -> Result<usize, FrameError> {
        let header = self.frame_header_len();
        if bytes.len() < header {
            return Err(FrameError::Incomplete { needed: header });
        }
        let raw = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let len = match self {
            Version::V1 => raw,
            Version::V2 | Version::V3 => {
                self.flags(raw)?;
                raw & !(MARKER_FLAG | PREAMBLE_FLAG)
            }
        };
        if len as usize > MAX_PAYLOAD {
            return Err(FrameError::BadLength(raw));
        }
        Ok(header + len as usize)
    }

    /// Decodes the frame at the start of `bytes`; returns it and the bytes it used.
    pub fn decode_frame(self, bytes: &[u8]) -> Result<(Frame<'_>, usize), FrameError> {
        let size = self.frame_size(bytes)?;
        if bytes.len() < size {
            return Err(FrameError::Incomplete { needed: size });
        }
        let frame = &bytes[..size];
        if frame_crc(frame) != le32(frame, 4) {
            return Err(FrameError::BadChecksum);
        }
        let header = self.frame_header_len();
        let (marker, preamble) = self.flags(le32(frame, 0))?;
        let refused_before = match self {
            Version::V1 => 0,
            Version::V2 | Version::V3 => le64(frame, 24),
        };
        Ok((
            Frame {
                seq: le64(frame, 8),
                dropped_before: le64(frame, 16),
                refused_before,
                marker,
                preamble,
                payload: &frame[header..],
            },
            size,
        ))
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Writes a segment's file name for `first_seq` into `buf` and returns it as a `&str`.
///
/// ```
/// let mut buf = [0u8; ringwal_core::format::SEGMENT_NAME_LEN];
/// let name = ringwal_core::format::segment_file_name_into(42, &mut buf);
/// assert_eq!(name, "00000000000000000042.rwl");
/// ```
pub fn segment_file_name_into(first_seq: u64, buf: &mut [u8; SEGMENT_NAME_LEN]) -> &str {
    let mut n = first_seq;
    for d in buf[..20].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf[20] = b'.';
    buf[21..].copy_from_slice(SEGMENT_EXTENSION.as_bytes());
    // Only ASCII digits, '.' and the ASCII extension were written.
    core::str::from_utf8(buf).unwrap_or("")
}

/// A segment's file name: its first sequence number, 20 digits, `.rwl`.
///
/// ```
/// use ringwal_core::format::{parse_segment_file_name, segment_file_name};
/// assert_eq!(segment_file_name(42), "00000000000000000042.rwl");
/// assert_eq!(parse_segment_file_name("00000000000000000042.rwl"), Some(42));
/// assert_eq!(parse_segment_file_name("42.rwl"), None);
/// ```
#[cfg(feature = "alloc")]
pub fn segment_file_name(first_seq: u64) -> String {
    let mut buf = [0u8; SEGMENT_NAME_LEN];
    String::from(segment_file_name_into(first_seq, &mut buf))
}

/// The first sequence number a segment file name stands for, or `None` if it is not one
/// (also for 20 digits beyond `u64::MAX`).
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".rwl")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of a segment whose first record will be `first_seq` and that holds no preamble
/// frame: version 2, which readers of version 2 and later read. (A segment with preamble
/// frames needs [`encode_header_version`]`(Version::V3, ..)`.)
pub fn encode_header(first_seq: u64) -> [u8; HEADER_LEN] {
    encode_header_version(Version::V2, first_seq)
}

/// A segment header of the given version (version 3 for a segment with preamble frames;
/// version 1 for tools and tests that must produce old logs).
pub fn encode_header_version(version: Version, first_seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&version.number().to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c(&h[..28]);
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
                "segment format version {v} is not supported (this build reads 1 to {VERSION})"
            ),
            HeaderError::BadChecksum => f.write_str("segment header checksum mismatch"),
        }
    }
}

impl core::error::Error for HeaderError {}

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The format version of the segment's frames.
    pub version: Version,
    /// The sequence number of the segment's first record.
    pub first_seq: u64,
}

/// Checks a segment header; returns its version and first sequence number.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
    if bytes.len() < HEADER_LEN {
        return Err(HeaderError::Short(bytes.len()));
    }
    if bytes[0..8] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    if crc32c(&bytes[..28]) != le32(bytes, 28) {
        return Err(HeaderError::BadChecksum);
    }
    let number = le32(bytes, 8);
    let version = Version::from_number(number).ok_or(HeaderError::UnsupportedVersion(number))?;
    Ok(SegmentHeader {
        version,
        first_seq: le64(bytes, 16),
    })
}

/// Checks a segment header and returns the first sequence number it records.
pub fn decode_header(bytes: &[u8]) -> Result<u64, HeaderError> {
    decode_segment_header(bytes).map(|h| h.first_seq)
}

/// A payload longer than [`MAX_PAYLOAD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a payload of {} bytes exceeds the maximum of {MAX_PAYLOAD}",
            self.0
        )
    }
}

impl core::error::Error for TooLarge {}

/// Why [`encode_frame_into`] could not encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload exceeds [`MAX_PAYLOAD`].
    TooLarge(usize),
    /// The output buffer is shorter than the frame (`needed` bytes).
    BufferTooSmall {
        /// The frame's size.
        needed: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge(n) => fmt::Display::fmt(&TooLarge(*n), f),
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "the buffer is too small for a frame of {needed} bytes")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// Completes, in place, the version-2 frame in `frame`: its first [`FRAME_HEADER_LEN`] bytes
/// are the header to fill, everything after them is the payload. For encoding straight into
/// a buffer (or a ring) without a copy.
pub fn seal_frame(
    frame: &mut [u8],
    seq: u64,
    dropped_before: u64,
    refused_before: u64,
) -> Result<(), TooLarge> {
    let len = frame.len().saturating_sub(FRAME_HEADER_LEN);
    if len > MAX_PAYLOAD || frame.len() < FRAME_HEADER_LEN {
        return Err(TooLarge(len));
    }
    frame[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    write_fields(frame, seq, dropped_before, refused_before);
    Ok(())
}

fn write_fields(frame: &mut [u8], seq: u64, dropped_before: u64, refused_before: u64) {
    frame[8..16].copy_from_slice(&seq.to_le_bytes());
    frame[16..24].copy_from_slice(&dropped_before.to_le_bytes());
    frame[24..32].copy_from_slice(&refused_before.to_le_bytes());
    let crc = frame_crc(frame);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Encodes a whole version-2 frame holding `payload` at the start of `out`; returns its size.
pub fn encode_frame_into(
    out: &mut [u8],
    seq: u64,
    dropped_before: u64,
    refused_before: u64,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(EncodeError::TooLarge(payload.len()));
    }
    let size = FRAME_HEADER_LEN + payload.len();
    let Some(frame) = out.get_mut(..size) else {
        return Err(EncodeError::BufferTooSmall { needed: size });
    };
    frame[FRAME_HEADER_LEN..].copy_from_slice(payload);
    seal_frame(frame, seq, dropped_before, refused_before)
        .map_err(|TooLarge(n)| EncodeError::TooLarge(n))?;
    Ok(size)
}

/// A gap marker: `dropped`/`refused` events lost before the record that will have `next_seq`
/// (which the marker does not consume).
pub fn encode_marker(next_seq: u64, dropped: u64, refused: u64) -> [u8; FRAME_HEADER_LEN] {
    let mut m = [0u8; FRAME_HEADER_LEN];
    m[0..4].copy_from_slice(&MARKER_FLAG.to_le_bytes());
    write_fields(&mut m, next_seq, dropped, refused);
    m
}

/// Whether the complete version-2 frame at the start of `frame` (at least its length field)
/// is a gap marker.
pub fn is_marker(frame: &[u8]) -> bool {
    frame.len() >= 4 && le32(frame, 0) & MARKER_FLAG != 0
}

/// Whether the complete version-3 frame at the start of `frame` (at least its length field)
/// is a preamble frame.
pub fn is_preamble(frame: &[u8]) -> bool {
    frame.len() >= 4 && le32(frame, 0) & PREAMBLE_FLAG != 0
}

/// Encodes a version-3 preamble frame holding `payload` at the start of `out`, for the segment
/// whose next record will be `next_seq` (which the frame does not consume); returns its size.
///
/// ```
/// use ringwal_core::format::{self, Version};
///
/// let mut buf = [0u8; 64];
/// let used = format::encode_preamble_frame_into(&mut buf, 4096, b"schema").unwrap();
/// let (frame, _) = Version::V3.decode_frame(&buf[..used]).unwrap();
/// assert!(frame.preamble && !frame.marker);
/// assert_eq!((frame.seq, frame.payload), (4096, &b"schema"[..]));
/// // Version 2 has no preamble frames: the same bytes are damage there.
/// assert!(Version::V2.decode_frame(&buf[..used]).is_err());
/// ```
pub fn encode_preamble_frame_into(
    out: &mut [u8],
    next_seq: u64,
    payload: &[u8],
) -> Result<usize, EncodeError> {
    let size = encode_frame_into(out, next_seq, 0, 0, payload)?;
    let raw = le32(out, 0) | PREAMBLE_FLAG;
    out[0..4].copy_from_slice(&raw.to_le_bytes());
    write_fields(&mut out[..size], next_seq, 0, 0);
    Ok(size)
}

/// Rewrites the sequence number and gap counts of the complete version-2 frame (record or
/// marker) at the start of `frame`, recomputing its CRC.
pub fn renumber_frame(frame: &mut [u8], seq: u64, dropped_before: u64, refused_before: u64) {
    write_fields(frame, seq, dropped_before, refused_before);
}

/// CRC of a whole frame (header with any CRC field, then payload): over bytes 0..4 and 8.. .
fn frame_crc(frame: &[u8]) -> u32 {
    crc32c_append(crc32c(&frame[0..4]), &frame[8..])
}

/// Starts a version-2 frame in `out`: reserves its header. Append the payload, then call
/// [`finish_frame`] with the returned start.
#[cfg(feature = "alloc")]
#[inline]
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    start
}

/// Completes the frame [`begin_frame`] started at `start`: everything after its header is the
/// payload. A payload over [`MAX_PAYLOAD`] is removed again (`out` is truncated to `start`).
#[cfg(feature = "alloc")]
#[inline]
pub fn finish_frame(
    out: &mut Vec<u8>,
    start: usize,
    seq: u64,
    dropped_before: u64,
    refused_before: u64,
) -> Result<(), TooLarge> {
    let result = seal_frame(&mut out[start..], seq, dropped_before, refused_before);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a whole version-2 frame holding `payload`, with no refusals before it.
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD`].
#[cfg(feature = "alloc")]
pub fn encode_frame(out: &mut Vec<u8>, seq: u64, dropped_before: u64, payload: &[u8]) {
    encode_frame_with(out, seq, dropped_before, 0, payload);
}

/// Appends a whole version-2 frame holding `payload`, with both gap counts.
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD`].
#[cfg(feature = "alloc")]
pub fn encode_frame_with(
    out: &mut Vec<u8>,
    seq: u64,
    dropped_before: u64,
    refused_before: u64,
    payload: &[u8],
) {
    let start = begin_frame(out);
    out.extend_from_slice(payload);
    if finish_frame(out, start, seq, dropped_before, refused_before).is_err() {
        panic!("payload of {} bytes exceeds MAX_PAYLOAD", payload.len());
    }
}

/// Appends a version-3 preamble frame holding `payload` (see [`encode_preamble_frame_into`]).
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD`].
#[cfg(feature = "alloc")]
pub fn encode_preamble_frame(out: &mut Vec<u8>, next_seq: u64, payload: &[u8]) {
    let start = out.len();
    out.resize(start + FRAME_HEADER_LEN + payload.len(), 0);
    if encode_preamble_frame_into(&mut out[start..], next_seq, payload).is_err() {
        panic!("payload of {} bytes exceeds MAX_PAYLOAD", payload.len());
    }
}

/// Appends a version-1 frame (for tools and tests that must produce old logs).
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD`].
#[cfg(feature = "alloc")]
pub fn encode_frame_v1(out: &mut Vec<u8>, seq: u64, dropped_before: u64, payload: &[u8]) {
    assert!(
        payload.len() <= MAX_PAYLOAD,
        "payload of {} bytes exceeds MAX_PAYLOAD",
        payload.len()
    );
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&dropped_before.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = frame_crc(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded frame, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The record's sequence number; for a marker, the next record's.
    pub seq: u64,
    /// Events evicted between the previous record and this one.
    pub dropped_before: u64,
    /// Events refused between the previous record and this one (0 in version 1).
    pub refused_before: u64,
    /// A gap marker: no record, only the counts (never in version 1).
    pub marker: bool,
    /// A preamble frame: no record, context for the records after it (version 3 only).
    pub preamble: bool,
    /// The payload (empty for a marker).
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
    /// The length field exceeds [`MAX_PAYLOAD`] or has reserved bits set.
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
            FrameError::BadLength(n) => write!(f, "record length field {n:#x} is invalid"),
            FrameError::BadChecksum => f.write_str("record checksum mismatch"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Reads a version-2 frame's length field: the frame's total size, if the header is there
/// and sane. ([`Version::frame_size`] for other versions.)
pub fn frame_size(bytes: &[u8]) -> Result<usize, FrameError> {
    Version::CURRENT.frame_size(bytes)
}

/// Decodes the version-2 frame at the start of `bytes`; returns it and the bytes it used.
/// ([`Version::decode_frame`] for other versions.)
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame<'_>, usize), FrameError> {
    Version::CURRENT.decode_frame(bytes)
}

#[cfg(test)]
mod tests;
