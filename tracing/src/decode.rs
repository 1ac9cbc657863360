//! Reading tracing records back: [`Decoder`] turns the payloads of a log's entries into
//! events and spans, keeping the callsites and the open spans it has seen.

use crate::wire;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing_core::Level;

/// A callsite's static metadata, as written to the log the first time it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callsite {
    /// The event's or span's name (for events, `event file:line` as tracing makes it).
    pub name: String,
    /// The target (by default the module path).
    pub target: String,
    /// The level.
    pub level: Level,
    /// Whether this is a span's callsite (otherwise an event's).
    pub is_span: bool,
    /// The module path, if known.
    pub module_path: Option<String>,
    /// The source file, if known.
    pub file: Option<String>,
    /// The source line, if known.
    pub line: Option<u32>,
    /// The field names, in the order of their indices.
    pub fields: Vec<String>,
}

/// A field's value, as typed when it was recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `record_u64`.
    U64(u64),
    /// `record_i64`.
    I64(i64),
    /// `record_f64`.
    F64(f64),
    /// `record_bool`.
    Bool(bool),
    /// `record_str`.
    Str(String),
    /// `record_debug` (also `%display` values and the message), already formatted.
    Debug(String),
}

impl fmt::Display for Value {
    /// As `tracing_subscriber::fmt` prints a field: strings quoted, the rest as-is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            // `1.0`, `1e20`, `NaN`: `fmt` prints an f64 with `Debug`.
            Value::F64(v) => write!(f, "{v:?}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(v) => write!(f, "{v:?}"),
            Value::Debug(v) => f.write_str(v),
        }
    }
}

/// A field: its name and value.
pub type Field = (String, Value);

/// A span as last known: its fields as recorded at its opening and since.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The subscriber's span id (reused after the span closes).
    pub id: u64,
    /// The parent span's id, if any.
    pub parent: Option<u64>,
    /// The span's callsite (name, target, level).
    pub callsite: Arc<Callsite>,
    /// The fields recorded so far.
    pub fields: Vec<Field>,
    /// A record of this span (its opening, or a later `record`) did not fit its reservation:
    /// fields after the last one shown were cut.
    pub truncated: bool,
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The callsite (level, target, name, file, line, field names).
    pub callsite: Arc<Callsite>,
    /// When it was recorded, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The recording thread: a small number per thread of the writing process (1, 2, ...).
    pub thread: u64,
    /// The current span's id when it was recorded, if any.
    pub span: Option<u64>,
    /// The spans it was recorded in, outermost first (those the decoder saw open).
    pub scope: Vec<Arc<Span>>,
    /// The fields, the message among them (named `message`).
    pub fields: Vec<Field>,
    /// The record did not fit its reservation: fields after the last one shown were cut.
    pub truncated: bool,
}

impl Event {
    /// The level.
    pub fn level(&self) -> Level {
        self.callsite.level
    }

    /// The target.
    pub fn target(&self) -> &str {
        &self.callsite.target
    }

    /// When it was recorded.
    pub fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.time_ns)
    }

    /// The `message` field, if any.
    pub fn message(&self) -> Option<&Value> {
        self.field("message")
    }

    /// The value of the field named `name`, if recorded.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// What one record was.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Record {
    /// An event (from the `Layer` or the `Logger`).
    Event(Event),
    /// A span was opened.
    SpanOpened(Arc<Span>),
    /// Values were recorded into a span (the span as it is now; `None` if the decoder did
    /// not see it open, e.g. a log read from a later segment on).
    SpanRecorded(u64, Option<Arc<Span>>),
    /// A span closed.
    SpanClosed(u64),
    /// A callsite's metadata (the decoder keeps it for the records that follow).
    Callsite(Arc<Callsite>),
    /// A writing process started (the decoder forgets the previous one's callsites, spans
    /// and clock).
    Session {
        /// The writing process's id.
        pid: u32,
    },
    /// The writing process tied its timestamp clock to Unix time (the decoder keeps it to
    /// convert the times of the records that follow; see `Builder::tsc`).
    Clock {
        /// The Unix time of the anchor, in nanoseconds.
        unix_ns: u64,
    },
    /// Not a tracing record (for example a `MakeWriter` line, which is text).
    Other,
}

/// Why a record could not be decoded. The error is that record's; the decoder goes on with
/// the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The record ends in the middle of a value (at this byte offset).
    Truncated {
        /// The offset in the payload.
        offset: usize,
    },
    /// A tracing record of a format version this decoder does not know.
    Version(u8),
    /// An unknown record kind.
    Kind(u8),
    /// An unknown field type byte.
    FieldType(u8),
    /// An event or span whose callsite metadata is not in the part of the log read so far.
    UnknownCallsite(u64),
    /// A timestamp in clock ticks with no clock record earlier in its session in the part of
    /// the log read so far.
    UnknownClock,
    /// A field index beyond its callsite's field names.
    FieldIndex(u8),
    /// A `log` record's key-value without a name (at this byte offset).
    Unnamed {
        /// The offset in the payload.
        offset: usize,
    },
    /// Text that is not UTF-8 (at this byte offset).
    Utf8 {
        /// The offset in the payload.
        offset: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { offset } => write!(f, "record cut short at byte {offset}"),
            DecodeError::Version(v) => write!(f, "unknown tracing record version {v}"),
            DecodeError::Kind(k) => write!(f, "unknown tracing record kind {k}"),
            DecodeError::FieldType(t) => write!(f, "unknown field type {t}"),
            DecodeError::UnknownCallsite(id) => {
                write!(f, "callsite {id:#x} not described earlier in the log")
            }
            DecodeError::UnknownClock => {
                write!(
                    f,
                    "timestamp in clock ticks with no clock record earlier in the log"
                )
            }
            DecodeError::FieldIndex(i) => write!(f, "field index {i} beyond the callsite's"),
            DecodeError::Unnamed { offset } => {
                write!(f, "key-value at byte {offset} has no name")
            }
            DecodeError::Utf8 { offset } => write!(f, "text at byte {offset} is not UTF-8"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes tracing records in log order, remembering callsites and open spans.
///
/// Feed it every entry's payload in order ([`ringwal::Reader`]); gaps are the entries'
/// (`dropped_before`, `refused_before`). Never panics on any input: a corrupt or truncated
/// record, or one whose callsite was not described earlier, is an error for that record.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let dir = tempfile::tempdir().unwrap();
/// let (layer, guard) = ringwal_tracing::Builder::new(dir.path()).build().unwrap();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::warn!(disk = "sda", free_pct = 3.5, "disk nearly full");
/// });
/// guard.shutdown().unwrap();
///
/// let mut decoder = ringwal_tracing::Decoder::new();
/// let mut events = Vec::new();
/// for entry in ringwal::Reader::open(dir.path()).unwrap().iter() {
///     if let ringwal_tracing::Record::Event(e) = decoder.decode(&entry.unwrap().payload).unwrap() {
///         events.push(e);
///     }
/// }
/// assert_eq!(events[0].level(), tracing::Level::WARN);
/// assert_eq!(events[0].message().unwrap().to_string(), "disk nearly full");
/// assert_eq!(events[0].field("free_pct"), Some(&ringwal_tracing::Value::F64(3.5)));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    callsites: HashMap<u64, Arc<Callsite>>,
    spans: HashMap<u64, Arc<Span>>,
    /// The session's last clock record: anchor ticks, anchor Unix ns, scale.
    clock: Option<(u64, u64, u64)>,
}

struct Cur<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError::Truncated { offset: self.pos }),
        }
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn text(&mut self, n: usize) -> Result<String, DecodeError> {
        let offset = self.pos;
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Utf8 { offset })
    }
    fn str16(&mut self) -> Result<Option<String>, DecodeError> {
        match self.u16()? {
            wire::NONE16 => Ok(None),
            n => self.text(usize::from(n)).map(Some),
        }
    }
    fn str32(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        self.text(n)
    }
    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// `r`, or (in a record flagged truncated) `None` where it ran out.
fn lenient<T>(r: Result<T, DecodeError>, truncated: bool) -> Result<Option<T>, DecodeError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(DecodeError::Truncated { .. }) if truncated => Ok(None),
        Err(e) => Err(e),
    }
}

fn level_from(b: u8) -> Level {
    match b {
        0 => Level::TRACE,
        1 => Level::DEBUG,
        2 => Level::INFO,
        3 => Level::WARN,
        _ => Level::ERROR,
    }
}

fn opt(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

impl Decoder {
    /// A decoder that has seen nothing yet.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// The callsites described so far (by id).
    pub fn callsites(&self) -> &HashMap<u64, Arc<Callsite>> {
        &self.callsites
    }

    /// Takes in a preamble frame's payload ([`ringwal::Iter::take_preamble`]): the callsite
    /// metadata, the clock and the spans open at that point, which the writer repeats at the
    /// start of each segment, so that a reader starting at any segment can decode the events
    /// after it and show them in their spans. Hand each one over before the record it was
    /// read with. A callsite, clock or open span (as last recorded) is learned, as
    /// [`decode`](Self::decode) would; anything else — another program's preamble, a session
    /// — changes nothing.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tracing_subscriber::layer::SubscriberExt as _;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (layer, guard) = ringwal_tracing::Builder::new(dir.path())
    ///     .writer(|w| w.segment_bytes(4096))
    ///     .build()?;
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     for i in 0..200 {
    ///         tracing::info!(i, "tick");
    ///     }
    /// });
    /// guard.shutdown()?;
    ///
    /// // Read only the newest segment: its preamble describes the callsite.
    /// let reader = ringwal::Reader::open(dir.path())?;
    /// let newest = reader.segments()?.last().unwrap().first_seq;
    /// let mut iter = reader.from_seq(newest);
    /// let mut decoder = ringwal_tracing::Decoder::new();
    /// let mut events = 0;
    /// while let Some(entry) = iter.next() {
    ///     let entry = entry?;
    ///     for preamble in iter.take_preamble() {
    ///         decoder.decode_preamble(&preamble)?;
    ///     }
    ///     if let ringwal_tracing::Record::Event(e) = decoder.decode(&entry.payload)? {
    ///         assert_eq!(e.message().unwrap().to_string(), "tick");
    ///         events += 1;
    ///     }
    /// }
    /// assert!(events > 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn decode_preamble(&mut self, payload: &[u8]) -> Result<(), DecodeError> {
        // Bytes 0..2 the tag, 2 the version, 3 the kind (see `wire`).
        match payload.get(3) {
            Some(kind)
                if wire::is_tracing_record(payload)
                    && matches!(
                        kind & !wire::TRUNCATED,
                        wire::KIND_CALLSITE | wire::KIND_CLOCK | wire::KIND_SPAN_NEW
                    ) =>
            {
                self.decode(payload).map(drop)
            }
            _ => Ok(()),
        }
    }

    /// Decodes the next record's payload.
    pub fn decode(&mut self, payload: &[u8]) -> Result<Record, DecodeError> {
        if !wire::is_tracing_record(payload) {
            return Ok(Record::Other);
        }
        let mut c = Cur {
            bytes: payload,
            pos: 2,
        };
        let version = c.u8()?;
        if version != wire::VERSION && version != wire::VERSION_NS {
            return Err(DecodeError::Version(version));
        }
        let kind_byte = c.u8()?;
        let truncated = kind_byte & wire::TRUNCATED != 0;
        match kind_byte & !wire::TRUNCATED {
            wire::KIND_SESSION => {
                let pid = c.u32()?;
                c.u64()?;
                self.callsites.clear();
                self.spans.clear();
                self.clock = None;
                Ok(Record::Session { pid })
            }
            wire::KIND_CLOCK if version == wire::VERSION => {
                let ticks = c.u64()?;
                let unix_ns = c.u64()?;
                let scale = c.u64()?;
                if !c.done() {
                    return Err(DecodeError::Truncated { offset: c.pos });
                }
                self.clock = Some((ticks, unix_ns, scale));
                Ok(Record::Clock { unix_ns })
            }
            wire::KIND_CALLSITE => {
                let id = c.u64()?;
                let level = level_from(c.u8()?);
                let is_span = c.u8()? != 0;
                let line = c.u32()?;
                let name = c.str16()?.unwrap_or_default();
                let target = c.str16()?.unwrap_or_default();
                let module_path = c.str16()?;
                let file = c.str16()?;
                let n = c.u8()?;
                let mut fields = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    fields.push(c.str16()?.unwrap_or_default());
                }
                let callsite = Arc::new(Callsite {
                    name,
                    target,
                    level,
                    is_span,
                    module_path,
                    file,
                    line: (line != wire::NO_LINE).then_some(line),
                    fields,
                });
                self.callsites.insert(id, callsite.clone());
                Ok(Record::Callsite(callsite))
            }
            wire::KIND_EVENT => {
                let id = c.u64()?;
                let time = c.u64()?;
                let thread = c.u64()?;
                let span = opt(c.u64()?);
                let callsite = self.callsite(id)?;
                let time_ns = self.time(version, time)?;
                let fields = fields(&mut c, &callsite)?;
                let (callsite, fields) = from_log_tracer(callsite, fields);
                Ok(Record::Event(Event {
                    scope: self.scope(span),
                    callsite,
                    time_ns,
                    thread,
                    span,
                    fields,
                    truncated,
                }))
            }
            wire::KIND_SPAN_NEW => {
                let id = c.u64()?;
                let parent = opt(c.u64()?);
                let callsite = self.callsite(c.u64()?)?;
                c.u64()?;
                c.u64()?;
                let fields = fields(&mut c, &callsite)?;
                let span = Arc::new(Span {
                    id,
                    parent,
                    callsite,
                    fields,
                    truncated,
                });
                self.spans.insert(id, span.clone());
                Ok(Record::SpanOpened(span))
            }
            wire::KIND_SPAN_RECORD => {
                let id = c.u64()?;
                c.u64()?;
                let Some(span) = self.spans.get_mut(&id) else {
                    return Ok(Record::SpanRecorded(id, None));
                };
                let new = fields(&mut c, &span.callsite)?;
                let s = Arc::make_mut(span);
                s.truncated |= truncated;
                for (name, value) in new {
                    match s.fields.iter_mut().find(|(n, _)| *n == name) {
                        Some(slot) => slot.1 = value,
                        None => s.fields.push((name, value)),
                    }
                }
                Ok(Record::SpanRecorded(id, Some(span.clone())))
            }
            wire::KIND_SPAN_CLOSE => {
                let id = c.u64()?;
                c.u64()?;
                self.spans.remove(&id);
                Ok(Record::SpanClosed(id))
            }
            wire::KIND_LOG => {
                let level = level_from(c.u8()?);
                let time_ns = self.time(version, c.u64()?)?;
                let thread = c.u64()?;
                let line = c.u32()?;
                // A record cut short (flagged) keeps what fit: the rest reads as absent.
                let target = lenient(c.str16(), truncated)?.flatten().unwrap_or_default();
                let module_path = lenient(c.str16(), truncated)?.flatten();
                let file = lenient(c.str16(), truncated)?.flatten();
                let message = lenient(c.str32(), truncated)?.unwrap_or_default();
                let mut fields = vec![("message".to_owned(), Value::Debug(message))];
                // The key-values, each whole (the encoder cuts between them).
                while !c.done() {
                    let offset = c.pos;
                    let name = c.str16()?.ok_or(DecodeError::Unnamed { offset })?;
                    let value = value(&mut c)?;
                    fields.push((name, value));
                }
                let callsite = Arc::new(Callsite {
                    name: "log event".to_owned(),
                    target,
                    level,
                    is_span: false,
                    module_path,
                    file,
                    line: (line != wire::NO_LINE).then_some(line),
                    fields: fields.iter().map(|(n, _)| n.clone()).collect(),
                });
                Ok(Record::Event(Event {
                    callsite,
                    time_ns,
                    thread,
                    span: None,
                    scope: Vec::new(),
                    fields,
                    truncated,
                }))
            }
            k => Err(DecodeError::Kind(k)),
        }
    }

    /// A record's time in Unix nanoseconds: as written in version 1, converted by the
    /// session's clock in version 2.
    fn time(&self, version: u8, time: u64) -> Result<u64, DecodeError> {
        if version == wire::VERSION_NS {
            return Ok(time);
        }
        let (ticks, unix_ns, scale) = self.clock.ok_or(DecodeError::UnknownClock)?;
        Ok(crate::clock::to_unix_ns(time, ticks, unix_ns, scale))
    }

    fn callsite(&self, id: u64) -> Result<Arc<Callsite>, DecodeError> {
        self.callsites
            .get(&id)
            .cloned()
            .ok_or(DecodeError::UnknownCallsite(id))
    }

    /// The open spans from the outermost down to `span` (bounded: a cycle in corrupt input
    /// cannot loop).
    fn scope(&self, mut span: Option<u64>) -> Vec<Arc<Span>> {
        let mut scope = Vec::new();
        while let Some(s) = span.and_then(|id| self.spans.get(&id)) {
            if scope.len() >= 64 {
                break;
            }
            scope.push(s.clone());
            span = s.parent;
        }
        scope.reverse();
        scope
    }
}

/// A `log` record bridged by `tracing_log::LogTracer` arrives as an event of target `log`
/// whose `log.target`, `log.module_path`, `log.file` and `log.line` fields say where it came
/// from: as `fmt` does, show it with that metadata, without those fields (so `--target`
/// filters on the `log` record's own target). Other events are returned as they are.
fn from_log_tracer(callsite: Arc<Callsite>, fields: Vec<Field>) -> (Arc<Callsite>, Vec<Field>) {
    if callsite.target != "log" || !fields.iter().any(|(n, _)| n == "log.target") {
        return (callsite, fields);
    }
    let mut meta = Callsite::clone(&callsite);
    let mut kept = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let text = match &value {
            Value::Str(s) | Value::Debug(s) => Some(s.clone()),
            _ => None,
        };
        match (name.as_str(), text) {
            ("log.target", Some(t)) => meta.target = t,
            ("log.module_path", Some(m)) => meta.module_path = Some(m),
            ("log.file", Some(f)) => meta.file = Some(f),
            ("log.line", _) => {
                if let Value::U64(line) = value {
                    meta.line = u32::try_from(line).ok();
                }
            }
            (n, _) if n.starts_with("log.") => {}
            _ => kept.push((name, value)),
        }
    }
    meta.fields.retain(|n| !n.starts_with("log."));
    (Arc::new(meta), kept)
}

fn fields(c: &mut Cur<'_>, callsite: &Callsite) -> Result<Vec<Field>, DecodeError> {
    let mut out = Vec::new();
    while !c.done() {
        let index = c.u8()?;
        let name = callsite
            .fields
            .get(usize::from(index))
            .ok_or(DecodeError::FieldIndex(index))?
            .clone();
        out.push((name, value(c)?));
    }
    Ok(out)
}

/// A field's type byte and value.
fn value(c: &mut Cur<'_>) -> Result<Value, DecodeError> {
    Ok(match c.u8()? {
        wire::T_U64 => Value::U64(c.u64()?),
        wire::T_I64 => Value::I64(c.u64()? as i64),
        wire::T_F64 => Value::F64(f64::from_bits(c.u64()?)),
        wire::T_BOOL => Value::Bool(c.u8()? != 0),
        wire::T_STR => Value::Str(c.str32()?),
        wire::T_DEBUG => Value::Debug(c.str32()?),
        t => return Err(DecodeError::FieldType(t)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `version` and `kind` with `body`.
    fn rec(version: u8, kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![wire::MAGIC[0], wire::MAGIC[1], version, kind];
        r.extend_from_slice(body);
        r
    }

    fn words(ws: &[u64]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn session() -> Vec<u8> {
        let mut body = 7u32.to_le_bytes().to_vec();
        body.extend(words(&[0]));
        rec(wire::VERSION, wire::KIND_SESSION, &body)
    }

    fn callsite(version: u8) -> Vec<u8> {
        let mut body = words(&[0x1000]);
        body.extend([2, 0]); // INFO, an event
        body.extend(wire::NO_LINE.to_le_bytes());
        for s in ["tick", "t"] {
            body.extend((s.len() as u16).to_le_bytes());
            body.extend(s.as_bytes());
        }
        body.extend(wire::NONE16.to_le_bytes());
        body.extend(wire::NONE16.to_le_bytes());
        body.push(0); // no fields
        rec(version, wire::KIND_CALLSITE, &body)
    }

    fn clock(ticks: u64, unix_ns: u64, scale: u64) -> Vec<u8> {
        rec(
            wire::VERSION,
            wire::KIND_CLOCK,
            &words(&[ticks, unix_ns, scale]),
        )
    }

    fn event(version: u8, time: u64) -> Vec<u8> {
        rec(version, wire::KIND_EVENT, &words(&[0x1000, time, 1, 0]))
    }

    fn time(d: &mut Decoder, record: &[u8]) -> Result<u64, DecodeError> {
        match d.decode(record)? {
            Record::Event(e) => Ok(e.time_ns),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn times_convert_by_the_last_clock_record_of_the_session() {
        let mut d = Decoder::new();
        d.decode(&session()).unwrap();
        d.decode(&callsite(wire::VERSION)).unwrap();
        assert_eq!(
            time(&mut d, &event(wire::VERSION, 3_000)),
            Err(DecodeError::UnknownClock)
        );
        // 3 ticks per ns, anchored at 3,000 ticks = 1,000,000 ns.
        let third = crate::clock::measure((0, 0), (3, 1)).unwrap();
        assert_eq!(
            d.decode(&clock(3_000, 1_000_000, third)),
            Ok(Record::Clock { unix_ns: 1_000_000 })
        );
        assert_eq!(time(&mut d, &event(wire::VERSION, 6_000)), Ok(1_001_000));
        assert_eq!(time(&mut d, &event(wire::VERSION, 2_997)), Ok(999_999));
        // A later anchor, at 1 ns per tick: it is the one used.
        d.decode(&clock(10_000, 2_000_000, crate::clock::NS_SCALE))
            .unwrap();
        assert_eq!(time(&mut d, &event(wire::VERSION, 10_500)), Ok(2_000_500));
        // Version 1 times are nanoseconds, clock or not.
        assert_eq!(time(&mut d, &event(wire::VERSION_NS, 42)), Ok(42));
        // A new session forgets the clock (and the callsites).
        d.decode(&session()).unwrap();
        d.decode(&callsite(wire::VERSION)).unwrap();
        assert_eq!(
            time(&mut d, &event(wire::VERSION, 10_500)),
            Err(DecodeError::UnknownClock)
        );
        // A span's time is not converted: no clock needed.
        let span = rec(wire::VERSION, wire::KIND_SPAN_CLOSE, &words(&[5, 99]));
        assert_eq!(d.decode(&span), Ok(Record::SpanClosed(5)));
        // A segment preamble's clock record is learned.
        d.decode_preamble(&clock(0, 5_000, crate::clock::NS_SCALE))
            .unwrap();
        assert_eq!(time(&mut d, &event(wire::VERSION, 7)), Ok(5_007));
    }

    #[test]
    fn a_clock_record_of_another_length_or_version_is_an_error() {
        let mut d = Decoder::new();
        let mut long = clock(1, 2, 3);
        long.push(0);
        assert_eq!(d.decode(&long), Err(DecodeError::Truncated { offset: 28 }));
        let short = &clock(1, 2, 3)[..27];
        assert!(matches!(
            d.decode(short),
            Err(DecodeError::Truncated { .. })
        ));
        let v1 = rec(wire::VERSION_NS, wire::KIND_CLOCK, &words(&[1, 2, 3]));
        assert_eq!(d.decode(&v1), Err(DecodeError::Kind(wire::KIND_CLOCK)));
        d.decode(&callsite(wire::VERSION)).unwrap();
        assert_eq!(
            time(&mut d, &event(wire::VERSION, 1)),
            Err(DecodeError::UnknownClock)
        );
    }
}
