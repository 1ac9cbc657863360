//! The byte path (`Builder::start_bytes`, `ByteEmitter`): what the typed path's tests check
//! (`policies.rs`, `refusals.rs`, `faults.rs`, `idle.rs`, `hung_sink.rs`, `flush_guard.rs`),
//! for variable-length records written in place. Every test reads the log back: the records
//! accepted, in each emitter's order, byte for byte, and the refusals and losses the report
//! counts recorded as the log's own gaps.
//!
//! The writer is held up on purpose in two ways: a grant kept open by an `emit_with` whose
//! closure waits (the writer waits at that record, and the ring fills behind it), or a sink
//! that holds or fails its calls.

use ringwal::{
    Batch, ByteEmitError, ByteEmitter, Bytes, FlushError, Idle, LogOptions, Overflow, Reader,
    Report, SegmentLog, Sink, SyncPolicy, Writer,
};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Generous bound for anything that should happen "soon" (a loaded CI machine).
const SOON: Duration = Duration::from_secs(20);

/// The log as written: its records' payloads, and the losses its gaps record (trailing gap
/// included). Checks that sequence numbers are consecutive.
struct Log {
    payloads: Vec<Vec<u8>>,
    dropped: u64,
    refused: u64,
    /// `refused_before` of each record.
    refused_before: Vec<u64>,
}

fn read_log(dir: &Path) -> Log {
    let mut iter = Reader::open(dir).unwrap().iter();
    let mut log = Log {
        payloads: Vec::new(),
        dropped: 0,
        refused: 0,
        refused_before: Vec::new(),
    };
    let mut expected = None;
    for entry in iter.by_ref() {
        let entry = entry.unwrap();
        if let Some(e) = expected {
            assert_eq!(entry.seq, e, "consecutive sequence numbers");
        }
        expected = Some(entry.seq + 1);
        log.dropped += entry.dropped_before;
        log.refused += entry.refused_before;
        log.refused_before.push(entry.refused_before);
        log.payloads.push(entry.payload);
    }
    let tail = iter.trailing_gap();
    log.dropped += tail.dropped;
    log.refused += tail.refused;
    log
}

/// Conservation, and the log agreeing with the report.
fn check_log_matches_report(dir: &Path, report: &Report) -> Log {
    assert_eq!(report.queued, 0, "{report:?}");
    assert_eq!(
        report.emitted,
        report.persisted + report.dropped,
        "conservation: {report:?}"
    );
    assert_eq!(report.dropped, 0, "the byte path drops nothing: {report:?}");
    let log = read_log(dir);
    assert_eq!(log.payloads.len() as u64, report.persisted, "{report:?}");
    assert_eq!(log.dropped, 0);
    assert_eq!(
        log.refused, report.rejected,
        "refusals in the log: {report:?}"
    );
    log
}

/// Record `seq` of emitter `id`: its id and sequence number, then 0..=200 bytes derived from
/// both (so a record that is valid but holds the wrong bytes is caught).
fn record(id: u8, seq: u32) -> Vec<u8> {
    let h = (u64::from(seq) << 8 | u64::from(id)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let filler = (h >> 40) as usize % 201;
    let mut r = Vec::with_capacity(5 + filler);
    r.push(id);
    r.extend_from_slice(&seq.to_le_bytes());
    r.extend((0..filler).map(|i| (h as u8).wrapping_add(i as u8)));
    r
}

/// The emitter id and sequence number of a record built by [`record`], checking its bytes.
fn parse(r: &[u8]) -> (u8, u32) {
    let id = r[0];
    let seq = u32::from_le_bytes(r[1..5].try_into().unwrap());
    assert_eq!(r, record(id, seq), "record {id}/{seq}: bytes");
    (id, seq)
}

/// Emits `r` copied (even `seq`) or written in place by `emit_with` (odd), reserving more
/// than needed so the commit is shortened.
fn emit_either(e: &ByteEmitter, seq: u32, r: &[u8]) -> Result<(), ByteEmitError> {
    if seq.is_multiple_of(2) {
        e.emit(r)
    } else {
        e.emit_with(r.len() + 13, |buf| {
            assert!(buf.iter().all(|&b| b == 0), "a grant starts zeroed");
            buf[..r.len()].copy_from_slice(r);
            r.len()
        })
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Outcomes {
    ok: u64,
    full: u64,
    closed: u64,
    unhealthy: u64,
    too_large: u64,
}

impl Outcomes {
    fn count(&mut self, r: Result<(), ByteEmitError>) -> Result<(), ByteEmitError> {
        match r {
            Ok(()) => self.ok += 1,
            Err(ByteEmitError::Full) => self.full += 1,
            Err(ByteEmitError::Closed) => self.closed += 1,
            Err(ByteEmitError::Unhealthy) => self.unhealthy += 1,
            Err(ByteEmitError::TooLarge { .. }) => self.too_large += 1,
        }
        r
    }
    fn refused(&self) -> u64 {
        self.full + self.closed + self.unhealthy + self.too_large
    }
    fn add(&mut self, o: Outcomes) {
        self.ok += o.ok;
        self.full += o.full;
        self.closed += o.closed;
        self.unhealthy += o.unhealthy;
        self.too_large += o.too_large;
    }
}

/// A grant held open on a helper thread: an `emit_with` of `len` bytes whose closure fills
/// them with `fill` and waits until released. The writer waits at this record; the ring
/// fills behind it.
struct Held {
    release: mpsc::Sender<()>,
    thread: JoinHandle<Result<(), ByteEmitError>>,
}

impl Held {
    fn new(emitter: &ByteEmitter, len: usize, fill: u8) -> Held {
        let (entered_tx, entered) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let e = emitter.clone();
        let thread = thread::spawn(move || {
            e.emit_with(len, |buf| {
                buf.fill(fill);
                entered_tx.send(()).unwrap();
                let _ = released.recv();
                len
            })
        });
        entered.recv().expect("the grant is held");
        Held { release, thread }
    }

    fn release(self) -> Result<(), ByteEmitError> {
        let _ = self.release.send(());
        self.thread.join().unwrap()
    }
}

// ---- the format ----

/// A byte writer and a typed writer given the same payloads write byte-identical segment
/// files: the same format, framed by the same codec (lengths 0, 1, 7, 8, 9, and up to the
/// longest record).
#[test]
fn the_log_is_byte_for_byte_a_typed_writers() {
    let payloads: Vec<Vec<u8>> = [0usize, 1, 7, 8, 9, 100, 504]
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|b| (b * 7 + i) as u8).collect())
        .collect();
    let bytes_dir = tempfile::tempdir().unwrap();
    let typed_dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(bytes_dir.path())
        .capacity(1024)
        .start_bytes()
        .unwrap();
    assert_eq!(emitter.max_record_len(), 504);
    for (i, p) in payloads.iter().enumerate() {
        emit_either(&emitter, i as u32, p).unwrap();
    }
    let report = writer.shutdown().unwrap();
    assert_eq!((report.emitted, report.persisted), (7, 7));
    let (writer, emitter) = Writer::builder(typed_dir.path())
        .start::<Vec<u8>>()
        .unwrap();
    for p in &payloads {
        emitter.emit(p.clone()).unwrap();
    }
    writer.shutdown().unwrap();
    let name = ringwal::format::segment_file_name(0);
    let a = std::fs::read(bytes_dir.path().join(&name)).unwrap();
    let b = std::fs::read(typed_dir.path().join(&name)).unwrap();
    assert_eq!(
        a, b,
        "the byte writer's segment differs from the typed writer's"
    );
    assert_eq!(read_log(bytes_dir.path()).payloads, payloads);
}

// ---- policies ----

/// `Reject`: with the writer held at an open grant, a ring of 256 bytes takes exactly 15
/// records of 8 bytes behind it (2 granules each, 1 for the held empty record, 1 left), then
/// refuses; once the grant commits, everything accepted is written in order, the held record
/// first, and the refusals are the next record's `refused_before`.
#[test]
fn reject_refuses_when_full_and_records_the_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(256)
        .start_bytes()
        .unwrap();
    let held = Held::new(&emitter, 0, 0);
    let mut accepted = Vec::new();
    for i in 0..15u64 {
        emitter.emit(&i.to_le_bytes()).unwrap();
        accepted.push(i.to_le_bytes().to_vec());
    }
    for _ in 0..3 {
        assert_eq!(emitter.emit(&[9; 8]), Err(ByteEmitError::Full));
        assert_eq!(
            emitter.emit_with(8, |_| unreachable!("not called when refused")),
            Err(ByteEmitError::Full)
        );
    }
    let stats = emitter.stats();
    assert_eq!(stats.rejected, 6);
    assert_eq!(
        stats.emitted, 0,
        "the writer has taken nothing yet: {stats:?}"
    );
    held.release().unwrap();
    emitter.flush().unwrap();
    assert_eq!(emitter.stats().emitted, 16, "counted once taken");
    emitter.emit(b"after").unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!((report.emitted, report.rejected), (17, 6));
    let log = check_log_matches_report(dir.path(), &report);
    let mut expected = vec![Vec::new()];
    expected.extend(accepted);
    expected.push(b"after".to_vec());
    assert_eq!(log.payloads, expected);
    // Recorded before the first record the writer took after counting them (the held one
    // at the latest: it was committed after them).
    assert_eq!(log.refused, 6);
}

/// `Block(None)`: emitters wait while the writer is held, then everything goes in, each
/// emitter's records in its order.
#[test]
fn block_waits_for_space_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(512)
        .overflow(Overflow::Block(None))
        .start_bytes()
        .unwrap();
    let held = Held::new(&emitter, 16, 0xAB);
    let per = 200u32;
    let threads: Vec<_> = (1..=3u8)
        .map(|id| {
            let e = emitter.clone();
            thread::spawn(move || {
                for seq in 0..per {
                    emit_either(&e, seq, &record(id, seq)).unwrap();
                }
            })
        })
        .collect();
    // The ring fills behind the held grant and the emitters wait.
    let start = Instant::now();
    thread::sleep(Duration::from_millis(30));
    assert!(threads.iter().any(|t| !t.is_finished()), "nobody blocked");
    held.release().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert!(start.elapsed() < SOON);
    let report = writer.shutdown().unwrap();
    assert_eq!(report.rejected, 0);
    let log = check_log_matches_report(dir.path(), &report);
    assert_eq!(log.payloads[0], [0xAB; 16]);
    let mut next = [0u32; 4];
    for r in &log.payloads[1..] {
        let (id, seq) = parse(r);
        assert_eq!(seq, next[usize::from(id)], "emitter {id}'s order");
        next[usize::from(id)] += 1;
    }
    assert_eq!(&next[1..], &[per; 3]);
}

/// `Block(Some(t))`: gives up after about `t` with `Full`, counted and recorded.
#[test]
fn block_with_timeout_gives_up_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(64)
        .overflow(Overflow::Block(Some(Duration::from_millis(30))))
        .start_bytes()
        .unwrap();
    let held = Held::new(&emitter, 24, 1);
    emitter.emit(&[2; 24]).unwrap(); // the ring (8 granules) is full
    let start = Instant::now();
    assert_eq!(emitter.emit(&[3; 8]), Err(ByteEmitError::Full));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(30),
        "gave up after {waited:?}"
    );
    assert!(waited < SOON);
    held.release().unwrap();
    emitter.emit(&[4; 8]).unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!((report.emitted, report.rejected), (3, 1));
    let log = check_log_matches_report(dir.path(), &report);
    assert_eq!(log.payloads, [vec![1; 24], vec![2; 24], vec![4; 8]]);
    // Recorded before the first record the writer took after counting it: here possibly
    // the held one, reserved before the refusal but committed after it.
    assert_eq!(log.refused, 1);
}

/// `Block` emitters waiting on a full ring are released by shutdown (as `Closed`), and
/// everything accepted before it is written.
#[test]
fn blocked_emitters_are_released_by_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(64)
        .overflow(Overflow::Block(None))
        .shutdown_timeout(Duration::from_millis(300))
        .start_bytes()
        .unwrap();
    let held = Held::new(&emitter, 0, 0);
    emitter.emit(&[1; 48]).unwrap_err(); // too large for a 64-byte ring: refused at once
    emitter.emit(&[2; 16]).unwrap();
    emitter.emit(&[3; 16]).unwrap(); // 1 + 3 + 3 of 8 granules: one left
    let blocked: Vec<_> = (0..2)
        .map(|_| {
            let e = emitter.clone();
            thread::spawn(move || e.emit(&[4; 16]))
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    let releaser = thread::spawn(move || {
        // The shutdown waits for the held record (reserved before its close); release it.
        thread::sleep(Duration::from_millis(50));
        held.release()
    });
    let report = writer.shutdown().unwrap();
    releaser.join().unwrap().unwrap();
    for b in blocked {
        assert_eq!(b.join().unwrap(), Err(ByteEmitError::Closed));
    }
    assert_eq!(report.emitted, 3);
    let log = check_log_matches_report(dir.path(), &report);
    assert_eq!(log.payloads, [vec![], vec![2; 16], vec![3; 16]]);
    // The two blocked emits were refused as closed, after the writer's final count (or
    // before it): every refusal is in `stats()`, the ones the log carries in the report.
    assert_eq!(emitter.stats().rejected, 3);
    assert!(report.rejected >= 1);
}

/// `start_bytes` refuses `DropOldest` and invalid byte capacities with `InvalidInput`
/// before touching the directory; valid extremes start.
#[test]
fn invalid_settings_are_refused_before_the_directory_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("never-created");
    let refused = |b: ringwal::Builder, what: &str| {
        let e = b.start_bytes().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
        assert!(!dir.exists(), "{what}: the directory was touched");
        e.to_string()
    };
    let msg = refused(
        Writer::builder(&dir).overflow(Overflow::DropOldest),
        "DropOldest",
    );
    assert!(msg.contains("DropOldest"), "{msg}");
    for capacity in [0, 1, 8, 1000, 4097, 1 << 30] {
        let msg = refused(Writer::builder(&dir).capacity(capacity), "capacity");
        assert!(msg.contains(&capacity.to_string()), "{msg}");
    }
    refused(
        Writer::builder(&dir).idle(Idle::Poll(Duration::ZERO)),
        "Poll(0)",
    );
    // The smallest ring takes empty records only; the largest is 512 MiB (not allocated
    // here: capacities are checked, then the ring is built).
    let (writer, emitter) = Writer::builder(&dir).capacity(16).start_bytes().unwrap();
    assert_eq!(emitter.max_record_len(), 0);
    emitter.emit(&[]).unwrap();
    assert_eq!(
        emitter.emit(&[1]),
        Err(ByteEmitError::TooLarge { len: 1, max: 0 })
    );
    assert_eq!(writer.shutdown().unwrap().persisted, 1);
}

/// A record longer than the ring allows is an error returned to the caller (the closure is
/// not called), never a panic, counted as rejected and recorded in the log.
#[test]
fn too_large_records_are_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(1024)
        .start_bytes()
        .unwrap();
    let max = emitter.max_record_len();
    assert_eq!(max, 504);
    assert_eq!(
        emitter.emit(&vec![0; max + 1]),
        Err(ByteEmitError::TooLarge { len: 505, max: 504 })
    );
    assert_eq!(
        emitter.emit_with(usize::MAX, |_| unreachable!()),
        Err(ByteEmitError::TooLarge {
            len: usize::MAX,
            max: 504
        })
    );
    emitter.emit(&vec![7; max]).unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!((report.emitted, report.rejected), (1, 2));
    let log = check_log_matches_report(dir.path(), &report);
    assert_eq!(log.payloads, [vec![7; max]]);
    assert_eq!(log.refused_before, [2]);
}

/// An `emit_with` whose closure panics, or returns more than it was given (which panics),
/// discards its record (the writer steps over it: nothing waits) and counts as rejected.
#[test]
fn a_panicking_or_overlong_emit_with_is_discarded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(256)
        .start_bytes()
        .unwrap();
    emitter.emit(b"before").unwrap();
    // Where a refusal lands in the log is exact to the writer's batch (it is attributed to
    // the first record the writer takes after it sees the count): flushes keep "before",
    // the refusals and "after" in separate batches, so the placement below is exact.
    emitter.flush_timeout(SOON).unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        emitter.emit_with(32, |buf| {
            buf.fill(1);
            panic!("the encoder failed");
        })
    }));
    assert!(panicked.is_err());
    let overlong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        emitter.emit_with(8, |buf| buf.len() + 1)
    }));
    assert!(overlong.is_err());
    // The discarded grants do not hold the writer: it steps over them.
    emitter.flush_timeout(SOON).unwrap();
    emitter.emit(b"after").unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!((report.emitted, report.rejected), (2, 2));
    let log = check_log_matches_report(dir.path(), &report);
    assert_eq!(log.payloads, [b"before".to_vec(), b"after".to_vec()]);
    assert_eq!(log.refused_before, [0, 2]);
}

/// Emits after shutdown are refused as closed: counted in later `stats()`, not in the report
/// (the log cannot carry them).
#[test]
fn closed_after_shutdown_counts_as_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start_bytes().unwrap();
    emitter.emit(b"a").unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!(emitter.emit(b"late"), Err(ByteEmitError::Closed));
    assert_eq!(
        emitter.emit_with(4, |_| unreachable!()),
        Err(ByteEmitError::Closed)
    );
    // Everything accepted is written: a flush after shutdown has nothing to wait for.
    emitter.flush().unwrap();
    let stats = emitter.stats();
    assert_eq!((stats.emitted, stats.rejected), (1, report.rejected + 2));
    check_log_matches_report(dir.path(), &report);
}

// ---- shutdown and refusals racing ----

/// Emitters write until they are refused as closed while the writer shuts down: every
/// record accepted is in the log, each emitter's in its order, byte for byte; every refusal
/// the report counts is a gap in the log; every call is counted once.
#[test]
fn shutdown_racing_emitters_keeps_every_accepted_record_in_order() {
    // Small rings without fsyncs, so that the writer takes many small batches quickly.
    for (capacity, policy, sync) in [
        (1 << 16, Overflow::Reject, SyncPolicy::EveryBatch),
        (512, Overflow::Reject, SyncPolicy::Never),
        (
            512,
            Overflow::Block(Some(Duration::from_micros(50))),
            SyncPolicy::Never,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .capacity(capacity)
            .overflow(policy)
            .sync(sync)
            .start_bytes()
            .unwrap();
        // Records accepted so far, by all emitters: the shutdown waits until they got going
        // (a fixed sleep was not enough on a loaded machine: `total.ok > 20` failed).
        let accepted_so_far = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4u8)
            .map(|id| {
                let e = emitter.clone();
                let accepted_so_far = Arc::clone(&accepted_so_far);
                thread::spawn(move || {
                    let mut out = Outcomes::default();
                    let mut accepted = Vec::new();
                    for seq in 0.. {
                        match out.count(emit_either(&e, seq, &record(id, seq))) {
                            Ok(()) => {
                                accepted.push(seq);
                                accepted_so_far.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(ByteEmitError::Closed) => break,
                            Err(_) => {}
                        }
                    }
                    (out, accepted)
                })
            })
            .collect();
        let started = Instant::now();
        while accepted_so_far.load(Ordering::Relaxed) <= 20 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the emitters never got going"
            );
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(20));
        let report = writer.shutdown().unwrap();
        let mut total = Outcomes::default();
        let mut accepted = Vec::new();
        for t in threads {
            let (out, acc) = t.join().unwrap();
            total.add(out);
            accepted.push(acc);
        }
        assert_eq!(total.closed, 4);
        assert_eq!(
            report.emitted, total.ok,
            "{capacity} {policy:?}: {report:?}"
        );
        assert!(report.rejected <= total.refused());
        assert_eq!(emitter.stats().rejected, total.refused());
        let log = check_log_matches_report(dir.path(), &report);
        let mut got: Vec<Vec<u32>> = vec![Vec::new(); 4];
        for r in &log.payloads {
            let (id, seq) = parse(r);
            got[usize::from(id)].push(seq);
        }
        assert_eq!(
            got, accepted,
            "{capacity} {policy:?}: each emitter's accepted records"
        );
        assert!(total.ok > 20, "the emitters got going: {total:?}");
    }
}

/// A refusal storm on a tiny ring, the emitters joined before shutdown: every refusal is
/// counted once and recorded in the log where it happened (before the next record), under
/// `Reject` and under `Block` timeouts.
#[test]
fn refusal_storms_are_recorded_as_gaps() {
    for policy in [
        Overflow::Reject,
        Overflow::Block(Some(Duration::from_micros(1))),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .capacity(256)
            .overflow(policy)
            .start_bytes()
            .unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|id| {
                let e = emitter.clone();
                thread::spawn(move || {
                    let mut out = Outcomes::default();
                    for seq in 0..10_000u32 {
                        let _ = out.count(emit_either(&e, seq, &record(id, seq)));
                    }
                    out
                })
            })
            .collect();
        let mut total = Outcomes::default();
        for t in threads {
            total.add(t.join().unwrap());
        }
        let report = writer.shutdown().unwrap();
        assert_eq!(report.emitted, total.ok, "{policy:?}: {report:?}");
        assert_eq!(report.rejected, total.refused(), "{policy:?}: {report:?}");
        assert!(total.full > 0, "{policy:?}: no storm: {total:?}");
        check_log_matches_report(dir.path(), &report);
    }
}

/// Refusals after the last record (emits refused as closed while the writer finishes) reach
/// the log as a trailing gap marker.
#[test]
fn refusals_after_the_last_record_leave_a_marker() {
    let mut with_marker = 0;
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .capacity(64)
            .start_bytes()
            .unwrap();
        emitter.emit(b"first").unwrap();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let e = emitter.clone();
                thread::spawn(move || {
                    let mut out = Outcomes::default();
                    while out.count(e.emit(&[1; 16])) != Err(ByteEmitError::Closed) {}
                    out
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(2));
        let report = writer.shutdown().unwrap();
        let mut total = Outcomes::default();
        for t in threads {
            total.add(t.join().unwrap());
        }
        check_log_matches_report(dir.path(), &report);
        assert_eq!(report.emitted, total.ok + 1);
        let mut iter = Reader::open(dir.path()).unwrap().iter();
        for e in iter.by_ref() {
            e.unwrap();
        }
        if iter.trailing_gap().refused > 0 {
            with_marker += 1;
        }
    }
    assert!(with_marker > 0, "no run left a trailing marker");
}

// ---- flush ----

/// `flush` waits for a record still being written by `emit_with` on another thread (it was
/// reserved before the flush), and for everything after it.
#[test]
fn flush_waits_for_a_grant_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start_bytes().unwrap();
    let held = Held::new(&emitter, 5, b'h');
    emitter.emit(b"behind").unwrap();
    assert!(matches!(
        emitter.flush_timeout(Duration::from_millis(30)),
        Err(FlushError::Timeout)
    ));
    held.release().unwrap();
    emitter.flush().unwrap();
    assert_eq!(
        read_log(dir.path()).payloads,
        [b"hhhhh".to_vec(), b"behind".to_vec()]
    );
    let report = writer.shutdown().unwrap();
    check_log_matches_report(dir.path(), &report);
}

/// A byte emitter kept in a `static` (a `OnceLock`), used from many threads, with a flush
/// guard: everything emitted is in the log of a writer that is never shut down.
#[test]
fn a_static_emitter_and_its_flush_guard() {
    static LOG: OnceLock<ByteEmitter> = OnceLock::new();
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start_bytes().unwrap();
    let guard = emitter.flush_guard();
    LOG.set(emitter).unwrap();
    let threads: Vec<_> = (0..3u8)
        .map(|id| {
            thread::spawn(move || {
                for seq in 0..500 {
                    let e = LOG.get().unwrap();
                    while emit_either(e, seq, &record(id, seq)) == Err(ByteEmitError::Full) {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(guard);
    let log = read_log(dir.path());
    assert_eq!(log.payloads.len(), 1500);
    for r in &log.payloads {
        parse(r);
    }
    std::mem::forget(writer); // never shut down, as a writer in a static
}

// ---- idle strategies ----

/// Every idle strategy delivers every record (two emitters, bursts and pauses), and `flush`
/// is served at once under a long poll.
#[test]
fn every_idle_strategy_delivers_everything() {
    for idle in [
        Idle::Park,
        Idle::Poll(Duration::from_millis(1)),
        Idle::Poll(Duration::from_secs(3600)),
        Idle::Spin,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .idle(idle)
            .capacity(4096)
            .overflow(Overflow::Block(None))
            .start_bytes()
            .unwrap();
        let threads: Vec<_> = (0..2u8)
            .map(|id| {
                let e = emitter.clone();
                thread::spawn(move || {
                    for seq in 0..2000 {
                        emit_either(&e, seq, &record(id, seq)).unwrap();
                        if seq % 500 == 499 {
                            thread::sleep(Duration::from_millis(2));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let start = Instant::now();
        emitter.flush().unwrap();
        assert!(
            start.elapsed() < SOON,
            "{idle:?}: flush took {:?}",
            start.elapsed()
        );
        assert_eq!(emitter.stats().emitted, 4000, "{idle:?}");
        let report = writer.shutdown().unwrap();
        let log = check_log_matches_report(dir.path(), &report);
        assert_eq!(log.payloads.len(), 4000, "{idle:?}");
    }
}

// ---- a failing sink ----

/// What the test sink does: hold the writer in its next append, fail appends (ENOSPC), fail
/// syncs (EIO, after rolling back to the last successful sync as the `Sink` contract asks),
/// or hang forever in an append.
#[derive(Default)]
struct Plan {
    hold: bool,
    held: bool,
    fail_appends: u64,
    disk_full: bool,
    fail_syncs: u64,
    hang: bool,
    appended: Vec<u64>,
}

#[derive(Clone, Default)]
struct Control(Arc<(Mutex<Plan>, Condvar)>);

impl Control {
    fn with<R>(&self, f: impl FnOnce(&mut Plan) -> R) -> R {
        let r = f(&mut self.0 .0.lock().unwrap());
        self.0 .1.notify_all();
        r
    }
    fn wait_held(&self) {
        let (lock, cv) = &*self.0;
        let mut plan = lock.lock().unwrap();
        let deadline = Instant::now() + SOON;
        while !plan.held {
            assert!(
                Instant::now() < deadline,
                "the writer never entered the sink"
            );
            plan = cv.wait_timeout(plan, Duration::from_millis(10)).unwrap().0;
        }
    }
}

struct Faulty {
    inner: SegmentLog,
    control: Control,
}

impl Faulty {
    fn open(dir: &Path) -> (Faulty, Control) {
        let control = Control::default();
        let inner = SegmentLog::open(dir, LogOptions::default()).unwrap();
        (
            Faulty {
                inner,
                control: control.clone(),
            },
            control,
        )
    }
}

impl Sink for Faulty {
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        let (lock, cv) = &*self.control.0;
        let mut plan = lock.lock().unwrap();
        if plan.hang {
            // A disk that never answers: the writer is stuck here for good.
            plan.held = true;
            cv.notify_all();
            drop(plan);
            loop {
                thread::park();
            }
        }
        if plan.hold {
            plan.held = true;
            cv.notify_all();
            while plan.hold {
                plan = cv.wait(plan).unwrap();
            }
            plan.held = false;
        }
        if plan.disk_full || plan.fail_appends > 0 {
            plan.fail_appends = plan.fail_appends.saturating_sub(1);
            return Err(io::Error::from_raw_os_error(28));
        }
        for seq in batch.first_seq()..batch.first_seq() + batch.records() {
            assert!(!plan.appended.contains(&seq), "record {seq} appended twice");
            plan.appended.push(seq);
        }
        self.inner.append(batch)
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut plan = self.control.0 .0.lock().unwrap();
        if plan.disk_full || plan.fail_syncs > 0 {
            plan.fail_syncs = plan.fail_syncs.saturating_sub(1);
            self.inner.discard_unsynced().unwrap();
            let next = self.inner.next_seq();
            plan.appended.retain(|&s| s < next);
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.sync()
    }

    fn segments(&self) -> usize {
        self.inner.segments()
    }
}

fn start_faulty(
    dir: &Path,
    builder: impl FnOnce(ringwal::Builder) -> ringwal::Builder,
) -> (Writer<Bytes>, ByteEmitter, Control) {
    let (sink, control) = Faulty::open(dir);
    let (writer, emitter) = builder(Writer::builder(dir))
        .start_bytes_with_sink(sink)
        .unwrap();
    (writer, emitter, control)
}

/// Failing appends (ENOSPC) and a failing sync (EIO, rolled back) lose nothing and write
/// nothing twice; `flush` reports the failure, then succeeds once the sink recovers; the
/// writer reports itself unhealthy meanwhile.
#[test]
fn a_failing_sink_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, control) = start_faulty(dir.path(), |b| b.capacity(1 << 16));
    // The writer waits in the sink while the records and a flush line up.
    control.with(|p| p.hold = true);
    let mut expected = Vec::new();
    for seq in 0..300u32 {
        let r = record(1, seq);
        emit_either(&emitter, seq, &r).unwrap();
        expected.push(r);
        if seq == 0 {
            control.wait_held();
        }
    }
    let flusher = {
        let e = emitter.clone();
        thread::spawn(move || e.flush())
    };
    thread::sleep(Duration::from_millis(50));
    control.with(|p| {
        p.fail_appends = 3;
        p.fail_syncs = 1;
        p.hold = false;
    });
    match flusher.join().unwrap() {
        Err(FlushError::Io(e)) => {
            assert_eq!(e.kind(), io::Error::from_raw_os_error(28).kind(), "{e}")
        }
        other => panic!("the flush waiting through the failures: {other:?}"),
    }
    let start = Instant::now();
    while let Err(e) = emitter.flush() {
        assert!(matches!(e, FlushError::Io(_)), "{e}");
        assert!(start.elapsed() < SOON, "never recovered");
    }
    let stats = emitter.stats();
    assert!(stats.healthy, "{stats:?}");
    assert!(stats.write_errors >= 4, "{stats:?}");
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, 300);
    let log = check_log_matches_report(dir.path(), &report);
    assert_eq!(log.payloads, expected);
}

/// With `reject_when_unhealthy`, emits are refused as `Unhealthy` while the disk is full;
/// after it frees up everything accepted is written and the refusals are in the log.
#[test]
fn reject_when_unhealthy_refuses_while_the_sink_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, control) = start_faulty(dir.path(), |b| b.reject_when_unhealthy(true));
    control.with(|p| p.disk_full = true);
    let mut out = Outcomes::default();
    let mut accepted = Vec::new();
    let start = Instant::now();
    let mut seq = 0;
    while out.unhealthy < 10 {
        if out.count(emitter.emit(&record(2, seq))).is_ok() {
            accepted.push(record(2, seq));
        }
        seq += 1;
        assert!(start.elapsed() < SOON, "never unhealthy: {out:?}");
        thread::yield_now();
    }
    assert!(!emitter.stats().healthy);
    control.with(|p| p.disk_full = false);
    let start = Instant::now();
    while emitter.flush().is_err() {
        assert!(start.elapsed() < SOON, "never recovered");
    }
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, out.ok);
    assert_eq!(report.rejected, out.refused());
    let log = check_log_matches_report(dir.path(), &report);
    assert_eq!(log.payloads, accepted);
}

/// A disk that stays full past the shutdown timeout: shutdown returns every record not
/// confirmed written, in order, in its error.
#[test]
fn shutdown_on_a_full_disk_returns_the_unwritten_records() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, control) = start_faulty(dir.path(), |b| {
        b.shutdown_timeout(Duration::from_millis(200))
    });
    emitter.emit(b"durable").unwrap();
    emitter.flush().unwrap();
    control.with(|p| p.disk_full = true);
    let mut expected = Vec::new();
    for seq in 0..50u32 {
        let r = record(3, seq);
        emit_either(&emitter, seq, &r).unwrap();
        expected.push(r);
    }
    let err = writer.shutdown().unwrap_err();
    assert_eq!(
        err.error.kind(),
        io::Error::from_raw_os_error(28).kind(),
        "{err}"
    );
    let unwritten: Vec<Vec<u8>> = err.unwritten.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(unwritten, expected);
    let r = &err.report;
    assert_eq!((r.emitted, r.persisted, r.queued), (51, 1, 50), "{r:?}");
}

/// A sink that hangs inside an append: shutdown gives up at its timeout (plus 100 ms) with
/// `TimedOut`, leaving the writer thread detached; emits are refused from then on.
#[test]
fn a_hung_sink_does_not_hang_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, control) = start_faulty(dir.path(), |b| {
        b.shutdown_timeout(Duration::from_millis(100))
    });
    control.with(|p| p.hang = true);
    emitter.emit(b"stuck").unwrap();
    control.wait_held();
    let start = Instant::now();
    let err = writer.shutdown().unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.error.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(err.unwritten.is_empty());
    assert_eq!(err.report.queued, 1);
    assert!(!err.report.healthy);
    // The emitters' view agrees with the report while the sink is still stuck.
    assert!(!emitter.stats().healthy);
    assert_eq!(emitter.emit(b"late"), Err(ByteEmitError::Closed));
}

/// A grant still held by its emitter's closure when a shutdown runs out of time: the
/// writer waits for it a bounded while (100 ms past the timeout), then gives up with an error
/// saying so, instead of hanging the shutdown. (The record is not written; its `emit_with`,
/// still running, cannot be told: do not hold grants across a shutdown.)
#[test]
fn shutdown_gives_up_on_a_grant_held_past_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .shutdown_timeout(Duration::from_millis(100))
        .start_bytes()
        .unwrap();
    emitter.emit(b"written").unwrap();
    let held = Held::new(&emitter, 8, 1);
    let start = Instant::now();
    let err = writer.shutdown().unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.error.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.error.to_string().contains("abandoned"), "{err}");
    // One line of prose, not a literal's source indentation.
    assert!(!err.error.to_string().contains("  "), "{err}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert_eq!(err.report.persisted, 1);
    held.release().unwrap();
    assert_eq!(read_log(dir.path()).payloads, [b"written".to_vec()]);
}

/// Hold the writer in the sink while emitters fill the ring: the stats say the writer is
/// unhealthy only when it is, and a snapshot's `emitted` counts what the writer has taken.
#[test]
fn stats_while_the_writer_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, control) = start_faulty(dir.path(), |b| b.capacity(256));
    control.with(|p| p.hold = true);
    emitter.emit(b"taken").unwrap();
    control.wait_held();
    let mut accepted = 0;
    while emitter.emit(&[5; 8]).is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, 16, "a 256-byte ring holds 16 records of 8 bytes");
    let stats = emitter.stats();
    assert_eq!(stats.emitted, 1, "the writer has taken one: {stats:?}");
    assert_eq!(stats.rejected, 1);
    assert!(stats.healthy);
    control.with(|p| p.hold = false);
    emitter.flush().unwrap();
    let stats = emitter.stats();
    assert_eq!((stats.emitted, stats.persisted, stats.queued), (17, 17, 0));
    let report = writer.shutdown().unwrap();
    check_log_matches_report(dir.path(), &report);
}

/// `Writer::emitter` of a byte writer is another `ByteEmitter`; handles are `Send + Sync`
/// and `Clone`, and a clone counts its refusals on its own stripe but in the same totals.
#[test]
fn handles_are_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<ByteEmitter>();
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(64)
        .start_bytes()
        .unwrap();
    let other = writer.emitter();
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t = {
        let (refused, stop) = (refused.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if other.emit(&[0; 24]).is_err() {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    thread::sleep(Duration::from_millis(10));
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    emitter.flush().unwrap();
    emitter.emit(b"x").unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!(report.rejected, refused.load(Ordering::Relaxed));
    check_log_matches_report(dir.path(), &report);
}
