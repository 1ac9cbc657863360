//! Timestamps read back as Unix times, with the time-stamp counter and with the system clock:
//! from the whole log, and from each segment read alone (its preamble's clock record).

mod common;

use common::Item;
use ringwal_tracing::{Builder, Decoder, Record};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing_subscriber::layer::SubscriberExt as _;

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Whether the kernel keeps time with the TSC (then the layer uses it).
fn kernel_uses_tsc() -> bool {
    cfg!(all(target_arch = "x86_64", target_os = "linux", not(miri)))
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|s| s.trim() == "tsc")
}

/// How far a decoded time may be from the system clock read just before and just after the
/// event: the anchors are read to ~100 ns, the scale to ~1/10,000 in the first millisecond
/// and better after.
const SLACK_NS: u64 = 200_000;

/// Two threads record 25 events each, 2 ms apart (so the anchor is renewed several times),
/// each bracketed by system-clock reads. Returns the brackets by (thread, i).
fn record(dir: &Path, tsc: bool, segment_bytes: u64) -> Vec<(u64, u64, u64, u64)> {
    let (layer, guard) = Builder::new(dir)
        .tsc(tsc)
        .writer(|w| w.segment_bytes(segment_bytes))
        .build()
        .unwrap();
    let uses_tsc = format!("{layer:?}").contains("tsc: true");
    assert_eq!(uses_tsc, tsc && kernel_uses_tsc(), "{layer:?}");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let brackets = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2u64)
            .map(|t| {
                let dispatch = dispatch.clone();
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let mut out = Vec::new();
                        for i in 0..25u64 {
                            let before = unix_ns();
                            tracing::info!(t, i, pad = "some text to fill segments", "tick");
                            let after = unix_ns();
                            out.push((t, i, before, after));
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        out
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    drop(dispatch);
    guard.shutdown().unwrap();
    brackets
}

fn check_times(items: &[Item], brackets: &[(u64, u64, u64, u64)]) -> usize {
    let mut checked = 0;
    for item in items {
        let Item::Event(e) = item else {
            panic!("{item:?}");
        };
        let num = |name| match e.field(name) {
            Some(ringwal_tracing::Value::U64(v)) => *v,
            Some(ringwal_tracing::Value::I64(v)) => *v as u64,
            other => panic!("{name}: {other:?}"),
        };
        let (t, i) = (num("t"), num("i"));
        let &(_, _, before, after) = brackets
            .iter()
            .find(|b| b.0 == t && b.1 == i)
            .expect("an event recorded");
        assert!(
            e.time_ns.saturating_add(SLACK_NS) >= before
                && e.time_ns <= after.saturating_add(SLACK_NS),
            "thread {t} event {i}: {} ns, recorded between {before} and {after}",
            e.time_ns
        );
        checked += 1;
    }
    checked
}

/// The clock records in the log, and the format versions of its tracing records.
fn clock_records(dir: &Path) -> (usize, Vec<u8>) {
    let mut decoder = Decoder::new();
    let mut versions = Vec::new();
    let mut clocks = 0;
    for entry in ringwal::Reader::open(dir).unwrap().iter() {
        let payload = entry.unwrap().payload;
        if ringwal_tracing::is_tracing_record(&payload) && !versions.contains(&payload[2]) {
            versions.push(payload[2]);
        }
        if let Ok(Record::Clock { .. }) = decoder.decode(&payload) {
            clocks += 1;
        }
    }
    (clocks, versions)
}

#[test]
fn times_read_back_as_unix_times_with_either_clock() {
    for tsc in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let brackets = record(dir.path(), tsc, 64 << 20);
        let items = common::read(dir.path());
        assert_eq!(check_times(&items, &brackets), 50, "tsc {tsc}");
        let (clocks, versions) = clock_records(dir.path());
        if tsc && kernel_uses_tsc() {
            // The layer's first anchor, then renewals at 1, 2, 4, 8, 16, 32 ms... while
            // events come (they span about 50 ms). Times in ticks: format version 2.
            assert!(clocks >= 4, "{clocks} clock records");
            assert_eq!(versions, [2]);
        } else {
            // The system clock: Unix nanoseconds, format version 1 (readable by readers
            // that predate clock records), and no clock record.
            assert_eq!((clocks, versions), (0, vec![1]), "tsc {tsc}");
        }
    }
}

#[test]
fn each_segment_read_alone_converts_its_times() {
    for tsc in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let brackets = record(dir.path(), tsc, 1024);
        let segments = ringwal::Reader::open(dir.path())
            .unwrap()
            .segments()
            .unwrap();
        assert!(segments.len() >= 5, "{} segments", segments.len());
        for (k, seg) in segments.iter().enumerate() {
            // A fresh decoder from the segment's first record on: its preamble alone says
            // what the clock is (with the system clock, nothing after it renews it).
            let items = common::read_with(dir.path(), &mut Decoder::new(), seg.first_seq);
            let checked = check_times(&items, &brackets);
            if k == 0 {
                assert_eq!(checked, 50, "tsc {tsc}");
            }
            assert!(
                checked > 0,
                "tsc {tsc}: segment {k} and after hold no event"
            );
        }
    }
}
