//! Test helpers: nats-server processes the tests own, and reading a stream back with a
//! JetStream consumer.
#![allow(dead_code)]

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use ringwal::{Entry, Gap, Reader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether nats-server can run here. Without it: under `CI=true` the test fails (loudly);
/// elsewhere it prints NOT RUN and the caller returns.
pub fn nats_available(test: &str) -> bool {
    let ok = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: nats-server is missing and CI=true: install it (apt-get install nats-server)");
        }
        eprintln!("!!! NOT RUN: {test} needs nats-server (apt-get install nats-server)");
    }
    ok
}

/// A nats-server with JetStream on 127.0.0.1, its store in a temporary directory; killed when
/// dropped.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
    pub url: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    pub fn start() -> Server {
        let store = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut server = Server {
            child: None,
            port,
            url: format!("nats://127.0.0.1:{port}"),
            store,
        };
        server.restart();
        server
    }

    pub fn store(&self) -> &Path {
        self.store.path()
    }

    /// (Re)starts the process on the same port and store.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops it: SIGTERM (a clean shutdown), or SIGKILL with `hard`.
    pub fn stop(&mut self, hard: bool) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if hard {
            let _ = child.kill();
        } else {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(true);
    }
}

/// A message read back from the stream.
#[derive(Debug, Clone)]
pub struct Got {
    pub stream_seq: u64,
    pub id: String,
    pub seq: Option<u64>,
    pub next: u64,
    pub dropped: u64,
    pub refused: u64,
    pub gap: Option<String>,
    pub lost: Option<(u64, u64)>,
    pub payload: Vec<u8>,
}

fn header(m: &async_nats::Message, name: &str) -> Option<String> {
    m.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
}

/// Every message of `stream`, read with a fresh pull consumer (deliver all, no acks).
pub async fn read_stream(js: &jetstream::Context, stream: &str) -> Vec<Got> {
    let stream = js.get_stream(stream).await.unwrap();
    let total = stream.get_info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < total {
        assert!(Instant::now() < deadline, "read {} of {total}", out.len());
        let mut batch = consumer
            .fetch()
            .max_messages(2000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        while let Some(m) = next(&mut batch).await {
            let m = m.unwrap();
            let info = m.info().unwrap();
            let num = |name| header(&m.message, name).map(|v| v.parse::<u64>().unwrap());
            out.push(Got {
                stream_seq: info.stream_sequence,
                id: header(&m.message, "Nats-Msg-Id").unwrap(),
                seq: num(ringwal_ship::HEADER_SEQ),
                next: num(ringwal_ship::HEADER_NEXT).unwrap(),
                dropped: num(ringwal_ship::HEADER_DROPPED).unwrap_or(0),
                refused: num(ringwal_ship::HEADER_REFUSED).unwrap_or(0),
                gap: header(&m.message, ringwal_ship::HEADER_GAP),
                lost: header(&m.message, ringwal_ship::HEADER_LOST).map(|v| {
                    let (a, b) = v.split_once(' ').unwrap();
                    (a.parse().unwrap(), b.parse().unwrap())
                }),
                payload: m.message.payload.to_vec(),
            });
        }
    }
    out
}

/// The next item of a stream, without futures-util.
pub async fn next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

/// The log's records and its trailing gap.
pub fn read_log(dir: &Path) -> (Vec<Entry>, Gap) {
    let mut iter = Reader::open(dir).unwrap().iter();
    let entries = iter.by_ref().map(|e| e.unwrap()).collect();
    (entries, iter.trailing_gap())
}

/// Asserts that the stream holds every record of `entries` (but those `skipped`), once each,
/// in order, byte for byte, with its seq, and that the loss headers add up to the log's.
/// Returns the number of records checked.
pub fn assert_exactly_once(
    got: &[Got],
    entries: &[Entry],
    trailing: Gap,
    skipped: &[u64],
) -> usize {
    let records: Vec<&Got> = got.iter().filter(|g| g.seq.is_some()).collect();
    let expected: Vec<&Entry> = entries
        .iter()
        .filter(|e| !skipped.contains(&e.seq))
        .collect();
    let mut ids = std::collections::HashSet::new();
    for g in got {
        assert!(
            ids.insert(g.id.clone()),
            "message id {} twice in the stream",
            g.id
        );
    }
    assert_eq!(
        records.len(),
        expected.len(),
        "records in the stream: {} (first seqs {:?}), in the log: {}",
        records.len(),
        records.iter().take(5).map(|g| g.seq).collect::<Vec<_>>(),
        expected.len()
    );
    for (g, e) in records.iter().zip(&expected) {
        assert_eq!(g.seq, Some(e.seq), "order: stream seq {}", g.stream_seq);
        assert_eq!(g.payload, e.payload, "payload of record {}", e.seq);
        assert_eq!(g.next, e.seq + 1);
    }
    // Stream order is log order.
    let nexts: Vec<u64> = got.iter().map(|g| g.next).collect();
    assert!(
        nexts.windows(2).all(|w| w[0] <= w[1]),
        "out of order: {nexts:?}"
    );
    let shipped_dropped: u64 = got.iter().map(|g| g.dropped).sum();
    let shipped_refused: u64 = got.iter().map(|g| g.refused).sum();
    let log_dropped: u64 = entries.iter().map(|e| e.dropped_before).sum::<u64>() + trailing.dropped;
    let log_refused: u64 = entries.iter().map(|e| e.refused_before).sum::<u64>() + trailing.refused;
    assert_eq!(
        (shipped_dropped, shipped_refused),
        (log_dropped, log_refused),
        "loss accounting: shipped vs the log"
    );
    records.len()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub async fn connect(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.unwrap())
}

pub fn dir_of(d: &tempfile::TempDir) -> PathBuf {
    d.path().to_path_buf()
}
