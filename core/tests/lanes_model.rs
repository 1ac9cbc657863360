//! Property tests for `Lanes`: random single-threaded sequences of claims and drops of producer
//! handles, pushes, pops, drains and consumer hand-offs, against a simple model — one
//! `VecDeque` per lane, which handle owns which lane, and the consumer's turn. Every value is
//! tracked, so a double drop or a leak fails the test (values left in the lanes are dropped with
//! them).

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;

use proptest::prelude::*;
use ringwal_core::{LaneProducer, Lanes, LanesConsumer, TryPopError};

/// Lanes, slots per lane, producer handles the test juggles (more than lanes).
const L: usize = 3;
const N: usize = 4;
const HANDLES: usize = 5;

#[derive(Debug)]
struct Tracked {
    id: u64,
    live: Rc<RefCell<BTreeSet<u64>>>,
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
    /// `producer()` into handle slot `h` (if that slot is empty).
    Claim(usize),
    /// Drops handle `h`.
    Release(usize),
    /// `try_push` through handle `h`.
    Push(usize),
    TryPop,
    Pop,
    /// Takes at most this many from a `drain()`.
    Drain(u8),
    /// Drops the consumer and claims a new one.
    Reclaim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..HANDLES).prop_map(Op::Claim),
        1 => (0..HANDLES).prop_map(Op::Release),
        6 => (0..HANDLES).prop_map(Op::Push),
        2 => Just(Op::TryPop),
        1 => Just(Op::Pop),
        2 => (0u8..16).prop_map(Op::Drain),
        1 => Just(Op::Reclaim),
    ]
}

struct Model {
    lanes: [VecDeque<u64>; L],
    owner: [Option<usize>; L],
    /// The lane of each handle slot.
    handle: [Option<usize>; HANDLES],
    /// The consumer's turn: the lane it looks at first, and how many values in a row it took
    /// from that lane (at `N`, the turn passes to the next lane).
    next: usize,
    streak: usize,
}

impl Model {
    fn take(&mut self) -> Option<u64> {
        let lane = (0..L)
            .map(|i| (self.next + i) % L)
            .find(|&lane| !self.lanes[lane].is_empty())?;
        if lane == self.next {
            self.streak += 1;
        } else {
            self.next = lane;
            self.streak = 1;
        }
        if self.streak == N {
            self.next = (lane + 1) % L;
            self.streak = 0;
        }
        self.lanes[lane].pop_front()
    }
}

fn run(ops: Vec<Op>) {
    let live = Rc::new(RefCell::new(BTreeSet::new()));
    let lanes: Lanes<Tracked, N, L> = Lanes::new();
    let mut model = Model {
        lanes: Default::default(),
        owner: [None; L],
        handle: [None; HANDLES],
        next: 0,
        streak: 0,
    };
    let mut handles: Vec<Option<LaneProducer<'_, Tracked, N, L>>> =
        (0..HANDLES).map(|_| None).collect();
    let mut rx: LanesConsumer<'_, Tracked, N, L> = lanes.consumer().unwrap();
    assert!(lanes.consumer().is_none(), "one consumer at a time");
    let mut id = 0;
    for op in ops {
        match op {
            Op::Claim(h) => {
                if handles[h].is_some() {
                    continue;
                }
                let want = model.owner.iter().position(Option::is_none);
                let got = lanes.producer();
                assert_eq!(got.as_ref().map(LaneProducer::lane), want);
                if let Some(lane) = want {
                    model.owner[lane] = Some(h);
                    model.handle[h] = Some(lane);
                }
                handles[h] = got;
            }
            Op::Release(h) => {
                if let Some(lane) = model.handle[h].take() {
                    model.owner[lane] = None;
                }
                handles[h] = None;
            }
            Op::Push(h) => {
                let Some(tx) = handles[h].as_mut() else {
                    continue;
                };
                let lane = model.handle[h].unwrap();
                id += 1;
                assert!(live.borrow_mut().insert(id));
                let value = Tracked {
                    id,
                    live: live.clone(),
                };
                match tx.try_push(value) {
                    Ok(()) => {
                        assert!(model.lanes[lane].len() < N, "pushed into a full lane");
                        model.lanes[lane].push_back(id);
                    }
                    Err(full) => {
                        assert_eq!(model.lanes[lane].len(), N, "refused with room");
                        assert_eq!(full.into_inner().id, id, "handed back untouched");
                    }
                }
            }
            Op::TryPop => {
                let want = model.take();
                match rx.try_pop() {
                    Ok(v) => assert_eq!(Some(v.id), want),
                    Err(e) => {
                        assert_eq!(want, None);
                        // One thread: nothing is ever mid-publish.
                        assert_eq!(e, TryPopError::Empty);
                    }
                }
            }
            Op::Pop => {
                let want = model.take();
                assert_eq!(rx.pop().map(|v| v.id), want);
            }
            Op::Drain(k) => {
                // The same turn as the pops, at most L * N values per drain.
                let want: Vec<u64> = (0..(k as usize).min(L * N))
                    .map_while(|_| model.take())
                    .collect();
                let got: Vec<u64> = rx.drain().take(k as usize).map(|v| v.id).collect();
                assert_eq!(got, want);
            }
            Op::Reclaim => {
                drop(rx);
                rx = lanes.consumer().unwrap();
                model.next = 0;
                model.streak = 0;
            }
        }
        let len: usize = model.lanes.iter().map(VecDeque::len).sum();
        assert_eq!(lanes.len(), len);
        assert_eq!(lanes.is_empty(), len == 0);
        let in_model: BTreeSet<u64> = model.lanes.iter().flatten().copied().collect();
        assert_eq!(
            *live.borrow(),
            in_model,
            "values alive = values in the lanes"
        );
    }
    drop(rx);
    drop(handles);
    drop(lanes);
    assert!(live.borrow().is_empty(), "every value dropped once");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 8 } else { 256 },
        // No regression files: Miri's isolation has no file system.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn lanes_match_the_model(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 60 } else { 400 })) {
        run(ops);
    }
}

/// A released lane keeps its values, in order, and its next owner appends after them (the
/// position hand-off), across several laps of a lane of `N` slots.
#[test]
fn a_lane_changes_hands_and_keeps_its_order() {
    let lanes: Lanes<u32, N, 2> = Lanes::new();
    let mut rx = lanes.consumer().unwrap();
    let mut next = 0u32;
    let mut expect = 0u32;
    for round in 0..10 {
        let mut tx = lanes.producer().unwrap();
        assert_eq!(tx.lane(), 0);
        for _ in 0..2 {
            tx.try_push(next).unwrap();
            next += 1;
        }
        drop(tx);
        // Every other round the lane changes hands with values still in it (up to N).
        if round % 2 == 1 {
            // Lane 1 stays empty: the consumer's turn steps over it.
            for v in rx.drain() {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
    }
    assert_eq!(expect, next);
}
