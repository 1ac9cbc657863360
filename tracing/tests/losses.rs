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

/// A layer whose writer rotates every `segment_bytes`, keeps what `retain` says, and blocks
/// when its ring is full (so every event is in the log).
fn rotating(
    dir: &std::path::Path,
    segment_bytes: u64,
    retain: ringwal::Retain,
) -> (ringwal_tracing::Layer, ringwal_tracing::Guard) {
    Builder::new(dir)
        .writer(|w| {
            w.segment_bytes(segment_bytes)
                .retain(retain)
                .overflow(ringwal::Overflow::Block(None))
        })
        .build()
        .unwrap()
}

#[test]
fn rotation_mid_stream_keeps_the_log_decodable() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = rotating(dir.path(), 8 << 10, ringwal::Retain::All);
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

/// Writes 3,000 events from three callsites (one in a span) into 8 KiB segments.
fn rotated_log(dir: &std::path::Path, retain: ringwal::Retain) -> ringwal::Report {
    let (layer, guard) = rotating(dir, 8 << 10, retain);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..3_000u64 {
            match i % 3 {
                0 => tracing::info!(i, "row"),
                1 => tracing::warn!(i, kind = "odd", "warned"),
                _ => {
                    let span = tracing::debug_span!("batch", n = i / 100);
                    let _e = span.enter();
                    tracing::error!(i, ok = false, "failed");
                }
            }
        }
    });
    guard.shutdown().unwrap()
}

/// The `i` of every event, in order; panics on anything but events.
fn seqs(items: Vec<Item>) -> Vec<u64> {
    common::events(items)
        .iter()
        .map(|e| match e.field("i") {
            Some(ringwal_tracing::Value::U64(i)) => *i,
            other => panic!("no i: {other:?}"),
        })
        .collect()
}

#[test]
fn every_segment_read_alone_decodes_with_its_preamble() {
    let dir = tempfile::tempdir().unwrap();
    let report = rotated_log(dir.path(), ringwal::Retain::All);
    let segments = ringwal::Reader::open(dir.path())
        .unwrap()
        .segments()
        .unwrap();
    assert!(segments.len() > 10, "{report:?}");
    let mut undescribed = 0;
    for seg in &segments {
        // A reader that starts here knows nothing but what the segment says.
        let items = common::read_from(
            dir.path(),
            &mut ringwal_tracing::Decoder::new(),
            seg.first_seq,
            true,
        );
        let got = seqs(items);
        let first = *got.first().expect("events in every suffix");
        assert_eq!(got, (first..3_000).collect::<Vec<_>>(), "from {seg:?}");
        // Without the preamble the same suffix has events it cannot decode (after the first
        // segment, whose preamble is empty: the writer started before any callsite).
        let blind = common::read_from(
            dir.path(),
            &mut ringwal_tracing::Decoder::new(),
            seg.first_seq,
            false,
        );
        undescribed += blind
            .iter()
            .filter(|i| {
                matches!(
                    i,
                    Item::Error(_, ringwal_tracing::DecodeError::UnknownCallsite(_))
                )
            })
            .count();
    }
    assert!(
        undescribed > 0,
        "the preambles were not what decoded the suffixes"
    );
}

#[test]
fn what_retention_keeps_decodes_from_its_first_record() {
    let dir = tempfile::tempdir().unwrap();
    rotated_log(dir.path(), ringwal::Retain::Segments(3));
    let segments = ringwal::Reader::open(dir.path())
        .unwrap()
        .segments()
        .unwrap();
    assert_eq!(segments.len(), 3);
    assert!(
        segments[0].first_seq > 0,
        "retention deleted the oldest: {segments:?}"
    );
    let got = seqs(common::read(dir.path()));
    assert_eq!(got.last(), Some(&2_999));
    assert_eq!(got, (got[0]..3_000).collect::<Vec<_>>());
}

#[test]
fn every_segment_read_alone_shows_its_events_in_their_spans() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = rotating(dir.path(), 4 << 10, ringwal::Retain::All);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // Open for the whole run, a field recorded late and then changed.
        let service =
            tracing::info_span!("service", name = "orders", state = tracing::field::Empty);
        let _s = service.enter();
        for i in 0..2_000u64 {
            if i == 500 {
                service.record("state", "warm");
            }
            if i == 1_500 {
                service.record("state", "draining");
            }
            // A span per 50 events: many open and close while the log rotates.
            let batch = tracing::info_span!("batch", n = i / 50);
            let _b = batch.enter();
            tracing::info!(i, "row");
        }
    });
    guard.shutdown().unwrap();
    let segments = ringwal::Reader::open(dir.path())
        .unwrap()
        .segments()
        .unwrap();
    // `service` opened in the first segment and its state was recorded in others: in every
    // later one, only the preamble can say so.
    assert!(segments.len() > 10, "{segments:?}");
    for seg in &segments {
        let items = common::read_from(
            dir.path(),
            &mut ringwal_tracing::Decoder::new(),
            seg.first_seq,
            true,
        );
        let events = common::events(items);
        assert!(!events.is_empty(), "from {seg:?}");
        for e in &events {
            let Some(ringwal_tracing::Value::U64(i)) = e.field("i") else {
                panic!("no i: {e:?}")
            };
            let i = *i;
            let state = match i {
                0..500 => None,
                500..1_500 => Some("warm"),
                _ => Some("draining"),
            };
            let names: Vec<_> = e.scope.iter().map(|s| s.callsite.name.as_str()).collect();
            assert_eq!(names, ["service", "batch"], "event {i} from {seg:?}");
            let mut service = vec![(
                "name".to_owned(),
                ringwal_tracing::Value::Str("orders".into()),
            )];
            if let Some(state) = state {
                service.push((
                    "state".to_owned(),
                    ringwal_tracing::Value::Str(state.into()),
                ));
            }
            assert_eq!(e.scope[0].fields, service, "event {i} from {seg:?}");
            assert_eq!(
                e.scope[1].fields,
                vec![("n".to_owned(), ringwal_tracing::Value::U64(i / 50))],
                "event {i} from {seg:?}"
            );
        }
    }
}
