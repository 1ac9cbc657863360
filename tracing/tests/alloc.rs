//! The layer allocates nothing per event on the emitting thread: counted through a global
//! allocator, per thread, after a warm-up (the first sight of a callsite writes its metadata
//! under a lock and registers it with tracing, which allocates; that is the cold path).

use tracing_subscriber::layer::SubscriberExt as _;

#[path = "../../std-writer/tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

#[derive(Debug)]
#[allow(dead_code)]
struct Order {
    id: u64,
    venue: &'static str,
}

fn events(n: u64) {
    for i in 0..n {
        let id = i * 7;
        tracing::info!(user = 42u64, order = %id, "order filled");
        tracing::warn!(
            user = 42u64,
            delta = -3i64,
            price = 101.5,
            ok = true,
            order = ?Order { id, venue: "XLON" },
            "order {} repriced",
            id
        );
    }
}

#[test]
fn no_allocation_per_event_or_span_on_the_emitting_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = ringwal_tracing::Builder::new(dir.path())
        .writer(|w| w.overflow(ringwal::Overflow::Block(None)))
        .build()
        .unwrap();
    let logger = guard.logger(log::LevelFilter::Info);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("session", user = 42u64);
        let _entered = span.enter();
        let log_one = |i: u64| {
            log::Log::log(
                &logger,
                &log::Record::builder()
                    .level(log::Level::Info)
                    .target("shop")
                    .args(format_args!("order {i} filled"))
                    .build(),
            )
        };
        // Warm-up: callsites registered and announced, the thread's number given, the
        // registry's span slots allocated.
        events(100);
        for i in 0..100 {
            let s = tracing::debug_span!("request", i);
            let _e = s.enter();
            log_one(i);
        }

        let before = allocations();
        events(10_000);
        let after_events = allocations();
        for i in 0..10_000 {
            let s = tracing::debug_span!("request", i);
            let _e = s.enter();
            tracing::info!("in request");
        }
        let after_spans = allocations();
        for i in 0..10_000 {
            log_one(i);
        }
        let after_logs = allocations();
        assert_eq!(after_events - before, 0, "allocations in 20,000 events");
        assert_eq!(after_spans - after_events, 0, "allocations in 10,000 spans");
        assert_eq!(
            after_logs - after_spans,
            0,
            "allocations in 10,000 log records"
        );
    });
    let report = guard.shutdown().unwrap();
    assert_eq!(report.rejected, 0);
    // 20,100 + 10,100 + 10,100 (+1 the outer span's) events, 10,100 x 3 span records...
    assert!(report.persisted > 40_000, "{report:?}");
}
