//! The NATS JetStream [`Destination`].

use crate::destination::{Acked, Destination, Resume, SendError};
use crate::message::{Kind, Outgoing};
use async_nats::header::{self, HeaderMap};
use async_nats::jetstream::context::{
    GetStreamByNameErrorKind, GetStreamErrorKind, PublishErrorKind,
};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config, LastRawMessageErrorKind, Stream};
use async_nats::jetstream::{self, ErrorCode};
use ringwal::checkpoint::LogId;
use ringwal::Gap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The header with the log's id.
pub const HEADER_LOG: &str = "Ringwal-Log";
/// The header with the record's sequence number (records only).
pub const HEADER_SEQ: &str = "Ringwal-Seq";
/// The header with the cursor once the message is in ([`Outgoing::next`]).
pub const HEADER_NEXT: &str = "Ringwal-Next";
/// Events evicted (or failed to encode) before the record, or in a gap message; only when
/// not zero.
pub const HEADER_DROPPED: &str = "Ringwal-Dropped-Before";
/// Events refused by `emit` before the record, or in a gap message; only when not zero.
pub const HEADER_REFUSED: &str = "Ringwal-Refused-Before";
/// On a gap message: the record the losses precede, and every loss reported before it so far
/// (`<before> <dropped> <refused>`).
pub const HEADER_GAP: &str = "Ringwal-Gap";
/// On a lost-records message: `<from> <to>`, the records a forced retention deleted before
/// they were shipped.
pub const HEADER_LOST: &str = "Ringwal-Lost";

/// Settings of a [`JetStream`] destination.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// The server, e.g. `nats://127.0.0.1:4222`; several, comma-separated. Credentials go in
    /// the URL: `nats://user:password@host:4222`, or a token, `nats://token@host:4222` (the
    /// first URL that has some gives them). They are never shown: see
    /// [`JetStream::connect`].
    pub url: String,
    /// The subject every message is published to.
    pub subject: String,
    /// The stream; `None`: the one whose subjects take `subject`.
    pub stream: Option<String>,
    /// Create `stream` (with `subjects = [subject]`, file storage) if it does not exist.
    pub create_stream: bool,
    /// The de-duplication window of a stream this creates (the server's default, 2 min, if
    /// `None`).
    pub duplicate_window: Option<Duration>,
    /// How long an ack (and any JetStream API request) may take before the publish counts
    /// as failed and is retried. Default 5 s.
    pub ack_timeout: Duration,
    /// How long the first connection may take. Default 5 s.
    pub connect_timeout: Duration,
    /// The client's bound on unacknowledged publishes (at least 1). A shipper's window above
    /// it is capped at it ([`Destination::window_limit`]). Default 4096.
    pub max_inflight: usize,
}

impl JetStreamOptions {
    /// The defaults for `url` and `subject`.
    pub fn new(url: impl Into<String>, subject: impl Into<String>) -> JetStreamOptions {
        JetStreamOptions {
            url: url.into(),
            subject: subject.into(),
            stream: None,
            create_stream: false,
            duplicate_window: None,
            ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_inflight: 4096,
        }
    }
}

/// How the next publish is ordered after the last one.
#[derive(Debug, Clone)]
enum Chain {
    /// Nothing of this log in the stream: no condition.
    None,
    /// After [`resume`](Destination::resume): the stream's sequence number of the subject's
    /// last message (`Nats-Expected-Last-Subject-Sequence`).
    SubjectSeq(u64),
    /// The id of the previous publish (`Nats-Expected-Last-Msg-Id`).
    MsgId(String),
}

/// Publishes to a NATS JetStream stream. See [`Destination`] for what the shipper expects.
///
/// - **Ids**: every publish carries `Nats-Msg-Id` = [`Outgoing::id`] (`<log id>:<seq>`), so
///   the stream drops a message sent twice inside its duplicate window.
/// - **Order**: every publish names the previous one in `Nats-Expected-Last-Msg-Id` (the
///   first after a resume names the subject's last message by its stream sequence, with
///   `Nats-Expected-Last-Subject-Sequence`). If one publish of a window fails, every later
///   one is refused by the server too, so a retry never lands after a later record. The
///   expected last message id is the stream's, not the subject's: the stream must take only
///   this subject ([`connect`](Self::connect) checks its subjects).
/// - **Resume**: every message carries `Ringwal-Log` and `Ringwal-Next`; on start and after
///   a failure the shipper reads the subject's last message (`STREAM.MSG.GET` by subject)
///   and goes on from its `Ringwal-Next`, so nothing is sent twice even after the duplicate
///   window has passed.
/// - **Refusals**: a message larger than the server's `max_payload` (refused by the client
///   before it is sent) or the stream's `max_msg_size` (JetStream error 10054) is
///   [`Refused`](crate::SendErrorKind::Refused): dead-lettered.
/// - **Outages**: the client reconnects on its own (for ever, with backoff); publishes
///   meanwhile time out and are retried by the shipper.
///
/// Headers: [`HEADER_LOG`], [`HEADER_SEQ`], [`HEADER_NEXT`], [`HEADER_DROPPED`],
/// [`HEADER_REFUSED`], [`HEADER_GAP`], [`HEADER_LOST`].
///
/// ```no_run
/// # async fn f() -> Result<(), ringwal_ship::SendError> {
/// use ringwal_ship::{JetStream, JetStreamOptions};
///
/// let mut options = JetStreamOptions::new("nats://127.0.0.1:4222", "events.host1");
/// options.stream = Some("EVENTS_HOST1".into());
/// options.create_stream = true;
/// let destination = JetStream::connect(options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct JetStream {
    js: jetstream::Context,
    max_inflight: usize,
    stream: Stream,
    subject: String,
    url: String,
    chain: Chain,
}

/// The ack of one JetStream publish.
pub type JetStreamAck = Pin<Box<dyn Future<Output = Result<Acked, SendError>> + Send>>;

impl JetStream {
    /// Connects, finds (or creates) the stream, and checks that it takes only the subject.
    /// A subject with a wildcard (or otherwise not one a message can be published to), an
    /// unreachable server, a missing stream, a stream that takes other subjects too, or one
    /// that never acknowledges (`no_ack`) is a [`Fatal`](crate::SendErrorKind::Fatal) error
    /// saying so.
    ///
    /// A password or token in the URL (`nats://user:password@host`) is never shown: errors,
    /// [`describe`](Destination::describe) and so the checkpoint file carry the URL with it
    /// replaced by `***`.
    pub async fn connect(options: JetStreamOptions) -> Result<JetStream, SendError> {
        // A subject no publish can go to: every ack would time out, for ever.
        check_subject(&options.subject).map_err(SendError::fatal)?;
        // For messages and the checkpoint file; the client gets the URL as given.
        let url = redact(&options.url);
        let mut connect = async_nats::ConnectOptions::new();
        // async-nats ignores the user info of a URL: without this, `nats://u:p@host` (the
        // only way to give `ringwal ship` credentials) connected without them, and every
        // server that asks for them refused it ("authorization violation").
        for one in options.url.split(',') {
            let Ok(addr) = one.trim().parse::<async_nats::ServerAddr>() else {
                continue; // the connect below says what is wrong with it
            };
            match (addr.username(), addr.password()) {
                (Some(user), Some(password)) => {
                    connect = connect.user_and_password(user.into(), password.into());
                    break;
                }
                (Some(token), None) => {
                    connect = connect.token(token.into());
                    break;
                }
                _ => {}
            }
        }
        let client = connect
            .connection_timeout(options.connect_timeout)
            .max_reconnects(None)
            // Capped exponential backoff with jitter, 50 ms to 2 s, for the client's own
            // reconnects (the shipper's retries sit on top).
            .reconnect_delay_callback(|attempts| {
                let base = 50u64 << attempts.min(6) as u32;
                let capped = base.min(2000);
                Duration::from_millis(capped / 2 + crate::backoff::jitter(capped / 2 + 1))
            })
            .connect(options.url.as_str())
            .await
            .map_err(|e| SendError::fatal(format!("cannot connect to NATS at {url}: {e}")))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(options.ack_timeout)
            .max_ack_inflight(options.max_inflight.max(1))
            .backpressure_on_inflight(true)
            .build(client);
        let subject = options.subject.clone();
        let name = match &options.stream {
            Some(name) => name.clone(),
            None => js.stream_by_subject(subject.as_str()).await.map_err(|e| {
                if no_jetstream(&e) {
                    jetstream_off(&url)
                } else if e.kind() == GetStreamByNameErrorKind::NotFound {
                    SendError::fatal(format!(
                        "no JetStream stream takes subject {subject:?} at {url}: create one \
                         whose only subject is {subject:?} (or name a stream and let the \
                         shipper create it)"
                    ))
                } else {
                    SendError::fatal(format!(
                        "looking up the stream of subject {subject:?} at {url}: {e}"
                    ))
                }
            })?,
        };
        let stream = match js.get_stream(&name).await {
            Ok(stream) => stream,
            Err(e)
                if options.create_stream
                    && matches!(e.kind(), GetStreamErrorKind::JetStream(ref j)
                        if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
            {
                let mut config = Config {
                    name: name.clone(),
                    subjects: vec![subject.clone()],
                    ..Config::default()
                };
                if let Some(window) = options.duplicate_window {
                    config.duplicate_window = window;
                }
                js.create_stream(config).await.map_err(|e| {
                    SendError::fatal(format!("creating stream {name:?} at {url}: {e}"))
                })?
            }
            Err(e) if no_jetstream(&e) => return Err(jetstream_off(&url)),
            Err(e) => {
                return Err(SendError::fatal(format!(
                    "stream {name:?} at {url}: {e}{}",
                    if options.create_stream {
                        ""
                    } else {
                        " (let the shipper create it: create_stream / --create)"
                    }
                )))
            }
        };
        let subjects = &stream.cached_info().config.subjects;
        if subjects.len() != 1 || subjects[0] != subject {
            return Err(SendError::fatal(format!(
                "stream {name:?} takes subjects {subjects:?}: ringwal-ship orders each publish \
                 after the previous one with Nats-Expected-Last-Msg-Id, which is per stream, so \
                 it needs a stream whose only subject is {subject:?}"
            )));
        }
        if stream.cached_info().config.no_ack {
            return Err(SendError::fatal(format!(
                "stream {name:?} has no_ack set: it never acknowledges a publish, and \
                 ringwal-ship moves its cursor only on acks (every publish would time out): \
                 use a stream without no_ack"
            )));
        }
        Ok(JetStream {
            js,
            max_inflight: options.max_inflight.max(1),
            stream,
            subject,
            url,
            chain: Chain::None,
        })
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.stream.cached_info().config.name
    }

    /// The client's context, for reading the stream back (tests, tools).
    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }
}

/// Whether `e` comes from a JetStream API request nobody answered: the server has no
/// JetStream (or, in a cluster, none for this account).
fn no_jetstream(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<jetstream::context::RequestError>() {
            if r.kind() == jetstream::context::RequestErrorKind::NoResponders {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// The error for a server without JetStream.
fn jetstream_off(url: &str) -> SendError {
    SendError::fatal(format!(
        "JetStream is not enabled at {url}: nothing answers its API (start nats-server with \
         -js, or enable jetstream in its configuration)"
    ))
}

/// A subject a message can be published to: dot-separated tokens, none empty, none a
/// wildcard (`*`, `>`), no white space or control character.
fn check_subject(subject: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "subject {subject:?} {why}: ringwal-ship publishes every record to one subject, \
             so it must be a plain one (tokens separated by dots, e.g. app.events)"
        ))
    };
    if subject.is_empty() {
        return bad("is empty");
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("has white space or a control character");
    }
    for token in subject.split('.') {
        match token {
            "" => return bad("has an empty token"),
            "*" | ">" => return bad("has a wildcard, which no message can be published to"),
            _ => {}
        }
    }
    Ok(())
}

/// `url` (one or several, comma-separated) without its secrets: the password of a
/// `user:password@` becomes `***`, a token (`token@`) too.
fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let (scheme, rest) = match one.find("://") {
                Some(i) => one.split_at(i + 3),
                None => ("", one),
            };
            // The last `@` ends the user info (a NATS URL has no path to hold one; a `/` or
            // `@` typed unescaped in a password must not let the rest of it show).
            match rest.rfind('@') {
                Some(at) => {
                    let shown = match rest[..at].split_once(':') {
                        Some((user, _)) => format!("{user}:***"),
                        None => "***".to_string(),
                    };
                    format!("{scheme}{shown}@{}", &rest[at + 1..])
                }
                None => one.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a header that must be a number.
fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.as_str().parse().ok()
}

impl Destination for JetStream {
    type Ack = JetStreamAck;

    fn describe(&self) -> String {
        format!("{} {}", self.url, self.subject)
    }

    /// [`JetStreamOptions::max_inflight`]: a publish past it waits for an ack permit.
    fn window_limit(&self) -> Option<usize> {
        Some(self.max_inflight)
    }

    async fn resume(&mut self, log: LogId) -> Result<Option<Resume>, SendError> {
        let last = match self
            .stream
            .get_last_raw_message_by_subject(&self.subject)
            .await
        {
            Ok(last) => last,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                self.chain = Chain::None;
                return Ok(None);
            }
            Err(e) => {
                return Err(SendError::transient(format!(
                    "reading the last message of {:?}: {e}",
                    self.subject
                )))
            }
        };
        let from = last.headers.get(HEADER_LOG).map(|v| v.as_str().to_string());
        if from.as_deref() != Some(log.to_string().as_str()) {
            return Err(SendError::fatal(format!(
                "the last message on subject {:?} (stream sequence {}) is not from this log \
                 ({HEADER_LOG}: {}, this log: {log}): give each log a subject (and a stream) of \
                 its own",
                self.subject,
                last.sequence,
                from.as_deref().unwrap_or("none")
            )));
        }
        let next = number(&last.headers, HEADER_NEXT).ok_or_else(|| {
            SendError::fatal(format!(
                "the last message on subject {:?} has no valid {HEADER_NEXT} header",
                self.subject
            ))
        })?;
        let gap_shipped = last
            .headers
            .get(HEADER_GAP)
            .and_then(|v| {
                let mut w = v.as_str().split(' ').map(|n| n.parse::<u64>().ok());
                let (_before, dropped, refused) = (w.next()??, w.next()??, w.next()??);
                Some(Gap { dropped, refused })
            })
            .unwrap_or_default();
        self.chain = Chain::SubjectSeq(last.sequence);
        Ok(Some(Resume { next, gap_shipped }))
    }

    async fn send(&mut self, log: LogId, msg: &Outgoing) -> Result<JetStreamAck, SendError> {
        let id = msg.id(log);
        let mut h = HeaderMap::new();
        h.insert(header::NATS_MESSAGE_ID, id.as_str());
        match &self.chain {
            Chain::None => {}
            Chain::SubjectSeq(seq) => {
                h.insert(header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, seq.to_string())
            }
            Chain::MsgId(prev) => h.insert(header::NATS_EXPECTED_LAST_MESSAGE_ID, prev.as_str()),
        }
        h.insert(HEADER_LOG, log.to_string());
        h.insert(HEADER_NEXT, msg.next.to_string());
        let (dropped, refused) = match msg.kind {
            Kind::Record {
                seq,
                dropped_before,
                refused_before,
            } => {
                h.insert(HEADER_SEQ, seq.to_string());
                (dropped_before, refused_before)
            }
            Kind::Gap {
                before,
                dropped,
                refused,
                total,
            } => {
                h.insert(
                    HEADER_GAP,
                    format!("{before} {} {}", total.dropped, total.refused),
                );
                (dropped, refused)
            }
            Kind::Lost { from, to } => {
                h.insert(HEADER_LOST, format!("{from} {to}"));
                (0, 0)
            }
        };
        if dropped > 0 {
            h.insert(HEADER_DROPPED, dropped.to_string());
        }
        if refused > 0 {
            h.insert(HEADER_REFUSED, refused.to_string());
        }
        let publish = PublishMessage::build()
            .payload(msg.payload.clone())
            .headers(h);
        let pending = match self.js.send_publish(self.subject.clone(), publish).await {
            Ok(pending) => pending,
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                return Err(SendError::refused(format!(
                    "{} of {} bytes: {e}",
                    msg.describe(),
                    msg.payload.len()
                )))
            }
            Err(e) => return Err(SendError::transient(format!("publishing: {e}"))),
        };
        self.chain = Chain::MsgId(id);
        let what = msg.describe();
        let len = msg.payload.len();
        Ok(Box::pin(async move {
            match pending.await {
                Ok(ack) => Ok(Acked {
                    duplicate: ack.duplicate,
                }),
                Err(e) => Err(classify(e, &what, len)),
            }
        }))
    }
}

/// What a failed ack means for the shipper.
fn classify(e: jetstream::context::PublishError, what: &str, len: usize) -> SendError {
    let code = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .map(|j| j.error_code());
    match (e.kind(), code) {
        (_, Some(ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM)) => {
            SendError::refused(format!("{what} of {len} bytes: {e}"))
        }
        (PublishErrorKind::WrongLastMessageId | PublishErrorKind::WrongLastSequence, _) => {
            SendError::transient(format!("out of order after an earlier failure: {e}"))
        }
        (PublishErrorKind::StreamNotFound, _) => SendError::transient(format!(
            "no stream answered (server starting or restarting?): {e}"
        )),
        _ => SendError::transient(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_in_urls_are_redacted() {
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact("nats://u:pw@h:1"), "nats://u:***@h:1");
        assert_eq!(redact("tls://tok@h:1/x"), "tls://***@h:1/x");
        assert_eq!(redact("u:p@w@h"), "u:***@h");
        assert_eq!(redact("nats://u:p/w@h:1"), "nats://u:***@h:1");
        assert_eq!(
            redact("nats://a:1@h1,nats://b:2@h2"),
            "nats://a:***@h1,nats://b:***@h2"
        );
    }
}
