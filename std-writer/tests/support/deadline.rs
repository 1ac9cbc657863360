//! Running an operation that must end (a fixed hang, say) on another thread, so that a
//! regression fails the test instead of wedging the run: shared by the tests that include this
//! file with `#[path]`.

use std::sync::mpsc;
use std::time::Duration;

/// `f`'s result, or a panic naming `what` if it has not returned within `limit` (the thread
/// is left behind: a hang is the failure being tested).
pub fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: did not end within {limit:?} (hung)"))
}
