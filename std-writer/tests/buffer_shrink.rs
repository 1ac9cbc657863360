//! The writer gives back the memory one huge record made it take, once the records are small
//! again (issue 11 item 10): live heap bytes counted through a global allocator. One test in
//! this binary, so nothing else moves the count.

use ringwal::{SyncPolicy, Writer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

/// Bytes allocated and not yet freed, by every thread.
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; the counter is an atomic, which neither allocates
// nor recurses into the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1 << 20;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn buffers_shrink_after_a_huge_record(policy: SyncPolicy) {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .sync(policy)
        .start::<Vec<u8>>()
        .unwrap();
    for i in 0..100u8 {
        emitter.emit(vec![i; 100]).unwrap();
    }
    emitter.flush().unwrap();
    let before = live();

    emitter.emit(vec![0xAB; 100 * MIB]).unwrap();
    emitter.flush().unwrap();
    // Small records again: the batches after the huge one are small.
    for round in 0..3u8 {
        for i in 0..100u8 {
            emitter.emit(vec![round ^ i; 100]).unwrap();
        }
        emitter.flush().unwrap();
    }
    let after = live();
    assert!(
        after < before + 8 * MIB,
        "{policy:?}: {} MiB more live after a 100 MiB record and small ones ({before} bytes \
         before, {after} after)",
        (after.saturating_sub(before)) / MIB
    );

    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, 100 + 1 + 300);
}

#[test]
fn the_writer_shrinks_its_buffers_after_a_huge_record() {
    // In turn, not in parallel tests: the count is global.
    buffers_shrink_after_a_huge_record(SyncPolicy::EveryBatch);
    buffers_shrink_after_a_huge_record(SyncPolicy::Never);
}
