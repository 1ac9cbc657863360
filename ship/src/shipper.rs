//! The cursor logic: a window of publishes, acks in order, fences after failures, the
//! checkpoint, dead letters. Independent of the destination.

use crate::backoff::Backoff;
use crate::destination::{Acked, Destination, SendError, SendErrorKind};
use crate::files::{lock, Checkpointer, DeadLetters};
use crate::message::{Kind, Outgoing};
use crate::metrics::Metrics;
use crate::options::{Options, Report, ShipError};
use crate::tail::{Item, Pending, Tail};
use ringwal::checkpoint::{dead_letter_path, Checkpoint, LogId, Position};
use ringwal::Gap;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type AckHook = Box<dyn FnMut(&Outgoing) + Send>;

/// Ships a log directory to a [`Destination`]: follows the log (also while a writer
/// appends, across rotation), publishes each record with a bounded window of
/// unacknowledged publishes, and keeps a durable cursor.
///
/// - **Start**: the log's id ([`LogId`], made on first use), this shipper's checkpoint (a
///   damaged one is an error, never ignored), and what the destination already holds
///   ([`Destination::resume`]); it goes on from the larger. A first run ever starts at the
///   oldest record kept.
/// - **Cursor**: acks are taken in log order; the cursor is the end of the acknowledged
///   prefix, stored in the checkpoint at most every [`Options::checkpoint_every`] acks or
///   [`Options::checkpoint_interval`], and at the end of the run.
/// - **Failures**: after any failed send or ack the shipper stops sending, awaits every
///   outstanding ack, asks the destination where it stands, and sends the rest again, after a
///   capped, jittered exponential backoff; for ever, never dropping. The log is the buffer:
///   the writer never waits for the shipper.
/// - **Refusals for good** go to the dead-letter file with the reason, counted.
/// - **Losses**: events lost at emit travel as headers of the next record (or a gap message
///   at the end of the log); records a forced retention deleted unshipped travel as a
///   lost-records message, counted and reported.
/// - **Damage** in the log stops the shipper with an error naming file and offset, after the
///   records before it are acknowledged and checkpointed; nothing after it is shipped.
///
/// ```no_run
/// use ringwal_ship::{JetStream, JetStreamOptions, Options, Shipper};
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let destination =
///     JetStream::connect(JetStreamOptions::new("nats://127.0.0.1:4222", "events")).await?;
/// let shipper = Shipper::new("/var/log/app", destination, Options::default());
/// let metrics = shipper.metrics();
/// // Ships until Ctrl-C (any future), then drains its window and checkpoints.
/// let report = shipper.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// println!("shipped up to {}, lag {}", report.status.cursor, metrics.status().lag_records);
/// # Ok(()) }
/// ```
pub struct Shipper<D: Destination> {
    dir: PathBuf,
    destination: D,
    options: Options,
    metrics: Arc<Metrics>,
    on_ack: Option<AckHook>,
}

impl<D: Destination> fmt::Debug for Shipper<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shipper")
            .field("dir", &self.dir)
            .field("destination", &self.destination.describe())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A publish awaiting its ack, or one that already failed.
enum FlightAck<A> {
    Wait(A),
    Failed(SendError),
}

struct Flight<A> {
    pending: Pending,
    ack: FlightAck<A>,
}

/// The acknowledged prefix.
struct Cursor {
    next: u64,
    gap: Gap,
    position: Option<Position>,
    /// Acks since the last checkpoint, and when the first of them came.
    unsaved: u64,
    unsaved_since: Option<Instant>,
}

impl<D: Destination> Shipper<D> {
    /// A shipper of the log in `dir` to `destination`. Nothing happens until
    /// [`run`](Self::run).
    pub fn new(dir: impl Into<PathBuf>, destination: D, options: Options) -> Shipper<D> {
        let dir = dir.into();
        Shipper {
            metrics: Arc::new(Metrics::new(dir.clone())),
            dir,
            destination,
            options,
            on_ack: None,
        }
    }

    /// The counters, live while it runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Calls `hook` with every message as its ack arrives (in log order, on the shipper's
    /// task: keep it short). For measurements: the shipping benchmark takes the end-to-end
    /// lag here.
    pub fn on_ack(mut self, hook: impl FnMut(&Outgoing) + Send + 'static) -> Self {
        self.on_ack = Some(Box::new(hook));
        self
    }

    /// Ships until `stop` completes (or, with [`Options::until_caught_up`], until the log's
    /// end is acknowledged), then awaits the acks outstanding, writes the checkpoint and
    /// returns the final counters. Errors: see [`ShipError`]; on an error too the cursor
    /// reached is checkpointed (best effort).
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> Result<Report, ShipError> {
        self.options.check().map_err(ShipError::Settings)?;
        let dir = self.dir.clone();
        // Not a log: say so before anything is created in it.
        ringwal::Reader::open(&dir)?;
        let _lock = lock(&dir, &self.options.name)?;
        let log = LogId::get_or_create(&dir)?;
        let saved = Checkpoint::load(&dir, &self.options.name)?;
        if let Some(c) = &saved {
            if c.log != log {
                return Err(ShipError::Log(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: checkpoint of log {}, but this log is {log} (copied from another \
                         log?): remove it to ship this log from what the destination holds",
                        Checkpoint::path(&dir, &self.options.name)?.display(),
                        c.log
                    ),
                )));
            }
        }
        tokio::pin!(stop);
        let mut backoff = Backoff::new(self.options.backoff_min, self.options.backoff_max);
        let remote = loop {
            match self.destination.resume(log).await {
                Ok(r) => break r,
                Err(e) if e.kind == SendErrorKind::Fatal => return Err(ShipError::Destination(e)),
                Err(e) => {
                    self.metrics.note_error(e.message.clone());
                    tokio::select! {
                        _ = &mut stop => return Ok(Report { status: self.metrics.status() }),
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        };
        let (next, gap) = match (&saved, remote) {
            (Some(c), Some(r)) if r.next > c.next_seq => (r.next, r.gap_shipped),
            (Some(c), Some(r)) if r.next == c.next_seq => (
                c.next_seq,
                Gap {
                    dropped: c.gap_shipped.dropped.max(r.gap_shipped.dropped),
                    refused: c.gap_shipped.refused.max(r.gap_shipped.refused),
                },
            ),
            (Some(c), _) => (c.next_seq, c.gap_shipped),
            (None, Some(r)) => (r.next, r.gap_shipped),
            (None, None) => (0, Gap::default()),
        };
        let position = saved
            .as_ref()
            .filter(|c| c.next_seq == next)
            .and_then(|c| c.position);
        let mut cursor = Cursor {
            next,
            gap,
            position,
            unsaved: 0,
            unsaved_since: None,
        };
        self.metrics.cursor.store(next, Ordering::Relaxed);
        self.metrics.read_next.store(next, Ordering::Relaxed);
        *self
            .metrics
            .position
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = position;
        self.metrics.connected.store(true, Ordering::Relaxed);
        let destination = self.destination.describe();
        let checkpoint_of = |c: &Cursor| Checkpoint {
            log,
            next_seq: c.next,
            position: c.position,
            gap_shipped: c.gap,
            destination: destination.clone(),
        };
        // From now on retention keeps what this shipper has not shipped.
        checkpoint_of(&cursor).store(&dir, &self.options.name)?;
        self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        let checkpointer = Checkpointer::spawn(
            dir.clone(),
            self.options.name.clone(),
            Arc::clone(&self.metrics),
        )?;

        let (tx, mut rx) = mpsc::channel(self.options.window.max(256));
        let tail = Tail {
            dir: dir.clone(),
            start: next,
            first_ever: saved.is_none() && remote.is_none(),
            gap_shipped: gap,
            poll_max: self.options.poll_max,
            tx,
            metrics: Arc::clone(&self.metrics),
            sync: crate::tail::sync_path,
        }
        .spawn()?;

        let mut dead = DeadLetters {
            path: dead_letter_path(&dir, &self.options.name)?,
            file: None,
        };
        // A window above the destination's own bound would wait in `send` for an ack it has
        // not taken yet (for ever): capped.
        let window = self
            .destination
            .window_limit()
            .map_or(self.options.window, |limit| {
                self.options.window.min(limit.max(1))
            });
        let mut run = Run {
            destination: &mut self.destination,
            log,
            metrics: &self.metrics,
            on_ack: self.on_ack.as_mut(),
            cursor: &mut cursor,
            dead: &mut dead,
            inflight: VecDeque::new(),
            resend: VecDeque::new(),
            backoff,
        };
        let mut staged: Option<Pending> = None;
        let mut idle_at: Option<u64> = None;
        let mut log_failure: Option<io::Error> = None;
        let mut tail_gone = false;
        let outcome: Result<(), ShipError> = 'run: loop {
            // Fill the window: retries first, then what the reader has.
            let mut failure = None;
            while run.inflight.len() < window {
                let pending = if let Some(p) = run.resend.pop_front() {
                    p
                } else if let Some(p) = staged.take() {
                    p
                } else if log_failure.is_some() || tail_gone {
                    break;
                } else {
                    match rx.try_recv() {
                        // A record past the tail's last idle point: not caught up any more.
                        // (Only the tail's own messages clear it: a retry after a fence
                        // resends what the tail sent before it was idle, and the tail says
                        // idle only once per stretch of waiting.)
                        Ok(Item::Msg(p)) => {
                            idle_at = None;
                            p
                        }
                        Ok(Item::Idle { next }) => {
                            idle_at = Some(next);
                            continue;
                        }
                        Ok(Item::Failed(e)) => {
                            log_failure = Some(e);
                            break;
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            tail_gone = true;
                            break;
                        }
                    }
                };
                if let Err(e) = run.send(pending).await {
                    failure = Some(e);
                    break;
                }
            }
            if let Some(e) = failure {
                if e.kind == SendErrorKind::Fatal {
                    break 'run Err(ShipError::Destination(e));
                }
                if let Err(e) = run.fence(e, &mut stop).await {
                    break 'run e.map_or(Ok(()), Err);
                }
                continue;
            }
            self.metrics
                .inflight
                .store(run.inflight.len() as u64, Ordering::Relaxed);
            let drained = run.inflight.is_empty() && run.resend.is_empty() && staged.is_none();
            if drained {
                if let Some(e) = log_failure.take() {
                    break 'run Err(ShipError::Log(e));
                }
                if tail_gone {
                    break 'run Err(ShipError::Log(io::Error::other(
                        "the log reader thread stopped unexpectedly",
                    )));
                }
                if self.options.until_caught_up && idle_at == Some(run.cursor.next) {
                    break 'run Ok(());
                }
            }
            // Checkpoint when due.
            let due = run.cursor.unsaved >= self.options.checkpoint_every
                || run
                    .cursor
                    .unsaved_since
                    .is_some_and(|t| t.elapsed() >= self.options.checkpoint_interval);
            if due {
                checkpointer.store(checkpoint_of(run.cursor));
                run.cursor.unsaved = 0;
                run.cursor.unsaved_since = None;
            }
            let tick = run
                .cursor
                .unsaved_since
                .map_or(Duration::from_secs(3600), |t| {
                    self.options.checkpoint_interval.saturating_sub(t.elapsed())
                });
            let can_take = run.inflight.len() < window
                && staged.is_none()
                && run.resend.is_empty()
                && log_failure.is_none()
                && !tail_gone;
            let inflight = &mut run.inflight;
            let front = async {
                match inflight.front_mut() {
                    Some(Flight {
                        ack: FlightAck::Wait(ack),
                        ..
                    }) => ack.await,
                    Some(Flight {
                        ack: FlightAck::Failed(e),
                        ..
                    }) => Err(e.clone()),
                    None => std::future::pending().await,
                }
            };
            enum Woke {
                Stop,
                Ack(Result<Acked, SendError>),
                Item(Option<Item>),
                Tick,
            }
            let woke = tokio::select! {
                biased;
                _ = &mut stop => Woke::Stop,
                r = front => Woke::Ack(r),
                item = rx.recv(), if can_take => Woke::Item(item),
                _ = tokio::time::sleep(tick) => Woke::Tick,
            };
            match woke {
                Woke::Stop => break 'run Ok(()),
                Woke::Tick => {}
                Woke::Item(None) => tail_gone = true,
                Woke::Item(Some(Item::Msg(p))) => {
                    idle_at = None;
                    staged = Some(p);
                }
                Woke::Item(Some(Item::Idle { next })) => idle_at = Some(next),
                Woke::Item(Some(Item::Failed(e))) => log_failure = Some(e),
                Woke::Ack(result) => {
                    let flight = run.inflight.pop_front().expect("a front ack resolved");
                    match result {
                        Ok(acked) => run.acked(flight.pending, acked),
                        Err(e) if e.kind == SendErrorKind::Refused => {
                            // `dead_letter` moves the cursor only once the line is written.
                            // If it cannot be, the flight goes back to the front, so that the
                            // acks taken below stop there: the cursor must not pass a record
                            // that is neither in the destination nor in the dead-letter file.
                            if let Err(io) = run.dead_letter_ref(&flight.pending, &e.message) {
                                run.inflight.push_front(Flight {
                                    pending: flight.pending,
                                    ack: FlightAck::Failed(e),
                                });
                                break 'run Err(ShipError::Log(io));
                            }
                            run.advance(flight.pending);
                        }
                        Err(e) if e.kind == SendErrorKind::Fatal => {
                            run.inflight.push_front(flight);
                            break 'run Err(ShipError::Destination(e));
                        }
                        Err(e) => {
                            run.inflight.push_front(Flight {
                                pending: flight.pending,
                                ack: FlightAck::Failed(e.clone()),
                            });
                            if let Err(e) = run.fence(e, &mut stop).await {
                                break 'run e.map_or(Ok(()), Err);
                            }
                        }
                    }
                }
            }
        };
        // Stop reading; take the acks still coming (each bounded by the destination's ack
        // timeout), in order, up to the first failure.
        drop(rx);
        for (pending, result) in settle(std::mem::take(&mut run.inflight)).await {
            match result {
                Ok(acked) => run.acked(pending, acked),
                Err(e) if e.kind == SendErrorKind::Refused => {
                    if run.dead_letter(pending, &e.message).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        self.metrics.inflight.store(0, Ordering::Relaxed);
        let _ = tail.join();
        drop(checkpointer);
        let final_store = checkpoint_of(&cursor).store(&dir, &self.options.name);
        if final_store.is_ok() {
            self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        }
        outcome?;
        final_store?;
        Ok(Report {
            status: self.metrics.status(),
        })
    }
}

/// The state of one run that the helpers below change.
struct Run<'a, D: Destination> {
    destination: &'a mut D,
    log: LogId,
    metrics: &'a Metrics,
    on_ack: Option<&'a mut AckHook>,
    cursor: &'a mut Cursor,
    dead: &'a mut DeadLetters,
    inflight: VecDeque<Flight<D::Ack>>,
    resend: VecDeque<Pending>,
    backoff: Backoff,
}

impl<D: Destination> Run<'_, D> {
    /// Sends one message into the window. A refusal for good at send time goes into the
    /// window as a failed flight (dead-lettered when it reaches the front); any other error
    /// puts the message back at the front of the retries and is returned.
    async fn send(&mut self, pending: Pending) -> Result<(), SendError> {
        if let Some(reason) = &pending.dead {
            let e = SendError::refused(reason.clone());
            self.inflight.push_back(Flight {
                pending,
                ack: FlightAck::Failed(e),
            });
            return Ok(());
        }
        match self.destination.send(self.log, &pending.msg).await {
            Ok(ack) => {
                self.metrics.published.fetch_add(1, Ordering::Relaxed);
                self.inflight.push_back(Flight {
                    pending,
                    ack: FlightAck::Wait(ack),
                });
                Ok(())
            }
            Err(e) if e.kind == SendErrorKind::Refused => {
                self.inflight.push_back(Flight {
                    pending,
                    ack: FlightAck::Failed(e),
                });
                Ok(())
            }
            Err(e) => {
                self.resend.push_front(pending);
                Err(e)
            }
        }
    }

    /// The message at the front is in the destination: move the cursor past it.
    fn acked(&mut self, pending: Pending, acked: Acked) {
        self.metrics.connected.store(true, Ordering::Relaxed);
        self.backoff.reset();
        if acked.duplicate {
            self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics
            .acked
            .fetch_add(pending.msg.seq().map_or(0, |_| 1), Ordering::Relaxed);
        if let Some(hook) = self.on_ack.as_mut() {
            hook(&pending.msg);
        }
        self.advance(pending);
    }

    fn advance(&mut self, pending: Pending) {
        let msg = &pending.msg;
        if let Kind::Record {
            dropped_before,
            refused_before,
            ..
        }
        | Kind::Gap {
            dropped: dropped_before,
            refused: refused_before,
            ..
        } = msg.kind
        {
            self.metrics
                .gap_events
                .fetch_add(dropped_before + refused_before, Ordering::Relaxed);
        }
        if msg.next >= self.cursor.next {
            self.cursor.next = msg.next;
            self.cursor.gap = msg.gap_shipped();
            if pending.position.is_some() {
                self.cursor.position = pending.position;
            }
        }
        self.cursor.unsaved += 1;
        self.cursor.unsaved_since.get_or_insert_with(Instant::now);
        self.metrics
            .cursor
            .store(self.cursor.next, Ordering::Relaxed);
        *self
            .metrics
            .position
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = self.cursor.position;
    }

    /// The message at the front was refused for good: into the dead-letter file (fsynced),
    /// then the cursor moves past it.
    fn dead_letter(&mut self, pending: Pending, reason: &str) -> io::Result<()> {
        self.dead_letter_ref(&pending, reason)?;
        self.advance(pending);
        Ok(())
    }

    /// [`dead_letter`](Self::dead_letter) without moving the cursor: the caller does, once
    /// this returns `Ok`.
    fn dead_letter_ref(&mut self, pending: &Pending, reason: &str) -> io::Result<()> {
        self.dead.write(&pending.msg, reason)?;
        self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.metrics.note_error(format!(
            "dead-lettered {}: {reason}",
            pending.msg.describe()
        ));
        Ok(())
    }

    /// After a failure: await every outstanding ack, back off, ask the destination where it
    /// stands (retrying until it answers), and queue everything it does not hold to be sent
    /// again, in order. `Err(None)`: stopped meanwhile; `Err(Some(_))`: a fatal error.
    async fn fence(
        &mut self,
        first: SendError,
        stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), Option<ShipError>> {
        self.metrics.connected.store(false, Ordering::Relaxed);
        self.metrics.note_error(first.message.clone());
        let mut settled = VecDeque::new();
        let mut failed = false;
        for (pending, result) in settle(std::mem::take(&mut self.inflight)).await {
            match result {
                // In order and before any failure: in the destination.
                Ok(acked) if !failed => self.acked(pending, acked),
                Err(e) if !failed && e.kind == SendErrorKind::Refused => self
                    .dead_letter(pending, &e.message)
                    .map_err(|e| Some(ShipError::Log(e)))?,
                Err(e) if e.kind == SendErrorKind::Refused => {
                    let mut pending = pending;
                    pending.dead = Some(e.message);
                    settled.push_back(pending);
                }
                Err(e) if e.kind == SendErrorKind::Fatal => {
                    return Err(Some(ShipError::Destination(e)))
                }
                _ => {
                    failed = true;
                    settled.push_back(pending);
                }
            }
        }
        settled.extend(self.resend.drain(..));
        let remote = loop {
            tokio::select! {
                _ = stop.as_mut() => {
                    self.resend = settled;
                    return Err(None);
                }
                _ = tokio::time::sleep(self.backoff.next_delay()) => {}
            }
            match self.destination.resume(self.log).await {
                Ok(r) => break r,
                Err(e) if e.kind == SendErrorKind::Fatal => {
                    self.resend = settled;
                    return Err(Some(ShipError::Destination(e)));
                }
                Err(e) => self.metrics.note_error(e.message),
            }
        };
        for pending in settled {
            if let (Some(reason), true) = (&pending.dead, self.resend.is_empty()) {
                // Refused for good: never in the destination, whatever it holds after it.
                // Its turn has come (everything before it is handled): dead-letter it now.
                // (Taken as held, it was passed without a dead letter.)
                let reason = reason.clone();
                self.dead_letter(pending, &reason)
                    .map_err(|e| Some(ShipError::Log(e)))?;
            } else if held_by(remote, &pending.msg)
                && self.resend.is_empty()
                && pending.dead.is_none()
            {
                // Stored before the failure was noticed (its ack was lost or late).
                self.metrics
                    .acked
                    .fetch_add(pending.msg.seq().map_or(0, |_| 1), Ordering::Relaxed);
                if let Some(hook) = self.on_ack.as_mut() {
                    hook(&pending.msg);
                }
                self.advance(pending);
            } else {
                if pending.dead.is_none() {
                    self.metrics.retries.fetch_add(1, Ordering::Relaxed);
                }
                self.resend.push_back(pending);
            }
        }
        Ok(())
    }
}

/// Awaits every flight's ack at once (each ack's timeout runs from its first poll: one by one,
/// a window of lost acks would take the window times the timeout), and returns them in order.
async fn settle<A>(flights: VecDeque<Flight<A>>) -> Vec<(Pending, Result<Acked, SendError>)>
where
    A: Future<Output = Result<Acked, SendError>> + Unpin,
{
    type Slot<A> = (Pending, FlightAck<A>, Option<Result<Acked, SendError>>);
    let mut slots: Vec<Slot<A>> = flights
        .into_iter()
        .map(|f| match f.ack {
            FlightAck::Failed(e) => (f.pending, FlightAck::Failed(e.clone()), Some(Err(e))),
            ack => (f.pending, ack, None),
        })
        .collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (_, ack, result) in slots.iter_mut() {
            if result.is_none() {
                if let FlightAck::Wait(a) = ack {
                    match std::pin::Pin::new(a).poll(cx) {
                        std::task::Poll::Ready(r) => *result = Some(r),
                        std::task::Poll::Pending => done = false,
                    }
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    slots
        .into_iter()
        .map(|(p, _, r)| (p, r.expect("settled")))
        .collect()
}

/// Whether the destination, whose last message of the log is `remote`, holds `msg`: messages
/// are stored in order, so everything up to its last message is in.
fn held_by(remote: Option<crate::Resume>, msg: &Outgoing) -> bool {
    let Some(r) = remote else { return false };
    let gap = msg.gap_shipped();
    msg.next < r.next
        || (msg.next == r.next
            && gap.dropped <= r.gap_shipped.dropped
            && gap.refused <= r.gap_shipped.refused)
}
