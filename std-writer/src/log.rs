//! The default [`Sink`]: a directory of CRC-framed segment files.

use crate::checkpoint::FloorCache;
use crate::format::{self, FileSource, HeaderError, ReadAt, ScanEnd, ScanError, HEADER_LEN};
use crate::reader::Announcer;
use crate::sink::{Batch, Sink};
use crate::vfs::{StdFs, Vfs};
use crate::Retain;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Settings of a [`SegmentLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Start a new segment when the current one would grow past this many bytes (a single
    /// record larger than this gets a segment of its own). Default 64 MiB.
    pub segment_bytes: u64,
    /// Which old segments to delete. Default [`Retain::All`].
    pub retain: Retain,
    /// Whether `sync` is part of the deal: then a failed fsync rolls back to the last
    /// successful `sync`. Off for `SyncPolicy::Never`: rollback points for a failed append
    /// then follow every successful append (a failed `sync` still rolls back to the last
    /// successful one: a retried fsync says nothing about the pages the failed one may
    /// have dropped), and a segment is not fsynced when it is sealed (only at the next
    /// `sync`): so after a power loss an older segment, too, can be damaged, and opening
    /// reads every segment frame by frame (see [`RecoveryMode`]). When on, sealed segments
    /// are fsynced before the next one is created, only the newest can be damaged, and
    /// opening reads only that one frame by frame (the others' headers). Default true.
    pub durable: bool,
    /// What opening does with damage a crash or a power loss can leave. Default
    /// [`RecoveryMode::PointInTime`].
    pub recovery: RecoveryMode,
    /// What to write at the start of every segment the log creates (see [`SegmentPreamble`]).
    /// Default none.
    pub preamble: Option<SegmentPreamble>,
}

/// Context written at the start of every segment a log creates, as *preamble frames* (see
/// [`format`](crate::format)): for whatever a reader that starts at that segment — `ringwal
/// cat --from`, `tail`, a log whose oldest segments retention deleted — needs to make sense
/// of the records after it. `ringwal-tracing` writes its callsites' metadata there.
///
/// The function runs each time a segment is created, before any record goes into it: at each
/// rotation and at a retried creation (on the writer's thread: it must not wait for the
/// writer, and should be quick), and when the log is opened (on the opening thread) on an
/// empty directory, after a version-1 segment, or on a newest segment that holds no record
/// and no gap marker yet (rebuilt in place with this log's preamble, unless it holds exactly
/// that already; a newest segment with records is appended to as it is). Written after the
/// segment's header and made durable before any record, so a segment that holds a record
/// holds its whole preamble after any crash. A segment with preamble frames has a version-3
/// header; others keep version 2, which older readers read. What it
/// pushes counts toward the segment's size (a preamble larger than `segment_bytes` makes
/// every segment hold it and one record). Preamble frames take no sequence number, are not
/// records, and readers skip them unless asked
/// ([`Iter::take_preamble`](crate::Iter::take_preamble)). Not written by a
/// [`Sink`] of your own.
///
/// ```
/// use ringwal::{LogOptions, Reader, SegmentPreamble};
///
/// let dir = tempfile::tempdir().unwrap();
/// let (writer, emitter) = ringwal::Writer::builder(dir.path())
///     .segment_bytes(256)
///     .segment_preamble(SegmentPreamble::new(|p| p.push(b"schema v7").unwrap()))
///     .start::<String>()
///     .unwrap();
/// for i in 0..20 {
///     emitter.emit(format!("record {i}")).unwrap();
/// }
/// writer.shutdown().unwrap();
///
/// let reader = Reader::open(dir.path()).unwrap();
/// assert!(reader.segments().unwrap().len() > 1);
/// // A reader starting at the last segment still finds the schema before its records.
/// let last = reader.segments().unwrap().last().unwrap().first_seq;
/// let mut iter = reader.from_seq(last);
/// let first = iter.next().unwrap().unwrap();
/// assert_eq!(iter.take_preamble(), vec![b"schema v7".to_vec()]);
/// assert_eq!(first.seq, last);
/// ```
#[derive(Clone)]
pub struct SegmentPreamble {
    write: Arc<dyn Fn(&mut Preamble<'_>) + Send + Sync>,
    observe: Option<Observer>,
}

/// What [`SegmentPreamble::with_observer`] calls with each record's payload.
type Observer = Arc<dyn Fn(&[u8]) + Send + Sync>;

impl SegmentPreamble {
    /// A preamble that `f` writes, into each new segment.
    pub fn new(f: impl Fn(&mut Preamble<'_>) + Send + Sync + 'static) -> SegmentPreamble {
        SegmentPreamble {
            write: Arc::new(f),
            observe: None,
        }
    }

    /// Also calls `observe` with the payload of every record the log appends, in log order,
    /// on the thread that appends (the writer's), before the log creates the segment that
    /// follows it: for a preamble that is a state of the records so far (say, the sessions
    /// or spans open at that point), which `observe` keeps and the preamble's function
    /// writes. After a failed write or sync the log may take records again that it was
    /// given before (the writer retries from where the log says it got to): keep the state
    /// such that seeing a record again, in order, gives the same state.
    ///
    /// ```
    /// use ringwal::{Reader, SegmentPreamble};
    /// use std::sync::{Arc, Mutex};
    ///
    /// // Each segment starts with the last record that began with "config ".
    /// let last_config = Arc::new(Mutex::new(None::<Vec<u8>>));
    /// let seen = Arc::clone(&last_config);
    /// let preamble = SegmentPreamble::new(move |p| {
    ///     if let Some(config) = &*last_config.lock().unwrap() {
    ///         p.push(config).unwrap();
    ///     }
    /// })
    /// .with_observer(move |payload| {
    ///     if payload.starts_with(b"config ") {
    ///         *seen.lock().unwrap() = Some(payload.to_vec());
    ///     }
    /// });
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (writer, emitter) = ringwal::Writer::builder(dir.path())
    ///     .segment_bytes(256)
    ///     .segment_preamble(preamble)
    ///     .start::<String>()
    ///     .unwrap();
    /// emitter.emit("config level=debug".to_owned()).unwrap();
    /// for i in 0..20 {
    ///     emitter.emit(format!("record {i}")).unwrap();
    /// }
    /// writer.shutdown().unwrap();
    ///
    /// let reader = Reader::open(dir.path()).unwrap();
    /// let last = reader.segments().unwrap().last().unwrap().first_seq;
    /// let mut iter = reader.from_seq(last);
    /// iter.next().unwrap().unwrap();
    /// assert_eq!(iter.take_preamble(), vec![b"config level=debug".to_vec()]);
    /// ```
    pub fn with_observer(mut self, observe: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        self.observe = Some(Arc::new(observe));
        self
    }

    /// Shows `observe` (if any) the records in `frames`, encoded frames as appended.
    fn observe(&self, frames: &[u8]) {
        let Some(observe) = &self.observe else {
            return;
        };
        // The writer encoded these frames (their checksums were computed, not read): split
        // them by their length fields, without checking the checksums again.
        let mut rest = frames;
        while let Ok(size) = format::frame_size(rest) {
            let Some(frame) = rest.get(..size) else {
                break;
            };
            if !format::is_marker(frame) && !format::is_preamble(frame) {
                observe(&frame[format::FRAME_HEADER_LEN..]);
            }
            rest = &rest[size..];
        }
    }

    /// The frames for a segment whose first record will be `next_seq`.
    fn frames(&self, next_seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        (self.write)(&mut Preamble {
            out: &mut out,
            next_seq,
        });
        out
    }
}

impl std::fmt::Debug for SegmentPreamble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SegmentPreamble(..)")
    }
}

/// The same function (not merely one that writes the same bytes).
impl PartialEq for SegmentPreamble {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.write, &other.write)
            && match (&self.observe, &other.observe) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Eq for SegmentPreamble {}

/// Where a [`SegmentPreamble`]'s function writes a new segment's preamble frames.
#[derive(Debug)]
pub struct Preamble<'a> {
    out: &'a mut Vec<u8>,
    next_seq: u64,
}

impl Preamble<'_> {
    /// Adds a preamble frame holding `payload`; refused if it is longer than
    /// [`format::MAX_PAYLOAD`].
    pub fn push(&mut self, payload: &[u8]) -> Result<(), format::TooLarge> {
        if payload.len() > format::MAX_PAYLOAD {
            return Err(format::TooLarge(payload.len()));
        }
        format::encode_preamble_frame(self.out, self.next_seq, payload);
        Ok(())
    }

    /// The sequence number the segment's first record will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

/// What opening a log does with damage (RocksDB's WAL recovery modes are the model).
///
/// Which bytes can a power loss damage? Only those written since the last successful fsync
/// of their file: an fsync makes everything written to the file before it durable, and a
/// `sync` (which every acknowledgement — a returned `flush`, a shutdown — waits for) fsyncs
/// the active segment, after the sealed ones. So in the newest segment the acknowledged
/// records are a prefix made of valid frames only, and everything from the first invalid
/// frame on was written after the last acknowledgement: a power loss may have lost, torn or
/// reordered it (a later write reaching the disk while an earlier one did not leaves valid
/// frames after a hole of zeros). Cutting there loses nothing that was acknowledged.
///
/// Damage that a power loss cannot explain is an `InvalidData` error naming file and offset
/// in every mode, and nothing is changed: a bad header, and under a durable log
/// ([`LogOptions::durable`]) any damage in a segment older than the newest (sealed segments
/// are fsynced before the next one is created, so their bytes precede the last
/// acknowledgement).
///
/// ```
/// use ringwal::{LogOptions, RecoveryMode, SegmentLog};
///
/// let dir = tempfile::tempdir().unwrap();
/// // Refuse a log whose newest segment has valid records after damage, instead of cutting.
/// let options = LogOptions { recovery: RecoveryMode::Strict, ..LogOptions::default() };
/// let log = SegmentLog::open(dir.path(), options).unwrap();
/// assert_eq!(log.recovery().bytes_cut, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Recover to the last consistent point (RocksDB's `kPointInTimeRecovery`): the newest
    /// segment is cut at its first invalid frame — a torn tail, or damage that valid frames
    /// follow (a reordered write) — and the cut is reported in [`Recovery`] (the bytes cut,
    /// the file, and in `reason` the offset and why). Not durable (`SyncPolicy::Never`): the same
    /// in any segment, since none was fsynced before the shutdown's sync — the first damaged
    /// segment (or the first one that ends short of where the next begins) is cut and every
    /// later one removed. Every acknowledged record survives every power loss. The default.
    #[default]
    PointInTime,
    /// Cut only a torn tail (no valid frame after the damage; RocksDB's
    /// `kTolerateCorruptedTailRecords`); refuse, with an `InvalidData` error naming file and
    /// offset and changing nothing, any damage that valid frames follow, and (not durable)
    /// any damage in an older segment. For logs where a bit flip must never be mistaken for a
    /// lost write: after a power loss that reordered writes it refuses to open (the log is
    /// then intact up to the damage, and [`PointInTime`](Self::PointInTime) opens it).
    Strict,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 << 20,
            retain: Retain::All,
            durable: true,
            recovery: RecoveryMode::PointInTime,
            preamble: None,
        }
    }
}

/// What opening a log directory found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments in the directory after recovery.
    pub segments: usize,
    /// Valid records kept in the last segment (the one recovery checks frame by frame).
    pub records_kept: u64,
    /// The sequence number the writer continues with.
    pub next_seq: u64,
    /// Bytes removed: the tail cut from the segment in `truncated` (see [`RecoveryMode`]), the
    /// segments removed after it, or a segment whose creation a crash cut short.
    pub bytes_cut: u64,
    /// The file that was cut, if any.
    pub truncated: Option<PathBuf>,
    /// Why it was cut.
    pub reason: Option<String>,
    /// Segments removed: an empty one whose creation a crash cut short, or (point-in-time
    /// recovery of a log that is not durable) the segments after a damaged one.
    pub segments_removed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    first_seq: u64,
    len: u64,
    /// Its length before its first record (header and preamble frames), when this log
    /// created it; its length at open otherwise. A rollback to a segment retention reached
    /// first cuts it back to this (see `SegmentLog::synced`).
    start: u64,
}

/// A point the log can roll back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    segment: u64,
    len: u64,
    next_seq: u64,
}

/// A directory of segment files; the writer's default [`Sink`].
///
/// Opening recovers the directory (see [`Recovery`]) and takes an exclusive lock, so two
/// writers never append to one log. The lock is an advisory `flock` on the log directory
/// itself, held for as long as the `SegmentLog` lives: nothing done to the files in the
/// directory removes it, so a second writer (another process, or another `open` in this one)
/// is refused even after someone deleted `dir/LOCK`. `dir/LOCK` is still created and locked
/// too, so that writers of older versions of this crate (which lock only that file) keep
/// excluding this one, and it them. Either lock being held elsewhere makes `open` fail with
/// [`WouldBlock`](io::ErrorKind::WouldBlock).
///
/// A log notices when its directory, or its active segment file, is removed while it is open,
/// or when the directory's path no longer names it (moved away, or replaced by a new
/// directory of the same name). On Unix it looks at every [`sync`](Sink::sync), at every
/// rotation to a new segment, and before it deletes or truncates anything by path (retention,
/// a rollback): one `fstat` each of the held directory and of the active segment (a link count
/// of 0) and one `stat` of the path. That sync or append then fails ("log directory was
/// removed", "... moved or replaced", "active segment was removed", with the path), and so
/// does every append and sync after it, for as long as this `SegmentLog` lives; it deletes and
/// truncates nothing from then on (the path may name someone else's log by now).
/// [`next_seq`](Sink::next_seq) falls back to the last good sync: a
/// [`Writer`](crate::Writer) so reports itself unhealthy, `flush` errs, and the records
/// appended since are not counted as persisted (what the removed files held before that is
/// gone too, of course). When not `durable` (`SyncPolicy::Never`, which promises nothing on
/// disk) every append is its own mark, so only records after the removal was noticed are
/// refused. Open the log again to continue (in a new directory, if this one is gone).
///
/// ```
/// use ringwal::{format, Batch, LogOptions, SegmentLog, Sink};
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut log = SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
/// let mut frames = Vec::new();
/// format::encode_frame(&mut frames, log.next_seq(), 0, b"first");
/// log.append(&Batch::new(&frames, 0, 1).unwrap()).unwrap();
/// log.sync().unwrap();
/// drop(log);
/// let log = SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
/// assert_eq!(log.next_seq(), 1);
/// ```
#[derive(Debug)]
pub struct SegmentLog<V: Vfs = StdFs> {
    /// Every change to the disk goes through it (`std::fs`, or a test's recorder).
    vfs: V,
    dir: PathBuf,
    options: LogOptions,
    /// The log directory, open and `flock`ed: the lock no file deletion undoes.
    dir_lock: File,
    /// `dir/LOCK`, locked too, for writers of older versions that lock only it.
    _lock: File,
    /// Set once the directory or the active segment is found removed (or the directory's
    /// path found naming another directory): every append and sync fails with this message
    /// from then on, and no file is deleted or truncated by path.
    removed: Option<String>,
    segments: VecDeque<Seg>,
    active: File,
    next_seq: u64,
    /// The last successful sync (or append, when not `durable`): where a failed append
    /// rolls back to.
    mark: Mark,
    /// The last successful sync (the state at open before the first): where a failed sync
    /// rolls back to. The same as `mark` when `durable`. When not, retention may delete its
    /// segment: it then moves to the start of the oldest segment left (every record after
    /// it is unsynced all the same).
    synced: Mark,
    /// A rollback failed: restore `mark` before anything else.
    poisoned: bool,
    /// A directory fsync is owed (a deletion whose directory sync failed).
    dir_dirty: bool,
    /// Segments sealed without an fsync (not `durable`), and those recovery kept; `sync`
    /// fsyncs them first.
    unsynced_sealed: Vec<u64>,
    /// `dir/UNSYNCED` is there (or may be): see [`UNSYNCED_FILE`].
    marked: bool,
    recovery: Recovery,
    /// The lowest shipper checkpoint in the directory, looked up only when retention wants to
    /// delete (see [`checkpoint`](crate::checkpoint)).
    floor: FloorCache,
    /// Wakes the log's followers in this process ([`Follow`](crate::Follow)) after each
    /// append.
    announcer: Announcer,
}

/// `e`, its message prefixed with `path`.
pub(crate) fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// The file whose presence says that a segment older than the newest may not have been
/// fsynced: a log that is not `durable` creates it (durably) before it seals a segment
/// without an fsync, and removes it after a sync that fsynced every segment. An open that
/// finds it reads every segment frame by frame, also when `durable` (a writer with a
/// syncing policy started after a `SyncPolicy::Never` run that a power loss cut short):
/// else damage in an older segment would be taken for durable data, and the `Reader` would
/// fail there. Its content is never read.
pub(crate) const UNSYNCED_FILE: &str = "UNSYNCED";

/// fsyncs a directory, so file creations and deletions in it are durable.
fn sync_dir(vfs: &impl Vfs, dir: &Path) -> io::Result<()> {
    vfs.sync_dir(dir).map_err(|e| annotate(dir, e))
}

/// The segments in `dir`, sorted by first sequence number. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| annotate(dir, e))? {
        let entry = entry.map_err(|e| annotate(dir, e))?;
        if let Some(seq) = entry
            .file_name()
            .to_str()
            .and_then(format::parse_segment_file_name)
        {
            let path = entry.path();
            // Not followed: a symlink is refused like a FIFO, a device or a directory (opening
            // a FIFO blocks forever; a symlink to /dev/zero never ends).
            let kind = entry.file_type().map_err(|e| annotate(&path, e))?;
            if !kind.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: named like a segment but {}; a segment must be a regular file",
                        path.display(),
                        describe(kind)
                    ),
                ));
            }
            segments.push((seq, path));
        }
    }
    segments.sort_unstable_by_key(|s| s.0);
    Ok(segments)
}

/// `open(2)` flags that keep [`open_regular`] from blocking or following a link.
#[cfg(unix)]
const NONBLOCK_NOFOLLOW: i32 = libc::O_NONBLOCK | libc::O_NOFOLLOW;

/// The sum of byte counts, saturating at `u64::MAX`: a file's length comes from the file
/// system, and sparse files (tmpfs allows 2^63 - 1 bytes each) can add up past `u64::MAX`;
/// a wrapped sum would read as small (retention would delete nothing), a panic in debug.
pub(crate) fn total(lens: impl IntoIterator<Item = u64>) -> u64 {
    lens.into_iter().fold(0, u64::saturating_add)
}

/// Opens `path` with `options`, only if it is a regular file. A file a log directory names
/// (`LOCK`, `LOG-ID`, a checkpoint) may be anything a hostile or careless hand put there:
/// opening a FIFO blocks until its other end opens (for ever), and a symbolic link to
/// `/dev/zero` reads without end. So the name is first checked with `lstat`, then opened
/// with `O_NONBLOCK | O_NOFOLLOW` (so a FIFO or link swapped in meanwhile neither blocks
/// nor is followed; `O_NONBLOCK` has no effect on a regular file's reads, writes or
/// locks), and what was opened is checked again with `fstat`. Anything not a regular file
/// is an `InvalidData` error naming the path and saying what it is; a missing file is
/// `NotFound` (with `create`, it is created). Every error names the path.
///
/// Public as [`ringwal::checkpoint::open_regular`](crate::checkpoint::open_regular), for the
/// files other tools keep in a log directory (ringwal-ship's lock and dead letters).
///
/// ```
/// use std::fs::OpenOptions;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tool.lock");
/// ringwal::checkpoint::open_regular(&path, OpenOptions::new().write(true).create(true)).unwrap();
/// # #[cfg(unix)]
/// # {
/// let link = dir.path().join("link");
/// std::os::unix::fs::symlink(&path, &link).unwrap();
/// let err = ringwal::checkpoint::open_regular(&link, OpenOptions::new().append(true)).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
/// # }
/// ```
pub fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => return Err(not_regular(path, meta.file_type())),
        Ok(_) => {}
        // Missing: `create` makes it (O_NOFOLLOW and O_CREAT refuse a dangling link made
        // meanwhile), otherwise the open reports it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(annotate(path, e)),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(NONBLOCK_NOFOLLOW);
    }
    let file = options.open(path).map_err(|e| annotate(path, e))?;
    let kind = file.metadata().map_err(|e| annotate(path, e))?.file_type();
    if !kind.is_file() {
        return Err(not_regular(path, kind));
    }
    Ok(file)
}

/// The error for a name that is not a regular file.
fn not_regular(path: &Path, kind: fs::FileType) -> io::Error {
    let what = describe(kind);
    let is = if what.starts_with("a ") {
        format!("is {what}, not a regular file")
    } else {
        "not a regular file".to_string()
    };
    invalid(path, format!("{is}; refused"))
}

/// What a non-regular file is, for error messages.
fn describe(kind: fs::FileType) -> &'static str {
    if kind.is_dir() {
        return "a directory";
    }
    if kind.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    "not a regular file"
}

/// Reads a segment's header; errors name the file.
pub(crate) fn read_header(path: &Path) -> io::Result<(u64, u64, format::Version)> {
    let mut file = File::open(path).map_err(|e| annotate(path, e))?;
    let len = file.metadata().map_err(|e| annotate(path, e))?.len();
    let mut header = [0u8; HEADER_LEN];
    let n = read_up_to(&mut file, &mut header).map_err(|e| annotate(path, e))?;
    let header = format::decode_segment_header(&header[..n]).map_err(|e| invalid(path, e))?;
    Ok((header.first_seq, len, header.version))
}

/// The first [`HEADER_LEN`] bytes of `src` (fewer if it is shorter).
fn read_prefix(src: &mut FileSource, path: &Path) -> io::Result<Vec<u8>> {
    let mut header = vec![0u8; src.len().min(HEADER_LEN as u64) as usize];
    src.read_exact_at(0, &mut header)
        .map_err(|e| annotate(path, e))?;
    Ok(header)
}

/// Reads until `buf` is full or the input ends; returns how many bytes it read.
pub(crate) fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl SegmentLog {
    /// Opens (creating it if missing) and recovers the log in `dir`.
    ///
    /// Recovery checks every segment's header, and the last segment frame by frame (every
    /// segment, when not [`durable`](LogOptions::durable)): a last segment whose creation was
    /// cut short (shorter than a header) is removed, and damage is cut as
    /// [`options.recovery`](LogOptions::recovery) says ([`RecoveryMode`]: by default at the
    /// first invalid frame of the newest segment); both are reported in
    /// [`recovery`](Self::recovery). Damage the mode does not cut, a bad header, or a file
    /// from a newer format version is an `InvalidData` error naming the file (and offset);
    /// nothing is changed then.
    ///
    /// The lock file `dir/LOCK` must be a regular file: a FIFO or a symbolic link (never
    /// followed) there is an `InvalidData` error naming it.
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> io::Result<Self> {
        SegmentLog::open_with(StdFs, dir, options)
    }
}

impl<V: Vfs> SegmentLog<V> {
    /// [`open`](SegmentLog::open), with every change to the disk made through `vfs` (the
    /// power-loss test's recorder; see [`vfs`](crate::vfs)).
    #[doc(hidden)]
    pub fn open_with(vfs: V, dir: impl AsRef<Path>, options: LogOptions) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if options.segment_bytes < (HEADER_LEN + format::FRAME_HEADER_LEN) as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "segment_bytes must be at least {} (header and one empty record)",
                    HEADER_LEN + format::FRAME_HEADER_LEN
                ),
            ));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a directory", dir.display()),
            ));
        }
        fs::create_dir_all(&dir).map_err(|e| annotate(&dir, e))?;
        let dir_handle = File::open(&dir).map_err(|e| annotate(&dir, e))?;
        lock_exclusive(&dir_handle, &dir, &dir)?;
        let lock_path = dir.join("LOCK");
        // Not followed if a link, and refused if not a regular file: a FIFO named LOCK
        // would block this write-only open until something read it.
        let lock = open_regular(
            &lock_path,
            OpenOptions::new().create(true).truncate(false).write(true),
        )?;
        lock_exclusive(&lock, &lock_path, &dir)?;

        // A log that was not durable sealed segments without an fsync and had not synced them
        // since (see `UNSYNCED_FILE`): a power loss may have damaged any of them, so this
        // open reads every segment, as a log that is not durable does, whatever `durable`
        // says now.
        let marked = fs::symlink_metadata(dir.join(UNSYNCED_FILE)).is_ok();
        let trust_sealed = options.durable && !marked;
        let mut next_seq_if_empty = 0;
        // Durable and the newest segment was removed: the one now newest was sealed with an
        // fsync before that one was created, so damage in it is not a power loss's.
        let mut sealed_newest = false;
        let mut recovery = Recovery::default();
        let mut listed = list_segments(&dir)?;
        // The cut-short newest segment, once found: removed before the first other change.
        let mut short_newest: Option<PathBuf> = None;
        // The newest segment first: a crash while it was being created leaves it shorter than
        // a header (or a header of zeros, on a file system that extended the file before
        // writing it); it holds no record and goes.
        if let Some((_, path)) = listed.last() {
            let mut src = FileSource::open(path)?;
            let short = match format::decode_segment_header(&read_prefix(&mut src, path)?) {
                Err(HeaderError::Short(n)) => Some((n as u64, "cut short")),
                Err(HeaderError::BadMagic | HeaderError::BadChecksum)
                    if src.is_unwritten_header().map_err(|e| annotate(path, e))? =>
                {
                    Some((HEADER_LEN as u64, "never written"))
                }
                _ => None,
            };
            if let Some((n, what)) = short {
                // Removed only once nothing below can refuse the open: a failed open changes
                // nothing (the removal would otherwise stay, though the open failed).
                short_newest = Some(path.clone());
                recovery.bytes_cut = n;
                recovery.truncated = Some(path.clone());
                recovery.reason = Some(if what == "cut short" {
                    format!("segment header cut short ({n} bytes): removed the empty segment")
                } else {
                    "segment header never written: removed the empty segment".into()
                });
                recovery.segments_removed = 1;
                let (name_seq, _) = listed.pop().expect("a last segment");
                sealed_newest = trust_sealed;
                if listed.is_empty() {
                    next_seq_if_empty = name_seq;
                }
            }
        }
        // Every header is checked before anything is changed. A point-in-time cut removes the
        // segments after the damage without scanning them, and a bad header or a newer format
        // version there must refuse the open in every mode (as documented), not be deleted
        // with the records after it.
        let mut lens = Vec::with_capacity(listed.len());
        for (name_seq, path) in &listed {
            let (first, len, _) = read_header(path)?;
            if first != *name_seq {
                return Err(invalid(
                    path,
                    format!("header says first record {first}, file name says {name_seq}"),
                ));
            }
            lens.push(len);
        }
        // Removes the cut-short newest segment found above, if not yet done; called before
        // any other change, and once the scan below has accepted the log.
        let remove_short = |vfs: &V, pending: &mut Option<PathBuf>| -> io::Result<()> {
            if let Some(path) = pending.take() {
                vfs.remove_file(&path).map_err(|e| annotate(&path, e))?;
                sync_dir(vfs, &dir)?;
            }
            Ok(())
        };
        // Which segments are read frame by frame: the newest (the only one a power loss can
        // damage when durable: the others were fsynced before the next one was created);
        // when not durable, every one (none was fsynced before the shutdown's sync).
        let newest = listed.len().saturating_sub(1);
        let mut segments = VecDeque::new();
        let mut last_scan = None;
        for (i, (name_seq, path)) in listed.iter().enumerate() {
            if i < newest && trust_sealed {
                // Its header was checked above.
                segments.push_back(Seg {
                    first_seq: *name_seq,
                    len: lens[i],
                    start: lens[i],
                });
                continue;
            }
            // Streamed: a segment of any size (a sparse 1 GiB file) is checked in constant
            // memory.
            let mut src = FileSource::open(path)?;
            let file_len = src.len();
            let scan = format::scan_segment_in(&mut src).map_err(|e| match e {
                ScanError::Header(e) => invalid(path, e),
                ScanError::Read(e) => annotate(path, e),
            })?;
            if scan.first_seq != *name_seq {
                return Err(invalid(
                    path,
                    format!(
                        "header says first record {}, file name says {name_seq}",
                        scan.first_seq
                    ),
                ));
            }
            let next = checked_next(path, &scan)?;
            // Where this segment's valid frames stop being the log, and why.
            let damage = match scan.end {
                ScanEnd::Clean => match listed.get(i + 1) {
                    Some(&(following, _)) if next < following => Some((
                        scan.valid_len,
                        format!(
                            "segment ends at record {next} but the next one starts at \
                             {following} (its tail was lost)"
                        ),
                        false,
                    )),
                    Some(&(following, _)) if next > following => {
                        return Err(invalid(
                            path,
                            format!(
                                "segment ends at record {next} but the next one starts at \
                                 {following}: they overlap"
                            ),
                        ))
                    }
                    _ => None,
                },
                ScanEnd::Torn { offset, reason } => Some((
                    offset,
                    format!("torn tail at offset {offset}: {reason}"),
                    true,
                )),
                ScanEnd::Corrupt { offset, reason } => Some((
                    offset,
                    format!("corrupt at offset {offset}: {reason}"),
                    false,
                )),
            };
            let mut seg = Seg {
                first_seq: *name_seq,
                len: scan.valid_len,
                start: scan.valid_len,
            };
            if let Some((offset, why, torn)) = damage {
                if sealed_newest {
                    return Err(invalid(
                        path,
                        format!(
                            "damaged: {why} (a sealed segment, fsynced before the next one \
                             was created: not damage a crash can cause); not truncating"
                        ),
                    ));
                }
                let later = listed.len() - 1 - i;
                // Strict cuts only a torn tail with nothing after it.
                let tolerated =
                    options.recovery == RecoveryMode::PointInTime || (torn && later == 0);
                if !tolerated {
                    let follows = if later > 0 {
                        format!("; {later} later segment(s) follow")
                    } else {
                        String::new()
                    };
                    return Err(invalid(
                        path,
                        format!(
                            "{why}{follows}; not truncating (RecoveryMode::Strict; \
                             RecoveryMode::PointInTime would cut there)"
                        ),
                    ));
                }
                // Point in time: everything from the damage on was written after the last
                // acknowledged sync (see `RecoveryMode`). Later segments go first, newest
                // first, each deletion made durable before the next, so a crash meanwhile
                // leaves a log whose recovery cuts at the same place.
                remove_short(&vfs, &mut short_newest)?;
                let mut cut = file_len.saturating_sub(offset);
                for (_, later_path) in listed[i + 1..].iter().rev() {
                    let len = fs::metadata(later_path)
                        .map_err(|e| annotate(later_path, e))?
                        .len();
                    vfs.remove_file(later_path)
                        .map_err(|e| annotate(later_path, e))?;
                    sync_dir(&vfs, &dir)?;
                    cut = cut.saturating_add(len);
                    recovery.segments_removed += 1;
                }
                if file_len > offset {
                    let file = vfs.open_append(path).map_err(|e| annotate(path, e))?;
                    vfs.set_len(&file, path, offset)
                        .map_err(|e| annotate(path, e))?;
                    vfs.sync_all(&file, path).map_err(|e| annotate(path, e))?;
                }
                // Saturating: the lengths are the file system's, and sparse files can add up
                // past `u64::MAX`.
                recovery.bytes_cut = recovery.bytes_cut.saturating_add(cut);
                recovery.truncated = Some(path.clone());
                let removed = match later {
                    0 => String::new(),
                    n => format!("; removed the {n} later segment(s)"),
                };
                recovery.reason = Some(format!("{why}: cut there{removed}"));
                seg.len = offset;
                seg.start = offset;
                segments.push_back(seg);
                last_scan = Some(scan);
                break;
            }
            segments.push_back(seg);
            last_scan = Some(scan);
        }
        remove_short(&vfs, &mut short_newest)?;
        let mut next_seq = next_seq_if_empty;
        let mut last_len = None;
        // The newest segment's format version and what it holds: an older version than 2 is
        // never appended to (a fresh segment follows it).
        let mut last_version = format::Version::CURRENT;
        let (mut last_records, mut last_markers) = (0, 0);
        if let (Some(scan), Some(last)) = (&last_scan, segments.back()) {
            let path = dir.join(format::segment_file_name(last.first_seq));
            recovery.records_kept = scan.records;
            next_seq = checked_next(&path, scan)?;
            last_len = Some(last.len);
            (last_version, last_records, last_markers) = (scan.version, scan.records, scan.markers);
        }

        // A newest segment with no record and no marker (another run's, or one whose creation
        // a crash cut short) is rebuilt in place, keeping its name, when it is of version 1
        // (never appended to), or when this log writes a preamble and the segment is not
        // exactly a header and this log's preamble frames (a crash may have cut them short;
        // another run's may differ).
        let mut rebuild = None;
        if let (Some(seg), Some(_)) = (segments.back(), last_len) {
            if last_records == 0 && last_markers == 0 {
                let path = dir.join(format::segment_file_name(seg.first_seq));
                let frames = options
                    .preamble
                    .as_ref()
                    .map_or_else(Vec::new, |p| p.frames(seg.first_seq));
                // Nothing after the valid frames is left (recovery cut it): the file is
                // `seg.len` bytes.
                let ours = if frames.is_empty() {
                    options.preamble.is_none() || seg.len == HEADER_LEN as u64
                } else {
                    // Exactly the header (version 3) and frames `write_start` would write.
                    seg.len == (HEADER_LEN + frames.len()) as u64
                        && fs::read(&path).map_err(|e| annotate(&path, e))?
                            == [&header_for(seg.first_seq, &frames)[..], &frames].concat()
                };
                if !last_version.appendable() || !ours {
                    rebuild = Some((path, frames));
                }
            }
        }
        let active = match (segments.back_mut(), last_len) {
            (Some(seg), Some(_)) if rebuild.is_some() => {
                let (path, frames) = rebuild.expect("checked");
                let (file, len) = rebuild_segment(&vfs, &path, seg.first_seq, &frames)?;
                seg.len = len;
                seg.start = len;
                file
            }
            (Some(seg), Some(_)) if last_version.appendable() => {
                let path = dir.join(format::segment_file_name(seg.first_seq));
                vfs.open_append(&path).map_err(|e| annotate(&path, e))?
            }
            _ => {
                let (file, len) = create_segment(&vfs, &dir, next_seq, options.preamble.as_ref())?;
                segments.push_back(Seg {
                    first_seq: next_seq,
                    len,
                    start: len,
                });
                file
            }
        };
        let last = *segments.back().expect("a segment exists");
        // The first sync fsyncs every segment kept, not only the active one: the previous run
        // may have been killed before it synced the segments it sealed (under
        // `SyncPolicy::Never` it seals without an fsync), and that sync acknowledges their
        // records too. (A file with nothing unwritten makes its fsync a quick no-op.)
        let unsynced_sealed = segments
            .iter()
            .take(segments.len() - 1)
            .map(|s| s.first_seq)
            .collect();
        recovery.segments = segments.len();
        recovery.next_seq = next_seq;
        // The log is ours (locked) and recovered: its followers in this process may rely on
        // our announcements from now on.
        let announcer = Announcer::new(&dir);
        Ok(SegmentLog {
            vfs,
            dir,
            options,
            dir_lock: dir_handle,
            removed: None,
            _lock: lock,
            segments,
            active,
            next_seq,
            mark: Mark {
                segment: last.first_seq,
                len: last.len,
                next_seq,
            },
            synced: Mark {
                segment: last.first_seq,
                len: last.len,
                next_seq,
            },
            poisoned: false,
            dir_dirty: false,
            unsynced_sealed,
            marked,
            recovery,
            floor: FloorCache::default(),
            announcer,
        })
    }

    /// What opening found and repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rolls the log back to its last successful [`sync`](Sink::sync) (to its last append
    /// when not `durable`), deleting segments and truncating bytes appended since, as a failed
    /// fsync does. For `Sink` wrappers that detect a failure the log cannot see, and for
    /// fault-injection tests. [`next_seq`](Sink::next_seq) then says where the log stands.
    /// If this fails, the log retries it before its next append or sync.
    pub fn discard_unsynced(&mut self) -> io::Result<()> {
        self.poisoned = true;
        self.restore(self.mark, true)?;
        self.poisoned = false;
        Ok(())
    }

    fn current(&self) -> Mark {
        let seg = self.segments.back().expect("a segment exists");
        Mark {
            segment: seg.first_seq,
            len: seg.len,
            next_seq: self.next_seq,
        }
    }

    fn path(&self, first_seq: u64) -> PathBuf {
        self.dir.join(format::segment_file_name(first_seq))
    }

    /// Puts the log back to `mark`: deletes later segments, truncates the mark's segment.
    /// With `sync`, makes that durable (after a failed fsync, so the unknown bytes are gone).
    fn restore(&mut self, mark: Mark, sync: bool) -> io::Result<()> {
        // Deletes and truncates by path: never in a directory that is no longer the log's.
        self.check_present()?;
        while let Some(&seg) = self.segments.back() {
            if seg.first_seq <= mark.segment {
                break;
            }
            // Newest first, each deletion durable before the next (see `apply_retention`).
            self.sync_dir_if_dirty()?;
            let path = self.path(seg.first_seq);
            match self.vfs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(annotate(&path, e)),
            }
            self.segments.pop_back();
            self.dir_dirty = true;
        }
        // The deletions are durable before the truncation is: the other way round, a power
        // cut between them would bring a deleted segment back after a shortened one (a gap
        // in the sequence numbers). This way round it leaves the longer segment, whose
        // extra bytes, never acknowledged, recovery cuts or keeps as a consistent tail.
        self.sync_dir_if_dirty()?;
        let path = self.path(mark.segment);
        let file = self
            .vfs
            .open_append(&path)
            .map_err(|e| annotate(&path, e))?;
        self.vfs
            .set_len(&file, &path, mark.len)
            .map_err(|e| annotate(&path, e))?;
        if sync {
            self.vfs
                .sync_all(&file, &path)
                .map_err(|e| annotate(&path, e))?;
        }
        self.sync_dir_if_dirty()?;
        self.active = file;
        if let Some(seg) = self.segments.back_mut() {
            seg.len = mark.len;
        }
        self.next_seq = mark.next_seq;
        Ok(())
    }

    /// After a failed fsync: what was written since the last successful sync is of unknown
    /// fate (the kernel may have dropped the pages it failed to write, and a second fsync
    /// then succeeds without them), so the log rolls back to that sync, durably, in both
    /// modes (not `durable`: also past appends, which were rollback points for appends
    /// only). Returns `e`.
    fn sync_failed(&mut self, e: io::Error) -> io::Error {
        self.mark = self.synced;
        self.unsynced_sealed.retain(|&s| s < self.synced.segment);
        self.poisoned = true;
        if self.restore(self.mark, true).is_ok() {
            self.poisoned = false;
        }
        e
    }

    fn heal(&mut self) -> io::Result<()> {
        if self.poisoned {
            self.restore(self.mark, true)?;
            self.poisoned = false;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at `next_seq`.
    fn rotate(&mut self) -> io::Result<()> {
        // A new segment in a removed directory would fail (or, if a directory of the same name
        // was made since, start a stray log there).
        self.check_present()?;
        if self.options.durable {
            // Sealed with an fsync, so only the newest segment can ever have a torn tail.
            let path = self.path(self.segments.back().expect("a segment exists").first_seq);
            if let Err(e) = self.vfs.sync_data(&self.active, &path) {
                // Unknown what reached the disk since the mark: roll back to it.
                self.poisoned = true;
                return Err(e);
            }
        } else {
            // Not `durable` (`SyncPolicy::Never`): an fsync of a whole segment here stalls the
            // writer for as long as the disk takes to write it (measured: the ring overflowed
            // at 1M events/s), so it waits for the next `sync` (shutdown's).
            if !self.marked {
                let path = self.dir.join(UNSYNCED_FILE);
                match self.vfs.create_new(&path) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(annotate(&path, e)),
                }
                sync_dir(&self.vfs, &self.dir)?;
                self.marked = true;
            }
            let sealed = self.segments.back().expect("a segment exists").first_seq;
            self.unsynced_sealed.push(sealed);
        }
        let (file, len) = create_segment(
            &self.vfs,
            &self.dir,
            self.next_seq,
            self.options.preamble.as_ref(),
        )
        .inspect_err(|_| {
            // Its removal may not be durable yet: the rollback that follows syncs the
            // directory before it truncates anything.
            self.dir_dirty = true;
        })?;
        self.segments.push_back(Seg {
            first_seq: self.next_seq,
            len,
            start: len,
        });
        self.active = file;
        Ok(())
    }

    fn append_inner(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        let bytes = batch.bytes();
        let limit = self.options.segment_bytes;
        let mut spans = batch.frame_spans().peekable();
        while spans.peek().is_some() {
            let seg = *self.segments.back().expect("a segment exists");
            let seg_len = seg.len;
            // No record in the segment yet: its first one goes in whatever its size (rotating
            // would make a second segment of the same first sequence number).
            let no_record_yet = self.next_seq == seg.first_seq;
            let start = spans.peek().map(|s| s.0).unwrap_or(0);
            let mut end = start;
            let mut count = 0u64;
            // Gap markers take no sequence number.
            let mut records = 0u64;
            while let Some(&(off, size)) = spans.peek() {
                let fits = seg_len + (off + size - start) as u64 <= limit;
                let first_in_empty = no_record_yet && records == 0;
                if !fits && !first_in_empty {
                    break;
                }
                end = off + size;
                count += 1;
                records += u64::from(!format::is_marker(&bytes[off..]));
                spans.next();
            }
            if count == 0 {
                self.rotate()?;
                continue;
            }
            let path = self.path(self.segments.back().expect("a segment exists").first_seq);
            self.vfs
                .append(&mut self.active, &path, &bytes[start..end])?;
            self.segments.back_mut().expect("a segment exists").len += (end - start) as u64;
            self.next_seq += records;
            // Before the next segment's preamble is written (the next turn's rotation).
            if let Some(preamble) = &self.options.preamble {
                preamble.observe(&bytes[start..end]);
            }
        }
        Ok(())
    }

    /// Deletes the oldest segments `retain` no longer wants: never the active one, nor the
    /// segment a rollback might need.
    fn apply_retention(&mut self) -> io::Result<()> {
        let mut removed = false;
        loop {
            let excess = match self.options.retain {
                Retain::All => false,
                Retain::Segments(n) => self.segments.len() > n.max(1),
                Retain::Bytes(b) => total(self.segments.iter().map(|s| s.len)) > b,
            };
            let oldest = match self.segments.front() {
                Some(s) => *s,
                None => break,
            };
            if !excess || self.segments.len() <= 1 || oldest.first_seq >= self.mark.segment {
                break;
            }
            // A shipper's cursor holds back `Retain::Segments` (not the hard bound of
            // `Retain::Bytes`): the oldest segment goes only once every record in it is
            // below every checkpoint, i.e. the segment after it starts at or below the floor.
            if matches!(self.options.retain, Retain::Segments(_)) {
                let next_first = self.segments.get(1).map_or(u64::MAX, |s| s.first_seq);
                if self
                    .floor
                    .floor(&self.dir)
                    .is_some_and(|floor| next_first > floor)
                {
                    break;
                }
            }
            if !removed {
                // Deletes by path: never in a directory that is no longer the log's.
                self.check_present()?;
            }
            // The deletion before this one is made durable first: two deletions under one
            // directory fsync may reach the disk in either order, and the newer one alone
            // would leave a hole in the middle of the log after a power loss.
            self.sync_dir_if_dirty()?;
            let path = self.path(oldest.first_seq);
            match self.vfs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(annotate(&path, e)),
            }
            self.segments.pop_front();
            self.dir_dirty = true;
            removed = true;
            // Not durable: the last sync's segment may go (it is older than the last
            // append's). A failed sync then rolls back to the start of the oldest segment left.
            if self.synced.segment == oldest.first_seq {
                if let Some(front) = self.segments.front() {
                    self.synced = Mark {
                        segment: front.first_seq,
                        len: front.start,
                        next_seq: front.first_seq,
                    };
                }
            }
        }
        self.sync_dir_if_dirty()
    }

    /// fsyncs the directory if a deletion is not durable yet.
    fn sync_dir_if_dirty(&mut self) -> io::Result<()> {
        if self.dir_dirty {
            sync_dir(&self.vfs, &self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }
}

impl<V: Vfs> SegmentLog<V> {
    /// Fails if the log's directory or its active segment was removed (found so now or
    /// before); see [`SegmentLog`].
    fn check_present(&mut self) -> io::Result<()> {
        if self.removed.is_none() {
            self.removed = self.find_removed()?;
        }
        self.known_removed()
    }

    /// Fails if the directory or active segment was found removed before (no system call).
    fn known_removed(&self) -> io::Result<()> {
        match &self.removed {
            None => Ok(()),
            Some(what) => Err(io::Error::new(io::ErrorKind::NotFound, what.clone())),
        }
    }

    /// One `fstat` each of the held directory and the active segment (a link count of 0
    /// means it was removed), and one `stat` of the directory's path (it must still name
    /// the held directory: not moved away, nor replaced by another of the same name).
    #[cfg(unix)]
    fn find_removed(&self) -> io::Result<Option<String>> {
        use std::os::unix::fs::MetadataExt;
        let shown = self.dir.display();
        let dir = self
            .dir_lock
            .metadata()
            .map_err(|e| annotate(&self.dir, e))?;
        if dir.nlink() == 0 {
            return Ok(Some(format!("{shown}: log directory was removed")));
        }
        match fs::metadata(&self.dir) {
            Ok(now) if (now.dev(), now.ino()) == (dir.dev(), dir.ino()) => {}
            Ok(_) | Err(_) => {
                return Ok(Some(format!(
                    "{shown}: log directory was moved or replaced (this path no longer names \
                     the directory the log was opened in)"
                )))
            }
        }
        let first = self.segments.back().expect("a segment exists").first_seq;
        let path = self.path(first);
        let active = self.active.metadata().map_err(|e| annotate(&path, e))?;
        if active.nlink() == 0 {
            return Ok(Some(format!(
                "{}: active segment was removed",
                path.display()
            )));
        }
        Ok(None)
    }

    /// Not checked where there is no link count to look at.
    #[cfg(not(unix))]
    fn find_removed(&self) -> io::Result<Option<String>> {
        Ok(None)
    }
}

/// Takes an exclusive, non-blocking lock on `file` (`path`, for errors) of the log in `dir`.
fn lock_exclusive(file: &File, path: &Path, dir: &Path) -> io::Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{}: another writer has this log open", dir.display()),
        )),
        Err(fs::TryLockError::Error(e)) => Err(annotate(path, e)),
    }
}

/// The sequence number a log continues with, refusing one so high that it could run out
/// (only a crafted file gets there: 2^63 records take centuries to write).
fn checked_next(path: &Path, scan: &format::SegmentScan) -> io::Result<u64> {
    match scan.first_seq.checked_add(scan.records) {
        Some(next) if next <= u64::MAX / 2 => Ok(next),
        _ => Err(invalid(
            path,
            format!(
                "sequence numbers exhausted: segment starts at record {} (limit {})",
                scan.first_seq,
                u64::MAX / 2
            ),
        )),
    }
}

/// A segment's header: version 3 if preamble frames follow, else version 2 (which readers
/// of version 2 read).
fn header_for(first_seq: u64, frames: &[u8]) -> [u8; HEADER_LEN] {
    match frames.is_empty() {
        true => format::encode_header(first_seq),
        false => format::encode_header_version(format::Version::V3, first_seq),
    }
}

/// Writes a new segment's header, durably, then (a second write, so that a header that did
/// not reach the disk is always at most [`HEADER_LEN`] bytes, zeros or cut short, which
/// recovery recognises) its preamble frames, durably.
fn write_start(
    vfs: &impl Vfs,
    file: &mut File,
    path: &Path,
    first_seq: u64,
    frames: &[u8],
) -> io::Result<()> {
    vfs.append(file, path, &header_for(first_seq, frames))?;
    vfs.sync_all(file, path)?;
    if !frames.is_empty() {
        vfs.append(file, path, frames)?;
        vfs.sync_data(file, path)?;
    }
    Ok(())
}

/// Empties the newest segment at `path` and writes its start again (see `open_with`). Each
/// step is durable before the next: a power cut leaves the old bytes, an empty or cut-short
/// file (which the next recovery removes, keeping its sequence number: the segment held no
/// record), or a torn tail after the new header. On a failure it is emptied, best effort.
fn rebuild_segment(
    vfs: &impl Vfs,
    path: &Path,
    first_seq: u64,
    frames: &[u8],
) -> io::Result<(File, u64)> {
    let mut file = vfs.open_append(path).map_err(|e| annotate(path, e))?;
    let written = vfs
        .set_len(&file, path, 0)
        .and_then(|()| vfs.sync_all(&file, path))
        .and_then(|()| write_start(vfs, &mut file, path, first_seq, frames));
    if let Err(e) = written {
        let _ = vfs
            .set_len(&file, path, 0)
            .and_then(|()| vfs.sync_all(&file, path));
        return Err(annotate(path, e));
    }
    Ok((file, (HEADER_LEN + frames.len()) as u64))
}

/// Creates the segment for `first_seq` with its header and preamble frames, durably (see
/// `write_start`). Returns it and its length.
fn create_segment(
    vfs: &impl Vfs,
    dir: &Path,
    first_seq: u64,
    preamble: Option<&SegmentPreamble>,
) -> io::Result<(File, u64)> {
    let path = dir.join(format::segment_file_name(first_seq));
    let frames = preamble.map_or_else(Vec::new, |p| p.frames(first_seq));
    let mut file = vfs.create_new(&path).map_err(|e| annotate(&path, e))?;
    #[cfg(debug_assertions)]
    crash_point("segment-created");
    let written = write_start(vfs, &mut file, &path, first_seq, &frames);
    // On any failure the file goes again: an untracked file would make every retry of this
    // creation fail with AlreadyExists.
    if let Err(e) = written
        .map_err(|e| annotate(&path, e))
        .and_then(|()| sync_dir(vfs, dir))
    {
        drop(file);
        // Made durable before anything else changes: a rollback truncating the previous
        // segment next must not leave, after a power cut, this one back after a shorter one.
        // (If this fails, the caller marks the directory dirty: the rollback syncs it first.)
        let _ = vfs.remove_file(&path).and_then(|()| sync_dir(vfs, dir));
        return Err(e);
    }
    Ok((file, (HEADER_LEN + frames.len()) as u64))
}

/// A kill point, in debug builds only (as RocksDB's are): with
/// `RINGWAL_CRASH_POINT=<name>:<n>` in the environment, the process SIGKILLs itself (through
/// `kill -9`; if that cannot run, it aborts, which to the file system is the same) the `n`th
/// time it reaches the point `name`. The crash test uses it for windows too short to hit
/// with a timed kill; unset, it costs one environment lookup per segment created.
///
/// Points: `segment-created` — a segment file exists but its header is not written yet.
#[cfg(debug_assertions)]
fn crash_point(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Counts hits of the configured point; it publishes nothing else, so Relaxed.
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Some(spec) = std::env::var_os("RINGWAL_CRASH_POINT") else {
        return;
    };
    let spec = spec.to_string_lossy();
    let (point, nth) = spec.split_once(':').unwrap_or((&spec, "1"));
    if point == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == nth.parse().unwrap_or(1) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

impl<V: Vfs> Sink for SegmentLog<V> {
    fn next_seq(&self) -> u64 {
        // Removed: what was appended since the last sync went with the files.
        if self.poisoned || self.removed.is_some() {
            self.mark.next_seq
        } else {
            self.next_seq
        }
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        // Appends look for a removal only at rotation (one per segment); syncs at every sync.
        self.known_removed()?;
        self.heal()?;
        if batch.first_seq() != self.next_seq {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "batch starts at record {}, the log is at {}",
                    batch.first_seq(),
                    self.next_seq
                ),
            ));
        }
        let before = self.current();
        match self.append_inner(batch) {
            Ok(()) => {
                // The records are in the file (readable): followers may look.
                self.announcer.appended();
                if !self.options.durable {
                    self.mark = self.current();
                }
                if let Err(e) = self.apply_retention() {
                    // The batch is appended; a failed deletion is retried after the next one.
                    let _ = e;
                }
                Ok(())
            }
            Err(e) if self.removed.is_some() => {
                // Found removed at a rotation: nothing to roll back (and no path to touch, it
                // may name someone else's file by now).
                Err(e)
            }
            Err(e) => {
                let target = if self.poisoned { self.mark } else { before };
                let durable = self.poisoned;
                match self.restore(target, durable) {
                    Ok(()) => {
                        self.poisoned = false;
                        // Free what retention allows before the writer retries (a full disk:
                        // the retry may then fit). Best effort, as after a success.
                        let _ = self.apply_retention();
                    }
                    Err(_) => self.poisoned = true,
                }
                Err(e)
            }
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        self.check_present()?;
        self.heal()?;
        // Segments sealed without an fsync first, oldest first (retention may have deleted
        // some: nothing to sync then).
        while let Some(&first) = self.unsynced_sealed.first() {
            let path = self.path(first);
            match File::open(&path).and_then(|f| self.vfs.sync_data(&f, &path)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.sync_failed(annotate(&path, e))),
            }
            self.unsynced_sealed.remove(0);
        }
        let path = self.path(self.segments.back().expect("a segment exists").first_seq);
        if let Err(e) = self.vfs.sync_data(&self.active, &path) {
            return Err(self.sync_failed(e));
        }
        self.mark = self.current();
        self.synced = self.mark;
        if self.marked {
            // Every segment is fsynced now. Best effort: a marker left costs the next open a
            // read of every segment, and is removed after the next sync.
            let path = self.dir.join(UNSYNCED_FILE);
            let removed = match self.vfs.remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => sync_dir(&self.vfs, &self.dir),
            };
            self.marked = removed.is_err();
        }
        let _ = self.apply_retention();
        Ok(())
    }

    fn segments(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `O_NONBLOCK | O_NOFOLLOW` do what `open_regular` needs of them: with them, a
    /// FIFO opens at once (without them the open blocks) and a link is not followed (the
    /// `lstat` in `open_regular` catches both first, so only this shows the flags work).
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn the_open_flags_do_not_block_on_a_fifo_nor_follow_a_link() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success();
        assert!(made);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let opened = OpenOptions::new()
                .read(true)
                .custom_flags(NONBLOCK_NOFOLLOW)
                .open(&fifo)
                .map(|f| f.metadata().unwrap().is_file());
            let _ = tx.send(opened.map_err(|e| e.to_string()));
        });
        let opened = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the open did not block");
        assert_eq!(opened, Ok(false));
        let target = dir.path().join("target");
        fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let followed = OpenOptions::new()
            .read(true)
            .custom_flags(NONBLOCK_NOFOLLOW)
            .open(&link);
        assert!(followed.is_err(), "the link was followed");
    }

    /// Sizes near `u64::MAX` (sparse files on tmpfs) add up without overflow.
    #[test]
    fn total_saturates() {
        assert_eq!(total([u64::MAX / 2 + 1, u64::MAX / 2 + 1, 5]), u64::MAX);
        assert_eq!(total([1, 2, 3]), 6);
        assert_eq!(total([]), 0);
    }
}
