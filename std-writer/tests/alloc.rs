//! `emit` allocates nothing: counted through a global allocator, per thread.

use ringwal::{Overflow, Writer};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

fn emits_allocate_nothing(overflow: Overflow) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(overflow)
        .sync(ringwal::SyncPolicy::Never)
        .start::<[u8; 64]>()
        .unwrap();
    // Warm up: the first emits may touch lazily initialised thread state (std's thread
    // handle for unpark).
    for _ in 0..100 {
        let _ = emitter.emit([1; 64]);
    }
    emitter.flush().unwrap();
    let before = allocations();
    let mut accepted = 0u64;
    for round in 0..200u32 {
        for i in 0..1000u32 {
            if emitter.emit([(round ^ i) as u8; 64]).is_ok() {
                accepted += 1;
            }
        }
        if round % 50 == 0 {
            // Let the writer fall asleep, so later emits take the wake path too.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    let after = allocations();
    assert!(accepted > 0);
    assert_eq!(after - before, 0, "emit allocated on the emitting thread");
    // The counter works: an allocation on this thread is seen.
    let v: Vec<u8> = Vec::with_capacity(10);
    assert_eq!(allocations() - after, 1);
    drop(v);
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, report.persisted + report.dropped);
}

#[test]
fn reject_emit_allocates_nothing() {
    emits_allocate_nothing(Overflow::Reject);
}

#[test]
fn drop_oldest_emit_allocates_nothing() {
    emits_allocate_nothing(Overflow::DropOldest);
}

#[test]
fn block_emit_allocates_nothing_while_there_is_space() {
    emits_allocate_nothing(Overflow::Block(None));
}

/// The thread `wake` unparks: the emitting test thread (set before counting starts).
static PARKED: std::sync::OnceLock<std::thread::Thread> = std::sync::OnceLock::new();

/// A waker that unparks `PARKED`, built on a static vtable: cloning and waking it allocate
/// nothing, so what this counts is `emit_async`'s own.
fn unpark_waker() -> std::task::Waker {
    use std::task::{RawWaker, RawWakerVTable};
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn wake(_: *const ()) {
        PARKED.get().expect("set").unpark();
    }
    fn drop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: the vtable's functions ignore the (null) data pointer and are thread-safe.
    unsafe { std::task::Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

/// `emit_async` under `Block` on a small ring, polled by hand: the fast path and the wait (the
/// task registered in a node inside the future, woken by the writer) allocate nothing on the
/// emitting thread.
#[test]
fn block_emit_async_allocates_nothing_even_when_it_waits() {
    use std::future::Future;
    use std::task::{Context, Poll};
    PARKED.get_or_init(std::thread::current);
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .capacity(64)
        .sync(ringwal::SyncPolicy::Never)
        .start::<[u8; 64]>()
        .unwrap();
    let waker = unpark_waker();
    let mut cx = Context::from_waker(&waker);
    let mut emit = |v: u8| -> u64 {
        let mut fut = std::pin::pin!(emitter.emit_async([v; 64]));
        let mut waits = 0;
        loop {
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(r) => {
                    r.unwrap();
                    return waits;
                }
                Poll::Pending => {
                    waits += 1;
                    std::thread::park_timeout(std::time::Duration::from_millis(10));
                }
            }
        }
    };
    for i in 0..1000 {
        emit(i as u8); // warm up
    }
    let before = allocations();
    let waited: u64 = (0..50_000u32).map(|i| emit(i as u8)).sum();
    let after = allocations();
    assert!(
        waited > 0,
        "the ring of 64 never filled: the wait was not exercised"
    );
    assert_eq!(
        after - before,
        0,
        "emit_async allocated on the emitting thread"
    );
    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, 51_000);
    println!("{waited} polls found the ring full");
}
