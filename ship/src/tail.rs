//! The reading side: a thread that follows the log (across rotation, while a writer
//! appends) and turns it into [`Outgoing`] messages.

use crate::message::{Kind, Outgoing};
use crate::metrics::Metrics;
use ringwal::checkpoint::Position;
use ringwal::{Gap, Reader};
use std::io;
use std::path::PathBuf;
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
                        if !self.send(Item::Msg(lost)) {
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
                    if !self.send(Item::Msg(pending)) {
                        return;
                    }
                }
                // Retention overtook this reader: the jump in sequence numbers says by how much.
                Some(Err(_)) if !iter.has_failed() => continue,
                Some(Err(e)) => {
                    self.send(Item::Failed(e));
                    return;
                }
                None if !reached_start => {
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
                        if !self.send(Item::Msg(gap)) {
                            return;
                        }
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
