//! Capped exponential backoff with jitter, between retries after a failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Capped exponential backoff with jitter: each delay is a random half to all of the current
/// step; the step doubles from `min` up to `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            step: min,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let micros = step.as_micros() as u64;
        Duration::from_micros(micros / 2 + jitter(micros / 2 + 1))
    }

    pub(crate) fn reset(&mut self) {
        self.step = self.min;
    }
}

/// A pseudo-random number below `bound` (xorshift, seeded once from std's random hasher
/// keys): for jitter, not for anything that must be unpredictable.
pub(crate) fn jitter(bound: u64) -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        x = h.finish() | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x % bound.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(80));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        for (d, step) in delays.iter().zip([10u64, 20, 40, 80, 80, 80]) {
            let step = Duration::from_millis(step);
            assert!(*d >= step / 2 && *d <= step, "{d:?} for step {step:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(10));
    }
}
