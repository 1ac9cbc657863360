//! The shipper against an in-memory destination (no server): failure paths whose timing a
//! real server makes rare.

use ringwal::checkpoint::LogId;
use ringwal::Writer;
use ringwal_ship::{Acked, Destination, Kind, Options, Outgoing, Resume, SendError, Shipper};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Ack = Pin<Box<dyn Future<Output = Result<Acked, SendError>> + Send>>;

/// What the destination holds, and how it fails.
#[derive(Default)]
struct State {
    /// Records taken: (seq, payload).
    held: Vec<(u64, Vec<u8>)>,
    /// The `next` of the last message taken.
    next: Option<u64>,
    /// Record seqs whose first publish is to fail (transiently, after a delay).
    fail_once: Vec<u64>,
    /// After a failure, every publish fails until the shipper asks where to resume (as
    /// JetStream's expected-last-message-id chain does).
    broken: bool,
    resumes: u32,
}

#[derive(Clone, Default)]
struct Memory(Arc<Mutex<State>>);

impl Destination for Memory {
    type Ack = Ack;

    fn describe(&self) -> String {
        "memory".into()
    }

    async fn resume(&mut self, _log: LogId) -> Result<Option<Resume>, SendError> {
        let mut s = self.0.lock().unwrap();
        s.broken = false;
        s.resumes += 1;
        Ok(s.next.map(|next| Resume {
            next,
            gap_shipped: Default::default(),
        }))
    }

    async fn send(&mut self, _log: LogId, msg: &Outgoing) -> Result<Ack, SendError> {
        let mut s = self.0.lock().unwrap();
        let Kind::Record { seq, .. } = msg.kind else {
            panic!("this log has no gaps: {:?}", msg.kind);
        };
        if s.broken {
            return Ok(Box::pin(async {
                Err(SendError::transient(
                    "out of order after an earlier failure",
                ))
            }));
        }
        if let Some(i) = s.fail_once.iter().position(|&f| f == seq) {
            s.fail_once.remove(i);
            s.broken = true;
            // Late enough that the log's reader has reached the end and said so.
            return Ok(Box::pin(async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Err(SendError::transient("ack timed out"))
            }));
        }
        s.held.push((seq, msg.payload.to_vec()));
        s.next = Some(msg.next);
        Ok(Box::pin(async { Ok(Acked { duplicate: false }) }))
    }
}

/// A failure after the reader went idle, with records still to resend: the run ends once
/// the resent records are acknowledged (it hung: resending cleared the reader's idle mark,
/// and the reader says it is idle only once per stretch of waiting).
#[test]
fn until_caught_up_ends_after_a_failure_that_comes_once_the_reader_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    for i in 0..20u8 {
        emitter.emit(vec![i; 10]).unwrap();
    }
    writer.shutdown().unwrap();

    let memory = Memory::default();
    memory.0.lock().unwrap().fail_once = vec![3];
    let options = Options {
        name: "test".into(),
        window: 64,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        poll_max: Duration::from_millis(2),
        until_caught_up: true,
        ..Options::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(async {
            // A guard against the hang, not a speed limit: the run takes well under a second.
            tokio::time::timeout(
                Duration::from_secs(60),
                Shipper::new(dir.path(), memory.clone(), options).run(std::future::pending()),
            )
            .await
        })
        .expect("the shipper did not stop once caught up")
        .unwrap();
    let s = memory.0.lock().unwrap();
    let seqs: Vec<u64> = s.held.iter().map(|h| h.0).collect();
    assert_eq!(
        seqs,
        (0..20).collect::<Vec<_>>(),
        "each record once, in order"
    );
    for (seq, payload) in &s.held {
        assert_eq!(payload, &vec![*seq as u8; 10]);
    }
    assert!(s.resumes >= 2, "the failure was followed by a resume");
    assert_eq!(report.status.cursor, 20);
    // Records 3..20 were published twice: once into the failure, once after the resume.
    assert_eq!(report.status.retries, 17, "{:?}", report.status);
    assert_eq!(report.status.published, 37, "{:?}", report.status);
}

/// Stores every record but `refuse` (refused for good when sent); the ack of `late` is lost
/// (it times out although the record is stored).
#[derive(Clone, Default)]
struct LostAck {
    held: Arc<Mutex<Vec<u64>>>,
    next: Arc<Mutex<Option<u64>>>,
    refuse: u64,
    late: u64,
}

impl Destination for LostAck {
    type Ack = Ack;

    fn describe(&self) -> String {
        "lost-ack".into()
    }

    async fn resume(&mut self, _log: LogId) -> Result<Option<Resume>, SendError> {
        Ok((*self.next.lock().unwrap()).map(|next| Resume {
            next,
            gap_shipped: Default::default(),
        }))
    }

    async fn send(&mut self, _log: LogId, msg: &Outgoing) -> Result<Ack, SendError> {
        let Kind::Record { seq, .. } = msg.kind else {
            panic!("this log has no gaps: {:?}", msg.kind);
        };
        if seq == self.refuse {
            return Err(SendError::refused(format!("record {seq} is too large")));
        }
        let mut held = self.held.lock().unwrap();
        if !held.contains(&seq) {
            held.push(seq);
        }
        *self.next.lock().unwrap() = Some(msg.next);
        if seq == self.late {
            self.late = u64::MAX;
            return Ok(Box::pin(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(SendError::transient("ack timed out"))
            }));
        }
        Ok(Box::pin(async { Ok(Acked { duplicate: false }) }))
    }
}

/// A record refused for good right after one whose ack was lost (the record stored): after
/// the resume it goes to the dead-letter file. (It did not: the resume showed later records
/// stored, so the refused one was taken as stored too, and the cursor passed it with the
/// record neither in the destination nor in the dead-letter file.)
#[test]
fn a_refused_record_after_a_lost_ack_is_dead_lettered_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path()).start::<Vec<u8>>().unwrap();
    for i in 0..10u8 {
        emitter.emit(vec![i; 10]).unwrap();
    }
    writer.shutdown().unwrap();
    let dest = LostAck {
        refuse: 4,
        late: 3,
        ..LostAck::default()
    };
    let options = Options {
        name: "test".into(),
        window: 64,
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        poll_max: Duration::from_millis(2),
        until_caught_up: true,
        ..Options::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(60),
                Shipper::new(dir.path(), dest.clone(), options).run(std::future::pending()),
            )
            .await
        })
        .expect("the shipper did not stop once caught up")
        .unwrap();
    assert_eq!(report.status.cursor, 10);
    let held = dest.held.lock().unwrap().clone();
    assert_eq!(held, [0, 1, 2, 3, 5, 6, 7, 8, 9]);
    assert_eq!(report.status.dead_lettered, 1, "{:?}", report.status);
    let dead =
        std::fs::read_to_string(ringwal::checkpoint::dead_letter_path(dir.path(), "test").unwrap())
            .expect("the dead-letter file");
    assert!(dead.starts_with("record 4 bytes 10 "), "{dead}");
    assert_eq!(dead.lines().count(), 1, "{dead}");
}
