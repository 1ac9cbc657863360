//! The ring's capacity is a run-time setting: big rings start on small stacks, bad values are
//! `InvalidInput` errors, and the handle types carry no capacity parameter.

use ringwal::{Emitter, Reader, Writer};
use std::io::ErrorKind;
use std::sync::OnceLock;

/// tracing-appender's default buffer is 128,000 lines; here 2^20 events of `Vec<u8>`, started,
/// used and shut down from a thread with a 64 KiB stack (the ring is built on the heap in place,
/// never as a stack temporary: a `Ring<Vec<u8>, 32768>` temporary alone is 1 MiB).
#[test]
fn a_ring_of_a_million_events_starts_on_a_64_kib_stack() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let persisted = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(move || {
            let (writer, emitter) = Writer::builder(&path)
                .capacity(1 << 20)
                .start::<Vec<u8>>()
                .unwrap();
            for i in 0..10_000u32 {
                emitter.emit(i.to_le_bytes().to_vec()).unwrap();
            }
            writer.shutdown().unwrap().persisted
        })
        .unwrap()
        .join()
        .expect("the 64 KiB thread completes");
    assert_eq!(persisted, 10_000);
    let entries: Vec<_> = Reader::open(dir.path())
        .unwrap()
        .iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(entries.len(), 10_000);
    assert_eq!(entries[9_999].payload, 9_999u32.to_le_bytes());
}

#[test]
fn an_invalid_capacity_is_invalid_input_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for capacity in [0, 1, 3, 1000, 4097, usize::MAX, 1 << (usize::BITS - 2)] {
        let log = dir.path().join(format!("log-{capacity}"));
        let err = Writer::builder(&log)
            .capacity(capacity)
            .start::<Vec<u8>>()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{capacity}: {err}");
        assert!(err.to_string().contains(&capacity.to_string()), "{err}");
        assert!(!log.exists(), "a refused start created {log:?}");
    }
    // Valid but beyond any allocator: an error, not an abort.
    let err = Writer::builder(dir.path().join("huge"))
        .capacity(ringwal_core::MAX_CAPACITY)
        .start::<[u8; 64]>()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
    // The ring is allocated before the log is opened: the failed start created nothing (and
    // would have recovered, so changed, nothing in an existing log).
    assert!(
        !dir.path().join("huge").exists(),
        "a start that failed for want of memory created its directory"
    );
}

/// What the trial needed a hand-written type-erasure trait for: an emitter in a `static`, with
/// the capacity chosen at run time (from configuration, say).
static EMITTER: OnceLock<Emitter<String>> = OnceLock::new();

#[test]
fn an_emitter_of_any_capacity_fits_one_static() {
    let dir = tempfile::tempdir().unwrap();
    let configured = [2usize, 64, 4096][std::process::id() as usize % 3];
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(configured)
        .start::<String>()
        .unwrap();
    EMITTER.set(emitter).unwrap();
    let e = EMITTER.get().unwrap();
    e.emit("from a static".to_string()).unwrap();
    e.flush().unwrap();
    assert_eq!(writer.stats().persisted, 1);
    writer.shutdown().unwrap();
}
