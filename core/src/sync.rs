//! The one place atomics, cells and spin hints come from.
//!
//! Under `--cfg loom` every primitive is loom's, so the models in `loom-tests/` explore every
//! interleaving and every weak-memory outcome the C++20 model allows for this code. Otherwise the
//! primitives are `core`'s, with the same API surface (`UnsafeCell::with`/`with_mut`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(all(loom, feature = "alloc"))]
pub(crate) use loom::sync::Arc;

#[cfg(all(not(loom), feature = "alloc"))]
pub(crate) use alloc::sync::Arc;

/// Called in every retry loop. Under loom it yields, which is what lets loom bound a spin loop.
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` with loom's closure-based API, so the same code compiles both ways.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline(always)]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
