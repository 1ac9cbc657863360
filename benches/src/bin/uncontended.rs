//! Uncontended push+pop, one `#[inline(never)]` loop per queue, for instruction counts.
//!
//! Timings on a shared machine move from run to run; instruction counts do not. Run it under
//! callgrind and read the inclusive count of each loop function:
//!
//! ```text
//! cargo build --release -p ringwal-benches --bin uncontended
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/uncontended 1000000
//! callgrind_annotate --inclusive=yes cg.out | grep 'uncontended::loop_'
//! ```
//!
//! Each loop runs `ops` push+pop pairs on one thread, capacity 4096. The binary also prints nanoseconds per pair from a plain timed run, and, when run
//! under callgrind, nothing else differs between the loops.

use crossbeam_queue::ArrayQueue;
use ringwal_benches::no_rmw_ring;
use ringwal_core::{EvictingRing, Lanes, Ring};
use std::hint::black_box;
use std::time::Instant;

const CAP: usize = 4096;

/// A queue's name and its loop.
type Loop = (&'static str, fn(u64));

#[inline(never)]
fn loop_ringwal(ops: u64) {
    let ring: Box<Ring<u64, CAP>> = Box::default();
    let mut consumer = ring.consumer().expect("first consumer");
    for i in 0..ops {
        ring.try_push(black_box(i)).expect("empty ring");
        black_box(consumer.pop().expect("just pushed"));
    }
}

/// The same ring split into its solo producer and its consumer: no read-modify-write at all.
#[inline(never)]
fn loop_ringwal_solo(ops: u64) {
    let mut ring: Box<Ring<u64, CAP>> = Box::default();
    let (mut tx, mut rx) = ring.split();
    for i in 0..ops {
        tx.try_push(black_box(i)).expect("empty ring");
        black_box(rx.pop().expect("just pushed"));
    }
}

/// `Lanes` (4 lanes of 1024, one used): the solo push into the handle's lane, and the
/// consumer's turn over the lanes.
#[inline(never)]
fn loop_ringwal_lanes(ops: u64) {
    let lanes: Box<Lanes<u64, { CAP / 4 }, 4>> = Box::default();
    let mut tx = lanes.producer().expect("a free lane");
    let mut rx = lanes.consumer().expect("first consumer");
    for i in 0..ops {
        tx.try_push(black_box(i)).expect("empty lane");
        black_box(rx.pop().expect("just pushed"));
    }
}

/// The evicting ring (`force_push` available, not used here): its consumer claims runs of
/// values with one CAS each.
#[inline(never)]
fn loop_ringwal_evicting(ops: u64) {
    let ring: Box<EvictingRing<u64, CAP>> = Box::default();
    let mut consumer = ring.consumer().expect("first consumer");
    for i in 0..ops {
        ring.try_push(black_box(i)).expect("empty ring");
        black_box(consumer.pop().expect("just pushed"));
    }
}

/// The heap ring of run-time capacity: the same algorithm with the index mask read at run time.
#[inline(never)]
fn loop_ringwal_channel(ops: u64) {
    let (tx, mut rx) = ringwal_core::channel::<u64>(black_box(CAP));
    for i in 0..ops {
        tx.try_push(black_box(i)).expect("empty ring");
        black_box(rx.pop().expect("just pushed"));
    }
}

#[inline(never)]
fn loop_ablation_no_rmw(ops: u64) {
    let (mut tx, mut rx) = no_rmw_ring::<u64, CAP>();
    for i in 0..ops {
        tx.try_push(black_box(i)).expect("empty ring");
        black_box(rx.pop().expect("just pushed"));
    }
}

#[inline(never)]
fn loop_array_queue(ops: u64) {
    let q = ArrayQueue::new(CAP);
    for i in 0..ops {
        q.push(black_box(i)).expect("empty queue");
        black_box(q.pop().expect("just pushed"));
    }
}

#[inline(never)]
fn loop_heapless(ops: u64) {
    // Deprecated in heapless 0.9 (not lock-free, heapless#583); fine single-threaded.
    #[expect(deprecated)]
    let q: Box<heapless::mpmc::Queue<u64, CAP>> = Box::new(heapless::mpmc::Queue::new());
    for i in 0..ops {
        q.enqueue(black_box(i)).expect("empty queue");
        black_box(q.dequeue().expect("just pushed"));
    }
}

#[inline(never)]
fn loop_rtrb(ops: u64) {
    let (mut tx, mut rx) = rtrb::RingBuffer::new(CAP);
    for i in 0..ops {
        tx.push(black_box(i)).expect("empty queue");
        black_box(rx.pop().expect("just pushed"));
    }
}

#[inline(never)]
fn loop_sync_channel(ops: u64) {
    let (tx, rx) = std::sync::mpsc::sync_channel(CAP);
    for i in 0..ops {
        tx.try_send(black_box(i)).expect("empty channel");
        black_box(rx.try_recv().expect("just pushed"));
    }
}

fn main() {
    let ops: u64 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 1 << 24,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: uncontended [OPS]   (push+pop pairs per queue, default 2^24)");
            std::process::exit(2);
        }
    };
    let loops: [Loop; 10] = [
        ("ringwal Ring", loop_ringwal),
        ("ringwal Ring::split (solo producer)", loop_ringwal_solo),
        ("ringwal Lanes (one producer handle)", loop_ringwal_lanes),
        ("ringwal EvictingRing", loop_ringwal_evicting),
        (
            "ringwal channel(4096) (run-time capacity)",
            loop_ringwal_channel,
        ),
        (
            "ablation: the earlier ring without its 2 CASes",
            loop_ablation_no_rmw,
        ),
        ("crossbeam-queue ArrayQueue", loop_array_queue),
        ("heapless mpmc::Queue", loop_heapless),
        ("rtrb (SPSC)", loop_rtrb),
        ("std sync_channel", loop_sync_channel),
    ];
    println!("| queue | ns per push+pop |\n|---|---:|");
    for (name, f) in loops {
        let t0 = Instant::now();
        f(ops);
        println!(
            "| {name} | {:.2} |",
            t0.elapsed().as_nanos() as f64 / ops as f64
        );
    }
}
