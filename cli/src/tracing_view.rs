//! `cat` and `tail` on logs written by `ringwal-tracing`: tracing records rendered as
//! `tracing_subscriber::fmt` would (text, or its JSON shape), with level, target and time
//! filters. Records that are not tracing records are left to the plain rendering.

use crate::Format;
use ringwal::Entry;
use ringwal_tracing::{Decoder, Level, Record};
use std::fmt::Write as _;

/// Which events to show (gaps and errors are always shown).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The most verbose level shown (`info`: INFO, WARN, ERROR).
    pub level: Option<Level>,
    /// Only targets starting with this.
    pub target: Option<String>,
    /// Only events at or after this time (ns since the epoch).
    pub since: Option<u64>,
    /// Only events before this time (ns since the epoch).
    pub until: Option<u64>,
}

impl Filter {
    fn keeps(&self, e: &ringwal_tracing::Event) -> bool {
        self.level.is_none_or(|l| e.level() <= l)
            && self
                .target
                .as_deref()
                .is_none_or(|t| e.target().starts_with(t))
            && self.since.is_none_or(|s| e.time_ns >= s)
            && self.until.is_none_or(|u| e.time_ns < u)
    }
}

/// The decoder's state across records, and the filter.
#[derive(Debug, Default)]
pub struct View {
    decoder: Decoder,
    filter: Filter,
}

impl View {
    pub fn new(filter: Filter) -> Self {
        View {
            decoder: Decoder::new(),
            filter,
        }
    }

    /// Takes in a record that is not shown (callsites and spans still count).
    pub fn prime(&mut self, entry: &Entry) {
        let _ = self.decoder.decode(&entry.payload);
    }

    /// Takes in the preamble frames `iter` read since the last call (the callsites a reader
    /// starting at their segment needs): call before handling each entry.
    pub fn take_preamble(&mut self, iter: &mut ringwal::Iter) {
        for payload in iter.take_preamble() {
            let _ = self.decoder.decode_preamble(&payload);
        }
    }

    /// Renders a tracing record into `line` (an event that passes the filter: one line; other
    /// tracing records: nothing; an undecodable one: an error line in its place). Returns
    /// false, writing nothing, for a record that is not a tracing record, or in hex.
    pub fn render(&mut self, entry: &Entry, format: Format, line: &mut String) -> bool {
        if format == Format::Hex || !ringwal_tracing::is_tracing_record(&entry.payload) {
            return false;
        }
        match self.decoder.decode(&entry.payload) {
            Ok(Record::Event(e)) => {
                if self.filter.keeps(&e) {
                    match format {
                        Format::Json => e.write_json(line),
                        _ => e.write_text(line),
                    }
                    line.push('\n');
                }
            }
            Ok(_) => {}
            Err(err) => {
                let _ = match format {
                    Format::Json => {
                        line.push_str("{\"seq\":");
                        let _ = write!(line, "{},\"error\":", entry.seq);
                        ringwal_tracing::json_str(&err.to_string(), line);
                        writeln!(line, "}}")
                    }
                    _ => writeln!(line, "-- record {}: {err} --", entry.seq),
                };
            }
        }
        true
    }
}

/// `trace|debug|info|warn|error`.
pub fn parse_level(s: &str) -> Result<Level, String> {
    s.parse::<Level>()
        .map_err(|_| format!("unknown level {s:?} (trace, debug, info, warn, error)"))
}

/// A time: seconds since the Unix epoch (`1700000000`, `1700000000.5`) or RFC 3339 in UTC
/// (`2024-05-01T12:00:00Z`, with optional fraction).
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = || format!("bad time {s:?}: seconds since the epoch or YYYY-MM-DDTHH:MM:SS[.f]Z");
    if let Ok(secs) = s.parse::<f64>() {
        if secs >= 0.0 && secs.is_finite() {
            return Ok((secs * 1e9) as u64);
        }
        return Err(bad());
    }
    let s2 = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = s2.split_once('T').ok_or_else(bad)?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>());
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(day))) = (d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>());
    let (Some(Ok(hh)), Some(Ok(mm)), Some(Ok(ss))) = (t.next(), t.next(), t.next()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    if days < 0 {
        return Err(bad());
    }
    let mut ns = 0u64;
    if !frac.is_empty() {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        ns = frac.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - frac.len() as u32);
    }
    Ok(((days as u64 * 86_400) + hh * 3_600 + mm * 60 + ss) * 1_000_000_000 + ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_both_ways() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1.5"), Ok(1_500_000_000));
        assert_eq!(
            parse_time("2024-02-29T23:59:59.999999Z"),
            Ok(1_709_251_199_999_999_000)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert!(parse_time("2024-13-01T00:00:00Z").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
