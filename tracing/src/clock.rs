//! Timestamps.
//!
//! Reading the system clock (`clock_gettime(CLOCK_REALTIME)` through the vDSO) costs about
//! 50 ns on the development host (a KVM guest whose clocksource is `tsc`), a third of an
//! event's whole capture; reading the CPU's time-stamp counter costs about 13. So where the
//! kernel itself keeps time with the TSC (x86-64 Linux whose clocksource is `tsc` when the
//! layer is built: the kernel found it invariant and in step across CPUs), records carry raw
//! TSC *ticks* (record format version 2), and the log carries *clock records* that tie ticks to
//! Unix time: an anchor (ticks and Unix ns, read back to back) and a scale (nanoseconds per 2³²
//! ticks). A reader converts each timestamp with the last clock record before it. Clock records
//! are written when the layer starts, at the start of every segment (the preamble, so any
//! suffix of the log converts), and again by whichever thread first records once the anchor is
//! due for renewal — after 1 ms, the interval doubling to one second — or once the counter reads
//! before the anchor (a suspend, a restored snapshot). Each renewal measures the rate over the
//! interval just ended and takes it if it agrees within 1/1000 with the current scale (slow
//! drift, NTP's slewing) or with the previous measurement (two agreeing intervals: the rate did
//! change, a fast slew or a migrated VM); a lone outlier is a step of the system clock, taken in
//! by the new anchor alone. Converted times are accurate to about a microsecond; where the
//! decoder moves to a new anchor a time may come out a little before the previous record's.
//!
//! Elsewhere (or with `Builder::tsc(false)`) records keep format version 1, times in Unix
//! nanoseconds, and no clock record is written: readers of version 1 read those logs.

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

/// The scale measured between two anchors, if both clocks moved forward.
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
pub(crate) fn measure(from: (u64, u64), to: (u64, u64)) -> Option<u64> {
    let ticks = to.0.checked_sub(from.0).filter(|&t| t > 0)?;
    let ns = to.1.checked_sub(from.1).filter(|&n| n > 0)?;
    let scale = ((u128::from(ns) << 32) + u128::from(ticks / 2)) / u128::from(ticks);
    u64::try_from(scale).ok().filter(|&s| s > 0)
}

/// Whether two scales agree within 1/1000.
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
fn agree(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= b / 1000
}

/// The first renewal interval, and the longest (ns).
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
const FIRST_NS: u64 = 1_000_000;
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
const LONGEST_NS: u64 = 1_000_000_000;

/// Ticks in `ns` nanoseconds at `scale`, at least 1.
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
fn ticks_for(ns: u64, scale: u64) -> u64 {
    u64::try_from((u128::from(ns) << 32) / u128::from(scale.max(1)))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Whether a first calibration is believable: a counter between 50 MHz and 20 GHz (`scale`
/// between 1/20 and 20 ns per tick, in 2³² units), and a system clock that moved as the
/// monotonic clock did meanwhile (within 1 %: not stepped during the measurement).
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
fn plausible(scale: u64, realtime_ns: u64, monotonic_ns: u64) -> bool {
    (NS_SCALE / 20..=NS_SCALE * 20).contains(&scale)
        && realtime_ns.abs_diff(monotonic_ns) <= monotonic_ns / 100
}

/// A counter's calibration: the last anchor written, its scale, the last rate measured and
/// the renewal interval. Plain data: [`Calibration::renewed`] is the whole renewal rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
pub(crate) struct Calibration {
    /// Ticks and Unix ns read together.
    pub(crate) anchor: (u64, u64),
    pub(crate) scale: u64,
    last_measured: Option<u64>,
    interval_ns: u64,
}

#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
impl Calibration {
    /// The first calibration: `scale` measured up to `anchor`.
    pub(crate) fn new(anchor: (u64, u64), scale: u64) -> Self {
        Calibration {
            anchor,
            scale,
            last_measured: Some(scale),
            interval_ns: FIRST_NS,
        }
    }

    /// The calibration after a renewal that read `new` (ticks, Unix ns): anchored there, its
    /// scale the rate measured since the last anchor if that agrees with the current scale or
    /// with the previous measurement, else the current one (see the module docs); the interval
    /// doubled, up to a second.
    pub(crate) fn renewed(&self, new: (u64, u64)) -> Self {
        let measured = measure(self.anchor, new);
        let scale = match measured {
            Some(m) if agree(m, self.scale) => m,
            Some(m) if self.last_measured.is_some_and(|l| agree(m, l)) => m,
            _ => self.scale,
        };
        Calibration {
            anchor: new,
            scale,
            last_measured: measured,
            interval_ns: self.interval_ns.saturating_mul(2).min(LONGEST_NS),
        }
    }

    /// Ticks from the anchor to the next renewal.
    pub(crate) fn interval_ticks(&self) -> u64 {
        ticks_for(self.interval_ns, self.scale)
    }
}

#[cfg(feature = "subscriber")]
pub(crate) use capture::{unix_ns, Anchor, Clock};

#[cfg(feature = "subscriber")]
mod capture {
    use super::{measure, plausible, ticks_for, Calibration, FIRST_NS, NS_SCALE};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, TryLockError};
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
    /// in step across CPUs). Read once, when a layer is built.
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

    /// Ticks and Unix nanoseconds read as close together as four tries allow: the tightest
    /// counter reads around a system-clock read, their midpoint.
    fn tsc_pair() -> (u64, u64) {
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

    /// The counter's rate measured against the system clock over about a millisecond (three
    /// tries), or `None` if no try gave a plausible one: a counter between 50 MHz and 20 GHz,
    /// and a system clock that moved as the monotonic clock did (not stepped meanwhile).
    fn calibrate() -> Option<Calibration> {
        for _ in 0..3 {
            let first = tsc_pair();
            let started = Instant::now();
            while started.elapsed().as_nanos() < u128::from(FIRST_NS) {
                std::hint::spin_loop();
            }
            let second = tsc_pair();
            let monotonic = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let Some(scale) = measure(first, second) else {
                continue;
            };
            // `measure` checked that the system clock moved forward.
            if plausible(scale, second.1 - first.1, monotonic) {
                return Some(Calibration::new(second, scale));
            }
        }
        None
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
    /// The calibration is under a mutex that only a renewing thread takes, with `try_lock`
    /// (a thread that finds it taken goes on: another is renewing). The window is a hint kept
    /// beside it in atomics, so that each timestamp checks it with two Relaxed loads and no
    /// lock: nothing depends on their order (a stale window only makes a thread try
    /// `renew`, which re-checks under the lock, or renew a little late). `scale` mirrors the
    /// calibration's for the preamble, which runs on the writer's thread and must never wait
    /// for the lock (a renewer may hold it while it waits for the writer to free ring space).
    #[derive(Debug)]
    pub(crate) struct Clock {
        tsc: bool,
        /// Renewal is due once `ticks - window_start` (wrapping: a counter read before the
        /// start is due at once) reaches `window_len`.
        window_start: AtomicU64,
        window_len: AtomicU64,
        scale: AtomicU64,
        calibration: Mutex<Calibration>,
    }

    impl Clock {
        /// The TSC if `tsc` is asked for, the kernel keeps time with it and it calibrates
        /// (about a millisecond's spin), else the system clock.
        pub(crate) fn new(tsc: bool) -> Self {
            let calibration = if tsc && kernel_uses_tsc() {
                calibrate()
            } else {
                None
            };
            let cal = calibration.unwrap_or(Calibration::new((0, 0), NS_SCALE));
            Clock {
                tsc: calibration.is_some(),
                window_start: AtomicU64::new(cal.anchor.0),
                window_len: AtomicU64::new(cal.interval_ticks()),
                scale: AtomicU64::new(cal.scale),
                calibration: Mutex::new(cal),
            }
        }

        /// Whether timestamps are TSC ticks (records of version 2, with clock records),
        /// otherwise Unix nanoseconds (version 1).
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

        /// Whether the anchor is due for renewal at `ticks` (then call
        /// [`renew`](Self::renew)). Never for the system clock.
        #[inline]
        pub(crate) fn is_due(&self, ticks: u64) -> bool {
            // Relaxed: a hint, see the type's docs.
            self.tsc
                && ticks.wrapping_sub(self.window_start.load(Ordering::Relaxed))
                    >= self.window_len.load(Ordering::Relaxed)
        }

        /// Renews the anchor unless another thread is renewing it or just did: reads a new
        /// anchor, hands it to `write` (which puts it in the log and says whether it did),
        /// and keeps the new calibration only if it was written (else the log would convert
        /// with the old one: the renewal is tried again a millisecond later, measuring from
        /// the last anchor written).
        #[cold]
        pub(crate) fn renew(&self, write: impl FnOnce(Anchor) -> bool) {
            let mut cal = match self.calibration.try_lock() {
                Ok(guard) => guard,
                // A panic while renewing left plain data behind: still a calibration.
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            let now = self.ticks();
            if !self.is_due(now) {
                return; // renewed by another thread since the caller looked
            }
            let new = tsc_pair();
            let next = cal.renewed(new);
            let anchor = Anchor {
                ticks: new.0,
                unix_ns: new.1,
                scale: next.scale,
            };
            if write(anchor) {
                *cal = next;
                self.scale.store(next.scale, Ordering::Relaxed);
                self.window_start.store(new.0, Ordering::Relaxed);
                self.window_len
                    .store(next.interval_ticks(), Ordering::Relaxed);
            } else {
                self.window_start.store(now, Ordering::Relaxed);
                self.window_len
                    .store(ticks_for(FIRST_NS, cal.scale), Ordering::Relaxed);
            }
        }

        /// An anchor read now, with the current scale (the layer's first, a preamble's).
        /// Never waits.
        pub(crate) fn anchor(&self) -> Anchor {
            let (ticks, unix_ns) = if self.tsc {
                tsc_pair()
            } else {
                let ns = unix_ns();
                (ns, ns)
            };
            Anchor {
                ticks,
                unix_ns,
                scale: self.scale.load(Ordering::Relaxed),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn clock(start: u64, len: u64) -> Clock {
            Clock {
                tsc: true,
                window_start: AtomicU64::new(start),
                window_len: AtomicU64::new(len),
                scale: AtomicU64::new(NS_SCALE),
                calibration: Mutex::new(Calibration::new((start, 0), NS_SCALE)),
            }
        }

        #[test]
        fn renewal_is_due_after_the_window_or_before_it() {
            let c = clock(1_000_000_000_000, 1_000);
            assert!(!c.is_due(1_000_000_000_000));
            assert!(!c.is_due(1_000_000_000_999));
            assert!(c.is_due(1_000_000_001_000));
            // The counter went backwards (a suspend, a restored snapshot): due at once.
            assert!(c.is_due(5));
            // Near the end of the counter's range, and across it.
            let c = clock(u64::MAX - 10, 100);
            assert!(!c.is_due(u64::MAX));
            assert!(c.is_due(89));
            // The system clock is never due.
            let mut c = clock(0, 0);
            c.tsc = false;
            assert!(!c.is_due(u64::MAX));
        }

        #[test]
        fn a_renewal_the_log_refused_is_tried_again_from_the_last_anchor_written() {
            let c = clock(0, 1);
            let before = *c.calibration.lock().unwrap();
            c.renew(|_| false);
            assert_eq!(*c.calibration.lock().unwrap(), before, "nothing kept");
            assert_eq!(
                c.window_len.load(Ordering::Relaxed),
                ticks_for(FIRST_NS, NS_SCALE)
            );
            let mut written = None;
            // Due again (a counter before the window's start).
            c.window_start.store(u64::MAX, Ordering::Relaxed);
            c.renew(|a| {
                written = Some(a);
                true
            });
            let a = written.expect("renewed");
            assert_eq!(c.calibration.lock().unwrap().anchor, (a.ticks, a.unix_ns));
            assert_eq!(c.window_start.load(Ordering::Relaxed), a.ticks);
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

    /// A 3 GHz counter: `ns` nanoseconds after the anchor `(t0, n0)`, ticks at `rate` × 3 GHz.
    fn at(cal: &Calibration, ns: u64, rate: f64) -> (u64, u64) {
        (
            cal.anchor.0 + (ns as f64 * 3.0 * rate) as u64,
            cal.anchor.1 + ns,
        )
    }

    #[test]
    fn renewals_follow_the_rate_and_double_the_interval() {
        let s = measure((0, 0), (3_000_000, 1_000_000)).unwrap();
        let mut cal = Calibration::new((3_000_000, 1_000_000), s);
        let mut intervals = vec![cal.interval_ns];
        let mut rate = 1.0;
        for _ in 0..12 {
            // A slow drift (the counter 1/10,000 faster each interval) is followed.
            rate *= 1.0001;
            let next = cal.renewed(at(&cal, cal.interval_ns, rate));
            assert!(
                next.scale < cal.scale,
                "a faster counter: fewer ns per tick"
            );
            assert!(agree(next.scale, cal.scale));
            cal = next;
            intervals.push(cal.interval_ns);
        }
        assert_eq!(
            intervals[..4],
            [FIRST_NS, 2 * FIRST_NS, 4 * FIRST_NS, 8 * FIRST_NS]
        );
        assert_eq!(*intervals.last().unwrap(), LONGEST_NS);
        assert_eq!(cal.interval_ticks(), ticks_for(LONGEST_NS, cal.scale));
    }

    #[test]
    fn a_step_of_the_system_clock_moves_the_anchor_not_the_scale() {
        let s = NS_SCALE / 3;
        let cal = Calibration::new((3_000_000, 1_000_000), s);
        // 1 ms passes on the counter, but the system clock stepped 5 s forward.
        let stepped = (cal.anchor.0 + 3_000_000, cal.anchor.1 + 5_001_000_000);
        let after = cal.renewed(stepped);
        assert_eq!(after.scale, s, "an outlier alone is a step");
        assert_eq!(after.anchor, stepped, "the new anchor takes the step in");
        // The next interval agrees with the old rate: it stays.
        let next = after.renewed(at(&after, after.interval_ns, 1.0));
        assert!(agree(next.scale, s), "{} {}", next.scale, s);
        // A step backwards: the system clock did not move forward; the anchor moves.
        let back = (next.anchor.0 + 3_000, next.anchor.1 - 1_000_000_000);
        let after = next.renewed(back);
        assert_eq!((after.anchor, after.scale), (back, next.scale));
    }

    #[test]
    fn a_new_rate_is_taken_once_two_intervals_agree_on_it() {
        let s = NS_SCALE / 3;
        let cal = Calibration::new((3_000_000, 1_000_000), s);
        // The counter runs 5 % faster from now on (a migrated VM), or the clock slews fast.
        let first = cal.renewed(at(&cal, cal.interval_ns, 1.05));
        assert_eq!(first.scale, s, "one interval could be a step");
        let second = first.renewed(at(&first, first.interval_ns, 1.05));
        assert!(
            agree(second.scale, (s as f64 / 1.05) as u64),
            "two agreeing intervals: the new rate"
        );
    }

    #[test]
    fn a_counter_that_went_backwards_keeps_the_scale() {
        let s = NS_SCALE / 3;
        let cal = Calibration::new((3_000_000_000_000, 1_000_000), s);
        let resumed = (5_000, cal.anchor.1 + 60_000_000_000);
        let after = cal.renewed(resumed);
        assert_eq!((after.anchor, after.scale), (resumed, s));
    }

    #[test]
    fn a_first_calibration_must_be_believable() {
        let ghz3 = NS_SCALE / 3;
        assert!(plausible(ghz3, 1_000_000, 1_000_000));
        assert!(plausible(ghz3, 1_009_000, 1_000_000), "within 1 %");
        // The system clock stepped during the millisecond.
        assert!(!plausible(ghz3, 3_600_001_000_000, 1_000_000));
        assert!(!plausible(ghz3, 1_000, 1_000_000));
        // A counter at 1 kHz or at 1 THz is not a time-stamp counter.
        assert!(!plausible(NS_SCALE * 1_000_000, 1_000_000, 1_000_000));
        assert!(!plausible(NS_SCALE / 1_000, 1_000_000, 1_000_000));
        assert!(plausible(NS_SCALE * 20, 1_000_000, 1_000_000), "50 MHz");
        assert!(plausible(NS_SCALE / 20, 1_000_000, 1_000_000), "20 GHz");
    }

    #[test]
    fn the_interval_is_never_zero_ticks() {
        // A scale of a millisecond per tick (nonsense, but nothing may divide it to zero).
        let cal = Calibration::new((0, 0), u64::MAX);
        assert_eq!(cal.interval_ticks(), 1);
        assert_eq!(ticks_for(0, 1), 1);
    }
}
