//! Property tests: random single-threaded operation sequences against a simple model, for
//! capacities 2, 4 and 4096, through every front end of the one ring algorithm — the inline
//! `Ring<T, N>` with its shared pushes and with its `SoloProducer` (`split`), and the heap ring
//! of `channel(capacity)` with its relaxed and its `_checked` (sequentially consistent) pushes —
//! each in both modes (`NoEvict`, `Evict`), over many laps and across the wrap of the position
//! counters. Every value is tracked, so a double drop or a leak fails the test.
//!
//! The model: a `VecDeque` of the values in the slots and, for an evicting ring, a second one
//! for the consumer's staging buffer (a pop that finds it empty claims up to `STAGE` values
//! from the slots; `force_push` evicts the oldest value in the slots, never a staged one).

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;

use proptest::prelude::*;
use ringwal_core::{
    channel_at, Consumer, Evict, Full, Mode, NoEvict, Producer, PushError, Receiver, Ring,
    SoloProducer, TryPopError, POSITION_MASK, STAGE,
};

/// A value that registers itself while alive: dropping it twice or never fails the test.
#[derive(Debug)]
struct Tracked {
    id: u64,
    live: Rc<RefCell<BTreeSet<u64>>>,
}

impl Tracked {
    fn new(id: u64, live: &Rc<RefCell<BTreeSet<u64>>>) -> Self {
        assert!(live.borrow_mut().insert(id), "id {id} created twice");
        Tracked {
            id,
            live: live.clone(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert!(
            self.live.borrow_mut().remove(&self.id),
            "value {} dropped twice",
            self.id
        );
    }
}

#[derive(Debug, Clone)]
enum Op {
    TryPush,
    /// `force_push` (only on evicting rings; a `try_push` on the others).
    ForcePush,
    /// Pushes this many in a row (reaches many laps of N = 4096 in few steps).
    Burst {
        count: u16,
        force: bool,
    },
    Pop,
    /// `try_pop`: in one thread nothing is ever mid-publish, so never `Pending`.
    TryPop,
    /// Takes at most this many from a `drain()` and drops the iterator.
    Drain(u16),
    /// Drops the consumer and claims a new one (where the front end can).
    Reclaim,
    /// Closes the ring to producers (heap rings only): every later push is refused.
    Close,
}

/// Bursts long enough to lap a ring of `cap` slots a few times (a ring of 4096 included);
/// shorter under Miri, which runs the same paths (laps of the small rings) at a thousandth of
/// the speed.
fn burst_max(cap: usize) -> u16 {
    let laps = (cap * 3 / 2 + 8).min(6000) as u16;
    if cfg!(miri) {
        laps.min(300)
    } else {
        laps
    }
}

fn op(cap: usize) -> impl Strategy<Value = Op> {
    let burst_max = burst_max(cap);
    // Close is rare: everything after it only exercises refusals.
    prop_oneof![
        40 => Just(Op::TryPush),
        30 => Just(Op::ForcePush),
        10 => (0u16..burst_max, any::<bool>()).prop_map(|(count, force)| Op::Burst { count, force }),
        30 => Just(Op::Pop),
        20 => Just(Op::TryPop),
        20 => (0u16..burst_max).prop_map(Op::Drain),
        10 => Just(Op::Reclaim),
        1 => Just(Op::Close),
    ]
}

/// Where the counters start: 0, just before the wrap of the positions, or anywhere.
fn start() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        (0usize..64).prop_map(|k| POSITION_MASK - k),
        any::<usize>(),
    ]
}

/// What a push did, as the model sees it.
enum Pushed {
    /// `try_push`: stored, or refused with the caller's value.
    Tried(Result<(), Tracked>),
    /// `force_push`: stored (evicting the returned value, if any), or refused (closed).
    Forced(Result<Option<Tracked>, Tracked>),
}

/// One front end of the ring, as the harness drives it.
trait Front {
    const EVICTS: bool;
    fn push(&mut self, v: Tracked, force: bool, id: u64) -> Pushed;
    fn pop(&mut self) -> Option<Tracked>;
    fn try_pop(&mut self) -> Result<Tracked, TryPopError>;
    fn drain(&mut self, k: usize) -> Vec<u64>;
    fn evicted(&self) -> u64;
    /// Drops the consumer and claims a new one; false where a front end has no such hand-off
    /// (a `Receiver` is the one consumer of its channel for life).
    fn reclaim(&mut self) -> bool;
    /// Closes the ring; false where a front end cannot.
    fn close(&mut self) -> bool;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool;
    fn is_full(&self) -> bool;
    fn capacity(&self) -> usize;
    fn pushed(&self) -> usize;
    /// The consumer's position (values handed out plus evictions stepped over), where the front
    /// end tells it.
    fn position(&self) -> Option<usize> {
        None
    }
}

/// The push a shared front end makes: `force_push` where it may, `try_push` otherwise.
trait SharedPush<M: Mode> {
    fn push_into(&self, v: Tracked, force: bool, checked: bool) -> Pushed;
}

impl<const N: usize> SharedPush<NoEvict> for Ring<Tracked, N, NoEvict> {
    fn push_into(&self, v: Tracked, _force: bool, _checked: bool) -> Pushed {
        Pushed::Tried(self.try_push(v).map_err(Full::into_inner))
    }
}

impl<const N: usize> SharedPush<Evict> for Ring<Tracked, N, Evict> {
    fn push_into(&self, v: Tracked, force: bool, _checked: bool) -> Pushed {
        if force {
            Pushed::Forced(Ok(self.force_push(v)))
        } else {
            Pushed::Tried(self.try_push(v).map_err(Full::into_inner))
        }
    }
}

impl SharedPush<NoEvict> for Producer<Tracked, NoEvict> {
    fn push_into(&self, v: Tracked, _force: bool, checked: bool) -> Pushed {
        heap_try(self, v, checked)
    }
}

impl SharedPush<Evict> for Producer<Tracked, Evict> {
    fn push_into(&self, v: Tracked, force: bool, checked: bool) -> Pushed {
        match (force, checked) {
            (true, false) => Pushed::Forced(self.force_push(v)),
            (true, true) => Pushed::Forced(self.force_push_checked(v)),
            (false, _) => heap_try(self, v, checked),
        }
    }
}

fn heap_try<M: Mode>(tx: &Producer<Tracked, M>, v: Tracked, checked: bool) -> Pushed {
    if checked {
        let closed = tx.is_closed();
        Pushed::Tried(tx.try_push_checked(v).map_err(|e| {
            // The error names the reason: closed exactly when the channel is.
            assert_eq!(matches!(e, PushError::Closed(_)), closed, "{e:?}");
            e.into_inner()
        }))
    } else {
        Pushed::Tried(tx.try_push(v).map_err(Full::into_inner))
    }
}

struct Inline<'r, const N: usize, M: Mode> {
    ring: &'r Ring<Tracked, N, M>,
    consumer: Option<Consumer<'r, Tracked, N, M>>,
}

impl<const N: usize, M: Mode> Front for Inline<'_, N, M>
where
    Ring<Tracked, N, M>: SharedPush<M>,
{
    const EVICTS: bool = M::EVICTS;
    fn push(&mut self, v: Tracked, force: bool, _id: u64) -> Pushed {
        self.ring.push_into(v, force, false)
    }
    fn pop(&mut self) -> Option<Tracked> {
        self.consumer.as_mut().unwrap().pop()
    }
    fn try_pop(&mut self) -> Result<Tracked, TryPopError> {
        self.consumer.as_mut().unwrap().try_pop()
    }
    fn drain(&mut self, k: usize) -> Vec<u64> {
        let c = self.consumer.as_mut().unwrap();
        c.drain().take(k).map(|v| v.id).collect()
    }
    fn evicted(&self) -> u64 {
        self.consumer.as_ref().unwrap().evicted()
    }
    fn reclaim(&mut self) -> bool {
        assert!(
            self.ring.consumer().is_none(),
            "second consumer while one lives"
        );
        self.consumer = None;
        self.consumer = Some(self.ring.consumer().expect("claim after drop"));
        true
    }
    fn close(&mut self) -> bool {
        false
    }
    fn len(&self) -> usize {
        self.ring.len()
    }
    fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
    fn is_full(&self) -> bool {
        self.ring.is_full()
    }
    fn capacity(&self) -> usize {
        self.ring.capacity()
    }
    fn pushed(&self) -> usize {
        self.ring.pushed()
    }
}

/// The inline ring split into its solo producer and its consumer.
struct Solo<'r, const N: usize, M: Mode> {
    tx: SoloProducer<'r, Tracked, N, M>,
    consumer: Option<Consumer<'r, Tracked, N, M>>,
}

/// The solo producer's push, per mode.
trait SoloPush {
    fn solo_push(&mut self, v: Tracked, force: bool) -> Pushed;
}

impl<const N: usize> SoloPush for SoloProducer<'_, Tracked, N, NoEvict> {
    fn solo_push(&mut self, v: Tracked, _force: bool) -> Pushed {
        Pushed::Tried(self.try_push(v).map_err(Full::into_inner))
    }
}

impl<const N: usize> SoloPush for SoloProducer<'_, Tracked, N, Evict> {
    fn solo_push(&mut self, v: Tracked, force: bool) -> Pushed {
        if force {
            Pushed::Forced(Ok(self.force_push(v)))
        } else {
            Pushed::Tried(self.try_push(v).map_err(Full::into_inner))
        }
    }
}

impl<'r, const N: usize, M: Mode> Front for Solo<'r, N, M>
where
    SoloProducer<'r, Tracked, N, M>: SoloPush,
{
    const EVICTS: bool = M::EVICTS;
    fn push(&mut self, v: Tracked, force: bool, _id: u64) -> Pushed {
        self.tx.solo_push(v, force)
    }
    fn pop(&mut self) -> Option<Tracked> {
        self.consumer.as_mut().unwrap().pop()
    }
    fn try_pop(&mut self) -> Result<Tracked, TryPopError> {
        self.consumer.as_mut().unwrap().try_pop()
    }
    fn drain(&mut self, k: usize) -> Vec<u64> {
        let c = self.consumer.as_mut().unwrap();
        c.drain().take(k).map(|v| v.id).collect()
    }
    fn evicted(&self) -> u64 {
        self.consumer.as_ref().unwrap().evicted()
    }
    fn reclaim(&mut self) -> bool {
        let ring = self.tx.ring();
        assert!(ring.consumer().is_none(), "second consumer while one lives");
        self.consumer = None;
        self.consumer = Some(ring.consumer().expect("claim after drop"));
        true
    }
    fn close(&mut self) -> bool {
        false
    }
    fn len(&self) -> usize {
        self.tx.ring().len()
    }
    fn is_empty(&self) -> bool {
        self.tx.ring().is_empty()
    }
    fn is_full(&self) -> bool {
        self.tx.ring().is_full()
    }
    fn capacity(&self) -> usize {
        self.tx.ring().capacity()
    }
    fn pushed(&self) -> usize {
        assert_eq!(self.tx.pushed(), self.tx.ring().pushed());
        self.tx.pushed()
    }
}

struct Heap<M: Mode> {
    tx: Producer<Tracked, M>,
    rx: Receiver<Tracked, M>,
}

impl<M: Mode> Front for Heap<M>
where
    Producer<Tracked, M>: SharedPush<M>,
{
    const EVICTS: bool = M::EVICTS;
    fn push(&mut self, v: Tracked, force: bool, id: u64) -> Pushed {
        // Every other push goes through the `_checked` (SeqCst) variant, which must behave the
        // same apart from telling Closed from Full.
        self.tx.push_into(v, force, id % 2 == 1)
    }
    fn pop(&mut self) -> Option<Tracked> {
        self.rx.pop()
    }
    fn try_pop(&mut self) -> Result<Tracked, TryPopError> {
        self.rx.try_pop()
    }
    fn drain(&mut self, k: usize) -> Vec<u64> {
        self.rx.drain().take(k).map(|v| v.id).collect()
    }
    fn evicted(&self) -> u64 {
        self.rx.evicted()
    }
    fn reclaim(&mut self) -> bool {
        false
    }
    fn close(&mut self) -> bool {
        let before = self.tx.pushed();
        assert_eq!(self.tx.close(), before, "close returns the final position");
        assert!(self.tx.is_closed());
        true
    }
    fn len(&self) -> usize {
        assert_eq!(self.tx.len(), self.rx.len());
        self.tx.len()
    }
    fn is_empty(&self) -> bool {
        assert_eq!(self.tx.is_empty(), self.rx.is_empty());
        self.rx.is_empty()
    }
    fn is_full(&self) -> bool {
        self.tx.is_full()
    }
    fn capacity(&self) -> usize {
        assert_eq!(self.tx.capacity(), self.rx.capacity());
        self.tx.capacity()
    }
    fn pushed(&self) -> usize {
        assert_eq!(self.tx.pushed(), self.tx.pushed_seqcst());
        self.tx.pushed()
    }
    fn position(&self) -> Option<usize> {
        Some(self.rx.position())
    }
}

struct Harness<F> {
    front: F,
    /// The capacity, `N`.
    cap: usize,
    /// Values in the slots, oldest first.
    slots: VecDeque<u64>,
    /// Values the (evicting) consumer has claimed and not yet handed out.
    staged: VecDeque<u64>,
    /// Evictions no consumer has stepped over yet (in a single thread every eviction is of a
    /// position before the next run the consumer claims, so its next claim steps over all).
    evictions_pending: u64,
    /// What the current consumer's `evicted()` must say.
    evicted_seen: u64,
    /// Values handed out plus evictions stepped over, by every consumer so far.
    taken: usize,
    closed: bool,
    /// Positions claimed since the start (what `pushed()` counts).
    claimed: usize,
    start: usize,
    next_id: u64,
    live: Rc<RefCell<BTreeSet<u64>>>,
}

impl<F: Front> Harness<F> {
    fn push(&mut self, force: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let value = Tracked::new(id, &self.live);
        match self.front.push(value, force && F::EVICTS, id) {
            Pushed::Forced(result) => match result {
                Ok(evicted) => {
                    assert!(!self.closed, "force_push stored into a closed ring");
                    let expected = if self.slots.len() == self.cap {
                        self.evictions_pending += 1;
                        self.slots.pop_front()
                    } else {
                        None
                    };
                    assert_eq!(
                        evicted.map(|v| v.id),
                        expected,
                        "force_push evicts the oldest value in the slots"
                    );
                    self.slots.push_back(id);
                    self.claimed += 1;
                }
                Err(back) => {
                    assert!(self.closed, "force_push refused an open ring");
                    assert_eq!(back.id, id, "the caller's value comes back, untouched");
                }
            },
            Pushed::Tried(result) => match result {
                Ok(()) => {
                    assert!(!self.closed, "try_push stored into a closed ring");
                    assert!(
                        self.slots.len() < self.cap,
                        "try_push succeeded on a full ring"
                    );
                    self.slots.push_back(id);
                    self.claimed += 1;
                }
                Err(back) => {
                    assert!(
                        self.closed || self.slots.len() == self.cap,
                        "try_push failed on an open ring that had room"
                    );
                    assert_eq!(back.id, id, "Full returns the caller's value, untouched");
                }
            },
        }
    }

    /// The model's pop: an evicting consumer with nothing staged claims a run first (and steps
    /// over the evictions before it).
    fn model_pop(&mut self) -> Option<u64> {
        let got = if !F::EVICTS {
            self.slots.pop_front()
        } else {
            if self.staged.is_empty() {
                let stepped = std::mem::take(&mut self.evictions_pending);
                self.evicted_seen += stepped;
                self.taken += stepped as usize;
                let run = self.slots.len().min(STAGE);
                self.staged.extend(self.slots.drain(..run));
            }
            self.staged.pop_front()
        };
        self.taken += got.is_some() as usize;
        got
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::TryPush => self.push(false),
            Op::ForcePush => self.push(true),
            Op::Burst { count, force } => {
                for _ in 0..count {
                    self.push(force);
                }
            }
            Op::Pop => {
                let got = self.front.pop().map(|v| v.id);
                assert_eq!(got, self.model_pop());
            }
            Op::TryPop => {
                let got = self.front.try_pop().map(|v| v.id);
                assert_eq!(got, self.model_pop().ok_or(TryPopError::Empty));
            }
            Op::Drain(k) => {
                let got = self.front.drain(k as usize);
                // A drain yields at most one ring's worth.
                let want: Vec<u64> = (0..(k as usize).min(self.cap))
                    .map_while(|_| self.model_pop())
                    .collect();
                assert_eq!(got, want);
            }
            Op::Reclaim => {
                if self.front.reclaim() {
                    // A new count; evictions the old consumer had not stepped over are pending.
                    self.evicted_seen = 0;
                }
            }
            Op::Close => {
                if self.front.close() {
                    self.closed = true;
                }
            }
        }
        assert_eq!(
            self.front.evicted(),
            self.evicted_seen,
            "eviction count after {op:?}"
        );
        let queued = self.slots.len() + self.staged.len();
        assert_eq!(self.front.len(), queued, "len after {op:?}");
        assert_eq!(self.front.is_empty(), queued == 0);
        assert_eq!(self.front.is_full(), queued >= self.cap);
        assert_eq!(self.front.capacity(), self.cap);
        assert_eq!(
            self.front.pushed(),
            self.start.wrapping_add(self.claimed) & POSITION_MASK,
            "pushed() after {op:?}"
        );
        if let Some(position) = self.front.position() {
            assert_eq!(
                position,
                self.start.wrapping_add(self.taken) & POSITION_MASK,
                "position() after {op:?}"
            );
        }
        // Everything alive is in the ring (the model) or nowhere: nothing leaked out.
        assert_eq!(
            self.live.borrow().len(),
            queued,
            "live values == queued values"
        );
    }
}

fn drive<F: Front>(
    front: F,
    cap: usize,
    start: usize,
    live: &Rc<RefCell<BTreeSet<u64>>>,
    ops: &[Op],
) {
    let mut h = Harness {
        front,
        cap,
        slots: VecDeque::new(),
        staged: VecDeque::new(),
        evictions_pending: 0,
        evicted_seen: 0,
        taken: 0,
        closed: false,
        claimed: 0,
        start: start & POSITION_MASK,
        next_id: 0,
        live: live.clone(),
    };
    for op in ops {
        h.apply(op);
    }
    // The harness checked after every op that exactly the queued values are alive; dropping
    // the ring (the caller's job for the inline ring, `h`'s for the heap ring) must drop them.
    drop(h);
}

fn assert_all_dropped(live: &Rc<RefCell<BTreeSet<u64>>>, what: &str) {
    assert!(
        live.borrow().is_empty(),
        "{what}'s drop leaked {:?}",
        live.borrow()
    );
}

/// Runs `ops` on every front end of `N` slots in mode `M`, each starting at position `start`.
fn run_mode<const N: usize, M: Mode>(start: usize, ops: &[Op])
where
    Ring<Tracked, N, M>: SharedPush<M>,
    for<'r> SoloProducer<'r, Tracked, N, M>: SoloPush,
    Producer<Tracked, M>: SharedPush<M>,
{
    let live = Rc::new(RefCell::new(BTreeSet::new()));
    {
        let ring: Box<Ring<Tracked, N, M>> = Box::new(Ring::new_at(start));
        let front = Inline {
            ring: &ring,
            consumer: ring.consumer(),
        };
        drive(front, N, start, &live, ops);
    }
    assert_all_dropped(&live, "Ring");
    {
        let mut ring: Box<Ring<Tracked, N, M>> = Box::new(Ring::new_at(start));
        let (tx, consumer) = ring.split();
        drive(
            Solo {
                tx,
                consumer: Some(consumer),
            },
            N,
            start,
            &live,
            ops,
        );
    }
    assert_all_dropped(&live, "the split Ring");
    let (tx, rx) = channel_at::<Tracked, M>(N, start);
    drive(Heap { tx, rx }, N, start, &live, ops);
    assert_all_dropped(&live, "the heap ring");
}

fn run<const N: usize>(start: usize, ops: &[Op]) {
    run_mode::<N, NoEvict>(start, ops);
    run_mode::<N, Evict>(start, ops);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ops(cap: usize, max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(cap), 0..if cfg!(miri) { max / 8 } else { max })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn model_n2(start in start(), ops in ops(2, 200)) {
        run::<2>(start, &ops);
    }

    #[test]
    fn model_n4(start in start(), ops in ops(4, 200)) {
        run::<4>(start, &ops);
    }

    #[test]
    fn model_n64(start in start(), ops in ops(64, 200)) {
        run::<64>(start, &ops);
    }

    #[test]
    fn model_n4096(start in start(), ops in ops(4096, 60)) {
        run::<4096>(start, &ops);
    }
}

/// Many laps of a small ring with every kind of operation, deterministically, so that the lap
/// arithmetic is exercised far past what the random cases reach.
#[test]
fn many_laps_n2_and_n4() {
    let laps = if cfg!(miri) { 50 } else { 20_000 };
    let mut ops = Vec::new();
    for i in 0..laps {
        ops.push(Op::Burst {
            count: 3,
            force: i % 2 == 0,
        });
        ops.push(Op::Pop);
        ops.push(Op::Drain(1));
        ops.push(Op::TryPush);
        ops.push(Op::Drain(u16::MAX));
    }
    run::<2>(POSITION_MASK - 7, &ops);
    run::<4>(POSITION_MASK - 7, &ops);
}
