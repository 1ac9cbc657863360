//! Losses are never silent: a refusal storm shows in the log as counted gaps, and every event
//! is either read back or counted; rotation mid-stream keeps the whole log decodable.

mod common;

use common::{read, Item};
use ringwal_tracing::Builder;
use tracing_subscriber::layer::SubscriberExt as _;

#[test]
fn a_refusal_storm_is_counted_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path())
        .writer(|w| w.capacity(4096).overflow(ringwal::Overflow::Reject))
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    const THREADS: u64 = 3;
    const EVENTS: u64 = 20_000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..EVENTS {
                        tracing::info!(t, i, "storm");
                    }
                })
            });
        }
    });
    let report = guard.shutdown().unwrap();
    assert!(
        report.rejected > 0,
        "the storm must overflow a 4 KiB ring: {report:?}"
    );
    let items = read(dir.path());
    let mut events = 0u64;
    let mut gaps = 0u64;
    let mut undecodable = 0u64;
    for item in &items {
        match item {
            Item::Event(_) => events += 1,
            Item::Gap(n) => gaps += n,
            // An event whose callsite's record was itself refused: an error in its place.
            Item::Error(_, ringwal_tracing::DecodeError::UnknownCallsite(_)) => undecodable += 1,
            Item::Error(seq, e) => panic!("record {seq}: {e}"),
        }
    }
    assert_eq!(gaps, report.rejected, "every refusal is a counted gap");
    // Every event sent is read back (decoded, or an error in its place) or counted in a gap;
    // the gaps also count refused metadata records (retried until one is accepted).
    let sent = THREADS * EVENTS;
    assert!(events + undecodable <= sent);
    assert!(
        sent <= events + undecodable + gaps,
        "{events} + {undecodable} + {gaps} < {sent}"
    );
    assert!(events > 0);
}

#[test]
fn rotation_mid_stream_keeps_the_log_decodable() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path())
        .writer(|w| {
            w.segment_bytes(8 << 10)
                .overflow(ringwal::Overflow::Block(None))
        })
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..5_000u64 {
            let span = tracing::info_span!("batch", n = i / 100);
            let _e = span.enter();
            tracing::info!(i, "row");
        }
    });
    let report = guard.shutdown().unwrap();
    assert!(report.segments > 20, "{report:?}");
    let items = read(dir.path());
    let events = common::events(items);
    assert_eq!(events.len(), 5_000);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.field("i"), Some(&ringwal_tracing::Value::U64(i as u64)));
        assert_eq!(
            e.scope[0].fields[0].1,
            ringwal_tracing::Value::U64(i as u64 / 100)
        );
    }
}
