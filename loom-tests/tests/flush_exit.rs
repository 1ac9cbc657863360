//! loom model of a flusher's check (`Signal::flush_outcome`, which `Emitter::flush` and
//! `flush_async` wait on) racing the writer's last publish and its exit: a flush whose records
//! the writer wrote before it exited must not be told `Closed` ("the writer stopped without
//! writing them").
//!
//! Mutation that fails it (M30 in `mutations.py`): `flush_outcome` loading `done` before the
//! state, as it did (a stale `done`, then a fresh `EXITED`). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release --test flush_exit`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use ringwal::signal::{FlushOutcome, Signal};
use ringwal_loom_tests::check;

/// The writer publishes `done` = 1 (everything written), then exits; a flusher waiting for 1
/// looks once, at any point. It may see nothing yet, or `Done`; never `Exited`.
#[test]
fn a_flush_written_before_the_exit_is_never_closed() {
    check(None, || {
        let signal = Arc::new(Signal::new(thread::current()));
        let flusher = {
            let signal = signal.clone();
            thread::spawn(move || signal.flush_outcome(1, 0))
        };
        signal.publish_done(1);
        signal.exited();
        let seen = flusher.join().unwrap();
        assert_ne!(
            seen,
            Some(FlushOutcome::Exited),
            "the flush was written, then told Closed"
        );
    });
}
