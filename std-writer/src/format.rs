//! The on-disk format: segment files, their header, and record frames — `ringwal-core`'s
//! [`format`](ringwal_core::format) module (one implementation, `no_std`, shared with
//! firmware), re-exported here. The format is documented there.
//!
//! ```
//! use ringwal::format;
//!
//! let mut buf = Vec::new();
//! format::encode_frame(&mut buf, 7, 0, b"hello");
//! let (frame, used) = format::decode_frame(&buf).unwrap();
//! assert_eq!((frame.seq, frame.payload, used), (7, &b"hello"[..], buf.len()));
//! ```

pub use ringwal_core::format::*;

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::Path;

/// A file (a segment) as a [`ReadAt`] source for [`scan_segment_in`] and
/// [`valid_frame_after_in`]: read through a [`FileSource::WINDOW`]-byte buffer refilled by
/// positioned reads, so checking a segment takes that much memory whatever its size (a sparse
/// 1 GiB file too), and the search after damage, which looks at every offset, costs one read
/// per window, not one per offset.
///
/// Its length is the file's when the source was made; a file cut shorter meanwhile makes the
/// reads past its new end fail with [`io::ErrorKind::UnexpectedEof`] (bytes the window already
/// holds are served from it, as they were when read).
///
/// ```
/// use ringwal::format::{self, FileSource, ScanEnd};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join(format::segment_file_name(0));
/// let mut seg = format::encode_header(0).to_vec();
/// format::encode_frame(&mut seg, 0, 0, b"hello");
/// std::fs::write(&path, &seg).unwrap();
///
/// let mut file = FileSource::open(&path).unwrap();
/// let scan = format::scan_segment_in(&mut file).unwrap();
/// assert_eq!((scan.records, scan.end), (1, ScanEnd::Clean));
/// ```
#[derive(Debug)]
pub struct FileSource {
    file: File,
    /// The file offset the source's offset 0 stands for.
    start: u64,
    /// The source's length (the file's, less `start`).
    len: u64,
    /// `window[..filled]` holds the source's bytes from `window_at` on.
    window: Box<[u8]>,
    window_at: u64,
    filled: usize,
}

impl FileSource {
    /// The size of the read buffer: 64 KiB.
    pub const WINDOW: usize = 64 << 10;

    /// Opens the file at `path` (errors name it).
    pub fn open(path: &Path) -> io::Result<FileSource> {
        let file = File::open(path).map_err(|e| crate::log::annotate(path, e))?;
        FileSource::new(file).map_err(|e| crate::log::annotate(path, e))
    }

    /// The whole of `file`.
    pub fn new(file: File) -> io::Result<FileSource> {
        FileSource::from_offset(file, 0)
    }

    /// The bytes of `file` from `start` on (none if it is shorter): offset 0 of the source
    /// is `start` in the file.
    pub fn from_offset(file: File, start: u64) -> io::Result<FileSource> {
        let len = file.metadata()?.len().saturating_sub(start);
        Ok(FileSource {
            file,
            start,
            len,
            window: vec![0; FileSource::WINDOW].into_boxed_slice(),
            window_at: 0,
            filled: 0,
        })
    }

    /// Whether the source is exactly [`HEADER_LEN`] zero bytes: a segment whose header was
    /// never written, on a file system that extended the file first (a crash while creating
    /// it, which recovery removes).
    pub fn is_unwritten_header(&mut self) -> io::Result<bool> {
        if self.len() != HEADER_LEN as u64 {
            return Ok(false);
        }
        let mut header = [0u8; HEADER_LEN];
        self.read_exact_at(0, &mut header)?;
        Ok(header.iter().all(|&b| b == 0))
    }

    /// Reads exactly `buf.len()` bytes at source offset `offset` from the file.
    fn read_file(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let at = self
            .start
            .checked_add(offset)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset past u64::MAX"))?;
        self.file.seek(SeekFrom::Start(at))?;
        let n = crate::log::read_up_to(&mut self.file, buf)?;
        if n < buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "file ends at byte {}, before byte {} (cut shorter while read)",
                    at + n as u64,
                    at + buf.len() as u64
                ),
            ));
        }
        Ok(())
    }
}

impl ReadAt for FileSource {
    type Error = io::Error;

    fn len(&self) -> u64 {
        self.len
    }

    /// From the file system's map of the file's holes (`lseek(SEEK_DATA)`, on Linux and
    /// Android, 64-bit): a hostile sparse segment of 2^62 bytes is stepped over, not read.
    /// Elsewhere, or where the file system does not say, `offset` (the search reads on).
    fn data_from(&mut self, offset: u64) -> io::Result<u64> {
        if offset >= self.len {
            return Ok(offset);
        }
        #[cfg(all(
            any(target_os = "linux", target_os = "android"),
            target_pointer_width = "64"
        ))]
        {
            use std::os::fd::AsRawFd as _;
            let Some(at) = self
                .start
                .checked_add(offset)
                .and_then(|at| libc::off_t::try_from(at).ok())
            else {
                return Ok(offset);
            };
            // SAFETY: `lseek` on a descriptor `self.file` owns and keeps open for the call;
            // it touches no memory of ours. It moves the file's position, which every read
            // here sets first (`read_file` seeks).
            let data = unsafe { libc::lseek(self.file.as_raw_fd(), at, libc::SEEK_DATA) };
            if let Ok(data) = u64::try_from(data) {
                return Ok(data.saturating_sub(self.start).clamp(offset, self.len));
            }
            // ENXIO: no data from `at` to the end of the file (a hole to the end). Anything
            // else (say EINVAL, a file system without the call): nothing known.
            if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                return Ok(self.len);
            }
        }
        Ok(offset)
    }

    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.saturating_add(buf.len() as u64);
        let window_end = self.window_at + self.filled as u64;
        if offset >= self.window_at && end <= window_end {
            let from = (offset - self.window_at) as usize;
            buf.copy_from_slice(&self.window[from..from + buf.len()]);
            return Ok(());
        }
        if buf.len() >= FileSource::WINDOW {
            return self.read_file(offset, buf);
        }
        // Refill from `offset`: reads going forward (all the scans do) are then served from
        // memory until the window is used up.
        let want = self
            .len
            .saturating_sub(offset)
            .clamp(buf.len() as u64, FileSource::WINDOW as u64) as usize;
        let mut window = std::mem::take(&mut self.window);
        self.filled = 0;
        let read = self.read_file(offset, &mut window[..want]);
        self.window = window;
        read?;
        (self.window_at, self.filled) = (offset, want);
        buf.copy_from_slice(&self.window[..buf.len()]);
        Ok(())
    }
}
