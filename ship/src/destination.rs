//! Where records go: the [`Destination`] trait, which keeps the cursor logic free of any one
//! system's client.

use crate::message::Outgoing;
use ringwal::checkpoint::LogId;
use ringwal::Gap;
use std::fmt;
use std::future::Future;

/// A system the shipper publishes to: NATS JetStream ([`JetStream`](crate::JetStream)) is
/// the first; a Kafka producer (idempotent, `max.in.flight` ≤ 5) fits the same shape.
///
/// The shipper calls [`send`](Self::send) for messages in log order, up to its window of
/// unacknowledged ones, and awaits their acks in that order. After any failure it stops
/// sending, awaits every outstanding ack, calls [`resume`](Self::resume) to learn what the
/// destination holds, and sends again from there. So a destination must:
///
/// - **keep order**: never store a message unless every message sent before it since the
///   last `resume` is stored or was refused for good (JetStream: each publish names the
///   previous one as the stream's expected last message; Kafka: the idempotent producer's
///   per-partition sequence numbers);
/// - **say where it stands**: `resume` returns the [`Outgoing::next`] and
///   [`Outgoing::gap_shipped`] stored with the last message it holds of this log (or
///   `None`), and makes the next `send` ordered after that message;
/// - **de-duplicate** on [`Outgoing::id`] where it can (a message sent twice across a
///   crash, inside the destination's window, is stored once);
/// - **classify failures** ([`SendErrorKind`]): a refusal for good dead-letters that one
///   message; anything transient is retried after a backoff; a fatal error stops the
///   shipper.
pub trait Destination: Send {
    /// A pending acknowledgement.
    type Ack: Future<Output = Result<Acked, SendError>> + Send + Unpin;

    /// Where it ships, for status lines and the checkpoint file (`nats://host:4222 subject`).
    fn describe(&self) -> String;

    /// What the destination holds of log `log`: the cursor and gap its last message of this
    /// log carries, or `None` if it holds none. Also the start of a new order: the next
    /// `send` must be stored only after that last message. A last message from another log
    /// is a [`SendErrorKind::Fatal`] error (two logs to one subject would defeat this
    /// resume).
    fn resume(
        &mut self,
        log: LogId,
    ) -> impl Future<Output = Result<Option<Resume>, SendError>> + Send;

    /// The most messages this destination can have awaiting their ack at once, if it has
    /// such a bound: the shipper's window is capped at it (a `send` past the bound would wait
    /// for an ack the shipper has not taken yet: for ever). Default: no bound.
    fn window_limit(&self) -> Option<usize> {
        None
    }

    /// Starts sending `msg` (ordered after the previous `send`); resolves once it is handed to
    /// the client, returning the future of its ack. An error here means it was not sent.
    fn send(
        &mut self,
        log: LogId,
        msg: &Outgoing,
    ) -> impl Future<Output = Result<Self::Ack, SendError>> + Send;
}

/// Where a destination stands for a log, from its last message ([`Destination::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resume {
    /// The [`Outgoing::next`] of its last message: every record below is in.
    pub next: u64,
    /// Its [`Outgoing::gap_shipped`].
    pub gap_shipped: Gap,
}

/// A positive acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acked {
    /// The destination already held this message (de-duplicated on its id).
    pub duplicate: bool,
}

/// Why a send or an ack failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// What the shipper does about it.
    pub kind: SendErrorKind,
    /// What happened, for people.
    pub message: String,
}

/// What the shipper does about a [`SendError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendErrorKind {
    /// Try again later (connection lost, server restarting, ack timed out, out of order after
    /// an earlier failure, stream full, no stream answering the subject): the shipper backs off
    /// and sends again, for ever. A restarting server answers "no stream" until it has loaded
    /// its streams, so a stream deleted under a running shipper shows here too (its status
    /// says RETRYING with the server's words) until it is created again.
    Transient,
    /// This message will never be accepted (larger than the server's `max_payload` or the
    /// stream's `max_msg_size`): it goes to the dead-letter file, counted, and is not sent
    /// again.
    Refused,
    /// Nothing will be accepted until someone changes something (no such stream when the
    /// shipper connects, a stream the shipper cannot keep in order, another log's messages on
    /// the subject): the shipper stops with this error.
    Fatal,
}

impl SendError {
    /// A [`SendErrorKind::Transient`] error.
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            kind: SendErrorKind::Transient,
            message: message.into(),
        }
    }

    /// A [`SendErrorKind::Refused`] error.
    pub fn refused(message: impl Into<String>) -> SendError {
        SendError {
            kind: SendErrorKind::Refused,
            message: message.into(),
        }
    }

    /// A [`SendErrorKind::Fatal`] error.
    pub fn fatal(message: impl Into<String>) -> SendError {
        SendError {
            kind: SendErrorKind::Fatal,
            message: message.into(),
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SendError {}
