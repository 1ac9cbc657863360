//! One thread emitting `tracing_compare`'s event `info!(user = 42, order = %id, "order
//! filled")` (`tracing_events::two`; with a second argument `5`, its five-field event,
//! `tracing_events::five`) through the ringwal-tracing `Layer`, for callgrind (where an event's
//! instructions go):
//!
//! ```sh
//! cargo build --release -p ringwal-benches --bin tracing_profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out --toggle-collect='*tracing_events::two*' \
//!     target/release/tracing_profile 200000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | head -40
//! ```
//!
//! A third argument `span` emits the events inside an entered span (the current span's
//! lookup): `target/release/tracing_profile 200000 2 span`.

use ringwal_benches::tracing_events;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    // `5`: the five-field event (`--toggle-collect='*tracing_events::five*'`).
    let five = std::env::args().nth(2).as_deref() == Some("5");
    let in_span = std::env::args().nth(3).as_deref() == Some("span");
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = ringwal_tracing::Builder::new(dir.path())
        .writer(|w| {
            w.sync(ringwal::SyncPolicy::Never)
                .overflow(ringwal::Overflow::Block(None))
                .idle(ringwal::Idle::Poll(Duration::from_millis(1)))
        })
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = if in_span {
            tracing::info_span!("conn", peer = 7)
        } else {
            tracing::Span::none()
        };
        let _entered = span.enter();
        for id in 0..n {
            if five {
                tracing_events::five(id);
            } else {
                tracing_events::two(id);
            }
        }
    });
    let report = guard.shutdown().unwrap();
    assert_eq!(report.rejected, 0);
    println!("{} records", report.persisted);
}
