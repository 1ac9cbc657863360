//! Writes a seed for the `tracing_decoder` fuzz target: a real log's records (events in spans,
//! a span record, a log record with key-values), each as a u16 length and its bytes.
//! `cargo run -p ringwal-tracing --example make_fuzz_seed -- fuzz/seeds/tracing_decoder/log-v2-kv`
//! (`log` is an older log's: format version 1, times in nanoseconds, no clock records;
//! `log-v2` one from before the `log` records carried key-values).

use tracing_subscriber::layer::SubscriberExt as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).ok_or("usage: make_fuzz_seed OUT")?;
    let dir = tempfile::tempdir()?;
    let (layer, guard) = ringwal_tracing::Builder::new(dir.path()).build()?;
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing::info_span!("conn", peer = "10.0.0.7", n = tracing::field::Empty);
        let _e = span.enter();
        span.record("n", 3u64);
        tracing::info!(user = 42u64, order = %"A-17", "order filled");
        tracing::warn!(a = -1i64, b = 0.5, c = true, d = ?Some(1), "five fields");
    });
    log::Log::log(
        &guard.logger(log::LevelFilter::Info),
        &log::Record::builder()
            .level(log::Level::Error)
            .target("legacy")
            .args(format_args!("from log"))
            .key_values(&[
                ("code", log::kv::Value::from(503u64)),
                ("host", log::kv::Value::from("db1")),
                ("retry", log::kv::Value::from(false)),
            ])
            .build(),
    );
    guard.shutdown()?;
    let mut seed = Vec::new();
    for entry in ringwal::Reader::open(dir.path())?.iter() {
        let payload = entry?.payload;
        seed.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        seed.extend_from_slice(&payload);
    }
    std::fs::write(out, seed)?;
    Ok(())
}
