//! Checking a whole segment: the header, then every frame in order.

use core::fmt;

use super::{decode_segment_header, FrameError, HeaderError, Version, HEADER_LEN};

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

/// What [`scan_segment`] found in one segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// From the header.
    pub version: Version,
    /// From the header.
    pub first_seq: u64,
    /// Valid records, in order, before `end` (markers not counted).
    pub records: u64,
    /// Valid gap markers before `end`.
    pub markers: u64,
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

/// Checks a whole segment: its header, then every frame in order with consecutive sequence
/// numbers starting at the header's (a marker carries the next record's). Never panics and
/// allocates nothing, whatever the bytes.
///
/// A bad frame followed by no valid frame is [`ScanEnd::Torn`]; a bad frame followed by a
/// valid frame with a later sequence number is [`ScanEnd::Corrupt`] (looking for one is
/// bounded: past 64 MiB of checksummed candidates it assumes corruption, the safe answer).
pub fn scan_segment(bytes: &[u8]) -> Result<SegmentScan, HeaderError> {
    let header = decode_segment_header(bytes)?;
    let version = header.version;
    let mut scan = SegmentScan {
        version,
        first_seq: header.first_seq,
        records: 0,
        markers: 0,
        dropped: 0,
        refused: 0,
        gaps: 0,
        valid_len: HEADER_LEN as u64,
        end: ScanEnd::Clean,
    };
    let mut offset = HEADER_LEN;
    while offset < bytes.len() {
        let expected = scan.next_seq();
        match version.decode_frame(&bytes[offset..]) {
            Ok((frame, used)) if frame.seq == expected => {
                if frame.marker {
                    scan.markers += 1;
                } else {
                    scan.records += 1;
                }
                scan.dropped = scan.dropped.saturating_add(frame.dropped_before);
                scan.refused = scan.refused.saturating_add(frame.refused_before);
                scan.gaps += u64::from(frame.dropped_before > 0 || frame.refused_before > 0);
                offset += used;
                scan.valid_len = offset as u64;
            }
            Ok((frame, _)) => {
                scan.end = ScanEnd::Corrupt {
                    offset: offset as u64,
                    reason: Corruption::SequenceBreak {
                        expected,
                        found: frame.seq,
                    },
                };
                return Ok(scan);
            }
            Err(error) => {
                scan.end = match resync(version, bytes, offset + 1, expected) {
                    Resync::None => ScanEnd::Torn {
                        offset: offset as u64,
                        reason: error,
                    },
                    Resync::Found(at) => ScanEnd::Corrupt {
                        offset: offset as u64,
                        reason: Corruption::ValidFrameFollows {
                            error,
                            at: at as u64,
                        },
                    },
                    Resync::GaveUp => ScanEnd::Corrupt {
                        offset: offset as u64,
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
/// bound).
pub fn valid_frame_after(version: Version, bytes: &[u8], from: usize, expected: u64) -> bool {
    !matches!(resync(version, bytes, from, expected), Resync::None)
}

enum Resync {
    None,
    Found(usize),
    GaveUp,
}

/// Looks for a valid frame at any offset from `from` whose sequence number could follow
/// `expected` (at or after it, and no further than one per minimum frame size).
fn resync(version: Version, bytes: &[u8], from: usize, expected: u64) -> Resync {
    const BUDGET: usize = 64 << 20;
    let header = version.frame_header_len();
    let max_ahead = (bytes.len() / header) as u64;
    let mut checked = 0usize;
    let mut at = from;
    while at.saturating_add(header) <= bytes.len() {
        let rest = &bytes[at..];
        let seq = super::le64(rest, 8);
        if seq.wrapping_sub(expected) <= max_ahead {
            if let Ok(size) = version.frame_size(rest) {
                if size <= rest.len() {
                    checked += size;
                    if checked > BUDGET {
                        return Resync::GaveUp;
                    }
                    if version.decode_frame(rest).is_ok() {
                        return Resync::Found(at);
                    }
                }
            }
        }
        at += 1;
    }
    Resync::None
}
