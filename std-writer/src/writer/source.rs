//! Where the writer thread's records come from: the [`Source`] trait, with one implementation
//! per kind of ring. The worker (`worker.rs`) is the same for both; only "take what is ready
//! and frame it" differs:
//!
//! - [`Typed`]: the slot ring of a [`Writer<T>`](super::Writer) (plain, or evicting under
//!   `DropOldest`), whose events are encoded here, on the writer thread;
//! - `ByteReceiver`: the byte ring of a `Writer<Bytes>`, whose records are framed straight
//!   from the ring into the batch buffer and released a batch at a time.

use super::frames::Frames;
use super::Rx;
use crate::record::Record;
use ringwal_core::{ByteReceiver, Mode, Receiver};
use std::time::Duration;

/// What one [`Source::take`] did.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Taken {
    /// Records taken out of the ring (framed, or counted dropped if they could not be).
    pub(super) records: usize,
    /// How far the consumer's position moved (records, evictions stepped over, discarded
    /// space passed), in the unit of [`Source::position`].
    pub(super) advanced: usize,
    /// It stopped at its limit (one ring's worth): more may be ready now.
    pub(super) more: bool,
}

/// A ring's consumer side, as the writer thread drains it.
pub(super) trait Source {
    /// How long, at a shutdown that gives up, the writer still waits for records reserved
    /// before the close to be published: `None` (as long as it takes) where nothing but a
    /// few instructions run between a claim and its publication; a bound where user code does
    /// (a byte grant is filled by the emitter's closure).
    const PUBLISH_WAIT: Option<Duration>;

    /// Takes the records published from the consumer's position on (at most one ring's
    /// worth), never waiting, and frames each into `out` (evictions stepped over are counted
    /// there as losses).
    fn take(&mut self, out: &mut Frames) -> Taken;

    /// The consumer's position: everything before it has been taken (or evicted, or skipped),
    /// in the unit of the producers' position and of the ring's `close()`.
    fn position(&self) -> usize;

    /// One ring's worth of positions (for the polling writer's pace).
    fn capacity(&self) -> usize;
}

/// The slot ring's consumer, and how many evictions it has reported so far.
pub(super) struct Typed<T> {
    rx: Rx<T>,
    evicted: u64,
}

impl<T> Typed<T> {
    pub(super) fn new(rx: Rx<T>) -> Self {
        Typed { rx, evicted: 0 }
    }
}

impl<T: Record> Source for Typed<T> {
    const PUBLISH_WAIT: Option<Duration> = None;

    fn take(&mut self, out: &mut Frames) -> Taken {
        match &mut self.rx {
            Rx::Plain(rx) => drain_typed(rx, &mut self.evicted, out),
            Rx::Evicting(rx) => drain_typed(rx, &mut self.evicted, out),
        }
    }

    fn position(&self) -> usize {
        match &self.rx {
            Rx::Plain(rx) => rx.position(),
            Rx::Evicting(rx) => rx.position(),
        }
    }

    fn capacity(&self) -> usize {
        match &self.rx {
            Rx::Plain(rx) => rx.capacity(),
            Rx::Evicting(rx) => rx.capacity(),
        }
    }
}

/// Takes up to one ring's worth of events and encodes them.
fn drain_typed<T: Record, M: Mode>(
    consumer: &mut Receiver<T, M>,
    seen_evicted: &mut u64,
    out: &mut Frames,
) -> Taken {
    let mut took = 0;
    // From our own count, not the consumer's: a `pop` that stepped over evicted positions and
    // then found nothing published has already counted them there.
    let mut evicted = *seen_evicted;
    // `drain` never waits (a producer mid-publish is looked at again next round), yields at
    // most one ring's worth, and never reads the producers' `tail` line (`try_pop` would, to
    // tell `Empty` from `Pending`, at the end of every batch).
    let mut drain = consumer.drain();
    loop {
        let popped = drain.next();
        let now = drain.evicted();
        out.lost(now - evicted);
        evicted = now;
        let Some(event) = popped else { break };
        took += 1;
        out.encode(event);
    }
    let stepped = evicted - *seen_evicted;
    *seen_evicted = evicted;
    Taken {
        records: took,
        advanced: took + stepped as usize,
        more: took >= consumer.capacity(),
    }
}

/// Payload bytes per batch read from the byte ring: the batch is released (its space given
/// back to emitters) after every this many bytes framed, not after a whole ring's worth.
const BYTE_BATCH: usize = 64 << 10;

impl Source for ByteReceiver {
    /// A grant is filled by the emitter's own code (`ByteEmitter::emit_with`'s closure); a
    /// shutdown that gives up waits this long for one still open, then abandons it.
    const PUBLISH_WAIT: Option<Duration> = Some(Duration::from_millis(100));

    fn take(&mut self, out: &mut Frames) -> Taken {
        let start = self.position();
        let lap = Source::capacity(self);
        let mut records = 0;
        let mut more = false;
        // Batches of up to `BYTE_BATCH` bytes, each framed and released before the next is
        // read, until nothing is ready (`Empty`, or a grant not yet committed: `Pending`; a
        // batch read that finds nothing still releases the discarded space before it) or one
        // ring's worth has passed.
        loop {
            let Ok(batch) = self.read_batch(BYTE_BATCH) else {
                break;
            };
            out.buf
                .reserve(batch.payload_len() + batch.len() * crate::format::FRAME_HEADER_LEN);
            for record in &batch {
                out.record(record);
            }
            records += batch.len();
            drop(batch);
            if ringwal_core::position_diff(self.position(), start) >= lap as isize {
                more = true;
                break;
            }
        }
        Taken {
            records,
            advanced: ringwal_core::position_diff(self.position(), start) as usize,
            more,
        }
    }

    fn position(&self) -> usize {
        ByteReceiver::position(self)
    }

    /// In positions: granules of 8 bytes.
    fn capacity(&self) -> usize {
        ByteReceiver::capacity(self) / 8
    }
}
