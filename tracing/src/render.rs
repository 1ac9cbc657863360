//! Rendering decoded events as `tracing_subscriber::fmt` does: its default text format and
//! its JSON shape.

use crate::decode::{Event, Field, Span, Value};
use std::fmt::Write as _;

/// `2024-05-01T12:00:00.123456Z`: RFC 3339, UTC, microseconds (as `fmt`'s default timer).
pub fn write_timestamp(time_ns: u64, out: &mut String) {
    let secs = time_ns / 1_000_000_000;
    let micros = (time_ns % 1_000_000_000) / 1_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60
    );
}

/// `s` with the characters a terminal could act on written as escapes, as `fmt` does for
/// messages (ESC, BEL, BS, FF, DEL as `\x1b`.., the C1 controls as `\u{9b}`..): a log line
/// cannot retitle, clear or recolour the terminal that shows it. ringwal applies it to every
/// text it did not quote, field values included.
pub(crate) fn write_escaped(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(at) = rest.find(|c: char| is_terminal_control(c)) {
        out.push_str(&rest[..at]);
        let c = rest[at..].chars().next().unwrap_or_default();
        let _ = match c {
            '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' => write!(out, "\\x{:02x}", c as u32),
            c => write!(out, "\\u{{{:x}}}", c as u32),
        };
        rest = &rest[at + c.len_utf8()..];
    }
    out.push_str(rest);
}

fn is_terminal_control(c: char) -> bool {
    matches!(
        c,
        '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
    )
}

/// A field's value as `fmt` prints it (see [`Value`]'s `Display`), with unquoted text
/// escaped ([`write_escaped`]).
fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Debug(s) => write_escaped(s, out),
        v => {
            let _ = write!(out, "{v}");
        }
    }
}

fn write_fields(fields: &[Field], skip_message: bool, out: &mut String) {
    let mut first = true;
    for (name, value) in fields {
        if skip_message && name == "message" {
            continue;
        }
        if !first {
            out.push(' ');
        }
        first = false;
        if name == "message" {
            // A span's `message` field: bare, as `fmt` prints every `message`.
            write_message(value, out);
            continue;
        }
        // `r#type = 1` is recorded as `r#type`; `fmt` prints it `type=1`.
        out.push_str(name.strip_prefix("r#").unwrap_or(name));
        out.push('=');
        write_value(value, out);
    }
}

/// A `message` as text, never quoted (`message = "..."` records a `str`).
fn write_message(value: &Value, out: &mut String) {
    match value {
        Value::Str(m) => write_escaped(m, out),
        m => write_value(m, out),
    }
}

impl Event {
    /// The event as one line of `tracing_subscriber::fmt`'s default format (no colours, no
    /// newline): `timestamp LEVEL span{fields}:span{fields}: target: message fields`, with
    /// ` [truncated]` at the end of a record that did not fit.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use ringwal_tracing::{Callsite, Event, Value};
    /// # let callsite = Arc::new(Callsite { name: "e".into(), target: "shop".into(),
    /// #     level: tracing::Level::INFO, is_span: false, module_path: None, file: None,
    /// #     line: None, fields: vec![] });
    /// let event = Event { callsite, time_ns: 1_700_000_000_000_000_000, thread: 1, span: None,
    ///     scope: vec![], truncated: false, fields: vec![
    ///         ("message".into(), Value::Debug("order filled".into())),
    ///         ("user".into(), Value::U64(42)), ("order".into(), Value::Str("A-7".into()))] };
    /// let mut line = String::new();
    /// event.write_text(&mut line);
    /// assert_eq!(line, r#"2023-11-14T22:13:20.000000Z  INFO shop: order filled user=42 order="A-7""#);
    /// ```
    pub fn write_text(&self, out: &mut String) {
        write_timestamp(self.time_ns, out);
        let _ = write!(out, " {:>5} ", self.level().as_str());
        for span in &self.scope {
            out.push_str(&span.callsite.name);
            if !span.fields.is_empty() || span.truncated {
                out.push('{');
                write_fields(&span.fields, false, out);
                if span.truncated {
                    out.push_str(if span.fields.is_empty() {
                        "[truncated]"
                    } else {
                        " [truncated]"
                    });
                }
                out.push('}');
            }
            out.push(':');
        }
        if !self.scope.is_empty() {
            out.push(' ');
        }
        out.push_str(self.target());
        out.push_str(": ");
        let message = self.message();
        if let Some(m) = message {
            write_message(m, out);
        }
        if self.fields.len() > usize::from(message.is_some()) {
            if message.is_some() {
                out.push(' ');
            }
            write_fields(&self.fields, true, out);
        }
        if self.truncated {
            out.push_str(" [truncated]");
        }
    }

    /// The event as one JSON object in the shape of `tracing_subscriber::fmt().json()`:
    /// `timestamp`, `level`, `fields` (with `message`), `target`, `span` and `spans` when in
    /// spans, and `threadId`; `"truncated": true` when the record did not fit.
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"timestamp\":\"");
        write_timestamp(self.time_ns, out);
        let _ = write!(
            out,
            "\",\"level\":\"{}\",\"fields\":",
            self.level().as_str()
        );
        json_object(&self.fields, None, out);
        out.push_str(",\"target\":");
        json_str(self.target(), out);
        if let Some(last) = self.scope.last() {
            out.push_str(",\"span\":");
            json_span(last, out);
            out.push_str(",\"spans\":[");
            for (i, span) in self.scope.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_span(span, out);
            }
            out.push(']');
        }
        let _ = write!(out, ",\"threadId\":{}", self.thread);
        if self.truncated {
            out.push_str(",\"truncated\":true");
        }
        out.push('}');
    }
}

/// A span as `fmt().json()` shows it: its fields and its `name` (and `"truncated":true` when
/// a record of it did not fit).
fn json_span(span: &Span, out: &mut String) {
    json_object(&span.fields, Some(&span.callsite.name), out);
    if span.truncated {
        out.pop();
        out.push_str(",\"truncated\":true}");
    }
}

fn json_object(fields: &[Field], name: Option<&str>, out: &mut String) {
    out.push('{');
    let mut first = true;
    for (k, v) in fields {
        if !first {
            out.push(',');
        }
        first = false;
        json_str(k.strip_prefix("r#").unwrap_or(k), out);
        out.push(':');
        json_value(v, out);
    }
    if let Some(name) = name {
        if !first {
            out.push(',');
        }
        out.push_str("\"name\":");
        json_str(name, out);
    }
    out.push('}');
}

fn json_value(v: &Value, out: &mut String) {
    let _ = match v {
        Value::U64(v) => write!(out, "{v}"),
        Value::I64(v) => write!(out, "{v}"),
        // As serde_json writes an f64 (`1.0`, `1e20`); NaN and the infinities have no JSON
        // number: `null`, as in `fmt().json()`.
        Value::F64(v) if v.is_finite() => write!(out, "{v:?}"),
        Value::F64(_) => write!(out, "null"),
        Value::Bool(v) => write!(out, "{v}"),
        Value::Str(s) | Value::Debug(s) => {
            json_str(s, out);
            Ok(())
        }
    };
}

/// A JSON string literal.
pub fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // The C0 controls must be escaped; DEL and the C1 controls may be, and are, so
            // that a line shown on a terminal cannot drive it.
            c if (c as u32) < 0x20 || is_terminal_control(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut s = String::new();
        write_timestamp(0, &mut s);
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        s.clear();
        // 2024-02-29T23:59:59.999999Z (a leap day)
        write_timestamp(1_709_251_199_999_999_000, &mut s);
        assert_eq!(s, "2024-02-29T23:59:59.999999Z");
    }
}
