//! The queues under comparison, each behind the same small trait, driven only through its
//! non-blocking calls (a failed push hands the value back; a failed pop returns nothing).

use crossbeam_queue::ArrayQueue;
use ringwal_core::{
    Consumer, Evict, EvictingRing, Full, LaneProducer, Lanes, LanesConsumer, Producer, Receiver,
    Ring, SoloProducer,
};
use std::sync::mpsc;

/// Capacity of every queue.
pub const CAP: usize = 4096;

/// What the queues carry: a value that names its producer and its sequence number, so the
/// consumer can check count and per-producer order cheaply.
pub trait Item: Copy + Default + Send + Sync + 'static {
    fn make(producer: usize, seq: u64) -> Self;
    fn producer(&self) -> usize;
    fn seq(&self) -> u64;
}

const SEQ_BITS: u32 = 48;

impl Item for u64 {
    #[inline(always)]
    fn make(producer: usize, seq: u64) -> Self {
        (producer as u64) << SEQ_BITS | seq
    }
    #[inline(always)]
    fn producer(&self) -> usize {
        (*self >> SEQ_BITS) as usize
    }
    #[inline(always)]
    fn seq(&self) -> u64 {
        *self & ((1 << SEQ_BITS) - 1)
    }
}

/// A 64-byte payload: `[u8; 64]` in a newtype only because `[u8; 64]` has no `Default`, which
/// thingbuf requires. Same size and layout for every peer.
#[derive(Clone, Copy)]
pub struct Payload(pub [u8; 64]);

impl Default for Payload {
    fn default() -> Self {
        Payload([0; 64])
    }
}

impl Item for Payload {
    #[inline(always)]
    fn make(producer: usize, seq: u64) -> Self {
        let mut bytes = [producer as u8; 64];
        bytes[..8].copy_from_slice(&seq.to_le_bytes());
        Payload(bytes)
    }
    #[inline(always)]
    fn producer(&self) -> usize {
        self.0[8] as usize
    }
    #[inline(always)]
    fn seq(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().unwrap())
    }
}

/// A bounded queue seen through its non-blocking calls. The implementor owns the queue;
/// `split` hands out a producer handle and the consumer handle, which may borrow it.
pub trait Queue<T: Item>: Sized {
    const NAME: &'static str;
    /// False when the queue allows only one producer handle (rtrb).
    const MULTI_PRODUCER: bool = true;
    type Tx<'a>: Send
    where
        Self: 'a;
    type Rx<'a>: Send
    where
        Self: 'a;

    fn new() -> Self;
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>);
    /// Another producer handle (only called when `MULTI_PRODUCER`).
    fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a>;
    /// Pushes, or hands the value back when the queue is full.
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T>;
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T>;

    /// Takes what the consumer takes in one go, calling `f` for each value; returns how many.
    /// One `try_pop` for every peer except the "ringwal (drain)" entry.
    #[inline(always)]
    fn take(rx: &mut Self::Rx<'_>, f: impl FnMut(T)) -> usize {
        take_one(Self::try_pop(rx), f)
    }
}

/// Hands `value` to `f` if there is one; how many (0 or 1).
#[inline(always)]
fn take_one<T>(value: Option<T>, f: impl FnMut(T)) -> usize {
    usize::from(value.map(f).is_some())
}

/// ringwal's `Ring`: `try_push`, and the consumer's `pop` (or, with `DRAIN`, its `drain()`
/// iterator, which pops what is ready, up to one ring's worth).
pub struct Ringwal<T, const DRAIN: bool>(Box<Ring<T, CAP>>);

impl<T: Item, const DRAIN: bool> Queue<T> for Ringwal<T, DRAIN> {
    const NAME: &'static str = if DRAIN {
        "ringwal Ring (drain)"
    } else {
        "ringwal Ring (pop)"
    };
    type Tx<'a> = &'a Ring<T, CAP>;
    type Rx<'a> = Consumer<'a, T, CAP>;

    fn new() -> Self {
        Ringwal(Box::default())
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        let ring: &Ring<T, CAP> = &self.0;
        (ring, ring.consumer().expect("first consumer"))
    }
    fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a> {
        tx
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.try_push(value).map_err(|Full(v)| v)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        // The never-waiting pop, like the peers' `try_recv`; the harness retries.
        rx.try_pop().ok()
    }
    #[inline(always)]
    fn take(rx: &mut Self::Rx<'_>, f: impl FnMut(T)) -> usize {
        if DRAIN {
            rx.drain().map(f).count()
        } else {
            take_one(Self::try_pop(rx), f)
        }
    }
}

/// ringwal's `Ring` split into its solo producer and its consumer (`Ring::split`): the
/// single-producer form, whose push is a plain store (no read-modify-write), and the consumer's
/// `try_pop`.
pub struct RingwalSolo<T>(Box<Ring<T, CAP>>);

impl<T: Item> Queue<T> for RingwalSolo<T> {
    const NAME: &'static str = "ringwal Ring::split (solo producer, SPSC)";
    const MULTI_PRODUCER: bool = false;
    type Tx<'a> = SoloProducer<'a, T, CAP>;
    type Rx<'a> = Consumer<'a, T, CAP>;

    fn new() -> Self {
        RingwalSolo(Box::default())
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        self.0.split()
    }
    fn clone_tx<'a>(_: &Self::Tx<'a>) -> Self::Tx<'a> {
        unreachable!("a split ring has one producer")
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.try_push(value).map_err(|Full(v)| v)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        rx.try_pop().ok()
    }
}

/// Lanes of ringwal's [`Lanes`]: as many as the most producers any scenario runs.
pub const LANES: usize = 4;
/// Slots per lane: `CAP` in all, as every other queue (a producer alone can fill only its own
/// lane, a quarter of that).
pub const LANE_CAP: usize = CAP / LANES;

/// ringwal's `Lanes`: a ring per producer handle (each push the solo push, no read-modify-write),
/// the consumer taking from the lanes in turn: one `try_pop` per call, or with `DRAIN` its
/// `drain()` (throughput scenarios only, as `Ring (drain)`). Order per producer only.
pub struct RingwalLanes<T, const DRAIN: bool>(Box<Lanes<T, LANE_CAP, LANES>>);

impl<T: Item, const DRAIN: bool> Queue<T> for RingwalLanes<T, DRAIN> {
    const NAME: &'static str = if DRAIN {
        "ringwal Lanes (drain)"
    } else {
        "ringwal Lanes (pop)"
    };
    type Tx<'a> = LaneProducer<'a, T, LANE_CAP, LANES>;
    type Rx<'a> = LanesConsumer<'a, T, LANE_CAP, LANES>;

    fn new() -> Self {
        RingwalLanes(Box::default())
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        let lanes: &Lanes<T, LANE_CAP, LANES> = &self.0;
        (
            lanes.producer().expect("a free lane"),
            lanes.consumer().expect("first consumer"),
        )
    }
    fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a> {
        tx.lanes().producer().expect("at most LANES producers")
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.try_push(value).map_err(|Full(v)| v)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        rx.try_pop().ok()
    }
    #[inline(always)]
    fn take(rx: &mut Self::Rx<'_>, f: impl FnMut(T)) -> usize {
        if DRAIN {
            rx.drain().map(f).count()
        } else {
            take_one(Self::try_pop(rx), f)
        }
    }
}

/// ringwal's `EvictingRing` (the ring with `force_push`, driven here through `try_push`, as the
/// other peers): its consumer claims runs of ready values with one compare-and-swap each. The
/// std writer's ring under `Overflow::DropOldest`.
pub struct RingwalEvicting<T>(Box<EvictingRing<T, CAP>>);

impl<T: Item> Queue<T> for RingwalEvicting<T> {
    const NAME: &'static str = "ringwal EvictingRing (pop)";
    type Tx<'a> = &'a EvictingRing<T, CAP>;
    type Rx<'a> = Consumer<'a, T, CAP, Evict>;

    fn new() -> Self {
        RingwalEvicting(Box::default())
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        let ring: &EvictingRing<T, CAP> = &self.0;
        (ring, ring.consumer().expect("first consumer"))
    }
    fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a> {
        tx
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.try_push(value).map_err(|Full(v)| v)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        rx.try_pop().ok()
    }
}

/// ringwal's heap ring of run-time capacity (`channel(4096)`): the same algorithm as `Ring`,
/// with the index mask read at run time. `try_push`, and the receiver's never-waiting `try_pop`.
pub struct RingwalChannel<T>(Option<(Producer<T>, Receiver<T>)>);

impl<T: Item> Queue<T> for RingwalChannel<T> {
    const NAME: &'static str = "ringwal channel (run-time capacity)";
    type Tx<'a> = Producer<T>;
    type Rx<'a> = Receiver<T>;

    fn new() -> Self {
        RingwalChannel(Some(ringwal_core::channel(std::hint::black_box(CAP))))
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        self.0.take().expect("split once")
    }
    fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a> {
        tx.clone()
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.try_push(value).map_err(|Full(v)| v)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        rx.try_pop().ok()
    }
}

/// A bounded channel peer driven by `try_send` / `try_recv`: std, crossbeam-channel and flume
/// have the same shape, differing only in their paths.
macro_rules! channel_peer {
    ($(#[$doc:meta])* $peer:ident, $name:literal, $sender:path, $receiver:path,
     $bounded:path, $error:ident) => {
        $(#[$doc])*
        pub struct $peer<T>(Option<($sender, $receiver)>);

        impl<T: Item> Queue<T> for $peer<T> {
            const NAME: &'static str = $name;
            type Tx<'a> = $sender;
            type Rx<'a> = $receiver;

            fn new() -> Self {
                $peer(Some($bounded(CAP)))
            }
            fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
                self.0.take().expect("split once")
            }
            fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a> {
                tx.clone()
            }
            #[inline(always)]
            fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
                match tx.try_send(value) {
                    Ok(()) => Ok(()),
                    Err($error::Full(v)) => Err(v),
                    Err($error::Disconnected(_)) => panic!("consumer gone"),
                }
            }
            #[inline(always)]
            fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
                rx.try_recv().ok()
            }
        }
    };
}

use crossbeam_channel::TrySendError as CbTrySendError;
use flume::TrySendError as FlumeTrySendError;
use mpsc::TrySendError as StdTrySendError;

channel_peer!(
    /// `std::sync::mpsc::sync_channel`: `try_send` / `try_recv`.
    StdSync, "std sync_channel", mpsc::SyncSender<T>, mpsc::Receiver<T>,
    mpsc::sync_channel, StdTrySendError
);
channel_peer!(
    /// `crossbeam_channel::bounded`: `try_send` / `try_recv`.
    CbChannel, "crossbeam-channel bounded", crossbeam_channel::Sender<T>,
    crossbeam_channel::Receiver<T>, crossbeam_channel::bounded, CbTrySendError
);
channel_peer!(
    /// `flume::bounded`: `try_send` / `try_recv`.
    Flume, "flume bounded", flume::Sender<T>, flume::Receiver<T>, flume::bounded,
    FlumeTrySendError
);

/// `crossbeam_queue::ArrayQueue`: `push` / `pop`.
pub struct CbArrayQueue<T>(ArrayQueue<T>);

impl<T: Item> Queue<T> for CbArrayQueue<T> {
    const NAME: &'static str = "crossbeam-queue ArrayQueue";
    type Tx<'a> = &'a ArrayQueue<T>;
    type Rx<'a> = &'a ArrayQueue<T>;

    fn new() -> Self {
        CbArrayQueue(ArrayQueue::new(CAP))
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        (&self.0, &self.0)
    }
    fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a> {
        tx
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.push(value)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        rx.pop()
    }
}

/// `thingbuf::ThingBuf` (its lock-free MPMC queue): `push` / `pop`.
pub struct Thingbuf<T>(thingbuf::ThingBuf<T>);

impl<T: Item> Queue<T> for Thingbuf<T> {
    const NAME: &'static str = "thingbuf ThingBuf";
    type Tx<'a> = &'a thingbuf::ThingBuf<T>;
    type Rx<'a> = &'a thingbuf::ThingBuf<T>;

    fn new() -> Self {
        Thingbuf(thingbuf::ThingBuf::new(CAP))
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        (&self.0, &self.0)
    }
    fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a> {
        tx
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.push(value).map_err(|full| full.into_inner())
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        rx.pop()
    }
}

/// `heapless::mpmc::Queue` (feature `mpmc_large`, which capacity 4096 needs: without it the
/// positions are `u8`): `enqueue` / `dequeue`.
pub struct Heapless<T>(Box<heapless::mpmc::Queue<T, CAP>>);

impl<T: Item> Queue<T> for Heapless<T> {
    const NAME: &'static str = "heapless mpmc::Queue";
    const MULTI_PRODUCER: bool = true;
    type Tx<'a> = &'a heapless::mpmc::Queue<T, CAP>;
    type Rx<'a> = &'a heapless::mpmc::Queue<T, CAP>;

    // heapless 0.9 deprecates `mpmc::Queue::new` because the queue is not lock-free (a
    // preempted thread can make others' calls fail until it runs; heapless#583); its docs allow
    // it where a failed call is retried, which is how every peer here is driven.
    #[expect(deprecated)]
    fn new() -> Self {
        Heapless(Box::new(heapless::mpmc::Queue::new()))
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        (&self.0, &self.0)
    }
    fn clone_tx<'a>(tx: &Self::Tx<'a>) -> Self::Tx<'a> {
        tx
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.enqueue(value)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        rx.dequeue()
    }
}

/// `rtrb::RingBuffer` (single producer only): `push` / `pop`.
pub struct Rtrb<T>(Option<(rtrb::Producer<T>, rtrb::Consumer<T>)>);

impl<T: Item> Queue<T> for Rtrb<T> {
    const NAME: &'static str = "rtrb RingBuffer (SPSC)";
    const MULTI_PRODUCER: bool = false;
    type Tx<'a> = rtrb::Producer<T>;
    type Rx<'a> = rtrb::Consumer<T>;

    fn new() -> Self {
        Rtrb(Some(rtrb::RingBuffer::new(CAP)))
    }
    fn split(&mut self) -> (Self::Tx<'_>, Self::Rx<'_>) {
        self.0.take().expect("split once")
    }
    fn clone_tx<'a>(_: &Self::Tx<'a>) -> Self::Tx<'a> {
        unreachable!("rtrb has one producer")
    }
    #[inline(always)]
    fn try_push(tx: &mut Self::Tx<'_>, value: T) -> Result<(), T> {
        tx.push(value).map_err(|rtrb::PushError::Full(v)| v)
    }
    #[inline(always)]
    fn try_pop(rx: &mut Self::Rx<'_>) -> Option<T> {
        rx.pop().ok()
    }
}

/// Checks, on a scratch queue, that heapless holds 4096 and refuses an enqueue when full
/// (heapless 0.8's `MpMcQueue` spun forever there with `N >= 256`, rust-embedded/heapless#461):
/// on a thread with a deadline, so a regression fails the run instead of hanging it.
pub fn heapless_check() -> String {
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        // Deprecated in 0.9 (not lock-free, heapless#583); see `Heapless::new`.
        #[expect(deprecated)]
        let q: Box<heapless::mpmc::Queue<u64, CAP>> = Box::new(heapless::mpmc::Queue::new());
        for i in 0..CAP as u64 {
            q.enqueue(i).expect("below capacity");
        }
        let refused = q.enqueue(0).is_err();
        let _ = done.send(refused);
    });
    match wait.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(true) => {}
        Ok(false) => panic!("a full heapless queue of {CAP} accepted a value"),
        Err(_) => panic!(
            "heapless: enqueue on a full queue of {CAP} did not return in 10 s \
             (rust-embedded/heapless#461 is back?)"
        ),
    }
    format!(
        "heapless {}: mpmc::Queue at capacity {CAP} (feature mpmc_large), in every scenario; \
         checked at start that a full queue refuses an enqueue (0.8's hung there, \
         rust-embedded/heapless#461)",
        crate::versions::of("heapless")
    )
}
