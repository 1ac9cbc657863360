//! The Reader against hostile lengths, big logs and retention: what it allocates, how often
//! it lists the directory, and what it says when the writer deleted records it had not read.

use ringwal::format::{self, FRAME_HEADER_LEN};
use ringwal::{Reader, Retain, SyncPolicy, Writer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

struct Largest;

thread_local! {
    /// The largest single allocation this thread asked for.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the thread-local may be gone while a thread exits.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: forwards to the system allocator; the bookkeeping is a thread-local `Cell` with a
// const initialiser, which neither allocates nor recurses into the allocator.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// Runs `f` and returns what it returned and the largest single allocation it made.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(|l| l.get()))
}

fn write_segment(dir: &Path, first_seq: u64, records: u64) {
    let mut bytes = format::encode_header(first_seq).to_vec();
    for seq in first_seq..first_seq + records {
        format::encode_frame(&mut bytes, seq, 0, format!("record {seq}").as_bytes());
    }
    fs::write(dir.join(format::segment_file_name(first_seq)), bytes).unwrap();
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// A frame header declaring the largest payload there is, and no payload after it.
fn huge_frame_header(seq: u64) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[..4].copy_from_slice(&(format::MAX_PAYLOAD as u32).to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h
}

#[test]
fn a_length_past_the_end_of_the_file_allocates_nothing_for_it() {
    let dir = tempfile::tempdir().unwrap();
    // Newest segment: three records, then a header declaring 256 MiB. A record still being
    // written, or a torn tail: the end, and nothing allocated for it.
    write_segment(dir.path(), 0, 3);
    let newest = dir.path().join(format::segment_file_name(0));
    append(&newest, &huge_frame_header(3));
    let reader = Reader::open(dir.path()).unwrap();
    let (seqs, largest) = largest_allocation(|| {
        reader
            .iter()
            .map(|e| e.map(|e| e.seq))
            .collect::<io::Result<Vec<_>>>()
    });
    assert_eq!(seqs.unwrap(), [0, 1, 2]);
    assert!(largest < 1 << 20, "largest allocation {largest} bytes");

    // The same in an older segment is damage: an error naming file and offset, and still
    // nothing allocated for it.
    write_segment(dir.path(), 4, 1);
    let (result, largest) = largest_allocation(|| reader.iter().collect::<io::Result<Vec<_>>>());
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains(&newest.display().to_string()) && err.contains("offset"),
        "{err}"
    );
    assert!(largest < 1 << 20, "largest allocation {largest} bytes");
}

#[test]
fn max_record_bounds_what_one_record_may_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    emitter.emit(vec![1; 10]).unwrap();
    emitter.emit(vec![2; 300_000]).unwrap();
    emitter.emit(vec![3; 10]).unwrap();
    emitter.flush().unwrap();
    writer.shutdown().unwrap();

    let reader = Reader::open(dir.path()).unwrap().max_record(100_000);
    let (results, largest) = largest_allocation(|| reader.iter().collect::<Vec<_>>());
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0].as_ref().unwrap().payload, [1; 10]);
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("a record of 300000 bytes, more than this reader's limit of 100000"),
        "{err}"
    );
    assert!(largest < 300_000, "largest allocation {largest} bytes");

    // The default reads every record a writer writes.
    let all: Vec<_> = Reader::open(dir.path())
        .unwrap()
        .iter()
        .collect::<io::Result<_>>()
        .unwrap();
    assert_eq!(all[1].payload.len(), 300_000);
}

#[test]
fn a_reader_behind_retention_is_told_which_records_went_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for first in [0, 10, 20, 30] {
        write_segment(dir.path(), first, 10);
    }
    let reader = Reader::open(dir.path()).unwrap();
    let mut iter = reader.iter();
    assert_eq!(iter.next().unwrap().unwrap().seq, 0);
    // Retention deletes the oldest segments while the reader is in the first one (it keeps
    // reading that one: its file is open).
    for first in [0, 10, 20] {
        fs::remove_file(dir.path().join(format::segment_file_name(first))).unwrap();
    }
    for seq in 1..10 {
        assert_eq!(iter.next().unwrap().unwrap().seq, seq);
    }
    let err = iter.next().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("records 10 to 29 were deleted by retention before this reader got to them"),
        "{err}"
    );
    let rest: Vec<u64> = iter.by_ref().map(|e| e.unwrap().seq).collect();
    assert_eq!(rest, (30..40).collect::<Vec<_>>());

    // A segment missing in the middle is not retention: damage, and the iterator stops.
    let dir = tempfile::tempdir().unwrap();
    for first in [0, 10, 20] {
        write_segment(dir.path(), first, 10);
    }
    fs::remove_file(dir.path().join(format::segment_file_name(10))).unwrap();
    let mut iter = Reader::open(dir.path()).unwrap().iter();
    for seq in 0..10 {
        assert_eq!(iter.next().unwrap().unwrap().seq, seq);
    }
    let err = iter.next().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        err.to_string()
            .contains("segment starts at record 20, expected 10"),
        "{err}"
    );
    assert!(iter.next().is_none());
}

#[test]
fn a_live_reader_behind_a_writer_with_retention_sees_every_record_or_is_told() {
    // A real writer with tiny segments and retention, a reader that starts late: every
    // record is either read or reported deleted, in order, with no other error.
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .segment_bytes(512)
        .retain(Retain::Segments(3))
        .sync(SyncPolicy::Never)
        .start::<Vec<u8>>()
        .unwrap();
    emitter.emit(vec![0; 100]).unwrap();
    emitter.flush().unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let mut iter = reader.iter();
    let mut next = 0u64;
    let mut reported = 0;
    for round in 0..50u64 {
        for _ in 0..5 {
            emitter.emit(vec![round as u8; 100]).unwrap();
        }
        emitter.flush().unwrap();
        for item in iter.by_ref() {
            match item {
                Ok(entry) => {
                    assert_eq!(entry.seq, next);
                    next += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
                    let text = e.to_string();
                    let from = format!("records {next} to ");
                    assert!(text.contains(&from), "{text}");
                    let upto: u64 = text[text.find(&from).unwrap() + from.len()..]
                        .split(' ')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    next = upto + 1;
                    reported += 1;
                }
            }
        }
        if round % 7 == 0 && round < 49 {
            // Fall behind: let the writer delete what this reader has not read.
            for _ in 0..40 {
                emitter.emit(vec![9; 100]).unwrap();
            }
            emitter.flush().unwrap();
        }
    }
    assert_eq!(next, 1 + 50 * 5 + 7 * 40);
    assert!(reported > 0, "the reader never fell behind retention");
    writer.shutdown().unwrap();
}

/// Record `u64::MAX` is the last a log can hold. A crafted segment whose frames go on after it
/// (numbered 0, 1, ...) is damage the reader reports where it starts: before, the reader
/// ended there with no error, so `cat` showed a shorter log as if it were whole. Only the
/// frames after the last record are refused; those before are returned, and the scan used by
/// `verify` and recovery agrees (`Corruption::PastLastRecord` at the same offset).
#[test]
fn frames_after_record_u64_max_are_an_error_not_a_silent_end() {
    let dir = tempfile::tempdir().unwrap();
    let first = u64::MAX - 1;
    let mut bytes = format::encode_header(first).to_vec();
    format::encode_frame(&mut bytes, u64::MAX - 1, 0, b"next to last");
    format::encode_frame(&mut bytes, u64::MAX, 0, b"last");
    let past = bytes.len() as u64;
    format::encode_frame(&mut bytes, 0, 0, b"wrapped");
    format::encode_frame(&mut bytes, 1, 0, b"wrapped too");
    fs::write(dir.path().join(format::segment_file_name(first)), &bytes).unwrap();

    let mut it = Reader::open(dir.path()).unwrap().iter();
    let seqs: Vec<u64> = it.by_ref().take(2).map(|e| e.unwrap().seq).collect();
    assert_eq!(seqs, [u64::MAX - 1, u64::MAX]);
    let err = it.next().expect("an error, not the end").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("at offset {past}")) && msg.contains("the last a log can hold"),
        "{msg}"
    );
    assert!(it.next().is_none());

    let scan = format::scan_segment(&bytes).unwrap();
    assert_eq!(
        scan.end,
        format::ScanEnd::Corrupt {
            offset: past,
            reason: format::Corruption::PastLastRecord
        }
    );
}
