//! A writer kept in a `static` and never shut down (its `Writer` handle leaked): a
//! `FlushGuard` dropped at the end of "main" gets every event emitted before into the log.
//!
//! The sink is the real segmented log, slowed down (each append takes 100 ms), so the writer
//! is certainly behind when "main" ends: without the guard's flush, the last events are not in
//! the log yet when it is read back.

use ringwal::{Batch, Emitter, LogOptions, Overflow, Reader, SegmentLog, Sink, SyncPolicy, Writer};
use std::io;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

struct SlowLog(SegmentLog);

impl Sink for SlowLog {
    fn next_seq(&self) -> u64 {
        self.0.next_seq()
    }
    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        std::thread::sleep(Duration::from_millis(100));
        self.0.append(batch)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync()
    }
    fn segments(&self) -> usize {
        self.0.segments()
    }
}

static LOG: OnceLock<Emitter<u64>> = OnceLock::new();

fn log(event: u64) {
    LOG.get()
        .expect("the log is set up")
        .emit(event)
        .expect("Block without a timeout accepts every event");
}

const THREADS: u64 = 4;
const PER_THREAD: u64 = 2_000;

/// The program: sets the global writer up, leaks its handle, holds a guard, emits from a few
/// threads, and returns (dropping the guard).
fn app_main(dir: &Path) {
    let sink = SlowLog(SegmentLog::open(dir, LogOptions::default()).unwrap());
    let (writer, emitter) = Writer::builder(dir)
        .overflow(Overflow::Block(None))
        .sync(SyncPolicy::EveryBatch)
        .capacity(4096)
        .start_with_sink::<u64, _>(sink)
        .unwrap();
    // Never shut down: the process would exit with the writer still running.
    std::mem::forget(writer);
    let _guard = emitter.flush_guard();
    LOG.set(emitter).unwrap();

    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    log(t * PER_THREAD + i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    log(u64::MAX); // the very last event before "main" returns
}

#[test]
fn a_flush_guard_gets_everything_emitted_into_the_log_of_a_writer_never_shut_down() {
    let tmp = tempfile::tempdir().unwrap();
    app_main(tmp.path());
    let mut seen: Vec<u64> = Reader::open(tmp.path())
        .unwrap()
        .iter()
        .map(|e| u64::from_le_bytes(e.unwrap().payload.try_into().unwrap()))
        .collect();
    assert_eq!(
        seen.len() as u64,
        THREADS * PER_THREAD + 1,
        "events in the log"
    );
    assert_eq!(seen.pop(), Some(u64::MAX), "the last event is last");
    seen.sort_unstable();
    assert_eq!(seen, (0..THREADS * PER_THREAD).collect::<Vec<_>>());
}
