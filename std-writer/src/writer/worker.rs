//! The writer thread: drains the ring (through a [`Source`]: the slot ring's events or the
//! byte ring's records, framed into [`Frames`]), appends batches to the sink, syncs them,
//! publishes its progress, and shuts down accounting for every event. One worker for both
//! kinds of writer.

use super::frames::{Frames, BUF_START};
use super::source::{Source, Taken};
use super::Shared;
use crate::format;
use crate::reader::Entry;
use crate::signal::{Signal, STOP};
use crate::sink::{Batch, Sink};
use crate::{Idle, Report, ShutdownError, SyncPolicy};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Backoff after a write or sync failure: 1 ms, doubling, capped at this.
const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// An idle writer polls the ring this many rounds (64 spins, then yields: tens of
/// microseconds) before it parks. Under a steady stream of events it so stays awake, and
/// emitters never pay for an unpark; an idle writer still sleeps.
const IDLE_POLLS: u32 = 256;
/// A polling writer (`Idle::Poll`) never sleeps shorter than this (Linux's default timer slack
/// is 50 µs: a shorter sleep would cost a wake without being shorter).
const POLL_MIN: Duration = Duration::from_micros(50);
/// A polling writer halves its sleep after a wake that found more than `capacity / POLL_BUSY`
/// events (the ring is filling: wake sooner), and doubles it after one that found fewer than
/// `capacity / POLL_QUIET` (up to the configured interval).
const POLL_BUSY: usize = 8;
const POLL_QUIET: usize = 32;
/// A spinning writer (`Idle::Spin`) yields once every this many idle rounds (and otherwise
/// spins), so a core it shares is not starved.
const SPIN_YIELD_EVERY: u32 = 64;
/// A batch buffer emptied with more capacity than this and than four times the batch just
/// written is shrunk back (to `BUF_START`, or twice that batch): one huge record does not
/// keep its memory until shutdown, and steady batches of any size do not reallocate.
const BUF_KEEP: usize = 1 << 20;

/// The writer thread's state. `T` is the writer's record type (`Bytes` for the byte path);
/// the records themselves come from the [`Source`] passed to [`run`](Self::run).
pub(super) struct Worker<T, S> {
    shared: Arc<Shared<T>>,
    sink: S,
    policy: SyncPolicy,
    shutdown_timeout: Duration,
    idle: Idle,
    /// Under `Idle::Poll`: the next timed sleep (adapted to the event rate, see `POLL_BUSY`).
    poll_sleep: Duration,
    /// Under `Idle::Poll`: ring positions taken since the last timed sleep.
    taken_since_sleep: usize,
    /// Frames not yet durable: `frames.buf[..appended]` is in the sink (awaiting sync), the
    /// rest is not yet appended. Frame sequence numbers run from `buf_first_seq` to
    /// `frames.next_seq`.
    frames: Frames,
    buf_first_seq: u64,
    appended: usize,
    appended_seq: u64,
    /// The first sequence number the sink held records before (persisted counts from it).
    start_seq: u64,
    /// The emitters' refusal count (summed over stripes) when last looked at.
    refused_seen: u64,
    /// Ring position (the source's: records taken plus evicted, or granules passed) at the
    /// end of each batch, with the sequence number after that batch: when that is durable,
    /// `done` reaches the position.
    checkpoints: VecDeque<(u64, usize)>,
    /// After close: the producers' final position (the ring's `close()` answer).
    end: Option<usize>,
    /// Records taken out of the ring so far (`emitted` of a byte writer, whose positions
    /// count bytes, not records).
    taken: u64,
    bytes_written: u64,
    syncs: u64,
    write_errors: u64,
    done: usize,
    failing: u32,
    /// Whether the writer told the emitters it is unhealthy (cleared once everything it holds
    /// is appended, and synced where that is due).
    unhealthy: bool,
    /// After an append that failed without progress: at most this many frames go into the next
    /// append (halved on each such failure, down to one; doubled after each success), so a
    /// nearly full disk takes what fits instead of refusing the whole batch forever.
    piece: Option<usize>,
    retry_at: Option<Instant>,
    last_sync: Instant,
}

impl<T, S: Sink> Worker<T, S> {
    pub(super) fn new(
        shared: Arc<Shared<T>>,
        sink: S,
        policy: SyncPolicy,
        shutdown_timeout: Duration,
        idle: Idle,
    ) -> Self {
        let seq = sink.next_seq();
        Worker {
            shared,
            sink,
            policy,
            shutdown_timeout,
            idle,
            poll_sleep: match idle {
                Idle::Poll(d) => d,
                _ => Duration::ZERO,
            },
            taken_since_sleep: 0,
            frames: Frames::new(seq),
            buf_first_seq: seq,
            appended: 0,
            appended_seq: seq,
            start_seq: seq,
            refused_seen: 0,
            checkpoints: VecDeque::new(),
            end: None,
            taken: 0,
            bytes_written: 0,
            syncs: 0,
            write_errors: 0,
            done: 0,
            failing: 0,
            unhealthy: false,
            piece: None,
            retry_at: None,
            last_sync: Instant::now(),
        }
    }

    fn durable_seq(&self) -> u64 {
        match self.policy {
            SyncPolicy::Never => self.appended_seq,
            _ => self.buf_first_seq,
        }
    }

    /// Attributes the refusals counted since the last look to the next record. Where a
    /// refusal lands is exact to within one ring, not to the record: it came after every
    /// record framed before (those were taken before it was counted), but a refusal of a full
    /// ring also came after the records still in the ring, which this batch takes and frames
    /// after it (`Entry::refused_before`'s docs). Exact placement would need the ring position
    /// each refusal saw.
    fn note_refusals(&mut self) {
        // After close, this sees every refusal an emit reported as anything but `Closed`
        // (`signal`'s docs, "Refusals"); before, a snapshot.
        let total = self.shared.signal.refusals();
        self.frames.pending_refused += total.wrapping_sub(self.refused_seen);
        self.refused_seen = total;
    }

    /// At shutdown, once everything is written: if losses follow the last record (events
    /// refused or evicted after it), queues a gap marker for them, so the log's gaps add up to
    /// every loss. Returns whether it queued one.
    fn trailing_marker(&mut self) -> bool {
        self.note_refusals();
        self.frames.trailing_marker()
    }

    /// Takes what is ready from `source` (at most one ring's worth) into the batch buffer,
    /// after the refusals counted so far (they lie before these records).
    fn take<Src: Source>(&mut self, source: &mut Src) -> Taken {
        self.note_refusals();
        let taken = source.take(&mut self.frames);
        if taken.records > 0 {
            self.taken += taken.records as u64;
            // At once, not with the other counters after the write: a byte writer's
            // `emitted` (Relaxed: a snapshot counter, as in `publish`).
            self.shared
                .published
                .taken
                .store(self.taken, Ordering::Relaxed);
        }
        if taken.advanced > 0 {
            // Where the source's position is after the records framed so far.
            self.checkpoints
                .push_back((self.frames.next_seq, source.position()));
            // Space was freed: emitters blocked on a full ring may go on.
            self.shared.signal.space.notify();
        }
        taken
    }

    /// Whether, after close, the writer's position (values popped plus values evicted) has
    /// reached the producers' final one: nothing claimed is left in the ring.
    fn caught_up(&self, position: usize) -> bool {
        self.end == Some(position)
    }

    fn fail(&mut self, e: io::Error) {
        self.write_errors += 1;
        self.failing = self.failing.saturating_add(1);
        let backoff =
            Duration::from_millis(1u64 << self.failing.min(16).saturating_sub(1)).min(MAX_BACKOFF);
        self.retry_at = Some(Instant::now() + backoff);
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((e.kind(), e.to_string()));
        self.unhealthy = true;
        self.shared.signal.set_unhealthy(true);
        // Relaxed: a counter; `record_failure` (Release) orders it before a flusher's check.
        self.shared
            .published
            .write_errors
            .store(self.write_errors, Ordering::Relaxed);
        self.shared.signal.record_failure();
        self.resync();
    }

    fn healthy(&mut self) {
        self.failing = 0;
        self.retry_at = None;
        if self.unhealthy {
            self.unhealthy = false;
            self.shared.signal.set_unhealthy(false);
        }
    }

    /// After a failure: continue from wherever the sink says it is.
    fn resync(&mut self) {
        let at = self.sink.next_seq();
        if at < self.buf_first_seq {
            // The sink lost records we no longer hold (only possible under `Never`): count them
            // as dropped and renumber what we hold to follow on, the gap recorded.
            // Only what this run wrote can be lost to it: a sink below our start lost records
            // of an earlier run, which are not in our counts.
            let lost = self.buf_first_seq - at.max(self.start_seq);
            // Every record after `at` is gone; the log's gap shows them all.
            let shift = self.buf_first_seq - at;
            self.start_seq = self.start_seq.min(at);
            self.frames.dropped += lost;
            let mut offset = 0;
            let mut seq = at;
            let mut first = true;
            while offset < self.frames.buf.len() {
                let Ok(size) = format::frame_size(&self.frames.buf[offset..]) else {
                    break;
                };
                let frame = &mut self.frames.buf[offset..offset + size];
                let Ok((decoded, _)) = format::decode_frame(frame) else {
                    break;
                };
                let (mut gap, refused, marker) = (
                    decoded.dropped_before,
                    decoded.refused_before,
                    decoded.marker,
                );
                if first {
                    gap += shift;
                    first = false;
                }
                format::renumber_frame(frame, seq, gap, refused);
                // A gap marker carries the next record's number without taking it.
                seq += u64::from(!marker);
                offset += size;
            }
            if first {
                self.frames.pending_gap += shift;
            }
            for c in self.checkpoints.iter_mut() {
                c.0 = c.0.saturating_sub(shift);
            }
            self.buf_first_seq = at;
            self.frames.next_seq -= shift;
            self.appended = 0;
            self.appended_seq = at;
        } else {
            // Everything from `at` on must be appended again; frames before it are in the sink.
            let at = at.min(self.frames.next_seq);
            let mut offset = 0;
            let mut seq = self.buf_first_seq;
            while seq < at {
                let rest = &self.frames.buf[offset..];
                match format::frame_size(rest) {
                    Ok(size) => offset += size,
                    Err(_) => break,
                }
                seq += u64::from(!format::is_marker(rest));
            }
            self.appended = offset;
            self.appended_seq = seq;
        }
    }

    /// The end (offset in `buf`) and record count of the next append: everything not yet
    /// appended, or at most `piece` frames of it. Also returns how many frames that is when
    /// splitting (`None` for the whole rest: the common path does not walk the frames).
    fn next_piece(&self) -> (usize, u64, Option<usize>) {
        let Some(limit) = self.piece else {
            return (
                self.frames.buf.len(),
                self.frames.next_seq - self.appended_seq,
                None,
            );
        };
        let mut offset = self.appended;
        let mut records = 0u64;
        let mut frames = 0usize;
        while offset < self.frames.buf.len() && frames < limit {
            let rest = &self.frames.buf[offset..];
            let Ok(size) = format::frame_size(rest) else {
                break;
            };
            records += u64::from(!format::is_marker(rest));
            frames += 1;
            offset += size;
        }
        if offset == self.frames.buf.len() {
            (
                self.frames.buf.len(),
                self.frames.next_seq - self.appended_seq,
                Some(frames),
            )
        } else {
            (offset, records, Some(frames))
        }
    }

    /// How many frames are not yet appended (only after a whole-rest append failed).
    fn frames_left(&self) -> usize {
        let mut offset = self.appended;
        let mut frames = 0;
        while let Ok(size) = format::frame_size(&self.frames.buf[offset..]) {
            frames += 1;
            offset += size;
        }
        frames
    }

    /// Appends what is not yet appended: all of it, or, after an append that failed without
    /// progress (a full disk), piece by piece (see `piece`), each piece synced when the policy
    /// wants durability, so the sink's rollback mark advances and its retention can free the
    /// older segments before the next piece.
    fn write(&mut self) {
        while self.appended < self.frames.buf.len() {
            let (end, records, frames) = self.next_piece();
            let whole = end == self.frames.buf.len();
            let batch = Batch::from_writer(
                &self.frames.buf[self.appended..end],
                self.appended_seq,
                records,
            );
            match self.sink.append(&batch) {
                Ok(()) => {
                    self.bytes_written += (end - self.appended) as u64;
                    self.appended = end;
                    self.appended_seq += records;
                    // Under `Never` nothing waits for a sync, but the shutdown's: from the
                    // close on, frames stay until it succeeds, as under the other policies.
                    // A failed sync rolls the log back to the previous one (the kernel may
                    // have dropped what it failed to write), and what was appended since
                    // must be appended again: records taken after the close, and the gap
                    // marker that accounts for the loss (it takes no sequence number, so the
                    // log's position does not show it missing).
                    if self.policy == SyncPolicy::Never && self.end.is_none() {
                        let written = self.appended;
                        self.frames.buf.drain(..written);
                        self.appended = 0;
                        self.buf_first_seq = self.appended_seq;
                        self.shrink_buf(written);
                    }
                    if whole {
                        self.piece = None;
                        if self.policy == SyncPolicy::Never {
                            // The append is the whole job: the sink works again.
                            self.healthy();
                        } else {
                            // Written, not yet durable: healthy once a sync succeeds (`sync`).
                            // Marking it here made the flag flicker to true between each
                            // re-append and the next failing sync, and reset the backoff, so
                            // a disk whose syncs keep failing was retried every millisecond.
                            self.retry_at = None;
                        }
                        return;
                    }
                    // A piece got in: the disk takes something. Retry soon, with a bigger piece.
                    self.failing = 0;
                    // Not `whole`, so this was a piece: `frames` is known.
                    self.piece = Some(frames.unwrap_or(1).saturating_mul(2));
                    if self.policy != SyncPolicy::Never {
                        self.sync();
                        if self.retry_at.is_some() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    // No progress (the sink is where it was, or rolled back further): the
                    // next try takes half as many frames.
                    if self.sink.next_seq() <= self.appended_seq {
                        let tried = frames.unwrap_or_else(|| self.frames_left());
                        self.piece = Some((tried / 2).max(1));
                    }
                    self.fail(e);
                    return;
                }
            }
        }
    }

    /// After `written` bytes left an emptied `buf`: gives back capacity far beyond what that
    /// batch needed (see `BUF_KEEP`).
    fn shrink_buf(&mut self, written: usize) {
        if self.frames.buf.is_empty()
            && self.frames.buf.capacity() > BUF_KEEP.max(written.saturating_mul(4))
        {
            self.frames
                .buf
                .shrink_to(BUF_START.max(written.saturating_mul(2)));
        }
    }

    fn sync_due(&self, closing: bool) -> bool {
        if self.appended == 0 || self.appended != self.frames.buf.len() {
            return false;
        }
        match self.policy {
            SyncPolicy::Never => false,
            SyncPolicy::EveryBatch => true,
            SyncPolicy::Interval(d) => {
                closing || self.last_sync.elapsed() >= d || self.flush_wanted()
            }
        }
    }

    fn flush_wanted(&self) -> bool {
        !Signal::reached(self.done, self.shared.signal.flush_target())
    }

    fn sync(&mut self) {
        match self.sink.sync() {
            Ok(()) => {
                self.syncs += 1;
                self.last_sync = Instant::now();
                // Only the appended part is durable (after a piece, the rest still waits).
                let written = self.appended;
                self.frames.buf.drain(..written);
                self.appended = 0;
                self.buf_first_seq = self.appended_seq;
                self.shrink_buf(written);
                if self.frames.buf.is_empty() {
                    self.healthy();
                } else {
                    self.failing = 0;
                }
            }
            Err(e) => self.fail(e),
        }
    }

    fn publish(&mut self) {
        let durable = self.durable_seq();
        let mut done = self.done;
        while let Some(&(seq, position)) = self.checkpoints.front() {
            if seq > durable {
                break;
            }
            done = position;
            self.checkpoints.pop_front();
        }
        let p = &self.shared.published;
        // Relaxed: snapshots for `stats`; `publish_done` and `exited` below order them for
        // flushers and for the final report.
        p.persisted
            .store(self.appended_seq - self.start_seq, Ordering::Relaxed);
        p.dropped.store(self.frames.dropped, Ordering::Relaxed);
        p.taken.store(self.taken, Ordering::Relaxed);
        p.bytes_written.store(self.bytes_written, Ordering::Relaxed);
        p.syncs.store(self.syncs, Ordering::Relaxed);
        p.write_errors.store(self.write_errors, Ordering::Relaxed);
        p.segments
            .store(self.sink.segments() as u64, Ordering::Relaxed);
        p.last_seq_plus_one
            .store(self.appended_seq, Ordering::Relaxed);
        p.durable
            .store(durable.saturating_sub(self.start_seq), Ordering::Relaxed);
        p.durable_seq.store(durable, Ordering::Relaxed);
        if done != self.done {
            self.done = done;
            self.shared.signal.publish_done(done);
        }
    }

    /// The writer thread's loop, draining `source` until shut down.
    pub(super) fn run<Src: Source>(mut self, mut source: Src) -> Result<Report, ShutdownError> {
        let shared = Arc::clone(&self.shared);
        let mut closing = false;
        let mut deadline = None;
        let mut idle_rounds = 0u32;
        let mut synced_at_close = false;
        loop {
            if !closing && shared.signal.state() & STOP != 0 {
                // No position can be claimed after this: `end` is final, and the drain below
                // runs until the writer's position reaches it.
                self.end = Some(shared.close());
                closing = true;
                // The caller's (fixed before it asked us to stop), so a writer that was busy
                // in the sink when asked still gives up in time.
                deadline = shared
                    .exit
                    .deadline()
                    .or_else(|| Instant::now().checked_add(self.shutdown_timeout));
            }
            // Past the deadline, failing or merely slow, with something still to write: no
            // more sink calls; hand back what is left (the timeout bounds the whole shutdown).
            let outstanding = self.retry_at.is_some()
                || !(self.frames.buf.is_empty() && self.caught_up(source.position()));
            if closing && outstanding && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.give_up(&mut source));
            }
            let failing = self.retry_at.is_some();
            let mut took = Taken::default();
            // Whether this round looked into the ring (a failing writer leaves it alone so it
            // fills and the overflow policy applies).
            let looked = !failing;
            if looked {
                took = self.take(&mut source);
                self.write();
                if self.sync_due(closing) {
                    self.sync();
                }
            } else if self.retry_at.is_some_and(|t| Instant::now() >= t) {
                self.retry_at = None;
                self.write();
                if self.retry_at.is_none() && self.sync_due(closing) {
                    self.sync();
                }
            }
            self.publish();

            // Under `Never` after the close, appended frames wait in `buf` for the sync below.
            let written = self.frames.buf.is_empty()
                || (self.policy == SyncPolicy::Never
                    && self.end.is_some()
                    && self.appended == self.frames.buf.len());
            let drained = looked && !took.more && written;
            if closing && drained && self.retry_at.is_none() && self.caught_up(source.position()) {
                // After close, no position can be claimed any more; once ours reaches the
                // producers' (a push claimed just before close is published a few instructions
                // later; a byte grant when its emitter commits or drops it) everything
                // accepted is written, and synced unless `Never`, which gets its one sync now.
                if self.policy == SyncPolicy::Never && !synced_at_close {
                    self.sync();
                    synced_at_close = self.retry_at.is_none();
                }
                if self.trailing_marker() {
                    // Written (and synced) by the next rounds, like any batch.
                    synced_at_close = false;
                    continue;
                }
                if self.policy != SyncPolicy::Never || synced_at_close {
                    return Ok(self.finish());
                }
            }
            if took.advanced > 0 {
                idle_rounds = 0;
                self.taken_since_sleep = self.taken_since_sleep.saturating_add(took.advanced);
                continue;
            }
            // Nothing taken: wait for the next reason to work.
            if let Some(t) = self.retry_at {
                let wait = t
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50));
                crate::sync::park(Some(wait));
                continue;
            }
            if closing {
                // Waiting only for a producer mid-publish (a byte grant being filled), or a
                // sync timer.
                crate::sync::relax(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
                continue;
            }
            match self.idle {
                Idle::Park => {}
                Idle::Spin => {
                    // Never sleeps, never SLEEPING: emitters never wake it. A flush or a stop is
                    // seen on the next round.
                    let round = if idle_rounds % SPIN_YIELD_EVERY == SPIN_YIELD_EVERY - 1 {
                        u32::MAX
                    } else {
                        0
                    };
                    crate::sync::relax(round);
                    idle_rounds = idle_rounds.wrapping_add(1);
                    continue;
                }
                Idle::Poll(max) => {
                    if self.flush_wanted() {
                        // Waiting for a push mid-publish (or a byte grant being filled), or a
                        // sync due for the flusher: the next round does it.
                        crate::sync::relax(idle_rounds);
                        idle_rounds = idle_rounds.saturating_add(1);
                        continue;
                    }
                    let sleep = self.next_poll_sleep(max, source.capacity());
                    let sleep = match self.policy {
                        SyncPolicy::Interval(d) if self.appended > 0 => {
                            sleep.min(d.saturating_sub(self.last_sync.elapsed()))
                        }
                        _ => sleep,
                    };
                    // No SLEEPING: emitters never unpark a polling writer. Flushers, stoppers
                    // and blocked emitters do (signal's module docs, "A polled writer").
                    shared.signal.poll_sleep(sleep);
                    continue;
                }
            }
            if idle_rounds < IDLE_POLLS && !self.flush_wanted() {
                crate::sync::relax(idle_rounds);
                idle_rounds += 1;
                continue;
            }
            let timeout = match self.policy {
                SyncPolicy::Interval(d) if self.appended > 0 => {
                    Some(d.saturating_sub(self.last_sync.elapsed()))
                }
                _ => None,
            };
            let tx = &shared.tx;
            let done = self.done;
            let position = source.position();
            // Nothing claimed past our position (read with SeqCst: the sleep handshake in
            // `signal`'s docs) and no flush wanted. A claim not yet published (a byte grant
            // still being filled) keeps the writer looking: it relaxes, then yields, until the
            // record is committed or discarded.
            let may_sleep = shared.signal.prepare_sleep(|| {
                tx.pushed_seqcst() == position
                    && Signal::reached(done, shared.signal.flush_target())
            });
            if may_sleep {
                idle_rounds = 0;
                shared.signal.sleep(timeout);
            } else {
                crate::sync::relax(idle_rounds);
                idle_rounds = idle_rounds.saturating_add(1);
            }
        }
    }

    /// The next sleep of a polling writer with interval `max` and a ring of `capacity`
    /// positions: halved if the last one let the ring fill past an eighth, doubled if it found
    /// less than a thirty-second, kept otherwise; within `POLL_MIN..=max`. A quiet writer so sleeps `max`
    /// (one wake per interval), a busy one often enough that the ring keeps room for bursts.
    fn next_poll_sleep(&mut self, max: Duration, capacity: usize) -> Duration {
        let took = std::mem::take(&mut self.taken_since_sleep);
        let floor = POLL_MIN.min(max);
        // Multiplied, not divided: on a tiny ring an empty wake still doubles the sleep.
        self.poll_sleep = if took.saturating_mul(POLL_BUSY) > capacity {
            (self.poll_sleep / 2).max(floor)
        } else if took.saturating_mul(POLL_QUIET) < capacity {
            self.poll_sleep.saturating_mul(2).min(max)
        } else {
            self.poll_sleep
        }
        .clamp(floor, max);
        self.poll_sleep
    }

    fn report(&self) -> Report {
        let mut stats = self.shared.stats();
        // The refusals the log accounts for: an emit refused after this (the writer is closed)
        // counts only in later `stats()`.
        stats.rejected = self.refused_seen;
        Report { stats }
    }

    /// The final counters. (The thread's wrapper in `spawn` then marks the writer exited.)
    fn finish(mut self) -> Report {
        self.publish();
        self.report()
    }

    /// The disk stayed broken (or too slow) past the shutdown timeout: take everything left,
    /// and hand back every record not confirmed written, encoded, in order.
    fn give_up<Src: Source>(mut self, source: &mut Src) -> ShutdownError {
        // After close: take everything, including a push claimed just before close and still
        // being published; a byte grant still being filled is waited for a bounded time
        // (`Source::PUBLISH_WAIT`), then abandoned.
        let wait_until = Src::PUBLISH_WAIT.and_then(|d| Instant::now().checked_add(d));
        let mut round = 0;
        let abandoned = loop {
            self.take(source);
            if self.caught_up(source.position()) {
                break None;
            }
            if wait_until.is_some_and(|t| Instant::now() >= t) {
                let end = self.end.expect("give_up runs after close");
                break Some(ringwal_core::position_diff(end, source.position()));
            }
            crate::sync::relax(round);
            round = round.saturating_add(1);
        };
        let error = if self.retry_at.is_some() {
            self.shared.last_error()
        } else if let Some(granules) = abandoned {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "records reserved before the shutdown were still being written by their \
                     emitters ({} bytes of the ring, at least one `emit_with` closure still \
                     running): abandoned, not written",
                    granules * 8
                ),
            )
        } else {
            io::Error::new(
                io::ErrorKind::TimedOut,
                "the sink did not take everything within the shutdown timeout",
            )
        };
        // Everything in `buf` is unconfirmed: appended-but-unsynced records too.
        let mut unwritten = Vec::new();
        let mut rest = &self.frames.buf[..];
        let mut marked = (0, 0);
        while let Ok((frame, used)) = format::decode_frame(rest) {
            rest = &rest[used..];
            if frame.marker {
                marked = (frame.dropped_before, frame.refused_before);
                continue;
            }
            unwritten.push(Entry {
                seq: frame.seq,
                payload: frame.payload.to_vec(),
                dropped_before: frame.dropped_before + std::mem::take(&mut marked.0),
                refused_before: frame.refused_before + std::mem::take(&mut marked.1),
            });
        }
        // Report them as neither persisted nor dropped: they are in the error.
        self.appended_seq = self.buf_first_seq;
        self.publish();
        ShutdownError {
            error,
            report: Box::new(self.report()),
            unwritten,
        }
    }
}
