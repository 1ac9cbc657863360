//! What the shipper sends: one message per record, and messages for losses.

use bytes::Bytes;
use ringwal::checkpoint::LogId;
use ringwal::Gap;

/// One message for the destination: a record of the log, or an account of records or events
/// the destination will never get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// What it is.
    pub kind: Kind,
    /// The cursor once this message is in the destination: every record below it is then
    /// handled. A destination stores it with the message, so that [`Resume`] can say where
    /// it stands ([`crate::Destination::resume`]).
    ///
    /// [`Resume`]: crate::Resume
    pub next: u64,
    /// The record's bytes (empty for the other kinds).
    pub payload: Bytes,
}

/// What an [`Outgoing`] message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Record `seq` of the log, and the events lost right before it (as
    /// [`Entry::dropped_before`](ringwal::Entry::dropped_before) and `refused_before`, less
    /// what a [`Kind::Gap`] message already reported).
    Record {
        /// Its sequence number.
        seq: u64,
        /// Events evicted (`DropOldest`) or failed to encode before it, not reported yet.
        dropped_before: u64,
        /// Events refused by `emit` before it, not reported yet.
        refused_before: u64,
    },
    /// Events lost after the last record, before record `before` (which the log does not hold
    /// yet): a writer's gap markers at the end of the log. `dropped` and `refused` are the
    /// losses not reported before; `total` is all of them since record `before - 1` (record
    /// `before`, when it comes, is sent with only what `total` does not cover).
    Gap {
        /// The record the losses precede.
        before: u64,
        /// Newly reported evictions.
        dropped: u64,
        /// Newly reported refusals.
        refused: u64,
        /// Everything reported before `before` so far.
        total: Gap,
    },
    /// Records `from..=to` were deleted by retention (`Retain::Bytes`, a hard bound) before
    /// they could be shipped.
    Lost {
        /// The first record lost.
        from: u64,
        /// The last record lost.
        to: u64,
    },
}

impl Outgoing {
    /// Its id, unique for the log and stable across restarts: what a destination
    /// de-duplicates on (JetStream's `Nats-Msg-Id`). `<log id>:<seq>` for a record,
    /// `<log id>:gap:<before>:<total dropped>:<total refused>` and
    /// `<log id>:lost:<from>-<to>` for the others.
    ///
    /// ```
    /// use ringwal_ship::{Kind, Outgoing};
    /// let log: ringwal::checkpoint::LogId = "000102030405060708090a0b0c0d0e0f".parse().unwrap();
    /// let msg = Outgoing {
    ///     kind: Kind::Record { seq: 7, dropped_before: 0, refused_before: 0 },
    ///     next: 8,
    ///     payload: "hello".into(),
    /// };
    /// assert_eq!(msg.id(log), "000102030405060708090a0b0c0d0e0f:7");
    /// ```
    pub fn id(&self, log: LogId) -> String {
        match &self.kind {
            Kind::Record { seq, .. } => format!("{log}:{seq}"),
            Kind::Gap { before, total, .. } => {
                format!("{log}:gap:{before}:{}:{}", total.dropped, total.refused)
            }
            Kind::Lost { from, to } => format!("{log}:lost:{from}-{to}"),
        }
    }

    /// The record's sequence number, for a record.
    pub fn seq(&self) -> Option<u64> {
        match self.kind {
            Kind::Record { seq, .. } => Some(seq),
            _ => None,
        }
    }

    /// Losses before record [`next`](Self::next) reported once this message is in (a
    /// checkpoint's [`gap_shipped`](ringwal::checkpoint::Checkpoint::gap_shipped)).
    pub fn gap_shipped(&self) -> Gap {
        match self.kind {
            Kind::Gap { total, .. } => total,
            _ => Gap::default(),
        }
    }

    /// Records this message stands for: 1 for a record, the count for [`Kind::Lost`].
    pub fn records(&self) -> u64 {
        match self.kind {
            Kind::Record { .. } => 1,
            Kind::Gap { .. } => 0,
            Kind::Lost { from, to } => to - from + 1,
        }
    }

    /// A short description for errors and the dead-letter file: `record 7`, `gap before 7`,
    /// `lost 3-6`.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Record { seq, .. } => format!("record {seq}"),
            Kind::Gap { before, .. } => format!("gap before {before}"),
            Kind::Lost { from, to } => format!("lost {from}-{to}"),
        }
    }
}
