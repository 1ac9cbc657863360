//! Where a byte ring's bytes live, and how the algorithm reaches a header word among them.
//!
//! The ring is an array of 8-byte *granules*. A record's header word is the first `usize` of
//! its first granule, accessed atomically; its payload is the granules after it, accessed
//! through plain `&mut [u8]` / `&[u8]`. The same memory is a header in one lap and payload in
//! another, so the algorithm's job (in `raw.rs`) is to order every non-atomic access to a
//! granule with every atomic access to it by happens-before, as `AtomicUsize::from_ptr`
//! requires.
//!
//! Under `--cfg loom` the layout is modelled, not reproduced: loom cannot give a plain byte
//! buffer atomic words, so each granule gets a loom atomic (its header word) in a side table,
//! and a loom `UnsafeCell<()>` (its *shadow*) that stands for its memory in loom's race
//! detector. Payload bytes stay in an untracked buffer (the values the tests check byte for
//! byte); every access the real layout makes to a granule is reported to its shadow:
//! - non-atomic writes (a grant's payload, the consumer's zeroing) and a header *store*
//!   (which in the real layout overwrites memory that was payload or zeroes before) touch it
//!   mutably: they must happen-after every earlier access to the granule;
//! - non-atomic reads (a record's payload) and a header *load that found a header* touch it
//!   immutably. A load that finds nothing (0: not yet published) is the one access allowed to
//!   race with the publishing store, and it does not touch the shadow.
//!
//! So loom reports a race exactly where the real layout would mix a non-atomic access with
//! any other access to the same granule without happens-before. Off loom, the touches are
//! empty functions.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::sync::AtomicUsize;

/// Bytes per granule: the unit of positions, the alignment of every header and payload.
pub(crate) const GRANULE: usize = 8;

/// `log2(GRANULE)`.
pub(crate) const GRANULE_SHIFT: u32 = 3;

// A header word fits in, and is aligned by, one granule on every target (usize is 4 or 8
// bytes; `align_of::<AtomicUsize>() == size_of::<usize>()`).
const _: () = assert!(core::mem::size_of::<usize>() <= GRANULE);
const _: () = assert!(core::mem::align_of::<AtomicUsize>() <= GRANULE);
const _: () = assert!(1 << GRANULE_SHIFT == GRANULE);

/// The loom model of the in-band header words and of the memory of each granule.
#[cfg(loom)]
pub(crate) struct LoomSide {
    headers: std::boxed::Box<[AtomicUsize]>,
    shadows: std::boxed::Box<[crate::sync::UnsafeCell<()>]>,
}

#[cfg(loom)]
impl LoomSide {
    fn new(granules: usize) -> Self {
        LoomSide {
            headers: (0..granules).map(|_| AtomicUsize::new(0)).collect(),
            shadows: (0..granules)
                .map(|_| crate::sync::UnsafeCell::new(()))
                .collect(),
        }
    }
}

#[cfg(loom)]
impl Drop for LoomSide {
    fn drop(&mut self) {
        // Freeing the ring writes every granule, so it must happen-after every access.
        for shadow in self.shadows.iter() {
            shadow.with_mut(|_| ());
        }
    }
}

/// `BYTES` bytes inline, aligned to a granule, zeroed (a fresh ring is all zeros).
#[repr(C, align(8))]
pub(crate) struct InlineBuf<const BYTES: usize> {
    bytes: UnsafeCell<[u8; BYTES]>,
    #[cfg(loom)]
    side: LoomSide,
}

impl<const BYTES: usize> InlineBuf<BYTES> {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        InlineBuf {
            bytes: UnsafeCell::new([0; BYTES]),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        InlineBuf {
            bytes: UnsafeCell::new([0; BYTES]),
            side: LoomSide::new(BYTES / GRANULE),
        }
    }

    #[inline(always)]
    pub(crate) fn view(&self) -> Bytes<'_> {
        Bytes {
            // The pointer comes from `UnsafeCell::get` on the whole array, so it may read and
            // write all `BYTES` bytes through a shared reference.
            base: NonNull::new(self.bytes.get().cast::<u8>()).expect("a reference is not null"),
            #[cfg(loom)]
            side: &self.side,
            _borrow: PhantomData,
        }
    }
}

/// One granule of a heap ring.
#[cfg(feature = "alloc")]
#[repr(C, align(8))]
pub(crate) struct Granule(UnsafeCell<[u8; GRANULE]>);

/// A heap buffer of granules, zeroed.
#[cfg(feature = "alloc")]
pub(crate) struct HeapBuf {
    granules: alloc::boxed::Box<[Granule]>,
    #[cfg(loom)]
    side: LoomSide,
}

#[cfg(feature = "alloc")]
impl HeapBuf {
    /// `None` if the allocator cannot provide `granules` granules.
    pub(crate) fn try_new(granules: usize) -> Option<Self> {
        let mut v = alloc::vec::Vec::new();
        v.try_reserve_exact(granules).ok()?;
        v.extend((0..granules).map(|_| Granule(UnsafeCell::new([0; GRANULE]))));
        Some(HeapBuf {
            granules: v.into_boxed_slice(),
            #[cfg(loom)]
            side: LoomSide::new(granules),
        })
    }

    #[inline(always)]
    pub(crate) fn view(&self) -> Bytes<'_> {
        Bytes {
            // `as_ptr` of the whole slice: the pointer may reach every granule, and since
            // each is an `UnsafeCell`, write through it.
            base: NonNull::new(self.granules.as_ptr().cast_mut().cast::<u8>())
                .expect("a slice pointer is not null"),
            #[cfg(loom)]
            side: &self.side,
            _borrow: PhantomData,
        }
    }
}

/// A borrowed view of a ring's bytes. Indices are granule indices (`0..granules`); the caller
/// (`raw.rs`) has reduced positions modulo the capacity and checks every bound.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a> {
    base: NonNull<u8>,
    #[cfg(loom)]
    side: &'a LoomSide,
    _borrow: PhantomData<&'a UnsafeCell<u8>>,
}

impl<'a> Bytes<'a> {
    /// The header word of granule `index`.
    ///
    /// # Safety
    /// `index` is below the buffer's granule count.
    #[inline(always)]
    pub(crate) unsafe fn header(self, index: usize) -> &'a AtomicUsize {
        #[cfg(not(loom))]
        {
            // The word is inside the buffer, which lives for 'a, and aligned (granules are
            // 8-aligned, see the asserts above). Every non-atomic access to this memory is
            // ordered with every atomic one by happens-before: that is the algorithm's
            // argument (`raw.rs` and the module docs), which `from_ptr` requires.
            // SAFETY: `index < granules` (the caller's contract), so in bounds and aligned as
            // said above; accesses ordered as `from_ptr` requires.
            unsafe { AtomicUsize::from_ptr(self.payload(index).cast::<usize>()) }
        }
        #[cfg(loom)]
        {
            // SAFETY: `index < granules`, the side table's length.
            unsafe { self.side.headers.get_unchecked(index) }
        }
    }

    /// The first byte of granule `index` (`index == granules` gives the end of the buffer).
    ///
    /// # Safety
    /// `index` is at most the buffer's granule count.
    #[inline(always)]
    pub(crate) unsafe fn payload(self, index: usize) -> *mut u8 {
        // SAFETY: `index <= granules` (the caller's contract): in bounds or one past the end.
        unsafe { self.base.as_ptr().add(index << GRANULE_SHIFT) }
    }

    /// Zeroes `count` granules from `index`, header words included.
    ///
    /// # Safety
    /// `index + count` is at most the granule count, and the caller owns those granules: no
    /// other thread accesses them until the caller publishes them (the consumer's `Release`
    /// store of `head`).
    #[inline(always)]
    pub(crate) unsafe fn zero(self, index: usize, count: usize) {
        #[cfg(loom)]
        for i in index..index + count {
            self.touch_write(i, 1);
            // SAFETY: `i < granules` (the caller's contract).
            // Relaxed: models the memset; published by the caller's Release store of `head`.
            unsafe { self.header(i) }.store(0, crate::sync::Ordering::Relaxed);
        }
        // SAFETY: `index + count <= granules` (the caller's contract).
        let p = unsafe { self.payload(index) };
        // A record or two of a few bytes: stores of a constant size, inlined (a loop would be
        // turned back into a call to memset).
        // SAFETY (every arm): `count` granules from `p` are in bounds (the caller's contract),
        // 8-aligned, and the caller's alone.
        unsafe {
            match count {
                0 => {}
                1 => p.cast::<[u64; 1]>().write([0; 1]),
                2 => p.cast::<[u64; 2]>().write([0; 2]),
                3 => p.cast::<[u64; 3]>().write([0; 3]),
                4 => p.cast::<[u64; 4]>().write([0; 4]),
                _ => core::ptr::write_bytes(p, 0, count << GRANULE_SHIFT),
            }
        }
    }

    /// Reports a non-atomic write (or a header store) to granules `index..index + count`.
    #[inline(always)]
    pub(crate) fn touch_write(self, index: usize, count: usize) {
        #[cfg(loom)]
        for shadow in &self.side.shadows[index..index + count] {
            shadow.with_mut(|_| ());
        }
        let _ = (index, count);
    }

    /// Reports a non-atomic read (or a header load that found a header) of granules
    /// `index..index + count`.
    #[inline(always)]
    pub(crate) fn touch_read(self, index: usize, count: usize) {
        #[cfg(loom)]
        for shadow in &self.side.shadows[index..index + count] {
            shadow.with(|_| ());
        }
        let _ = (index, count);
    }
}
