//! Multi-threaded stress tests of the byte ring: several producers reserve records of
//! pseudo-random lengths, write them in place, and commit, commit shortened, or discard them;
//! one consumer reads with `read` and `read_batch`. Every committed record must arrive exactly
//! once, byte for byte, in each producer's order, and no discarded one may arrive. CI runs them
//! in release mode and under ThreadSanitizer; Miri runs them with small counts. Passing is
//! evidence, not proof: the proof is the loom models.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ringwal_core::{byte_channel, Batch, ByteRing, Grant, Record, ReserveError, TryPopError};

const PRODUCERS: usize = 3;

/// A consumer that reads nothing for this long has found a stall (a lost or stale header).
const STALL: Duration = Duration::from_secs(20);

/// Records per producer: many in release, fewer in debug, a handful under Miri.
fn per_producer() -> u32 {
    if cfg!(miri) {
        40
    } else if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    }
}

/// A small deterministic hash: the lengths and bytes of every record follow from its producer
/// and sequence number, so the consumer knows what to expect.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// What producer `p` does with its record `seq`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Commit,
    /// Reserve `len + extra`, commit `len`.
    Shorten(usize),
    Discard,
}

fn plan(p: usize, seq: u32, max: usize) -> (usize, Fate) {
    let h = mix((p as u64) << 32 | u64::from(seq));
    // Mostly short records, sometimes up to the maximum; at least 1 byte (the producer id).
    let len = match h % 16 {
        0 => 1 + (h >> 8) as usize % max,
        1 => max,
        _ => 1 + (h >> 8) as usize % 48.min(max),
    };
    let fate = match (h >> 40) % 11 {
        0 => Fate::Discard,
        1 => Fate::Shorten(1 + (h >> 48) as usize % 40),
        _ => Fate::Commit,
    };
    match fate {
        Fate::Shorten(extra) if len + extra > max => (len, Fate::Commit),
        f => (len, f),
    }
}

/// Byte `i` of record (`p`, `seq`): the first is the producer's id.
fn byte(p: usize, seq: u32, i: usize) -> u8 {
    if i == 0 {
        p as u8
    } else {
        (mix(u64::from(seq) << 8 | p as u64) as usize + i * 13) as u8
    }
}

/// Produces every record of producer `p` through `reserve` (retrying while full).
fn produce<'a>(p: usize, max: usize, reserve: impl Fn(usize) -> Result<Grant<'a>, ReserveError>) {
    for seq in 0..per_producer() {
        let (len, fate) = plan(p, seq, max);
        let asked = match fate {
            Fate::Shorten(extra) => len + extra,
            _ => len,
        };
        let full_since = Instant::now();
        let mut grant = loop {
            match reserve(asked) {
                Ok(g) => break g,
                Err(ReserveError::Full) => {
                    // A stalled consumer must fail the test, not hang it (the scope would
                    // wait for this thread forever).
                    assert!(
                        full_since.elapsed() < STALL,
                        "producer {p}: full for {STALL:?}"
                    );
                    thread::yield_now();
                }
                Err(e) => panic!("producer {p}: {e}"),
            }
        };
        assert_eq!(grant.len(), asked);
        for (i, b) in grant.iter_mut().enumerate() {
            *b = byte(p, seq, i);
        }
        match fate {
            Fate::Commit => grant.commit(),
            Fate::Shorten(_) => grant.commit_len(len),
            Fate::Discard => drop(grant),
        }
    }
}

/// The consumer's check: each record is the next committed one of its producer, byte for byte.
struct Check {
    max: usize,
    next: Vec<u32>,
    received: usize,
    expected: usize,
}

impl Check {
    fn new(max: usize) -> Self {
        let expected = (0..PRODUCERS)
            .map(|p| {
                (0..per_producer())
                    .filter(|&s| plan(p, s, max).1 != Fate::Discard)
                    .count()
            })
            .sum();
        Check {
            max,
            next: vec![0; PRODUCERS],
            received: 0,
            expected,
        }
    }

    fn record(&mut self, r: &[u8]) {
        assert!(!r.is_empty(), "every record has its producer byte");
        let p = usize::from(r[0]);
        assert!(p < PRODUCERS, "producer byte {p}");
        // Skip the sequence numbers this producer discarded.
        let mut seq = self.next[p];
        while plan(p, seq, self.max).1 == Fate::Discard {
            seq += 1;
        }
        assert!(seq < per_producer(), "producer {p}: more records than sent");
        let (len, _) = plan(p, seq, self.max);
        assert_eq!(r.len(), len, "producer {p} record {seq}: length");
        for (i, &b) in r.iter().enumerate() {
            assert_eq!(b, byte(p, seq, i), "producer {p} record {seq}: byte {i}");
        }
        self.next[p] = seq + 1;
        self.received += 1;
    }

    fn done(&self) -> bool {
        self.received == self.expected
    }
}

/// Consumes through `read` / `read_batch` until every committed record has arrived; then the
/// ring must be empty.
fn consume<R>(
    mut rx: R,
    max: usize,
    read: impl for<'r> Fn(&'r mut R) -> Result<Record<'r>, TryPopError>,
    batch: impl for<'r> Fn(&'r mut R, usize) -> Result<Batch<'r>, TryPopError>,
) -> R {
    let mut check = Check::new(max);
    let mut i = 0u64;
    let mut last_progress = Instant::now();
    while !check.done() {
        i += 1;
        let got = if mix(i) % 3 == 0 {
            match read(&mut rx) {
                Ok(r) => {
                    check.record(&r);
                    true
                }
                Err(_) => false,
            }
        } else {
            let cap = if mix(i) % 2 == 0 {
                usize::MAX
            } else {
                (mix(i) >> 8) as usize % 512
            };
            match batch(&mut rx, cap) {
                Ok(b) => {
                    assert!(b.iter().len() == b.len() && !b.is_empty());
                    for r in &b {
                        check.record(r);
                    }
                    true
                }
                Err(_) => false,
            }
        };
        if got {
            last_progress = Instant::now();
        } else {
            assert!(
                last_progress.elapsed() < STALL,
                "no progress for {STALL:?}: {} of {} records",
                check.received,
                check.expected
            );
            thread::yield_now();
        }
    }
    rx
}

#[test]
fn inline_ring_three_producers() {
    static RING: ByteRing<4096> = ByteRing::new();
    let max = RING.max_record_len();
    let start = Barrier::new(PRODUCERS + 1);
    thread::scope(|s| {
        for p in 0..PRODUCERS {
            let start = &start;
            s.spawn(move || {
                start.wait();
                produce(p, max, |len| RING.try_reserve(len));
            });
        }
        start.wait();
        let c = consume(
            RING.consumer().unwrap(),
            max,
            |c| c.read(),
            |c, m| c.read_batch(m),
        );
        drop(c);
    });
    assert!(RING.is_empty());
    assert_eq!(
        RING.consumer().unwrap().read().unwrap_err(),
        TryPopError::Empty
    );
}

/// A small ring (lots of padding and wrapping) started a few granules before the `usize` wrap.
#[test]
fn inline_ring_across_the_wrap() {
    let ring: Arc<ByteRing<512>> = Arc::new(ByteRing::new_at(usize::MAX - 37));
    let max = ring.max_record_len();
    thread::scope(|s| {
        for p in 0..PRODUCERS {
            let ring = &ring;
            s.spawn(move || produce(p, max, |len| ring.try_reserve(len)));
        }
        consume(
            ring.consumer().unwrap(),
            max,
            |c| c.read(),
            |c, m| c.read_batch(m),
        );
    });
    assert!(ring.is_empty());
}

#[test]
fn heap_ring_three_producers() {
    let (tx, rx) = byte_channel(1024);
    let max = tx.max_record_len();
    thread::scope(|s| {
        for p in 0..PRODUCERS {
            let tx = tx.clone();
            s.spawn(move || produce(p, max, |len| tx.try_reserve(len)));
        }
        let rx = consume(rx, max, |r| r.read(), |r, m| r.read_batch(m));
        assert!(rx.is_empty());
    });
}

/// Consumers handed between threads while the producers run: each consumer thread claims the
/// consumer, reads a little, and drops it; no record is lost or read twice across hand-offs.
#[test]
fn consumer_hand_off_between_threads() {
    static RING: ByteRing<2048> = ByteRing::new();
    let max = RING.max_record_len();
    let total: usize = (0..PRODUCERS)
        .map(|p| {
            (0..per_producer())
                .filter(|&s| plan(p, s, max).1 != Fate::Discard)
                .count()
        })
        .sum();
    // The checker is shared by the consumer threads; only the one holding the consumer uses it.
    let check = std::sync::Mutex::new(Check::new(max));
    let received = AtomicUsize::new(0);
    thread::scope(|s| {
        for p in 0..PRODUCERS {
            s.spawn(move || produce(p, max, |len| RING.try_reserve(len)));
        }
        for _ in 0..2 {
            s.spawn(|| {
                let mut last_progress = Instant::now();
                while received.load(Ordering::Relaxed) < total {
                    let Some(mut c) = RING.consumer() else {
                        thread::yield_now();
                        continue;
                    };
                    let mut check = check.lock().unwrap();
                    for _ in 0..8 {
                        if let Ok(b) = c.read_batch(usize::MAX) {
                            for r in &b {
                                check.record(r);
                            }
                            received.store(check.received, Ordering::Relaxed);
                            last_progress = Instant::now();
                        }
                    }
                    drop(check);
                    drop(c);
                    assert!(last_progress.elapsed() < STALL, "no progress for {STALL:?}");
                    thread::yield_now();
                }
            });
        }
    });
    assert!(check.lock().unwrap().done());
    assert!(RING.is_empty());
}

/// `close` racing producers that reserve with `try_reserve_checked` (the std writer's
/// shutdown): after the close every reservation is `Closed`; a receiver that reads until its
/// position reaches the final one `close` returned gets exactly the records committed (each
/// once, byte for byte, in each producer's order), including those whose grants were still
/// open at the close; then the ring is empty.
#[test]
fn close_races_reservations_and_the_final_position_is_exact() {
    let rounds = if cfg!(miri) { 3 } else { 200 };
    for _ in 0..rounds {
        let (tx, mut rx) = byte_channel(512);
        let max = tx.max_record_len();
        let (committed, end, got) = thread::scope(|s| {
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let tx = tx.clone();
                    s.spawn(move || {
                        // The records this producer committed, in order.
                        let mut committed: Vec<u32> = Vec::new();
                        for seq in 0..u32::MAX {
                            let (len, fate) = plan(p, seq, max);
                            let asked = match fate {
                                Fate::Shorten(extra) => len + extra,
                                _ => len,
                            };
                            let mut grant = match tx.try_reserve_checked(asked) {
                                Ok(g) => g,
                                Err(ReserveError::Full) => {
                                    thread::yield_now();
                                    continue;
                                }
                                Err(ReserveError::Closed) => {
                                    assert_eq!(
                                        tx.try_reserve_checked(0).unwrap_err(),
                                        ReserveError::Closed,
                                        "closed for good"
                                    );
                                    break;
                                }
                                Err(e) => panic!("{e}"),
                            };
                            for (i, b) in grant.iter_mut().enumerate() {
                                *b = byte(p, seq, i);
                            }
                            // Now and then hold the grant a while: the close may come
                            // between the reservation and the commit.
                            if seq % 7 == 0 {
                                thread::yield_now();
                            }
                            match fate {
                                Fate::Commit => grant.commit(),
                                Fate::Shorten(_) => grant.commit_len(len),
                                Fate::Discard => {
                                    drop(grant);
                                    continue;
                                }
                            }
                            committed.push(seq);
                        }
                        committed
                    })
                })
                .collect();
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut take = |rx: &mut ringwal_core::ByteReceiver| -> bool {
                match rx.read_batch(usize::MAX) {
                    Ok(b) => {
                        got.extend(b.iter().map(<[u8]>::to_vec));
                        true
                    }
                    Err(_) => false,
                }
            };
            // Let the producers get going, then close while they reserve.
            while !take(&mut rx) {
                thread::yield_now();
            }
            for _ in 0..20 {
                take(&mut rx);
            }
            let end = tx.close();
            assert!(tx.is_closed());
            assert_eq!(tx.try_reserve(0).unwrap_err(), ReserveError::Closed);
            let since = Instant::now();
            while ringwal_core::position_diff(rx.position(), end) < 0 {
                if !take(&mut rx) {
                    assert!(since.elapsed() < STALL, "stuck before the final position");
                    thread::yield_now();
                }
            }
            assert_eq!(rx.position(), end);
            assert_eq!(rx.read().unwrap_err(), TryPopError::Empty);
            assert_eq!(tx.reserved(), end, "nothing reserved after the close");
            let committed: Vec<Vec<u32>> =
                producers.into_iter().map(|p| p.join().unwrap()).collect();
            (committed, end, got)
        });
        assert!(rx.is_empty(), "ring empty at {end}");
        let mut next = [0usize; PRODUCERS];
        for r in &got {
            let p = usize::from(r[0]);
            let seq = committed[p][next[p]];
            let (len, _) = plan(p, seq, max);
            assert_eq!(r.len(), len, "producer {p} record {seq}");
            assert!(r.iter().enumerate().all(|(i, &b)| b == byte(p, seq, i)));
            next[p] += 1;
        }
        for (p, (read, sent)) in next.iter().zip(&committed).enumerate() {
            assert_eq!(*read, sent.len(), "producer {p}: every commit read");
        }
    }
}
