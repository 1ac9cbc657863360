//! What a shipper (`ringwal-ship`) leaves in a log directory: the log's stable id, and each
//! shipper's checkpoint of what its destination has acknowledged.
//!
//! This module holds only the file formats, with no network code, so that the writer's
//! retention and `ringwal info` can read them. The files:
//!
//! - `LOG-ID`: the log's id, 128 random bits in hex (one line), made once by the first
//!   shipper (atomically: a complete file appears or none) and never changed. A shipper puts
//!   it in every message id (`<id>:<seq>`), so that two logs never share ids, and a copied
//!   directory keeps its id (it is the same log). Deleting it gives the log a new identity.
//! - `ship-<name>.checkpoint`: a shipper's cursor: every record below
//!   [`Checkpoint::next_seq`] is in its destination (or in its dead-letter file, or was
//!   deleted by a forced retention before it could be shipped, which it reported). Text,
//!   one `key value` line each, ending with a CRC32C line over the lines before; replaced
//!   atomically (write a temporary file, fsync it, rename it over the old one, fsync the
//!   directory), so a crash leaves the old checkpoint or the new one, never a mix.
//! - `ship-<name>.dead`: records the destination refused for good, one line each (see
//!   [`dead_letter_path`]).
//!
//! Retention ([`Retain::Segments`](crate::Retain::Segments)) never deletes a segment holding a
//! record at or after the lowest checkpoint in the directory (an unreadable checkpoint counts
//! as 0: it keeps everything); [`Retain::Bytes`](crate::Retain::Bytes) is a hard bound and
//! deletes regardless (the shipper then reports and ships the gap). A shipper you no longer
//! run holds segments back for ever: delete its checkpoint file.
//!
//! Each of these files must be a regular file of at most 64 KiB: a FIFO, a symbolic link
//! (never followed) or anything else in its place is an `InvalidData` error naming it, found
//! without blocking or reading without end.
//!
//! ```
//! use ringwal::checkpoint::{Checkpoint, LogId, Position};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = LogId::get_or_create(dir.path()).unwrap();
//! assert_eq!(LogId::read(dir.path()).unwrap(), Some(log)); // stable
//!
//! let checkpoint = Checkpoint {
//!     log,
//!     next_seq: 42,
//!     position: Some(Position { segment: 0, offset: 4096 }),
//!     gap_shipped: Default::default(),
//!     destination: "nats://127.0.0.1:4222 events".into(),
//! };
//! checkpoint.store(dir.path(), "events").unwrap();
//! assert_eq!(Checkpoint::load(dir.path(), "events").unwrap(), Some(checkpoint));
//! ```

use crate::format::crc32c;
use crate::log::annotate;
pub use crate::log::open_regular;
use crate::reader::Gap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The name of the file holding the log's id.
pub const LOG_ID_FILE: &str = "LOG-ID";

/// The stable id of a log directory: 128 random bits, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogId(pub [u8; 16]);

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogId({self})")
    }
}

impl std::str::FromStr for LogId {
    type Err = String;

    /// 32 hex digits.
    fn from_str(s: &str) -> Result<LogId, String> {
        let bad = || format!("not a log id (32 hex digits): {s:?}");
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut id = [0u8; 16];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(LogId(id))
    }
}

impl LogId {
    /// The id in `dir/LOG-ID`, if the file exists. A file that is not an id is an
    /// `InvalidData` error naming it (it is never replaced: the id is what makes a restart
    /// after a long outage send nothing twice).
    pub fn read(dir: &Path) -> io::Result<Option<LogId>> {
        let path = dir.join(LOG_ID_FILE);
        let bytes = match read_small(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid(&path, "not UTF-8 text"))?;
        text.trim_end_matches('\n')
            .parse()
            .map(Some)
            .map_err(|e: String| invalid(&path, e))
    }

    /// The log's id: read from `dir/LOG-ID`, or made and stored there if the file is
    /// missing. Creation is atomic and safe against a concurrent creator: the id is written
    /// and fsynced in a temporary file that is then hard-linked to `LOG-ID` (which fails if
    /// another process got there first: its id wins), and the directory is fsynced.
    pub fn get_or_create(dir: &Path) -> io::Result<LogId> {
        if let Some(id) = LogId::read(dir)? {
            return Ok(id);
        }
        let id = LogId(random_bytes());
        // Unique to this call (the id is random): named by the process alone, two threads
        // creating it at once shared one temporary file, and one of them could return an id
        // other than the one linked, or find the file gone.
        let tmp = dir.join(format!("{LOG_ID_FILE}.tmp.{}.{id}", std::process::id()));
        let path = dir.join(LOG_ID_FILE);
        write_synced(&tmp, format!("{id}\n").as_bytes())?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(dir)?;
                Ok(id)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                LogId::read(dir)?.ok_or_else(|| invalid(&path, "vanished while being created"))
            }
            Err(e) => Err(annotate(&path, e)),
        }
    }
}

/// 16 random bytes: from the kernel, or, where `/dev/urandom` cannot be read, from std's
/// randomly seeded hasher mixed with the time and the process id.
fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .is_ok()
    {
        return out;
    }
    use std::hash::{BuildHasher, Hasher};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(now.as_nanos());
        h.write_u32(std::process::id());
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// Where a record starts in the log: its segment (by first sequence number) and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// The first sequence number of the segment (its file name).
    pub segment: u64,
    /// The byte offset in that segment.
    pub offset: u64,
}

/// A shipper's cursor, as stored in `ship-<name>.checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log it belongs to (a checkpoint copied from another log is refused).
    pub log: LogId,
    /// Every record below this sequence number is handled: acknowledged by the destination,
    /// dead-lettered, or lost to a forced retention (and reported). The shipper resumes here.
    pub next_seq: u64,
    /// Where in the log the frame after record `next_seq - 1` starts, when known: with the
    /// segment sizes it gives the lag in bytes.
    pub position: Option<Position>,
    /// Losses (gap markers) after record `next_seq - 1` already shipped as a gap message:
    /// record `next_seq`'s own `dropped_before`/`refused_before` include them, so the shipper
    /// subtracts them to count each loss once.
    pub gap_shipped: Gap,
    /// Where the shipper ships to, for people reading the file (`ringwal info`).
    pub destination: String,
}

const MAGIC_LINE: &str = "ringwal-ship-checkpoint 1";

impl Checkpoint {
    /// The path of the checkpoint named `name` in `dir`. A name is 1 to 64 characters of
    /// `A-Z a-z 0-9 . _ -` (not starting with a dot); anything else is an `InvalidInput`
    /// error.
    pub fn path(dir: &Path, name: &str) -> io::Result<PathBuf> {
        check_name(name)?;
        Ok(dir.join(format!("ship-{name}.checkpoint")))
    }

    /// The checkpoint named `name` in `dir`, or `None` if there is none. A damaged file (bad
    /// checksum, missing or malformed line) is an `InvalidData` error naming it, never
    /// mistaken for "no checkpoint".
    pub fn load(dir: &Path, name: &str) -> io::Result<Option<Checkpoint>> {
        let path = Checkpoint::path(dir, name)?;
        match read_small(&path) {
            Ok(bytes) => Checkpoint::decode(&bytes)
                .map(Some)
                .map_err(|e| invalid(&path, format!("bad checkpoint: {e}"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the checkpoint named `name` in `dir` atomically and durably: write a
    /// temporary file, fsync it, rename it over the checkpoint, fsync the directory.
    pub fn store(&self, dir: &Path, name: &str) -> io::Result<()> {
        let path = Checkpoint::path(dir, name)?;
        let tmp = dir.join(format!("ship-{name}.checkpoint.tmp"));
        write_synced(&tmp, self.encode().as_bytes())?;
        fs::rename(&tmp, &path).map_err(|e| annotate(&path, e))?;
        sync_dir(dir)
    }

    /// The file's text.
    pub fn encode(&self) -> String {
        let mut body = format!("{MAGIC_LINE}\nlog {}\nnext {}\n", self.log, self.next_seq);
        if let Some(p) = self.position {
            body.push_str(&format!("position {} {}\n", p.segment, p.offset));
        }
        body.push_str(&format!(
            "gap-shipped {} {}\n",
            self.gap_shipped.dropped, self.gap_shipped.refused
        ));
        let dest: String = self
            .destination
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        body.push_str(&format!("destination {dest}\n"));
        let crc = crc32c(body.as_bytes());
        body.push_str(&format!("crc32c {crc:08x}\n"));
        body
    }

    /// Parses [`encode`](Self::encode)'s text; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        if !text.ends_with('\n') {
            return Err("cut short (no final newline)".into());
        }
        let body_end = text
            .trim_end_matches('\n')
            .rfind('\n')
            .map(|i| i + 1)
            .ok_or("too short (no checksum line)")?;
        let (body, crc_line) = text.split_at(body_end);
        let crc = crc_line
            .trim_end_matches('\n')
            .strip_prefix("crc32c ")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or("last line is not `crc32c <hex>` (cut short?)")?;
        if crc32c(body.as_bytes()) != crc {
            return Err("checksum mismatch (damaged)".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC_LINE) {
            return Err(format!("first line is not {MAGIC_LINE:?}"));
        }
        let (mut log, mut next, mut position, mut gap, mut dest) = (None, None, None, None, None);
        let num = |s: Option<&str>, what: &str| {
            s.and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("bad {what} line"))
        };
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let mut words = value.split(' ');
            match key {
                "log" => log = Some(value.parse::<LogId>()?),
                "next" => next = Some(num(Some(value), "next")?),
                "position" => {
                    position = Some(Position {
                        segment: num(words.next(), "position")?,
                        offset: num(words.next(), "position")?,
                    })
                }
                "gap-shipped" => {
                    gap = Some(Gap {
                        dropped: num(words.next(), "gap-shipped")?,
                        refused: num(words.next(), "gap-shipped")?,
                    })
                }
                "destination" => dest = Some(value.to_string()),
                other => return Err(format!("unknown line {other:?}")),
            }
        }
        Ok(Checkpoint {
            log: log.ok_or("no log line")?,
            next_seq: next.ok_or("no next line")?,
            position,
            gap_shipped: gap.unwrap_or_default(),
            destination: dest.unwrap_or_default(),
        })
    }
}

fn check_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "shipper name {name:?}: use 1 to 64 characters of A-Z a-z 0-9 . _ - \
                 (not starting with a dot)"
            ),
        ))
    }
}

/// The dead-letter file of the shipper named `name` in `dir`: `ship-<name>.dead`. One line
/// per message the destination refused for good, appended and fsynced before the cursor moves
/// past it: `record <seq> bytes <len> payload <hex> reason <text>` (the reason has no
/// newline; `gap before <n>` or `lost <from>-<to>` in place of `record <seq>` for the other
/// kinds of message). After a crash between the append and the checkpoint, a record can be listed
/// twice; never not at all.
pub fn dead_letter_path(dir: &Path, name: &str) -> io::Result<PathBuf> {
    check_name(name)?;
    Ok(dir.join(format!("ship-{name}.dead")))
}

/// Every checkpoint in `dir` by name (a damaged or unreadable one as its error: one that is
/// not a regular file, such as a FIFO or a symbolic link, or is larger than any checkpoint),
/// sorted by name.
pub fn checkpoints(dir: &Path) -> io::Result<Vec<(String, io::Result<Checkpoint>)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| annotate(dir, e))? {
        let entry = entry.map_err(|e| annotate(dir, e))?;
        let file = entry.file_name();
        let Some(name) = file
            .to_str()
            .and_then(|f| f.strip_prefix("ship-"))
            .and_then(|f| f.strip_suffix(".checkpoint"))
        else {
            continue;
        };
        if check_name(name).is_err() {
            continue;
        }
        let loaded = Checkpoint::load(dir, name).and_then(|c| {
            c.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "removed while listed"))
        });
        out.push((name.to_string(), loaded));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The lowest cursor of the checkpoints in `dir` (0 if one cannot be read: it keeps
/// everything), `None` if there is none. Retention keeps every record at or after it.
pub(crate) fn retention_floor(dir: &Path) -> Option<u64> {
    match checkpoints(dir) {
        Ok(list) => list
            .iter()
            .map(|(_, c)| c.as_ref().map_or(0, |c| c.next_seq))
            .min(),
        Err(_) => Some(0),
    }
}

/// [`retention_floor`], looked up at most once per [`FloorCache::TTL`] (the writer thread
/// asks at every append while retention wants to delete). A cursor only grows, so a stale
/// value only keeps more.
#[derive(Debug, Default)]
pub(crate) struct FloorCache {
    last: Option<(Instant, Option<u64>)>,
}

impl FloorCache {
    const TTL: Duration = Duration::from_millis(250);

    pub(crate) fn floor(&mut self, dir: &Path) -> Option<u64> {
        match self.last {
            Some((at, floor)) if at.elapsed() < FloorCache::TTL => floor,
            _ => {
                let floor = retention_floor(dir);
                self.last = Some((Instant::now(), floor));
                floor
            }
        }
    }
}

/// The most [`read_small`] reads: a checkpoint or `LOG-ID` is well under a kilobyte (a
/// checkpoint's longest line is its destination), so anything larger is not one.
const SMALL_FILE_CAP: u64 = 64 * 1024;

/// The bytes of `path`, a checkpoint or `LOG-ID`: only a regular file (a FIFO would block
/// the open, and a link to `/dev/zero` would read until memory runs out: see
/// [`open_regular`]), and at most [`SMALL_FILE_CAP`] bytes (more is an `InvalidData` error,
/// found without reading more than one byte past the cap). Errors name the path; a missing
/// file is `NotFound`.
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    let file = open_regular(path, OpenOptions::new().read(true))?;
    let mut bytes = Vec::new();
    file.take(SMALL_FILE_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| annotate(path, e))?;
    if bytes.len() as u64 > SMALL_FILE_CAP {
        return Err(invalid(
            path,
            format!("larger than {SMALL_FILE_CAP} bytes: not a file a shipper wrote"),
        ));
    }
    Ok(bytes)
}

fn invalid(path: &Path, what: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// Writes and fsyncs `bytes` in a new file `path`, a temporary name: whatever is there (a
/// file left by a crash before its rename, or a FIFO or a symbolic link a careless or
/// hostile hand put there) is removed first, never opened, and the file is created with
/// `O_EXCL`, which follows no link. (Opened as it was, a link to another file had that file
/// truncated and overwritten, and a FIFO blocked the open for ever.)
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(annotate(path, e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| annotate(path, e))?;
    f.write_all(bytes).map_err(|e| annotate(path, e))?;
    f.sync_all().map_err(|e| annotate(path, e))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| annotate(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            log: LogId([0xab; 16]),
            next_seq: 7,
            position: Some(Position {
                segment: 5,
                offset: 99,
            }),
            gap_shipped: Gap {
                dropped: 2,
                refused: 3,
            },
            destination: "nats://h:1 s\nx".into(),
        }
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let c = sample();
        let text = c.encode();
        let back = Checkpoint::decode(text.as_bytes()).unwrap();
        assert_eq!(back.destination, "nats://h:1 s x");
        assert_eq!(back.next_seq, 7);
        assert_eq!(back.position, c.position);
        assert_eq!(back.gap_shipped, c.gap_shipped);
        // Every single-byte change and every cut is refused.
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.to_vec();
            bad[i] ^= 0x01;
            assert!(Checkpoint::decode(&bad).is_err(), "flip at {i}");
            assert!(Checkpoint::decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    #[test]
    fn store_load_list_and_floor() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(retention_floor(dir.path()), None);
        assert_eq!(Checkpoint::load(dir.path(), "a").unwrap(), None);
        sample().store(dir.path(), "a").unwrap();
        Checkpoint {
            next_seq: 3,
            ..sample()
        }
        .store(dir.path(), "b")
        .unwrap();
        assert_eq!(retention_floor(dir.path()), Some(3));
        fs::write(Checkpoint::path(dir.path(), "c").unwrap(), "garbage").unwrap();
        let err = Checkpoint::load(dir.path(), "c").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("ship-c.checkpoint"), "{err}");
        // A damaged checkpoint keeps everything.
        assert_eq!(retention_floor(dir.path()), Some(0));
        let names: Vec<_> = checkpoints(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(Checkpoint::path(dir.path(), "../x").is_err());
        assert!(Checkpoint::path(dir.path(), "").is_err());
    }

    #[test]
    fn log_id_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LogId::read(dir.path()).unwrap(), None);
        let a = LogId::get_or_create(dir.path()).unwrap();
        let b = LogId::get_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string().parse::<LogId>().unwrap(), a);
        fs::write(dir.path().join(LOG_ID_FILE), "nope\n").unwrap();
        assert!(LogId::get_or_create(dir.path()).is_err());
    }

    /// Appends `n` records of 40 bytes to `log`, one batch each, synced.
    fn append(log: &mut crate::SegmentLog, n: u64) {
        use crate::Sink;
        for _ in 0..n {
            let mut frames = Vec::new();
            crate::format::encode_frame(&mut frames, log.next_seq(), 0, &[7u8; 40]);
            let seq = log.next_seq();
            log.append(&crate::Batch::new(&frames, seq, 1).unwrap())
                .unwrap();
            log.sync().unwrap();
        }
    }

    #[test]
    fn retention_keeps_what_a_checkpoint_has_not_passed_unless_bytes_force_it() {
        use crate::{LogOptions, Retain, SegmentLog, Sink};
        let segments = |dir: &Path| crate::Reader::open(dir).unwrap().segments().unwrap();
        // Room for two records a segment.
        let segment_bytes =
            (crate::format::HEADER_LEN + 2 * (crate::format::FRAME_HEADER_LEN + 40)) as u64;
        for retain in [Retain::Segments(2), Retain::Bytes(3 * segment_bytes)] {
            let dir = tempfile::tempdir().unwrap();
            let options = LogOptions {
                segment_bytes,
                retain,
                ..LogOptions::default()
            };
            let mut log = SegmentLog::open(dir.path(), options).unwrap();
            let log_id = LogId::get_or_create(dir.path()).unwrap();
            let at = |next_seq| Checkpoint {
                log: log_id,
                next_seq,
                position: None,
                gap_shipped: Gap::default(),
                destination: String::new(),
            };
            at(3).store(dir.path(), "slow").unwrap();
            append(&mut log, 20);
            let kept = segments(dir.path());
            match retain {
                // Records 3.. are unshipped: the segment holding 2 and 3 and all after stay.
                Retain::Segments(_) => assert_eq!(kept[0].first_seq, 2, "{kept:?}"),
                // The hard bound deletes regardless.
                _ => assert!(kept[0].first_seq > 3 && kept.len() <= 3, "{kept:?}"),
            }
            // The shipper moves on: the next retention pass (after the cache's TTL) frees.
            at(17).store(dir.path(), "slow").unwrap();
            std::thread::sleep(FloorCache::TTL + Duration::from_millis(50));
            append(&mut log, 1);
            let kept = segments(dir.path());
            assert!(kept.len() <= 3, "{kept:?}");
            assert!(kept[0].first_seq <= 17, "{kept:?}");
            assert_eq!(log.next_seq(), 21);
        }
    }
}
