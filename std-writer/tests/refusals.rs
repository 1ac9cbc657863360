//! Every refusal shows in the log (issue 12 §3): under each overflow policy, for `Full`,
//! `Closed` and a refusal storm racing shutdown, the log's own gap counts add up to the
//! report's losses, and every `emit` call is counted once.

use ringwal::{EmitError, Emitter, Overflow, Reader, Report, Writer};
use std::path::Path;
use std::time::Duration;

/// What the log itself says: records, and the losses its gaps (and trailing markers) record.
fn log_totals(dir: &Path) -> (u64, u64, u64) {
    let mut iter = Reader::open(dir).unwrap().iter();
    let (mut records, mut dropped, mut refused) = (0, 0, 0);
    let mut expected = None;
    for entry in iter.by_ref() {
        let entry = entry.unwrap();
        if let Some(e) = expected {
            assert_eq!(entry.seq, e, "consecutive sequence numbers");
        }
        expected = Some(entry.seq + 1);
        records += 1;
        dropped += entry.dropped_before;
        refused += entry.refused_before;
    }
    let tail = iter.trailing_gap();
    (records, dropped + tail.dropped, refused + tail.refused)
}

#[derive(Default, Debug, Clone, Copy)]
struct Outcomes {
    ok: u64,
    full: u64,
    closed: u64,
    unhealthy: u64,
}

impl Outcomes {
    fn refused(&self) -> u64 {
        self.full + self.closed + self.unhealthy
    }
    fn add(&mut self, o: Outcomes) {
        self.ok += o.ok;
        self.full += o.full;
        self.closed += o.closed;
        self.unhealthy += o.unhealthy;
    }
}

fn emit_counted(e: &Emitter<Vec<u8>>, v: Vec<u8>, out: &mut Outcomes) -> bool {
    match e.emit(v) {
        Ok(()) => out.ok += 1,
        Err(EmitError::Full(_)) => out.full += 1,
        Err(EmitError::Closed(_)) => {
            out.closed += 1;
            return false;
        }
        Err(EmitError::Unhealthy(_)) => out.unhealthy += 1,
    }
    true
}

fn check_log_matches_report(dir: &Path, report: &Report) {
    assert_eq!(
        report.emitted,
        report.persisted + report.dropped,
        "conservation: {report:?}"
    );
    let (records, dropped, refused) = log_totals(dir);
    assert_eq!(records, report.persisted, "records in the log: {report:?}");
    assert_eq!(dropped, report.dropped, "evictions in the log: {report:?}");
    assert_eq!(refused, report.rejected, "refusals in the log: {report:?}");
}

fn storm(policy: Overflow) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(policy)
        .capacity(8)
        .start::<Vec<u8>>()
        .unwrap();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let e = emitter.clone();
            std::thread::spawn(move || {
                let mut out = Outcomes::default();
                for i in 0..20_000u32 {
                    let mut v = vec![t];
                    v.extend_from_slice(&i.to_le_bytes());
                    emit_counted(&e, v, &mut out);
                }
                out
            })
        })
        .collect();
    let mut total = Outcomes::default();
    for t in threads {
        total.add(t.join().unwrap());
    }
    // Refusals after the last record: a burst the writer cannot take as records.
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, total.ok, "{policy:?}: {report:?}");
    assert_eq!(report.rejected, total.refused(), "{policy:?}: {report:?}");
    check_log_matches_report(dir.path(), &report);
    // Emits after shutdown are refused as closed; they are not in the log, nor in the report.
    let mut after = Outcomes::default();
    assert!(!emit_counted(&emitter, vec![9], &mut after));
    assert_eq!(after.closed, 1);
    assert_eq!(emitter.stats().rejected, report.rejected + 1);
}

#[test]
fn reject_refusals_are_in_the_log() {
    storm(Overflow::Reject);
}

#[test]
fn block_timeouts_are_in_the_log() {
    storm(Overflow::Block(Some(Duration::from_micros(1))));
}

#[test]
fn evictions_are_in_the_log() {
    storm(Overflow::DropOldest);
}

/// Refusals after the last record (emits refused as closed while the writer finishes) reach
/// the log as a trailing gap marker, which the reader reports as the trailing gap.
#[test]
fn refusals_after_the_last_record_leave_a_marker() {
    let mut with_marker = 0;
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .capacity(8)
            .start::<Vec<u8>>()
            .unwrap();
        emitter.emit(b"first".to_vec()).unwrap();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let e = emitter.clone();
                std::thread::spawn(move || {
                    let mut out = Outcomes::default();
                    // Until closed: every thread's last call is a `Closed` refusal, made while
                    // the writer finishes (it writes and syncs before its final count).
                    while emit_counted(&e, vec![1; 16], &mut out) {}
                    out
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        let report = writer.shutdown().unwrap();
        let mut total = Outcomes::default();
        for t in threads {
            total.add(t.join().unwrap());
        }
        check_log_matches_report(dir.path(), &report);
        assert_eq!(report.emitted, total.ok + 1);
        assert_eq!(total.closed, 3, "{total:?}");
        assert!(report.rejected <= total.refused(), "{report:?} {total:?}");
        assert_eq!(emitter.stats().rejected, total.refused());
        let mut iter = Reader::open(dir.path()).unwrap().iter();
        for e in iter.by_ref() {
            e.unwrap();
        }
        let tail = iter.trailing_gap();
        assert_eq!(tail.dropped, 0);
        if tail.refused > 0 {
            with_marker += 1;
        }
    }
    // Each closed refusal is counted before the emit leaves, and the writer waits for
    // in-flight emits before it finishes: the marker is (nearly) always there.
    assert!(with_marker > 0, "no run left a trailing marker");
}

/// The same racing shutdown under load with a tiny ring: full-ring refusals and closed ones
/// mixed, emitters never joined before shutdown.
#[test]
fn refusal_storm_racing_shutdown_adds_up() {
    for policy in [Overflow::Reject, Overflow::DropOldest] {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let (writer, emitter) = Writer::builder(dir.path())
                .overflow(policy)
                .capacity(8)
                .start::<Vec<u8>>()
                .unwrap();
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let e = emitter.clone();
                    std::thread::spawn(move || {
                        let mut out = Outcomes::default();
                        let mut i = 0u32;
                        while emit_counted(&e, vec![t; 1 + (i % 64) as usize], &mut out) {
                            i = i.wrapping_add(1);
                        }
                        out
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(5));
            let report = writer.shutdown().unwrap();
            let mut total = Outcomes::default();
            for t in threads {
                total.add(t.join().unwrap());
            }
            check_log_matches_report(dir.path(), &report);
            assert_eq!(report.emitted, total.ok, "{policy:?}");
            assert!(report.rejected <= total.refused());
            assert_eq!(emitter.stats().rejected, total.refused());
        }
    }
}
