//! Allocations per emit of the four line designs of `compare`'s variable-length scenario
//! (`compare/lines.rs`), counted on the producer thread by a global allocator. A binary of its
//! own so that `compare`'s timings run on the plain system allocator.
//!
//! `cargo run --release -p ringwal-benches --bin line_allocs`

// Shared with `compare`, which uses all of it.
#[allow(dead_code)]
#[path = "compare/lines.rs"]
mod lines;

use lines::{
    format_line, LineDesign, RingwalBytes, RingwalVec, StdStringChannel, TracingAppenderLines,
    LINE_MAX, LINE_MIN,
};

#[path = "../../../std-writer/tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

/// Emits `n` lines after a warm-up (refused ones retried); returns allocations (and
/// reallocations) per accepted emit on this thread.
fn per_emit<D: LineDesign>(n: u64) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut design, mut h) = D::start(dir.path());
    let mut seq = 0;
    let mut emit = |count: u64, seq: &mut u64| {
        for _ in 0..count {
            while !D::try_emit(&mut h, *seq) {
                std::thread::yield_now();
            }
            *seq += 1;
        }
    };
    emit(10_000, &mut seq);
    let before = allocations();
    emit(n, &mut seq);
    let after = allocations();
    let drained = design.drain(h);
    design.close();
    assert_eq!(
        drained.persisted + drained.dropped,
        n + 10_000,
        "{}",
        D::NAME
    );
    (after - before) as f64 / n as f64
}

fn main() {
    // The lines are what the scenario says: 40..=200 bytes, newline included, all lengths.
    let mut lengths = std::collections::BTreeSet::new();
    for seq in 0..1_000_000u64 {
        let mut v = Vec::new();
        format_line(&mut v, seq).unwrap();
        assert!((LINE_MIN..=LINE_MAX).contains(&v.len()) && v.ends_with(b"\n"));
        lengths.insert(v.len());
    }
    assert_eq!(
        lengths.len(),
        LINE_MAX - LINE_MIN + 1,
        "every length occurs"
    );
    let n = 200_000;
    println!("| design | allocations per emit (producer thread, {n} emits) |");
    println!("|---|---:|");
    println!(
        "| {} | {:.2} |",
        RingwalBytes::NAME,
        per_emit::<RingwalBytes>(n)
    );
    println!(
        "| {} | {:.2} |",
        RingwalVec::NAME,
        per_emit::<RingwalVec>(n)
    );
    println!(
        "| {} | {:.2} |",
        StdStringChannel::NAME,
        per_emit::<StdStringChannel>(n)
    );
    println!(
        "| {} | {:.2} |",
        TracingAppenderLines::NAME,
        per_emit::<TracingAppenderLines>(n)
    );
}
