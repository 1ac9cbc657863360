//! loom models of `ringwal_core::ByteRing` (and the heap ring of `byte_channel`): every
//! interleaving and every weak-memory outcome loom can produce, for rings of 64 bytes (8
//! granules, records of at most 24 bytes). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release --test byte_ring`.
//!
//! Under loom each granule's memory has a shadow cell that every access reports to (see
//! `core/src/bytes/storage.rs`): a payload write, a header store or the consumer's zeroing that
//! is not ordered after every earlier access to the granule fails the model as a data race, as
//! does a payload read not ordered after the writes. The models also check the values: every
//! committed record is read exactly once, byte for byte, in reservation order.
//!
//! Each model's doc says how it was shown non-vacuous: a mutation of the ring's code (an
//! ordering weakened or a step removed), run, failing, then restored. Unless a model says
//! otherwise it runs with no preemption bound (exhaustive).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

use ringwal_core::{byte_channel, ByteRing, ReserveError, TryPopError};
use ringwal_loom_tests::check;

/// Record `id` of `len` bytes: every byte is `id`, so a record read half-written, or read from
/// another record's space, shows.
fn record(id: u8, len: usize) -> Vec<u8> {
    vec![id; len]
}

/// Checks what a consumer read (`got`) against what producers offered: every record in `got`
/// is one of `committed` and appears once, and all of `committed` appear once overall.
fn exactly_once(mut all: Vec<Vec<u8>>, mut committed: Vec<Vec<u8>>) {
    all.sort();
    committed.sort();
    assert_eq!(all, committed, "every committed record read exactly once");
}

/// Two producers and the consumer across the `usize::MAX` wrap of the counters, with padding:
/// the ring starts 3 granules before the end of a lap, so whichever producer reserves first
/// needs (or not) to pad to the next lap, and the counters pass `usize::MAX` on the way.
/// A pushes one 24-byte record (4 granules); B pushes two 8-byte records (2 granules each).
/// No thread spins: a push that finds the ring full keeps its record ("rejected"), the
/// consumer reads twice concurrently (a record or a batch; each may find nothing), and reads
/// the rest after the joins. Checks: exactly once, byte for byte, B's records in B's order.
///
/// Bound: 2 preemptions (26,902 executions, 6 s here; at 3: 321,271 in 31 s since the
/// producers cache their bound in `limit`, an atomic more to interleave, over a few seconds'
/// budget). Mutations checked (`loom-tests/mutations.py` B6-B8): `commit` storing the record
/// header with `Relaxed` instead of `Release` fails it ("Causality violation: Concurrent read
/// and write accesses": the consumer's read of the payload is not ordered after the
/// producer's writes); so do the producers' `Acquire` load of `limit` and their `Release`
/// store of it weakened to `Relaxed` ("Concurrent write accesses": a producer using the bound
/// another one refreshed writes into space the consumer is still zeroing).
#[test]
fn two_producers_and_consumer_across_the_wrap_with_padding() {
    check(Some(2), || {
        // Offset 5 of 8: 3 granules to the end; position usize::MAX - 2 wraps after 3.
        let ring: Arc<ByteRing<64>> = Arc::new(ByteRing::new_at(usize::MAX - 2));
        let push_all = |records: Vec<Vec<u8>>| {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut rejected = Vec::new();
                for r in records {
                    match ring.try_push(&r) {
                        Ok(()) => {}
                        Err(ReserveError::Full) => rejected.push(r),
                        Err(e) => panic!("{e}"),
                    }
                }
                rejected
            })
        };
        let a = push_all(vec![record(1, 24)]);
        let b = push_all(vec![record(2, 8), record(3, 8)]);
        let mut c = ring.consumer().unwrap();
        let mut got: Vec<Vec<u8>> = Vec::new();
        if let Ok(r) = c.read() {
            got.push(r.to_vec());
        }
        if let Ok(batch) = c.read_batch(usize::MAX) {
            got.extend(batch.iter().map(<[u8]>::to_vec));
        }
        let mut rejected = a.join().unwrap();
        rejected.extend(b.join().unwrap());
        while let Ok(r) = c.read() {
            got.push(r.to_vec());
        }
        assert_eq!(c.read().unwrap_err(), TryPopError::Empty);
        assert!(ring.is_empty());
        let mut offered = vec![record(1, 24), record(2, 8), record(3, 8)];
        offered.retain(|r| !rejected.contains(r));
        exactly_once(got.clone(), offered);
        let b_order: Vec<u8> = got.iter().map(|r| r[0]).filter(|&id| id >= 2).collect();
        assert!(
            b_order.windows(2).all(|w| w[0] < w[1]),
            "B's order: {got:?}"
        );
    });
}

/// A discarded grant and a shortened one, racing the consumer: the consumer steps over the
/// discarded space and over the unused end of the shortened record, and reads only the bytes
/// committed. A reserves 16 bytes and drops the grant; B reserves 20 bytes, writes 20 and
/// commits 3. The ring starts at the `usize` wrap.
///
/// Bound: 3 preemptions (30,639 executions, 3 s here; at 4: 202,434 in 36 s since the
/// producers cache their bound, over a few seconds' budget). Mutation checked (B9): `discard`
/// storing its skip header with `Relaxed` instead of `Release` fails it ("Causality
/// violation: Concurrent read and write accesses": the consumer's use of the discarded
/// granules is not ordered after A's writes into them).
#[test]
fn discarded_and_shortened_grants_are_skipped() {
    check(Some(3), || {
        let ring: Arc<ByteRing<64>> = Arc::new(ByteRing::new_at(usize::MAX));
        let a = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut grant = ring.try_reserve(16).unwrap();
                grant.fill(0xAA);
                drop(grant);
            })
        };
        let b = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut grant = ring.try_reserve(20).unwrap();
                grant.fill(7);
                grant.commit_len(3);
            })
        };
        let mut c = ring.consumer().unwrap();
        let mut got: Vec<Vec<u8>> = Vec::new();
        if let Ok(batch) = c.read_batch(usize::MAX) {
            got.extend(batch.iter().map(<[u8]>::to_vec));
        }
        a.join().unwrap();
        b.join().unwrap();
        while let Ok(r) = c.read() {
            got.push(r.to_vec());
        }
        assert_eq!(got, [vec![7; 3]]);
        assert_eq!(c.read().unwrap_err(), TryPopError::Empty);
        assert!(ring.is_empty(), "the skipped space is released");
        // The released space is whole again: a maximal record fits, and starts zeroed.
        let grant = ring.try_reserve(24).unwrap();
        assert!(grant.iter().all(|&b| b == 0), "released space is zeroed");
    });
}

/// A full ring (two 24-byte records) while a producer pushes a third and the consumer reads
/// and releases the first: the push fits (after the release) or reports `Full`; it never
/// overwrites the record being read. The consumer checks the first record byte for byte while
/// holding it, and what remains after the join.
///
/// Exhaustive (14 executions). Mutations checked (B11, B12): the consumer storing `head` with
/// `Relaxed` instead of `Release` (in `release`) fails it ("Causality violation: Concurrent
/// write accesses": the producer's writes into the freed space race with the consumer's
/// zeroing of it); so does the producers' `Acquire` load of `head` (their bound's refresh)
/// weakened to `Relaxed` (same report).
#[test]
fn full_ring_races_release() {
    check(None, || {
        let ring: Arc<ByteRing<64>> = Arc::new(ByteRing::new());
        ring.try_push(&record(1, 24)).unwrap();
        ring.try_push(&record(2, 24)).unwrap();
        let pusher = {
            let ring = ring.clone();
            thread::spawn(move || ring.try_push(&record(3, 24)))
        };
        let mut c = ring.consumer().unwrap();
        {
            let first = c.read().unwrap();
            assert_eq!(&*first, &record(1, 24)[..]);
        }
        let pushed = pusher.join().unwrap();
        let rest: Vec<Vec<u8>> = c
            .read_batch(usize::MAX)
            .unwrap()
            .iter()
            .map(<[u8]>::to_vec)
            .collect();
        match pushed {
            Ok(()) => assert_eq!(rest, [record(2, 24), record(3, 24)]),
            Err(e) => {
                assert_eq!(e, ReserveError::Full);
                assert_eq!(rest, [record(2, 24)]);
            }
        }
    });
}

/// Two threads race for `consumer()` on a ring holding two records: never two consumers at
/// once, at least one wins, and a consumer claimed after another was dropped continues where
/// it stopped (no record read twice, none skipped, in order).
///
/// Exhaustive. Mutation checked (B13): `release_consumer` storing the flag with `Relaxed` instead of
/// `Release` fails it ("Causality violation: Concurrent read and write accesses": the second
/// consumer's read is not ordered after the first one's zeroing). The model's own "two at
/// once" check uses `Relaxed` on purpose: with `SeqCst` it synchronised the two consumers
/// itself and that mutation passed.
#[test]
fn consumer_hand_off() {
    check(None, || {
        let ring: Arc<ByteRing<64>> = Arc::new(ByteRing::new());
        ring.try_push(&record(1, 8)).unwrap();
        ring.try_push(&record(2, 8)).unwrap();
        let inside = Arc::new(AtomicBool::new(false));
        let spawn = || {
            let ring = ring.clone();
            let inside = inside.clone();
            thread::spawn(move || {
                let mut c = ring.consumer()?;
                // Relaxed: this check must not itself order one consumer's work before the
                // next one's (that is the claim flag's job, which the model checks); a swap
                // still sees `true` if the other thread is inside (RMWs read the latest value).
                assert!(
                    !inside.swap(true, Ordering::Relaxed),
                    "two consumers at once"
                );
                let r = c.read().ok().map(|r| r.to_vec());
                inside.store(false, Ordering::Relaxed);
                drop(c);
                Some(r)
            })
        };
        let a = spawn();
        let b = spawn();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a.is_some() || b.is_some(), "nobody got the consumer");
        let read: Vec<Vec<u8>> = [a, b].into_iter().flatten().flatten().collect();
        let mut c = ring.consumer().expect("free after both dropped");
        let mut rest = Vec::new();
        while let Ok(r) = c.read() {
            rest.push(r.to_vec());
        }
        let mut all: Vec<Vec<u8>> = read.iter().chain(&rest).cloned().collect();
        all.sort();
        assert_eq!(
            all,
            [record(1, 8), record(2, 8)],
            "exactly once across consumers"
        );
        assert_eq!(
            rest,
            [record(1, 8), record(2, 8)][read.len()..],
            "the next consumer continues in order"
        );
    });
}

/// The heap ring dropped with records inside: two producer threads (one commits a record and
/// discards a grant, the other commits a record and forgets a grant), the receiver reading
/// concurrently, then every handle dropped, the last one freeing the ring (under loom that
/// counts as a write of every granule, so it must happen-after every access; loom also
/// reports a leaked `Arc`). Before the drop the receiver reads what is reachable: committed
/// records only, each once, and it always stops at the forgotten grant (`Pending`, a stall,
/// not UB), which lies at or after where the tail was when its producer reserved it: the
/// discarded grant never stops it.
///
/// Bound: 2 preemptions (13,712 executions, 4.5 s here; at 3: 210,634 in 37 s since the
/// producers cache their bound, over a few seconds' budget). Mutation checked (B10): `discard`
/// doing nothing (a dropped grant leaves its header unwritten) fails it ("the consumer
/// stopped before the forgotten grant").
#[test]
fn drop_with_records_inside() {
    check(Some(2), || {
        let (tx, mut rx) = byte_channel(64);
        let p1 = {
            let tx = tx.clone();
            thread::spawn(move || {
                tx.try_push(&record(1, 8)).unwrap();
                let mut g = tx.try_reserve(8).unwrap();
                g.fill(0xEE);
                g.discard();
            })
        };
        let p2 = {
            let tx = tx.clone();
            thread::spawn(move || {
                tx.try_push(&record(2, 8)).unwrap();
                let before = tx.reserved();
                std::mem::forget(tx.try_reserve(0).unwrap());
                before
            })
        };
        drop(tx);
        let mut got: Vec<Vec<u8>> = Vec::new();
        if let Ok(batch) = rx.read_batch(usize::MAX) {
            got.extend(batch.iter().map(<[u8]>::to_vec));
        }
        p1.join().unwrap();
        let forgotten_at_or_after = p2.join().unwrap();
        let why = loop {
            match rx.read() {
                Ok(r) => got.push(r.to_vec()),
                Err(e) => break e,
            }
        };
        assert_eq!(
            why,
            TryPopError::Pending,
            "the forgotten grant holds the consumer"
        );
        assert!(
            rx.position() >= forgotten_at_or_after,
            "the consumer stopped before the forgotten grant: {} < {forgotten_at_or_after}",
            rx.position()
        );
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "read twice: {got:?}");
        assert!(
            got.iter().all(|r| *r == record(1, 8) || *r == record(2, 8)),
            "only committed records: {got:?}"
        );
        // `rx` (the last handle) drops here with records and a forgotten grant inside.
    });
}

/// What the consumer may see once B's push has completed (B joined) while A, which may have
/// reserved first, may still be writing: `read` returns a record or `Pending`, never `Empty`
/// (a completed push is in the ring). Afterwards both records come out exactly once.
///
/// Exhaustive (32,747 executions, 5 s here). Mutation checked (B14): `not_ready` answering
/// `Empty` whenever the header at the cursor is not published (no look at `tail`) fails it
/// ("read said Empty after a completed push").
#[test]
fn read_never_says_empty_after_a_completed_push() {
    check(None, || {
        let ring: Arc<ByteRing<64>> = Arc::new(ByteRing::new());
        let spawn = |id: u8| {
            let ring = ring.clone();
            thread::spawn(move || ring.try_push(&record(id, 8)).unwrap())
        };
        let a = spawn(1);
        let b = spawn(2);
        b.join().unwrap();
        let mut c = ring.consumer().unwrap();
        let mut got: Vec<Vec<u8>> = match c.read() {
            Ok(r) => vec![r.to_vec()],
            Err(TryPopError::Pending) => vec![],
            Err(TryPopError::Empty) => panic!("read said Empty after a completed push"),
        };
        a.join().unwrap();
        while let Ok(r) = c.read() {
            got.push(r.to_vec());
        }
        exactly_once(got, vec![record(1, 8), record(2, 8)]);
    });
}

// ---- close (the std writer's shutdown, `ByteProducer::close`) ----

/// Reads from `rx` until its position reaches `end` (the final position `close` returned),
/// yielding while the record there is not yet committed; returns what it read.
fn read_until(rx: &mut ringwal_core::ByteReceiver, end: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while rx.position() != end {
        match rx.read_batch(usize::MAX) {
            Ok(batch) => got.extend(batch.iter().map(<[u8]>::to_vec)),
            Err(_) => thread::yield_now(),
        }
    }
    got
}

/// `close` racing a `try_reserve_checked` that commits: the final position `close` returns
/// counts the reservation exactly when it was granted (a header and a payload granule), a
/// receiver reading until its position reaches it gets the record (waiting out the commit),
/// and then reports `Empty` (the closed flag is not a reservation); a refused reservation
/// says `Closed` and leaves the ring empty.
///
/// Exhaustive (15 executions, under 1 ms here). Mutations checked (`loom-tests/mutations.py`
/// B1, B2): the claim made with a `fetch_add` instead of the compare-and-swap (a claim that
/// ignores the closed flag lands after the close) fails it ("close's answer counts exactly the
/// granted reservation"), as does a plain store of the advanced tail; `not_ready` comparing
/// the unmasked `tail` fails it ("a reservation granted after close": `Pending` after the
/// final position).
#[test]
fn close_races_a_reservation() {
    check(None, || {
        let (tx, mut rx) = byte_channel(64);
        let pusher = {
            let tx = tx.clone();
            thread::spawn(move || match tx.try_reserve_checked(8) {
                Ok(mut grant) => {
                    grant.fill(7);
                    grant.commit();
                    true
                }
                Err(ReserveError::Closed) => false,
                Err(e) => panic!("an empty ring refused: {e}"),
            })
        };
        let end = tx.close();
        let got = read_until(&mut rx, end);
        let accepted = pusher.join().unwrap();
        assert_eq!(
            end,
            if accepted { 2 } else { 0 },
            "close's answer counts exactly the granted reservation"
        );
        assert_eq!(got, if accepted { vec![vec![7; 8]] } else { vec![] });
        assert_eq!(
            rx.read().unwrap_err(),
            TryPopError::Empty,
            "a reservation granted after close"
        );
        assert_eq!(tx.reserved(), end);
        assert_eq!(tx.try_reserve_checked(0).unwrap_err(), ReserveError::Closed);
    });
}

/// A committed and a discarded grant racing `close`: A reserves and commits, B reserves and
/// drops its grant; the writer-side thread closes and reads until the final position. It gets
/// A's record if A was granted, never B's, and passes B's space either way (the discard's skip
/// header is what lets it reach the final position).
///
/// Bound: 3 preemptions (2,587 executions, 0.2 s here; unbounded: 6.0 M executions in 485 s,
/// over the CI budget). Mutation checked (B3): `discard` writing no skip header fails it: the
/// reader never reaches the final position (loom: "Model exceeded maximum number of
/// branches").
#[test]
fn committed_and_discarded_grants_race_close() {
    check(Some(3), || {
        let (tx, mut rx) = byte_channel(64);
        let spawn = |commit: bool| {
            let tx = tx.clone();
            thread::spawn(move || match tx.try_reserve_checked(8) {
                Ok(mut grant) => {
                    grant.fill(if commit { 1 } else { 2 });
                    if commit {
                        grant.commit();
                    }
                    true
                }
                Err(ReserveError::Closed) => false,
                Err(e) => panic!("room for both: {e}"),
            })
        };
        let a = spawn(true);
        let b = spawn(false);
        let end = tx.close();
        let got = read_until(&mut rx, end);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(end, 2 * (usize::from(a) + usize::from(b)));
        assert_eq!(got, if a { vec![vec![1; 8]] } else { vec![] });
        assert_eq!(rx.read().unwrap_err(), TryPopError::Empty);
        assert!(rx.is_empty());
    });
}

/// A refusal racing `close`: the ring is full (two 24-byte records) and a producer reserves
/// again while the consumer side closes. The reservation is refused, as `Full` or as
/// `Closed`, never granted; the final position is the full ring's; the reader gets both
/// records and then `Empty`. (The std writer's half of this race, counting the refusal so
/// that the log records it, is modelled in `byte_writer.rs`.)
///
/// Exhaustive (6 executions, under 1 ms here: the refusal is decided by one load of `tail`).
/// Mutation checked (B2): `not_ready` comparing the unmasked `tail` with the consumer's position
/// (the closed flag read as a reservation) fails it: `Pending` instead of `Empty` after the
/// close ("the closed flag read as a reservation").
#[test]
fn a_refusal_races_close() {
    check(None, || {
        let (tx, mut rx) = byte_channel(64);
        tx.try_push(&record(1, 24)).unwrap();
        tx.try_push(&record(2, 24)).unwrap();
        let pusher = {
            let tx = tx.clone();
            thread::spawn(move || tx.try_reserve_checked(0).map(|g| g.commit()))
        };
        let end = tx.close();
        let refused = pusher.join().unwrap().unwrap_err();
        assert!(
            matches!(refused, ReserveError::Full | ReserveError::Closed),
            "{refused:?}"
        );
        assert_eq!(end, 8, "the full ring's final position");
        let got = read_until(&mut rx, end);
        assert_eq!(got, [record(1, 24), record(2, 24)]);
        assert_eq!(
            rx.read().unwrap_err(),
            TryPopError::Empty,
            "the closed flag read as a reservation"
        );
    });
}
