//! The variable-length line scenario (`compare/lines.rs`) as plain loops for instruction
//! counts: one producer emits `n` lines through each ringwal design into a sink that discards
//! them (no syscalls), `Overflow::Block`, so nothing is refused and both threads do the same
//! work in every run.
//!
//! ```text
//! cargo build --release -p ringwal-benches --bin line_profile
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/line_profile 200000
//! callgrind_annotate --inclusive=yes cg.out | grep -E 'line_profile::emit_|Source>::take'
//! ```
//!
//! `emit_bytes` / `emit_vec` are the producer thread's loops (formatting included), and the two
//! `Source::take` entries the writer thread's work per kind of ring (framing and CRC, and for
//! the typed ring the encode and the free of each `Vec`). Divide by `n`.

// Shared with `compare`, which uses all of it.
#[allow(dead_code)]
#[path = "compare/lines.rs"]
mod lines;

use lines::{format_line, LINE_MAX, RING_BYTES, SLOTS};
use ringwal::{Batch, ByteEmitter, Emitter, Overflow, Sink, SyncPolicy, Writer};
use std::hint::black_box;
use std::io;

/// Takes every batch and keeps nothing (counts records, so nothing is optimised away).
struct Discard {
    next: u64,
}

impl Sink for Discard {
    fn next_seq(&self) -> u64 {
        self.next
    }
    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        black_box(batch.bytes());
        self.next = batch.first_seq() + batch.records();
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn builder() -> ringwal::Builder {
    Writer::builder("unused-with-a-sink")
        .overflow(Overflow::Block(None))
        .sync(SyncPolicy::Never)
}

#[inline(never)]
fn emit_bytes(emitter: &ByteEmitter, n: u64) {
    for seq in 0..n {
        emitter
            .emit_with(LINE_MAX, |mut buf| {
                let room = buf.len();
                format_line(&mut buf, seq).expect("a line fits");
                room - buf.len()
            })
            .expect("Block: accepted");
    }
}

#[inline(never)]
fn emit_vec(emitter: &Emitter<Vec<u8>>, n: u64) {
    for seq in 0..n {
        let mut v = Vec::with_capacity(LINE_MAX);
        format_line(&mut v, seq).expect("write to a Vec");
        emitter.emit(v).expect("Block: accepted");
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let t0 = std::time::Instant::now();
    let (writer, emitter) = builder()
        .capacity(RING_BYTES)
        .start_bytes_with_sink(Discard { next: 0 })
        .expect("start");
    emit_bytes(&emitter, n);
    let report = writer.shutdown().expect("shutdown");
    assert_eq!(report.persisted, n);
    let bytes_time = t0.elapsed();
    let t0 = std::time::Instant::now();
    let (writer, emitter) = builder()
        .capacity(SLOTS)
        .start_with_sink::<Vec<u8>, _>(Discard { next: 0 })
        .expect("start");
    emit_vec(&emitter, n);
    let report = writer.shutdown().expect("shutdown");
    assert_eq!(report.persisted, n);
    let vec_time = t0.elapsed();
    println!(
        "{n} lines: byte path {:.0} ns/line, typed Vec<u8> path {:.0} ns/line (wall, both threads)",
        bytes_time.as_nanos() as f64 / n as f64,
        vec_time.as_nanos() as f64 / n as f64
    );
}
