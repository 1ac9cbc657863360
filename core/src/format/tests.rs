extern crate std;

use std::vec::Vec;

use super::*;

fn segment(version: Version, first: u64, frames: &[u8]) -> Vec<u8> {
    let mut s = encode_header_version(version, first).to_vec();
    s.extend_from_slice(frames);
    s
}

#[test]
fn frame_round_trip_and_fields() {
    let mut buf = Vec::new();
    encode_frame_with(&mut buf, 9, 3, 4, b"abc");
    assert_eq!(buf.len(), FRAME_HEADER_LEN + 3);
    let (f, used) = decode_frame(&buf).unwrap();
    assert_eq!(used, buf.len());
    assert_eq!(
        f,
        Frame {
            seq: 9,
            dropped_before: 3,
            refused_before: 4,
            marker: false,
            preamble: false,
            payload: b"abc"
        }
    );
    // Every single-bit flip is caught (CRC or length check).
    for bit in 0..buf.len() * 8 {
        let mut bad = buf.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(decode_frame(&bad).is_err(), "flip of bit {bit} undetected");
    }
}

#[test]
fn into_slice_matches_vec_encoding_and_checks_room() {
    let mut v = Vec::new();
    encode_frame_with(&mut v, 1, 2, 3, b"payload");
    let mut out = [0u8; 64];
    let n = encode_frame_into(&mut out, 1, 2, 3, b"payload").unwrap();
    assert_eq!(&out[..n], &v[..]);
    assert_eq!(
        encode_frame_into(&mut out[..10], 1, 2, 3, b"payload"),
        Err(EncodeError::BufferTooSmall { needed: n })
    );
}

#[test]
fn marker_round_trip() {
    let m = encode_marker(42, 1, 2);
    let (f, used) = decode_frame(&m).unwrap();
    assert_eq!(used, FRAME_HEADER_LEN);
    assert!(f.marker);
    assert_eq!((f.seq, f.dropped_before, f.refused_before), (42, 1, 2));
    assert!(f.payload.is_empty());
}

#[test]
fn renumber_keeps_marker_flag_and_payload() {
    let mut m = encode_marker(1, 0, 5).to_vec();
    renumber_frame(&mut m, 7, 1, 6);
    let (f, _) = decode_frame(&m).unwrap();
    assert!(f.marker);
    assert_eq!((f.seq, f.dropped_before, f.refused_before), (7, 1, 6));
    let mut r = Vec::new();
    encode_frame(&mut r, 1, 0, b"xy");
    renumber_frame(&mut r, 8, 2, 3);
    let (f, _) = decode_frame(&r).unwrap();
    assert_eq!(
        (f.seq, f.dropped_before, f.refused_before, f.payload),
        (8, 2, 3, &b"xy"[..])
    );
}

#[test]
fn reserved_length_bits_and_marker_with_payload_are_invalid() {
    let mut r = Vec::new();
    encode_frame(&mut r, 1, 0, b"xy");
    for raw in [
        2u32 | 1 << 29,
        2 | MARKER_FLAG,
        2 | MARKER_FLAG | PREAMBLE_FLAG,
    ] {
        let mut bad = r.clone();
        bad[0..4].copy_from_slice(&raw.to_le_bytes());
        assert_eq!(frame_size(&bad), Err(FrameError::BadLength(raw)));
        assert_eq!(
            Version::V2.frame_size(&bad),
            Err(FrameError::BadLength(raw))
        );
    }
    // Bit 30 is a preamble frame in version 3, reserved in version 2.
    let mut pre = r.clone();
    pre[0..4].copy_from_slice(&(2u32 | PREAMBLE_FLAG).to_le_bytes());
    assert_eq!(frame_size(&pre), Ok(FRAME_HEADER_LEN + 2));
    assert_eq!(
        Version::V2.frame_size(&pre),
        Err(FrameError::BadLength(2 | PREAMBLE_FLAG))
    );
    let too_long = (MAX_PAYLOAD as u32) + 1;
    let mut bad = r.clone();
    bad[0..4].copy_from_slice(&too_long.to_le_bytes());
    assert_eq!(frame_size(&bad), Err(FrameError::BadLength(too_long)));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "fills 256 MiB: hours under Miri; no unsafe code involved"
)]
fn seal_refuses_oversized_and_finish_truncates() {
    let mut v = Vec::new();
    v.extend_from_slice(b"keep");
    let start = begin_frame(&mut v);
    v.resize(start + FRAME_HEADER_LEN + MAX_PAYLOAD + 1, 0);
    assert_eq!(
        finish_frame(&mut v, start, 0, 0, 0),
        Err(TooLarge(MAX_PAYLOAD + 1))
    );
    assert_eq!(v, b"keep");
    assert_eq!(seal_frame(&mut [0u8; 5], 0, 0, 0), Err(TooLarge(0)));
}

#[test]
fn version_1_segments_still_read() {
    let mut frames = Vec::new();
    encode_frame_v1(&mut frames, 5, 0, b"old");
    encode_frame_v1(&mut frames, 6, 2, b"older");
    let seg = segment(Version::V1, 5, &frames);
    let h = decode_segment_header(&seg).unwrap();
    assert_eq!(
        h,
        SegmentHeader {
            version: Version::V1,
            first_seq: 5
        }
    );
    let (f, used) = Version::V1.decode_frame(&seg[HEADER_LEN..]).unwrap();
    assert_eq!(used, 24 + 3);
    assert_eq!(
        (f.seq, f.refused_before, f.marker, f.payload),
        (5, 0, false, &b"old"[..])
    );
    let scan = scan_segment(&seg).unwrap();
    assert_eq!(scan.version, Version::V1);
    assert_eq!(
        (scan.records, scan.dropped, scan.gaps, scan.end),
        (2, 2, 1, ScanEnd::Clean)
    );
    // A version-1 frame is not a version-2 one.
    assert!(decode_frame(&seg[HEADER_LEN..]).is_err());
}

#[test]
fn unknown_versions_are_refused() {
    let mut h = encode_header(0);
    h[8..12].copy_from_slice(&4u32.to_le_bytes());
    let crc = crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(decode_header(&h), Err(HeaderError::UnsupportedVersion(4)));
}

#[test]
fn scan_counts_markers_without_consuming_sequence_numbers() {
    let mut frames = Vec::new();
    encode_frame_with(&mut frames, 10, 0, 1, b"a");
    frames.extend_from_slice(&encode_marker(11, 2, 3));
    encode_frame_with(&mut frames, 11, 0, 0, b"b");
    frames.extend_from_slice(&encode_marker(12, 0, 4));
    let seg = segment(Version::V2, 10, &frames);
    let scan = scan_segment(&seg).unwrap();
    assert_eq!(scan.records, 2);
    assert_eq!(scan.markers, 2);
    assert_eq!((scan.dropped, scan.refused, scan.gaps), (2, 8, 3));
    assert_eq!(scan.next_seq(), 12);
    assert_eq!(scan.end, ScanEnd::Clean);
    assert_eq!(scan.valid_len, seg.len() as u64);
}

#[test]
fn a_marker_with_a_wrong_sequence_number_is_a_break() {
    let mut frames = Vec::new();
    encode_frame(&mut frames, 0, 0, b"a");
    frames.extend_from_slice(&encode_marker(5, 0, 1));
    let seg = segment(Version::V2, 0, &frames);
    let scan = scan_segment(&seg).unwrap();
    assert_eq!(
        scan.end,
        ScanEnd::Corrupt {
            offset: (HEADER_LEN + FRAME_HEADER_LEN + 1) as u64,
            reason: Corruption::SequenceBreak {
                expected: 1,
                found: 5
            }
        }
    );
}

#[test]
fn an_all_zero_frame_header_is_never_a_frame() {
    // The resync after a bad frame steps over runs of zeros relying on this.
    for version in [Version::V1, Version::V2, Version::V3] {
        let zeros = [0u8; 64];
        assert!(version.decode_frame(&zeros).is_err(), "{version:?}");
    }
}

/// A hole of zeros (a sparse file) after damage, then a valid frame: the resync steps over
/// the zeros and finds it wherever it starts, and without it the damage is a torn tail.
#[test]
fn a_valid_frame_after_a_run_of_zeros_is_found() {
    for (version, encode) in [
        (
            Version::V1,
            encode_frame_v1 as fn(&mut Vec<u8>, u64, u64, &[u8]),
        ),
        (Version::V2, encode_frame),
    ] {
        // The frame after the hole may itself start with zero bytes (an empty payload: a
        // zero length field; 256 bytes: a zero low byte).
        let payloads: [&[u8]; 3] = [b"second", b"", &[7u8; 256]];
        for (hole, payload) in [0usize, 1, 7, 8, 31, 32, 33, 2047, 2048, 2049, 5000]
            .into_iter()
            .flat_map(|h| payloads.into_iter().map(move |p| (h, p)))
        {
            let mut frames = Vec::new();
            encode(&mut frames, 0, 0, b"first");
            frames.push(0xFF); // a torn byte
            frames.resize(frames.len() + hole, 0);
            let torn = segment(version, 0, &frames);
            let scan = scan_segment(&torn).unwrap();
            assert!(
                matches!(scan.end, ScanEnd::Torn { .. }),
                "{version:?} hole {hole}: {:?}",
                scan.end
            );
            encode(&mut frames, 1, 0, payload);
            let damaged = segment(version, 0, &frames);
            let scan = scan_segment(&damaged).unwrap();
            assert!(
                matches!(
                    scan.end,
                    ScanEnd::Corrupt {
                        reason: Corruption::ValidFrameFollows { .. },
                        ..
                    }
                ),
                "{version:?} hole {hole}: {:?}",
                scan.end
            );
        }
    }
}

/// Zeros after the first record of a log's first segment have sequence number 0 in every
/// header, which the resync's sequence filter lets through: they must still not use up its
/// budget (64 MiB of candidates) and end in "unverifiable".
#[test]
#[cfg_attr(
    miri,
    ignore = "scans 3 MiB: too slow under Miri; runs in every normal test run"
)]
fn a_hole_of_zeros_at_the_start_of_a_log_is_a_torn_tail() {
    let mut frames = Vec::new();
    frames.push(0xFF);
    frames.resize(3 << 20, 0);
    let scan = scan_segment(&segment(Version::V2, 0, &frames)).unwrap();
    assert!(
        matches!(scan.end, ScanEnd::Torn { offset, .. } if offset == HEADER_LEN as u64),
        "{:?}",
        scan.end
    );
    encode_frame(&mut frames, 0, 0, b"after the hole");
    let scan = scan_segment(&segment(Version::V2, 0, &frames)).unwrap();
    assert!(
        matches!(
            scan.end,
            ScanEnd::Corrupt {
                reason: Corruption::ValidFrameFollows { .. },
                ..
            }
        ),
        "{:?}",
        scan.end
    );
}

#[test]
fn torn_tail_versus_damage_inside() {
    let mut frames = Vec::new();
    encode_frame(&mut frames, 0, 0, b"first");
    encode_frame(&mut frames, 1, 0, b"second");
    let seg = segment(Version::V2, 0, &frames);
    let torn = &seg[..seg.len() - 3];
    let scan = scan_segment(torn).unwrap();
    assert_eq!(scan.records, 1);
    assert!(matches!(scan.end, ScanEnd::Torn { offset, .. } if offset == scan.valid_len));
    let mut damaged = seg.clone();
    damaged[HEADER_LEN + FRAME_HEADER_LEN] ^= 1;
    let scan = scan_segment(&damaged).unwrap();
    assert_eq!(scan.records, 0);
    assert!(matches!(
        scan.end,
        ScanEnd::Corrupt {
            reason: Corruption::ValidFrameFollows { .. },
            ..
        }
    ));
}

#[test]
fn file_names() {
    let mut buf = [0u8; SEGMENT_NAME_LEN];
    assert_eq!(
        segment_file_name_into(u64::MAX, &mut buf),
        "18446744073709551615.rwl"
    );
    assert_eq!(
        parse_segment_file_name("18446744073709551615.rwl"),
        Some(u64::MAX)
    );
    assert_eq!(parse_segment_file_name("18446744073709551616.rwl"), None);
    assert_eq!(segment_file_name(0), "00000000000000000000.rwl");
}

#[test]
fn preamble_frames_are_version_3_only_and_never_markers() {
    let mut buf = Vec::new();
    encode_preamble_frame(&mut buf, 12, b"ctx");
    assert!(is_preamble(&buf) && !is_marker(&buf));
    let (f, used) = Version::V3.decode_frame(&buf).unwrap();
    assert_eq!(used, buf.len());
    assert!(f.preamble && !f.marker);
    assert_eq!(
        (f.seq, f.dropped_before, f.refused_before, f.payload),
        (12, 0, 0, &b"ctx"[..])
    );
    // Bit 30 is reserved in version 2.
    assert!(matches!(
        Version::V2.decode_frame(&buf),
        Err(FrameError::BadLength(_))
    ));
    // Marker and preamble at once, and bit 29, are invalid (checked before the CRC).
    let mut both = encode_marker(3, 0, 0);
    let raw = u32::from_le_bytes(both[0..4].try_into().unwrap()) | PREAMBLE_FLAG;
    both[0..4].copy_from_slice(&raw.to_le_bytes());
    assert!(matches!(
        Version::V3.decode_frame(&both),
        Err(FrameError::BadLength(_))
    ));
    let mut bit29 = buf.clone();
    bit29[3] |= 0x20;
    assert!(matches!(
        Version::V3.decode_frame(&bit29),
        Err(FrameError::BadLength(_))
    ));
    // Records and markers read the same in versions 2 and 3.
    let mut rec = Vec::new();
    encode_frame_with(&mut rec, 5, 1, 2, b"r");
    rec.extend_from_slice(&encode_marker(6, 0, 7));
    for version in [Version::V2, Version::V3] {
        let (a, n) = version.decode_frame(&rec).unwrap();
        let (b, _) = version.decode_frame(&rec[n..]).unwrap();
        assert_eq!(
            (
                a.seq,
                a.marker,
                a.preamble,
                b.seq,
                b.marker,
                b.refused_before
            ),
            (5, false, false, 6, true, 7)
        );
    }
    // A preamble frame takes no sequence number: the record after it has the same.
    let mut seg = encode_header_version(Version::V3, 40).to_vec();
    encode_preamble_frame(&mut seg, 40, b"a");
    encode_preamble_frame(&mut seg, 40, b"b");
    encode_frame(&mut seg, 40, 0, b"first");
    let scan = scan_segment(&seg).unwrap();
    assert_eq!(
        (scan.records, scan.preambles, scan.next_seq(), scan.end),
        (1, 2, 41, ScanEnd::Clean)
    );
    // In a version-2 segment (what `encode_header` makes) the same frames are damage.
    let mut v2 = encode_header(40).to_vec();
    v2.extend_from_slice(&seg[HEADER_LEN..]);
    let scan = scan_segment(&v2).unwrap();
    assert_eq!(scan.version, Version::V2);
    assert_eq!(
        (scan.records, scan.preambles, scan.valid_len),
        (0, 0, HEADER_LEN as u64)
    );
}

/// A source with a hole it knows of: `head`, then zeros up to `tail_at`, then `tail`. It
/// counts the bytes read.
struct Holey {
    head: Vec<u8>,
    tail_at: u64,
    tail: Vec<u8>,
    read: u64,
}

impl ReadAt for Holey {
    type Error = core::convert::Infallible;

    fn len(&self) -> u64 {
        self.tail_at + self.tail.len() as u64
    }

    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.read += buf.len() as u64;
        for (i, b) in buf.iter_mut().enumerate() {
            let at = offset + i as u64;
            *b = if at < self.head.len() as u64 {
                self.head[at as usize]
            } else if at >= self.tail_at {
                self.tail[(at - self.tail_at) as usize]
            } else {
                0
            };
        }
        Ok(())
    }

    fn data_from(&mut self, offset: u64) -> Result<u64, Self::Error> {
        Ok(
            if (self.head.len() as u64..self.tail_at).contains(&offset) {
                self.tail_at
            } else {
                offset
            },
        )
    }
}

/// A hole of 2^62 bytes after damage (a hostile sparse file) is stepped over with what the
/// source knows of it, not read: a torn tail if nothing follows, the frame after it found.
#[test]
fn a_hole_the_source_maps_is_stepped_over_unread() {
    let mut head = Vec::new();
    encode_frame(&mut head, 0, 0, b"first");
    head.push(0xFF); // a torn byte
    let head = segment(Version::V2, 0, &head);
    let hole_end = 1u64 << 62;
    let mut src = Holey {
        head: head.clone(),
        tail_at: hole_end,
        tail: Vec::new(),
        read: 0,
    };
    let scan = scan_segment_in(&mut src).unwrap();
    assert!(matches!(scan.end, ScanEnd::Torn { .. }), "{:?}", scan.end);
    assert_eq!(scan.records, 1);
    assert!(src.read < 1 << 20, "read {} bytes", src.read);

    let mut tail = Vec::new();
    encode_frame(&mut tail, 1, 0, b"after the hole");
    let mut src = Holey {
        head,
        tail_at: hole_end,
        tail,
        read: 0,
    };
    let scan = scan_segment_in(&mut src).unwrap();
    assert!(
        matches!(
            scan.end,
            ScanEnd::Corrupt {
                reason: Corruption::ValidFrameFollows { at, .. },
                ..
            } if at == hole_end
        ),
        "{:?}",
        scan.end
    );
    assert!(src.read < 1 << 20, "read {} bytes", src.read);
}

/// Record `u64::MAX` is the last a log holds (the std `Reader` ends there; its writer refuses
/// to go near it). A framer started near it (a number read back from corrupt flash) writes up
/// to it and then refuses, counting the refused records as dropped: it must not panic on the
/// overflow (a build with overflow checks, as a firmware's dev profile), nor wrap to 0 and
/// write records no reader returns.
#[test]
fn a_framer_stops_after_sequence_number_u64_max() {
    let mut out = Vec::new();
    let mut sink = |b: &[u8]| -> Result<(), core::convert::Infallible> {
        out.extend_from_slice(b);
        Ok(())
    };
    let mut framer = Framer::new(u64::MAX - 1);
    assert_eq!(framer.write_record(b"a", &mut sink), Ok(u64::MAX - 1));
    assert!(!framer.exhausted());
    assert_eq!(framer.write_record(b"last", &mut sink), Ok(u64::MAX));
    assert!(framer.exhausted());
    assert_eq!(
        framer.write_record(b"one too many", &mut sink),
        Err(FramerError::Exhausted)
    );
    let encode = |v: &u8, buf: &mut [u8]| {
        buf[0] = *v;
        Some(1)
    };
    assert_eq!(
        framer.write_all([1u8, 2], &mut [0u8; 4], encode, &mut sink),
        Ok(0)
    );
    framer.note_lost(0, 1);
    framer.finish(&mut sink).unwrap();
    let scan = scan_segment(&out).unwrap();
    assert_eq!(scan.end, ScanEnd::Clean);
    assert_eq!((scan.records, scan.markers), (2, 0));
    assert_eq!(scan.valid_len, out.len() as u64);
}

/// A segment whose frames go on past record `u64::MAX` (numbered 0 after it: a crafted file,
/// no writer makes one) is corrupt where the first of them starts, not clean: the std `Reader`
/// would not return them. Before the check the scan wrapped and called it clean.
#[test]
fn frames_after_record_u64_max_are_corruption() {
    let mut seg = encode_header(u64::MAX - 1).to_vec();
    encode_frame(&mut seg, u64::MAX - 1, 0, b"a");
    encode_frame(&mut seg, u64::MAX, 0, b"last");
    let last_end = seg.len() as u64;
    let clean = scan_segment(&seg).unwrap();
    assert_eq!((clean.end, clean.records), (ScanEnd::Clean, 2));
    encode_frame(&mut seg, 0, 0, b"wrapped");
    let scan = scan_segment(&seg).unwrap();
    assert_eq!(
        scan.end,
        ScanEnd::Corrupt {
            offset: last_end,
            reason: Corruption::PastLastRecord
        }
    );
    assert_eq!((scan.records, scan.valid_len), (2, last_end));
}

/// `Framer::write_to` over an `embedded_io::Write` that takes a few bytes per call (as a UART
/// FIFO does) writes the same stream as a closure sink, and a failing writer's error comes
/// back as `FramerError::Write`.
#[cfg(feature = "embedded-io")]
#[test]
fn framer_writes_through_embedded_io() {
    struct Uart {
        out: Vec<u8>,
        per_call: usize,
        fail_after: usize,
    }
    #[derive(Debug, PartialEq)]
    struct Broken;
    impl embedded_io::Error for Broken {
        fn kind(&self) -> embedded_io::ErrorKind {
            embedded_io::ErrorKind::Other
        }
    }
    impl embedded_io::ErrorType for Uart {
        type Error = Broken;
    }
    impl embedded_io::Write for Uart {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
            if self.out.len() >= self.fail_after {
                return Err(Broken);
            }
            let n = buf.len().min(self.per_call);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> Result<(), Broken> {
            Ok(())
        }
    }

    let mut uart = Uart {
        out: Vec::new(),
        per_call: 3,
        fail_after: usize::MAX,
    };
    let mut framer = Framer::new(5);
    let mut sink = Framer::write_to(&mut uart);
    assert_eq!(framer.write_record(b"boot", &mut sink), Ok(5));
    assert_eq!(framer.write_record(b"", &mut sink), Ok(6));
    framer.note_lost(0, 1);
    framer.finish(&mut sink).unwrap();
    drop(sink);
    let scan = scan_segment(&uart.out).unwrap();
    assert_eq!(scan.end, ScanEnd::Clean);
    assert_eq!((scan.first_seq, scan.records, scan.refused), (5, 2, 1));

    let mut broken = Uart {
        out: Vec::new(),
        per_call: 64,
        fail_after: HEADER_LEN,
    };
    let mut framer = Framer::new(0);
    let mut sink = Framer::write_to(&mut broken);
    assert_eq!(
        framer.write_record(b"x", &mut sink),
        Err(FramerError::Write(Broken))
    );
    assert_eq!(framer.next_seq(), 0);
}

/// A sink that fails mid-`write_all`: the value being written is counted as dropped, and the
/// next segment (`next_segment`) starts at the unused sequence number and reports it with the
/// losses noted before, so the two segments' gaps add up to every value not written.
#[test]
fn a_write_error_in_write_all_counts_the_value_and_the_next_segment_reports_it() {
    let mut first = Vec::new();
    let mut framer = Framer::new(10);
    framer.note_lost(0, 4);
    // Room for the segment header and one record of 3 bytes; the second record's frame fails.
    let room = HEADER_LEN + FRAME_HEADER_LEN + 3;
    let mut sink = |b: &[u8]| -> Result<(), &'static str> {
        if first.len() + b.len() > room {
            return Err("full");
        }
        first.extend_from_slice(b);
        Ok(())
    };
    let encode = |v: &u8, buf: &mut [u8]| {
        buf[..3].fill(*v);
        Some(3)
    };
    let mut buf = [0u8; 8];
    let mut values = [1u8, 2, 3].into_iter();
    assert_eq!(
        framer.write_all(&mut values, &mut buf, encode, &mut sink),
        Err("full")
    );
    assert_eq!(values.as_slice(), [3], "stops at the failing value");
    assert_eq!(framer.next_seq(), 11);
    let scan = scan_segment(&first).unwrap();
    assert_eq!((scan.first_seq, scan.records, scan.refused), (10, 1, 4));

    let mut next = framer.next_segment();
    assert_eq!(next.first_seq(), 11);
    let mut second = Vec::new();
    let mut sink = |b: &[u8]| -> Result<(), ()> {
        second.extend_from_slice(b);
        Ok(())
    };
    next.note_lost(0, 1);
    assert_eq!(next.write_all(values, &mut buf, encode, &mut sink), Ok(1));
    let scan = scan_segment(&second).unwrap();
    assert_eq!(
        (scan.first_seq, scan.records, scan.dropped, scan.refused),
        (11, 1, 1, 1),
        "value 2, lost to the failed write, is counted where the next segment starts"
    );
}
