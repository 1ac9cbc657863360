//! The one place the writer's synchronisation primitives come from: std's normally, loom's
//! under `--cfg loom`, so `loom-tests/` can explore every interleaving of the handshakes in
//! [`signal`](crate::signal).

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::Thread;
/// With the DPOR-gap workaround ring-core's models need too (a load followed by an RMW in
/// one thread, racing a load in another, is otherwise explored in one order only): without
/// it the flush and two-emitter models explored 456 and 174,758 executions, with it 3,374
/// and 215,645.
#[cfg(loom)]
pub(crate) use ringwal_core::__loom::AtomicUsize;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread::Thread;

/// `std::cell::UnsafeCell` with loom's closure-based API (`with`, `with_mut`), so the same code
/// compiles both ways and loom checks every access to the waiting tasks' links
/// ([`signal`](crate::signal)'s task list) for races.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline(always)]
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

use std::time::Duration;

/// Parks the calling thread for at most `timeout` (`None`: until unparked). loom has no
/// timeouts: under loom this parks until unparked, which is the stronger check (a lost wake-up
/// is a deadlock loom reports).
pub(crate) fn park(timeout: Option<Duration>) {
    #[cfg(loom)]
    {
        let _ = timeout;
        loom::thread::park();
    }
    #[cfg(not(loom))]
    match timeout {
        Some(t) => std::thread::park_timeout(t),
        None => std::thread::park(),
    }
}

/// Called in every wait-for-another-thread loop. Under loom it yields, so loom can bound it.
#[cfg_attr(loom, allow(dead_code))] // only the writer, which is not built under loom, waits
pub(crate) fn relax(round: u32) {
    #[cfg(loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    if round < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Locks, ignoring poisoning: every critical section here guards `()` or plain data that a
/// panic cannot leave half-updated.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `Condvar::wait_timeout` (plain `wait` for `None`), ignoring poisoning.
pub(crate) fn wait<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Option<Duration>,
) -> MutexGuard<'a, T> {
    match timeout {
        Some(t) => match cv.wait_timeout(guard, t) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        },
        None => cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
    }
}
