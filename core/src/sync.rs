//! The one place atomics, cells and spin hints come from.
//!
//! Under `--cfg loom` every primitive is loom's, so the models in `loom-tests/` explore the
//! interleavings and the weak-memory outcomes loom models. Otherwise the primitives are
//! `core`'s, with the same API surface (`UnsafeCell::with`/`with_mut`).
//!
//! `AtomicBool` is loom's own, unwrapped: core never plain-loads it (only CAS and store), so the
//! DPOR gap worked around below for `AtomicUsize` does not arise for it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, Ordering};

#[cfg(loom)]
pub(crate) use loom_workaround::AtomicUsize;

#[cfg(all(not(loom), not(feature = "portable-atomic")))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Feature `portable-atomic`: the same API, from a crate that also serves chips without
/// compare-and-swap (`Ordering` is `core`'s, re-exported).
#[cfg(all(not(loom), feature = "portable-atomic"))]
pub(crate) use portable_atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(all(loom, feature = "alloc"))]
pub(crate) use loom::sync::Arc;

#[cfg(all(not(loom), feature = "alloc", not(feature = "portable-atomic")))]
pub(crate) use alloc::sync::Arc;

/// `alloc::sync::Arc` exists only where the target has pointer-sized CAS.
#[cfg(all(not(loom), feature = "alloc", feature = "portable-atomic"))]
pub(crate) use portable_atomic_util::Arc;

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

/// loom's `AtomicUsize` with a workaround for a DPOR gap in loom 0.7.3 (tokio-rs/loom#392).
///
/// loom remembers only the *last* access to each atomic when it looks for races. In
/// `A: load(x) … B: load(x); B: store(x)`, B's store is compared with B's own load (ordered
/// before it, so "no race") and A's load is forgotten: loom never tries B's store before A's
/// load. Every CAS loop has that shape, and a model of the ring explored one execution where it
/// needed hundreds (`loom-tests` asserts each model explores more than one; that is how this
/// was found).
///
/// The workaround: every load also stores to a private companion atomic that nothing reads.
/// All accesses to the companion are writes, for which last-access tracking is sound, so any
/// two accesses to the real atomic from different threads conflict and DPOR explores both
/// orders. The companion carries no value anybody reads and creates no happens-before edge, so
/// it adds executions, never behaviours.
#[cfg(loom)]
pub mod loom_workaround {
    use loom::sync::atomic::{AtomicUsize as Inner, Ordering};

    /// loom's `AtomicUsize`, whose loads DPOR cannot overlook (see above).
    #[derive(Debug)]
    pub struct AtomicUsize {
        inner: Inner,
        companion: Inner,
    }

    impl AtomicUsize {
        /// A new atomic.
        pub fn new(v: usize) -> Self {
            AtomicUsize {
                inner: Inner::new(v),
                companion: Inner::new(0),
            }
        }

        /// Load (after the companion store).
        pub fn load(&self, order: Ordering) -> usize {
            // Before the load, not after: DPOR must be able to put another thread's write
            // between this point and the load itself.
            self.companion.store(0, Ordering::Relaxed);
            self.inner.load(order)
        }

        /// Store.
        pub fn store(&self, v: usize, order: Ordering) {
            self.inner.store(v, order)
        }

        /// `fetch_add`. Read-modify-writes need no companion: they are writes.
        pub fn fetch_add(&self, v: usize, order: Ordering) -> usize {
            self.inner.fetch_add(v, order)
        }

        /// `fetch_sub`.
        pub fn fetch_sub(&self, v: usize, order: Ordering) -> usize {
            self.inner.fetch_sub(v, order)
        }

        /// `fetch_or`.
        pub fn fetch_or(&self, v: usize, order: Ordering) -> usize {
            self.inner.fetch_or(v, order)
        }

        /// `fetch_and`.
        pub fn fetch_and(&self, v: usize, order: Ordering) -> usize {
            self.inner.fetch_and(v, order)
        }

        /// `compare_exchange`.
        pub fn compare_exchange(
            &self,
            current: usize,
            new: usize,
            success: Ordering,
            failure: Ordering,
        ) -> Result<usize, usize> {
            self.inner.compare_exchange(current, new, success, failure)
        }

        /// `compare_exchange_weak`.
        pub fn compare_exchange_weak(
            &self,
            current: usize,
            new: usize,
            success: Ordering,
            failure: Ordering,
        ) -> Result<usize, usize> {
            self.inner
                .compare_exchange_weak(current, new, success, failure)
        }
    }
}
