//! The frame codec against independent references: CRC32C against the `crc32c` crate, and
//! frames round-tripped and scanned for arbitrary contents.
#![cfg(feature = "format")]

use proptest::prelude::*;
use ringwal_core::format::{self, ReadAt, ScanEnd, Version};

/// A source that hands out its bytes in pieces of at most `piece` bytes (as a file read
/// through a small window would), checks that no read reaches past its length, and records
/// the largest read asked of it.
struct Chunky<'a> {
    bytes: &'a [u8],
    piece: usize,
    reads: u64,
    largest: usize,
}

impl ReadAt for Chunky<'_> {
    type Error = String;

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let start = offset as usize;
        let Some(end) = start
            .checked_add(buf.len())
            .filter(|&e| e <= self.bytes.len())
        else {
            return Err(format!(
                "read of {} bytes at {offset} past the end ({})",
                buf.len(),
                self.bytes.len()
            ));
        };
        self.reads += 1;
        self.largest = self.largest.max(buf.len());
        for (dst, src) in buf
            .chunks_mut(self.piece)
            .zip(self.bytes[start..end].chunks(self.piece))
        {
            dst.copy_from_slice(src);
        }
        Ok(())
    }
}

/// The scan as a plain reference over a slice, with the slice decoder (whole-frame CRC): the
/// oracle the streamed scan is checked against (`scan_segment` itself wraps the streamed one).
fn reference_scan(bytes: &[u8]) -> Result<format::SegmentScan, format::HeaderError> {
    let header = format::decode_segment_header(bytes)?;
    let version = header.version;
    let mut scan = format::SegmentScan {
        version,
        first_seq: header.first_seq,
        records: 0,
        markers: 0,
        preambles: 0,
        dropped: 0,
        refused: 0,
        gaps: 0,
        valid_len: format::HEADER_LEN as u64,
        end: ScanEnd::Clean,
    };
    let mut offset = format::HEADER_LEN;
    while offset < bytes.len() {
        let expected = scan.next_seq();
        let at = offset as u64;
        match version.decode_frame(&bytes[offset..]) {
            Ok((frame, used)) if frame.seq == expected => {
                *(if frame.marker {
                    &mut scan.markers
                } else if frame.preamble {
                    &mut scan.preambles
                } else {
                    &mut scan.records
                }) += 1;
                if !frame.preamble {
                    scan.dropped = scan.dropped.saturating_add(frame.dropped_before);
                    scan.refused = scan.refused.saturating_add(frame.refused_before);
                    scan.gaps += u64::from(frame.dropped_before > 0 || frame.refused_before > 0);
                }
                offset += used;
                scan.valid_len = offset as u64;
            }
            Ok((frame, _)) => {
                let reason = format::Corruption::SequenceBreak {
                    expected,
                    found: frame.seq,
                };
                scan.end = ScanEnd::Corrupt { offset: at, reason };
                return Ok(scan);
            }
            Err(error) => {
                scan.end = match reference_resync(version, bytes, offset + 1, expected) {
                    None => ScanEnd::Torn {
                        offset: at,
                        reason: error,
                    },
                    Some(Some(found)) => ScanEnd::Corrupt {
                        offset: at,
                        reason: format::Corruption::ValidFrameFollows {
                            error,
                            at: found as u64,
                        },
                    },
                    Some(None) => ScanEnd::Corrupt {
                        offset: at,
                        reason: format::Corruption::Unverifiable { error },
                    },
                };
                return Ok(scan);
            }
        }
    }
    Ok(scan)
}

/// `None`: no valid frame follows; `Some(Some(at))`: one at `at`; `Some(None)`: gave up.
fn reference_resync(
    version: Version,
    bytes: &[u8],
    from: usize,
    expected: u64,
) -> Option<Option<usize>> {
    let header = version.frame_header_len();
    let max_ahead = (bytes.len() / header) as u64;
    let mut checked = 0usize;
    for at in from..bytes.len().saturating_sub(header - 1) {
        let rest = &bytes[at..];
        let seq = u64::from_le_bytes(rest[8..16].try_into().unwrap());
        if seq.wrapping_sub(expected) > max_ahead {
            continue;
        }
        match version.frame_size(rest) {
            Ok(size) if size <= rest.len() => {
                checked += size;
                if checked > 64 << 20 {
                    return Some(None);
                }
                if version.decode_frame(rest).is_ok() {
                    return Some(Some(at));
                }
            }
            _ => {}
        }
    }
    None
}

/// Payloads up to this long span several checksum chunks; Miri interprets every byte of the
/// CRC, so it gets shorter ones (the chunk boundaries are still crossed).
const MAX_PAYLOAD: usize = if cfg!(miri) { 2100 } else { 3000 };
/// Every prefix of the segment is scanned (quadratic in its length): fewer frames under Miri.
const MAX_FRAMES: usize = if cfg!(miri) { 5 } else { 12 };

proptest! {
    // Few cases under Miri (it interprets every CRC step); 256 otherwise. No failure file:
    // Miri's isolation refuses the working-directory lookup it needs.
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn crc_matches_the_crc32c_crate(data in proptest::collection::vec(any::<u8>(), 0..2048), split in any::<prop::sample::Index>()) {
        prop_assert_eq!(format::crc32c(&data), crc32c::crc32c(&data));
        let at = split.index(data.len() + 1);
        prop_assert_eq!(format::crc32c_append(format::crc32c(&data[..at]), &data[at..]), crc32c::crc32c(&data));
    }

    /// A segment of arbitrary records, markers and preamble frames scans clean with the right
    /// counts, and every proper prefix of it scans as a torn tail (never corrupt), ending at a
    /// frame boundary.
    #[test]
    fn segments_scan_and_every_prefix_is_a_torn_tail(
        first in any::<u64>().prop_map(|s| s >> 1),
        frames in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..40), 0u64..3, 0u64..3), 0..MAX_FRAMES),
    ) {
        let mut seg = format::encode_header_version(Version::V3, first).to_vec();
        let mut boundaries = vec![seg.len()];
        let (mut seq, mut records, mut dropped, mut refused) = (first, 0u64, 0u64, 0u64);
        let mut preambles = 0u64;
        for (kind, payload, d, r) in &frames {
            if *kind == 2 {
                format::encode_preamble_frame(&mut seg, seq, payload);
                preambles += 1;
                boundaries.push(seg.len());
                continue;
            }
            if *kind == 1 {
                seg.extend_from_slice(&format::encode_marker(seq, *d, *r));
            } else {
                format::encode_frame_with(&mut seg, seq, *d, *r, payload);
                seq += 1;
                records += 1;
            }
            dropped += d;
            refused += r;
            boundaries.push(seg.len());
        }
        let scan = format::scan_segment(&seg).unwrap();
        prop_assert_eq!(scan.version, Version::V3);
        prop_assert_eq!((scan.records, scan.dropped, scan.refused), (records, dropped, refused));
        prop_assert_eq!(scan.preambles, preambles);
        prop_assert_eq!(scan.end, ScanEnd::Clean);
        for cut in format::HEADER_LEN..seg.len() {
            let scan = format::scan_segment(&seg[..cut]).unwrap();
            let last = *boundaries.iter().rev().find(|&&b| b <= cut).unwrap();
            prop_assert_eq!(scan.valid_len, last as u64);
            if cut == last {
                prop_assert_eq!(scan.end, ScanEnd::Clean);
            } else {
                let torn = matches!(scan.end, ScanEnd::Torn { offset, .. } if offset == last as u64);
                prop_assert!(torn, "cut at {} gave {:?}", cut, scan.end);
            }
        }
    }

    /// The source-generic scan (and search for a valid frame after damage) over a source read
    /// in small pieces gives exactly the answer of the slice scan (and of the reference scan
    /// with the whole-frame decoder; payloads span several checksum chunks), for segments
    /// with arbitrary damage: flipped bytes, garbage inserted, a cut, a frame repeated later
    /// (a sequence break or a valid frame after damage), in either format version. It never
    /// reads past the end, and never asks for more than a few kilobytes at once.
    #[test]
    fn the_streamed_scan_equals_the_slice_scan(
        version in prop::sample::select(vec![Version::V1, Version::V2, Version::V3]),
        first in any::<u64>().prop_map(|s| s >> 1),
        frames in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..MAX_PAYLOAD)), 0..6),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        insert in proptest::option::of((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..64))),
        repeat in proptest::option::of(any::<prop::sample::Index>()),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        piece in 1usize..100,
        from in any::<prop::sample::Index>(),
    ) {
        let mut seg = format::encode_header_version(version, first).to_vec();
        let mut starts = Vec::new();
        let mut seq = first;
        for (kind, payload) in &frames {
            starts.push(seg.len());
            if version == Version::V1 {
                format::encode_frame_v1(&mut seg, seq, 1, payload);
                seq += 1;
            } else if *kind == 2 {
                // In a version-2 segment, damage: both scans must agree on it.
                format::encode_preamble_frame(&mut seg, seq, payload);
            } else if *kind == 1 {
                seg.extend_from_slice(&format::encode_marker(seq, 1, 2));
            } else {
                format::encode_frame_with(&mut seg, seq, 0, 3, payload);
                seq += 1;
            }
        }
        if let (Some(which), false) = (repeat, starts.is_empty()) {
            let start = starts[which.index(starts.len())];
            // (A preamble frame in a version-2 segment has version 3's layout.)
            let layout = if version == Version::V1 { version } else { Version::V3 };
            let size = layout.frame_size(&seg[start..]).unwrap();
            let copy = seg[start..start + size].to_vec();
            seg.extend_from_slice(&copy);
        }
        if let Some((at, garbage)) = &insert {
            let at = format::HEADER_LEN + at.index(seg.len() - format::HEADER_LEN + 1);
            seg.splice(at..at, garbage.iter().copied());
        }
        for (at, xor) in &flips {
            if seg.len() > format::HEADER_LEN {
                let at = format::HEADER_LEN + at.index(seg.len() - format::HEADER_LEN);
                seg[at] ^= xor;
            }
        }
        if let Some(cut) = cut {
            seg.truncate(cut.index(seg.len() + 1));
        }

        let mut src = Chunky { bytes: &seg, piece, reads: 0, largest: 0 };
        let streamed = format::scan_segment_in(&mut src);
        prop_assert_eq!(format::scan_segment(&seg), reference_scan(&seg));
        match (reference_scan(&seg), streamed) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(format::ScanError::Header(b))) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "slice scan {:?}, streamed scan {:?}", a, b),
        }
        let from = from.index(seg.len() + 2);
        let expected = first.wrapping_add(1);
        let reference = reference_resync(version, &seg, from, expected).is_some();
        prop_assert_eq!(format::valid_frame_after(version, &seg, from, expected), reference);
        prop_assert_eq!(
            reference,
            format::valid_frame_after_in(version, &mut src, from as u64, expected).unwrap()
        );
        prop_assert!(src.largest <= 4096, "a read of {} bytes", src.largest);
    }
}

/// Hostile length fields for [`decoders_never_panic_on_hostile_bytes`]: the edges of the valid
/// range, the flag bits, and values that would overflow a 32-bit `usize` if added carelessly.
const HOSTILE_LENGTHS: [u32; 10] = [
    0,
    1,
    31,
    32,
    format::MAX_PAYLOAD as u32,
    format::MAX_PAYLOAD as u32 + 1,
    u32::MAX - 31,
    u32::MAX,
    1 << 31,
    (1 << 31) | (1 << 30),
];

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 8 } else { 2048 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// What a firmware reading frames from flash or a UART must be able to rely on: every
    /// decoder returns an error, never panics, on any bytes — truncated frames, length fields
    /// at and past the limits (with a checksum forged to match, so the length is what is
    /// tested), zero-length frames — and whatever it accepts lies inside the bytes given.
    /// Run on a 32-bit target too (`--target i686-unknown-linux-gnu`).
    #[test]
    fn decoders_never_panic_on_hostile_bytes(
        version in prop::sample::select(vec![Version::V1, Version::V2, Version::V3]),
        mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        length in proptest::option::of(prop::sample::select(HOSTILE_LENGTHS.to_vec())),
        forge_crc in any::<bool>(),
        with_header in any::<bool>(),
        from in any::<usize>(),
        cut in any::<prop::sample::Index>(),
        expected in any::<u64>(),
    ) {
        let header = version.frame_header_len();
        if let (Some(len), true) = (length, bytes.len() >= 4) {
            bytes[..4].copy_from_slice(&len.to_le_bytes());
        }
        if forge_crc && bytes.len() >= header {
            // The frame CRC over bytes 0..4 and 8.. of what a length field claims (or of all
            // the bytes, if it claims more than there are).
            let claimed = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & 0x3fff_ffff;
            let end = (header as u64 + u64::from(claimed)).min(bytes.len() as u64) as usize;
            let crc = format::crc32c_append(format::crc32c(&bytes[..4]), &bytes[8..end]);
            bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        }
        let bytes = &bytes[..cut.index(bytes.len() + 1)];

        if let Ok(size) = version.frame_size(bytes) {
            prop_assert!(size >= header && size - header <= format::MAX_PAYLOAD);
        }
        if let Ok((frame, used)) = version.decode_frame(bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(frame.payload.len(), used - header);
            prop_assert!(!frame.marker || frame.payload.is_empty());
        }
        let _ = format::decode_frame(bytes);
        let _ = format::frame_size(bytes);
        let _ = (format::is_marker(bytes), format::is_preamble(bytes));
        let _ = format::decode_segment_header(bytes);
        let _ = format::valid_frame_after(version, bytes, from, expected);
        let _ = format::valid_frame_after(version, bytes, from % (bytes.len() + 1), expected);

        let mut seg = format::encode_header_version(version, expected).to_vec();
        if with_header {
            seg.extend_from_slice(bytes);
        } else {
            seg = bytes.to_vec();
        }
        if let Ok(scan) = format::scan_segment(&seg) {
            prop_assert!(scan.valid_len <= seg.len() as u64);
        }
    }
}
