//! `cat`, `verify`, `tail`, `info`: reading a log directory without writing code.

use crate::tracing_view::{Filter, View};
use crate::{printable, Format};
use ringwal::format::{self, ScanEnd, ScanError};
use ringwal::{Entry, Gap, Reader};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Ends quietly when stdout is closed (`ringwal cat DIR | head`).
fn out_ok(r: io::Result<()>) -> io::Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

/// The line saying where events were lost, before the record numbered `before_seq` (or at
/// the end of the log, `None`); nothing if nothing was.
fn render_gap(gap: Gap, before_seq: Option<u64>, format: Format, line: &mut String) {
    if gap == Gap::default() {
        return;
    }
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    match format {
        Format::Json => {
            let _ = write!(
                line,
                "{{\"gap\":{},\"refused\":{},",
                gap.dropped, gap.refused
            );
            match before_seq {
                Some(seq) => writeln!(line, "\"before_seq\":{seq}}}"),
                None => writeln!(line, "\"at_end\":true}}"),
            }
            .ok();
        }
        Format::Text | Format::Hex => {
            let mut what = Vec::new();
            if gap.dropped > 0 {
                what.push(format!(
                    "{} event{} dropped",
                    gap.dropped,
                    plural(gap.dropped)
                ));
            }
            if gap.refused > 0 {
                what.push(format!(
                    "{} event{} refused",
                    gap.refused,
                    plural(gap.refused)
                ));
            }
            let end = if before_seq.is_none() {
                " (end of log)"
            } else {
                ""
            };
            let _ = writeln!(line, "-- {}{end} --", what.join(", "));
        }
    }
}

/// One record (and its gap line, if any) in `format`; a tracing record as `view` renders it.
fn render(entry: &Entry, format: Format, view: &mut View, line: &mut String) {
    render_after(entry, Gap::default(), format, view, line);
}

/// As [`render`], leaving out of the gap line the losses `shown` already (at the end of the
/// log, by `tail -f`: the iterator puts a writer's trailing losses on the next record).
fn render_after(entry: &Entry, shown: Gap, format: Format, view: &mut View, line: &mut String) {
    line.clear();
    let gap = Gap {
        dropped: entry.dropped_before.saturating_sub(shown.dropped),
        refused: entry.refused_before.saturating_sub(shown.refused),
    };
    render_gap(gap, Some(entry.seq), format, line);
    if view.render(entry, format, line) {
        return;
    }
    match format {
        Format::Json => {
            let _ = write!(
                line,
                "{{\"seq\":{},\"dropped_before\":{},\"refused_before\":{},",
                entry.seq, entry.dropped_before, entry.refused_before
            );
            match std::str::from_utf8(&entry.payload) {
                Ok(text) => {
                    line.push_str("\"payload\":\"");
                    json_escape(text, line);
                    line.push_str("\"}");
                }
                Err(_) => {
                    line.push_str("\"payload_hex\":\"");
                    hex(&entry.payload, line);
                    line.push_str("\"}");
                }
            }
        }
        Format::Text | Format::Hex => {
            let _ = write!(line, "{}\t", entry.seq);
            if format == Format::Hex {
                hex(&entry.payload, line);
            } else {
                text(&entry.payload, line);
            }
        }
    }
    line.push('\n');
}

fn hex(bytes: &[u8], out: &mut String) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// UTF-8 as-is, except control characters (so one record stays one line); other bytes
/// as `\xNN`.
fn text(bytes: &[u8], out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

fn json_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // The C0 controls must be escaped; DEL and the C1 controls (U+009B is CSI) are
            // too, as in the tracing records' JSON, so that a line cannot drive a terminal.
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `ringwal cat`.
pub fn cat(dir: &Path, from: Option<u64>, format: Format, filter: Filter) -> io::Result<ExitCode> {
    let mut view = View::new(filter);
    let reader = Reader::open(dir)?;
    // From the start of the segment holding `from`: its preamble and the records before
    // `from` are taken in, not shown (tracing callsites and spans described there).
    let start = match from {
        // (A listing that fails — retention deleting a segment meanwhile — starts at `seq`.)
        Some(seq) => reader.segments().map_or(seq, |segments| {
            segments
                .iter()
                .rev()
                .find(|s| s.first_seq <= seq)
                .map_or(seq, |s| s.first_seq)
        }),
        None => 0,
    };
    // Asked for records the log no longer (or never) held: say so, as `tail -f` does when
    // retention overtakes it, rather than start later in silence.
    if let (Some(seq), Ok(segments)) = (from, reader.segments()) {
        if let Some(first) = segments.first().map(|s| s.first_seq).filter(|&f| f > seq) {
            eprintln!(
                "ringwal cat: warning: the log starts at record {first}: records {seq} to {} \
                 are not in it (deleted by retention, or never written)",
                first - 1
            );
        }
    }
    let mut iter = reader.from_seq(start);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut line = String::new();
    while let Some(entry) = iter.next() {
        let entry = entry?;
        view.take_preamble(&mut iter);
        if from.is_some_and(|from| entry.seq < from) {
            view.prime(&entry);
            continue;
        }
        render(&entry, format, &mut view, &mut line);
        if !out_ok(out.write_all(line.as_bytes()))? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // Losses after the last record (a writer's shutdown marker).
    line.clear();
    render_gap(iter.trailing_gap(), None, format, &mut line);
    if !out_ok(out.write_all(line.as_bytes()))? {
        return Ok(ExitCode::SUCCESS);
    }
    out_ok(out.flush())?;
    Ok(ExitCode::SUCCESS)
}

/// `ringwal tail`: the last `lines` records that show something (a tracing log's span
/// records and filtered-out events do not count), then with `follow` what comes.
pub fn tail(
    dir: &Path,
    lines: usize,
    follow: bool,
    format: Format,
    filter: Filter,
) -> io::Result<ExitCode> {
    let reader = Reader::open(dir)?;
    let segments = reader.segments()?;
    // Start in the newest segment; while what is read shows fewer than `lines` records, read
    // again from twice as many segments back (a selective filter on a long log costs reading
    // it about twice, not once per segment).
    let mut back = 1usize;
    let (mut last, mut iter, mut view) = loop {
        let start = segments.len().saturating_sub(back);
        let first = segments.get(start).map_or(0, |s| s.first_seq);
        let mut iter = reader.from_seq(first);
        // Takes in everything from `first` on (tracing callsites and spans), showing the end.
        let mut view = View::new(filter.clone());
        let mut last: VecDeque<String> = VecDeque::with_capacity(lines.min(1 << 16));
        let mut line = String::new();
        while let Some(entry) = iter.next() {
            let Some(entry) = keep_going(entry, &iter)? else {
                continue;
            };
            view.take_preamble(&mut iter);
            render(&entry, format, &mut view, &mut line);
            if !line.is_empty() {
                last.push_back(std::mem::take(&mut line));
                if last.len() > lines {
                    last.pop_front();
                }
            }
        }
        if last.len() >= lines || start == 0 {
            break (last, iter, view);
        }
        back = back.saturating_mul(2);
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut line = String::new();
    for shown in last.drain(..) {
        if !out_ok(out.write_all(shown.as_bytes()))? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // Losses after the last record (a writer's shutdown marker), as `cat` shows them; with
    // `-n 0`, taken as shown (only what comes is printed).
    let mut shown = Gap::default();
    if lines == 0 {
        shown = iter.trailing_gap();
    } else if !out_ok(trailing_gap(&iter, &mut shown, format, &mut line, &mut out))? {
        return Ok(ExitCode::SUCCESS);
    }
    if !out_ok(out.flush())? {
        return Ok(ExitCode::SUCCESS);
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        // `Iter` returns None at the current end and picks up new records on the next call.
        let mut wrote = false;
        while let Some(entry) = iter.next() {
            let Some(entry) = keep_going(entry, &iter)? else {
                continue;
            };
            view.take_preamble(&mut iter);
            render_after(&entry, shown, format, &mut view, &mut line);
            shown = Gap::default();
            if !out_ok(out.write_all(line.as_bytes()))? {
                return Ok(ExitCode::SUCCESS);
            }
            wrote = true;
        }
        if iter.trailing_gap() != shown {
            if !out_ok(trailing_gap(&iter, &mut shown, format, &mut line, &mut out))? {
                return Ok(ExitCode::SUCCESS);
            }
            wrote = true;
        }
        if wrote && !out_ok(out.flush())? {
            return Ok(ExitCode::SUCCESS);
        }
        // Nothing would fail a write to a closed pipe while the log is quiet (`tail -f | head`
        // after head has gone): look.
        if stdout_gone() {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether stdout is a pipe (or socket, or terminal) whose other end has gone: `poll` reports
/// an error or a hang-up on it. Never true for a regular file.
#[cfg(unix)]
fn stdout_gone() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, for the one entry passed; a timeout of 0 (no wait).
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

#[cfg(not(unix))]
fn stdout_gone() -> bool {
    false
}

/// Writes the losses at the end of the log that are not `shown` yet (a gap line, or nothing),
/// and notes them shown.
fn trailing_gap(
    iter: &ringwal::Iter,
    shown: &mut Gap,
    format: Format,
    line: &mut String,
    out: &mut impl Write,
) -> io::Result<()> {
    let now = iter.trailing_gap();
    line.clear();
    let new = Gap {
        dropped: now.dropped.saturating_sub(shown.dropped),
        refused: now.refused.saturating_sub(shown.refused),
    };
    render_gap(new, None, format, line);
    *shown = now;
    out.write_all(line.as_bytes())
}

/// An entry, or `None` after an error the iterator goes on from (retention deleted records
/// before `tail` got to them: a warning on stderr), or the error that stopped it.
fn keep_going(entry: io::Result<Entry>, iter: &ringwal::Iter) -> io::Result<Option<Entry>> {
    match entry {
        Ok(entry) => Ok(Some(entry)),
        Err(e) if !iter.has_failed() => {
            eprintln!("ringwal tail: warning: {}", printable(&e.to_string()));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

struct SegmentReport {
    name: String,
    bytes: u64,
    scan: Scanned,
}

/// What reading one segment gave.
enum Scanned {
    /// A valid header, and how the frames after it end.
    Scan(format::SegmentScan),
    /// Fewer than [`format::HEADER_LEN`] bytes, or exactly that many zero bytes: a crash
    /// between creating the segment and writing its header (holding this many bytes). In the
    /// newest segment that is a torn tail, which the writer's recovery removes.
    CutShort(usize),
    /// An unreadable file or an invalid header.
    Bad(String),
}

const CUT_SHORT: &str = "a crash during its creation; recovery removes it";

fn scan_all(reader: &Reader) -> io::Result<Vec<SegmentReport>> {
    let mut out = Vec::new();
    for seg in reader.segments()? {
        let name = seg
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Streamed, in constant memory whatever the segment's size.
        let scan = match std::fs::File::open(&seg.path).and_then(format::FileSource::new) {
            Ok(mut src) => match format::scan_segment_in(&mut src) {
                Ok(scan) => Scanned::Scan(scan),
                Err(ScanError::Header(format::HeaderError::Short(n))) => Scanned::CutShort(n),
                Err(ScanError::Header(e)) => match src.is_unwritten_header() {
                    Ok(true) => Scanned::CutShort(format::HEADER_LEN),
                    Ok(false) => Scanned::Bad(e.to_string()),
                    Err(e) => Scanned::Bad(e.to_string()),
                },
                Err(ScanError::Read(e)) => Scanned::Bad(e.to_string()),
            },
            Err(e) => Scanned::Bad(e.to_string()),
        };
        out.push(SegmentReport {
            name,
            bytes: seg.bytes,
            scan,
        });
    }
    Ok(out)
}

/// The number of the last of `records` records numbered from `first`, or `None` if it would
/// be past `u64::MAX` (or there are none).
fn last_seq(first: u64, records: u64) -> Option<u64> {
    records.checked_sub(1).and_then(|n| first.checked_add(n))
}

fn seq_range(first: u64, records: u64) -> String {
    match (records, last_seq(first, records)) {
        (0, _) => "empty".into(),
        (_, Some(last)) => format!("{first}..={last}"),
        (_, None) => format!("{first}.. (past {}: sequence numbers exhausted)", u64::MAX),
    }
}

/// A count, with "at least" when it reached `u64::MAX` (sums saturate there).
fn count(n: u64) -> String {
    if n == u64::MAX {
        format!("at least {n}")
    } else {
        n.to_string()
    }
}

/// Where the next segment must start.
#[derive(Clone, Copy)]
enum Next {
    /// Unknown (no segment yet, or the previous one could not be read).
    Unknown,
    /// At this record.
    At(u64),
    /// Nowhere: the previous segment ends at record `u64::MAX` (or past it).
    Exhausted,
}

/// `ringwal verify`.
pub fn verify(dir: &Path) -> io::Result<ExitCode> {
    let reader = Reader::open(dir)?;
    let segments = scan_all(&reader)?;
    let mut records = 0u64;
    let mut dropped = 0u64;
    let mut refused = 0u64;
    let mut gaps = 0u64;
    let mut first_seq = None;
    // The highest record number read (a damaged log's records may not run consecutively
    // from the first: a segment missing or cut short in the middle, one out of place).
    let mut last_seen: Option<u64> = None;
    let mut next_seq = Next::Unknown;
    let mut torn = None;
    let mut corrupt = stray_segment_files(dir)?;
    let count_segs = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        let newest = i + 1 == count_segs;
        let path = dir.join(&seg.name);
        let scan = match &seg.scan {
            Scanned::Scan(scan) => scan,
            Scanned::CutShort(n) if newest => {
                torn = Some(format!(
                    "segment {} header cut short ({n} bytes): {CUT_SHORT}",
                    path.display()
                ));
                continue;
            }
            Scanned::CutShort(n) => {
                corrupt.push(format!(
                    "{}: at offset 0: segment header cut short ({n} bytes) (not the newest segment)",
                    path.display()
                ));
                next_seq = Next::Unknown;
                continue;
            }
            Scanned::Bad(e) => {
                corrupt.push(format!("{}: at offset 0: {e}", path.display()));
                next_seq = Next::Unknown;
                continue;
            }
        };
        if format::parse_segment_file_name(&seg.name) != Some(scan.first_seq) {
            corrupt.push(format!(
                "{}: at offset 0: header says first record {}",
                path.display(),
                scan.first_seq
            ));
        }
        match next_seq {
            Next::At(expected) if scan.first_seq != expected => corrupt.push(format!(
                "{}: at offset 0: starts at record {}, the previous segment ends before {expected}",
                path.display(),
                scan.first_seq
            )),
            Next::Exhausted => corrupt.push(format!(
                "{}: at offset 0: starts at record {}, but the previous segment ends at record {}: sequence numbers exhausted",
                path.display(),
                scan.first_seq,
                u64::MAX
            )),
            _ => {}
        }
        // (A segment's records never run past `u64::MAX`: the scan reports a frame after
        // record `u64::MAX` as corruption, `Corruption::PastLastRecord`.)
        first_seq.get_or_insert(scan.first_seq);
        if let Some(last) = last_seq(scan.first_seq, scan.records) {
            last_seen = last_seen.max(Some(last));
        }
        records = records.saturating_add(scan.records);
        dropped = dropped.saturating_add(scan.dropped);
        refused = refused.saturating_add(scan.refused);
        gaps = gaps.saturating_add(scan.gaps);
        next_seq = match scan.first_seq.checked_add(scan.records) {
            Some(next) => Next::At(next),
            None => Next::Exhausted,
        };
        match &scan.end {
            ScanEnd::Clean => {}
            ScanEnd::Torn { offset, reason } if newest => {
                torn = Some(format!(
                    "{}: at offset {offset}: {} bytes ({reason}); a writer opening the log cuts it",
                    path.display(),
                    seg.bytes.saturating_sub(*offset)
                ));
            }
            ScanEnd::Torn { offset, reason } => corrupt.push(format!(
                "{}: at offset {offset}: {reason} (not the newest segment)",
                path.display()
            )),
            ScanEnd::Corrupt { offset, reason } => {
                corrupt.push(format!("{}: at offset {offset}: {reason}", path.display()))
            }
        }
    }
    let mut out = String::new();
    // Text from outside (the directory's name, in the messages too) escaped: it can neither
    // drive the terminal nor fake a line of the report.
    let _ = writeln!(out, "log:        {}", printable(&dir.display().to_string()));
    let _ = writeln!(out, "segments:   {count_segs}");
    let first = first_seq.unwrap_or(0);
    let range = match last_seen {
        // Consecutive: the first to the last.
        Some(last) if last.checked_sub(first).and_then(|n| n.checked_add(1)) == Some(records) => {
            seq_range(first, records)
        }
        Some(last) => format!("{first}..={last}, not consecutive: see corruption"),
        None => seq_range(first, records),
    };
    let _ = writeln!(out, "records:    {} (sequence {range})", count(records));
    let _ = writeln!(
        out,
        "gaps:       {} ({} events dropped, {} refused)",
        count(gaps),
        count(dropped),
        count(refused)
    );
    let _ = writeln!(
        out,
        "torn tail:  {}",
        printable(torn.as_deref().unwrap_or("none"))
    );
    if corrupt.is_empty() {
        let _ = writeln!(out, "corruption: none");
    } else {
        for c in &corrupt {
            let _ = writeln!(out, "corruption: {}", printable(c));
        }
    }
    let (verdict, code) = if !corrupt.is_empty() {
        ("CORRUPT", 2)
    } else if torn.is_some() {
        ("torn tail only (recoverable)", 1)
    } else {
        ("clean", 0)
    };
    let _ = writeln!(out, "result:     {verdict}");
    out_ok(io::stdout().write_all(out.as_bytes()))?;
    Ok(ExitCode::from(code))
}

/// Files named like segments (`.rwl`) but not as the log names them (20 digits, the first
/// record's number): readers and writers ignore them, so records in one (a segment renamed
/// by hand, restored under another name) are missing from the log without a trace there.
fn stray_segment_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".rwl") && format::parse_segment_file_name(&name).is_none() {
            stray.push(format!(
                "{}: named like a segment but not as the log names one (20 digits: its first \
                 record's number), so never read: records in it are missing from the log",
                entry.path().display()
            ));
        }
    }
    stray.sort();
    Ok(stray)
}

/// `ringwal info`.
pub fn info(dir: &Path) -> io::Result<ExitCode> {
    let reader = Reader::open(dir)?;
    let segments = scan_all(&reader)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:>12} {:>10}  sequence range",
        "segment", "bytes", "records"
    );
    let (mut records, mut bytes, mut dropped, mut refused) = (0u64, 0u64, 0u64, 0u64);
    let newest = segments.len().checked_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        bytes = bytes.saturating_add(seg.bytes);
        match &seg.scan {
            Scanned::Scan(scan) => {
                records = records.saturating_add(scan.records);
                dropped = dropped.saturating_add(scan.dropped);
                refused = refused.saturating_add(scan.refused);
                let mut note = match scan.end {
                    ScanEnd::Clean => String::new(),
                    ScanEnd::Torn { .. } => "  (torn tail)".into(),
                    ScanEnd::Corrupt { .. } => "  (corrupt: see verify)".into(),
                };
                if scan.preambles > 0 {
                    let _ = write!(note, "  (preamble: {} frames)", scan.preambles);
                }
                let _ = writeln!(
                    out,
                    "{:<26} {:>12} {:>10}  {}{note}",
                    seg.name,
                    seg.bytes,
                    scan.records,
                    seq_range(scan.first_seq, scan.records)
                );
            }
            Scanned::CutShort(_) if Some(i) == newest => {
                let _ = writeln!(
                    out,
                    "{:<26} {:>12} {:>10}  header cut short: {CUT_SHORT}",
                    seg.name, seg.bytes, 0
                );
            }
            Scanned::CutShort(n) => {
                let _ = writeln!(
                    out,
                    "{:<26} {:>12} {:>10}  unreadable: segment header cut short ({n} bytes), not the newest segment",
                    seg.name, seg.bytes, "-"
                );
            }
            Scanned::Bad(e) => {
                let _ = writeln!(
                    out,
                    "{:<26} {:>12} {:>10}  unreadable: {}",
                    seg.name,
                    seg.bytes,
                    "-",
                    printable(e)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "total: {} segment{}, {} records, {} bytes; lost: {} dropped, {} refused",
        segments.len(),
        if segments.len() == 1 { "" } else { "s" },
        count(records),
        count(bytes),
        count(dropped),
        count(refused)
    );
    let next = next_seq_of(&segments);
    shippers(&reader, next, &mut out)?;
    out_ok(io::stdout().write_all(out.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

/// The number after the log's last record: after the highest record a segment holds (not the
/// first record plus the count, which falls short when a segment in the middle is damaged),
/// or where the segments start if they hold none; `None` if no segment can be read.
fn next_seq_of(segments: &[SegmentReport]) -> Option<u64> {
    segments
        .iter()
        .filter_map(|s| match &s.scan {
            Scanned::Scan(scan) => Some(scan.first_seq.saturating_add(scan.records)),
            _ => None,
        })
        .max()
}

/// `info`'s lines about shippers: the log's id, and each checkpoint's cursor and lag (`next`:
/// the sequence number after the log's last record, if known).
fn shippers(reader: &Reader, next: Option<u64>, out: &mut String) -> io::Result<()> {
    use ringwal::checkpoint::{checkpoints, LogId};
    let dir = reader.dir();
    let list = checkpoints(dir)?;
    match LogId::read(dir) {
        Ok(Some(id)) => {
            let _ = writeln!(out, "log id: {id}");
        }
        Ok(None) if list.is_empty() => return Ok(()),
        Ok(None) => {
            let _ = writeln!(out, "log id: none (LOG-ID missing)");
        }
        Err(e) => {
            let _ = writeln!(out, "log id: unreadable: {}", printable(&e.to_string()));
        }
    }
    let segments = reader.segments()?;
    for (name, checkpoint) in list {
        match checkpoint {
            Ok(c) => {
                let lag = match next {
                    // Not "lag 0": the shipper stops with an error there (the records a writer
                    // would add carry numbers the destination holds already).
                    Some(n) if c.next_seq > n => format!(
                        "PAST THE LOG'S END (the log's next record is {n}): records from {n} \
                         to {} are shipped but not in the log; ship refuses to go on",
                        c.next_seq - 1
                    ),
                    _ => format!(
                        "lag {} records, {} bytes",
                        next.map_or("?".to_string(), |n| count(n - c.next_seq)),
                        lag_bytes(&segments, c.next_seq, c.position)
                    ),
                };
                let _ = writeln!(
                    out,
                    "shipper {name}: cursor {} (records below it shipped) to {}; {lag}",
                    c.next_seq,
                    if c.destination.is_empty() {
                        "?".into()
                    } else {
                        printable(&c.destination)
                    },
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "shipper {name}: unreadable checkpoint: {}",
                    printable(&e.to_string())
                );
            }
        }
    }
    Ok(())
}

/// Bytes of the log from the checkpoint's position (or the start of the segment holding
/// `cursor`) to the end.
fn lag_bytes(
    segments: &[ringwal::SegmentInfo],
    cursor: u64,
    position: Option<ringwal::checkpoint::Position>,
) -> u64 {
    let (from, offset) = match position {
        Some(p) if segments.iter().any(|s| s.first_seq == p.segment) => (p.segment, p.offset),
        _ => (
            segments
                .iter()
                .rev()
                .find(|s| s.first_seq <= cursor)
                .map_or(0, |s| s.first_seq),
            0,
        ),
    };
    segments
        .iter()
        .filter(|s| s.first_seq >= from)
        .map(|s| s.bytes)
        // Saturating: segment sizes are the file system's, and sparse files (2^63 - 1 bytes
        // each on tmpfs) can add up past `u64::MAX` (a panic in debug, a wrap in release).
        .fold(0u64, u64::saturating_add)
        .saturating_sub(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segment sizes are the file system's: sparse files of 2^63 - 1 bytes (tmpfs allows
    /// them) add up past `u64::MAX`; the lag saturates instead of panicking or wrapping.
    #[test]
    fn lag_bytes_saturates_on_huge_segments() {
        let seg = |first_seq| ringwal::SegmentInfo {
            path: std::path::PathBuf::from(format!("{first_seq}")),
            first_seq,
            bytes: i64::MAX as u64,
        };
        let segments = [seg(0), seg(1), seg(2), seg(3)];
        assert_eq!(lag_bytes(&segments, 0, None), u64::MAX);
        let at = ringwal::checkpoint::Position {
            segment: 1,
            offset: 10,
        };
        // Segments 1 to 3 saturate; the offset into segment 1 is then taken off.
        assert_eq!(lag_bytes(&segments, 1, Some(at)), u64::MAX - 10);
    }
}
