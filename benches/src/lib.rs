//! Benchmarks of ringwal against std channels and peer crates. `cargo bench -p ringwal-benches`
//! runs the criterion benchmarks in `benches/`.
//!
//! This library holds what the benchmarks share: a common spin-then-yield backoff, so every
//! peer waits on full/empty the same way.

/// Waits a little after a failed non-blocking operation: spins first, then yields.
#[derive(Debug, Default)]
pub struct Backoff {
    step: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spins `2^step` times for the first few calls, then yields the thread.
    pub fn snooze(&mut self) {
        if self.step <= 6 {
            for _ in 0..1u32 << self.step {
                std::hint::spin_loop();
            }
            self.step += 1;
        } else {
            std::thread::yield_now();
        }
    }

    /// Back to spinning after progress.
    pub fn reset(&mut self) {
        self.step = 0;
    }
}
