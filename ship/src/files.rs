//! The files a shipper keeps beside the log, besides its checkpoint's format (in
//! `ringwal::checkpoint`): its lock, its dead letters, and the thread that writes its
//! checkpoint off the publishing path.

use crate::message::Outgoing;
use crate::metrics::Metrics;
use ringwal::checkpoint::{Checkpoint, LogId};
use ringwal::Gap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc};

/// Opens (`append`, or to write) or creates `path`, one of the shipper's own files, only as a
/// regular file ([`ringwal::checkpoint::open_regular`]: a FIFO in its place would block the
/// open for ever, and a symbolic link would have the shipper create or write a file
/// elsewhere; either is an `InvalidData` error naming it).
pub(crate) fn open_own(path: &Path, append: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    if append {
        options.append(true);
    } else {
        options.write(true);
    }
    ringwal::checkpoint::open_regular(path, options.create(true))
}

/// Takes `ship-<name>.lock` in `dir` for as long as the file lives: one shipper per name.
/// Anything but a regular file in its place is an error naming it ([`open_own`]).
pub(crate) fn lock(dir: &Path, name: &str) -> io::Result<File> {
    let path = dir.join(format!("ship-{name}.lock"));
    let file = open_own(&path, false)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{}: another shipper named {name:?} is running on this log",
                path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        }
    }
}

/// The dead-letter file, opened on first use.
pub(crate) struct DeadLetters {
    pub(crate) path: PathBuf,
    pub(crate) file: Option<File>,
}

impl DeadLetters {
    /// Appends one line and fsyncs: `<what> bytes <len> payload <hex> reason <text>`. The
    /// file must be a regular file or missing ([`open_own`]).
    pub(crate) fn write(&mut self, msg: &Outgoing, reason: &str) -> io::Result<()> {
        let annotate =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        if self.file.is_none() {
            // Only a regular file: never a FIFO (a hang) nor a link (a write elsewhere).
            self.file = Some(open_own(&self.path, true)?);
        }
        let mut line = format!("{} bytes {} payload ", msg.describe(), msg.payload.len());
        for b in msg.payload.iter() {
            line.push_str(&format!("{b:02x}"));
        }
        line.push_str(" reason ");
        line.extend(reason.chars().map(|c| if c.is_control() { ' ' } else { c }));
        line.push('\n');
        let file = self.file.as_mut().expect("opened above");
        file.write_all(line.as_bytes()).map_err(annotate)?;
        file.sync_data().map_err(annotate)
    }
}

/// Writes checkpoints on a thread of its own (an fsync and a directory fsync each), the
/// newest one when several queue up.
pub(crate) struct Checkpointer {
    tx: Option<std_mpsc::SyncSender<Checkpoint>>,
    latest: Arc<std::sync::Mutex<Option<Checkpoint>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn spawn(
        dir: PathBuf,
        name: String,
        metrics: Arc<Metrics>,
    ) -> io::Result<Checkpointer> {
        let (tx, rx) = std_mpsc::sync_channel::<Checkpoint>(1);
        let latest: Arc<std::sync::Mutex<Option<Checkpoint>>> = Arc::default();
        let newest = Arc::clone(&latest);
        let handle = std::thread::Builder::new()
            .name("ringwal-ship-checkpoint".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    let Some(c) = newest.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                        continue;
                    };
                    match c.store(&dir, &name) {
                        Ok(()) => {
                            metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
                        }
                        // Not fatal: the destination's resume covers a stale checkpoint; the
                        // next one tries again.
                        Err(e) => metrics.note_error(format!("checkpoint not written: {e}")),
                    }
                }
            })?;
        Ok(Checkpointer {
            tx: Some(tx),
            latest,
            handle: Some(handle),
        })
    }

    pub(crate) fn store(&self, checkpoint: Checkpoint) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(checkpoint);
        if let Some(tx) = &self.tx {
            // Full: the thread has a wake-up queued and will take the newest.
            let _ = tx.try_send(Checkpoint {
                log: LogId([0; 16]),
                next_seq: 0,
                position: None,
                gap_shipped: Gap::default(),
                destination: String::new(),
            });
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
