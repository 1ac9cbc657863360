//! A minimal tokio service logging through ringwal: request tasks emit an audit line each with
//! `emit_async` (a full ring makes the task wait, never the runtime thread), a tail task
//! follows the log as a `Stream` (woken by the writer's appends, no polling). All on one
//! `current_thread` runtime. No web framework: the "requests" are a loop.
//!
//! ```text
//! cargo run --release -p ringwal --example tokio_service
//! ```
//!
//! Exits non-zero if the tail did not see every line in order or the report does not add up.

use futures_core::Stream;
use ringwal::{Overflow, Reader, Writer};
use std::future::poll_fn;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const CLIENTS: u64 = 8;
const REQUESTS: u64 = 2_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None)) // back-pressure as waiting tasks, never lost lines
        .capacity(1024)
        .start::<String>()
        .expect("the writer");

    // The tail: the log's live follow as a Stream, from the first record.
    let mut follow = Reader::open(dir.path()).expect("the log").follow();
    let total = CLIENTS * REQUESTS;
    let tail = tokio::spawn(async move {
        let mut seen = 0u64;
        while seen < total {
            let next = poll_fn(|cx| Pin::new(&mut follow).poll_next(cx)).await;
            let entry = match next {
                Some(Ok(entry)) => entry,
                Some(Err(e)) => return Err(format!("tail: {e}")),
                None => return Err("tail: the follow ended".into()),
            };
            if entry.seq != seen {
                return Err(format!("tail: seq {} where {seen} was due", entry.seq));
            }
            seen += 1;
        }
        Ok(seen)
    });

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let emitter = emitter.clone();
            tokio::spawn(async move {
                for request in 0..REQUESTS {
                    // ... serve the request, then audit it:
                    let line = format!("client={client} request={request} status=200");
                    emitter
                        .emit_async(line)
                        .await
                        .expect("the writer is running");
                    if request % 64 == 0 {
                        tokio::task::yield_now().await; // other requests get their turn
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("a client task");
    }
    emitter.flush_async().await.expect("flushed");
    let emitted_in = started.elapsed();
    let tailed = tokio::time::timeout(Duration::from_secs(30), tail).await;
    let report = writer.shutdown().expect("a clean shutdown");

    println!(
        "{total} lines from {CLIENTS} tasks in {emitted_in:.1?}; persisted {}, rejected {}",
        report.persisted, report.rejected
    );
    match tailed {
        Ok(Ok(Ok(seen))) => println!("the tail followed all {seen} lines, in order"),
        Ok(Ok(Err(e))) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        Ok(Err(e)) => {
            eprintln!("the tail task failed: {e}");
            return ExitCode::FAILURE;
        }
        Err(_) => {
            eprintln!("the tail did not catch up within 30 s");
            return ExitCode::FAILURE;
        }
    }
    if report.persisted != total || report.rejected != 0 {
        eprintln!("the report does not add up: {report:?}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
