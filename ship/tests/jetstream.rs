//! ringwal-ship against a real nats-server (2.9, JetStream): each test starts and stops its
//! own server processes (`nats-server -js -a 127.0.0.1 -p <free port> -sd <tempdir>`) and
//! reads the stream back with a JetStream consumer. Without nats-server the tests fail under
//! `CI=true` and print NOT RUN elsewhere.

mod common;

use common::*;
use ringwal::checkpoint::Checkpoint;
use ringwal::{Overflow, Retain, Writer};
use ringwal_ship::{JetStream, JetStreamOptions, Options, SendErrorKind, ShipError, Shipper};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "RINGWAL_SHIP_TEST_CHILD";

fn js_options(url: &str, subject: &str) -> JetStreamOptions {
    let mut o = JetStreamOptions::new(url, subject);
    o.stream = Some(subject.replace('.', "_").to_uppercase());
    o.create_stream = true;
    o.ack_timeout = Duration::from_secs(2);
    o
}

fn fast_options() -> Options {
    Options {
        name: "test".into(),
        window: 64,
        checkpoint_every: 50,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(500),
        poll_max: Duration::from_millis(2),
        ..Options::default()
    }
}

/// Ships `dir` until caught up; returns the report.
async fn ship_all(dir: &Path, js: JetStreamOptions, options: Options) -> ringwal_ship::Report {
    let dest = JetStream::connect(js).await.unwrap();
    Shipper::new(
        dir,
        dest,
        Options {
            until_caught_up: true,
            ..options
        },
    )
    .run(std::future::pending())
    .await
    .unwrap()
}

/// Writes `n` records of about `len` bytes; with refusals (a ring of 2 slots under
/// `Reject`, emitted in bursts) so that the log carries gaps.
fn write_log(dir: &Path, n: u64, segment_bytes: u64, with_gaps: bool) -> u64 {
    let (writer, emitter) = Writer::builder(dir)
        .segment_bytes(segment_bytes)
        .capacity(if with_gaps { 2 } else { 4096 })
        .overflow(Overflow::Reject)
        .start::<Vec<u8>>()
        .unwrap();
    let mut accepted = 0;
    let mut i = 0u64;
    while accepted < n {
        let payload = format!("record {i:08} {}", "x".repeat((i % 50) as usize)).into_bytes();
        if emitter.emit(payload).is_ok() {
            accepted += 1;
        }
        i += 1;
    }
    writer.shutdown().unwrap();
    // Losses after the last record: a trailing gap marker, as a writer leaves at shutdown
    // for events refused after its last record.
    if with_gaps {
        append_marker(dir, 3, 4);
    }
    accepted
}

/// Appends a gap marker (`dropped`, `refused`) to the log in `dir`, as a writer's shutdown
/// does.
fn append_marker(dir: &Path, dropped: u64, refused: u64) {
    use ringwal::{Batch, LogOptions, SegmentLog, Sink};
    let mut log = SegmentLog::open(
        dir,
        LogOptions {
            segment_bytes: 4096,
            ..LogOptions::default()
        },
    )
    .unwrap();
    let next = log.next_seq();
    let marker = ringwal::format::encode_marker(next, dropped, refused);
    log.append(&Batch::new(&marker, next, 0).unwrap()).unwrap();
    log.sync().unwrap();
}

#[test]
fn every_record_of_a_multi_segment_log_arrives_once_in_order_with_its_seq() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("every_record") {
        return;
    }
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // A live log: a writer appends (with refusals, across rotation) while the shipper ships.
    let writer_dir = dir_of(&dir);
    write_log(&writer_dir, 10, 4096, false);
    let writer = std::thread::spawn(move || write_log(&writer_dir, 6000, 4096, true));
    let report = rt.block_on(async {
        let dest = JetStream::connect(js_options(&server.url, "ship.every"))
            .await
            .unwrap();
        let shipper = Shipper::new(dir.path(), dest, fast_options());
        let metrics = shipper.metrics();
        shipper
            .run(async {
                // Until the writer is done and the shipper has caught up with it.
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if writer.is_finished() {
                        break;
                    }
                }
                let end = read_log(dir.path()).0.last().unwrap().seq + 1;
                loop {
                    let s = metrics.status();
                    if s.cursor == end && s.lag_exact {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // The trailing gap message comes after the last record.
                tokio::time::sleep(Duration::from_millis(200)).await;
            })
            .await
            .unwrap()
    });
    let (entries, trailing) = read_log(dir.path());
    assert!(Reader::open(dir.path()).unwrap().segments().unwrap().len() > 5);
    let gaps: u64 = entries.iter().map(|e| e.refused_before).sum();
    assert!(
        gaps > 0 && trailing.refused > 0,
        "the log should carry gaps: {gaps} {trailing:?}"
    );
    let got = rt.block_on(async { read_stream(&connect(&server.url).await, "SHIP_EVERY").await });
    let n = assert_exactly_once(&got, &entries, trailing, &[]);
    assert_eq!(n, entries.len());
    assert_eq!(report.status.cursor, entries.last().unwrap().seq + 1);
    assert_eq!(report.status.lag_records, 0);
    assert_eq!(report.status.dead_lettered + report.status.lost, 0);
    // The trailing gap is its own message, after the last record.
    let last = got.last().unwrap();
    assert!(last.gap.is_some() && last.seq.is_none(), "{last:?}");
    let saved = Checkpoint::load(dir.path(), "test").unwrap().unwrap();
    assert_eq!(saved.next_seq, report.status.cursor);
    assert_eq!(saved.gap_shipped, trailing);

    // A second run finds nothing to do and sends nothing.
    let again = rt.block_on(ship_all(
        dir.path(),
        js_options(&server.url, "ship.every"),
        fast_options(),
    ));
    assert_eq!(again.status.published, 0);
    println!(
        "every_record: {} records, {} messages, {} segments",
        n,
        got.len(),
        Reader::open(dir.path()).unwrap().segments().unwrap().len()
    );
}

use ringwal::Reader;
