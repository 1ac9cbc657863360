//! A sparse 1 GiB segment (a valid header and records, then a hole of zero bytes) is checked
//! in constant memory: recovery and the Reader stream it instead of reading it whole (issue
//! 11, item 5). Memory is measured by a counting global allocator: the peak of live heap
//! bytes while the operation runs.

#[path = "support/deadline.rs"]
mod deadline;

use ringwal::format::encode_frame;
use ringwal::{Batch, LogOptions, Reader, SegmentLog, Sink};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: forwards to the system allocator; the counters are atomics, which neither allocate
// nor recurse into the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests measure one process-wide peak: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The largest live heap while `f` runs, above what was live before it.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

const GIB: u64 = 1 << 30;
/// Far below the 1 GiB a whole-file read takes; far above the 64 KiB window and a few
/// records.
const LIMIT: usize = 32 << 20;

fn payload(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

/// A log of `n` records (seq from 0), in segments of at most `segment_bytes`.
fn make_log(dir: &Path, n: u64, segment_bytes: u64) {
    let mut log = SegmentLog::open(
        dir,
        LogOptions {
            segment_bytes,
            ..LogOptions::default()
        },
    )
    .unwrap();
    for i in 0..n {
        let mut frame = Vec::new();
        encode_frame(&mut frame, i, 0, &payload(i));
        log.append(&Batch::new(&frame, i, 1).unwrap()).unwrap();
    }
    log.sync().unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut s: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rwl"))
        .collect();
    s.sort();
    s
}

/// Extends `path` to 1 GiB with a hole (zero bytes that take no disk space); returns its
/// length before.
fn make_sparse(path: &Path) -> u64 {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let before = file.metadata().unwrap().len();
    file.set_len(GIB).unwrap();
    before
}

#[test]
fn recovery_of_a_sparse_1gib_newest_segment_takes_constant_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 20, 256);
    let segs = segments(dir.path());
    assert!(segs.len() > 1, "{segs:?}");
    let newest = segs.last().unwrap();
    let valid = make_sparse(newest);

    let (log, peak) = peak_during(|| SegmentLog::open(dir.path(), LogOptions::default()));
    let log = log.unwrap();
    let rec = log.recovery();
    // The hole is a torn tail: cut back to the last record, nothing lost.
    assert_eq!(rec.next_seq, 20, "{rec:?}");
    assert_eq!(rec.bytes_cut, GIB - valid, "{rec:?}");
    assert_eq!(rec.truncated.as_deref(), Some(newest.as_path()), "{rec:?}");
    assert_eq!(std::fs::metadata(newest).unwrap().len(), valid);
    eprintln!("recovery: peak {peak} bytes of heap");
    assert!(peak < LIMIT, "recovery used {peak} bytes of heap");
    drop(log);
    let all: Vec<_> = Reader::open(dir.path())
        .unwrap()
        .iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 20);
}

#[test]
fn recovery_past_a_removed_segment_scans_a_sparse_previous_one_in_constant_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 20, 256);
    let segs = segments(dir.path());
    let newest = segs.last().unwrap();
    // The previous segment ends in a hole of zeros (a torn tail, not yet cut), and the newest
    // one's creation was cut short: recovery removes the newest and scans the previous one
    // to find where the log ends, which is damage there (refused, not truncated).
    let previous = &segs[segs.len() - 2];
    make_sparse(previous);
    std::fs::write(newest, b"").unwrap();

    let (log, peak) = peak_during(|| SegmentLog::open(dir.path(), LogOptions::default()));
    let err = log.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("damaged"), "{err}");
    eprintln!("recovery: peak {peak} bytes of heap");
    assert!(peak < LIMIT, "recovery used {peak} bytes of heap");
}

#[test]
fn reader_reaching_a_sparse_1gib_newest_segment_takes_constant_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 20, 256);
    make_sparse(segments(dir.path()).last().unwrap());

    let reader = Reader::open(dir.path()).unwrap();
    let (entries, peak) = peak_during(|| reader.iter().collect::<Result<Vec<_>, _>>());
    // The hole looks like a record still being written: the end of the log, for now.
    let entries = entries.unwrap();
    assert_eq!(entries.len(), 20);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!((e.seq, &e.payload), (i as u64, &payload(i as u64)));
    }
    eprintln!("the reader: peak {peak} bytes of heap");
    assert!(peak < LIMIT, "the reader used {peak} bytes of heap");
}

#[test]
fn a_file_source_reads_what_the_file_holds() {
    use ringwal::format::{FileSource, ReadAt};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bytes");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let mut src = FileSource::open(&path).unwrap();
    assert_eq!(src.len(), bytes.len() as u64);
    // Forward, backward, across the window's edge, and larger than the window.
    for (at, n) in [
        (0, 10),
        (65_530, 20),
        (5, 3),
        (100_000, 70_000),
        (199_990, 10),
        (0, 200_000),
    ] {
        let mut buf = vec![0; n];
        src.read_exact_at(at as u64, &mut buf).unwrap();
        assert_eq!(buf, bytes[at..at + n], "{n} bytes at {at}");
    }
    let mut tail = FileSource::from_offset(std::fs::File::open(&path).unwrap(), 150_000).unwrap();
    assert_eq!(tail.len(), 50_000);
    let mut buf = [0; 4];
    tail.read_exact_at(1, &mut buf).unwrap();
    assert_eq!(buf, bytes[150_001..150_005]);
    // Cut shorter meanwhile: an error, not stale or made-up bytes.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let mut src = FileSource::open(&path).unwrap();
    let mut buf = [0; 8];
    src.read_exact_at(992, &mut buf).unwrap();
    assert_eq!(buf, bytes[992..1000]);
    // (Bytes `tail` read before the cut are still in its window: read outside it.)
    let err = tail.read_exact_at(0, &mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
}

/// A hostile sparse segment: a valid start, a torn byte, then a hole to 2^62 bytes (on
/// tmpfs, which allows it; the test fails, not skips, without `/dev/shm`). Recovery, `verify`'s
/// scan and the Reader step over the hole with the file system's map of it (`SEEK_DATA`)
/// instead of reading 4 EiB of zeros (years); each must end within seconds.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_hole_of_4_eib_after_damage_is_stepped_over_not_read() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir_in("/dev/shm").expect("tmpfs at /dev/shm");
    make_log(dir.path(), 20, 256);
    let newest = segments(dir.path()).last().unwrap().clone();
    let valid = {
        let mut file = OpenOptions::new().append(true).open(&newest).unwrap();
        let before = file.metadata().unwrap().len();
        std::io::Write::write_all(&mut file, &[0xFF]).unwrap();
        file.set_len(1 << 62).unwrap();
        before
    };
    let limit = std::time::Duration::from_secs(60);
    let d = dir.path().to_owned();
    deadline::within("the Reader", limit, move || {
        let entries: Vec<_> = Reader::open(&d)
            .unwrap()
            .iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(entries.len(), 20);
    });
    let path = newest.clone();
    deadline::within("a segment scan", limit, move || {
        let mut src = ringwal::format::FileSource::open(&path).unwrap();
        let scan = ringwal::format::scan_segment_in(&mut src).unwrap();
        assert!(
            matches!(scan.end, ringwal::format::ScanEnd::Torn { .. }),
            "{:?}",
            scan.end
        );
    });
    let d = dir.path().to_owned();
    let n = newest.clone();
    deadline::within("recovery", limit, move || {
        let log = SegmentLog::open(&d, LogOptions::default()).unwrap();
        let rec = log.recovery();
        assert_eq!(rec.next_seq, 20, "{rec:?}");
        assert_eq!(rec.bytes_cut, (1 << 62) - valid, "{rec:?}");
        assert_eq!(std::fs::metadata(&n).unwrap().len(), valid);
    });
}
