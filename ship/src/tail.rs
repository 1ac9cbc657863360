//! The reading side: a thread that follows the log (across rotation, while a writer
//! appends) and turns it into [`Outgoing`] messages.

use crate::message::{Kind, Outgoing};
use crate::metrics::Metrics;
use ringwal::checkpoint::Position;
use ringwal::{Gap, Reader};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A message read from the log, with where the log stands after it.
#[derive(Debug)]
pub(crate) struct Pending {
    pub msg: Outgoing,
    pub position: Option<Position>,
    /// Refused for good in an earlier attempt: dead-letter it when its turn comes.
    pub dead: Option<String>,
}

#[derive(Debug)]
pub(crate) enum Item {
    Msg(Pending),
    /// Everything below `next` has been read (and sent as items); the log ends there for now.
    Idle {
        next: u64,
    },
    /// Reading stopped: damage (file and offset) or an I/O error.
    Failed(io::Error),
}

pub(crate) struct Tail {
    pub dir: PathBuf,
    /// The first record to ship.
    pub start: u64,
    /// Nothing was ever shipped: start at the oldest record kept, and report no loss before.
    pub first_ever: bool,
    /// Losses before `start` already shipped.
    pub gap_shipped: Gap,
    pub poll_max: Duration,
    pub tx: mpsc::Sender<Item>,
    pub metrics: Arc<Metrics>,
    /// Makes a file's (or directory's) contents durable: [`sync_path`], a recorder in tests.
    pub sync: fn(&Path) -> io::Result<()>,
}

/// Messages read from the log and not handed on yet. They wait until every segment they were
/// read from is fsynced (and the directory, for a segment not synced before), so the stream
/// never holds a record that a power loss could take from the log: if it could, the writer,
/// restarted on the shorter log, would give new records the sequence numbers of shipped ones
/// (which the stream then drops as duplicates, or the shipper refuses as a cursor past the
/// log's end). One sync per segment per batch: a writer that syncs its own batches left
/// nothing to write, and a `SyncPolicy::Never` one has its records made durable here, on the
/// shipper's thread, before they leave the machine.
struct Outbox {
    items: Vec<Pending>,
    /// The newest segment whose directory entry is known durable.
    dir_synced: Option<u64>,
}

/// Messages read before the outbox is handed on even though the log goes on.
const BATCH: usize = 256;

/// `fsync` of `path`: the log directory, or a segment file (opened to read, only as a regular
/// file: a FIFO swapped in for it must not block the tail).
pub(crate) fn sync_path(path: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        return std::fs::File::open(path)?.sync_all();
    }
    let mut read = std::fs::OpenOptions::new();
    ringwal::checkpoint::open_regular(path, read.read(true))?.sync_all()
}

const POLL_MIN: Duration = Duration::from_micros(100);

impl Tail {
    pub(crate) fn spawn(self) -> io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("ringwal-ship-tail".into())
            .spawn(move || self.run())
    }

    fn send(&self, item: Item) -> bool {
        self.tx.blocking_send(item).is_ok()
    }

    /// Queues a message; hands the outbox on once it holds [`BATCH`]. False: the shipper is
    /// gone, or a sync failed (reported): stop.
    fn push(&self, out: &mut Outbox, pending: Pending) -> bool {
        out.items.push(pending);
        out.items.len() < BATCH || self.hand_on(out)
    }

    /// Syncs the segments the queued messages were read from (and the directory, for a segment
    /// newer than any synced before), then sends them, in order. False: the shipper is gone,
    /// or a sync failed (sent as `Failed`, nothing of the batch shipped): stop.
    fn hand_on(&self, out: &mut Outbox) -> bool {
        if out.items.is_empty() {
            return true;
        }
        let mut segments: Vec<u64> = out
            .items
            .iter()
            .filter_map(|p| p.position.map(|pos| pos.segment))
            .collect();
        segments.dedup();
        for &segment in &segments {
            let path = self.dir.join(ringwal::format::segment_file_name(segment));
            match (self.sync)(&path) {
                Ok(()) => {}
                // Deleted since it was read (retention): nothing of it is left to lose.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return self.sync_failed(&path, e),
            }
        }
        if let Some(&newest) = segments.iter().max() {
            if out.dir_synced.is_none_or(|d| newest > d) {
                if let Err(e) = (self.sync)(&self.dir) {
                    return self.sync_failed(&self.dir, e);
                }
                out.dir_synced = Some(newest);
            }
        }
        out.items
            .drain(..)
            .all(|pending| self.tx.blocking_send(Item::Msg(pending)).is_ok())
    }

    fn sync_failed(&self, path: &Path, e: io::Error) -> bool {
        self.send(Item::Failed(io::Error::new(
            e.kind(),
            format!(
                "{}: cannot make it durable before shipping its records: {e}",
                path.display()
            ),
        )));
        false
    }

    fn run(self) {
        let reader = match Reader::open(&self.dir) {
            Ok(reader) => reader,
            Err(e) => {
                self.send(Item::Failed(e));
                return;
            }
        };
        // From the record before `start`: the gap markers after it belong to `start`.
        let mut iter = match self.start.checked_sub(1) {
            Some(before) => reader.from_seq(before),
            None => reader.iter(),
        };
        let mut expected = self.start;
        let mut first = self.first_ever;
        let mut shipped = self.gap_shipped;
        let mut position = None;
        let mut sleep = POLL_MIN;
        let mut idle_sent = false;
        // Whether the log was seen to reach record `start - 1` (or further): until then, the
        // end of the log may be before the cursor (checked at the first end reached).
        let mut reached_start = self.start == 0;
        let mut out = Outbox {
            items: Vec::with_capacity(BATCH),
            dir_synced: None,
        };
        loop {
            match iter.next() {
                Some(Ok(entry)) => {
                    reached_start |= entry.seq.saturating_add(1) >= self.start;
                    if entry.seq < expected {
                        continue;
                    }
                    if entry.seq > expected && !first {
                        // Retention deleted records before this reader got to them.
                        let lost = Pending {
                            msg: Outgoing {
                                kind: Kind::Lost {
                                    from: expected,
                                    to: entry.seq - 1,
                                },
                                next: entry.seq,
                                payload: Default::default(),
                            },
                            position,
                            dead: None,
                        };
                        self.metrics
                            .lost
                            .fetch_add(entry.seq - expected, Ordering::Relaxed);
                        self.metrics.note_error(format!(
                            "records {expected} to {} were deleted by retention \
                                 (Retain::Bytes) before they were shipped; a lost-records \
                                 message takes their place",
                            entry.seq - 1
                        ));
                        if !self.push(&mut out, lost) {
                            return;
                        }
                        shipped = Gap::default();
                    }
                    first = false;
                    position = iter.position();
                    let seq = entry.seq;
                    let msg = Outgoing {
                        kind: Kind::Record {
                            seq,
                            dropped_before: entry.dropped_before.saturating_sub(shipped.dropped),
                            refused_before: entry.refused_before.saturating_sub(shipped.refused),
                        },
                        // Saturating: record `u64::MAX` is the last a log can hold (the reader
                        // refuses anything after it), and a crafted log may have it.
                        next: seq.saturating_add(1),
                        payload: entry.payload.into(),
                    };
                    expected = seq.saturating_add(1);
                    shipped = Gap::default();
                    idle_sent = false;
                    sleep = POLL_MIN;
                    self.metrics.read_next.store(expected, Ordering::Relaxed);
                    let pending = Pending {
                        msg,
                        position,
                        dead: None,
                    };
                    if !self.push(&mut out, pending) {
                        return;
                    }
                }
                // Retention overtook this reader: the jump in sequence numbers says by how much.
                Some(Err(_)) if !iter.has_failed() => continue,
                Some(Err(e)) => {
                    // The records before the damage are shipped, then it is reported.
                    if self.hand_on(&mut out) {
                        self.send(Item::Failed(e));
                    }
                    return;
                }
                None if !reached_start => {
                    if !self.hand_on(&mut out) {
                        return;
                    }
                    // No record at or after `start - 1`: unless the newest segment starts at
                    // or after `start` (empty, just made, the records before it deleted), the
                    // log ends before the cursor.
                    match reader.segments() {
                        Ok(segments)
                            if segments.last().is_some_and(|s| s.first_seq >= self.start) =>
                        {
                            reached_start = true;
                        }
                        Ok(_) => {
                            self.send(Item::Failed(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "{}: the cursor {} (every record below it shipped, says the \
                                     checkpoint or the destination's last message) is past the \
                                     log's end: it holds no record {} nor any after it. Was the \
                                     directory restored from an older copy, or its segments \
                                     deleted and a writer started again? New records would take \
                                     sequence numbers the destination already holds, and be \
                                     skipped: nothing is shipped. To ship this log as it is, \
                                     give it a new identity (remove LOG-ID and \
                                     ship-*.checkpoint) and a subject of its own.",
                                    self.dir.display(),
                                    self.start,
                                    self.start - 1
                                ),
                            )));
                            return;
                        }
                        Err(e) => {
                            self.send(Item::Failed(e));
                            return;
                        }
                    }
                }
                None => {
                    let trailing = iter.trailing_gap();
                    if trailing.dropped > shipped.dropped || trailing.refused > shipped.refused {
                        let total = Gap {
                            dropped: trailing.dropped.max(shipped.dropped),
                            refused: trailing.refused.max(shipped.refused),
                        };
                        let gap = Pending {
                            msg: Outgoing {
                                kind: Kind::Gap {
                                    before: expected,
                                    dropped: total.dropped - shipped.dropped,
                                    refused: total.refused - shipped.refused,
                                    total,
                                },
                                next: expected,
                                payload: Default::default(),
                            },
                            position,
                            dead: None,
                        };
                        shipped = total;
                        if !self.push(&mut out, gap) {
                            return;
                        }
                    }
                    // The log ends here for now: what was read goes on.
                    if !self.hand_on(&mut out) {
                        return;
                    }
                    self.metrics.read_next.store(expected, Ordering::Relaxed);
                    self.metrics.tail_at_end.store(true, Ordering::Relaxed);
                    if !idle_sent {
                        if !self.send(Item::Idle { next: expected }) {
                            return;
                        }
                        idle_sent = true;
                    }
                    if self.tx.is_closed() {
                        return;
                    }
                    std::thread::sleep(sleep);
                    sleep = (sleep * 2).min(self.poll_max);
                    continue;
                }
            }
            self.metrics.tail_at_end.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Every path synced so far, in order (the tail thread's syncs, seen by the test thread
    /// through the mutex).
    static SYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    fn record_sync(path: &Path) -> io::Result<()> {
        SYNCED.lock().unwrap().push(path.to_path_buf());
        sync_path(path)
    }

    /// A record reaches the shipper only after the segment it was read from has been synced
    /// (and the directory, once per new segment), and syncs are batched: a log written with
    /// `SyncPolicy::Never` (nothing fsynced by its writer) over several segments. Without the
    /// outbox, nothing was synced before a record left.
    #[test]
    fn records_are_handed_on_only_after_their_segment_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, emitter) = ringwal::Writer::builder(dir.path())
            .sync(ringwal::SyncPolicy::Never)
            .segment_bytes(16 << 10)
            .start_bytes()
            .unwrap();
        for i in 0..2_000u32 {
            emitter.emit(format!("record {i:>40}").as_bytes()).unwrap();
        }
        writer.shutdown().unwrap();
        let segments = Reader::open(dir.path()).unwrap().segments().unwrap().len();
        assert!(segments >= 4, "{segments} segments");

        let (tx, mut rx) = mpsc::channel(64);
        let tail = Tail {
            dir: dir.path().to_path_buf(),
            start: 0,
            first_ever: true,
            gap_shipped: Gap::default(),
            poll_max: Duration::from_millis(10),
            tx,
            metrics: Arc::new(Metrics::new(dir.path().to_path_buf())),
            sync: record_sync,
        }
        .spawn()
        .unwrap();
        let mut records = 0u64;
        loop {
            match rx.blocking_recv().expect("the tail ends only when told") {
                Item::Msg(p) => {
                    let pos = p.position.expect("a record has a position");
                    let segment = dir
                        .path()
                        .join(ringwal::format::segment_file_name(pos.segment));
                    let synced = SYNCED.lock().unwrap();
                    assert!(
                        synced.contains(&segment),
                        "record {records} handed on before {} was synced",
                        segment.display()
                    );
                    assert!(
                        synced.contains(&dir.path().to_path_buf()),
                        "directory not synced"
                    );
                    records += 1;
                }
                Item::Idle { next } => {
                    assert_eq!((next, records), (2_000, 2_000));
                    break;
                }
                Item::Failed(e) => panic!("{e}"),
            }
        }
        drop(rx);
        tail.join().unwrap();
        let syncs = SYNCED.lock().unwrap().len();
        // Batched: at most one per segment per 256 records read, plus the directory's.
        assert!(
            syncs <= 2_000 / BATCH + 2 * segments + 2,
            "{syncs} syncs for 2,000 records in {segments} segments"
        );
    }
}
