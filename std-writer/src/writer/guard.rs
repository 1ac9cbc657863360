//! [`FlushGuard`]: flushes on drop, for a writer kept in a `static` that is never shut down.

use super::{ByteEmitter, Bytes, Emitter, Shared};
use std::sync::Arc;

/// Flushes the writer when dropped: everything emitted (by any emitter) before the drop is
/// written and, unless [`SyncPolicy::Never`](crate::SyncPolicy::Never), fsynced by the time the
/// drop returns. From [`Emitter::flush_guard`] (or [`ByteEmitter::flush_guard`]: a
/// `FlushGuard<Bytes>`).
///
/// A writer kept in a `static` (or otherwise never shut down) is not dropped at exit: what is
/// still in its ring when `main` returns is lost. Hold a guard in `main` (as you would
/// tracing-appender's `WorkerGuard`) and that cannot happen. The drop waits at most the
/// builder's `shutdown_timeout`; it reports nothing and never panics (a flush that fails or
/// times out is ignored: call [`Emitter::flush`] yourself to see errors).
///
/// ```
/// use ringwal::{Emitter, Writer};
/// use std::sync::OnceLock;
///
/// static LOG: OnceLock<Emitter<String>> = OnceLock::new();
///
/// fn log(line: &str) {
///     if let Some(emitter) = LOG.get() {
///         let _ = emitter.emit(line.to_string());
///     }
/// }
///
/// # let dir = tempfile::tempdir().unwrap();
/// # let dir = dir.path();
/// let (writer, emitter) = Writer::builder(dir).start::<String>().unwrap();
/// std::mem::forget(writer); // runs until the process exits, never shut down
/// let _guard = emitter.flush_guard(); // first thing in `main`; dropped last
/// LOG.set(emitter).unwrap();
///
/// log("started");
/// log("done");
/// drop(_guard); // (at the end of `main`)
/// # assert_eq!(ringwal::Reader::open(dir).unwrap().iter().count(), 2);
/// ```
#[must_use = "the guard flushes when dropped: bind it to a variable (`let _guard = ..`) that lives to the end of main"]
pub struct FlushGuard<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for FlushGuard<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushGuard").finish_non_exhaustive()
    }
}

impl<T> Emitter<T> {
    /// A guard that [flushes](Self::flush) when dropped (bounded by the builder's
    /// `shutdown_timeout`): see [`FlushGuard`].
    pub fn flush_guard(&self) -> FlushGuard<T> {
        FlushGuard {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl ByteEmitter {
    /// A guard that [flushes](Self::flush) when dropped (bounded by the builder's
    /// `shutdown_timeout`): see [`FlushGuard`].
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start_bytes().unwrap();
    /// std::mem::forget(writer); // never shut down
    /// {
    ///     let _guard = emitter.flush_guard();
    ///     emitter.emit(b"kept").unwrap();
    /// } // flushed here
    /// assert_eq!(ringwal::Reader::open(dir.path()).unwrap().iter().count(), 1);
    /// ```
    pub fn flush_guard(&self) -> FlushGuard<Bytes> {
        FlushGuard {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for FlushGuard<T> {
    fn drop(&mut self) {
        let timeout = self.shared.exit.timeout();
        // Errors are the caller's to ask for (`flush`); a guard only makes the attempt.
        let _ = self
            .shared
            .flush_until(std::time::Instant::now().checked_add(timeout));
    }
}
