//! Property tests: random single-threaded operation sequences against a `VecDeque` model, for
//! capacities 2, 4 and 4096, through both front ends of the one ring algorithm (the inline
//! `Ring<T, N>` and the heap ring of `channel(capacity)`), over many laps and across the
//! `usize::MAX` wrap of the counters. Every value is tracked, so a double drop or a leak fails
//! the test.

use ringwal_core::atomic::AtomicUsize;
use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;

use proptest::prelude::*;
use ringwal_core::{channel_at, Consumer, Full, Producer, Receiver, Ring, TryPopError};

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
    /// Drops the consumer and claims a new one.
    Reclaim,
}

/// Bursts long enough to lap a ring of 4096 several times; shorter under Miri, which runs the
/// same paths (laps of the small rings) at a thousandth of the speed.
fn burst_max() -> u16 {
    if cfg!(miri) {
        300
    } else {
        6000
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::TryPush),
        3 => Just(Op::ForcePush),
        1 => (0u16..burst_max(), any::<bool>()).prop_map(|(count, force)| Op::Burst { count, force }),
        3 => Just(Op::Pop),
        2 => Just(Op::TryPop),
        2 => (0u16..burst_max()).prop_map(Op::Drain),
        1 => Just(Op::Reclaim),
    ]
}

fn start() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        (0usize..64).prop_map(|k| usize::MAX - k),
        any::<usize>(),
    ]
}

/// One front end of the ring, as the harness drives it.
trait Front {
    fn push(&self, v: Tracked, force: bool, in_flight: Option<&AtomicUsize>) -> Pushed;
    fn pop(&mut self) -> Option<Tracked>;
    fn try_pop(&mut self) -> Result<Tracked, TryPopError>;
    fn drain(&mut self, k: usize) -> Vec<u64>;
    fn evicted(&self) -> u64;
    /// Drops the consumer and claims a new one; false where a front end has no such hand-off
    /// (a `Receiver` is the one consumer of its channel for life).
    fn reclaim(&mut self) -> bool;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool;
    fn is_full(&self) -> bool;
    fn capacity(&self) -> usize;
}

enum Pushed {
    Forced(Option<Tracked>),
    Tried(Result<(), Full<Tracked>>),
}

struct Inline<'r, const N: usize> {
    ring: &'r Ring<Tracked, N>,
    consumer: Option<Consumer<'r, Tracked, N>>,
}

impl<const N: usize> Front for Inline<'_, N> {
    fn push(&self, v: Tracked, force: bool, in_flight: Option<&AtomicUsize>) -> Pushed {
        match (force, in_flight) {
            (true, Some(c)) => Pushed::Forced(self.ring.force_push_releasing(v, c)),
            (true, None) => Pushed::Forced(self.ring.force_push(v)),
            (false, Some(c)) => Pushed::Tried(self.ring.try_push_releasing(v, c)),
            (false, None) => Pushed::Tried(self.ring.try_push(v)),
        }
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
}

struct Heap {
    tx: Producer<Tracked>,
    rx: Receiver<Tracked>,
}

impl Front for Heap {
    fn push(&self, v: Tracked, force: bool, in_flight: Option<&AtomicUsize>) -> Pushed {
        match (force, in_flight) {
            (true, Some(c)) => Pushed::Forced(self.tx.force_push_releasing(v, c)),
            (true, None) => Pushed::Forced(self.tx.force_push(v)),
            (false, Some(c)) => Pushed::Tried(self.tx.try_push_releasing(v, c)),
            (false, None) => Pushed::Tried(self.tx.try_push(v)),
        }
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
}

struct Harness<F> {
    front: F,
    /// The capacity, `N`.
    cap: usize,
    model: VecDeque<u64>,
    /// Evictions no consumer has stepped over yet (in a single thread every eviction is of a
    /// position before the next value, so the next pop steps over all of them).
    evictions_pending: u64,
    /// What the current consumer's `evicted()` must say.
    evicted_seen: u64,
    next_id: u64,
    live: Rc<RefCell<BTreeSet<u64>>>,
}

impl<F: Front> Harness<F> {
    fn push(&mut self, force: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let value = Tracked::new(id, &self.live);
        // Every other push goes through the `_releasing` variant, which must behave the same
        // and decrement the in-flight counter exactly once, whatever the outcome.
        let in_flight = AtomicUsize::new(1);
        let releasing = id % 2 == 1;
        let check_released = |in_flight: &AtomicUsize| {
            let expected = if releasing { 0 } else { 1 };
            assert_eq!(
                in_flight.load(Ordering::Relaxed),
                expected,
                "in-flight counter"
            );
        };
        let counter = releasing.then_some(&in_flight);
        match self.front.push(value, force, counter) {
            Pushed::Forced(evicted) => {
                check_released(&in_flight);
                let expected = if self.model.len() == self.cap {
                    self.evictions_pending += 1;
                    self.model.pop_front()
                } else {
                    None
                };
                assert_eq!(
                    evicted.map(|v| v.id),
                    expected,
                    "force_push evicts the oldest"
                );
                self.model.push_back(id);
            }
            Pushed::Tried(pushed) => {
                check_released(&in_flight);
                match pushed {
                    Ok(()) => {
                        assert!(
                            self.model.len() < self.cap,
                            "try_push succeeded on a full ring"
                        );
                        self.model.push_back(id);
                    }
                    Err(Full(back)) => {
                        assert_eq!(
                            self.model.len(),
                            self.cap,
                            "try_push failed on a ring that had room"
                        );
                        assert_eq!(back.id, id, "Full returns the caller's value, untouched");
                    }
                }
            }
        }
    }

    /// After the consumer stepped: it has seen every eviction so far.
    fn check_consumer_count(&mut self) {
        self.evicted_seen += std::mem::take(&mut self.evictions_pending);
        let expected = self.evicted_seen;
        assert_eq!(self.front.evicted(), expected, "eviction count");
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
                assert_eq!(got, self.model.pop_front());
                self.check_consumer_count();
            }
            Op::TryPop => {
                let got = self.front.try_pop().map(|v| v.id);
                assert_eq!(got, self.model.pop_front().ok_or(TryPopError::Empty));
                self.check_consumer_count();
            }
            Op::Drain(k) => {
                let available = self.model.len();
                let got = self.front.drain(k as usize);
                let want: Vec<u64> = self.model.drain(..available.min(k as usize)).collect();
                assert_eq!(got, want);
                // With k == 0 the drain never stepped; the check after every op covers it.
                if k > 0 {
                    self.check_consumer_count();
                }
            }
            Op::Reclaim => {
                if self.front.reclaim() {
                    // A new count; evictions the old consumer had not stepped over are pending.
                    self.evicted_seen = 0;
                }
            }
        }
        let seen = self.evicted_seen;
        assert_eq!(
            self.front.evicted(),
            seen,
            "eviction count moved without a step"
        );
        assert_eq!(self.front.len(), self.model.len(), "len after {op:?}");
        assert_eq!(self.front.is_empty(), self.model.is_empty());
        assert_eq!(self.front.is_full(), self.model.len() == self.cap);
        assert_eq!(self.front.capacity(), self.cap);
        // Everything alive is either in the ring (the model) or nowhere: nothing leaked out.
        assert_eq!(
            self.live.borrow().len(),
            self.model.len(),
            "live values == queued values"
        );
    }
}

fn drive<F: Front>(front: F, cap: usize, live: &Rc<RefCell<BTreeSet<u64>>>, ops: &[Op]) {
    let mut h = Harness {
        front,
        cap,
        model: VecDeque::new(),
        evictions_pending: 0,
        evicted_seen: 0,
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

/// Runs `ops` on the inline ring of `N` slots and on a heap ring of `N` slots, both starting at
/// position `start`.
fn run<const N: usize>(start: usize, ops: &[Op]) {
    let live = Rc::new(RefCell::new(BTreeSet::new()));
    {
        let ring: Box<Ring<Tracked, N>> = Box::new(Ring::new_at(start));
        let front = Inline {
            ring: &ring,
            consumer: ring.consumer(),
        };
        drive(front, N, &live, ops);
    }
    assert!(
        live.borrow().is_empty(),
        "Ring::drop leaked {:?}",
        live.borrow()
    );
    let (tx, rx) = channel_at(N, start);
    drive(Heap { tx, rx }, N, &live, ops);
    assert!(
        live.borrow().is_empty(),
        "the heap ring's drop leaked {:?}",
        live.borrow()
    );
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 0..if cfg!(miri) { max / 8 } else { max })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn model_n2(start in start(), ops in ops(200)) {
        run::<2>(start, &ops);
    }

    #[test]
    fn model_n4(start in start(), ops in ops(200)) {
        run::<4>(start, &ops);
    }

    #[test]
    fn model_n4096(start in start(), ops in ops(60)) {
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
    run::<2>(usize::MAX - 7, &ops);
    run::<4>(usize::MAX - 7, &ops);
}
