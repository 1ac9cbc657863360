//! [`Logger`]: a `log::Log` with the layer's binary capture.

use crate::clock::unix_ns;
use crate::layer::thread_number;
use crate::wire::{self, Enc};
use ringwal::ByteEmitter;
use std::fmt::Write as _;

/// A [`log::Log`] writing each record in binary (level, time, thread, target, module, file,
/// line, the message formatted straight into the ring, then the record's key-values, typed as
/// the `Layer`'s fields), read back by the same [`Decoder`](crate::Decoder) and `ringwal cat`
/// as the [`Layer`](crate::Layer)'s events: a key-value is a field after `message`.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let (_layer, guard) = ringwal_tracing::Builder::new(dir.path()).build().unwrap();
/// let logger = guard.logger(log::LevelFilter::Info);
/// log::Log::log(&logger, &log::Record::builder()
///     .level(log::Level::Warn).target("disk").args(format_args!("{}% free", 3))
///     .key_values(&[("mount", "/var")]).build());
/// guard.shutdown().unwrap();
/// let mut decoder = ringwal_tracing::Decoder::new();
/// let events: Vec<_> = ringwal::Reader::open(dir.path()).unwrap().iter()
///     .filter_map(|e| match decoder.decode(&e.unwrap().payload).unwrap() {
///         ringwal_tracing::Record::Event(e) => Some(e),
///         _ => None,
///     }).collect();
/// assert_eq!(events[0].message().unwrap().to_string(), "3% free");
/// assert_eq!(events[0].field("mount"), Some(&ringwal_tracing::Value::Str("/var".into())));
/// ```
///
/// Install it with `log::set_boxed_logger(Box::new(logger))` and `log::set_max_level(..)`
/// (or [`Logger::install`]).
#[derive(Debug, Clone)]
pub struct Logger {
    emitter: ByteEmitter,
    level: log::LevelFilter,
    event_bytes: usize,
}

fn level_byte(level: log::Level) -> u8 {
    match level {
        log::Level::Trace => 0,
        log::Level::Debug => 1,
        log::Level::Info => 2,
        log::Level::Warn => 3,
        log::Level::Error => 4,
    }
}

impl Logger {
    /// Logs records up to `level` through `emitter`, reserving `event_bytes` per record.
    pub fn new(emitter: ByteEmitter, level: log::LevelFilter, event_bytes: usize) -> Self {
        // Not `clamp`: a tiny ring's largest record may be under 64 bytes (it would panic).
        let event_bytes = event_bytes.max(64).min(emitter.max_record_len());
        Logger {
            emitter,
            level,
            event_bytes,
        }
    }

    /// Installs it as the `log` crate's logger (and sets the max level). Fails if one is set.
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        let level = self.level;
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(level);
        Ok(())
    }
}

/// Writes a record's key-values: a name, then the value typed as the `Layer` types a field
/// (`u64`, `i64`, `f64`, `bool`, a string; anything else formatted, as `Debug` fields are).
struct KeyValues<'e, 'a>(&'e mut Enc<'a>);

impl<'kvs> log::kv::VisitSource<'kvs> for KeyValues<'_, '_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        value.visit(KeyValue {
            enc: self.0,
            name: key.as_str(),
        })
    }
}

/// One key-value's value, named `name`.
struct KeyValue<'e, 'a, 'n> {
    enc: &'e mut Enc<'a>,
    name: &'n str,
}

impl KeyValue<'_, '_, '_> {
    fn fixed(&mut self, ty: u8, bytes: &[u8]) -> Result<(), log::kv::Error> {
        if self.enc.kv(self.name, ty, bytes.len()) {
            self.enc.put(bytes);
        }
        Ok(())
    }
}

impl<'v> log::kv::VisitValue<'v> for KeyValue<'_, '_, '_> {
    fn visit_any(&mut self, value: log::kv::Value<'_>) -> Result<(), log::kv::Error> {
        if self.enc.kv(self.name, wire::T_DEBUG, 4) {
            self.enc.text(|w| write!(w, "{value}"));
        }
        Ok(())
    }
    fn visit_u64(&mut self, value: u64) -> Result<(), log::kv::Error> {
        self.fixed(wire::T_U64, &value.to_le_bytes())
    }
    fn visit_i64(&mut self, value: i64) -> Result<(), log::kv::Error> {
        self.fixed(wire::T_I64, &value.to_le_bytes())
    }
    fn visit_f64(&mut self, value: f64) -> Result<(), log::kv::Error> {
        self.fixed(wire::T_F64, &value.to_le_bytes())
    }
    fn visit_bool(&mut self, value: bool) -> Result<(), log::kv::Error> {
        self.fixed(wire::T_BOOL, &[u8::from(value)])
    }
    fn visit_str(&mut self, value: &str) -> Result<(), log::kv::Error> {
        if self.enc.kv(self.name, wire::T_STR, 4) {
            self.enc.text(|w| w.write_str(value));
        }
        Ok(())
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let _ = self.emitter.emit_with(self.event_bytes, |buf| {
            // Version 1: the time in Unix nanoseconds (a `Logger` may write to a log no
            // layer writes clock records to).
            let mut enc = Enc::new(buf, wire::VERSION_NS, wire::KIND_LOG);
            enc.u8(level_byte(record.level()));
            enc.u64(unix_ns());
            enc.u64(thread_number());
            enc.u32(record.line().unwrap_or(wire::NO_LINE));
            enc.str16(Some(record.target()));
            enc.str16(record.module_path());
            enc.str16(record.file());
            enc.text(|w| w.write_fmt(*record.args()));
            // Each key-value whole or (no room) not at all, the record then flagged
            // truncated; the encoder ignores what follows a cut.
            let _ = record.key_values().visit(&mut KeyValues(&mut enc));
            enc.finish()
        });
    }

    fn flush(&self) {
        let _ = self.emitter.flush();
    }
}
