//! The seam under [`SegmentLog`](crate::SegmentLog)'s file and directory operations.
//!
//! Every operation that changes what is on disk — creating a segment, appending to it,
//! fsyncing it (`sync_all`, `sync_data`), cutting it (`set_len`), deleting it, fsyncing the
//! directory — goes through a [`Vfs`]. The default, [`StdFs`], is `std::fs` itself: every
//! method is a provided default that calls the `std` function, and `SegmentLog` is generic
//! over the `Vfs` (`SegmentLog<V = StdFs>`), so the default is monomorphised to the plain
//! `std` calls, with no indirection.
//!
//! It exists for the power-loss test (`std-writer/tests/power_loss.rs`), which implements a
//! `Vfs` that records every operation (passing it on to `std`) and then enumerates the states
//! a power cut could leave. That is why it is `#[doc(hidden)] pub` and not part of the
//! supported API: an integration test can only use what the crate exports, and a recorder in
//! the crate behind a test-support feature would put test code into the library and a feature
//! into the public surface. Reads (listing the directory, scanning segments, `stat`, the
//! locks) do not go through it: they change nothing a power loss could undo.
//!
//! Paths are the real paths; a wrapper passes them on to `std` and may look at them.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// File and directory operations that change the disk (see the [module docs](self)).
///
/// Each provided method is the `std::fs` call; a recorder overrides them, calling these.
#[doc(hidden)]
pub trait Vfs: fmt::Debug + Send + Sync + 'static {
    /// Creates `path`, which must not exist, opened for appending.
    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().create_new(true).append(true).open(path)
    }

    /// Opens the existing `path` for appending.
    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().append(true).open(path)
    }

    /// Appends `bytes` to `file` (opened for appending, at `path`).
    fn append(&self, file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let _ = path;
        file.write_all(bytes)
    }

    /// `fsync`.
    fn sync_all(&self, file: &File, path: &Path) -> io::Result<()> {
        let _ = path;
        file.sync_all()
    }

    /// `fdatasync`.
    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()> {
        let _ = path;
        file.sync_data()
    }

    /// Truncates (or extends) `file` to `len` bytes.
    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let _ = path;
        file.set_len(len)
    }

    /// Unlinks `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// fsyncs the directory `dir`, so creations and deletions in it are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir).and_then(|d| d.sync_all())
    }
}

/// The real file system: `std::fs`. [`SegmentLog`](crate::SegmentLog)'s default.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StdFs;

impl Vfs for StdFs {}
