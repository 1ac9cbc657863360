//! Shipping figures, on loopback against a nats-server this starts (file storage):
//!
//! 1. records/s shipped for 64-byte and 1 KiB records, window 1, 64 and 1024, against the
//!    obvious alternative: a tokio task that reads lines from a file and publishes each,
//!    awaiting its ack;
//! 2. end-to-end lag (emit → acknowledged in the stream) p50/p99 at a steady 10,000 events/s,
//!    ringwal (writer under `SyncPolicy::EveryBatch` + shipper with default options) against
//!    the same alternative (a thread appends each line to a file with one write, no fsync).
//!
//! Median and worst of `--runs` runs (default 3). `--quick`: one short run (CI).
//!
//! `cargo run --release -p ringwal-ship --example ship_bench`

use async_nats::jetstream;
use hdrhistogram::Histogram;
use ringwal_ship::{JetStream, JetStreamOptions, Options, Outgoing, Shipper};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(store: &Path) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("ship_bench: cannot start nats-server ({e}): apt-get install nats-server");
            std::process::exit(1)
        });
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Server(child, format!("nats://127.0.0.1:{port}"))
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut p = format!("{i:016}").into_bytes();
    p.resize(len - 1, b'x');
    p
}

/// A log of `n` records of `len` bytes.
fn make_log(dir: &Path, n: u64, len: usize) {
    let (writer, emitter) = ringwal::Writer::builder(dir)
        .capacity(1 << 16)
        .overflow(ringwal::Overflow::Block(None))
        .start::<Vec<u8>>()
        .unwrap();
    for i in 0..n {
        emitter.emit(payload(i, len)).unwrap();
    }
    writer.shutdown().unwrap();
}

/// The same records as lines of a file.
fn make_lines(path: &Path, n: u64, len: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        f.write_all(&payload(i, len)).unwrap();
        f.write_all(b"\n").unwrap();
    }
    f.flush().unwrap();
}

async fn fresh_stream(url: &str, name: &str) -> jetstream::Context {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let _ = js.delete_stream(name).await;
    js.create_stream(jetstream::stream::Config {
        name: name.into(),
        subjects: vec![name.to_lowercase()],
        ..Default::default()
    })
    .await
    .unwrap();
    js
}

/// Records/s of the shipper with `window` over the log in `dir`, for at most `dur`.
async fn ship_rate(url: &str, dir: &Path, window: usize, dur: Duration) -> f64 {
    let js = fresh_stream(url, "BENCH").await;
    let _ = std::fs::remove_file(dir.join("ship-bench.checkpoint"));
    let mut o = JetStreamOptions::new(url, "bench");
    o.stream = Some("BENCH".into());
    let dest = JetStream::connect(o).await.unwrap();
    let options = Options {
        name: "bench".into(),
        window,
        until_caught_up: true,
        ..Options::default()
    };
    let t = Instant::now();
    let report = Shipper::new(dir, dest, options)
        .run(tokio::time::sleep(dur))
        .await
        .unwrap();
    let rate = report.status.acked as f64 / t.elapsed().as_secs_f64();
    js.delete_stream("BENCH").await.unwrap();
    rate
}

/// Records/s of the obvious alternative: read lines, publish each, await its ack.
async fn baseline_rate(url: &str, lines: &Path, dur: Duration) -> f64 {
    let js = fresh_stream(url, "BASE").await;
    let file = tokio::fs::File::open(lines).await.unwrap();
    let mut reader = tokio::io::BufReader::new(file).lines();
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < dur {
        let Some(line) = reader.next_line().await.unwrap() else {
            break;
        };
        js.publish("base", line.into_bytes().into())
            .await
            .unwrap()
            .await
            .unwrap();
        n += 1;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    js.delete_stream("BASE").await.unwrap();
    rate
}

const RATE: u64 = 10_000;

fn nanos_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Emits `RATE` events/s for `dur` with `emit(payload)`; the payload starts with its emit
/// time (ns since `epoch`) as 16 hex digits, padded to 64 bytes.
fn paced(epoch: Instant, dur: Duration, mut emit: impl FnMut(Vec<u8>)) -> u64 {
    let start = Instant::now();
    let n = count(dur);
    for i in 0..n {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / RATE);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        let mut p = format!("{:016x}", nanos_since(epoch)).into_bytes();
        p.resize(63, b'x');
        emit(p);
    }
    n
}

fn stamp(payload: &[u8]) -> u64 {
    u64::from_str_radix(std::str::from_utf8(&payload[..16]).unwrap(), 16).unwrap()
}

/// (p50, p99) in µs of emit → acked, ringwal writer + shipper.
async fn ship_lag(url: &str, dur: Duration) -> (u64, u64) {
    fresh_stream(url, "LAG").await;
    let dir = tempfile::tempdir().unwrap();
    let epoch = Instant::now();
    let (writer, emitter) = ringwal::Writer::builder(dir.path())
        .start::<Vec<u8>>()
        .unwrap();
    emitter.emit(b"0000000000000000 start".to_vec()).unwrap();
    emitter.flush().unwrap();
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let h = Arc::clone(&hist);
    let mut o = JetStreamOptions::new(url, "lag");
    o.stream = Some("LAG".into());
    let dest = JetStream::connect(o).await.unwrap();
    let shipper = Shipper::new(dir.path(), dest, Options::default()).on_ack(move |m: &Outgoing| {
        if m.seq().is_some_and(|s| s > 0) {
            let lag = nanos_since(epoch).saturating_sub(stamp(&m.payload));
            h.lock().unwrap().record(lag / 1000).unwrap();
        }
    });
    let metrics = shipper.metrics();
    let emitting = std::thread::spawn(move || {
        let n = paced(epoch, dur, |p| emitter.emit(p).unwrap());
        writer.shutdown().unwrap();
        n
    });
    shipper
        .run(async {
            while !emitting.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let n = emitting.join().unwrap();
            while metrics.status().cursor < n + 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    let h = hist.lock().unwrap();
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
}

/// (p50, p99) in µs of emit → acked: a thread appends lines (one write each), a tokio task
/// tails the file (1 ms sleep at its end), publishes each line and awaits its ack.
async fn baseline_lag(url: &str, dur: Duration) -> (u64, u64) {
    let js = fresh_stream(url, "BLAG").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.log");
    let mut file = std::fs::File::create(&path).unwrap();
    let epoch = Instant::now();
    let emitting = std::thread::spawn(move || {
        paced(epoch, dur, |mut p| {
            p.push(b'\n');
            file.write_all(&p).unwrap();
        })
    });
    let mut reader = tokio::io::BufReader::new(tokio::fs::File::open(&path).await.unwrap());
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut line = String::new();
    let total = count(dur);
    let mut n = 0;
    while n < total {
        reader.read_line(&mut line).await.unwrap();
        if !line.ends_with('\n') {
            // The end, or a line still being written (kept: the next read appends the rest).
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        js.publish("blag", line.trim_end().as_bytes().to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
        hist.record(nanos_since(epoch).saturating_sub(stamp(line.as_bytes())) / 1000)
            .unwrap();
        line.clear();
        n += 1;
    }
    emitting.join().unwrap();
    (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99))
}

/// Events `paced` emits in `dur`.
fn count(dur: Duration) -> u64 {
    dur.as_millis() as u64 * RATE / 1000
}

fn median_worst(mut v: Vec<f64>, higher_is_better: bool) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = v[v.len() / 2];
    let worst = if higher_is_better {
        v[0]
    } else {
        v[v.len() - 1]
    };
    (median, worst)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let dur = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_millis(1500)
    };
    let lag_dur = if quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(3)
    };
    let store = tempfile::tempdir().unwrap();
    let server = start_server(store.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let host = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "ship_bench: {} runs, nats-server on loopback (file storage), {} CPUs ({host})",
        runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| records | shipper window 1 | window 64 | window 1024 | read lines + publish + await ack |");
    println!("|---|---|---|---|---|");
    for (len, n) in [
        (64usize, if quick { 50_000 } else { 400_000 }),
        (1024, if quick { 10_000 } else { 100_000 }),
    ] {
        let dir = tempfile::tempdir().unwrap();
        make_log(dir.path(), n, len);
        let lines = dir.path().join("lines.txt");
        make_lines(&lines, n, len);
        let mut cells = Vec::new();
        for window in [1usize, 64, 1024] {
            let rates: Vec<f64> = (0..runs)
                .map(|_| rt.block_on(ship_rate(&server.1, dir.path(), window, dur)))
                .collect();
            cells.push(median_worst(rates, true));
        }
        let rates: Vec<f64> = (0..runs)
            .map(|_| rt.block_on(baseline_rate(&server.1, &lines, dur)))
            .collect();
        cells.push(median_worst(rates, true));
        let row: Vec<String> = cells
            .iter()
            .map(|(m, w)| format!("{:.0} ({:.0})", m, w))
            .collect();
        println!("| {len} B | {} |", row.join(" | "));
    }
    println!("(records/s shipped and acknowledged: median (worst) of {runs})");
    println!();
    println!("| end-to-end lag at {RATE} events/s, 64 B | p50 | p99 |");
    println!("|---|---|---|");
    let ours: Vec<(u64, u64)> = (0..runs)
        .map(|_| rt.block_on(ship_lag(&server.1, lag_dur)))
        .collect();
    let base: Vec<(u64, u64)> = (0..runs)
        .map(|_| rt.block_on(baseline_lag(&server.1, lag_dur)))
        .collect();
    for (name, v) in [
        (
            "ringwal writer (EveryBatch fsync) + shipper (window 256)",
            ours,
        ),
        (
            "file append + tokio tail, publish + await ack (no fsync)",
            base,
        ),
    ] {
        let p50 = median_worst(v.iter().map(|x| x.0 as f64).collect(), false);
        let p99 = median_worst(v.iter().map(|x| x.1 as f64).collect(), false);
        println!(
            "| {name} | {:.2} ms ({:.2}) | {:.2} ms ({:.2}) |",
            p50.0 / 1000.0,
            p50.1 / 1000.0,
            p99.0 / 1000.0,
            p99.1 / 1000.0
        );
    }
    println!("(emit → acknowledged in the stream: median (worst) of {runs})");
}
