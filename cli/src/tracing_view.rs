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

/// A time: seconds since the Unix epoch (`1700000000`, `1700000000.5`, to the nanosecond), or
/// RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01 14:00:00.25+02:00`, `T`, `t` or a space
/// between date and time, `Z`, `z` or an offset), or a date alone (midnight UTC). A date that
/// does not exist (`2024-02-30`), a number of seconds past the year 2554 (nanoseconds given by
/// mistake) or anything else is an error, never a time nearby.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "bad time {s:?}: seconds since the epoch, or RFC 3339 \
             (YYYY-MM-DDTHH:MM:SS[.f](Z|+HH:MM)), or YYYY-MM-DD"
        )
    };
    if s.bytes().next().is_some_and(|b| b.is_ascii_digit()) && !s.contains(['-', ':']) {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs = digits(secs).ok_or_else(bad)?;
        let ns = fraction_ns(frac).ok_or_else(bad)?;
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(ns))
            .ok_or_else(|| format!("{}: past the year 2554 (nanoseconds, not seconds?)", bad()));
    }
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (Some(y), Some(m), Some(day), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || day.len() != 2 {
        return Err(bad());
    }
    let (y, m, day) = (
        digits(y).ok_or_else(bad)? as i64,
        digits(m).ok_or_else(bad)? as i64,
        digits(day).ok_or_else(bad)? as i64,
    );
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1..=month_days).contains(&day) {
        return Err(bad());
    }
    let (mut secs_of_day, mut ns, mut offset) = (0i64, 0u64, 0i64);
    if let Some(rest) = rest {
        // The offset: `Z`, or `+HH:MM` / `-HH:MM` after the seconds.
        let (time, off) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
            (t, None)
        } else if rest.len() > 6 && matches!(rest.as_bytes()[rest.len() - 6], b'+' | b'-') {
            let (t, off) = rest.split_at(rest.len() - 6);
            (t, Some(off))
        } else {
            return Err(bad());
        };
        if let Some(off) = off {
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':').ok_or_else(bad)?;
            let (oh, om) = (digits(oh).ok_or_else(bad)?, digits(om).ok_or_else(bad)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            offset = sign * (oh as i64 * 3_600 + om as i64 * 60);
        }
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut t = hms.split(':');
        let (Some(hh), Some(mm), Some(ss), None) = (t.next(), t.next(), t.next(), t.next()) else {
            return Err(bad());
        };
        if hh.len() != 2
            || mm.len() != 2
            || ss.len() != 2
            || (time.contains('.') && frac.is_empty())
        {
            return Err(bad());
        }
        let (hh, mm, ss) = (
            digits(hh).ok_or_else(bad)?,
            digits(mm).ok_or_else(bad)?,
            digits(ss).ok_or_else(bad)?,
        );
        // 60: a leap second, as RFC 3339 allows.
        if hh > 23 || mm > 59 || ss > 60 {
            return Err(bad());
        }
        secs_of_day = (hh * 3_600 + mm * 60 + ss) as i64;
        ns = fraction_ns(frac).ok_or_else(bad)?;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + secs_of_day - offset;
    u64::try_from(secs)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|n| n.checked_add(ns))
        .ok_or_else(|| format!("{}: before 1970 or past 2554", bad()))
}

/// ASCII digits only (no sign, no space), as a number.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal fraction of a second (digits after the point; none is 0) in nanoseconds; digits
/// past the ninth are dropped.
fn fraction_ns(frac: &str) -> Option<u64> {
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nine = &frac[..frac.len().min(9)];
    let ns = if nine.is_empty() {
        0
    } else {
        nine.parse::<u64>().ok()?
    };
    Some(ns * 10u64.pow(9 - nine.len() as u32))
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
        // Exact to the nanosecond, no float in the way.
        assert_eq!(
            parse_time("1700000000.000001"),
            Ok(1_700_000_000_000_001_000)
        );
        assert_eq!(parse_time("1.1234567891"), Ok(1_123_456_789));
        // Nanoseconds given for seconds: an error, not "nothing matches".
        assert!(parse_time("1796580151406848000").is_err());
        // What `cat` prints, and the other RFC 3339 spellings.
        let t = Ok(1_709_251_199_500_000_000);
        for s in [
            "2024-02-29T23:59:59.5Z",
            "2024-02-29t23:59:59.500z",
            "2024-02-29 23:59:59.5Z",
            "2024-03-01T01:59:59.5+02:00",
            "2024-02-29T20:29:59.5-03:30",
        ] {
            assert_eq!(parse_time(s), t, "{s}");
        }
        assert_eq!(parse_time("2024-03-01"), Ok(1_709_251_200_000_000_000));
        // Dates that do not exist, and malformed times.
        for s in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31",
            "2024-02-29T24:00:00Z",
            "2024-02-29T23:59:59",
            "2024-02-29T23:59:59.Z",
            "2024-02-29T23:59Z",
            "2024-2-29T23:59:59Z",
            "2024-02-29T23:59:59+2:00",
            "1969-12-31T23:59:59Z",
            "+5",
            "1e9",
        ] {
            assert!(parse_time(s).is_err(), "{s}");
        }
    }
}
