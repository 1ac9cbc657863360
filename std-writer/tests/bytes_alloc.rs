//! The byte path allocates nothing per event, on either thread: counted through a global
//! allocator, per thread. The emitting thread's count is read directly: exactly zero. The
//! writer thread's is read through the sink, whose `append` and `sync` run on the writer
//! thread and record that thread's count: nothing per record and nothing per batch (its batch
//! buffer may still grow to a new largest batch after the warm-up: at most two doublings are
//! allowed over the thousands of batches measured).

use ringwal::{format, Batch, ByteEmitError, Overflow, Sink, SyncPolicy, Writer};
use std::io::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

/// A sink that checks every frame (no allocation: `decode_frame` borrows) and publishes the
/// writer thread's allocation count and the records it took.
struct Probe {
    next: u64,
    writer_allocations: Arc<AtomicU64>,
    records: Arc<AtomicU64>,
    appends: Arc<AtomicU64>,
}

impl Probe {
    fn note(&self) {
        // Relaxed: read by the test after a flush, which orders it (the flush waits for the
        // writer's progress, published after this call returned).
        self.writer_allocations
            .store(allocations(), Ordering::Relaxed);
    }
}

impl Sink for Probe {
    fn next_seq(&self) -> u64 {
        self.next
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        let mut rest = batch.bytes();
        let mut seq = batch.first_seq();
        while !rest.is_empty() {
            let (frame, used) = format::decode_frame(rest).expect("a valid frame");
            assert_eq!(frame.seq, seq);
            assert!((40..=200).contains(&frame.payload.len()) || frame.marker);
            seq += u64::from(!frame.marker);
            rest = &rest[used..];
        }
        self.next = batch.first_seq() + batch.records();
        self.records.store(self.next, Ordering::Relaxed);
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.note();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.note();
        Ok(())
    }
}

/// A line of 40..=200 bytes, formatted in place.
fn line(buf: &mut [u8], i: u64) -> usize {
    let room = buf.len();
    let mut w = &mut buf[..];
    let pad = 10 + (i.wrapping_mul(0x9E37_79B9) % 159) as usize;
    write!(w, "{i:>12} user={} op=write {:.<pad$}|", i % 977, "").unwrap();
    room - w.len()
}

fn emits_allocate_nothing(overflow: Overflow) {
    let writer_allocations = Arc::new(AtomicU64::new(0));
    let records = Arc::new(AtomicU64::new(0));
    let appends = Arc::new(AtomicU64::new(0));
    let probe = Probe {
        next: 0,
        writer_allocations: Arc::clone(&writer_allocations),
        records: Arc::clone(&records),
        appends: Arc::clone(&appends),
    };
    let (writer, emitter) = Writer::builder("unused-with-a-sink")
        .overflow(overflow)
        .capacity(1 << 16)
        .sync(SyncPolicy::EveryBatch)
        .start_bytes_with_sink(probe)
        .unwrap();
    let record = [b'r'; 64];
    // Returns how many records the ring accepted.
    let run = |rounds: u32| -> u64 {
        let mut accepted = 0;
        for round in 0..rounds {
            for i in 0..1000u64 {
                let n = u64::from(round) * 1000 + i;
                loop {
                    let r = if n.is_multiple_of(2) {
                        emitter.emit(&record[..40 + (n % 25) as usize])
                    } else {
                        emitter.emit_with(200, |buf| line(buf, n))
                    };
                    match r {
                        Ok(()) => break,
                        // The refusal path is measured too (it counts the refusal).
                        Err(ByteEmitError::Full) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
                accepted += 1;
            }
            if round % 50 == 0 {
                // Let the writer fall asleep, so later emits take the wake path too.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        emitter.flush().unwrap();
        accepted
    };
    // Warm up: the writer's buffers grow to their high-water mark, and the first emits touch
    // lazily initialised thread state (std's thread handle for unpark).
    let warm_up = run(100);
    let before = allocations();
    let writer_before = writer_allocations.load(Ordering::Relaxed);
    let appends_before = appends.load(Ordering::Relaxed);
    let measured = run(200);
    let after = allocations();
    let writer_after = writer_allocations.load(Ordering::Relaxed);
    let batches = appends.load(Ordering::Relaxed) - appends_before;
    let accepted = warm_up + measured;
    assert_eq!(measured, 200_000);
    assert!(
        batches > 100,
        "{batches} batches: a per-batch allocation would not show"
    );
    assert_eq!(after - before, 0, "emit allocated on the emitting thread");
    // The counter works: an allocation on this thread is seen.
    let v: Vec<u8> = Vec::with_capacity(10);
    assert_eq!(allocations() - after, 1);
    drop(v);
    eprintln!(
        "{overflow:?}: {measured} records in {batches} batches; writer thread: {} allocations",
        writer_after - writer_before
    );
    assert!(
        writer_after - writer_before <= 2,
        "the writer thread allocated {} times while framing {measured} records in {batches} \
         batches",
        writer_after - writer_before
    );
    assert!(
        writer_before > 0,
        "the probe saw the writer's own allocations"
    );
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, accepted);
    assert_eq!(report.persisted, accepted);
    assert_eq!(records.load(Ordering::Relaxed), accepted);
}

#[test]
fn reject_emit_allocates_nothing_on_either_thread() {
    emits_allocate_nothing(Overflow::Reject);
}

#[test]
fn block_emit_allocates_nothing_on_either_thread() {
    emits_allocate_nothing(Overflow::Block(None));
}
