//! The `Record` impls ringwal provides: each encoding, byte for byte, and one round trip
//! through a writer and the `Reader`.

use ringwal::{Reader, Record, Writer};
use std::borrow::Cow;
use std::sync::Arc;

fn encoded(record: &impl Record) -> Vec<u8> {
    let mut out = Vec::new();
    record.encode(&mut out);
    out
}

#[test]
fn unsigned_integers_encode_little_endian() {
    assert_eq!(encoded(&0xabu8), [0xab]);
    assert_eq!(encoded(&0x0102u16), [0x02, 0x01]);
    assert_eq!(encoded(&0x0102_0304u32), [4, 3, 2, 1]);
    assert_eq!(encoded(&0x0102_0304_0506_0708u64), [8, 7, 6, 5, 4, 3, 2, 1]);
    let mut expected: Vec<u8> = (1..=16).collect();
    expected.reverse();
    assert_eq!(
        encoded(&0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128),
        expected
    );
    assert_eq!(encoded(&u64::MAX), [0xff; 8]);
}

#[test]
fn signed_integers_encode_little_endian_twos_complement() {
    assert_eq!(encoded(&-1i8), [0xff]);
    assert_eq!(encoded(&-2i16), [0xfe, 0xff]);
    assert_eq!(encoded(&0x0102_0304i32), [4, 3, 2, 1]);
    assert_eq!(
        encoded(&-2i64),
        [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    let mut expected = [0xff; 16];
    expected[0] = 0xfd;
    assert_eq!(encoded(&-3i128), expected);
    assert_eq!(encoded(&i32::MIN), [0, 0, 0, 0x80]);
}

#[test]
fn usize_and_isize_encode_as_eight_bytes_on_every_platform() {
    assert_eq!(encoded(&0x0102usize), [2, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(encoded(&-1isize), [0xff; 8]);
    assert_eq!(encoded(&isize::MIN), (isize::MIN as i64).to_le_bytes());
}

#[test]
fn shared_and_borrowed_text_and_bytes_encode_as_they_are() {
    assert_eq!(
        encoded(&Cow::<'static, str>::Borrowed("héllo")),
        "héllo".as_bytes()
    );
    assert_eq!(
        encoded(&Cow::<'static, str>::Owned("owned".to_string())),
        b"owned"
    );
    assert_eq!(
        encoded(&Cow::<'static, [u8]>::Borrowed(&[1, 2, 3])),
        [1, 2, 3]
    );
    assert_eq!(encoded(&Cow::<'static, [u8]>::Owned(vec![4, 5])), [4, 5]);
    assert_eq!(encoded(&Arc::<str>::from("arc")), b"arc");
    assert_eq!(encoded(&Arc::<[u8]>::from(&[9u8, 8][..])), [9, 8]);
    assert_eq!(encoded(&Box::<str>::from("box")), b"box");
    assert_eq!(encoded(&Arc::<str>::from("")), b"");
}

#[test]
fn integers_and_arcs_round_trip_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<u64>().unwrap();
    for i in 0..10u64 {
        emitter.emit(i * 1_000_000_007).unwrap();
    }
    writer.shutdown().unwrap();
    let back: Vec<u64> = Reader::open(dir.path())
        .unwrap()
        .iter()
        .map(|e| u64::from_le_bytes(e.unwrap().payload.try_into().unwrap()))
        .collect();
    assert_eq!(
        back,
        (0..10u64).map(|i| i * 1_000_000_007).collect::<Vec<_>>()
    );

    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<Arc<str>>().unwrap();
    let shared: Arc<str> = Arc::from("shared line");
    emitter.emit(Arc::clone(&shared)).unwrap();
    emitter.emit(shared).unwrap();
    writer.shutdown().unwrap();
    let back: Vec<Vec<u8>> = Reader::open(dir.path())
        .unwrap()
        .iter()
        .map(|e| e.unwrap().payload)
        .collect();
    assert_eq!(back, [b"shared line".to_vec(), b"shared line".to_vec()]);
}
