//! Counters of a running shipper, and the [`Status`] snapshot made from them.

use ringwal::checkpoint::Position;
use ringwal::Reader;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The shipper's counters, shared with whoever watches it ([`Shipper::metrics`]). Each is an
/// independent counter (Relaxed): a [`Status`] is a snapshot, not a consistent cut.
///
/// [`Shipper::metrics`]: crate::Shipper::metrics
#[derive(Debug)]
pub struct Metrics {
    dir: PathBuf,
    started: Instant,
    pub(crate) cursor: AtomicU64,
    pub(crate) read_next: AtomicU64,
    pub(crate) tail_at_end: AtomicBool,
    pub(crate) published: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) gap_events: AtomicU64,
    pub(crate) inflight: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) position: Mutex<Option<Position>>,
    pub(crate) last_error: Mutex<Option<String>>,
}

/// A snapshot of a shipper: [`Metrics::status`], and the [`Report`](crate::Report) a run
/// returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    /// The cursor: every record below it is in the destination (or dead-lettered, or
    /// reported lost).
    pub cursor: u64,
    /// The next record the shipper will read from the log.
    pub read_next: u64,
    /// Messages published, first sends and retries.
    pub published: u64,
    /// Records acknowledged by the destination in this run (duplicates included).
    pub acked: u64,
    /// Acks saying the destination already held the message (de-duplicated).
    pub duplicates: u64,
    /// Messages sent again after a failure.
    pub retries: u64,
    /// Records refused for good, in the dead-letter file.
    pub dead_lettered: u64,
    /// Records deleted by a forced retention (`Retain::Bytes`) before they were shipped.
    pub lost: u64,
    /// Events lost at emit (dropped + refused) that the shipped messages report.
    pub gap_events: u64,
    /// Publishes awaiting their ack.
    pub inflight: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Records between the cursor and what the shipper has read of the log: the lag when
    /// [`lag_exact`](Self::lag_exact); a lower bound while the shipper is reading behind.
    pub lag_records: u64,
    /// Whether the shipper has read to the log's end (so `lag_records` is exact).
    pub lag_exact: bool,
    /// Bytes of the log (frames, segment headers) from the cursor to the log's end.
    pub lag_bytes: u64,
    /// The last send or ack succeeded.
    pub connected: bool,
    /// The last problem (a retried failure, a loss, a checkpoint that could not be
    /// written), if any.
    pub last_error: Option<String>,
    /// Seconds since the shipper started.
    pub uptime_secs: f64,
}

impl Metrics {
    pub(crate) fn new(dir: PathBuf) -> Metrics {
        Metrics {
            dir,
            started: Instant::now(),
            cursor: AtomicU64::new(0),
            read_next: AtomicU64::new(0),
            tail_at_end: AtomicBool::new(false),
            published: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            gap_events: AtomicU64::new(0),
            inflight: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            position: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    pub(crate) fn note_error(&self, e: impl Into<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.into());
    }

    /// A snapshot of the counters, with the lag in bytes computed from the log's segment
    /// sizes (one directory listing).
    pub fn status(&self) -> Status {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let cursor = get(&self.cursor);
        let read_next = get(&self.read_next).max(cursor);
        let position = *self.position.lock().unwrap_or_else(|p| p.into_inner());
        let lag_bytes = Reader::open(&self.dir)
            .and_then(|r| r.segments())
            .map(|segments| lag_bytes(&segments, cursor, position))
            .unwrap_or(0);
        Status {
            cursor,
            read_next,
            published: get(&self.published),
            acked: get(&self.acked),
            duplicates: get(&self.duplicates),
            retries: get(&self.retries),
            dead_lettered: get(&self.dead_lettered),
            lost: get(&self.lost),
            gap_events: get(&self.gap_events),
            inflight: get(&self.inflight),
            checkpoints: get(&self.checkpoints),
            lag_records: read_next - cursor,
            lag_exact: self.tail_at_end.load(Ordering::Relaxed),
            lag_bytes,
            connected: self.connected.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            uptime_secs: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// Bytes of the log from `position` (where the frame after record `cursor - 1` starts) to
/// the end; without a position, from the start of the segment that holds record `cursor`.
pub fn lag_bytes(
    segments: &[ringwal::SegmentInfo],
    cursor: u64,
    position: Option<Position>,
) -> u64 {
    match position {
        Some(p) => segments
            .iter()
            .filter(|s| s.first_seq >= p.segment)
            .map(|s| s.bytes)
            .fold(0, u64::saturating_add)
            .saturating_sub(if segments.iter().any(|s| s.first_seq == p.segment) {
                p.offset
            } else {
                0
            }),
        None => {
            let from = segments
                .iter()
                .rev()
                .find(|s| s.first_seq <= cursor)
                .map_or(0, |s| s.first_seq);
            segments
                .iter()
                .filter(|s| s.first_seq >= from)
                .map(|s| s.bytes)
                .fold(0, u64::saturating_add)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segment sizes are the file system's: sparse files of 2^63 - 1 bytes (tmpfs allows
    /// them) add up past `u64::MAX`; the lag saturates (it panicked in debug, as `status()`
    /// on a live shipper, and wrapped to a small lag in release).
    #[test]
    fn lag_bytes_saturates_on_huge_segments() {
        let seg = |first_seq| ringwal::SegmentInfo {
            path: PathBuf::from(format!("{first_seq}")),
            first_seq,
            bytes: i64::MAX as u64,
        };
        let segments = [seg(0), seg(1), seg(2), seg(3)];
        assert_eq!(lag_bytes(&segments, 0, None), u64::MAX);
        let at = Position {
            segment: 1,
            offset: 10,
        };
        assert_eq!(lag_bytes(&segments, 1, Some(at)), u64::MAX - 10);
    }
}
