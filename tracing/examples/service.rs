//! A small service logging through ringwal-tracing: four worker threads handle orders inside
//! `worker` and `order` spans, with typed fields, a warning now and then, and a few lines
//! through the `log` crate. Then read it back:
//!
//! ```sh
//! cargo run --release -p ringwal-tracing --example service -- /tmp/service-log
//! cargo run --release -p ringwal-cli -- cat /tmp/service-log --level info
//! cargo run --release -p ringwal-cli -- cat /tmp/service-log --format json --target service::db
//! ```

use std::time::Duration;
use tracing::{debug, info, info_span, warn};

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Order {
    id: u64,
    qty: u32,
    price: f64,
}

fn handle(worker: u64, n: u64) {
    let order = Order {
        id: worker * 1_000 + n,
        qty: (n % 7 + 1) as u32,
        price: 100.0 + n as f64 / 4.0,
    };
    let span = info_span!("order", id = order.id, status = tracing::field::Empty);
    let _entered = span.enter();
    debug!(target: "service::db", table = "orders", rows = 1u64, "insert");
    if n % 5 == 4 {
        warn!(
            qty = order.qty,
            limit = 4u32,
            "quantity above the soft limit"
        );
    }
    span.record("status", "filled");
    info!(user = 40 + worker, order = ?order, "order filled");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "service-log".to_owned());
    // The two-line setup (here with a segment size and an fsync interval).
    let guard = ringwal_tracing::Builder::new(&dir)
        .writer(|w| {
            w.segment_bytes(1 << 20)
                .sync(ringwal::SyncPolicy::Interval(Duration::from_millis(50)))
        })
        .init()?;
    // `log` users: the same log, the same binary capture.
    guard.logger(log::LevelFilter::Info).install()?;
    log::info!("service starting with {} workers", 4);

    std::thread::scope(|s| {
        for worker in 0..4u64 {
            s.spawn(move || {
                let span = info_span!("worker", worker);
                let _entered = span.enter();
                for n in 0..10 {
                    handle(worker, n);
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
        }
    });
    log::info!("service stopping");
    let report = guard.shutdown()?;
    println!(
        "{} records persisted, {} refused; read them with:\n  cargo run --release -p ringwal-cli -- cat {dir}",
        report.persisted, report.rejected
    );
    Ok(())
}
