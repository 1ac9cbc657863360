//! `Follow`, a log's live follow, as a `futures_core::Stream` and as `next_async`: woken by the
//! appends of a writer in this process (no timer), polling at its interval a log written by
//! another process; on tokio and on `futures-executor`.

use futures_core::Stream;
use ringwal::{Entry, Follow, Overflow, Reader, Writer};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The next item of the stream (`StreamExt::next`, without `futures-util`).
async fn next(follow: &mut Follow) -> Option<io::Result<Entry>> {
    poll_fn(|cx| Pin::new(&mut *follow).poll_next(cx)).await
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn wait_for_wake(count: &Count, within: Duration) -> Duration {
    let start = Instant::now();
    while count.0.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < within, "not woken within {within:?}");
        std::thread::sleep(Duration::from_micros(200));
    }
    start.elapsed()
}

/// Tasks emitting through `emit_async` while a task on the same runtime follows the log as a
/// `Stream`, across segment rotations: it gets every record, in order.
fn stream_follows_the_writer(rt: tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .capacity(8)
        .segment_bytes(4096) // a few rotations on the way
        .start::<String>()
        .unwrap();
    let (tasks, n) = (4usize, 150usize);
    rt.block_on(async {
        let mut follow = Reader::open(dir.path()).unwrap().follow();
        assert!(follow.writer_attached());
        let tail = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < tasks * n {
                let entry = next(&mut follow)
                    .await
                    .expect("a live follow goes on")
                    .unwrap();
                assert_eq!(entry.seq, got.len() as u64, "in sequence");
                got.push(String::from_utf8(entry.payload).unwrap());
            }
            got
        });
        let emitters: Vec<_> = (0..tasks)
            .map(|t| {
                let emitter = emitter.clone();
                tokio::spawn(async move {
                    for i in 0..n {
                        emitter.emit_async(format!("{t} {i}")).await.unwrap();
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for e in emitters {
            e.await.unwrap();
        }
        let got = tokio::time::timeout(Duration::from_secs(20), tail)
            .await
            .expect("the follower saw every record")
            .unwrap();
        // Each task's events in its order.
        for t in 0..tasks {
            let mine: Vec<&String> = got
                .iter()
                .filter(|s| s.starts_with(&format!("{t} ")))
                .collect();
            let want: Vec<String> = (0..n).map(|i| format!("{t} {i}")).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>());
        }
    });
    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted as usize, tasks * n);
    assert!(report.segments > 1, "the follow crossed segments");
}

#[test]
fn a_stream_follows_the_writer_on_tokio_current_thread() {
    stream_follows_the_writer(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    );
}

#[test]
fn a_stream_follows_the_writer_on_tokio_multi_thread() {
    stream_follows_the_writer(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
}

/// `next_async` on `futures-executor`'s `block_on`, a writer thread emitting.
#[test]
fn next_async_follows_on_futures_executor() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<u64>().unwrap();
    let mut follow = Reader::open(dir.path()).unwrap().follow();
    let producer = std::thread::spawn(move || {
        for i in 0..200u64 {
            emitter.emit(i).unwrap();
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let got: Vec<u64> = futures_executor::block_on(async {
        let mut got = Vec::new();
        while got.len() < 200 {
            let entry = follow.next_async().await.unwrap().unwrap();
            got.push(u64::from_le_bytes(entry.payload[..8].try_into().unwrap()));
        }
        got
    });
    producer.join().unwrap();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    writer.shutdown().unwrap();
}

/// With a writer in this process the follower is woken by the append itself: its poll
/// interval is 60 s, yet the wake comes as soon as the record is written.
#[test]
fn an_append_wakes_the_follower_without_a_timer() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<&'static str>().unwrap();
    let mut follow = Reader::open(dir.path())
        .unwrap()
        .follow()
        .poll_interval(Duration::from_secs(60));
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(follow.poll_next_entry(&mut cx).is_pending());
    emitter.emit("hello").unwrap();
    let took = wait_for_wake(&count, Duration::from_secs(10));
    println!("woken {took:?} after the emit");
    match follow.poll_next_entry(&mut cx) {
        Poll::Ready(Some(Ok(entry))) => assert_eq!(entry.payload, b"hello"),
        other => panic!("{other:?}"),
    }
    // Dropping a pending `next_async` loses nothing: the entry is there on the next call.
    {
        let mut pending = pin!(follow.next_async());
        assert!(pending.as_mut().poll(&mut cx).is_pending());
    }
    emitter.emit("again").unwrap();
    emitter.flush().unwrap();
    let entry = futures_executor::block_on(follow.next_async())
        .unwrap()
        .unwrap();
    assert_eq!(entry.payload, b"again");
    writer.shutdown().unwrap();
    assert!(!follow.writer_attached(), "the writer detached at shutdown");
}

/// The child half of `a_follower_polls_a_log_written_by_another_process`: a writer in another
/// process. Run only by that test (as its child process), which sets `RINGWAL_CHILD_DIR`.
#[test]
// Ignored so that a plain `cargo test` does not run it on its own (it needs the directory the
// parent names): `a_follower_polls_a_log_written_by_another_process`, which CI runs, starts it
// with `--ignored --exact` as its child process, so it runs every time that test does.
#[ignore = "the writer process of a_follower_polls_a_log_written_by_another_process"]
fn child_writer_process() {
    let dir = std::env::var("RINGWAL_CHILD_DIR").expect("run by the parent test only");
    let (writer, emitter) = Writer::builder(dir).start::<u64>().unwrap();
    for i in 0..20u64 {
        emitter.emit(i).unwrap();
        emitter.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    writer.shutdown().unwrap();
}

/// A writer in another process announces nothing here: the follower looks again at its poll
/// interval (woken by the follow timer thread), and gets every record.
#[test]
fn a_follower_polls_a_log_written_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writer_process",
            "--ignored",
            "--nocapture",
        ])
        .env("RINGWAL_CHILD_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The log exists once the child's writer has opened it.
    let started = Instant::now();
    let reader = loop {
        match Reader::open(dir.path()) {
            Ok(reader) => break reader,
            Err(e) => assert!(started.elapsed() < Duration::from_secs(30), "{e}"),
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut follow = reader.follow().poll_interval(Duration::from_millis(10));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let mut got = Vec::new();
            while got.len() < 20 {
                assert!(
                    !follow.writer_attached(),
                    "the writer is in another process"
                );
                let entry = next(&mut follow).await.unwrap().unwrap();
                got.push(u64::from_le_bytes(entry.payload[..8].try_into().unwrap()));
            }
            got
        })
        .await
        .expect("the follower saw the other process's records")
    });
    assert!(child.wait().unwrap().success());
    assert_eq!(got, (0..20).collect::<Vec<_>>());
}
