//! Reading a log directory back, also while a writer appends to it.

use crate::format::{self, FrameError, Version, HEADER_LEN};
use crate::log::{annotate, list_segments, read_header, read_up_to};
use std::fs::File;
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

mod follow;
pub(crate) use follow::Announcer;
pub use follow::{Follow, DEFAULT_POLL_INTERVAL};

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its sequence number: consecutive across segments and restarts.
    pub seq: u64,
    /// The bytes its [`Record::encode`](crate::Record::encode) wrote.
    pub payload: Vec<u8>,
    /// How many events were lost (evicted by `DropOldest`, or failed to encode) between the
    /// previous record and this one.
    pub dropped_before: u64,
    /// How many events were refused (a full ring under `Reject` or a `Block` timeout, a
    /// closed or unhealthy writer) since the records before this one were taken: the writer
    /// counts refusals when it takes a batch, and puts them on the batch's first record. Their
    /// place is exact to within one ring: every record before this one was accepted before
    /// them, but a full ring's refusals came after the records then in it, so up to a ring's
    /// capacity of records from this one on may have been accepted before them too (one
    /// thread filling a 2-slot ring with 200 events: 198 refusals on the first record). Always
    /// 0 in logs written before format version 2.
    pub refused_before: u64,
}

/// Reads a log directory.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start::<String>().unwrap();
/// for i in 0..3 {
///     emitter.emit(format!("event {i}")).unwrap();
/// }
/// emitter.flush().unwrap();
///
/// let reader = ringwal::Reader::open(dir.path()).unwrap();
/// let entries: Vec<ringwal::Entry> = reader.iter().collect::<Result<_, _>>().unwrap();
/// assert_eq!(entries[2].payload, b"event 2");
/// assert_eq!(reader.from_seq(1).count(), 2);
/// # drop(writer);
/// ```
#[derive(Debug, Clone)]
pub struct Reader {
    dir: PathBuf,
    max_record: usize,
}

/// A segment of a log, as [`Reader::segments`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its file.
    pub path: PathBuf,
    /// Its first record's sequence number (from its name).
    pub first_seq: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

impl Reader {
    /// Opens the log in `dir`. Errors if `dir` does not exist, is not a directory, or holds
    /// no segment file (not a ringwal log).
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Reader> {
        let dir = dir.as_ref();
        let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                io::Error::new(e.kind(), format!("{}: no such directory", dir.display()))
            }
            _ => annotate(dir, e),
        })?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: not a directory (a file, so not a log directory)",
                    dir.display()
                ),
            ));
        }
        if list_segments(dir)?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a ringwal log (no segment files)", dir.display()),
            ));
        }
        Ok(Reader {
            dir: dir.to_path_buf(),
            max_record: format::MAX_PAYLOAD,
        })
    }

    /// Limits the payload a reader allocates for one record to `bytes` (by default
    /// [`format::MAX_PAYLOAD`], the largest a writer writes). A frame declaring a longer
    /// payload is an error naming its file and offset, read or not. Whatever the limit, a
    /// reader never allocates more for a record than the bytes its segment holds: a length
    /// field pointing past the end of the file is a record still being written (or damage),
    /// never an allocation.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    /// emitter.emit(vec![7u8; 100]).unwrap();
    /// emitter.flush().unwrap();
    /// let reader = ringwal::Reader::open(dir.path()).unwrap().max_record(64);
    /// let err = reader.iter().next().unwrap().unwrap_err();
    /// assert!(err.to_string().contains("more than this reader's limit of 64"), "{err}");
    /// # drop(writer);
    /// ```
    pub fn max_record(mut self, bytes: usize) -> Reader {
        self.max_record = bytes;
        self
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segments now in the directory, oldest first.
    pub fn segments(&self) -> io::Result<Vec<SegmentInfo>> {
        list_segments(&self.dir)?
            .into_iter()
            .map(|(first_seq, path)| {
                let bytes = std::fs::metadata(&path)
                    .map_err(|e| annotate(&path, e))?
                    .len();
                Ok(SegmentInfo {
                    path,
                    first_seq,
                    bytes,
                })
            })
            .collect()
    }

    /// Every record, oldest first. See [`Iter`].
    pub fn iter(&self) -> Iter {
        Iter::new(self.dir.clone(), None, self.max_record)
    }

    /// The records from sequence number `seq` on (from the oldest one kept, if retention
    /// deleted `seq`).
    pub fn from_seq(&self, seq: u64) -> Iter {
        Iter::new(self.dir.clone(), Some(seq), self.max_record)
    }

    /// A live follow from the first record: every record, then each one as it is appended
    /// (the same as `self.iter().follow()`; [`Iter::follow`] from any iterator). Blocking,
    /// async, or (feature `stream`) a `Stream`: see [`Follow`].
    pub fn follow(&self) -> Follow {
        self.iter().follow()
    }
}

/// Iterator over a log's records: `Item = io::Result<Entry>`.
///
/// It reads segment by segment. At the end of the newest segment it returns `None`; calling
/// `next` again later picks up records appended since (this is how `ringwal tail -f` follows
/// a live log), including new segments. [`follow`](Iter::follow) turns it into a [`Follow`],
/// which waits for those records (blocking, or as a future or `Stream`). A record still being written, or a torn tail that
/// recovery has not cut yet, looks like the end.
///
/// Damage yields one `Err` naming the file and offset, and the iterator then stops (it
/// returns `None` from then on): a bad header, a bad frame with valid frames after it, an
/// incomplete frame at the end of a segment that is not the newest, or a sequence break.
///
/// A reader that falls behind retention (the writer deleted segments it had not read yet,
/// as `ringwal tail -f` behind a busy writer can) gets one `Err` of kind
/// [`io::ErrorKind::NotFound`] saying which records retention removed, and then goes on with
/// the oldest record kept.
///
/// It lists the directory once, and again only where the listing it has ends (a live
/// writer may have added segments): reading a log takes time linear in its size.
///
/// A segment file rewritten while it is read is read again from its start, returning only
/// the records after those returned already: a writer restarting with another
/// [`SegmentPreamble`](crate::SegmentPreamble) rebuilds its newest segment in place when it
/// holds no record, and a segment may be deleted and written again under its name (a copy).
/// The iterator looks for this where it shows (at the end, at bytes that are not the
/// expected frame, at a segment's first record), with a `stat` of the file, not on every
/// record. A new preamble is returned again ([`take_preamble`](Iter::take_preamble)); a
/// rewritten file whose last record returned is not the same record is an error (another
/// log), and one holding fewer records than were returned is waited on.
#[derive(Debug)]
pub struct Iter {
    dir: PathBuf,
    from: Option<u64>,
    max_record: usize,
    /// The segments as last listed, oldest first.
    listing: Vec<(u64, PathBuf)>,
    /// `listing` is to be taken again before use (nothing listed yet, or a listed file is
    /// gone).
    stale: bool,
    /// How many times the directory was listed (for tests of the linear bound).
    listings: u64,
    /// The last `Err` was retention overtaking the reader: go on, do not stop.
    overtaken: bool,
    current: Option<Open>,
    /// The first sequence number of the segment to open next (after `current`).
    next_segment: Option<u64>,
    expected: Option<u64>,
    failed: bool,
    /// Record `u64::MAX`, the last a log can hold, was returned: any frame after it is damage.
    exhausted: bool,
    /// Losses read from gap markers, not yet attached to a record.
    pending: Gap,
    /// Preamble frames' payloads read and not taken yet ([`Iter::take_preamble`]): only those
    /// of the segment being read (each new segment drops the untaken ones of the one before).
    preamble: Vec<Vec<u8>>,
    /// Just past the last entry returned.
    position: Option<crate::checkpoint::Position>,
    /// The frame header of the last entry returned (its checksum covers the record): to tell
    /// whether a rewritten segment still holds that record ([`Iter::reopen_current`]).
    last_frame: Option<(u64, [u8; format::FRAME_HEADER_LEN])>,
    /// The current segment was found rewritten and is to be read again from its start.
    reopen: Option<Reopen>,
    /// Reading a rewritten segment again: its records before this one were returned already.
    skip_to: Option<u64>,
}

/// What a follower keeps of a segment it found rewritten ([`Iter::reopen_current`]) until it has
/// read the new file's start.
#[derive(Debug)]
struct Reopen {
    first_seq: u64,
    /// The next record to return.
    expected: u64,
    /// The old file's preamble frames, as read.
    start: Vec<u8>,
    /// Its preamble frames not taken yet.
    untaken: Vec<Vec<u8>>,
    /// The new file's preamble is still being read.
    reading_preamble: bool,
}

/// Events lost at one place in the log: what a record's `dropped_before`/`refused_before`
/// say, or what gap markers after the last record say ([`Iter::trailing_gap`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gap {
    /// Evicted by `DropOldest` (or failed to encode).
    pub dropped: u64,
    /// Refused by `emit`.
    pub refused: u64,
}

#[derive(Debug)]
struct Open {
    first_seq: u64,
    version: Version,
    path: PathBuf,
    reader: BufReader<File>,
    /// Where the next frame starts.
    offset: u64,
    /// The reader's position may differ from `offset` (after a partial read at the end).
    needs_seek: bool,
    /// The file's length when last looked at (it grows while a writer appends).
    len: u64,
    /// A newer segment has been seen, so no record will be appended to this one.
    sealed: bool,
    /// A record or gap marker has been read from this file. Until then recovery may rebuild
    /// it in place (a restarted writer with another preamble): same file, new bytes.
    records: bool,
    /// The preamble frames read from this file, as they are on disk: to tell an in-place
    /// rebuild from the file we read, and a new preamble from the same one again.
    start: Vec<u8>,
    /// The losses from gap markers before this file (at the end of the segment before): what
    /// a reopen of it starts from.
    carried: Gap,
}

fn damaged(path: &Path, offset: u64, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: at offset {offset}: {what}", path.display()),
    )
}

enum Step {
    /// A record, and its frame header (zero-padded for version 1).
    Entry(Entry, [u8; format::FRAME_HEADER_LEN]),
    /// A gap marker: losses with no record of their own.
    Marker(Gap),
    /// A preamble frame's payload.
    Preamble(Vec<u8>),
    /// No byte after the last frame (for now).
    End,
    /// The bytes at the offset are not the expected frame.
    Bad(String),
    /// A valid, checksummed frame with the wrong sequence number: damage (or a second
    /// writer) wherever it is, never a tail still being written.
    Break(String),
}

impl Iter {
    fn new(dir: PathBuf, from: Option<u64>, max_record: usize) -> Iter {
        Iter {
            dir,
            from,
            max_record,
            listing: Vec::new(),
            stale: true,
            listings: 0,
            overtaken: false,
            current: None,
            next_segment: None,
            expected: None,
            failed: false,
            exhausted: false,
            pending: Gap::default(),
            preamble: Vec::new(),
            position: None,
            last_frame: None,
            reopen: None,
            skip_to: None,
        }
    }

    /// The payloads of the preamble frames read since the last call (see
    /// [`SegmentPreamble`](crate::SegmentPreamble)), oldest first. A segment's preamble is read
    /// before its first record is returned, so a caller that takes it before handling each
    /// entry sees every segment's preamble before the records it describes. To read from any
    /// point with the context the log gives there, start at the first record of that point's
    /// segment ([`Reader::segments`]) and skip up to the point yourself: the records
    /// [`Reader::from_seq`] steps over within the segment are not returned (the preamble
    /// is). If not taken, only the current segment's are kept. A segment rewritten while read
    /// (see [`Iter`]) with another preamble gives its new preamble frames here, before its
    /// next record; with the same preamble, nothing again.
    pub fn take_preamble(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.preamble)
    }

    /// Whether an error has stopped this iterator: from then on it returns `None`, even if a
    /// writer appends more. Every error stops it except one: retention deleting segments
    /// before this reader got to them (an error of kind `NotFound` naming the records lost),
    /// after which it goes on at the oldest record kept. A follower uses this to tell "warn
    /// and go on" from "give up".
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let dir = tempfile::tempdir()?;
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path()).start::<String>().unwrap();
    /// emitter.emit("hello".to_string()).unwrap();
    /// emitter.flush().unwrap();
    /// let mut iter = ringwal::Reader::open(dir.path())?.iter();
    /// let mut read = 0;
    /// while let Some(entry) = iter.next() {
    ///     match entry {
    ///         Ok(_) => read += 1,
    ///         Err(e) if !iter.has_failed() => eprintln!("warning: {e}"), // and read on
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// // `None`: the end for now (a follower would sleep and call `next` again).
    /// assert_eq!(read, 1);
    /// assert!(!iter.has_failed());
    /// # writer.shutdown().unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The losses recorded after the last record read so far (gap markers a writer leaves at
    /// shutdown for events refused or evicted after its last record). Once the iterator has
    /// returned `None`, together with the entries' `dropped_before`/`refused_before` these add
    /// up to every event the log's writers lost.
    pub fn trailing_gap(&self) -> Gap {
        self.pending
    }

    /// Where the frame after the last entry returned starts: that entry's segment and the
    /// byte offset just past it (gap markers after it are read with the next entry).
    /// `None` before the first entry. A shipper stores it with its cursor
    /// ([`checkpoint::Position`](crate::checkpoint::Position)), which gives its lag in bytes.
    pub fn position(&self) -> Option<crate::checkpoint::Position> {
        self.position
    }

    /// The sequence number after `seq`. Record `u64::MAX` is the last a log can hold: after
    /// it the log ends, and a frame found there is an error (`advance`).
    fn after(&mut self, seq: u64) -> u64 {
        seq.checked_add(1).unwrap_or_else(|| {
            self.exhausted = true;
            0
        })
    }

    fn relist(&mut self) -> io::Result<()> {
        self.listing = list_segments(&self.dir)?;
        self.listings += 1;
        self.stale = false;
        Ok(())
    }

    /// Whether `path` is the newest segment and its header is not (fully) written yet: a
    /// writer creating it right now, or a crash that cut its creation short (which recovery
    /// removes). That is "the end, for now", not damage.
    fn being_created(&mut self, first_seq: u64, path: &Path) -> io::Result<bool> {
        let mut header = [0u8; HEADER_LEN];
        let n = match File::open(path) {
            Ok(mut f) => read_up_to(&mut f, &mut header).map_err(|e| annotate(path, e))?,
            // Gone since it was listed: opening it says so (and looks again).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(annotate(path, e)),
        };
        if n == HEADER_LEN && header.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        // Only a newest segment may be unfinished: ask the directory, not an old listing.
        self.relist()?;
        Ok(self.listing.last().map(|s| s.0) == Some(first_seq))
    }

    /// The segment after the current one, or the one to start with: from the listing there
    /// is, and from a new one only when that one has nothing after the current segment.
    fn pick_segment(&mut self) -> io::Result<Option<(u64, PathBuf)>> {
        if !self.stale {
            if let Some(found) = self.find_segment() {
                return Ok(Some(found));
            }
        }
        self.relist()?;
        Ok(self.find_segment())
    }

    fn find_segment(&self) -> Option<(u64, PathBuf)> {
        let segments = &self.listing;
        let at = match (&self.current, self.next_segment) {
            (Some(open), _) => segments.partition_point(|s| s.0 <= open.first_seq),
            (None, Some(next)) => segments.partition_point(|s| s.0 < next),
            // The last segment starting at or before `seq` (or the oldest).
            (None, None) => match self.from {
                Some(seq) => segments.partition_point(|s| s.0 <= seq).saturating_sub(1),
                None => 0,
            },
        };
        segments.get(at).cloned()
    }

    fn open_segment(&mut self, first_seq: u64, path: PathBuf) -> io::Result<()> {
        let (header_seq, _, version) = read_header(&path)?;
        if header_seq != first_seq {
            return Err(damaged(
                &path,
                0,
                format!("header says first record {header_seq}, file name says {first_seq}"),
            ));
        }
        let reopen = self.reopen.take().filter(|r| r.first_seq == first_seq);
        if let Some(reopen) = &reopen {
            // The segment we were reading, rewritten: from its start again, returning only
            // the records after those returned (`skip_to`).
            self.expected = Some(first_seq);
            self.skip_to = Some(reopen.expected).filter(|&to| to > first_seq);
        }
        if let Some(expected) = self.expected {
            if first_seq > expected {
                // Retention deletes the oldest segments: if nothing older than this one is
                // left (it may itself be gone by now), the records before it were deleted,
                // not damaged.
                self.relist()?;
                if self.listing.first().is_none_or(|s| s.0 >= first_seq) {
                    self.expected = Some(first_seq);
                    self.next_segment = Some(first_seq);
                    self.overtaken = true;
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "{}: records {expected} to {} were deleted by retention before \
                             this reader got to them; going on at record {first_seq}",
                            self.dir.display(),
                            first_seq - 1
                        ),
                    ));
                }
            }
            if first_seq != expected {
                return Err(damaged(
                    &path,
                    0,
                    format!("segment starts at record {first_seq}, expected {expected}"),
                ));
            }
        }
        let file = File::open(&path).map_err(|e| annotate(&path, e))?;
        self.expected = Some(first_seq);
        self.preamble.clear();
        if let Some(mut reopen) = reopen {
            reopen.reading_preamble = true;
            self.reopen = Some(reopen);
        }
        self.current = Some(Open {
            first_seq,
            version,
            path,
            reader: BufReader::with_capacity(64 << 10, file),
            offset: HEADER_LEN as u64,
            needs_seek: true,
            len: 0,
            sealed: false,
            records: false,
            start: Vec::new(),
            carried: self.pending,
        });
        Ok(())
    }

    /// Reads the frame at the current offset.
    fn step(open: &mut Open, expected: u64, max_record: usize) -> io::Result<Step> {
        let path = open.path.clone();
        let io_err = |e: io::Error| annotate(&path, e);
        if open.needs_seek {
            open.reader
                .seek(SeekFrom::Start(open.offset))
                .map_err(io_err)?;
            open.needs_seek = false;
        }
        let header_len = open.version.frame_header_len();
        let mut header = [0u8; format::FRAME_HEADER_LEN];
        let header = &mut header[..header_len];
        let n = read_up_to(&mut open.reader, header).map_err(io_err)?;
        if n == 0 {
            open.needs_seek = true;
            return Ok(Step::End);
        }
        let size = match open.version.frame_size(&header[..n]) {
            Ok(size) => size,
            Err(reason) => {
                open.needs_seek = true;
                return Ok(Step::Bad(reason.to_string()));
            }
        };
        // Allocate only what the file holds (a bogus length is not a reason to) and what the
        // reader allows.
        let end = open.offset.saturating_add(size as u64);
        if end > open.len {
            open.len = open.reader.get_ref().metadata().map_err(io_err)?.len();
            if end > open.len {
                open.needs_seek = true;
                return Ok(Step::Bad(
                    FrameError::Incomplete { needed: size }.to_string(),
                ));
            }
        }
        if size - header_len > max_record {
            open.needs_seek = true;
            return Ok(Step::Break(format!(
                "a record of {} bytes, more than this reader's limit of {max_record} \
                 (Reader::max_record)",
                size - header_len
            )));
        }
        let mut frame = vec![0u8; size];
        frame[..header_len].copy_from_slice(header);
        let got = read_up_to(&mut open.reader, &mut frame[header_len..]).map_err(io_err)?;
        if got + header_len < size {
            open.needs_seek = true;
            return Ok(Step::Bad(
                FrameError::Incomplete { needed: size }.to_string(),
            ));
        }
        match open.version.decode_frame(&frame) {
            Ok((f, _)) if f.seq == expected && f.marker => {
                open.offset += size as u64;
                Ok(Step::Marker(Gap {
                    dropped: f.dropped_before,
                    refused: f.refused_before,
                }))
            }
            Ok((f, _)) if f.seq == expected && f.preamble => {
                open.start.extend_from_slice(&frame);
                frame.drain(..header_len);
                open.offset += size as u64;
                Ok(Step::Preamble(frame))
            }
            Ok((f, _)) if f.seq == expected => {
                let (seq, dropped_before, refused_before) =
                    (f.seq, f.dropped_before, f.refused_before);
                let mut fingerprint = [0u8; format::FRAME_HEADER_LEN];
                fingerprint[..header_len].copy_from_slice(&frame[..header_len]);
                frame.drain(..header_len);
                open.offset += size as u64;
                Ok(Step::Entry(
                    Entry {
                        seq,
                        dropped_before,
                        refused_before,
                        payload: frame,
                    },
                    fingerprint,
                ))
            }
            Ok((f, _)) => {
                open.needs_seek = true;
                Ok(Step::Break(format!(
                    "sequence break: expected record {expected}, found {}",
                    f.seq
                )))
            }
            Err(reason) => {
                open.needs_seek = true;
                Ok(Step::Bad(reason.to_string()))
            }
        }
    }

    fn advance(&mut self) -> io::Result<Option<Entry>> {
        // Files deleted between listing and opening (retention, recovery): look again, a
        // bounded number of times.
        let mut gone = 0;
        let mut reread = false;
        // Rewrites of the current segment found in this call: a file replaced again and again
        // is looked at in a later call.
        let mut reopened = 0;
        loop {
            if self.current.is_none() {
                let Some((seq, path)) = self.pick_segment()? else {
                    return Ok(None);
                };
                if self.being_created(seq, &path)? {
                    return Ok(None);
                }
                match self.open_segment(seq, path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound && !self.overtaken => {
                        gone += 1;
                        if gone > 8 {
                            return Err(e);
                        }
                        self.stale = true;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let expected = self.expected.expect("set when a segment is opened");
            let open = self.current.as_mut().expect("opened above");
            let (at, fresh) = (open.offset, !open.records);
            let step = Self::step(open, expected, self.max_record)?;
            // Whether the file is still the one read so far, looked at where a rewrite shows
            // (not on every record): at the end (where a follower waits, and a file deleted
            // and written again, or cut shorter, leaves it), at bytes that are not the
            // expected frame (a segment rebuilt in place under the old offset), and at the
            // first record or marker after the header and preamble (rebuilt in place with a
            // preamble of the same length).
            let deep = match step {
                Step::End => Some(false),
                Step::Bad(_) | Step::Break(_) => Some(true),
                Step::Entry(..) | Step::Marker(_) if fresh => Some(true),
                Step::Entry(..) | Step::Marker(_) | Step::Preamble(_) => None,
            };
            if let Some(deep) = deep {
                if reopened < 8 && rewritten(open, deep)? {
                    reopened += 1;
                    self.reopen_current();
                    continue;
                }
            }
            let open = self.current.as_mut().expect("opened above");
            let (offset, path, version) = (open.offset, open.path.clone(), open.version);
            if self.exhausted && !matches!(step, Step::End | Step::Bad(_)) {
                return Err(damaged(&path, at, format::Corruption::PastLastRecord));
            }
            if matches!(step, Step::Entry(..) | Step::Marker(_)) {
                open.records = true;
            }
            if !matches!(step, Step::Preamble(_)) {
                self.preamble_read();
            }
            match step {
                Step::Marker(gap) => {
                    self.pending.dropped = self.pending.dropped.saturating_add(gap.dropped);
                    self.pending.refused = self.pending.refused.saturating_add(gap.refused);
                }
                Step::Preamble(payload) => self.preamble.push(payload),
                Step::Entry(mut entry, frame) => {
                    self.expected = Some(self.after(expected));
                    let pending = std::mem::take(&mut self.pending);
                    if let Some(to) = self.skip_to {
                        if entry.seq < to {
                            // Returned before the segment was rewritten. The last one returned
                            // must be the same record (its header's checksum covers it), or
                            // the new file is not a copy of what was read.
                            if self
                                .last_frame
                                .is_some_and(|(seq, old)| seq == entry.seq && old != frame)
                            {
                                return Err(damaged(
                                    &path,
                                    at,
                                    format!(
                                        "segment rewritten while read, and its record {} is \
                                         not the one this reader returned",
                                        entry.seq
                                    ),
                                ));
                            }
                            continue;
                        }
                        self.skip_to = None;
                    }
                    if self.from.is_some_and(|from| entry.seq < from) {
                        continue;
                    }
                    entry.dropped_before = entry.dropped_before.saturating_add(pending.dropped);
                    entry.refused_before = entry.refused_before.saturating_add(pending.refused);
                    self.position = self.current.as_ref().map(|o| crate::checkpoint::Position {
                        segment: o.first_seq,
                        offset: o.offset,
                    });
                    self.last_frame = Some((entry.seq, frame));
                    return Ok(Some(entry));
                }
                Step::Bad(reason) => {
                    // In the newest segment, a bad frame with nothing valid after it is a
                    // record still being written (or a torn tail): the end, for now.
                    let newest = self.pick_segment()?.is_none();
                    if newest && !follows(&path, version, offset, expected)? {
                        return Ok(None);
                    }
                    // Valid frames follow: but a live writer may have completed this frame
                    // (a read racing its write sees part of it) and appended those since.
                    // Read it once more before calling it damage.
                    if !reread {
                        reread = true;
                        continue;
                    }
                    return Err(damaged(&path, offset, reason));
                }
                Step::Break(reason) => return Err(damaged(&path, offset, reason)),
                Step::End => {
                    let Some((seq, _)) = self.pick_segment()? else {
                        return Ok(None);
                    };
                    let open = self.current.as_mut().expect("opened above");
                    if !open.sealed {
                        // A newer segment exists, so this one is sealed: look once more for
                        // records that landed after our last look, then move on.
                        open.sealed = true;
                        continue;
                    }
                    // A rewritten segment holding fewer records than were returned from it:
                    // the next segment goes on after those returned.
                    if let Some(to) = self.skip_to.take() {
                        self.expected = Some(to);
                    }
                    self.current = None;
                    self.next_segment = Some(seq);
                }
            }
        }
    }

    /// The current segment's file was found rewritten ([`rewritten`]): read it again from its
    /// start, through the same path as the move to the next segment (`pick_segment`,
    /// `being_created`, `open_segment`), returning only the records after those returned.
    fn reopen_current(&mut self) {
        let Some(open) = self.current.take() else {
            return;
        };
        let expected = self.expected.unwrap_or(open.first_seq);
        // Still skipping what an earlier rewrite's reading returned already.
        let next = self.skip_to.take().map_or(expected, |to| to.max(expected));
        // The preamble the caller last had: that of a rewrite not fully read yet, if any.
        let (start, untaken) = match self.reopen.take() {
            Some(earlier) => (earlier.start, earlier.untaken),
            None => (open.start, std::mem::take(&mut self.preamble)),
        };
        self.reopen = Some(Reopen {
            first_seq: open.first_seq,
            expected: next,
            start,
            untaken,
            reading_preamble: false,
        });
        self.next_segment = Some(open.first_seq);
        // The gap markers read from the old file are read again from the new one.
        self.pending = open.carried;
        // It may be gone again: the listing is checked before use.
        self.stale = true;
    }

    /// At the first frame after a reopened segment's preamble (or its end): a preamble that is
    /// the one read before is not returned again (its frames not taken yet still are); a new
    /// one replaces them, as a new segment's does, so a decoder gets it before its records.
    fn preamble_read(&mut self) {
        if !self.reopen.as_ref().is_some_and(|r| r.reading_preamble) {
            return;
        }
        let Some(reopen) = self.reopen.take() else {
            return;
        };
        if self
            .current
            .as_ref()
            .is_some_and(|o| o.start == reopen.start)
        {
            self.preamble = reopen.untaken;
        }
    }
}

/// Whether the file at `open.path` is no longer the one `open` has read: another file there
/// (the segment deleted and written again: a new inode), this one shorter than what was read
/// (cut and written again), or, if `deep`, while only its header and preamble were read,
/// other preamble bytes: recovery rebuilds a restarted writer's newest segment in place, same
/// inode and maybe longer, when it holds no record and its preamble is not the new writer's.
/// One `stat` and one `fstat`, plus, if `deep` and still at the preamble, one read of it.
fn rewritten(open: &mut Open, deep: bool) -> io::Result<bool> {
    let path = &open.path;
    let named = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // Deleted (retention, recovery), not replaced: the listing says where to go on.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(annotate(path, e)),
    };
    let ours = open
        .reader
        .get_ref()
        .metadata()
        .map_err(|e| annotate(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (named.dev(), named.ino()) != (ours.dev(), ours.ino()) {
            return Ok(true);
        }
    }
    // Elsewhere an open file cannot be deleted and replaced: its length and bytes tell.
    #[cfg(not(unix))]
    let _ = named;
    if ours.len() < open.offset {
        return Ok(true);
    }
    if !deep || open.records || open.start.is_empty() {
        return Ok(false);
    }
    let mut now = vec![0u8; open.start.len()];
    // Read past the buffer, which the next step's seek to `offset` discards.
    open.needs_seek = true;
    let file = open.reader.get_mut();
    file.seek(SeekFrom::Start(HEADER_LEN as u64))
        .map_err(|e| annotate(path, e))?;
    let n = read_up_to(file, &mut now).map_err(|e| annotate(path, e))?;
    Ok(n < now.len() || now != open.start)
}

/// Whether a valid frame with a sequence number at or after `expected` follows `offset` in
/// the file (then a bad frame at `offset` is damage, not a tail still being written).
fn follows(path: &Path, version: Version, offset: u64, expected: u64) -> io::Result<bool> {
    let io_err = |e: io::Error| annotate(path, e);
    let file = File::open(path).map_err(io_err)?;
    // Streamed from `offset` on: constant memory, whatever follows (a sparse 1 GiB tail).
    let mut rest = format::FileSource::from_offset(file, offset).map_err(io_err)?;
    match format::valid_frame_after_in(version, &mut rest, 1, expected) {
        Ok(found) => Ok(found),
        // The file got shorter while we looked: recovery is cutting this very tail, so no
        // valid frame follows the bad one.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(io_err(e)),
    }
}

impl Iterator for Iter {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.advance() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => None,
            Err(e) => {
                // Retention overtaking the reader is reported, then reading goes on.
                self.failed = !std::mem::take(&mut self.overtaken);
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_log_lists_its_directory_a_constant_number_of_times() {
        let dir = tempfile::tempdir().unwrap();
        for first in (0..3000).step_by(10) {
            let mut bytes = format::encode_header(first).to_vec();
            for seq in first..first + 10 {
                format::encode_frame(&mut bytes, seq, 0, b"x");
            }
            std::fs::write(dir.path().join(format::segment_file_name(first)), bytes).unwrap();
        }
        let reader = Reader::open(dir.path()).unwrap();
        for (mut iter, first) in [(reader.iter(), 0), (reader.from_seq(1234), 1234)] {
            let seqs: Vec<u64> = iter.by_ref().map(|e| e.unwrap().seq).collect();
            assert_eq!(seqs, (first..3000).collect::<Vec<_>>());
            // Once at the start, once at the end (a live writer may have added segments).
            assert!(iter.listings <= 2, "{} listings", iter.listings);
            // Following a live log: one more per look at the end.
            assert!(iter.next().is_none());
            assert!(iter.listings <= 3, "{} listings", iter.listings);
        }
    }
}
