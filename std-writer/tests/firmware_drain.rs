//! The `no_std` drain (issue 19): a `static` ring drained through `ringwal_core::format::Framer`
//! into a plain byte buffer reads back, byte for byte and with its losses, through the std
//! `Reader` — the same format, one implementation.

use ringwal::format::{self, Framer};
use ringwal::Reader;
use ringwal_core::EvictingRing;
use std::convert::Infallible;

static RING: EvictingRing<u32, 8> = EvictingRing::new();

#[test]
fn a_static_ring_drained_into_a_buffer_reads_back_with_its_losses() {
    let mut flash: Vec<u8> = Vec::new();
    let mut sink = |b: &[u8]| -> Result<(), Infallible> {
        flash.extend_from_slice(b);
        Ok(())
    };
    let mut framer = Framer::new(100);
    let mut consumer = RING.consumer().unwrap();
    let mut buf = [0u8; 16];
    let encode = |v: &u32, out: &mut [u8]| {
        let text = format!("reading {v}");
        let bytes = text.as_bytes();
        // A value that does not fit the encode buffer counts as dropped.
        (bytes.len() <= out.len()).then(|| {
            out[..bytes.len()].copy_from_slice(bytes);
            bytes.len()
        })
    };
    let mut expected = Vec::new();
    let mut evicted_seen = 0;
    // The main loop's drain: pop, then ask the consumer how many positions it stepped over
    // (evictions are found as the consumer passes them), then frame the value.
    let mut drain = |framer: &mut Framer, buf: &mut [u8], sink: &mut _| {
        let mut wrote = 0;
        while let Some(v) = consumer.pop() {
            let evicted = consumer.evicted();
            framer.note_lost(evicted - evicted_seen, 0);
            evicted_seen = evicted;
            wrote += framer.write_all([v], buf, encode, sink).unwrap();
        }
        wrote
    };
    for round in 0..5u32 {
        // An "interrupt" pushes 10 values into the 8-slot ring: the two oldest are evicted.
        for i in 0..10 {
            let _ = RING.force_push(round * 10 + i);
        }
        for i in 2..10 {
            let v = round * 10 + i;
            expected.push((
                format!("reading {v}").into_bytes(),
                if i == 2 { 2 } else { 0 },
            ));
        }
        assert_eq!(drain(&mut framer, &mut buf, &mut sink), 8);
    }
    // One value too long to encode is dropped, and shows in the trailing marker.
    let _ = RING.force_push(u32::MAX);
    assert_eq!(drain(&mut framer, &mut buf[..12], &mut sink), 0);
    framer.note_lost(0, 4);
    framer.finish(&mut sink).unwrap();

    let scan = format::scan_segment(&flash).unwrap();
    assert_eq!(scan.end, format::ScanEnd::Clean);
    assert_eq!((scan.records, scan.dropped, scan.refused), (40, 11, 4));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format::segment_file_name(100)), &flash).unwrap();
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    let got: Vec<_> = iter
        .by_ref()
        .map(|e| {
            let e = e.unwrap();
            (e.seq, e.payload, e.dropped_before)
        })
        .collect();
    let want: Vec<_> = expected
        .into_iter()
        .enumerate()
        .map(|(i, (p, lost))| (100 + i as u64, p, lost))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        iter.trailing_gap(),
        ringwal::Gap {
            dropped: 1,
            refused: 4
        }
    );
}
