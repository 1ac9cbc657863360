//! Each overflow policy against a writer stalled on purpose: the first record's `encode`
//! waits on a gate, so the writer holds it while the ring (8 slots) fills behind it.

use ringwal::{EmitError, Overflow, Reader, Record, Report, Writer};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const N: usize = 8;

/// Opens when told; tells when the writer is inside `encode`.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>, // (entered, open)
    cv: Condvar,
}

impl Gate {
    fn wait_entered(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }
    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

struct Event {
    id: u64,
    gate: Option<Arc<Gate>>,
    /// Encoding panics (the writer must survive and count it dropped).
    poison: bool,
}

impl Event {
    fn new(id: u64) -> Self {
        Event {
            id,
            gate: None,
            poison: false,
        }
    }
}

impl Record for Event {
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(gate) = &self.gate {
            let mut s = gate.state.lock().unwrap();
            s.0 = true;
            gate.cv.notify_all();
            while !s.1 {
                s = gate.cv.wait(s).unwrap();
            }
        }
        if self.poison {
            panic!("encode failure injected by the test");
        }
        out.extend_from_slice(&self.id.to_le_bytes());
    }
}

/// Starts a writer with `overflow`, emits a gated record 0 and waits until the writer is
/// stuck encoding it, so the ring is empty and nothing drains it.
fn stalled(
    dir: &std::path::Path,
    overflow: Overflow,
) -> (Writer<Event>, ringwal::Emitter<Event>, Arc<Gate>) {
    let (writer, emitter) = Writer::builder(dir)
        .overflow(overflow)
        .capacity(N)
        .start::<Event>()
        .unwrap();
    let gate = Arc::new(Gate::default());
    emitter
        .emit(Event {
            id: 0,
            gate: Some(Arc::clone(&gate)),
            poison: false,
        })
        .unwrap();
    gate.wait_entered();
    (writer, emitter, gate)
}

fn read_back(dir: &std::path::Path) -> Vec<(u64, u64, u64)> {
    Reader::open(dir)
        .unwrap()
        .iter()
        .map(|e| {
            let e = e.unwrap();
            let id = u64::from_le_bytes(e.payload[..8].try_into().unwrap());
            (e.seq, id, e.dropped_before)
        })
        .collect()
}

fn conserved(report: &Report) {
    assert_eq!(report.queued, 0, "{report:?}");
    assert_eq!(
        report.emitted,
        report.persisted + report.dropped,
        "{report:?}"
    );
}

#[test]
fn reject_hands_the_event_back_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, gate) = stalled(dir.path(), Overflow::Reject);
    for id in 1..=N as u64 {
        emitter.emit(Event::new(id)).unwrap();
    }
    for id in 100..105 {
        match emitter.emit(Event::new(id)) {
            Err(EmitError::Full(e)) => assert_eq!(e.id, id),
            other => panic!("expected Full, got {other:?}"),
        }
    }
    let stats = emitter.stats();
    assert_eq!((stats.emitted, stats.rejected), (N as u64 + 1, 5));
    gate.open();
    let report = writer.shutdown().unwrap();
    conserved(&report);
    assert_eq!(
        (report.persisted, report.rejected, report.dropped),
        (9, 5, 0)
    );
    let ids: Vec<u64> = read_back(dir.path()).iter().map(|r| r.1).collect();
    assert_eq!(ids, (0..=N as u64).collect::<Vec<_>>());
}

#[test]
fn drop_oldest_evicts_and_records_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, gate) = stalled(dir.path(), Overflow::DropOldest);
    // 8 fill the ring, 5 more evict ids 1..=5.
    for id in 1..=13 {
        emitter.emit(Event::new(id)).unwrap();
    }
    gate.open();
    emitter.flush().unwrap();
    emitter.emit(Event::new(14)).unwrap();
    let report = writer.shutdown().unwrap();
    conserved(&report);
    assert_eq!(
        (report.emitted, report.dropped, report.rejected),
        (15, 5, 0)
    );
    let rows = read_back(dir.path());
    let expected: Vec<(u64, u64, u64)> = std::iter::once((0, 0, 0))
        .chain((6..=14).enumerate().map(|(i, id)| {
            let gap = if id == 6 { 5 } else { 0 };
            (i as u64 + 1, id, gap)
        }))
        .collect();
    assert_eq!(rows, expected);
    let gaps: u64 = rows.iter().map(|r| r.2).sum();
    assert_eq!(gaps, report.dropped);
}

#[test]
fn block_with_timeout_gives_up_with_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, gate) =
        stalled(dir.path(), Overflow::Block(Some(Duration::from_millis(50))));
    for id in 1..=N as u64 {
        emitter.emit(Event::new(id)).unwrap();
    }
    let started = Instant::now();
    match emitter.emit(Event::new(99)) {
        Err(EmitError::Full(e)) => assert_eq!(e.id, 99),
        other => panic!("expected Full after the timeout, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(50));
    gate.open();
    let report = writer.shutdown().unwrap();
    conserved(&report);
    assert_eq!((report.persisted, report.rejected), (9, 1));
}

#[test]
fn block_waits_for_space_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, gate) = stalled(dir.path(), Overflow::Block(None));
    for id in 1..=N as u64 {
        emitter.emit(Event::new(id)).unwrap();
    }
    let blocked = {
        let emitter = emitter.clone();
        std::thread::spawn(move || {
            for id in 9..=40 {
                emitter.emit(Event::new(id)).unwrap();
            }
        })
    };
    std::thread::sleep(Duration::from_millis(30));
    assert!(
        !blocked.is_finished(),
        "the emitter should be blocked on the full ring"
    );
    gate.open();
    blocked.join().unwrap();
    let report = writer.shutdown().unwrap();
    conserved(&report);
    assert_eq!((report.persisted, report.rejected), (41, 0));
    let ids: Vec<u64> = read_back(dir.path()).iter().map(|r| r.1).collect();
    assert_eq!(ids, (0..=40).collect::<Vec<_>>());
}

#[test]
fn blocked_emitters_are_released_by_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, gate) = stalled(dir.path(), Overflow::Block(None));
    for id in 1..=N as u64 {
        emitter.emit(Event::new(id)).unwrap();
    }
    let blocked: Vec<_> = (0..2u64)
        .map(|t| {
            let emitter = emitter.clone();
            std::thread::spawn(move || {
                emitter
                    .emit(Event::new(100 + t))
                    .map_err(|e| e.into_inner().id)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let opener = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            gate.open();
        })
    };
    let report = writer.shutdown().unwrap();
    opener.join().unwrap();
    let outcomes: Vec<Result<(), u64>> = blocked.into_iter().map(|t| t.join().unwrap()).collect();
    conserved(&report);
    let accepted = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
    assert_eq!(report.emitted, N as u64 + 1 + accepted);
    // Refusals after the writer stopped happen after its report: count them from a later
    // snapshot, once the emitting threads are done.
    assert_eq!(emitter.stats().rejected, 2 - accepted);
    let ids: Vec<u64> = read_back(dir.path()).iter().map(|r| r.1).collect();
    for (t, outcome) in outcomes.iter().enumerate() {
        let id = 100 + t as u64;
        assert_eq!(
            ids.contains(&id),
            outcome.is_ok(),
            "event {id}: {outcome:?}"
        );
    }
    // After shutdown every emit is refused with the event.
    match emitter.emit(Event::new(7)) {
        Err(EmitError::Closed(e)) => assert_eq!(e.id, 7),
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn closed_after_shutdown_counts_as_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(N)
        .start::<Event>()
        .unwrap();
    emitter.emit(Event::new(1)).unwrap();
    let report = writer.shutdown().unwrap();
    conserved(&report);
    assert!(matches!(
        emitter.emit(Event::new(2)),
        Err(EmitError::Closed(_))
    ));
    let stats = emitter.stats();
    assert_eq!((stats.emitted, stats.rejected, stats.persisted), (1, 1, 1));
    assert!(matches!(emitter.flush(), Ok(())));
}

#[test]
fn a_panicking_encode_is_dropped_and_recorded_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .capacity(N)
        .start::<Event>()
        .unwrap();
    emitter.emit(Event::new(1)).unwrap();
    emitter
        .emit(Event {
            id: 2,
            gate: None,
            poison: true,
        })
        .unwrap();
    emitter.emit(Event::new(3)).unwrap();
    emitter.flush().unwrap();
    let report = writer.shutdown().unwrap();
    conserved(&report);
    assert_eq!((report.persisted, report.dropped), (2, 1));
    assert_eq!(read_back(dir.path()), vec![(0, 1, 0), (1, 3, 1)]);
}

#[test]
fn drop_of_the_writer_shuts_down_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_writer, emitter) = Writer::builder(dir.path())
            .capacity(N)
            .start::<Event>()
            .unwrap();
        for id in 0..5 {
            emitter.emit(Event::new(id)).unwrap();
        }
    }
    let ids: Vec<u64> = read_back(dir.path()).iter().map(|r| r.1).collect();
    assert_eq!(ids, (0..5).collect::<Vec<_>>());
}

#[test]
fn flush_timeout_reports_a_stalled_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter, gate) = stalled(dir.path(), Overflow::Reject);
    assert!(matches!(
        emitter.flush_timeout(Duration::from_millis(30)),
        Err(ringwal::FlushError::Timeout)
    ));
    gate.open();
    emitter.flush_timeout(Duration::from_secs(10)).unwrap();
    conserved(&writer.shutdown().unwrap());
}

/// A record whose move into the ring is slow (16 KiB copied), which widens the window between
/// a push claiming its position and publishing the value.
struct Big {
    id: u64,
    _pad: [u64; 2048],
}

impl Big {
    fn new(id: u64) -> Self {
        Big {
            id,
            _pad: [id; 2048],
        }
    }
}

impl Record for Big {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
    }
}

/// Shutdown racing emitters that push flat out, for every policy: everything `emit` accepted
/// is in the log (or, under `DropOldest`, was evicted and recorded as a gap), in each emitter's
/// order, and nothing it refused is. The closing writer must drain up to every position claimed
/// before `close`, including pushes still copying their value in when `close` returned (the
/// records are large to make that window wide; loom models it exactly).
#[test]
fn shutdown_racing_emitters_keeps_every_accepted_event() {
    const EMITTERS: u64 = 3;
    for overflow in [
        Overflow::Reject,
        Overflow::DropOldest,
        Overflow::Block(Some(Duration::from_millis(1))),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = Writer::builder(dir.path())
            .overflow(overflow)
            .capacity(N)
            .start::<Big>()
            .unwrap();
        let start = Arc::new(std::sync::Barrier::new(EMITTERS as usize + 1));
        let threads: Vec<_> = (0..EMITTERS)
            .map(|t| {
                let (emitter, start) = (emitter.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    let mut accepted = Vec::new();
                    for i in 0.. {
                        let id = t << 32 | i;
                        match emitter.emit(Big::new(id)) {
                            Ok(()) => accepted.push(id),
                            Err(EmitError::Closed(e)) => {
                                assert_eq!(e.id, id, "Closed returns the event");
                                break;
                            }
                            Err(EmitError::Full(e)) => assert_eq!(e.id, id),
                            Err(e) => panic!("{overflow:?}: {e}"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        drop(emitter);
        start.wait();
        std::thread::sleep(Duration::from_millis(20));
        let report = writer.shutdown().unwrap();
        let accepted: Vec<Vec<u64>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        conserved(&report);
        let total: u64 = accepted.iter().map(|a| a.len() as u64).sum();
        assert_eq!(report.emitted, total, "{overflow:?}: every Ok is one push");
        let log = read_back(dir.path());
        assert_eq!(log.len() as u64, report.persisted, "{overflow:?}");
        let gaps: u64 = log.iter().map(|&(_, _, gap)| gap).sum();
        for t in 0..EMITTERS {
            let mine: Vec<u64> = log
                .iter()
                .map(|&(_, id, _)| id)
                .filter(|id| id >> 32 == t)
                .collect();
            let sent = &accepted[t as usize];
            if overflow == Overflow::DropOldest {
                // In order, and a subsequence of what was accepted (evictions drop some).
                let mut rest = sent.iter();
                for id in &mine {
                    assert!(rest.any(|s| s == id), "{overflow:?}: {id:#x} out of order");
                }
            } else {
                assert_eq!(&mine, sent, "{overflow:?}: emitter {t}'s accepted events");
            }
        }
        // Evictions after the last record are counted in `dropped` but have no record to
        // carry them as a gap.
        assert!(gaps <= report.dropped, "{overflow:?}: {gaps} > {report:?}");
        if overflow != Overflow::DropOldest {
            assert_eq!(report.dropped, 0, "{overflow:?}");
        }
    }
}

/// A writer whose thread died (its sink panicked) says so in `healthy`: every emit is refused
/// from then on and nothing more is written, so the stats must not read as a working writer
/// (before, `healthy` stayed true for ever, in `stats()` and in the shutdown's report).
#[test]
fn a_writer_whose_thread_panicked_is_not_healthy() {
    struct Panics;
    impl ringwal::Sink for Panics {
        fn next_seq(&self) -> u64 {
            0
        }
        fn append(&mut self, _: &ringwal::Batch<'_>) -> std::io::Result<()> {
            panic!("the sink panicked (on purpose)");
        }
        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (writer, emitter) = Writer::builder("unused-with-a-sink")
        .capacity(N)
        .start_with_sink::<Event, _>(Panics)
        .unwrap();
    assert!(emitter.stats().healthy);
    emitter.emit(Event::new(1)).unwrap();
    // Returns once the writer thread is gone (it never writes the event).
    assert!(matches!(emitter.flush(), Err(ringwal::FlushError::Closed)));
    assert!(matches!(
        emitter.emit(Event::new(2)),
        Err(EmitError::Closed(_))
    ));
    let stats = emitter.stats();
    assert!(!stats.healthy, "{stats:?}");
    let err = writer.shutdown().unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    assert!(!err.report.healthy, "{:?}", err.report);
    assert_eq!(err.report.queued, 1);
}
