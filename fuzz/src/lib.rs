//! The bodies of the fuzz targets, as plain functions over bytes, so the normal test suite
//! (`std-writer/tests/fuzz_bodies.rs`, which includes this file) drives the same properties
//! on stable with proptest and the committed seeds in `fuzz/seeds/`.
//!
//! Each body panics when a property breaks, and only then.

use ringwal::format::{self, ScanEnd};
use ringwal::ringwal_core::{Evict, Mode, NoEvict, Ring, STAGE};
use ringwal::{Batch, LogOptions, Reader, SegmentLog, Sink};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs;
use std::path::Path;
use std::rc::Rc;

/// A directory for one run; in RAM when the machine has /dev/shm (fuzzing is I/O bound).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("ringwal-fuzz-")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

// ---- ring_ops ----

/// A value that counts its drops, per id.
struct Counted {
    id: usize,
    drops: Rc<RefCell<Vec<u32>>>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.borrow_mut()[self.id] += 1;
    }
}

/// `try_push` / `force_push` / `pop` / `drain` / consumer claim-and-drop on a ring of 2, 4, 8
/// or 4096 slots, evicting or not, checked step by step against a model: the values in the
/// slots and, for an evicting ring, those its consumer has claimed into its staging buffer (a
/// pop that finds it empty claims up to `STAGE` values; `force_push` evicts the oldest value in
/// the slots). Same results, same evictions, same eviction counts, and every value dropped
/// exactly once.
pub fn ring_ops(data: &[u8]) {
    let Some((&config, ops)) = data.split_first() else {
        return;
    };
    match (config % 4, config & 4 != 0) {
        (0, false) => run_ring::<2, NoEvict>(ops),
        (1, false) => run_ring::<4, NoEvict>(ops),
        (2, false) => run_ring::<8, NoEvict>(ops),
        (_, false) => run_ring::<4096, NoEvict>(ops),
        (0, true) => run_ring::<2, Evict>(ops),
        (1, true) => run_ring::<4, Evict>(ops),
        (2, true) => run_ring::<8, Evict>(ops),
        (_, true) => run_ring::<4096, Evict>(ops),
    }
}

/// `force_push` where the ring evicts; `try_push` where it does not (`None`: not evicting).
trait MaybeForce<T> {
    fn maybe_force(&self, value: T) -> Result<Option<T>, T>;
}

impl<T, const N: usize> MaybeForce<T> for Ring<T, N, NoEvict> {
    fn maybe_force(&self, value: T) -> Result<Option<T>, T> {
        self.try_push(value)
            .map(|()| None)
            .map_err(|f| f.into_inner())
    }
}

impl<T, const N: usize> MaybeForce<T> for Ring<T, N, Evict> {
    fn maybe_force(&self, value: T) -> Result<Option<T>, T> {
        Ok(self.force_push(value))
    }
}

/// The ring as the fuzzer's model sees it.
struct Model {
    cap: usize,
    evicts: bool,
    slots: VecDeque<usize>,
    staged: VecDeque<usize>,
    /// Evictions no consumer has stepped over yet.
    pending: u64,
    /// Evictions consumers have stepped over.
    stepped: u64,
}

impl Model {
    fn pop(&mut self) -> Option<usize> {
        if !self.evicts {
            return self.slots.pop_front();
        }
        if self.staged.is_empty() {
            self.stepped += std::mem::take(&mut self.pending);
            let run = self.slots.len().min(STAGE);
            self.staged.extend(self.slots.drain(..run));
        }
        self.staged.pop_front()
    }

    fn len(&self) -> usize {
        self.slots.len() + self.staged.len()
    }
}

fn run_ring<const N: usize, M: Mode>(ops: &[u8])
where
    Ring<Counted, N, M>: MaybeForce<Counted>,
{
    let drops = Rc::new(RefCell::new(Vec::new()));
    let ring: Box<Ring<Counted, N, M>> = Box::new(Ring::new());
    let mut model = Model {
        cap: N,
        evicts: M::EVICTS,
        slots: VecDeque::new(),
        staged: VecDeque::new(),
        pending: 0,
        stepped: 0,
    };
    // Evictions counted by consumers already dropped.
    let mut evicted_seen = 0u64;
    let mut consumer = None;
    let mut next_id = 0usize;
    let mut new_value = |drops: &Rc<RefCell<Vec<u32>>>| {
        drops.borrow_mut().push(0);
        next_id += 1;
        Counted {
            id: next_id - 1,
            drops: Rc::clone(drops),
        }
    };
    let mut bytes = ops.iter();
    while let Some(&op) = bytes.next() {
        match op % 8 {
            0 | 1 => {
                let value = new_value(&drops);
                let id = value.id;
                match ring.try_push(value) {
                    Ok(()) => {
                        assert!(model.slots.len() < N, "try_push succeeded on a full ring");
                        model.slots.push_back(id);
                    }
                    Err(full) => {
                        assert_eq!(model.slots.len(), N, "try_push failed on a ring with room");
                        assert_eq!(full.into_inner().id, id, "Full must hand back the value");
                    }
                }
            }
            2 | 3 => {
                let value = new_value(&drops);
                let id = value.id;
                match ring.maybe_force(value) {
                    Ok(evicted) => {
                        if model.slots.len() == N {
                            assert!(model.evicts, "a non-evicting ring stored into full slots");
                            let oldest = model.slots.pop_front().expect("full");
                            assert_eq!(
                                evicted.map(|v| v.id),
                                Some(oldest),
                                "evicts the oldest in the slots"
                            );
                            model.pending += 1;
                        } else {
                            assert!(
                                evicted.is_none(),
                                "force_push evicted from a ring with room"
                            );
                        }
                        model.slots.push_back(id);
                    }
                    Err(back) => {
                        assert!(!model.evicts && model.slots.len() == N, "refused with room");
                        assert_eq!(back.id, id, "Full must hand back the value");
                    }
                }
            }
            4 => {
                let c = consumer.get_or_insert_with(|| ring.consumer().expect("no consumer"));
                let got = c.pop().map(|v| v.id);
                assert_eq!(got, model.pop(), "pop");
                assert_eq!(evicted_seen + c.evicted(), model.stepped, "eviction count");
            }
            5 => {
                let k = bytes.next().map_or(3, |b| *b as usize % 9);
                let c = consumer.get_or_insert_with(|| ring.consumer().expect("no consumer"));
                let got: Vec<usize> = c.drain().take(k).map(|v| v.id).collect();
                let want: Vec<usize> = (0..k.min(N)).map_while(|_| model.pop()).collect();
                assert_eq!(got, want, "drain");
                assert_eq!(evicted_seen + c.evicted(), model.stepped, "eviction count");
            }
            6 => match consumer.take() {
                Some(c) => {
                    evicted_seen += c.evicted();
                    drop(c);
                    assert!(
                        ring.consumer().is_some(),
                        "claim after the consumer is dropped"
                    );
                }
                None => {
                    let c = ring.consumer().expect("no other consumer");
                    assert!(ring.consumer().is_none(), "two consumers at once");
                    consumer = Some(c);
                }
            },
            _ => {
                assert_eq!(ring.len(), model.len(), "len");
                assert_eq!(ring.is_empty(), model.len() == 0, "is_empty");
                assert_eq!(ring.is_full(), model.len() >= model.cap, "is_full");
            }
        }
    }
    drop(consumer);
    drop(ring);
    let drops = drops.borrow();
    for (id, n) in drops.iter().enumerate() {
        assert_eq!(*n, 1, "value {id} dropped {n} times");
    }
}

// ---- frame_roundtrip ----

/// Payloads cut from `data` are framed and decoded back exactly; decoding or scanning the raw
/// bytes never panics.
pub fn frame_roundtrip(data: &[u8]) {
    let _ = format::decode_frame(data);
    let mut segment = format::encode_header(7).to_vec();
    segment.extend_from_slice(data);
    let _ = format::scan_segment(&segment);

    let mut rest = data;
    let mut frames = Vec::new();
    let mut expected = Vec::new();
    let mut seq = u64::from(data.first().copied().unwrap_or(0)) << 40;
    while let Some((&len, tail)) = rest.split_first() {
        let len = (len as usize).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        let dropped = u64::from(payload.first().copied().unwrap_or(0));
        format::encode_frame(&mut frames, seq, dropped, payload);
        expected.push((seq, dropped, payload));
        seq += 1;
        rest = tail;
    }
    let mut at = 0;
    for (seq, dropped, payload) in &expected {
        let (frame, used) = format::decode_frame(&frames[at..]).expect("a frame just encoded");
        assert_eq!(
            (frame.seq, frame.dropped_before, frame.payload),
            (*seq, *dropped, *payload)
        );
        at += used;
    }
    assert_eq!(at, frames.len());
    if let Some(&(first, _, _)) = expected.first() {
        let batch = Batch::new(&frames, first, expected.len() as u64).expect("valid batch");
        assert_eq!(batch.frames().count(), expected.len());
    }
}

// ---- segment_open ----

/// Writes a valid first segment (records 0..3), then `data` as the last segment (first record
/// 3), and opens the log the way the writer does.
///
/// Never a panic. If opening succeeds, what it kept is a prefix of `data` made of valid
/// frames (or the segment was removed as never created, or, being of an older format with no
/// record, replaced by an empty current-format one), and appending and reading back work. If it fails, the directory is unchanged.
pub fn segment_open(data: &[u8]) {
    let dir = scratch();
    let mut log = SegmentLog::open(dir.path(), LogOptions::default()).expect("fresh log");
    let mut frames = Vec::new();
    for seq in 0..3 {
        format::encode_frame(&mut frames, seq, 0, b"older segment");
    }
    log.append(&Batch::new(&frames, 0, 3).expect("valid"))
        .expect("append");
    log.sync().expect("sync");
    drop(log);
    let last = dir.path().join(format::segment_file_name(3));
    fs::write(&last, data).expect("write the fuzzed segment");
    let first = dir.path().join(format::segment_file_name(0));
    let first_bytes = fs::read(&first).expect("read");

    // A reader sees values or errors, never a panic, and ends.
    if let Ok(reader) = Reader::open(dir.path()) {
        for (i, item) in reader.iter().enumerate() {
            assert!(i < 1 << 20, "reader did not end");
            if item.is_err() {
                break;
            }
        }
    }

    match SegmentLog::open(dir.path(), LogOptions::default()) {
        Err(_) => {
            assert_eq!(
                fs::read(&last).ok().as_deref(),
                Some(data),
                "failed open changed the file"
            );
            assert_eq!(fs::read(&first).expect("read"), first_bytes);
        }
        Ok(mut log) => {
            let recovery = log.recovery().clone();
            let next = log.next_seq();
            match fs::read(&last) {
                Ok(kept) => {
                    // A version-1 segment with no record is replaced by a current-format one
                    // of the same name (never appended to); anything else is truncated.
                    let old_and_empty = format::scan_segment(data)
                        .is_ok_and(|s| !s.version.appendable() && s.records == 0);
                    if old_and_empty {
                        assert_eq!(kept, format::encode_header(3), "old empty segment replaced");
                    } else {
                        assert!(data.starts_with(&kept), "recovery did more than truncate");
                    }
                    let scan = format::scan_segment(&kept).expect("kept a valid header");
                    assert_eq!(
                        scan.end,
                        ScanEnd::Clean,
                        "kept bytes must all be valid frames"
                    );
                    assert_eq!(scan.first_seq, 3);
                    assert_eq!(next, scan.next_seq());
                    assert_eq!(recovery.bytes_cut, (data.len() - kept.len()) as u64);
                }
                Err(_) => {
                    // Removed as a segment whose creation was cut short.
                    assert!(data.len() <= format::HEADER_LEN);
                    assert_eq!(next, 3);
                }
            }
            let mut frame = Vec::new();
            format::encode_frame(&mut frame, next, 0, b"after recovery");
            log.append(&Batch::new(&frame, next, 1).expect("valid"))
                .expect("append");
            log.sync().expect("sync");
            drop(log);
            let entries: Vec<_> = Reader::open(dir.path())
                .expect("open")
                .iter()
                .collect::<Result<_, _>>()
                .expect("a recovered log reads back without error");
            assert_eq!(entries.len() as u64, next + 1);
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(e.seq, i as u64);
            }
            assert_eq!(entries.last().expect("one").payload, b"after recovery");
        }
    }
}

// ---- reader_dir ----

/// Several segment files with fuzzed names and contents: `Reader` (open, segments, iter,
/// from_seq) and recovery return values or errors, never panic, and end.
pub fn reader_dir(data: &[u8]) {
    let dir = scratch();
    let mut rest = data;
    let mut files = 0;
    while rest.len() >= 3 && files < 8 {
        let seq = u64::from(rest[0] % 16);
        let len = u16::from_le_bytes([rest[1], rest[2]]) as usize;
        let len = len.min(rest.len() - 3);
        let body = &rest[3..3 + len];
        // Half the files start with a valid header (version 3, with preamble frames, if bit
        // 6 is set too), so the fuzzer gets past it easily.
        let mut bytes = Vec::new();
        if rest[0] & 0x80 != 0 {
            let version = match rest[0] & 0x40 {
                0 => format::Version::V2,
                _ => format::Version::V3,
            };
            bytes.extend_from_slice(&format::encode_header_version(version, seq));
        }
        bytes.extend_from_slice(body);
        fs::write(dir.path().join(format::segment_file_name(seq)), &bytes).expect("write");
        rest = &rest[3 + len..];
        files += 1;
    }
    if let Ok(reader) = Reader::open(dir.path()) {
        let _ = reader.segments();
        for from in [None, Some(2u64), Some(u64::MAX)] {
            let iter = match from {
                None => reader.iter(),
                Some(seq) => reader.from_seq(seq),
            };
            for (i, item) in iter.enumerate() {
                assert!(i < 1 << 20, "reader did not end");
                if item.is_err() {
                    break;
                }
            }
        }
    }
    let _ = SegmentLog::open(dir.path(), LogOptions::default());
}

// ---- byte_ring_ops ----

use ringwal::ringwal_core::{ByteRing, Grant, ReserveError, TryPopError, POSITION_MASK};

/// One reservation as the model sees it: where it ends (in granules) and what became of it.
#[derive(Debug)]
enum ByteEntry {
    Open { id: u64, len: usize, end: usize },
    Committed { bytes: Vec<u8>, end: usize },
    Skipped { end: usize },
}

impl ByteEntry {
    fn end(&self) -> usize {
        match *self {
            ByteEntry::Open { end, .. }
            | ByteEntry::Committed { end, .. }
            | ByteEntry::Skipped { end } => end,
        }
    }
}

/// The bytes of record `id`.
fn byte_record(id: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (id as usize * 37 + i) as u8).collect()
}

/// `try_reserve` / `try_push` / commit / `commit_len` / discard / `read` / `read_batch` /
/// consumer hand-off on a byte ring of 64, 256 or 4096 bytes, started at 0 or just before the
/// wrap of its counters (positions wrap at 2^(`usize::BITS` - 1)), checked step by step against a model of the reservations and
/// of the space accounting (a header granule per record, payload rounded up to 8 bytes, padding
/// at the end of the buffer): same results, byte for byte, same `Full`/`TooLarge`, same
/// `Empty`/`Pending`, same positions.
pub fn byte_ring_ops(data: &[u8]) {
    let Some((&config, ops)) = data.split_first() else {
        return;
    };
    let start = if config & 4 == 0 {
        0
    } else {
        usize::MAX - usize::from(config >> 3)
    };
    match config % 4 {
        0 | 1 => run_bytes::<64>(start, ops),
        2 => run_bytes::<256>(start, ops),
        _ => run_bytes::<4096>(start, ops),
    }
}

fn run_bytes<const B: usize>(start: usize, ops: &[u8]) {
    const G: usize = 8;
    let ring: Box<ByteRing<B>> = Box::new(ByteRing::new_at(start));
    let granules = B / G;
    let max = ring.max_record_len();
    assert_eq!(max, B / 2 - G);
    let span = |len: usize| 1 + len.div_ceil(G);
    let (mut head, mut tail) = (start, start);
    let mut model: VecDeque<ByteEntry> = VecDeque::new();
    let mut open: Vec<(u64, Grant<'_>)> = Vec::new();
    let mut consumer = Some(ring.consumer().expect("first consumer"));
    let mut next_id = 0u64;
    let mut bytes = ops.iter();
    let arg = |bytes: &mut std::slice::Iter<'_, u8>| bytes.next().copied().unwrap_or(0);
    while let Some(&op) = bytes.next() {
        match op % 8 {
            0 | 1 => {
                // Reserve (0: keep the grant open; 1: try_push).
                let b = arg(&mut bytes);
                let len = match b {
                    255 => max + 1,
                    b => usize::from(b) * max / 254,
                };
                let id = next_id;
                next_id += 1;
                let expected = if len > max {
                    Err(ReserveError::TooLarge { len, max })
                } else {
                    let s = span(len);
                    let to_end = granules - tail % granules;
                    let pad = if s > to_end { to_end } else { 0 };
                    if pad + s > granules - tail.wrapping_sub(head) {
                        Err(ReserveError::Full)
                    } else {
                        if pad != 0 {
                            model.push_back(ByteEntry::Skipped {
                                end: tail.wrapping_add(pad),
                            });
                        }
                        tail = tail.wrapping_add(pad + s);
                        Ok(())
                    }
                };
                if op % 8 == 0 {
                    let got = ring.try_reserve(len);
                    assert_eq!(got.as_ref().map(|_| ()).map_err(|e| *e), expected);
                    if let Ok(mut grant) = got {
                        assert!(grant.iter().all(|&x| x == 0), "a grant starts zeroed");
                        grant.copy_from_slice(&byte_record(id, len));
                        open.push((id, grant));
                        model.push_back(ByteEntry::Open { id, len, end: tail });
                    }
                } else {
                    let record = byte_record(id, len);
                    assert_eq!(ring.try_push(&record), expected);
                    if expected.is_ok() {
                        model.push_back(ByteEntry::Committed {
                            bytes: record,
                            end: tail,
                        });
                    }
                }
            }
            2..=4 => {
                // Commit (2), commit a prefix (3), discard (4) an open grant.
                let which = usize::from(arg(&mut bytes));
                let fraction = usize::from(arg(&mut bytes));
                if open.is_empty() {
                    continue;
                }
                let (id, grant) = open.remove(which % open.len());
                let i = model
                    .iter()
                    .position(|e| matches!(e, ByteEntry::Open { id: x, .. } if *x == id))
                    .expect("open in the model");
                let ByteEntry::Open { len, end, .. } = model[i] else {
                    unreachable!()
                };
                match op % 8 {
                    2 => {
                        grant.commit();
                        model[i] = ByteEntry::Committed {
                            bytes: byte_record(id, len),
                            end,
                        };
                    }
                    3 => {
                        let n = len * fraction / 255;
                        grant.commit_len(n);
                        let record_end = end.wrapping_sub(span(len)).wrapping_add(span(n));
                        model[i] = ByteEntry::Committed {
                            bytes: byte_record(id, n),
                            end: record_end,
                        };
                        if record_end != end {
                            model.insert(i + 1, ByteEntry::Skipped { end });
                        }
                    }
                    _ => {
                        drop(grant);
                        model[i] = ByteEntry::Skipped { end };
                    }
                }
            }
            5 | 6 => {
                // read (5) or read_batch (6) with a payload cap.
                let cap = match arg(&mut bytes) {
                    255 => usize::MAX,
                    b => usize::from(b) * 16,
                };
                let c = consumer.get_or_insert_with(|| ring.consumer().expect("free"));
                // The model: skips, then records (one for `read`), stopping at an open entry.
                let mut expected = Vec::new();
                let mut taken = 0usize;
                let mut total = 0usize;
                let mut end = head;
                for e in &model {
                    match e {
                        ByteEntry::Skipped { end: x } => end = *x,
                        ByteEntry::Committed { bytes, end: x } => {
                            let full = if op % 8 == 5 {
                                !expected.is_empty()
                            } else {
                                !expected.is_empty() && total + bytes.len() > cap
                            };
                            if full {
                                break;
                            }
                            total += bytes.len();
                            expected.push(bytes.clone());
                            end = *x;
                        }
                        ByteEntry::Open { .. } => break,
                    }
                    taken += 1;
                }
                // A read stops right after its record; skips after it stay.
                if op % 8 == 5 && !expected.is_empty() {
                    let last = model
                        .iter()
                        .position(|e| matches!(e, ByteEntry::Committed { .. }))
                        .expect("a committed entry");
                    taken = last + 1;
                    end = model[last].end();
                }
                let why = if expected.is_empty() {
                    if taken == model.len() {
                        Some(TryPopError::Empty)
                    } else {
                        Some(TryPopError::Pending)
                    }
                } else {
                    None
                };
                if op % 8 == 5 {
                    match c.read() {
                        Ok(r) => assert_eq!(Some(&r[..]), expected.first().map(|v| &v[..])),
                        Err(e) => assert_eq!(Some(e), why, "read"),
                    }
                } else {
                    match c.read_batch(cap) {
                        Ok(batch) => {
                            let got: Vec<Vec<u8>> = batch.iter().map(<[u8]>::to_vec).collect();
                            if got != expected {
                                std::mem::forget(batch);
                                panic!("read_batch({cap}): {got:?}, expected {expected:?}");
                            }
                            assert_eq!(batch.payload_len(), total);
                        }
                        Err(e) => assert_eq!(Some(e), why, "read_batch"),
                    }
                }
                model.drain(..taken);
                head = end;
                assert_eq!(c.position(), head & POSITION_MASK, "consumer position");
            }
            _ => {
                // Hand the consumer off (drop it; the next read claims a new one).
                if let Some(c) = consumer.take() {
                    assert!(ring.consumer().is_none(), "two consumers at once");
                    drop(c);
                }
            }
        }
        assert_eq!(ring.reserved(), tail & POSITION_MASK, "reserved()");
        assert_eq!(
            ring.used_bytes(),
            tail.wrapping_sub(head) * G,
            "used_bytes()"
        );
    }
    drop(consumer);
    drop(open);
}
