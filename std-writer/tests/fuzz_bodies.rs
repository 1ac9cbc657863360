//! The fuzz targets' bodies (`fuzz/src/lib.rs`), driven on stable: by proptest with random
//! bytes, and by the committed seeds in `fuzz/seeds/<target>/` (crash inputs the fuzzer found
//! are kept there as regression tests).

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod bodies;

use proptest::prelude::*;
use std::path::Path;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs `body` on every seed of `target`; fails if there are none (a seed directory that
/// went missing must not pass silently).
fn seeds(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        body(&data);
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn ring_ops_seeds() {
    seeds("ring_ops", bodies::ring_ops);
}

#[test]
fn byte_ring_ops_seeds() {
    seeds("byte_ring_ops", bodies::byte_ring_ops);
}

#[test]
fn segment_open_seeds() {
    seeds("segment_open", bodies::segment_open);
}

#[test]
fn reader_dir_seeds() {
    seeds("reader_dir", bodies::reader_dir);
}

#[test]
fn frame_roundtrip_seeds() {
    seeds("frame_roundtrip", bodies::frame_roundtrip);
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn ring_ops(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        bodies::ring_ops(&data);
    }

    #[test]
    fn byte_ring_ops(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        bodies::byte_ring_ops(&data);
    }

    #[test]
    fn frame_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        bodies::frame_roundtrip(&data);
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn segment_open_random_tail(
        records in 0u64..5,
        tail in proptest::collection::vec(any::<u8>(), 0..200),
        cut in any::<proptest::sample::Index>(),
    ) {
        // Mostly-valid segments: a header, some valid frames, then garbage or a cut.
        let mut data = ringwal::format::encode_header(3).to_vec();
        for seq in 3..3 + records {
            ringwal::format::encode_frame(&mut data, seq, 0, b"payload");
        }
        data.extend_from_slice(&tail);
        let keep = cut.index(data.len() + 1);
        bodies::segment_open(&data[..keep]);
    }

    #[test]
    fn segment_open_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        bodies::segment_open(&data);
    }

    #[test]
    fn reader_dir(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        bodies::reader_dir(&data);
    }
}
