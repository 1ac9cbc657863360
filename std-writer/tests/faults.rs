//! Fault injection through the public `Sink` trait.
//!
//! [`Faulty`] wraps the real [`SegmentLog`] and, as a shared [`Plan`] tells it, fails appends
//! with ENOSPC (the Nth ones, or all of them: a full disk), fails an append after a short write
//! (only the first k frames of the batch reach the log), or fails syncs (after rolling the log
//! back to its last successful sync with `discard_unsynced`, as the `Sink` contract requires).
//! It can also simulate a small disk (a byte capacity for the log's directory).
//! It can also hold the writer inside its next append, so a test can line events up or look at
//! the disk while nothing moves.
//!
//! Every scenario checks that nothing accepted is lost or written twice (the log read back is
//! exactly the accepted events, in order, with consecutive sequence numbers), that the writer
//! reports the failure (`healthy`, `write_errors`, `flush` errors) and its recovery, and that
//! the counters add up.

use ringwal::{
    Batch, EmitError, Emitter, Entry, FlushError, LogOptions, Overflow, Reader, Retain, SegmentLog,
    Sink, Stats, SyncPolicy, Writer,
};
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Generous bound for anything that should happen "soon" (a loaded CI machine).
const SOON: Duration = Duration::from_secs(20);

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

/// Calls number `from`, `from + 1`, ... (`times` of them; 1-based) are hit.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    from: u64,
    times: u64,
}

impl Window {
    fn hits(&self, call: u64) -> bool {
        self.from > 0 && call >= self.from && call < self.from + self.times
    }
}

/// What the faulty sink does, and what it saw.
#[derive(Default)]
struct Plan {
    // --- faults ---
    /// These append calls fail with ENOSPC before touching the log.
    fail_appends: Window,
    /// These sync calls fail with EIO (after `discard_unsynced`).
    fail_syncs: Window,
    /// Every append and sync fails with ENOSPC (syncs after `discard_unsynced`).
    disk_full: bool,
    /// Every sync fails with EIO (after `discard_unsynced`); appends succeed.
    syncs_broken: bool,
    /// The next append of more than k frames appends only the first k, then fails (ENOSPC).
    short_write: Option<u64>,
    /// The next append waits (with `held` set) until this is cleared.
    hold: bool,
    /// A small disk: an append that would take the directory's files (their sizes summed)
    /// over this many bytes fails with ENOSPC before touching the log.
    capacity: Option<u64>,

    // --- observations ---
    appends: u64,
    syncs: u64,
    held: bool,
    injected_appends: u64,
    injected_syncs: u64,
    short_writes: u64,
    /// `(first_seq, records)` of every batch that reached the inner log.
    inner_batches: Vec<(u64, u64)>,
    /// Records the inner log holds now, by sequence number, with how often each was appended
    /// (rollbacks remove them; appending one the log still holds is a duplicate).
    live: Vec<u64>,
    duplicates: Vec<u64>,
    /// Batches that did not start at the sink's `next_seq` (a contract violation).
    misplaced: Vec<(u64, u64)>,
    /// `healthy` as the writer reported it when each fault was injected.
    healthy_at_fault: Vec<bool>,
    /// Reads the writer's stats (set once the writer runs).
    probe: Option<Box<dyn Fn() -> Stats + Send>>,
}

impl Plan {
    fn note_fault(&mut self) {
        if let Some(probe) = &self.probe {
            let healthy = probe().healthy;
            self.healthy_at_fault.push(healthy);
        }
    }
}

#[derive(Clone, Default)]
struct Control(Arc<(Mutex<Plan>, Condvar)>);

impl Control {
    fn lock(&self) -> MutexGuard<'_, Plan> {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<R>(&self, f: impl FnOnce(&mut Plan) -> R) -> R {
        let r = f(&mut self.lock());
        self.0 .1.notify_all();
        r
    }

    /// Waits until the writer is held inside an append.
    fn wait_held(&self) {
        let deadline = Instant::now() + SOON;
        let mut plan = self.lock();
        while !plan.held {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("the writer never reached the held append");
            plan = self.0 .1.wait_timeout(plan, left).unwrap().0;
        }
    }

    fn release(&self) {
        self.with(|p| p.hold = false);
    }
}

/// The test's handle on the plan. Dropping it (also when a test panics) lifts every fault and
/// releases a held append, so the writer can shut down instead of hanging the test run.
struct Guard(Control);

impl std::ops::Deref for Guard {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.with(|p| {
            p.hold = false;
            p.disk_full = false;
            p.syncs_broken = false;
            p.fail_appends = Window::default();
            p.fail_syncs = Window::default();
            p.short_write = None;
            p.capacity = None;
        });
    }
}

/// A [`SegmentLog`] that fails as its [`Plan`] says.
struct Faulty {
    inner: SegmentLog,
    control: Control,
    segment_bytes: u64,
}

/// The bytes of every file in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read the log directory")
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn os_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Faulty {
    fn open(dir: &Path, options: LogOptions) -> (Self, Control) {
        let control = Control::default();
        let segment_bytes = options.segment_bytes;
        let inner = SegmentLog::open(dir, options).expect("open the log");
        (
            Faulty {
                inner,
                control: control.clone(),
                segment_bytes,
            },
            control,
        )
    }

    fn append_inner(&mut self, plan: &mut Plan, batch: &Batch<'_>) -> io::Result<()> {
        self.inner.append(batch)?;
        plan.inner_batches
            .push((batch.first_seq(), batch.records()));
        for seq in batch.first_seq()..batch.first_seq() + batch.records() {
            if plan.live.contains(&seq) {
                plan.duplicates.push(seq);
            }
            plan.live.push(seq);
        }
        Ok(())
    }

    fn rolled_back(&mut self, plan: &mut Plan) {
        let next = self.inner.next_seq();
        plan.live.retain(|&seq| seq < next);
    }
}

impl Sink for Faulty {
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        let control = self.control.clone();
        let (lock, cv) = &*control.0;
        let mut plan = lock.lock().unwrap_or_else(|e| e.into_inner());
        plan.appends += 1;
        let call = plan.appends;
        if plan.hold {
            plan.held = true;
            cv.notify_all();
            while plan.hold {
                plan = cv.wait(plan).unwrap_or_else(|e| e.into_inner());
            }
            plan.held = false;
        }
        if batch.first_seq() != self.inner.next_seq() {
            plan.misplaced
                .push((batch.first_seq(), self.inner.next_seq()));
        }
        if plan.disk_full || plan.fail_appends.hits(call) {
            plan.injected_appends += 1;
            plan.note_fault();
            return Err(os_error(ENOSPC));
        }
        if let Some(capacity) = plan.capacity {
            // The batch's bytes, and a header for each segment it may start (over-counted: a
            // segment is assumed to take only half its size of frames).
            let len = batch.bytes().len() as u64;
            let headers =
                (len / (self.segment_bytes / 2).max(1) + 1) * ringwal::format::HEADER_LEN as u64;
            if dir_bytes(self.inner.dir()) + len + headers > capacity {
                plan.injected_appends += 1;
                plan.note_fault();
                return Err(os_error(ENOSPC));
            }
        }
        if let Some(k) = plan.short_write {
            if batch.records() > k {
                plan.short_write = None;
                plan.short_writes += 1;
                plan.injected_appends += 1;
                plan.note_fault();
                if k > 0 {
                    let (offset, size) = batch
                        .frame_spans()
                        .nth(k as usize - 1)
                        .expect("the batch has more than k frames");
                    let bytes = &batch.bytes()[..offset + size];
                    let part = Batch::new(bytes, batch.first_seq(), k).expect("a valid sub-batch");
                    self.append_inner(&mut plan, &part)?;
                }
                return Err(os_error(ENOSPC));
            }
        }
        self.append_inner(&mut plan, batch)
    }

    fn sync(&mut self) -> io::Result<()> {
        let control = self.control.clone();
        let mut plan = control.lock();
        plan.syncs += 1;
        let call = plan.syncs;
        let fault = if plan.disk_full {
            Some(ENOSPC)
        } else if plan.syncs_broken || plan.fail_syncs.hits(call) {
            Some(EIO)
        } else {
            None
        };
        if let Some(code) = fault {
            plan.injected_syncs += 1;
            plan.note_fault();
            // The contract: after a failed sync, roll back to the last successful one.
            self.inner
                .discard_unsynced()
                .expect("discard_unsynced on a healthy disk");
            self.rolled_back(&mut plan);
            return Err(os_error(code));
        }
        self.inner.sync()
    }

    fn segments(&self) -> usize {
        self.inner.segments()
    }
}

/// The events of these tests: distinct, and recognisable in the log.
fn ev(i: u64) -> Vec<u8> {
    format!("event {i:05}").into_bytes()
}

/// A bigger event (for scenarios that want segments to rotate).
/// Emits `ev(i)` for every `i` in `ids`, each of which must be accepted, and records them in
/// `accepted`.
fn emit_accepted(
    emitter: &Emitter<Vec<u8>>,
    ids: impl IntoIterator<Item = u64>,
    accepted: &mut Vec<Vec<u8>>,
) {
    for i in ids {
        emitter.emit(ev(i)).unwrap();
        accepted.push(ev(i));
    }
}

fn big(i: u64) -> Vec<u8> {
    let mut p = ev(i);
    p.resize(600, b'.');
    p
}

/// Declared in this order, the guard drops first (lifting faults), then the writer.
type Started = (Writer<Vec<u8>>, Emitter<Vec<u8>>, Guard);

/// Starts a writer on a faulty log in `dir`, with the probe installed.
fn start<const N: usize>(builder: ringwal::Builder, dir: &Path, options: LogOptions) -> Started {
    let (sink, control) = Faulty::open(dir, options);
    let (writer, emitter) = builder
        .capacity(N)
        .start_with_sink::<Vec<u8>, _>(sink)
        .expect("start the writer");
    let probe = emitter.clone();
    control.with(|p| p.probe = Some(Box::new(move || probe.stats())));
    (writer, emitter, Guard(control))
}

/// Reads the whole log: it must be exactly `expected`, numbered from 0 and without gaps.
fn assert_log(dir: &Path, expected: &[Vec<u8>]) {
    let entries: Vec<Entry> = Reader::open(dir)
        .expect("open the reader")
        .iter()
        .collect::<io::Result<_>>()
        .expect("the log reads back without error");
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (0..expected.len() as u64).collect::<Vec<_>>(),
        "sequence numbers"
    );
    for e in &entries {
        assert_eq!(e.dropped_before, 0, "record {}: nothing was dropped", e.seq);
    }
    let payloads: Vec<&[u8]> = entries.iter().map(|e| &e.payload[..]).collect();
    let expected: Vec<&[u8]> = expected.iter().map(|e| &e[..]).collect();
    assert!(
        payloads == expected,
        "payloads differ from the accepted events:\n got      {:?}\n expected {:?}",
        payloads
            .iter()
            .map(|p| String::from_utf8_lossy(&p[..p.len().min(11)]))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|p| String::from_utf8_lossy(&p[..p.len().min(11)]))
            .collect::<Vec<_>>()
    );
}

/// Polls `cond` until true (panics after [`SOON`]).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A flush that must fail because of the injected fault.
#[track_caller]
fn assert_flush_io_err(emitter: &Emitter<Vec<u8>>, code: i32) {
    match emitter.flush_timeout(SOON) {
        Err(FlushError::Io(e)) => {
            let expected = os_error(code);
            assert_eq!(e.kind(), expected.kind(), "flush error: {e}");
            assert!(
                e.to_string().contains(&format!("os error {code}")),
                "flush error {e:?} should carry the sink's error (os error {code})"
            );
        }
        other => panic!("flush during a failure: expected Err(Io(os error {code})), got {other:?}"),
    }
}

#[track_caller]
fn assert_flush_ok(emitter: &Emitter<Vec<u8>>) {
    if let Err(e) = emitter.flush_timeout(SOON) {
        panic!("flush after recovery: {e:?}");
    }
}

/// The first flush after a fault is lifted: a failure still in flight (the sink returned it
/// just before the lift, the writer reports it just after the flush started) may fail it once.
#[track_caller]
fn flush_after_lift(emitter: &Emitter<Vec<u8>>) {
    flush_through_faults(emitter, 1);
}

/// Checks the sink saw no batch out of place and no record appended twice.
fn assert_clean_appends(control: &Control) {
    let plan = control.lock();
    assert!(
        plan.misplaced.is_empty(),
        "batches not starting at next_seq (first_seq, next_seq): {:?}",
        plan.misplaced
    );
    assert!(
        plan.duplicates.is_empty(),
        "records appended twice: {:?}",
        plan.duplicates
    );
}

#[test]
fn enospc_on_nth_append_is_retried_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) =
        start::<4096>(Writer::builder(dir), dir, LogOptions::default());
    const TIMES: u64 = 5;
    control.with(|p| {
        p.fail_appends = Window {
            from: 3,
            times: TIMES,
        }
    });
    let mut accepted = Vec::new();
    for i in 0..2 {
        emitter.emit(ev(i)).unwrap();
        accepted.push(ev(i));
        assert_flush_ok(&emitter);
    }
    assert_eq!(control.lock().appends, 2);
    assert!(emitter.stats().healthy);

    // Append 3 fails (and its 4 retries): hold it until a flush is waiting, so the flush sees
    // the failure.
    control.with(|p| p.hold = true);
    emitter.emit(ev(2)).unwrap();
    accepted.push(ev(2));
    control.wait_held();
    let flusher = {
        let emitter = emitter.clone();
        std::thread::spawn(move || assert_flush_io_err(&emitter, ENOSPC))
    };
    std::thread::sleep(Duration::from_millis(50));
    control.release();
    flusher.join().expect("the flush during the failure errs");

    // The writer retries with backoff until append 8 succeeds; a flush meanwhile may see the
    // remaining failures.
    flush_through_faults(&emitter, TIMES - 1);
    let stats = emitter.stats();
    assert!(stats.healthy, "healthy again after recovery: {stats:?}");
    assert_eq!(stats.write_errors, TIMES, "{stats:?}");
    {
        let plan = control.lock();
        assert_eq!(plan.injected_appends, TIMES);
        assert_eq!(plan.appends, 2 + TIMES + 1);
        // The first failure finds the writer healthy; every retry finds it unhealthy.
        let mut expected = vec![false; TIMES as usize];
        expected[0] = true;
        assert_eq!(plan.healthy_at_fault, expected, "healthy at each fault");
    }

    emit_accepted(&emitter, 3..50, &mut accepted);
    assert_flush_ok(&emitter);
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(report.emitted, 50);
    assert_eq!(report.persisted, 50);
    assert_eq!(report.dropped, 0);
    assert_eq!(report.rejected, 0);
    assert_eq!(report.queued, 0);
    assert_eq!(report.write_errors, TIMES);
    assert_eq!(report.emitted, report.persisted + report.dropped);
    assert!(report.healthy);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

/// Lines up a batch: holds the writer in its append of event 0, emits `1..=n`, arms `arm`,
/// releases. The writer then takes events 1..=n as one batch.
fn line_up_batch(
    emitter: &Emitter<Vec<u8>>,
    control: &Control,
    n: u64,
    arm: impl FnOnce(&mut Plan),
) -> Vec<Vec<u8>> {
    control.with(|p| p.hold = true);
    emitter.emit(ev(0)).unwrap();
    control.wait_held();
    for i in 1..=n {
        emitter.emit(ev(i)).unwrap();
    }
    control.with(arm);
    control.release();
    (0..=n).map(ev).collect()
}

/// Flushes until one succeeds, while armed faults play out: each failed flush saw at least one
/// new failure, so at most `faults` of them fail (and only with `FlushError::Io`).
#[track_caller]
fn flush_through_faults(emitter: &Emitter<Vec<u8>>, faults: u64) {
    let mut errors = Vec::new();
    loop {
        match emitter.flush_timeout(SOON) {
            Ok(()) => return,
            Err(FlushError::Io(e)) => errors.push(e),
            Err(e) => panic!("flush: {e:?}"),
        }
        assert!(
            errors.len() as u64 <= faults,
            "more failed flushes than injected faults ({faults}): {errors:?}"
        );
    }
}

#[test]
fn short_write_resumes_at_next_seq_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) =
        start::<4096>(Writer::builder(dir), dir, LogOptions::default());
    let mut accepted = line_up_batch(&emitter, &control, 20, |p| p.short_write = Some(3));
    flush_through_faults(&emitter, 1);
    {
        let plan = control.lock();
        assert_eq!(plan.short_writes, 1);
        // Event 0 alone; then the batch 1..=20 of which 3 frames got in before the failure;
        // then the writer resumes at 4, where the sink says it is.
        assert_eq!(plan.inner_batches, [(0, 1), (1, 3), (4, 17)]);
        assert_eq!(plan.healthy_at_fault, [true]);
    }
    let stats = emitter.stats();
    assert!(stats.healthy, "{stats:?}");
    assert_eq!(stats.write_errors, 1);
    assert_eq!(stats.persisted, 21);

    emit_accepted(&emitter, 21..40, &mut accepted);
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (40, 40, 0)
    );
    assert_eq!(report.write_errors, 1);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

#[test]
fn short_write_then_failed_sync_rewrites_from_the_last_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) =
        start::<4096>(Writer::builder(dir), dir, LogOptions::default());
    let accepted = line_up_batch(&emitter, &control, 20, |p| {
        p.short_write = Some(5);
        // Sync 1 is event 0's; sync 2 comes after the short write and the rest of the batch.
        p.fail_syncs = Window { from: 2, times: 1 };
    });
    flush_through_faults(&emitter, 2);
    {
        let plan = control.lock();
        assert_eq!(plan.short_writes, 1);
        assert_eq!(plan.injected_syncs, 1);
        // The failed sync threw away 1..=20 (back to the sync after event 0), and the writer
        // appended them all again, from 1.
        assert_eq!(plan.inner_batches, [(0, 1), (1, 5), (6, 15), (1, 20)]);
    }
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (21, 21, 0)
    );
    assert_eq!(report.write_errors, 2);
    assert!(report.healthy);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

#[test]
fn failed_sync_rolls_back_to_the_last_sync_and_rewrites_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let options = LogOptions {
        segment_bytes: 4096,
        ..LogOptions::default()
    };
    let (writer, emitter, control) = start::<4096>(Writer::builder(dir), dir, options);
    let mut accepted = Vec::new();
    for i in 0..5 {
        emitter.emit(big(i)).unwrap();
        accepted.push(big(i));
    }
    assert_flush_ok(&emitter);

    // Line up one batch that spans several segments: hold the writer in its append of event 5,
    // queue 6..30, and break every sync after event 5's. Event 5 fills segment 0 (6 records of
    // 632 bytes fit in 4096); 6..30 go into new segments, whose rotation fsyncs the old one,
    // but no `sync` succeeds after event 5.
    control.with(|p| p.hold = true);
    emitter.emit(big(5)).unwrap();
    accepted.push(big(5));
    control.wait_held();
    for i in 6..30 {
        emitter.emit(big(i)).unwrap();
        accepted.push(big(i));
    }
    control.with(|p| {
        p.fail_syncs = Window {
            from: p.syncs + 2,
            times: u64::MAX / 2,
        };
        p.hold = false;
    });
    assert_flush_io_err(&emitter, EIO);
    let stats = emitter.stats();
    assert!(!stats.healthy, "unhealthy while syncs fail: {stats:?}");
    // `write_errors` is published a moment after flushers hear of the failure.
    wait_until("write_errors counts the failure", || {
        emitter.stats().write_errors >= 1
    });

    // Stop the writer inside its next append (a retry after a failed sync and rollback) and
    // look at the disk: exactly what the last successful sync covered, in the segments it had.
    control.with(|p| p.hold = true);
    control.wait_held();
    assert_log(dir, &accepted[..6]);
    let segments = Reader::open(dir).unwrap().segments().unwrap();
    assert_eq!(
        segments
            .iter()
            .map(|s| (s.first_seq, s.bytes))
            .collect::<Vec<_>>(),
        [(
            0,
            (ringwal::format::HEADER_LEN + 6 * (ringwal::format::FRAME_HEADER_LEN + 600)) as u64
        )],
        "the rollback removes the segments created since the last sync"
    );
    assert!(
        control.lock().inner_batches.contains(&(6, 24)),
        "the batch 6..30 went in whole before its sync failed: {:?}",
        control.lock().inner_batches
    );

    control.with(|p| p.fail_syncs = Window::default());
    control.release();
    flush_after_lift(&emitter);
    let stats = emitter.stats();
    assert!(stats.healthy, "{stats:?}");
    assert_eq!(stats.write_errors, control.lock().injected_syncs);
    assert_eq!(stats.persisted, 30);

    for i in 30..40 {
        emitter.emit(big(i)).unwrap();
        accepted.push(big(i));
    }
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (40, 40, 0)
    );
    assert_eq!(report.write_errors, control.lock().injected_syncs);
    assert!(report.segments > 5, "segments rotated: {report:?}");
    {
        // The first failed sync found the writer healthy, every later one unhealthy.
        let plan = control.lock();
        assert!(!plan.healthy_at_fault.is_empty());
        assert!(plan.healthy_at_fault[0]);
        assert!(
            plan.healthy_at_fault[1..].iter().all(|h| !h),
            "{:?}",
            plan.healthy_at_fault
        );
    }
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

#[test]
fn disk_full_for_a_while_then_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) =
        start::<4096>(Writer::builder(dir), dir, LogOptions::default());
    let mut accepted = Vec::new();
    emit_accepted(&emitter, 0..10, &mut accepted);
    assert_flush_ok(&emitter);
    assert!(emitter.stats().healthy);

    control.with(|p| p.disk_full = true);
    emit_accepted(&emitter, 10..30, &mut accepted);
    assert_flush_io_err(&emitter, ENOSPC);
    let stats = emitter.stats();
    assert!(
        !stats.healthy,
        "unhealthy while the disk is full: {stats:?}"
    );
    // `write_errors` is published a moment after flushers hear of the failure.
    wait_until("write_errors counts the failure", || {
        emitter.stats().write_errors >= 1
    });
    // Still accepting (the ring has room), and queueing.
    emit_accepted(&emitter, 30..60, &mut accepted);
    // A few retries later (backoff 1, 2, 4, ... ms): still failing, nothing lost.
    wait_until("three failed retries", || emitter.stats().write_errors >= 3);
    let stats = emitter.stats();
    assert!(!stats.healthy);
    assert_eq!(stats.emitted, 60);
    assert_eq!(
        stats.emitted,
        stats.persisted + stats.dropped + stats.queued
    );
    assert!(stats.queued >= 30, "{stats:?}");
    assert_flush_io_err(&emitter, ENOSPC);

    control.with(|p| p.disk_full = false);
    flush_after_lift(&emitter);
    let stats = emitter.stats();
    assert!(stats.healthy, "{stats:?}");
    assert_eq!(stats.write_errors, control.lock().injected_appends);
    assert_eq!(stats.persisted, 60);
    assert_eq!(stats.queued, 0);

    emit_accepted(&emitter, 60..70, &mut accepted);
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (70, 70, 0)
    );
    assert_eq!(report.rejected, 0);
    assert_eq!(report.emitted, report.persisted + report.dropped);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

#[test]
fn reject_when_unhealthy_refuses_while_failing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) = start::<4096>(
        Writer::builder(dir).reject_when_unhealthy(true),
        dir,
        LogOptions::default(),
    );
    control.with(|p| p.disk_full = true);
    emitter.emit(ev(0)).unwrap();
    let mut accepted = vec![ev(0)];
    assert_flush_io_err(&emitter, ENOSPC);
    assert!(!emitter.stats().healthy);

    for i in 1..=5 {
        match emitter.emit(ev(i)) {
            Err(EmitError::Unhealthy(e)) => assert_eq!(e, ev(i), "the event comes back"),
            other => panic!("emit while unhealthy: {other:?}"),
        }
    }
    let stats = emitter.stats();
    assert_eq!((stats.emitted, stats.rejected), (1, 5), "{stats:?}");

    control.with(|p| p.disk_full = false);
    flush_after_lift(&emitter);
    assert!(emitter.stats().healthy);
    emit_accepted(&emitter, 6..10, &mut accepted);
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!((report.emitted, report.rejected), (5, 5));
    assert_eq!((report.persisted, report.dropped), (5, 0));
    assert_eq!(report.write_errors, control.lock().injected_appends);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

/// A sink that never recovers: shutdown gives up after its timeout and hands back every
/// accepted record not confirmed written.
fn shutdown_gives_up(break_it: impl FnOnce(&mut Plan), code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) = start::<4096>(
        Writer::builder(dir).shutdown_timeout(Duration::from_millis(200)),
        dir,
        LogOptions::default(),
    );
    let mut accepted = Vec::new();
    emit_accepted(&emitter, 0..5, &mut accepted);
    assert_flush_ok(&emitter);

    control.with(break_it);
    emit_accepted(&emitter, 5..20, &mut accepted);
    // Some taken by the writer (and failing), the rest still in the ring: both come back.
    wait_until("a failure", || emitter.stats().write_errors > 0);
    let t0 = Instant::now();
    let err = match writer.shutdown() {
        Ok(report) => panic!("shutdown on a dead disk succeeded: {report:?}"),
        Err(e) => e,
    };
    let took = t0.elapsed();
    eprintln!("shutdown gave up after {took:?}: {err}");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(err.error.kind(), os_error(code).kind(), "{}", err.error);

    let unwritten: Vec<(u64, &[u8], u64)> = err
        .unwritten
        .iter()
        .map(|e| (e.seq, &e.payload[..], e.dropped_before))
        .collect();
    let expected: Vec<(u64, &[u8], u64)> = (5..20u64)
        .map(|i| (i, &accepted[i as usize][..], 0))
        .collect();
    assert_eq!(
        unwritten, expected,
        "unwritten: the accepted-but-unpersisted events"
    );
    let report = &err.report;
    assert_eq!(report.emitted, 20);
    assert_eq!(report.persisted, 5);
    assert_eq!(report.dropped, 0);
    assert_eq!(
        report.emitted,
        report.persisted + report.dropped + err.unwritten.len() as u64
    );
    assert_eq!(report.queued, err.unwritten.len() as u64);
    assert!(!report.healthy);
    assert!(report.write_errors >= 1);

    // The log holds exactly what was synced (a failed sync rolled back what came after).
    assert_clean_appends(&control);
    assert_log(dir, &accepted[..5]);
    // Closed after shutdown.
    assert!(matches!(emitter.emit(ev(99)), Err(EmitError::Closed(_))));
}

#[test]
fn shutdown_on_a_full_disk_returns_the_unwritten_records() {
    shutdown_gives_up(|p| p.disk_full = true, ENOSPC);
}

#[test]
fn shutdown_with_failing_syncs_returns_the_unconfirmed_records() {
    shutdown_gives_up(|p| p.syncs_broken = true, EIO);
}

#[test]
fn reject_overflow_fills_the_ring_while_the_disk_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) = start::<8>(
        Writer::builder(dir).overflow(Overflow::Reject),
        dir,
        LogOptions::default(),
    );
    control.with(|p| p.disk_full = true);
    emitter.emit(ev(0)).unwrap();
    let mut accepted = vec![ev(0)];
    // Once failing, the writer leaves the ring alone: exactly 8 more fit.
    wait_until("unhealthy", || !emitter.stats().healthy);
    emit_accepted(&emitter, 1..=8, &mut accepted);
    for i in 9..20 {
        match emitter.emit(ev(i)) {
            Err(EmitError::Full(e)) => assert_eq!(e, ev(i)),
            other => panic!("emit {i} into a full ring: {other:?}"),
        }
    }
    let stats = emitter.stats();
    assert_eq!((stats.emitted, stats.rejected, stats.queued), (9, 11, 9));
    assert_flush_io_err(&emitter, ENOSPC);

    control.with(|p| p.disk_full = false);
    flush_after_lift(&emitter);
    assert!(emitter.stats().healthy);
    for i in 20..30 {
        emitter.emit(ev(i)).unwrap();
        accepted.push(ev(i));
        if i % 4 == 0 {
            assert_flush_ok(&emitter);
        }
    }
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!((report.emitted, report.rejected), (19, 11));
    assert_eq!((report.persisted, report.dropped), (19, 0));
    assert_eq!(report.write_errors, control.lock().injected_appends);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

#[test]
fn drop_oldest_while_the_disk_fails_records_the_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) = start::<8>(
        Writer::builder(dir).overflow(Overflow::DropOldest),
        dir,
        LogOptions::default(),
    );
    control.with(|p| p.disk_full = true);
    emitter.emit(ev(0)).unwrap();
    wait_until("unhealthy", || !emitter.stats().healthy);
    // The ring keeps the newest 8 of these 40: 1..=32 are evicted.
    for i in 1..=40 {
        emitter.emit(ev(i)).unwrap();
    }
    let stats = emitter.stats();
    // (`dropped` counts evictions when the writer next pops, so it may still be 0 here.)
    assert_eq!((stats.emitted, stats.rejected), (41, 0));
    eprintln!("while failing, after 32 evictions: {stats:?}");

    control.with(|p| p.disk_full = false);
    flush_after_lift(&emitter);
    let stats = emitter.stats();
    assert_eq!((stats.persisted, stats.dropped, stats.queued), (9, 32, 0));
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (41, 9, 32)
    );
    assert_eq!(report.emitted, report.persisted + report.dropped);
    assert_clean_appends(&control);

    let entries: Vec<Entry> = Reader::open(dir)
        .unwrap()
        .iter()
        .collect::<io::Result<_>>()
        .unwrap();
    let got: Vec<(u64, Vec<u8>, u64)> = entries
        .into_iter()
        .map(|e| (e.seq, e.payload, e.dropped_before))
        .collect();
    let mut expected = vec![(0, ev(0), 0), (1, ev(33), 32)];
    expected.extend((34..=40).map(|i| (i - 32, ev(i), 0)));
    assert_eq!(got, expected);
}

#[test]
fn block_overflow_waits_through_a_failure_and_resumes_after_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) = start::<8>(
        Writer::builder(dir).overflow(Overflow::Block(Some(Duration::from_millis(100)))),
        dir,
        LogOptions::default(),
    );
    control.with(|p| p.disk_full = true);
    emitter.emit(ev(0)).unwrap();
    wait_until("unhealthy", || !emitter.stats().healthy);
    let mut accepted = vec![ev(0)];
    emit_accepted(&emitter, 1..=8, &mut accepted);
    // The ring is full and the writer is not draining it: Block gives up after its timeout.
    let t0 = Instant::now();
    match emitter.emit(ev(99)) {
        Err(EmitError::Full(e)) => assert_eq!(e, ev(99)),
        other => panic!("blocked emit into a full ring: {other:?}"),
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(emitter.stats().rejected, 1);

    // A blocked emitter is let in once the disk recovers and the writer drains the ring.
    let blocked = {
        let emitter = emitter.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut result = Ok(());
            while t0.elapsed() < SOON {
                result = emitter.emit(ev(9));
                if result.is_ok() {
                    break;
                }
            }
            result.map_err(|e| e.to_string())
        })
    };
    std::thread::sleep(Duration::from_millis(30));
    control.with(|p| p.disk_full = false);
    blocked
        .join()
        .unwrap()
        .expect("the blocked emit goes through");
    accepted.push(ev(9));
    flush_after_lift(&emitter);
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (10, 10, 0)
    );
    assert_eq!(report.emitted, report.persisted + report.dropped);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

#[test]
fn failed_sync_under_interval_policy_is_reported_and_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) = start::<4096>(
        Writer::builder(dir).sync(SyncPolicy::Interval(Duration::from_millis(20))),
        dir,
        LogOptions::default(),
    );
    let mut accepted = Vec::new();
    emit_accepted(&emitter, 0..10, &mut accepted);
    assert_flush_ok(&emitter);
    control.with(|p| p.syncs_broken = true);
    emit_accepted(&emitter, 10..20, &mut accepted);
    assert_flush_io_err(&emitter, EIO);
    // Unhealthy for as long as syncs fail, not only until the next re-append succeeds (it
    // used to flicker back to true between each re-append and the next failing sync), and
    // retried with a growing backoff (it used to start again at 1 ms after each re-append).
    let before = control.lock().injected_syncs;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(300) {
        assert!(!emitter.stats().healthy, "healthy while syncs fail");
        std::thread::yield_now();
    }
    let tried = control.lock().injected_syncs - before;
    assert!(tried <= 12, "{tried} failing syncs in 300 ms: no backoff");
    control.with(|p| p.syncs_broken = false);
    flush_after_lift(&emitter);
    assert!(emitter.stats().healthy);
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (20, 20, 0)
    );
    assert_eq!(report.write_errors, control.lock().injected_syncs);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

/// Under `SyncPolicy::Never` the writer syncs once, at shutdown. If that sync keeps failing,
/// shutdown must still end by its timeout (with an error), like any other failure.
#[test]
fn never_policy_shutdown_with_a_failing_final_sync_ends_by_its_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) = start::<4096>(
        Writer::builder(dir)
            .sync(SyncPolicy::Never)
            .shutdown_timeout(Duration::from_millis(200)),
        dir,
        LogOptions {
            durable: false,
            ..LogOptions::default()
        },
    );
    let mut accepted = Vec::new();
    emit_accepted(&emitter, 0..10, &mut accepted);
    assert_flush_ok(&emitter);
    control.with(|p| p.syncs_broken = true);

    let (tx, rx) = std::sync::mpsc::channel();
    let t0 = Instant::now();
    let shutting = std::thread::spawn(move || {
        let _ = tx.send(writer.shutdown());
    });
    let outcome = rx.recv_timeout(Duration::from_secs(5));
    let waited = t0.elapsed();
    let syncs_tried = control.lock().injected_syncs;
    if outcome.is_err() {
        // Let it finish, then report.
        control.with(|p| p.syncs_broken = false);
        let late = rx.recv_timeout(SOON);
        shutting.join().unwrap();
        panic!(
            "shutdown (timeout 200 ms) had not returned after {waited:?}; the final sync failed \
             {syncs_tried} times meanwhile; once the sync worked again it returned {late:?}"
        );
    }
    shutting.join().unwrap();
    match outcome.unwrap() {
        Ok(report) => panic!("shutdown reported success although its sync failed: {report:?}"),
        Err(err) if err.error.kind() == io::ErrorKind::TimedOut => {
            // The other documented ending: the writer thread did not get back from the sink
            // within the timeout plus its grace (on a loaded 2-core CI machine, descheduled
            // between failing syncs), so shutdown left it detached. Still bounded, still an
            // error, and the counters still add up (nothing handed back: `queued` counts it).
            let report = &err.report;
            assert!(err.unwritten.is_empty(), "{err:?}");
            assert_eq!(
                report.emitted,
                report.persisted + report.dropped + report.queued,
                "{report:?}"
            );
            assert!(!report.healthy, "{report:?}");
        }
        Err(err) => {
            assert_eq!(err.error.kind(), os_error(EIO).kind(), "{err:?}");
            let report = &err.report;
            assert_eq!(
                report.emitted,
                report.persisted + report.dropped + err.unwritten.len() as u64
            );
            assert!(report.write_errors >= 1, "{report:?}");
        }
    }
    // Nothing was lost by the rollback (not durable: it goes back to the last append only).
    assert_log(dir, &accepted);
}

#[test]
fn shutdown_waits_through_a_failure_that_clears_before_its_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter, control) = start::<4096>(
        Writer::builder(dir).shutdown_timeout(SOON),
        dir,
        LogOptions::default(),
    );
    control.with(|p| p.disk_full = true);
    let accepted: Vec<_> = (0..20).map(ev).collect();
    for e in &accepted {
        emitter.emit(e.clone()).unwrap();
    }
    wait_until("a failure", || emitter.stats().write_errors > 0);
    let shutting = std::thread::spawn(move || writer.shutdown());
    std::thread::sleep(Duration::from_millis(50));
    control.with(|p| p.disk_full = false);
    let report = shutting
        .join()
        .unwrap()
        .expect("shutdown succeeds once the disk recovers");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (20, 20, 0)
    );
    assert!(report.healthy);
    assert_eq!(report.write_errors, control.lock().injected_appends);
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

/// A record of about 1 KiB, as in the small-disk reports.
fn kib(i: u64) -> Vec<u8> {
    let mut p = ev(i);
    p.resize(1000, b'.');
    p
}

/// Lines up one batch of `kib` records: holds the writer in its append of record `first`,
/// emits `first + 1..first + 1 + n`, arms `arm`, releases. Returns every record emitted.
fn line_up_kib_batch(
    emitter: &Emitter<Vec<u8>>,
    control: &Control,
    first: u64,
    n: u64,
    arm: impl FnOnce(&mut Plan),
) -> Vec<Vec<u8>> {
    control.with(|p| p.hold = true);
    emitter.emit(kib(first)).unwrap();
    control.wait_held();
    for i in first + 1..first + 1 + n {
        emitter.emit(kib(i)).unwrap();
    }
    control.with(arm);
    control.release();
    (first..first + 1 + n).map(kib).collect()
}

/// Reads the log back: it must be a run of `accepted` with consecutive sequence numbers
/// (`accepted[i]` is record `i`), ending at `end`. Returns the first record it holds.
fn assert_log_run(dir: &Path, accepted: &[Vec<u8>], end: u64) -> u64 {
    let entries: Vec<Entry> = Reader::open(dir)
        .expect("open the reader")
        .iter()
        .collect::<io::Result<_>>()
        .expect("the log reads back without error");
    let first = entries.first().map_or(end, |e| e.seq);
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (first..end).collect::<Vec<_>>(), "sequence numbers");
    for e in &entries {
        assert!(
            e.payload == accepted[e.seq as usize],
            "record {} holds another event",
            e.seq
        );
    }
    first
}

/// Issue 11 item 1, first finding: a disk smaller than one big batch, but with room for more
/// than the retention bound. The whole batch never fits; the writer must write it in pieces,
/// syncing each so retention can delete the oldest segments, and recover by itself.
#[test]
fn small_disk_with_retention_writes_a_batch_bigger_than_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The report's 256 KiB segments, 2 MiB retention and 5 MiB disk, scaled down 16 times.
    let options = LogOptions {
        segment_bytes: 16 << 10,
        retain: Retain::Bytes(128 << 10),
        ..LogOptions::default()
    };
    const CAPACITY: u64 = 320 << 10;
    let (writer, emitter, control) = start::<4096>(Writer::builder(dir), dir, options);
    // Fill the log to its retention bound first.
    let mut accepted: Vec<Vec<u8>> = Vec::new();
    for i in 0..150 {
        emitter.emit(kib(i)).unwrap();
        accepted.push(kib(i));
    }
    assert_flush_ok(&emitter);
    assert!(dir_bytes(dir) < CAPACITY);

    // One batch of 400 KiB: more than the whole disk.
    const BATCH: u64 = 400;
    accepted.extend(line_up_kib_batch(&emitter, &control, 150, BATCH, |p| {
        p.capacity = Some(CAPACITY)
    }));
    let total = accepted.len() as u64;
    wait_until("every record of the big batch is written", || {
        emitter.stats().persisted == total
    });
    flush_through_faults(&emitter, u64::MAX);
    let stats = emitter.stats();
    assert!(stats.healthy, "healthy again by itself: {stats:?}");
    assert!(
        stats.write_errors >= 1,
        "the whole batch did not fit: {stats:?}"
    );
    assert_eq!(stats.write_errors, control.lock().injected_appends);
    assert!(dir_bytes(dir) <= CAPACITY);
    {
        let plan = control.lock();
        assert!(
            !plan.inner_batches.contains(&(151, BATCH)),
            "the batch went in in pieces: {:?}",
            plan.inner_batches
        );
        // Every accepted record reached the log once, in order.
        let mut next = 0;
        for &(first, records) in &plan.inner_batches {
            assert_eq!(first, next, "batches in order: {:?}", plan.inner_batches);
            next += records;
        }
        assert_eq!(next, total);
    }
    assert_clean_appends(&control);
    let first = assert_log_run(dir, &accepted, total);
    assert!(
        first > 150,
        "retention deleted the oldest records (log starts at {first})"
    );

    // Still works afterwards, and the counters add up.
    for i in total..total + 20 {
        emitter.emit(kib(i)).unwrap();
        accepted.push(kib(i));
    }
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(report.emitted, total + 20);
    assert_eq!(report.persisted, total + 20);
    assert_eq!(report.emitted, report.persisted + report.dropped);
    assert!(report.healthy);
    assert_clean_appends(&control);
    assert_log_run(dir, &accepted, total + 20);
}

/// Issue 11 item 1, second finding: room for only part of a queued batch. What fits is
/// written (partial progress); once the disk has room again, everything lands.
#[test]
fn small_disk_writes_what_fits_of_a_batch_then_the_rest_after_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let options = LogOptions {
        segment_bytes: 16 << 10,
        ..LogOptions::default()
    };
    const CAPACITY: u64 = 64 << 10;
    let (writer, emitter, control) = start::<4096>(Writer::builder(dir), dir, options);
    const BATCH: u64 = 200;
    let accepted = line_up_kib_batch(&emitter, &control, 0, BATCH, |p| {
        p.capacity = Some(CAPACITY)
    });
    wait_until("part of the batch is written", || {
        emitter.stats().persisted > 1
    });
    // Wait for the writer to get stuck: failures keep coming and nothing more fits.
    let mut last = (0, 0);
    wait_until("the writer fills the disk", || {
        let now = (emitter.stats().persisted, control.lock().injected_appends);
        let stuck = now.0 == last.0 && now.1 > last.1 + 3;
        if now.0 != last.0 {
            last = now;
        }
        stuck
    });
    let stats = emitter.stats();
    assert!(!stats.healthy, "unhealthy while records wait: {stats:?}");
    assert!(
        stats.persisted > 1 && stats.persisted < BATCH + 1,
        "some, not all, of the batch is in: {stats:?}"
    );
    assert!(dir_bytes(dir) <= CAPACITY);
    // Durable records are a prefix of the accepted ones.
    assert_eq!(assert_log_run(dir, &accepted, stats.persisted), 0);
    assert_flush_io_err(&emitter, ENOSPC);

    control.with(|p| p.capacity = None);
    flush_after_lift(&emitter);
    let stats = emitter.stats();
    assert!(stats.healthy, "{stats:?}");
    assert_eq!(stats.persisted, BATCH + 1);
    assert_eq!(stats.write_errors, control.lock().injected_appends);
    let report = writer.shutdown().expect("clean shutdown");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (BATCH + 1, BATCH + 1, 0)
    );
    assert_clean_appends(&control);
    assert_log(dir, &accepted);
}

/// A file system whose `fdatasync` calls numbered in `failing` (1-based) fail with EIO, as
/// a disk does that loses the write-back of pages it was given: after such a failure Linux
/// marks the pages clean, so a second fsync "succeeds" without them ever reaching the disk.
#[derive(Debug, Clone, Default)]
struct FailingSync {
    failing: Arc<Mutex<Vec<u64>>>,
    calls: Arc<std::sync::atomic::AtomicU64>,
}

impl FailingSync {
    /// The next `n` fdatasync calls fail.
    fn fail_next(&self, n: u64) {
        let done = self.calls.load(std::sync::atomic::Ordering::SeqCst);
        *self.failing.lock().unwrap() = (done + 1..=done + n).collect();
    }
}

impl ringwal::vfs::Vfs for FailingSync {
    fn sync_data(&self, file: &std::fs::File, path: &Path) -> io::Result<()> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.failing.lock().unwrap().contains(&call) {
            return Err(os_error(EIO));
        }
        file.sync_data()
            .map_err(|e| io::Error::new(e.kind(), format!("{path:?}: {e}")))
    }
}

/// Under `SyncPolicy::Never` (a log that is not `durable`) a failed sync must roll the log
/// back to its last successful sync, as README "Reliability" says: the records appended
/// since are not durable, and a second fsync succeeding says nothing about them (the failed
/// one may have dropped their pages). The log used to roll back only to its last append, so
/// the retried sync reported them durable.
#[test]
fn not_durable_failed_sync_rolls_back_to_the_last_successful_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let vfs = FailingSync::default();
    let options = LogOptions {
        durable: false,
        segment_bytes: 128,
        ..LogOptions::default()
    };
    let mut log = SegmentLog::open_with(vfs.clone(), tmp.path(), options).unwrap();
    let append = |log: &mut SegmentLog<FailingSync>, n: u64| {
        for _ in 0..n {
            let mut frames = Vec::new();
            ringwal::format::encode_frame(&mut frames, log.next_seq(), 0, &ev(log.next_seq()));
            log.append(&Batch::new(&frames, log.next_seq(), 1).unwrap())
                .unwrap();
        }
    };
    append(&mut log, 3);
    log.sync().expect("a healthy sync");
    assert_eq!(log.next_seq(), 3);
    // Several segments' worth (128-byte segments), so the rollback crosses rotations.
    append(&mut log, 12);
    assert!(log.segments() > 2, "{} segments", log.segments());
    // The next fdatasync fails (sealed segments are synced first: the first one of them).
    vfs.fail_next(1);
    let err = log.sync().expect_err("the injected EIO");
    assert_eq!(err.kind(), os_error(EIO).kind(), "{err}");
    assert_eq!(
        log.next_seq(),
        3,
        "after a failed sync the log must stand at its last successful sync"
    );
    // It goes on from there, and what it holds is exactly that.
    append(&mut log, 2);
    log.sync().expect("a healthy sync");
    drop(log);
    let seqs: Vec<u64> = Reader::open(tmp.path())
        .unwrap()
        .iter()
        .map(|e| e.unwrap().seq)
        .collect();
    assert_eq!(seqs, (0..5).collect::<Vec<_>>());
}

/// A `Writer` under `SyncPolicy::Never` on a log whose first `failures` fdatasyncs (the
/// shutdown's, and its retries) fail: 10 records emitted and written, then the shutdown. None
/// may be reported persisted: all 10 are counted as dropped, and the log shows them as its
/// trailing gap. Returns the file system, to count its syncs.
fn never_run_whose_shutdown_syncs_fail(failures: u64) -> FailingSync {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let vfs = FailingSync::default();
    let options = LogOptions {
        durable: false,
        ..LogOptions::default()
    };
    let log = SegmentLog::open_with(vfs.clone(), dir, options).unwrap();
    vfs.fail_next(failures);
    let (writer, emitter) = Writer::builder(dir)
        .sync(SyncPolicy::Never)
        .shutdown_timeout(SOON)
        .start_with_sink::<Vec<u8>, _>(log)
        .expect("start the writer");
    for i in 0..10 {
        emitter.emit(ev(i)).unwrap();
    }
    emitter
        .flush_timeout(SOON)
        .expect("written (Never: not synced)");
    let report = writer.shutdown().expect("a later sync works");
    assert_eq!(
        (report.emitted, report.persisted, report.dropped),
        (10, 0, 10),
        "{report:?}"
    );
    let reader = Reader::open(dir).unwrap();
    let mut iter = reader.iter();
    assert!(iter.next().is_none(), "no record survives the failed sync");
    assert_eq!(iter.trailing_gap().dropped, 10, "the log shows the loss");
    vfs
}

/// The same through a `Writer` under `SyncPolicy::Never`: the shutdown's sync fails once and
/// then works. The records appended before it cannot be reported persisted: they are counted
/// as dropped, and the log shows the gap (README "Reliability"). It used to report them all
/// persisted (the retried fsync succeeding "as if nothing happened").
#[test]
fn never_policy_failed_shutdown_sync_counts_the_unsynced_records_as_dropped() {
    never_run_whose_shutdown_syncs_fail(1);
}

/// As above, with retention deleting the segment of the last successful sync before the
/// failed one: the rollback then goes to the start of the oldest segment left (every record
/// after it is unsynced), and the log goes on from there, readable, without a gap inside.
#[test]
fn not_durable_failed_sync_after_retention_passed_the_last_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let vfs = FailingSync::default();
    let options = LogOptions {
        durable: false,
        segment_bytes: 128,
        retain: Retain::Segments(2),
        ..LogOptions::default()
    };
    let mut log = SegmentLog::open_with(vfs.clone(), tmp.path(), options).unwrap();
    let append = |log: &mut SegmentLog<FailingSync>, n: u64| {
        for _ in 0..n {
            let mut frames = Vec::new();
            ringwal::format::encode_frame(&mut frames, log.next_seq(), 0, &ev(log.next_seq()));
            log.append(&Batch::new(&frames, log.next_seq(), 1).unwrap())
                .unwrap();
        }
    };
    append(&mut log, 3);
    log.sync().expect("a healthy sync");
    append(&mut log, 12);
    let oldest = Reader::open(tmp.path()).unwrap().segments().unwrap()[0].first_seq;
    assert!(
        oldest > 3,
        "retention deleted the synced segment: oldest {oldest}"
    );
    vfs.fail_next(1);
    log.sync().expect_err("the injected EIO");
    assert_eq!(
        log.next_seq(),
        oldest,
        "rolled back to the oldest segment's start"
    );
    append(&mut log, 2);
    log.sync().expect("a healthy sync, the rollback done");
    drop(log);
    let seqs: Vec<u64> = Reader::open(tmp.path())
        .unwrap()
        .iter()
        .map(|e| e.unwrap().seq)
        .collect();
    assert_eq!(seqs, (oldest..oldest + 2).collect::<Vec<_>>());
    let reopened = SegmentLog::open(tmp.path(), LogOptions::default()).unwrap();
    assert_eq!(reopened.next_seq(), oldest + 2);
}

/// Under `SyncPolicy::Never`, the shutdown's sync fails (1), and so does the one after the gap
/// marker that records the loss (2): the marker is rolled back with the rest, and must be
/// written again (the log must still show every event counted as dropped); the third works.
#[test]
fn never_policy_the_gap_marker_survives_a_failed_sync_after_it() {
    let vfs = never_run_whose_shutdown_syncs_fail(2);
    assert_eq!(vfs.calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}
