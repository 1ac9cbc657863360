//! The drop-ins: `MakeWriter` under `fmt` (one record per line, long lines cut and marked,
//! refusals counted in the log) and `Logger` (records cut short still decode).

mod common;

use common::{read, Item};
use ringwal_tracing::{Builder, Record, Value};

fn payloads(dir: &std::path::Path) -> Vec<Vec<u8>> {
    ringwal::Reader::open(dir)
        .unwrap()
        .iter()
        .map(|e| e.unwrap().payload)
        .collect()
}

#[test]
fn make_writer_writes_one_record_per_line_and_cuts_long_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path())
        .writer(|w| w.capacity(1 << 12))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(guard.make_writer())
        .with_ansi(false)
        .finish();
    let long = "y".repeat(5_000);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(n = 1, "first");
        tracing::warn!(big = %long, "second");
    });
    guard.shutdown().unwrap();
    let lines: Vec<String> = payloads(dir.path())
        .into_iter()
        .filter(|p| !ringwal_tracing::is_tracing_record(p))
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].ends_with("INFO drop_ins: first n=1"),
        "{}",
        lines[0]
    );
    assert!(!lines[0].ends_with('\n'));
    assert_eq!(
        lines[1].len(),
        (1 << 11) - 8,
        "cut to the ring's largest record"
    );
    assert!(lines[1].ends_with("…[truncated]"), "{}", &lines[1][2000..]);
}

#[test]
fn make_writer_refusals_are_counted_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path())
        .writer(|w| w.capacity(1 << 12).overflow(ringwal::Overflow::Reject))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(guard.make_writer())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..20_000u64 {
            tracing::info!(i, "storm");
        }
    });
    let report = guard.shutdown().unwrap();
    assert!(report.rejected > 0, "{report:?}");
    let mut lines = 0u64;
    let mut gaps = 0u64;
    for item in read(dir.path()) {
        match item {
            Item::Gap(n) => gaps += n,
            Item::Error(seq, e) => panic!("{seq}: {e}"),
            Item::Event(e) => panic!("no tracing events here: {e:?}"),
        }
    }
    for p in payloads(dir.path()) {
        lines += u64::from(!ringwal_tracing::is_tracing_record(&p));
    }
    assert_eq!(gaps, report.rejected);
    assert_eq!(lines + gaps, 20_000, "every line written or counted");
}

#[test]
fn a_log_record_cut_short_still_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path()).build().unwrap();
    // 64 bytes of room: the target alone does not fit.
    let logger = ringwal_tracing::Logger::new(guard.emitter().clone(), log::LevelFilter::Info, 64);
    let target = "t".repeat(100);
    log::Log::log(
        &logger,
        &log::Record::builder()
            .level(log::Level::Error)
            .target(&target)
            .args(format_args!("lost in the cut"))
            .build(),
    );
    guard.shutdown().unwrap();
    let mut decoder = ringwal_tracing::Decoder::new();
    let events: Vec<_> = payloads(dir.path())
        .iter()
        .filter_map(|p| match decoder.decode(p).unwrap() {
            Record::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 1);
    assert!(events[0].truncated);
    assert_eq!(events[0].level(), ringwal_tracing::Level::ERROR);
    assert_eq!(events[0].message(), Some(&Value::Debug(String::new())));
}
