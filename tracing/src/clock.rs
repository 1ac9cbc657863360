//! Timestamps.
//!
//! Reading the system clock (`clock_gettime(CLOCK_REALTIME)` through the vDSO) costs about
//! 50 ns on a KVM guest, a third of an event's whole capture; reading the CPU's time-stamp
//! counter costs about 13. So where the kernel itself keeps time with the TSC (x86-64 Linux
//! whose clocksource is `tsc`: the kernel checked that it is invariant and in step across CPUs,
//! and switches away from it if it stops being so), records carry raw TSC *ticks*, and the log
//! carries *clock records* that tie ticks to Unix time: an anchor (ticks, Unix ns, read
//! back to back) and a scale (nanoseconds per 2³² ticks). A reader converts each timestamp with
//! the last clock record before it. Clock records are written when the layer starts, at the
//! start of every segment (the preamble, so any suffix of the log converts), and again by
//! whichever thread first records after the current anchor is due for renewal — every 1 ms at
//! first, the interval doubling up to about a second — each time re-measuring the scale over
//! the interval just ended (which follows NTP's slewing; a jump of the system clock or of the
//! counter moves the anchor without spoiling the scale). Elsewhere ticks are Unix nanoseconds
//! and the clock record says so (scale 1 ns per tick).

/// The scale of a clock whose ticks are nanoseconds: 2³² (ns per 2³² ticks).
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
pub(crate) const NS_SCALE: u64 = 1 << 32;

/// Unix nanoseconds of `ticks` by a clock record (`anchor_ticks` read at `anchor_ns`, `scale`
/// ns per 2³² ticks). Ticks before the anchor are fine (a thread may read the counter just
/// before another writes a new anchor). Saturates, never panics, whatever the input.
pub(crate) fn to_unix_ns(ticks: u64, anchor_ticks: u64, anchor_ns: u64, scale: u64) -> u64 {
    let dt = i128::from(ticks) - i128::from(anchor_ticks);
    let offset = match dt.checked_mul(i128::from(scale)) {
        // Rounded to the nearest nanosecond.
        Some(p) => p.saturating_add(1 << 31) >> 32,
        None if dt < 0 => i128::MIN / 2,
        None => i128::MAX / 2,
    };
    (i128::from(anchor_ns) + offset).clamp(0, i128::from(u64::MAX)) as u64
}

/// The scale to use after a new anchor: the one measured over the interval just ended
/// (`measured`, `None` if the counter or the clock did not move forward) when it is within
/// 1/1000 of `current`, else `current` (a step of the system clock, or a counter that jumped:
/// the new anchor alone takes it in). A measurement refused three times in a row is taken all
/// the same (the current scale was the wrong one). Returns the scale and the refusals so far.
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
pub(crate) fn next_scale(current: u64, measured: Option<u64>, refused: u32) -> (u64, u32) {
    match measured {
        Some(m) if m.abs_diff(current) <= current / 1000 || refused >= 3 => (m, 0),
        Some(_) => (current, refused + 1),
        None => (current, refused),
    }
}

/// The scale measured between two anchors, if both moved forward.
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
pub(crate) fn measure(from: (u64, u64), to: (u64, u64)) -> Option<u64> {
    let ticks = to.0.checked_sub(from.0).filter(|&t| t > 0)?;
    let ns = to.1.checked_sub(from.1).filter(|&n| n > 0)?;
    let scale = ((u128::from(ns) << 32) + u128::from(ticks / 2)) / u128::from(ticks);
    u64::try_from(scale).ok().filter(|&s| s > 0)
}

#[cfg(feature = "subscriber")]
pub(crate) use capture::{unix_ns, Anchor, Clock};

#[cfg(feature = "subscriber")]
mod capture {
    use super::{measure, next_scale, NS_SCALE};
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    /// Unix nanoseconds now (0 before 1970, saturating after 2554).
    pub(crate) fn unix_ns() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            d.as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos()))
        })
    }

    /// Whether this machine's kernel keeps time with the TSC (so it found it invariant and
    /// in step across CPUs).
    fn kernel_uses_tsc() -> bool {
        #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
        {
            std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
        {
            false
        }
    }

    #[inline]
    fn rdtsc() -> u64 {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        {
            // SAFETY: `rdtsc` exists on every x86-64 CPU and touches no memory. It is not
            // ordered with the loads and stores around it: a timestamp may be read a few
            // nanoseconds early or late, as any clock read may.
            unsafe { core::arch::x86_64::_rdtsc() }
        }
        #[cfg(not(all(target_arch = "x86_64", not(miri))))]
        {
            unix_ns()
        }
    }

    /// A clock anchor to write into the log: ticks read at Unix nanoseconds, and the scale.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Anchor {
        pub(crate) ticks: u64,
        pub(crate) unix_ns: u64,
        pub(crate) scale: u64,
    }

    /// The process's timestamp source, shared by the layer's clones and the writer's
    /// preamble.
    ///
    /// Renewal is exclusive without a lock: the thread whose compare-exchange takes `due`
    /// from its value to `u64::MAX` owns the anchor fields until it stores the next due
    /// time (Release; the next owner's successful compare-exchange reads it with Acquire, so
    /// it sees this owner's anchor). Every other thread meanwhile sees `u64::MAX` and goes
    /// on. The fields are atomics only so that the preamble may read the scale at any time
    /// (Relaxed: any recent scale is a fine estimate). Nothing written to the log depends on
    /// that exclusion for its correctness: a renewer writes the anchor it read itself, and
    /// the shared fields only feed the next scale measurement, which `next_scale` refuses
    /// when it is an outlier.
    #[derive(Debug)]
    pub(crate) struct Clock {
        tsc: bool,
        /// Ticks at or after which the anchor is renewed; `u64::MAX` while one thread renews
        /// it, and always for the system clock.
        due: AtomicU64,
        anchor_ticks: AtomicU64,
        anchor_ns: AtomicU64,
        scale: AtomicU64,
        interval: AtomicU64,
        refused: AtomicU32,
    }

    /// The first renewal interval, and the longest.
    const FIRST_NS: u64 = 1_000_000;
    const LONGEST_NS: u64 = 1_000_000_000;

    fn ticks_for(ns: u64, scale: u64) -> u64 {
        u64::try_from((u128::from(ns) << 32) / u128::from(scale.max(1))).unwrap_or(u64::MAX)
    }

    impl Clock {
        /// The TSC if `tsc` is asked for and the kernel keeps time with it (measuring its
        /// rate against the system clock for about a millisecond), else the system clock.
        pub(crate) fn new(tsc: bool) -> Self {
            let tsc = tsc && kernel_uses_tsc();
            let clock = Clock {
                tsc,
                due: AtomicU64::new(u64::MAX),
                anchor_ticks: AtomicU64::new(0),
                anchor_ns: AtomicU64::new(0),
                scale: AtomicU64::new(NS_SCALE),
                interval: AtomicU64::new(0),
                refused: AtomicU32::new(0),
            };
            if tsc {
                let first = clock.pair();
                let started = Instant::now();
                while started.elapsed().as_nanos() < u128::from(FIRST_NS) {
                    std::hint::spin_loop();
                }
                let second = clock.pair();
                // A counter that did not move cannot be a clock: the system clock then.
                let Some(scale) = measure(first, second) else {
                    return Clock::new(false);
                };
                let interval = ticks_for(FIRST_NS, scale);
                clock.scale.store(scale, Ordering::Relaxed);
                clock.anchor_ticks.store(second.0, Ordering::Relaxed);
                clock.anchor_ns.store(second.1, Ordering::Relaxed);
                clock.interval.store(interval, Ordering::Relaxed);
                clock
                    .due
                    .store(second.0.saturating_add(interval), Ordering::Relaxed);
            }
            clock
        }

        /// Whether timestamps are TSC ticks (otherwise Unix nanoseconds).
        pub(crate) fn is_tsc(&self) -> bool {
            self.tsc
        }

        /// A timestamp, in this clock's ticks.
        #[inline]
        pub(crate) fn ticks(&self) -> u64 {
            if self.tsc {
                rdtsc()
            } else {
                unix_ns()
            }
        }

        /// Whether `ticks` is past the time to renew the anchor (then call
        /// [`renew`](Self::renew)). One Relaxed load of a line written about once a second.
        #[inline]
        pub(crate) fn is_due(&self, ticks: u64) -> bool {
            ticks >= self.due.load(Ordering::Relaxed)
        }

        /// Renews the anchor if this thread wins the renewal (see the type's docs): the new
        /// anchor to write into the log, or `None` if another thread is renewing it or did.
        #[cold]
        pub(crate) fn renew(&self) -> Option<Anchor> {
            let due = self.due.load(Ordering::Relaxed);
            if due == u64::MAX || self.ticks() < due {
                return None;
            }
            // Acquire pairs with the Release store of `due` below by the previous owner.
            self.due
                .compare_exchange(due, u64::MAX, Ordering::Acquire, Ordering::Relaxed)
                .ok()?;
            let old = (
                self.anchor_ticks.load(Ordering::Relaxed),
                self.anchor_ns.load(Ordering::Relaxed),
            );
            let new = self.pair();
            let (scale, refused) = next_scale(
                self.scale.load(Ordering::Relaxed),
                measure(old, new),
                self.refused.load(Ordering::Relaxed),
            );
            let interval = self
                .interval
                .load(Ordering::Relaxed)
                .saturating_mul(2)
                .min(ticks_for(LONGEST_NS, scale));
            self.scale.store(scale, Ordering::Relaxed);
            self.refused.store(refused, Ordering::Relaxed);
            self.anchor_ticks.store(new.0, Ordering::Relaxed);
            self.anchor_ns.store(new.1, Ordering::Relaxed);
            self.interval.store(interval, Ordering::Relaxed);
            // Release: the next owner (Acquire above) sees the anchor just stored.
            self.due.store(
                new.0.saturating_add(interval).min(u64::MAX - 1),
                Ordering::Release,
            );
            Some(Anchor {
                ticks: new.0,
                unix_ns: new.1,
                scale,
            })
        }

        /// An anchor read now, with the current scale (the layer's first, a preamble's).
        pub(crate) fn anchor(&self) -> Anchor {
            let (ticks, unix_ns) = self.pair();
            Anchor {
                ticks,
                unix_ns,
                scale: self.scale.load(Ordering::Relaxed),
            }
        }

        /// Ticks and Unix nanoseconds read as close together as four tries allow: the
        /// tightest counter reads around a system-clock read, their midpoint.
        fn pair(&self) -> (u64, u64) {
            if !self.tsc {
                let ns = unix_ns();
                return (ns, ns);
            }
            let mut best = (u64::MAX, 0, 0);
            for _ in 0..4 {
                let before = rdtsc();
                let ns = unix_ns();
                let after = rdtsc();
                let width = after.wrapping_sub(before);
                if width < best.0 {
                    best = (width, before.wrapping_add(width / 2), ns);
                }
            }
            (best.1, best.2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_by_an_anchor() {
        // 1 ns per tick.
        assert_eq!(to_unix_ns(150, 100, 1_000, NS_SCALE), 1_050);
        assert_eq!(to_unix_ns(50, 100, 1_000, NS_SCALE), 950);
        // A 3 GHz counter: 3 ticks per ns.
        let scale = measure((0, 0), (3_000_000_000, 1_000_000_000)).unwrap();
        assert_eq!(
            to_unix_ns(3_000_000_300, 3_000_000_000, 5_000, scale),
            5_100
        );
        assert_eq!(
            to_unix_ns(2_999_999_700, 3_000_000_000, 5_000, scale),
            4_900
        );
        // Hostile values saturate.
        assert_eq!(to_unix_ns(u64::MAX, 0, u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(to_unix_ns(0, u64::MAX, 0, u64::MAX), 0);
        assert_eq!(to_unix_ns(0, u64::MAX, u64::MAX, 0), u64::MAX);
        // A product just below i128's limit (rounding must not overflow).
        assert_eq!(to_unix_ns(u64::MAX, 0, 0, u64::MAX >> 1), u64::MAX);
        assert_eq!(to_unix_ns(0, u64::MAX, u64::MAX, u64::MAX >> 1), 0);
    }

    #[test]
    fn measuring_needs_both_clocks_to_move_forward() {
        assert_eq!(measure((10, 10), (20, 30)), Some(2 * NS_SCALE));
        assert_eq!(measure((10, 10), (10, 30)), None);
        assert_eq!(measure((10, 10), (20, 10)), None);
        assert_eq!(measure((20, 10), (10, 30)), None);
        assert_eq!(
            measure((0, 0), (1, u64::MAX)),
            None,
            "beyond the scale's range"
        );
    }

    #[test]
    fn a_jump_keeps_the_scale_until_it_is_the_new_normal() {
        let s = NS_SCALE;
        // Within 1/1000: taken (NTP's slewing).
        assert_eq!(next_scale(s, Some(s + s / 2000), 0), (s + s / 2000, 0));
        // A step of the system clock: refused, counted.
        assert_eq!(next_scale(s, Some(5 * s), 0), (s, 1));
        assert_eq!(next_scale(s, Some(5 * s), 2), (s, 3));
        // The fourth in a row is taken.
        assert_eq!(next_scale(s, Some(5 * s), 3), (5 * s, 0));
        // A good one resets the count.
        assert_eq!(next_scale(s, Some(s), 2), (s, 0));
        assert_eq!(next_scale(s, None, 2), (s, 2));
    }
}
