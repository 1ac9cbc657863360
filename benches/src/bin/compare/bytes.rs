//! Variable-length records, the ring alone: ringwal's byte ring against queues of `Vec<u8>`
//! (ringwal's slot ring and crossbeam's `ArrayQueue`, each record a fresh allocation, as a user
//! would push it) and bbqueue's framed SPSC byte queue.
//!
//! Every producer writes each record the same way: a copy of `len` template bytes, then its id
//! and a sequence number stamped over the first 9; the consumer checks the per-producer order
//! and the length, and copies each record into a 64 KiB buffer (what a writer does), for every
//! contestant alike.

use crate::report::{mega, Column, Contestant, RatioColumn};
use crate::Config;
use bbqueue::nicknames::Churrasco;
use crossbeam_queue::ArrayQueue;
use ringwal_benches::Backoff;
use ringwal_core::{byte_channel, ByteProducer, ByteReceiver, Producer, Receiver, ReserveError};
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

/// Bytes in each byte ring (ringwal's and bbqueue's).
pub const RING_BYTES: usize = 1 << 20;
/// Slots in each queue of `Vec<u8>` (the other scenarios' capacity).
const SLOTS: usize = crate::peers::CAP;
/// The consumer's buffer, into which it copies every record (a writer's write buffer), and the
/// cap of its batches.
const SINK_BYTES: usize = 64 << 10;
/// The record sizes measured.
pub const SIZES: [usize; 4] = [16, 64, 256, 1024];

/// A queue of byte records seen through what the scenario needs.
trait ByteQueue: 'static {
    const NAME: &'static str;
    const MULTI_PRODUCER: bool = true;
    type Tx: Send;
    type Rx: Send;
    fn make() -> (Self::Tx, Self::Rx);
    fn clone_tx(tx: &Self::Tx) -> Self::Tx;
    /// Sends one record: a copy of `template` with `stamp` applied, backing off while the
    /// queue is full.
    fn send(tx: &mut Self::Tx, template: &[u8], stamp: impl Fn(&mut [u8]), b: &mut Backoff);
    /// Calls `f` on every record available now; returns how many.
    fn take(rx: &mut Self::Rx, f: impl FnMut(&[u8])) -> usize;
}

/// ringwal's byte ring (heap form, `byte_channel`), consumer taking batches (`read_batch`).
struct Bytes<const BATCH: bool>;

impl<const BATCH: bool> ByteQueue for Bytes<BATCH> {
    const NAME: &'static str = if BATCH {
        "ringwal ByteRing (read_batch)"
    } else {
        "ringwal ByteRing (read)"
    };
    type Tx = ByteProducer;
    type Rx = ByteReceiver;

    fn make() -> (ByteProducer, ByteReceiver) {
        byte_channel(RING_BYTES)
    }

    fn clone_tx(tx: &ByteProducer) -> ByteProducer {
        tx.clone()
    }

    #[inline(always)]
    fn send(tx: &mut ByteProducer, template: &[u8], stamp: impl Fn(&mut [u8]), b: &mut Backoff) {
        loop {
            match tx.try_reserve(template.len()) {
                Ok(mut grant) => {
                    grant.copy_from_slice(template);
                    stamp(&mut grant);
                    grant.commit();
                    b.reset();
                    return;
                }
                Err(ReserveError::Full) => b.snooze(),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[inline(always)]
    fn take(rx: &mut ByteReceiver, mut f: impl FnMut(&[u8])) -> usize {
        if BATCH {
            // Capped at the consumer's 64 KiB buffer, as a writer would: an uncapped batch of a
            // 1 MiB ring holds the producers off until all of it is copied.
            match rx.read_batch(SINK_BYTES) {
                Ok(batch) => {
                    for record in &batch {
                        f(record);
                    }
                    batch.len()
                }
                Err(_) => 0,
            }
        } else {
            let mut n = 0;
            while let Ok(record) = rx.read() {
                f(&record);
                n += 1;
            }
            n
        }
    }
}

/// A fresh `Vec` (one allocation per record, as a user pushing `Vec<u8>` does): the same copy
/// and stamp as the byte rings do in place.
#[inline(always)]
fn fresh_vec(template: &[u8], stamp: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut v = template.to_vec();
    stamp(&mut v);
    v
}

/// ringwal's slot ring carrying `Vec<u8>` (`channel`), consumer draining.
struct SlotVec;

impl ByteQueue for SlotVec {
    const NAME: &'static str = "ringwal channel::<Vec<u8>>";
    type Tx = Producer<Vec<u8>>;
    type Rx = Receiver<Vec<u8>>;

    fn make() -> (Self::Tx, Self::Rx) {
        ringwal_core::channel(SLOTS)
    }

    fn clone_tx(tx: &Self::Tx) -> Self::Tx {
        tx.clone()
    }

    #[inline(always)]
    fn send(tx: &mut Self::Tx, template: &[u8], stamp: impl Fn(&mut [u8]), b: &mut Backoff) {
        let mut v = fresh_vec(template, stamp);
        while let Err(full) = tx.try_push(v) {
            v = full.into_inner();
            b.snooze();
        }
        b.reset();
    }

    #[inline(always)]
    fn take(rx: &mut Self::Rx, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        for v in rx.drain() {
            f(&v);
            n += 1;
        }
        n
    }
}

/// crossbeam's `ArrayQueue<Vec<u8>>`.
struct CbVec;

impl ByteQueue for CbVec {
    const NAME: &'static str = "crossbeam ArrayQueue<Vec<u8>>";
    type Tx = std::sync::Arc<ArrayQueue<Vec<u8>>>;
    type Rx = std::sync::Arc<ArrayQueue<Vec<u8>>>;

    fn make() -> (Self::Tx, Self::Rx) {
        let q = std::sync::Arc::new(ArrayQueue::new(SLOTS));
        (q.clone(), q)
    }

    fn clone_tx(tx: &Self::Tx) -> Self::Tx {
        tx.clone()
    }

    #[inline(always)]
    fn send(tx: &mut Self::Tx, template: &[u8], stamp: impl Fn(&mut [u8]), b: &mut Backoff) {
        let mut v = fresh_vec(template, stamp);
        while let Err(back) = tx.push(v) {
            v = back;
            b.snooze();
        }
        b.reset();
    }

    #[inline(always)]
    fn take(rx: &mut Self::Rx, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(v) = rx.pop() {
            f(&v);
            n += 1;
        }
        n
    }
}

/// bbqueue (default features), framed mode: inline storage, atomics, one producer. One
/// `static` queue reused by every run (each run leaves it empty).
struct Bbq;

static BBQ: Churrasco<RING_BYTES> = Churrasco::new();

impl ByteQueue for Bbq {
    const NAME: &'static str = "bbqueue framed (SPSC)";
    const MULTI_PRODUCER: bool = false;
    type Tx = bbqueue::prod_cons::framed::FramedProducer<&'static Churrasco<RING_BYTES>>;
    type Rx = bbqueue::prod_cons::framed::FramedConsumer<&'static Churrasco<RING_BYTES>>;

    fn make() -> (Self::Tx, Self::Rx) {
        (BBQ.framed_producer(), BBQ.framed_consumer())
    }

    fn clone_tx(_: &Self::Tx) -> Self::Tx {
        unreachable!("bbqueue is single-producer")
    }

    #[inline(always)]
    fn send(tx: &mut Self::Tx, template: &[u8], stamp: impl Fn(&mut [u8]), b: &mut Backoff) {
        let len16 = u16::try_from(template.len()).expect("records fit bbqueue's u16 header");
        loop {
            match tx.grant(len16) {
                Ok(mut grant) => {
                    grant.copy_from_slice(template);
                    stamp(&mut grant);
                    grant.commit(len16);
                    b.reset();
                    return;
                }
                Err(_) => b.snooze(),
            }
        }
    }

    #[inline(always)]
    fn take(rx: &mut Self::Rx, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Ok(frame) = rx.read() {
            f(&frame);
            frame.release();
            n += 1;
        }
        n
    }
}

/// One throughput run: `producers` threads send `per_producer` records of `len` bytes each;
/// the calling thread consumes until all arrived. Returns [records/s, payload bytes/s].
fn run<Q: ByteQueue>(producers: usize, per_producer: u64, len: usize) -> Vec<f64> {
    assert!(
        len >= 9,
        "a record carries its producer id and sequence number"
    );
    let (tx, mut rx) = Q::make();
    let mut txs: Vec<Q::Tx> = (1..producers).map(|_| Q::clone_tx(&tx)).collect();
    txs.push(tx);
    let template: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let start = Barrier::new(producers + 1);
    let elapsed = thread::scope(|s| {
        for (p, mut tx) in txs.into_iter().enumerate() {
            let (start, template) = (&start, &template);
            s.spawn(move || {
                let mut b = Backoff::new();
                start.wait();
                for seq in 0..per_producer {
                    Q::send(
                        &mut tx,
                        template,
                        |buf| {
                            buf[0] = p as u8;
                            buf[1..9].copy_from_slice(&seq.to_le_bytes());
                        },
                        &mut b,
                    );
                }
            });
        }
        let total = producers as u64 * per_producer;
        let mut next = vec![0u64; producers];
        let mut received = 0u64;
        let mut sink: Vec<u8> = Vec::with_capacity(SINK_BYTES);
        let mut b = Backoff::new();
        start.wait();
        let t0 = Instant::now();
        while received < total {
            let n = Q::take(&mut rx, |r| {
                assert_eq!(r.len(), len, "record length");
                let p = usize::from(r[0]);
                let seq = u64::from_le_bytes(r[1..9].try_into().unwrap());
                assert!(seq == next[p], "out of order from producer {p}");
                next[p] += 1;
                if sink.len() + r.len() > sink.capacity() {
                    black_box(&sink);
                    sink.clear();
                }
                sink.extend_from_slice(r);
            });
            received += n as u64;
            if n == 0 {
                b.snooze();
            } else {
                b.reset();
            }
        }
        let elapsed = t0.elapsed();
        assert!(next.iter().all(|&n| n == per_producer), "lost records");
        elapsed
    });
    let records = (producers as u64 * per_producer) as f64;
    let secs = elapsed.as_secs_f64();
    vec![records / secs, records * len as f64 / secs]
}

fn contestants(producers: usize, per_producer: u64, len: usize) -> Vec<Contestant> {
    fn add<Q: ByteQueue>(v: &mut Vec<Contestant>, producers: usize, per: u64, len: usize) {
        if producers > 1 && !Q::MULTI_PRODUCER {
            return;
        }
        v.push(Contestant {
            name: Q::NAME.to_string(),
            run: Box::new(move || run::<Q>(producers, per, len)),
        });
    }
    let mut v = Vec::new();
    add::<Bytes<true>>(&mut v, producers, per_producer, len);
    add::<Bytes<false>>(&mut v, producers, per_producer, len);
    add::<SlotVec>(&mut v, producers, per_producer, len);
    add::<CbVec>(&mut v, producers, per_producer, len);
    add::<Bbq>(&mut v, producers, per_producer, len);
    v
}

/// MB/s (10^6 bytes).
fn mbytes(x: f64) -> String {
    format!("{:.0}", x / 1e6)
}

/// The byte-record tables: for each producer count and record size, records/s and bytes/s.
pub fn run_all(cfg: &Config) {
    println!("## Variable-length records: the ring alone\n");
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    for producers in [1, 2] {
        for len in SIZES {
            // The same bytes per run at every size (the 64-byte run sends `per_producer`).
            let per = (cfg.per_producer * 64 / len as u64).max(1 << 12);
            crate::compare(
                cfg.rounds,
                &format!(
                    "Byte records, ring alone: {len}-byte records, {producers} producer{}",
                    if producers == 1 { "" } else { "s" }
                ),
                &[
                    format!(
                        "{producers} producer thread{} (on {cpus} CPUs) send {per} records of \
                         {len} bytes each: a copy of {len} template bytes with the producer id \
                         and a sequence number stamped in; the consumer checks length and \
                         per-producer order and copies each record into a 64 KiB buffer. \
                         Byte rings: {} KiB (ringwal `byte_channel`, 8-byte header and 8-byte \
                         alignment per record; bbqueue `Churrasco` framed, 2-byte header). \
                         `Vec<u8>` queues: {SLOTS} slots, one fresh allocation per record, freed \
                         by the consumer. bbqueue is single-producer.",
                        if producers == 1 { "" } else { "s" },
                        RING_BYTES >> 10,
                    ),
                    "\"(read_batch)\" takes what is ready, up to 64 KiB of payload, as one batch \
                     released at once; \
                     \"(read)\" one record per call, each released when dropped; the `Vec` \
                     queues and bbqueue take what is ready one record per call (ringwal's \
                     channel through `drain`)."
                        .to_string(),
                ],
                &[
                    Column {
                        header: "M records/s",
                        fmt: mega,
                    },
                    Column {
                        header: "MB/s",
                        fmt: mbytes,
                    },
                ],
                &[RatioColumn {
                    metric: 0,
                    higher_is_better: true,
                    header: "ByteRing (read_batch) ÷ peer, records/s (>1 = ByteRing faster)",
                }],
                contestants(producers, per, len),
            );
        }
    }
}
