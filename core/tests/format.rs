//! The frame codec against independent references: CRC32C against the `crc32c` crate, and
//! frames round-tripped and scanned for arbitrary contents.
#![cfg(feature = "format")]

use proptest::prelude::*;
use ringwal_core::format::{self, ScanEnd, Version};

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

    /// A segment of arbitrary records and markers scans clean with the right counts, and every
    /// proper prefix of it scans as a torn tail (never corrupt), ending at a frame boundary.
    #[test]
    fn segments_scan_and_every_prefix_is_a_torn_tail(
        first in any::<u64>().prop_map(|s| s >> 1),
        frames in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40), 0u64..3, 0u64..3), 0..12),
    ) {
        let mut seg = format::encode_header(first).to_vec();
        let mut boundaries = vec![seg.len()];
        let (mut seq, mut records, mut dropped, mut refused) = (first, 0u64, 0u64, 0u64);
        for (marker, payload, d, r) in &frames {
            if *marker {
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
        prop_assert_eq!(scan.version, Version::V2);
        prop_assert_eq!((scan.records, scan.dropped, scan.refused), (records, dropped, refused));
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
}
