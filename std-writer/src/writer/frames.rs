//! [`Frames`]: the writer's batch buffer and its numbering, where every record is framed, from
//! whichever ring it came: a typed event encoded on this thread ([`Frames::encode`]), or a byte
//! record copied straight from the byte ring ([`Frames::record`]: one copy, the CRC computed
//! over the copy while it is hot). One codec for both, `ringwal_core::format`.

use crate::format;
use crate::record::Record;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The batch buffer's capacity at start.
pub(super) const BUF_START: usize = 64 << 10;

/// Frames not yet durable, and the numbering of the next one.
pub(super) struct Frames {
    /// Frames not yet durable (see `Worker`: a prefix may be in the sink already).
    pub(super) buf: Vec<u8>,
    /// Where one typed record is encoded before it is framed into `buf`.
    scratch: Vec<u8>,
    /// The sequence number of the next record.
    pub(super) next_seq: u64,
    /// Events lost since the last framed record (evictions, failed encodes): the next record's
    /// `dropped_before`.
    pub(super) pending_gap: u64,
    /// Events refused by `emit` since the last framed record: the next record's
    /// `refused_before` (or, at shutdown, a gap marker's).
    pub(super) pending_refused: u64,
    /// Accepted events that will never be written (evicted, or failed to encode).
    pub(super) dropped: u64,
}

impl Frames {
    pub(super) fn new(next_seq: u64) -> Self {
        Frames {
            buf: Vec::with_capacity(BUF_START),
            scratch: Vec::with_capacity(256),
            next_seq,
            pending_gap: 0,
            pending_refused: 0,
            dropped: 0,
        }
    }

    /// Frames `payload` as the next record: its header (sequence number, the losses before
    /// it), the payload copied in, the CRC over both.
    #[inline]
    pub(super) fn record(&mut self, payload: &[u8]) {
        let start = format::begin_frame(&mut self.buf);
        self.buf.extend_from_slice(payload);
        self.finish(start);
    }

    /// Seals the frame begun at `start`, or counts the record as dropped if it is too long.
    #[inline]
    fn finish(&mut self, start: usize) {
        let sealed = format::finish_frame(
            &mut self.buf,
            start,
            self.next_seq,
            self.pending_gap,
            self.pending_refused,
        );
        if sealed.is_ok() {
            self.next_seq += 1;
            self.pending_gap = 0;
            self.pending_refused = 0;
        } else {
            self.lost(1);
        }
    }

    /// Encodes `event` on this thread and frames it. An `encode` that panics, or whose payload
    /// is longer than `format::MAX_PAYLOAD`, loses only its own record (counted as dropped,
    /// shown as the next record's gap).
    pub(super) fn encode<T: Record>(&mut self, event: T) {
        // Into a scratch buffer, so an `encode` that misbehaves (clears or rewrites `out`)
        // can only spoil its own record, never frames already in the batch.
        self.scratch.clear();
        let scratch = &mut self.scratch;
        let encoded = catch_unwind(AssertUnwindSafe(move || {
            event.encode(scratch);
            drop(event);
        }));
        if encoded.is_ok() {
            let start = format::begin_frame(&mut self.buf);
            self.buf.extend_from_slice(&self.scratch);
            self.finish(start);
        } else {
            self.lost(1);
        }
        if self.scratch.capacity() > 1 << 20 {
            self.scratch = Vec::new();
        }
    }

    /// `n` accepted events will never be written (evicted): counted, and carried by the next
    /// record as its gap.
    #[inline]
    pub(super) fn lost(&mut self, n: u64) {
        self.dropped += n;
        self.pending_gap += n;
    }

    /// Appends a gap marker for the losses since the last record, if there are any (at
    /// shutdown: losses no later record can carry). Returns whether it did.
    pub(super) fn trailing_marker(&mut self) -> bool {
        if self.pending_gap == 0 && self.pending_refused == 0 {
            return false;
        }
        self.buf.extend_from_slice(&format::encode_marker(
            self.next_seq,
            self.pending_gap,
            self.pending_refused,
        ));
        self.pending_gap = 0;
        self.pending_refused = 0;
        true
    }
}
