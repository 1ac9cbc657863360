//! The files a shipper keeps beside the log (`ship-<name>.lock`, `.dead`, the checkpoint's
//! temporary file) when something else sits in their place: a FIFO, a symbolic link. Each
//! is an error naming the file, or is replaced, never a hang and never a write through the
//! link. Against an in-memory destination (no server).

use ringwal::checkpoint::{Checkpoint, LogId};
use ringwal::Writer;
use ringwal_ship::{Acked, Destination, Kind, Options, Outgoing, Report, Resume, SendError};
use ringwal_ship::{ShipError, Shipper};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc;
use std::time::Duration;

type Ack = Pin<Box<dyn Future<Output = Result<Acked, SendError>> + Send>>;

/// Takes every record but those in `refuse`, which it refuses for good.
#[derive(Clone, Default)]
struct Sink {
    refuse: Vec<u64>,
    /// What `resume` says the destination holds.
    holds: Option<u64>,
}

impl Destination for Sink {
    type Ack = Ack;

    fn describe(&self) -> String {
        "sink".into()
    }

    async fn resume(&mut self, _log: LogId) -> Result<Option<Resume>, SendError> {
        Ok(self.holds.map(|next| Resume {
            next,
            gap_shipped: Default::default(),
        }))
    }

    async fn send(&mut self, _log: LogId, msg: &Outgoing) -> Result<Ack, SendError> {
        if let Kind::Record { seq, .. } = msg.kind {
            if self.refuse.contains(&seq) {
                return Err(SendError::refused(format!("record {seq} is too large")));
            }
        }
        Ok(Box::pin(async { Ok(Acked { duplicate: false }) }))
    }
}

fn make_log(dir: &Path, n: u8) {
    let (writer, emitter) = Writer::builder(dir).start::<Vec<u8>>().unwrap();
    for i in 0..n {
        emitter.emit(vec![i; 10]).unwrap();
    }
    writer.shutdown().unwrap();
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo runs")
        .success();
    assert!(ok, "mkfifo {}", p.display());
}

/// Runs a shipper of `dir` to `sink` until caught up, on a thread of its own: a blocking
/// `open` cannot be cancelled, so a hang shows as no answer within the deadline.
fn ship(dir: &Path, sink: Sink) -> Result<Report, ShipError> {
    let (tx, rx) = mpsc::channel();
    let dir: PathBuf = dir.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let options = Options {
            name: "test".into(),
            poll_max: Duration::from_millis(2),
            until_caught_up: true,
            ..Options::default()
        };
        let result = rt.block_on(Shipper::new(dir, sink, options).run(std::future::pending()));
        let _ = tx.send(result);
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the shipper hung (no answer in 20 s)")
}

#[test]
fn a_fifo_in_place_of_the_lock_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 5);
    mkfifo(&dir.path().join("ship-test.lock"));
    let err = ship(dir.path(), Sink::default()).unwrap_err();
    assert!(matches!(err, ShipError::Log(_)), "{err:?}");
    assert!(err.to_string().contains("ship-test.lock"), "{err}");
}

#[test]
fn a_symlink_in_place_of_the_lock_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 5);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, dir.path().join("ship-test.lock")).unwrap();
    let err = ship(dir.path(), Sink::default()).unwrap_err();
    assert!(err.to_string().contains("ship-test.lock"), "{err}");
    assert!(!target.exists(), "a file was created through the link");
}

#[test]
fn a_fifo_in_place_of_the_dead_letter_file_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 5);
    mkfifo(&dir.path().join("ship-test.dead"));
    let err = ship(
        dir.path(),
        Sink {
            refuse: vec![2],
            ..Sink::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, ShipError::Log(_)), "{err:?}");
    assert!(err.to_string().contains("ship-test.dead"), "{err}");
    // The records before the refused one are shipped and checkpointed.
    let c = Checkpoint::load(dir.path(), "test").unwrap().unwrap();
    assert_eq!(c.next_seq, 2);
}

#[test]
fn a_symlink_in_place_of_the_dead_letter_file_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 5);
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("ship-test.dead")).unwrap();
    let err = ship(
        dir.path(),
        Sink {
            refuse: vec![2],
            ..Sink::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("ship-test.dead"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
}

/// A leftover temporary checkpoint (a crash between its write and its rename), or a FIFO or
/// a link in its place, is replaced: the link's target is never truncated, the FIFO never
/// opened.
#[test]
fn a_symlink_or_fifo_in_place_of_the_checkpoint_temporary_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 5);
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    let tmp = dir.path().join("ship-test.checkpoint.tmp");
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    let report = ship(dir.path(), Sink::default()).unwrap();
    assert_eq!(report.status.cursor, 5);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    assert_eq!(
        Checkpoint::load(dir.path(), "test")
            .unwrap()
            .unwrap()
            .next_seq,
        5
    );

    make_log(dir.path(), 3);
    mkfifo(&tmp);
    let report = ship(dir.path(), Sink::default()).unwrap();
    assert_eq!(report.status.cursor, 8);
    assert_eq!(
        Checkpoint::load(dir.path(), "test")
            .unwrap()
            .unwrap()
            .next_seq,
        8
    );
}

/// A cursor past the log's end (a checkpoint from a later state of the log, or a
/// destination holding more than the log: a directory restored from an older copy, or its
/// segments deleted and a writer started again with the same LOG-ID): an error saying so.
/// (It was taken as is: the run said it had caught up, cursor 50, and the records the
/// writer then added below 50 would never have been shipped, silently.)
#[test]
fn a_cursor_past_the_logs_end_is_an_error_not_a_silent_skip() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 5);
    let log = LogId::get_or_create(dir.path()).unwrap();
    Checkpoint {
        log,
        next_seq: 50,
        position: None,
        gap_shipped: Default::default(),
        destination: "sink".into(),
    }
    .store(dir.path(), "test")
    .unwrap();
    let err = ship(dir.path(), Sink::default()).unwrap_err();
    assert!(matches!(err, ShipError::Log(_)), "{err:?}");
    assert!(err.to_string().contains("past the log's end"), "{err}");

    // The same from the destination's side, without a checkpoint.
    let other = tempfile::tempdir().unwrap();
    make_log(other.path(), 5);
    let holds = Sink {
        holds: Some(50),
        ..Sink::default()
    };
    let err = ship(other.path(), holds).unwrap_err();
    assert!(err.to_string().contains("past the log's end"), "{err}");

    // At the log's end exactly, or within it: shipped as before.
    let fine = tempfile::tempdir().unwrap();
    make_log(fine.path(), 5);
    let at_end = Sink {
        holds: Some(5),
        ..Sink::default()
    };
    assert_eq!(ship(fine.path(), at_end).unwrap().status.cursor, 5);
    make_log(fine.path(), 2);
    let report = ship(fine.path(), Sink::default()).unwrap();
    assert_eq!((report.status.cursor, report.status.acked), (7, 2));
}

/// Shippers of one log starting at once in one process (two names, two destinations) all
/// get the id `LOG-ID` holds. (The temporary file was named by the process id alone, so two
/// threads wrote the same file, and one could return an id other than the one stored.)
#[test]
fn concurrent_first_shippers_in_one_process_agree_on_the_log_id() {
    for round in 0..100 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let dir = dir.path().to_path_buf();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    LogId::get_or_create(&dir)
                })
            })
            .collect();
        let stored = || LogId::read(dir.path()).unwrap().unwrap();
        for t in threads {
            match t.join().unwrap() {
                Ok(id) => assert_eq!(id, stored(), "round {round}"),
                Err(e) => panic!("round {round}: {e}"),
            }
        }
    }
}
