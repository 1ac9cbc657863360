//! ringwal-ship against a real nats-server (2.9, JetStream): each test starts and stops its
//! own server processes (`nats-server -js -a 127.0.0.1 -p <free port> -sd <tempdir>`) and
//! reads the stream back with a JetStream consumer. Without nats-server the tests fail under
//! `CI=true` and print NOT RUN elsewhere.

mod common;

use common::*;
use ringwal::checkpoint::Checkpoint;
use ringwal::{Overflow, Reader, Retain, Writer};
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

/// A small xorshift for the kill delays; the seed is printed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Creates `stream` for `subject` with a duplicate window of `window` (and `max_msg_size`).
fn create_stream(
    rt: &tokio::runtime::Runtime,
    url: &str,
    stream: &str,
    subject: &str,
    window: Duration,
    max_msg_size: i32,
) {
    rt.block_on(async {
        let js = connect(url).await;
        js.create_stream(async_nats::jetstream::stream::Config {
            name: stream.into(),
            subjects: vec![subject.into()],
            duplicate_window: window,
            max_message_size: max_msg_size,
            ..Default::default()
        })
        .await
        .unwrap();
    });
}

/// The child's role in the SIGKILL test: ship for ever (until killed).
#[test]
fn child_role() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(4, '|').collect();
    let (url, subject, stream, dir) = (parts[0], parts[1], parts[2], parts[3]);
    runtime().block_on(async {
        let mut js = JetStreamOptions::new(url, subject);
        js.stream = Some(stream.into());
        let dest = JetStream::connect(js).await.unwrap();
        let options = Options {
            window: 32,
            checkpoint_every: 8,
            checkpoint_interval: Duration::from_millis(5),
            ..fast_options()
        };
        let e = Shipper::new(dir, dest, options)
            .run(std::future::pending())
            .await;
        panic!("the child shipper stopped: {e:?}");
    });
}

#[test]
fn killed_with_sigkill_at_random_points_and_restarted_nothing_missing_nothing_twice() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("sigkill") {
        return;
    }
    let server = Server::start();
    let rt = runtime();
    // A 100 ms duplicate window (the server's minimum): de-duplication cannot hide a record sent again
    // after a restart; only the resume from the stream's last message (and the checkpoint)
    // keep each record once.
    create_stream(
        &rt,
        &server.url,
        "KILLS",
        "ship.kills",
        Duration::from_millis(100),
        -1,
    );
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 3000, 8192, true);
    // A writer keeps appending for as long as the shippers are being killed (a fixed count
    // ran out before the kills did on a fast machine: the shippers caught up and the later
    // kills hit an idle shipper).
    let writer_dir = dir_of(&dir);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_writer = std::sync::Arc::clone(&stop);
    let writer = std::thread::spawn(move || {
        let (writer, emitter) = Writer::builder(&writer_dir)
            .segment_bytes(8192)
            .start::<Vec<u8>>()
            .unwrap();
        let mut i = 0u64;
        while !stop_writer.load(std::sync::atomic::Ordering::Relaxed) {
            emitter.emit(format!("live {i:06}").into_bytes()).unwrap();
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(15));
            }
            i += 1;
        }
        writer.shutdown().unwrap();
    });
    let spec = format!("{}|ship.kills|KILLS|{}", server.url, dir.path().display());
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new();
    let mut cursors = Vec::new();
    for _ in 0..24 {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &spec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(40 + rng.below(260)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        cursors.push(
            Checkpoint::load(dir.path(), "test")
                .unwrap()
                .map_or(0, |c| c.next_seq),
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    // Killed mid-flight: the cursor moved in most rounds (the kills hit a working shipper).
    let moved = cursors.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        moved >= 10,
        "the cursor moved in only {moved} of 24 rounds: {cursors:?}"
    );
    let mut js = JetStreamOptions::new(&server.url, "ship.kills");
    js.stream = Some("KILLS".into());
    let report = rt.block_on(ship_all(dir.path(), js, fast_options()));
    let (entries, trailing) = read_log(dir.path());
    let got = rt.block_on(async { read_stream(&connect(&server.url).await, "KILLS").await });
    let n = assert_exactly_once(&got, &entries, trailing, &[]);
    assert_eq!(report.status.cursor, entries.last().unwrap().seq + 1);
    println!(
        "sigkill: 24 kills, cursors {cursors:?}; {n} records in the stream once each; the final \
         run shipped {} and found {} already in",
        report.status.acked, report.status.duplicates
    );
}

#[test]
fn server_stopped_and_restarted_mid_stream_nothing_lost_or_twice_and_the_writer_never_blocked() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("server_restart") {
        return;
    }
    let mut server = Server::start();
    let url = server.url.clone();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // A ring of 1024 at 3,000 events/s: a writer waiting on the shipper would refuse events
    // within half a second of the outage; it must refuse none.
    let (writer, emitter) = Writer::builder(dir.path())
        .segment_bytes(64 << 10)
        .capacity(1024)
        .overflow(Overflow::Reject)
        .start::<Vec<u8>>()
        .unwrap();
    let emitting = std::thread::spawn(move || {
        let start = Instant::now();
        let mut worst = Duration::ZERO;
        let mut refused = 0;
        for i in 0..9000u64 {
            let due = start + Duration::from_micros(i * 333);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let t = Instant::now();
            if emitter.emit(format!("event {i:06}").into_bytes()).is_err() {
                refused += 1;
            }
            worst = worst.max(t.elapsed());
        }
        let report = writer.shutdown().unwrap();
        (refused, worst, report)
    });
    let outage = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        server.stop(false); // SIGTERM
        std::thread::sleep(Duration::from_millis(800));
        server.restart();
        std::thread::sleep(Duration::from_millis(600));
        server.stop(true); // SIGKILL, same store
        std::thread::sleep(Duration::from_millis(500));
        server.restart();
        server
    });
    let report = rt.block_on(async {
        let dest = JetStream::connect(js_options(&url, "ship.outage"))
            .await
            .unwrap();
        let shipper = Shipper::new(dir.path(), dest, fast_options());
        let metrics = shipper.metrics();
        shipper
            .run(async {
                while !emitting.is_finished() || !outage.is_finished() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                loop {
                    let s = metrics.status();
                    if s.cursor == 9000 {
                        break;
                    }
                    if std::env::var_os("SHIP_DEBUG").is_some() {
                        eprintln!("{s:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap()
    });
    let _server = outage.join().unwrap();
    let (refused, worst, writer_report) = emitting.join().unwrap();
    assert_eq!(refused, 0, "the writer refused events during the outage");
    assert_eq!(writer_report.persisted, 9000);
    assert!(worst < Duration::from_millis(250), "an emit took {worst:?}");
    assert!(
        report.status.retries > 0,
        "the outage was not noticed: {:?}",
        report.status
    );
    let (entries, trailing) = read_log(dir.path());
    let got = rt.block_on(async { read_stream(&connect(&url).await, "SHIP_OUTAGE").await });
    assert_exactly_once(&got, &entries, trailing, &[]);
    println!(
        "server_restart: 9000 records once each; {} retries, {} duplicates acked; worst emit {worst:?}",
        report.status.retries, report.status.duplicates
    );
}

/// Writes `n` records (no gaps) with `retain` and small segments.
fn write_retained(dir: &Path, n: u64, retain: Retain) {
    let (writer, emitter) = Writer::builder(dir)
        .segment_bytes(1024)
        .retain(retain)
        .start::<Vec<u8>>()
        .unwrap();
    for i in 0..n {
        emitter
            .emit(format!("retained {i:06}").into_bytes())
            .unwrap();
        if i % 64 == 63 {
            emitter.flush().unwrap(); // one batch per flush: retention runs after each
        }
    }
    writer.shutdown().unwrap();
}

#[test]
fn retention_keeps_what_is_unshipped_unless_retain_bytes_forces_it_then_the_gap_is_reported() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("retention") {
        return;
    }
    let server = Server::start();
    let rt = runtime();
    let segments = |dir: &Path| Reader::open(dir).unwrap().segments().unwrap();

    // Segments(2), the shipper stopped at record 10: everything from 10 on stays.
    let a = tempfile::tempdir().unwrap();
    write_retained(a.path(), 10, Retain::All);
    rt.block_on(ship_all(
        a.path(),
        js_options(&server.url, "ret.a"),
        fast_options(),
    ));
    write_retained(a.path(), 500, Retain::Segments(2));
    let kept = segments(a.path());
    let held_back = kept.len();
    assert!(held_back > 20 && kept[0].first_seq <= 10, "{kept:?}");
    let report = rt.block_on(ship_all(
        a.path(),
        js_options(&server.url, "ret.a"),
        fast_options(),
    ));
    assert_eq!((report.status.lost, report.status.cursor), (0, 510));
    // Shipped: the next writer's retention frees them.
    write_retained(a.path(), 100, Retain::Segments(2));
    // The oldest kept is the one holding record 510, the first unshipped.
    let kept = segments(a.path());
    assert!(
        kept[0].first_seq <= 510 && kept[1].first_seq > 510,
        "{kept:?}"
    );
    let got = rt.block_on(async { read_stream(&connect(&server.url).await, "RET_A").await });
    let seqs: Vec<u64> = got.iter().filter_map(|g| g.seq).collect();
    assert_eq!(seqs, (0..510).collect::<Vec<_>>());

    // Racing: a writer on Segments(2) with tiny segments while a slow shipper (window 1)
    // ships: nothing unshipped is deleted.
    let b = tempfile::tempdir().unwrap();
    write_retained(b.path(), 1, Retain::All);
    let b_dir = dir_of(&b);
    let report = rt.block_on(async {
        let dest = JetStream::connect(js_options(&server.url, "ret.b"))
            .await
            .unwrap();
        let shipper = Shipper::new(
            &b_dir,
            dest,
            Options {
                window: 1,
                ..fast_options()
            },
        );
        let metrics = shipper.metrics();
        let writer_dir = b_dir.clone();
        shipper
            .run(async {
                // Polled first once the shipper runs (its checkpoint is in place).
                let writer = std::thread::spawn(move || {
                    write_retained(&writer_dir, 3000, Retain::Segments(2))
                });
                while !writer.is_finished() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                while metrics.status().cursor < 3001 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap()
    });
    assert_eq!(report.status.lost, 0);
    let got = rt.block_on(async { read_stream(&connect(&server.url).await, "RET_B").await });
    let seqs: Vec<u64> = got.iter().filter_map(|g| g.seq).collect();
    assert_eq!(seqs, (0..3001).collect::<Vec<_>>());

    // Bytes(4096): a hard bound; it deletes unshipped records, and the shipper reports them
    // and ships a lost-records message in their place.
    let c = tempfile::tempdir().unwrap();
    write_retained(c.path(), 10, Retain::All);
    rt.block_on(ship_all(
        c.path(),
        js_options(&server.url, "ret.c"),
        fast_options(),
    ));
    write_retained(c.path(), 500, Retain::Bytes(4096));
    let oldest = segments(c.path())[0].first_seq;
    assert!(
        oldest > 10,
        "Retain::Bytes should have deleted unshipped segments"
    );
    let dest = rt
        .block_on(JetStream::connect(js_options(&server.url, "ret.c")))
        .unwrap();
    let shipper = Shipper::new(
        c.path(),
        dest,
        Options {
            until_caught_up: true,
            ..fast_options()
        },
    );
    let metrics = shipper.metrics();
    let report = rt.block_on(shipper.run(std::future::pending())).unwrap();
    assert_eq!(report.status.lost, oldest - 10);
    let warning = metrics.status().last_error.unwrap();
    assert!(
        warning.contains(&format!("records 10 to {}", oldest - 1)),
        "{warning}"
    );
    let got = rt.block_on(async { read_stream(&connect(&server.url).await, "RET_C").await });
    let lost: Vec<_> = got.iter().filter_map(|g| g.lost).collect();
    assert_eq!(lost, [(10, oldest - 1)]);
    let (entries, trailing) = read_log(c.path());
    let records: Vec<u64> = got.iter().filter_map(|g| g.seq).collect();
    let expected: Vec<u64> = (0..10).chain(entries.iter().map(|e| e.seq)).collect();
    assert_eq!(records, expected);
    assert_eq!(trailing, ringwal::Gap::default());
    println!(
        "retention: Segments(2) kept {held_back} segments for the stopped shipper; Bytes forced \
         a gap of {} records, reported and shipped",
        oldest - 10
    );
}

#[test]
fn an_oversize_record_goes_to_the_dead_letter_file() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("dead_letter") {
        return;
    }
    let server = Server::start();
    let rt = runtime();
    create_stream(&rt, &server.url, "DEAD", "ship.dead", Duration::ZERO, 512);
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    let sizes = [100usize, 1000, 100, 1_500_000, 100];
    for (i, len) in sizes.iter().enumerate() {
        emitter.emit(vec![b'a' + i as u8; *len]).unwrap();
    }
    writer.shutdown().unwrap();
    let mut js = JetStreamOptions::new(&server.url, "ship.dead");
    js.stream = Some("DEAD".into());
    let report = rt.block_on(ship_all(dir.path(), js, fast_options()));
    assert_eq!(report.status.dead_lettered, 2);
    assert_eq!(report.status.cursor, 5);
    let got = rt.block_on(async { read_stream(&connect(&server.url).await, "DEAD").await });
    let seqs: Vec<u64> = got.iter().filter_map(|g| g.seq).collect();
    assert_eq!(seqs, [0, 2, 4]);
    let dead =
        std::fs::read_to_string(ringwal::checkpoint::dead_letter_path(dir.path(), "test").unwrap())
            .unwrap();
    let lines: Vec<&str> = dead.lines().collect();
    assert_eq!(lines.len(), 2, "{dead:.300}");
    assert!(
        lines[0].starts_with("record 1 bytes 1000 payload 6262"),
        "{:.80}",
        lines[0]
    );
    assert!(
        lines[0].contains("reason record 1 of 1000 bytes"),
        "{:.80}",
        &lines[0][2000..]
    );
    assert!(
        lines[1].starts_with("record 3 bytes 1500000 payload 6464"),
        "{:.80}",
        lines[1]
    );
    assert!(
        lines[1].contains("max payload"),
        "{}",
        &lines[1][3_000_000..]
    );
    println!("dead_letter: {}", &lines[1][3_000_000..]);
}

#[test]
fn corrupt_segments_and_bad_input_are_reported_never_shipped_never_a_panic() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("corrupt") {
        return;
    }
    let server = Server::start();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 300, 1024, false);
    let segs = Reader::open(dir.path()).unwrap().segments().unwrap();
    assert!(segs.len() >= 3);
    // A bit flip in the first record of the second segment (sealed: damage, not a tail).
    let damaged = &segs[1];
    let mut bytes = std::fs::read(&damaged.path).unwrap();
    let at = ringwal::format::HEADER_LEN + ringwal::format::FRAME_HEADER_LEN + 2;
    bytes[at] ^= 0x40;
    std::fs::write(&damaged.path, bytes).unwrap();

    let dest = rt
        .block_on(JetStream::connect(js_options(&server.url, "bad.log")))
        .unwrap();
    let err = rt
        .block_on(
            Shipper::new(
                dir.path(),
                dest,
                Options {
                    until_caught_up: true,
                    ..fast_options()
                },
            )
            .run(std::future::pending()),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ShipError::Log(_)), "{err:?}");
    assert!(
        text.contains(damaged.path.file_name().unwrap().to_str().unwrap())
            && text.contains("offset"),
        "{text}"
    );
    let got = rt.block_on(async { read_stream(&connect(&server.url).await, "BAD_LOG").await });
    let seqs: Vec<u64> = got.iter().filter_map(|g| g.seq).collect();
    assert_eq!(
        seqs,
        (0..damaged.first_seq).collect::<Vec<_>>(),
        "only the records before the damage"
    );
    assert_eq!(
        Checkpoint::load(dir.path(), "test")
            .unwrap()
            .unwrap()
            .next_seq,
        damaged.first_seq
    );

    // A damaged checkpoint: an error naming it, nothing sent.
    let ckpt = Checkpoint::path(dir.path(), "test").unwrap();
    std::fs::write(&ckpt, "ringwal-ship-checkpoint 1\nnext 12\n").unwrap();
    let dest = rt
        .block_on(JetStream::connect(js_options(&server.url, "bad.log")))
        .unwrap();
    let err = rt
        .block_on(Shipper::new(dir.path(), dest, fast_options()).run(std::future::pending()))
        .unwrap_err();
    assert!(
        err.to_string().contains("ship-test.checkpoint")
            && err.to_string().contains("bad checkpoint"),
        "{err}"
    );

    // Invalid settings.
    let dest = rt
        .block_on(JetStream::connect(js_options(&server.url, "bad.log")))
        .unwrap();
    let err = rt
        .block_on(
            Shipper::new(
                dir.path(),
                dest,
                Options {
                    window: 0,
                    ..fast_options()
                },
            )
            .run(std::future::pending()),
        )
        .unwrap_err();
    assert!(matches!(err, ShipError::Settings(_)), "{err}");

    // Not a log.
    let empty = tempfile::tempdir().unwrap();
    let dest = rt
        .block_on(JetStream::connect(js_options(&server.url, "bad.log")))
        .unwrap();
    let err = rt
        .block_on(Shipper::new(empty.path(), dest, fast_options()).run(std::future::pending()))
        .unwrap_err();
    assert!(err.to_string().contains("not a ringwal log"), "{err}");

    // An unreachable server: a clear error, quickly.
    let mut js = js_options(&format!("nats://127.0.0.1:{}", free_port()), "bad.log");
    js.connect_timeout = Duration::from_secs(1);
    let t = Instant::now();
    let err = rt.block_on(JetStream::connect(js)).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Fatal);
    assert!(err.message.contains("cannot connect to NATS"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));

    // Another log's messages on the subject: refused, nothing sent.
    let other = tempfile::tempdir().unwrap();
    write_log(other.path(), 5, 4096, false);
    let dest = rt
        .block_on(JetStream::connect(js_options(&server.url, "bad.log")))
        .unwrap();
    let err = rt
        .block_on(Shipper::new(other.path(), dest, fast_options()).run(std::future::pending()))
        .unwrap_err();
    assert!(
        matches!(err, ShipError::Destination(ref e) if e.kind == SendErrorKind::Fatal),
        "{err}"
    );
    assert!(err.to_string().contains("not from this log"), "{err}");

    // A stream that takes other subjects too cannot be kept in order: refused.
    rt.block_on(async {
        connect(&server.url)
            .await
            .create_stream(async_nats::jetstream::stream::Config {
                name: "WIDE".into(),
                subjects: vec!["wide.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
    });
    let mut js = JetStreamOptions::new(&server.url, "wide.one");
    js.stream = Some("WIDE".into());
    let err = rt.block_on(JetStream::connect(js)).unwrap_err();
    assert!(err.message.contains("only subject"), "{err}");
}

/// A shipper window larger than the client's bound on unacknowledged publishes
/// (`JetStreamOptions::max_inflight`): the run ships everything and ends. (It hung for
/// ever: the send past the bound awaited a permit that only the acks the shipper had not
/// yet polled would give back, and `stop` was not looked at meanwhile.)
#[test]
fn a_window_larger_than_the_clients_inflight_bound_ships_instead_of_hanging() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("window_over_inflight") {
        return;
    }
    let server = Server::start();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 300, 1 << 20, false);
    let mut js = js_options(&server.url, "ship.inflight");
    js.max_inflight = 8;
    let report = rt
        .block_on(async {
            let dest = JetStream::connect(js).await.unwrap();
            let options = Options {
                window: 64,
                until_caught_up: true,
                ..fast_options()
            };
            // A guard against the hang: the run takes well under a second.
            tokio::time::timeout(
                Duration::from_secs(30),
                Shipper::new(dir.path(), dest, options).run(std::future::pending()),
            )
            .await
        })
        .expect("the shipper hung with a window above max_inflight")
        .unwrap();
    assert_eq!(report.status.cursor, 300);
    let (entries, trailing) = read_log(dir.path());
    let got =
        rt.block_on(async { read_stream(&connect(&server.url).await, "SHIP_INFLIGHT").await });
    assert_eq!(assert_exactly_once(&got, &entries, trailing, &[]), 300);
}

/// A server that asks for a user and password: the credentials in the URL are used (they
/// were not: async-nats ignores a URL's user info, so even the right password got
/// "authorization violation", and `ringwal ship` had no other way to give them). A wrong
/// one, or a server that never speaks NATS, is a Fatal error from `connect` within a bound,
/// never showing the password; nor do the checkpoint file (its `destination` line, which
/// `ringwal info` prints) and the shipper's description (both carried the URL verbatim).
#[test]
fn credentials_in_the_url_stay_out_of_errors_and_the_checkpoint() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("credentials") {
        return;
    }
    const SECRET: &str = "s3cr3t-pw";
    let rt = runtime();
    let attempt = |url: String| {
        let mut js = js_options(&url, "cred.events");
        js.connect_timeout = Duration::from_secs(1);
        js.ack_timeout = Duration::from_secs(2);
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(20), JetStream::connect(js)).await
        })
        .expect("connect hung")
    };
    // A TCP listener that never speaks NATS: a timeout, quickly.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let t = Instant::now();
    let err = attempt(format!(
        "nats://u:{SECRET}@{}",
        silent.local_addr().unwrap()
    ))
    .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(err.message.contains("cannot connect to NATS"), "{err}");
    assert!(!err.message.contains(SECRET), "{err}");

    let store = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["--user", "u", "--pass", SECRET, "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A wrong password: an authorization error, the password not shown.
    let err = attempt(format!("nats://u:{SECRET}x@127.0.0.1:{port}")).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Fatal);
    assert!(err.message.contains("authorization violation"), "{err}");
    assert!(!err.message.contains(SECRET), "{err}");
    // The right one: shipped; neither the checkpoint nor the description holds it.
    let dest = attempt(format!("nats://u:{SECRET}@127.0.0.1:{port}")).unwrap();
    use ringwal_ship::Destination;
    assert!(!dest.describe().contains(SECRET), "{}", dest.describe());
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, 4096, false);
    let report = rt
        .block_on(
            Shipper::new(
                dir.path(),
                dest,
                Options {
                    until_caught_up: true,
                    ..fast_options()
                },
            )
            .run(std::future::pending()),
        )
        .unwrap();
    assert_eq!(report.status.cursor, 10);
    let text = std::fs::read_to_string(Checkpoint::path(dir.path(), "test").unwrap()).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port} cred.events")),
        "{text}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A subject or a stream the shipper cannot use is refused at `connect`, with the reason,
/// instead of a shipper that retries for ever: a wildcard subject (a publish to it is
/// invalid, so every ack timed out) and a stream with `no_ack` (it never acknowledges:
/// every publish timed out, a window per ack timeout, each counted as a failure).
#[test]
fn a_wildcard_subject_or_a_no_ack_stream_is_refused_at_connect() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("unusable") {
        return;
    }
    let server = Server::start();
    let rt = runtime();
    for subject in ["wild.*", "wild.>", "bad subject", "bad..subject", ""] {
        let mut js = js_options(&server.url, subject);
        js.stream = Some("WILD".into());
        let err = rt
            .block_on(JetStream::connect(js))
            .expect_err(&format!("subject {subject:?} accepted"));
        assert_eq!(err.kind, SendErrorKind::Fatal, "{err}");
        assert!(err.message.contains("subject"), "{err}");
    }
    rt.block_on(async {
        connect(&server.url)
            .await
            .create_stream(async_nats::jetstream::stream::Config {
                name: "NOACK".into(),
                subjects: vec!["no.ack".into()],
                no_ack: true,
                ..Default::default()
            })
            .await
            .unwrap();
    });
    let mut js = JetStreamOptions::new(&server.url, "no.ack");
    js.stream = Some("NOACK".into());
    let err = rt.block_on(JetStream::connect(js)).unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Fatal, "{err}");
    assert!(err.message.contains("no_ack"), "{err}");
}

/// A server without JetStream (`nats-server` without `-js`): an error saying so. (It said
/// "stream ...: request error: requested JetStream resource does not exist", also with
/// `create_stream`, which reads as a missing stream the shipper should have created.)
#[test]
fn a_server_without_jetstream_is_a_clear_error() {
    if std::env::var_os(CHILD_ENV).is_some() || !nats_available("no_jetstream") {
        return;
    }
    let port = free_port();
    let mut child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let rt = runtime();
    let url = format!("nats://127.0.0.1:{port}");
    for (stream, create) in [(Some("NOJS"), true), (Some("NOJS"), false), (None, false)] {
        let mut js = JetStreamOptions::new(&url, "no.js");
        js.stream = stream.map(String::from);
        js.create_stream = create;
        js.ack_timeout = Duration::from_secs(2);
        let t = Instant::now();
        let err = rt.block_on(JetStream::connect(js)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(err.kind, SendErrorKind::Fatal);
        assert!(
            err.message.contains("JetStream is not enabled") && err.message.contains("-js"),
            "{err}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
