//! The `tracing_subscriber::Layer`: binary capture on the emitting thread, straight into the
//! byte ring.

use crate::callsites::Callsites;
use crate::clock::{unix_ns, Anchor, Clock};
use crate::open_spans::OpenSpans;
use crate::wire::{self, Enc};
use ringwal::ByteEmitter;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The default room reserved for one event's record (bytes); see
/// [`Builder::event_bytes`](crate::Builder::event_bytes).
pub const DEFAULT_EVENT_BYTES: usize = 512;

/// A [`tracing_subscriber::Layer`] writing every event and span to a ringwal log in binary:
/// the callsite's id, a timestamp, the thread, the current span and the field values, typed,
/// encoded in place in the writer's byte ring ([`ByteEmitter::emit_with`]) on the emitting
/// thread. No allocation, no lock (but the first time a callsite is seen, and a `try_lock`,
/// which never waits, by the one thread that renews the clock's anchor about once a second:
/// see [`Builder::tsc`](crate::Builder::tsc)), and under [`ringwal::Idle::Poll`] no syscall.
/// Formatting happens when the log is read
/// ([`Decoder`](crate::Decoder), `ringwal cat`).
///
/// A full ring follows the writer's [`Overflow`](ringwal::Overflow) policy; every refused
/// event is counted in the log as a gap where it happened.
///
/// Make one with [`Builder::build`](crate::Builder::build) (or [`init`](crate::init)).
///
/// One log per subscriber: a clone of a `Layer` writes into the same log, so put clones only
/// in subscribers that share one registry. Two registries hand out the same span ids, and
/// their spans would mix in the log (an event of one shown in the other's span).
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let dir = tempfile::tempdir().unwrap();
/// let (layer, guard) = ringwal_tracing::Builder::new(dir.path()).build().unwrap();
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(user = 42, "logged in");
/// });
/// guard.flush().unwrap();
/// ```
#[derive(Clone)]
pub struct Layer {
    emitter: ByteEmitter,
    callsites: Arc<Callsites>,
    clock: Arc<Clock>,
    /// The record format: [`wire::VERSION`] (times in counter ticks) or
    /// [`wire::VERSION_NS`] (Unix nanoseconds), as the clock says.
    version: u8,
    event_bytes: usize,
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("event_bytes", &self.event_bytes)
            .field("tsc", &self.clock.is_tsc())
            .finish_non_exhaustive()
    }
}

/// A small number per thread (1, 2, ...), given the first time the thread records.
pub(crate) fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static THIS: Cell<u64> = const { Cell::new(0) };
    }
    THIS.with(|this| {
        let mut n = this.get();
        if n == 0 {
            n = NEXT.fetch_add(1, Ordering::Relaxed);
            this.set(n);
        }
        n
    })
}

fn callsite_id(meta: &'static Metadata<'static>) -> u64 {
    meta as *const Metadata<'static> as usize as u64
}

/// The room a callsite's metadata record gets (longer names are cut, flagged truncated).
const CALLSITE_BYTES: usize = 4096;

/// The version of the records written with `clock`.
fn version(clock: &Clock) -> u8 {
    if clock.is_tsc() {
        wire::VERSION
    } else {
        wire::VERSION_NS
    }
}

/// The preamble of every segment the writer creates: a clock record (if the clock is the
/// counter) and a metadata record for each callsite `callsites` has described so far, so that
/// a reader starting at any segment (after rotation, or retention) can decode the events after
/// it and convert their times. Runs on the writer's thread.
///
/// Then the spans open at that point of the log ([`OpenSpans`], kept from the records the
/// writer appends), so the events after it show in their spans.
pub(crate) fn segment_preamble(
    callsites: Arc<Callsites>,
    clock: Arc<Clock>,
) -> ringwal::SegmentPreamble {
    // Both closures run on the writer's thread: the lock is never contended.
    let spans = Arc::new(Mutex::new(OpenSpans::default()));
    let observed = Arc::clone(&spans);
    ringwal::SegmentPreamble::new(move |preamble| {
        let mut buf = vec![0u8; CALLSITE_BYTES];
        let version = version(&clock);
        if clock.is_tsc() {
            let n = encode_clock(&mut buf, clock.anchor());
            let _ = preamble.push(&buf[..n]);
        }
        for meta in callsites.described() {
            let n = encode_callsite(&mut buf, version, callsite_id(meta), meta);
            // At most CALLSITE_BYTES: far below the frame limit.
            let _ = preamble.push(&buf[..n]);
        }
        let spans = spans.lock().unwrap_or_else(PoisonError::into_inner);
        // A span's record is at most its fields' records' sizes: far below the frame limit.
        spans.write(|record| {
            let _ = preamble.push(record);
        });
    })
    .with_observer(move |payload| {
        observed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(payload);
    })
}

impl Layer {
    /// A layer emitting through `emitter`, knowing which callsites `callsites` says were
    /// described (shared with the writer's [`segment_preamble`]).
    pub(crate) fn new(
        emitter: ByteEmitter,
        event_bytes: usize,
        callsites: Arc<Callsites>,
        clock: Arc<Clock>,
    ) -> Self {
        // Not `clamp`: a tiny ring's largest record may be under 64 bytes (it would panic).
        let event_bytes = event_bytes.max(64).min(emitter.max_record_len());
        let layer = Layer {
            emitter,
            callsites,
            version: version(&clock),
            clock,
            event_bytes,
        };
        // A session record: callsite ids (addresses) and clock ticks are only meaningful
        // within one process. Then the clock the session's timestamps are read with.
        let _ = layer.emitter.emit_with(16, |buf| {
            let mut enc = Enc::new(buf, layer.version, wire::KIND_SESSION);
            enc.u32(std::process::id());
            enc.u64(unix_ns());
            enc.finish()
        });
        if layer.clock.is_tsc() {
            layer.write_clock(layer.clock.anchor());
        }
        layer
    }

    /// Writes a clock record; whether the ring took it.
    fn write_clock(&self, anchor: Anchor) -> bool {
        self.emitter
            .emit_with(CLOCK_BYTES, |buf| encode_clock(buf, anchor))
            .is_ok()
    }

    /// A timestamp in the clock's ticks. When the clock's anchor is due for renewal, the
    /// thread that renews it writes the new anchor first (earlier in the ring than the
    /// caller's record, so earlier in the log).
    #[inline]
    fn stamp(&self) -> u64 {
        let ticks = self.clock.ticks();
        if self.clock.is_due(ticks) {
            self.clock.renew(|anchor| self.write_clock(anchor));
        }
        ticks
    }

    /// The writer's emitter this layer writes through (for [`flush`](ByteEmitter::flush) or
    /// [`stats`](ByteEmitter::stats)).
    pub fn emitter(&self) -> &ByteEmitter {
        &self.emitter
    }

    /// Writes `meta`'s record unless this process already did: before the caller's record,
    /// from the same thread, so earlier in the ring and in the log.
    fn announce(&self, meta: &'static Metadata<'static>) {
        let id = callsite_id(meta);
        self.callsites.announce(id as usize, |in_table| {
            if in_table {
                self.callsites.describe(meta);
            }
            self.emitter
                .emit_with(self.emitter.max_record_len().min(CALLSITE_BYTES), |buf| {
                    encode_callsite(buf, self.version, id, meta)
                })
                .is_ok()
        });
    }
}

/// A clock record's size.
const CLOCK_BYTES: usize = wire::HEADER + 24;

fn encode_clock(buf: &mut [u8], anchor: Anchor) -> usize {
    let mut enc = Enc::new(buf, wire::VERSION, wire::KIND_CLOCK);
    enc.u64s([anchor.ticks, anchor.unix_ns, anchor.scale]);
    enc.finish()
}

fn encode_callsite(
    buf: &mut [u8],
    version: u8,
    id: u64,
    meta: &'static Metadata<'static>,
) -> usize {
    let mut enc = Enc::new(buf, version, wire::KIND_CALLSITE);
    enc.u64(id);
    enc.u8(wire::level_byte(meta.level()));
    enc.u8(u8::from(meta.is_span()));
    enc.u32(meta.line().unwrap_or(wire::NO_LINE));
    enc.str16(Some(meta.name()));
    enc.str16(Some(meta.target()));
    enc.str16(meta.module_path());
    enc.str16(meta.file());
    let fields = meta.fields();
    enc.u8(fields.len().min(255) as u8);
    for field in fields.iter().take(255) {
        enc.str16(Some(field.name()));
    }
    enc.finish()
}

/// Field values straight into the record.
impl Visit for Enc<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field_debug(field.index(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field_str(field.index(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field_u64(field.index(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field_i64(field.index(), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field_f64(field.index(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field_bool(field.index(), value);
    }
    /// As `fmt` shows an error: its `Display`, then its chain of sources,
    /// `failed error.sources=[disk gone, ...]`, as text.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.field(field.index(), wire::T_DEBUG, 4) {
            self.text(|w| {
                use std::fmt::Write as _;
                write!(w, "{value}")?;
                let mut source = value.source();
                if source.is_some() {
                    write!(w, " {}.sources=[", field.name())?;
                }
                // Bounded: a `source` chain may loop (an error may name itself); the
                // record's room would end it too.
                let mut shown = 0;
                while let Some(e) = source.filter(|_| shown < 64) {
                    if shown > 0 {
                        w.write_str(", ")?;
                    }
                    write!(w, "{e}")?;
                    shown += 1;
                    source = e.source();
                }
                if shown > 0 {
                    w.write_char(']')?;
                }
                Ok(())
            });
        }
    }
}

/// The spans are looked up through the registry ([`LookupSpan`]) so that under a per-layer
/// filter (`Layer::with_filter`) a span or event names its nearest span this layer records,
/// as `fmt` shows it: a span the filter disables was never written, and naming it would cut
/// the event off from the enabled spans around it.
impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        self.announce(meta);
        // The registry resolved the parent (root, explicit or the current span); `parent()`
        // skips the spans this layer's filter disables.
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map_or(0, |p| p.id().into_u64());
        let time = self.stamp();
        let _ = self.emitter.emit_with(self.event_bytes, |buf| {
            let mut enc = Enc::new(buf, self.version, wire::KIND_SPAN_NEW);
            enc.u64s([
                id.into_u64(),
                parent,
                callsite_id(meta),
                time,
                thread_number(),
            ]);
            attrs.record(&mut enc);
            enc.finish()
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let time = self.stamp();
        let _ = self.emitter.emit_with(self.event_bytes, |buf| {
            let mut enc = Enc::new(buf, self.version, wire::KIND_SPAN_RECORD);
            enc.u64s([id.into_u64(), time]);
            values.record(&mut enc);
            enc.finish()
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        self.announce(meta);
        // Root, explicit parent or the current span, as `fmt` picks it (the nearest span this
        // layer's filter enables).
        let span = ctx.event_span(event).map_or(0, |s| s.id().into_u64());
        let time = self.stamp();
        let _ = self.emitter.emit_with(self.event_bytes, |buf| {
            let mut enc = Enc::new(buf, self.version, wire::KIND_EVENT);
            enc.u64s([callsite_id(meta), time, thread_number(), span]);
            event.record(&mut enc);
            enc.finish()
        });
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let time = self.stamp();
        let _ = self.emitter.emit_with(24, |buf| {
            let mut enc = Enc::new(buf, self.version, wire::KIND_SPAN_CLOSE);
            enc.u64s([id.into_u64(), time]);
            enc.finish()
        });
    }
}
