//! One thread emitting `info!(user = 42, order = %id, "order filled")` (or, with a second
//! argument `5`, `tracing_compare`'s five-field event, function `event5`) through the
//! ringwal-tracing `Layer`, for callgrind (where an event's instructions go):
//!
//! ```sh
//! cargo build --release -p ringwal-benches --bin tracing_profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out --toggle-collect='*tracing_profile::event*' \
//!     target/release/tracing_profile 200000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | head -40
//! ```

use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;

#[inline(never)]
fn event(id: u64) {
    tracing::info!(user = 42, order = %id, "order filled");
}

#[derive(Debug)]
#[allow(dead_code)]
struct Venue {
    code: &'static str,
}

/// `tracing_compare`'s five-field event.
#[inline(never)]
fn event5(id: u64) {
    tracing::info!(
        user = 42,
        order = %id,
        qty = 17u32,
        price = 101.25,
        venue = ?Venue { code: "XLON" },
        "order filled"
    );
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    // `5`: the five-field event (`--toggle-collect='*tracing_profile::event5*'`).
    let five = std::env::args().nth(2).as_deref() == Some("5");
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
        for id in 0..n {
            if five {
                event5(id);
            } else {
                event(id);
            }
        }
    });
    let report = guard.shutdown().unwrap();
    assert_eq!(report.rejected, 0);
    println!("{} records", report.persisted);
}
