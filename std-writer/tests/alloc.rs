//! `emit` allocates nothing: counted through a global allocator, per thread.

use ringwal::{Overflow, Writer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a thread-local `Cell` with a
// const initialiser, which neither allocates nor recurses into the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

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
