//! Property tests of the byte ring: random single-threaded sequences of reserve / commit /
//! commit_len / discard / forgotten grants / read / batch read / forgotten records / consumer
//! hand-off, checked step by step against a model (a `VecDeque` of reservations and the space
//! accounting the docs specify: a header granule per record, payload rounded up to 8 bytes,
//! padding at the end of the buffer). Lengths include 0, the maximum and one past it. Rings of
//! 64, 256 and 4096 bytes, through both front ends (the inline `ByteRing` and the heap
//! `byte_channel`), started at position 0, at random positions, and just before the wrap of
//! the counters (positions wrap at 2^(`usize::BITS` - 1) granules, as the slot ring's).

use std::collections::VecDeque;

use proptest::prelude::*;
use ringwal_core::{
    byte_channel_at, Batch, ByteConsumer, ByteProducer, ByteReceiver, ByteRing, Grant, Record,
    ReserveError, TryPopError, POSITION_MASK,
};

const GRANULE: usize = 8;

/// The producing side of either front end.
trait Ends {
    fn reserve(&self, len: usize) -> Result<Grant<'_>, ReserveError>;
    /// `try_reserve_checked` (the heap ring; the inline ring has only `try_reserve`).
    fn reserve_checked(&self, len: usize) -> Result<Grant<'_>, ReserveError>;
    /// `close()`, where the front end has it (the heap ring).
    fn close(&self) -> Option<usize>;
    fn is_closed(&self) -> bool;
    fn push(&self, bytes: &[u8]) -> Result<(), ReserveError>;
    fn capacity(&self) -> usize;
    fn max_len(&self) -> usize;
    fn used(&self) -> usize;
    fn reserved(&self) -> usize;
}

impl<const B: usize> Ends for ByteRing<B> {
    fn reserve(&self, len: usize) -> Result<Grant<'_>, ReserveError> {
        self.try_reserve(len)
    }
    fn reserve_checked(&self, len: usize) -> Result<Grant<'_>, ReserveError> {
        self.try_reserve(len)
    }
    fn close(&self) -> Option<usize> {
        None
    }
    fn is_closed(&self) -> bool {
        false
    }
    fn push(&self, bytes: &[u8]) -> Result<(), ReserveError> {
        self.try_push(bytes)
    }
    fn capacity(&self) -> usize {
        ByteRing::capacity(self)
    }
    fn max_len(&self) -> usize {
        self.max_record_len()
    }
    fn used(&self) -> usize {
        self.used_bytes()
    }
    fn reserved(&self) -> usize {
        ByteRing::reserved(self)
    }
}

impl Ends for ByteProducer {
    fn reserve(&self, len: usize) -> Result<Grant<'_>, ReserveError> {
        self.try_reserve(len)
    }
    fn reserve_checked(&self, len: usize) -> Result<Grant<'_>, ReserveError> {
        self.try_reserve_checked(len)
    }
    fn close(&self) -> Option<usize> {
        Some(ByteProducer::close(self))
    }
    fn is_closed(&self) -> bool {
        ByteProducer::is_closed(self)
    }
    fn push(&self, bytes: &[u8]) -> Result<(), ReserveError> {
        self.try_push(bytes)
    }
    fn capacity(&self) -> usize {
        ByteProducer::capacity(self)
    }
    fn max_len(&self) -> usize {
        self.max_record_len()
    }
    fn used(&self) -> usize {
        self.used_bytes()
    }
    fn reserved(&self) -> usize {
        ByteProducer::reserved(self)
    }
}

/// The consuming side of either front end.
trait Reader {
    fn read(&mut self) -> Result<Record<'_>, TryPopError>;
    fn batch(&mut self, max: usize) -> Result<Batch<'_>, TryPopError>;
    fn position(&self) -> usize;
}

impl Reader for ByteConsumer<'_> {
    fn read(&mut self) -> Result<Record<'_>, TryPopError> {
        ByteConsumer::read(self)
    }
    fn batch(&mut self, max: usize) -> Result<Batch<'_>, TryPopError> {
        self.read_batch(max)
    }
    fn position(&self) -> usize {
        ByteConsumer::position(self)
    }
}

impl Reader for ByteReceiver {
    fn read(&mut self) -> Result<Record<'_>, TryPopError> {
        ByteReceiver::read(self)
    }
    fn batch(&mut self, max: usize) -> Result<Batch<'_>, TryPopError> {
        self.read_batch(max)
    }
    fn position(&self) -> usize {
        ByteReceiver::position(self)
    }
}

/// How an op picks a record length.
#[derive(Debug, Clone, Copy)]
enum Len {
    Zero,
    Max,
    TooLong,
    /// `n % (max + 1)`.
    Any(u16),
    /// 1..=16 bytes: many records per lap.
    Small(u8),
}

impl Len {
    fn pick(self, max: usize) -> usize {
        match self {
            Len::Zero => 0,
            Len::Max => max,
            Len::TooLong => max + 1,
            Len::Any(n) => usize::from(n) % (max + 1),
            Len::Small(n) => (usize::from(n) % 16 + 1).min(max),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Reserves and keeps the grant open.
    Reserve(Len),
    /// The same with `try_reserve_checked` (the std writer's claim).
    ReserveChecked(Len),
    /// Closes the ring to producers (heap ring), if the number is below 16 (so that most runs
    /// close late or never): every reservation after it is `Closed`, reads go on.
    Close(u8),
    /// `try_push`: reserve, copy, commit.
    Push(Len),
    /// Commits the open grant picked by the index (modulo how many are open).
    Commit(usize),
    /// Commits the first `fraction / 255` of it.
    CommitLen(usize, u8),
    /// Drops it (discard).
    Discard(usize),
    /// `mem::forget`s it: the consumer stalls there for good (and the ring may fill up).
    Forget(usize),
    Read,
    /// Reads a record and forgets it: the next read must return it again.
    ReadForget,
    /// A batch capped at this many payload bytes (`u16::MAX`: no cap).
    Batch(u16),
    /// Drops the consumer and claims a new one (inline ring only).
    Reclaim,
    /// Pushes and reads this many records of this length in a row (many laps in few steps).
    Burst(u16, Len),
}

fn len() -> impl Strategy<Value = Len> {
    prop_oneof![
        1 => Just(Len::Zero),
        1 => Just(Len::Max),
        1 => Just(Len::TooLong),
        3 => any::<u16>().prop_map(Len::Any),
        3 => any::<u8>().prop_map(Len::Small),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => len().prop_map(Op::Reserve),
        2 => len().prop_map(Op::ReserveChecked),
        1 => any::<u8>().prop_map(Op::Close),
        4 => len().prop_map(Op::Push),
        3 => any::<usize>().prop_map(Op::Commit),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, f)| Op::CommitLen(i, f)),
        2 => any::<usize>().prop_map(Op::Discard),
        1 => any::<usize>().prop_map(Op::Forget),
        4 => Just(Op::Read),
        1 => Just(Op::ReadForget),
        3 => prop_oneof![Just(u16::MAX), any::<u16>()].prop_map(Op::Batch),
        1 => Just(Op::Reclaim),
        1 => (0..burst_max(), len()).prop_map(|(n, l)| Op::Burst(n, l)),
    ]
}

/// Bursts long enough to lap the 4096-byte ring many times; short under Miri.
fn burst_max() -> u16 {
    if cfg!(miri) {
        8
    } else {
        600
    }
}

/// Where the counters start: 0, anywhere, or a few granules before the wrap of positions
/// (their top bit is ignored: `usize::MAX - k` is `POSITION_MASK - k`).
fn start() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        any::<usize>(),
        (0usize..64).prop_map(|k| usize::MAX - k),
        (0usize..64).prop_map(|k| POSITION_MASK - k),
    ]
}

/// The bytes of record `id`, `len` long.
fn content(id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (id.wrapping_mul(131).wrapping_add(i as u64 * 7)) as u8)
        .collect()
}

#[derive(Debug)]
enum State {
    Open { len: usize },
    Committed(Vec<u8>),
    Skipped,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    /// Position after the entry (padding before it included).
    end: usize,
    state: State,
}

/// The specification: reservations in order, and the space accounting in granules.
struct Model {
    granules: usize,
    max_len: usize,
    head: usize,
    tail: usize,
    closed: bool,
    entries: VecDeque<Entry>,
}

impl Model {
    fn new(capacity: usize, start: usize) -> Self {
        Model {
            granules: capacity / GRANULE,
            max_len: capacity / 2 - GRANULE,
            head: start,
            tail: start,
            closed: false,
            entries: VecDeque::new(),
        }
    }

    /// What `try_reserve(len)` must do.
    fn reserve(&mut self, id: u64, len: usize) -> Result<(), ReserveError> {
        if len > self.max_len {
            return Err(ReserveError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        if self.closed {
            return Err(ReserveError::Closed);
        }
        let span = 1 + len.div_ceil(GRANULE);
        let to_end = self.granules - (self.tail % self.granules);
        let pad = if span > to_end { to_end } else { 0 };
        let used = self.tail.wrapping_sub(self.head);
        if pad + span > self.granules - used {
            return Err(ReserveError::Full);
        }
        if pad != 0 {
            // The padding is published at once, as a skip the consumer may step over (and
            // release) while the record itself is still open.
            self.entries.push_back(Entry {
                id: u64::MAX,
                end: self.tail.wrapping_add(pad),
                state: State::Skipped,
            });
        }
        self.tail = self.tail.wrapping_add(pad + span);
        self.entries.push_back(Entry {
            id,
            end: self.tail,
            state: State::Open { len },
        });
        Ok(())
    }

    fn entry(&mut self, id: u64) -> &mut Entry {
        self.entries
            .iter_mut()
            .find(|e| e.id == id)
            .expect("open grant in the model")
    }

    /// A shortened commit: the record ends earlier, and its unused granules become a skip
    /// entry of their own (the consumer releases them when it steps over them, not with the
    /// record).
    fn commit_len(&mut self, id: u64, reserved: usize, bytes: Vec<u8>) {
        let span = |len: usize| 1 + len.div_ceil(GRANULE);
        let i = self.entries.iter().position(|e| e.id == id).unwrap();
        let end = self.entries[i].end;
        let record_end = end
            .wrapping_sub(span(reserved))
            .wrapping_add(span(bytes.len()));
        self.entries[i].state = State::Committed(bytes);
        if record_end != end {
            self.entries[i].end = record_end;
            self.entries.insert(
                i + 1,
                Entry {
                    id: u64::MAX,
                    end,
                    state: State::Skipped,
                },
            );
        }
    }

    /// Steps over skipped entries at the front (what the consumer releases on its way).
    fn skip_front(&mut self) {
        while let Some(Entry {
            state: State::Skipped,
            end,
            ..
        }) = self.entries.front()
        {
            self.head = *end;
            self.entries.pop_front();
        }
    }

    /// Why there is nothing to read at the front (after `skip_front`).
    fn why_not(&self) -> TryPopError {
        match self.entries.front() {
            None => TryPopError::Empty,
            Some(_) => TryPopError::Pending,
        }
    }

    /// What `read()` must return (and release).
    fn read(&mut self) -> Result<Vec<u8>, TryPopError> {
        self.skip_front();
        match self.entries.front() {
            Some(Entry {
                state: State::Committed(_),
                ..
            }) => {
                let e = self.entries.pop_front().unwrap();
                self.head = e.end;
                let State::Committed(bytes) = e.state else {
                    unreachable!()
                };
                Ok(bytes)
            }
            _ => Err(self.why_not()),
        }
    }

    /// What `read()` must return without releasing it (a forgotten record).
    /// (The skips before it are not released either; but when there is no record to return,
    /// `read` releases them before saying why.)
    fn peek(&mut self) -> Result<Vec<u8>, TryPopError> {
        let first = self
            .entries
            .iter()
            .find(|e| !matches!(e.state, State::Skipped));
        match first {
            Some(Entry {
                state: State::Committed(b),
                ..
            }) => Ok(b.clone()),
            _ => {
                self.skip_front();
                Err(self.why_not())
            }
        }
    }

    /// What `read_batch(max)` must return (and release).
    fn batch(&mut self, max: usize) -> Result<Vec<Vec<u8>>, TryPopError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        // Skips and records, as the ring walks them; the skips before the first unpublished
        // position are released with the batch (or at once when it is empty).
        loop {
            match self.entries.front() {
                Some(Entry {
                    state: State::Skipped,
                    end,
                    ..
                }) => {
                    self.head = *end;
                    self.entries.pop_front();
                }
                Some(Entry {
                    state: State::Committed(b),
                    end,
                    ..
                }) => {
                    if !out.is_empty() && bytes + b.len() > max {
                        break;
                    }
                    bytes += b.len();
                    out.push(b.clone());
                    self.head = *end;
                    self.entries.pop_front();
                }
                _ => break,
            }
        }
        if out.is_empty() {
            Err(self.why_not())
        } else {
            Ok(out)
        }
    }
}

/// Runs `ops` against `ends`, a reader, and the model. `reclaim` replaces the reader with a
/// fresh one (None: this front end has a single permanent receiver).
fn run<'r, P: Ends, R: Reader + 'r>(
    ends: &'r P,
    mut reader: R,
    mut reclaim: Option<&mut dyn FnMut(R) -> R>,
    start: usize,
    ops: &[Op],
) {
    let cap = ends.capacity();
    let max = ends.max_len();
    assert_eq!(max, cap / 2 - GRANULE);
    let mut model = Model::new(cap, start);
    let mut open: Vec<(u64, Grant<'r>)> = Vec::new();
    let mut next_id = 0u64;

    for op in ops {
        match *op {
            Op::Reserve(l) | Op::ReserveChecked(l) => {
                let len = l.pick(max);
                let id = next_id;
                next_id += 1;
                let got = if matches!(op, Op::Reserve(_)) {
                    ends.reserve(len)
                } else {
                    ends.reserve_checked(len)
                };
                assert_eq!(
                    got.as_ref().map(|_| ()).map_err(|e| *e),
                    model.reserve(id, len),
                    "try_reserve({len})"
                );
                if let Ok(mut grant) = got {
                    assert_eq!(grant.len(), len);
                    assert!(grant.iter().all(|&b| b == 0), "a grant starts zeroed");
                    grant.copy_from_slice(&content(id, len));
                    open.push((id, grant));
                }
            }
            Op::Push(l) => {
                let len = l.pick(max);
                let id = next_id;
                next_id += 1;
                let bytes = content(id, len);
                let expected = model.reserve(id, len);
                assert_eq!(ends.push(&bytes), expected, "try_push({len})");
                if expected.is_ok() {
                    model.entry(id).state = State::Committed(bytes);
                }
            }
            Op::Commit(i) | Op::CommitLen(i, _) | Op::Discard(i) | Op::Forget(i) => {
                if open.is_empty() {
                    continue;
                }
                let (id, grant) = open.remove(i % open.len());
                let State::Open { len } = model.entry(id).state else {
                    panic!("grant {id} not open in the model")
                };
                match *op {
                    Op::Commit(_) => {
                        model.entry(id).state = State::Committed(content(id, len));
                        grant.commit();
                    }
                    Op::CommitLen(_, fraction) => {
                        let n = len * usize::from(fraction) / 255;
                        model.commit_len(id, len, content(id, n));
                        grant.commit_len(n);
                    }
                    Op::Discard(_) => {
                        model.entry(id).state = State::Skipped;
                        drop(grant);
                    }
                    _ => std::mem::forget(grant), // stays Open in the model: a stall
                }
            }
            Op::Read => {
                let expected = model.read();
                match reader.read() {
                    Ok(record) => assert_eq!(Ok(record.to_vec()), expected, "read"),
                    Err(e) => assert_eq!(Err(e), expected, "read"),
                }
            }
            Op::ReadForget => {
                let expected = model.peek();
                match reader.read() {
                    Ok(record) => {
                        assert_eq!(Ok(record.to_vec()), expected, "read (forgotten)");
                        std::mem::forget(record);
                    }
                    Err(e) => assert_eq!(Err(e), expected, "read (forgotten)"),
                }
            }
            Op::Batch(m) => {
                let max_bytes = if m == u16::MAX {
                    usize::MAX
                } else {
                    usize::from(m) % (cap + 1)
                };
                let expected = model.batch(max_bytes);
                match reader.batch(max_bytes) {
                    Ok(batch) => {
                        let got: Vec<Vec<u8>> = batch.iter().map(<[u8]>::to_vec).collect();
                        // Iterating again gives the same records (nothing is released yet).
                        let again: Vec<Vec<u8>> =
                            (&batch).into_iter().map(<[u8]>::to_vec).collect();
                        assert_eq!(got, again);
                        assert_eq!(batch.len(), got.len());
                        assert_eq!(batch.iter().len(), got.len());
                        assert_eq!(batch.payload_len(), got.iter().map(Vec::len).sum::<usize>());
                        if Ok(&got) != expected.as_ref() {
                            // Not released: a broken batch could corrupt the ring on release.
                            std::mem::forget(batch);
                            panic!("read_batch({max_bytes}): {got:?}, expected {expected:?}");
                        }
                    }
                    Err(e) => assert_eq!(Err(e), expected, "read_batch({max_bytes})"),
                }
            }
            Op::Close(n) => {
                if n < 16 {
                    if let Some(end) = ends.close() {
                        assert_eq!(end, model.tail & POSITION_MASK, "close()'s final position");
                        model.closed = true;
                    }
                }
                assert_eq!(ends.is_closed(), model.closed, "is_closed()");
            }
            Op::Reclaim => {
                if let Some(f) = reclaim.as_mut() {
                    reader = f(reader);
                }
            }
            Op::Burst(n, l) => {
                for _ in 0..n {
                    let len = l.pick(max);
                    let id = next_id;
                    next_id += 1;
                    let bytes = content(id, len);
                    let expected = model.reserve(id, len);
                    assert_eq!(ends.push(&bytes), expected, "burst try_push({len})");
                    if expected.is_ok() {
                        model.entry(id).state = State::Committed(bytes);
                    }
                    let expected = model.read();
                    match reader.read() {
                        Ok(record) => assert_eq!(Ok(record.to_vec()), expected, "burst read"),
                        Err(e) => assert_eq!(Err(e), expected, "burst read"),
                    }
                }
            }
        }
        // Quiescent: the snapshots are exact (positions modulo 2^(usize::BITS - 1)).
        assert_eq!(ends.reserved(), model.tail & POSITION_MASK, "reserved()");
        assert_eq!(
            reader.position(),
            model.head & POSITION_MASK,
            "consumer position"
        );
        assert_eq!(
            ends.used(),
            model.tail.wrapping_sub(model.head) * GRANULE,
            "used_bytes()"
        );
    }
    // Drop the open grants (discards) and read everything that can still be read.
    for (id, grant) in open.drain(..) {
        model.entry(id).state = State::Skipped;
        drop(grant);
    }
    loop {
        let expected = model.read();
        match reader.read() {
            Ok(record) => assert_eq!(Ok(record.to_vec()), expected, "final read"),
            Err(e) => {
                assert_eq!(Err(e), expected, "final read");
                break;
            }
        }
    }
}

fn run_inline<const B: usize>(start: usize, ops: &[Op]) {
    let ring: Box<ByteRing<B>> = Box::new(ByteRing::new_at(start));
    let consumer = ring.consumer().expect("first consumer");
    let mut reclaim = |old: ByteConsumer<'_>| {
        drop(old);
        ring.consumer().expect("free after the drop")
    };
    // `ring` outlives the closure's uses: both borrow it shared.
    let ring_ref: &ByteRing<B> = &ring;
    run(ring_ref, consumer, Some(&mut reclaim), start, ops);
}

fn run_heap(capacity: usize, start: usize, ops: &[Op]) {
    let (tx, rx) = byte_channel_at(capacity, start);
    run(&tx, rx, None, start, ops);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 0..if cfg!(miri) { 30 } else { 300 })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inline_64(start in start(), ops in ops()) {
        run_inline::<64>(start, &ops);
    }

    #[test]
    fn inline_256(start in start(), ops in ops()) {
        run_inline::<256>(start, &ops);
    }

    #[test]
    fn inline_4096(start in start(), ops in ops()) {
        run_inline::<4096>(start, &ops);
    }

    #[test]
    fn heap_64(start in start(), ops in ops()) {
        run_heap(64, start, &ops);
    }

    #[test]
    fn heap_1024(start in start(), ops in ops()) {
        run_heap(1024, start, &ops);
    }
}

/// The smallest ring (16 bytes): only empty records fit, one granule each, two per lap.
#[test]
fn smallest_ring_holds_empty_records() {
    let ring: ByteRing<16> = ByteRing::new_at(usize::MAX);
    assert_eq!(ring.max_record_len(), 0);
    assert_eq!(
        ring.try_push(&[1]),
        Err(ReserveError::TooLarge { len: 1, max: 0 })
    );
    let mut c = ring.consumer().unwrap();
    for _ in 0..5 {
        ring.try_push(&[]).unwrap();
        ring.try_push(&[]).unwrap();
        assert_eq!(ring.try_push(&[]), Err(ReserveError::Full));
        assert_eq!(c.read_batch(usize::MAX).unwrap().len(), 2);
        assert_eq!(c.read().unwrap_err(), TryPopError::Empty);
    }
}

/// Padding: a record that does not fit before the end starts the next lap, and the consumer
/// steps over the padding; the record's bytes are contiguous.
#[test]
fn padding_at_the_end_of_the_buffer() {
    // 8 granules; start at granule 6 of the lap, two before the end, one lap before the wrap.
    let ring: ByteRing<64> = ByteRing::new_at(usize::MAX - 9);
    ring.try_push(&[7; 16]).unwrap(); // 3 granules: does not fit in 2, so 2 pad + 3
    assert_eq!(ring.used_bytes(), 5 * 8);
    assert_eq!(ring.reserved(), (POSITION_MASK - 9) + 5);
    let mut c = ring.consumer().unwrap();
    assert_eq!(&*c.read().unwrap(), &[7; 16]);
    assert!(ring.is_empty());
    // Now at granule 3 of the next lap, past the wrap of the counters.
    assert_eq!(c.position(), (POSITION_MASK - 9) + 5);
    ring.try_push(&[1; 24]).unwrap(); // 4 granules: fits 3..7
    ring.try_push(&[2; 8]).unwrap(); // 2 granules: 1 left before the end, so pad 1 + 2
    let batch = c.read_batch(usize::MAX).unwrap();
    let records: Vec<&[u8]> = batch.iter().collect();
    assert_eq!(records, [&[1; 24][..], &[2; 8][..]]);
}

/// A full ring: `Full`, never an overwrite, and room again once the consumer releases.
#[test]
fn full_until_released() {
    let ring: ByteRing<64> = ByteRing::new();
    ring.try_push(&[1; 24]).unwrap();
    ring.try_push(&[2; 24]).unwrap();
    assert_eq!(ring.try_push(&[]), Err(ReserveError::Full));
    let mut c = ring.consumer().unwrap();
    let first = c.read().unwrap();
    assert_eq!(
        ring.try_push(&[]),
        Err(ReserveError::Full),
        "not released yet"
    );
    drop(first);
    ring.try_push(&[3; 24]).unwrap();
    assert_eq!(&*c.read().unwrap(), &[2; 24]);
    assert_eq!(&*c.read().unwrap(), &[3; 24]);
}

/// A forgotten grant stalls the consumer (`Pending` for good), but nothing else breaks: other
/// producers fill the ring up, and dropping the ring is fine.
#[test]
fn forgotten_grant_stalls_but_is_sound() {
    let ring: ByteRing<64> = ByteRing::new();
    std::mem::forget(ring.try_reserve(8).unwrap());
    ring.try_push(b"behind").unwrap();
    let mut c = ring.consumer().unwrap();
    for _ in 0..3 {
        assert_eq!(c.read().unwrap_err(), TryPopError::Pending);
        assert_eq!(c.read_batch(usize::MAX).unwrap_err(), TryPopError::Pending);
    }
    // 4 of 8 granules used: one more 24-byte record (4 granules) fits, then nothing.
    ring.try_push(&[0; 24]).unwrap();
    assert_eq!(ring.try_push(&[]), Err(ReserveError::Full));
}

/// `commit_len` past the grant's length is a programming error: a panic that discards the
/// grant (the consumer steps over it), never a corrupt ring.
#[test]
fn commit_len_too_long_panics_and_discards() {
    let ring: ByteRing<64> = ByteRing::new();
    let grant = ring.try_reserve(4).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| grant.commit_len(5)));
    assert!(r.is_err());
    ring.try_push(b"next").unwrap();
    let mut c = ring.consumer().unwrap();
    assert_eq!(&*c.read().unwrap(), b"next");
    assert_eq!(c.read().unwrap_err(), TryPopError::Empty);
}

/// The error messages say what happened.
#[test]
fn error_messages() {
    assert_eq!(ReserveError::Full.to_string(), "byte ring is full");
    assert_eq!(ReserveError::Closed.to_string(), "byte ring is closed");
    assert_eq!(
        ReserveError::TooLarge { len: 9, max: 8 }.to_string(),
        "record of 9 bytes is longer than this ring's maximum of 8"
    );
}

/// Regression (found by the model test): a full ring whose last reservations are a padding
/// skip and a discarded grant. Walking the skips lands exactly one ring past the consumer, on
/// the granule of its own oldest record: the walk must stop there, not read that header again.
#[test]
fn walk_stops_one_ring_past_the_consumer() {
    let ring: ByteRing<64> = ByteRing::new(); // 8 granules
    let a = ring.try_reserve(0).unwrap(); // granule 0
    let b = ring.try_reserve(2).unwrap(); // granules 1-2
    ring.try_push(&[9; 9]).unwrap(); // granules 3-5
    a.commit();
    let mut c = ring.consumer().unwrap();
    assert_eq!(c.read_batch(usize::MAX).unwrap().len(), 1);
    b.commit();
    assert_eq!(&*c.read().unwrap(), &[0, 0]);
    // 2 granules left before the end: padding 6-7, then granules 0-2 of the next lap.
    ring.try_reserve(9).unwrap().discard();
    assert_eq!(
        ring.used_bytes(),
        64,
        "full: 5 granules reserved behind the record at 3"
    );
    let batch = c.read_batch(usize::MAX).unwrap();
    assert_eq!(batch.iter().collect::<Vec<_>>(), [&[9; 9][..]]);
    drop(batch);
    assert_eq!(c.position(), 11);
    assert!(ring.is_empty());
    assert_eq!(c.read().unwrap_err(), TryPopError::Empty);
}
