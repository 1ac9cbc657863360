//! A sink whose appends wait while its gate is shut (so the ring fills and stays full for as
//! long as a test wants), then keep the payloads, fail or panic as the test set it; a waker
//! that counts its wakes; and filling a gated writer's ring. Shared by the async tests, which
//! include this file with `#[path]`.

use ringwal::{Batch, EmitError, Emitter, Sink};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// The sink: give it a gate (`GateSink { next: 0, gate: gate.clone() }`).
pub struct GateSink {
    pub next: u64,
    pub gate: Gate,
}

#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<GateState>, Condvar)>);

#[derive(Default)]
pub struct GateState {
    pub shut: bool,
    /// An append is waiting at the shut gate (the writer is stuck there).
    pub waiting: bool,
    /// Appends fail (ENOSPC-like) after the gate.
    pub fail: bool,
    /// Appends panic after the gate (the writer thread dies).
    pub panic: bool,
    pub payloads: Vec<Vec<u8>>,
}

impl Gate {
    pub fn shut() -> Self {
        let gate = Gate::default();
        gate.state().shut = true;
        gate
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn open(&self) {
        self.state().shut = false;
        self.0 .1.notify_all();
    }

    /// Whether the writer is waiting at the shut gate (then nothing leaves the ring).
    pub fn writer_stuck(&self) -> bool {
        self.state().waiting
    }

    pub fn payloads(&self) -> Vec<Vec<u8>> {
        self.state().payloads.clone()
    }
}

impl Sink for GateSink {
    fn next_seq(&self) -> u64 {
        self.next
    }

    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        let (lock, cv) = &*self.gate.0;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        while state.shut {
            state.waiting = true;
            state = cv.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting = false;
        if state.panic {
            drop(state);
            panic!("the test's sink panics");
        }
        if state.fail {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "injected"));
        }
        state.payloads.extend(
            batch
                .frames()
                .filter(|f| !f.marker)
                .map(|f| f.payload.to_vec()),
        );
        self.next = batch.first_seq() + batch.records();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
pub struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    pub fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn counting_waker() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (count.clone(), Waker::from(count))
}

/// Polls `f` once with `waker`.
pub fn poll_once<F: Future>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

/// Fills the ring of a shut-gate writer under `Block`: emits (1,000,000, 1,000,001, ...) until
/// the writer is stuck at the gate (with the first events) and an emit finds the ring full;
/// that one is handed back (counted as rejected). From then on the ring stays full until the
/// gate opens. Returns how many were accepted; panics if the ring never stays full in 10 s.
pub fn fill(emitter: &Emitter<u64>, gate: &Gate) -> u64 {
    let (_, waker) = counting_waker();
    let mut accepted = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the ring never stayed full"
        );
        let stuck = gate.writer_stuck();
        let mut emit = pin!(emitter.emit_async(1_000_000 + accepted));
        match poll_once(emit.as_mut(), &waker) {
            Poll::Ready(Ok(())) => accepted += 1,
            Poll::Ready(Err(e)) => panic!("refused: {e}"),
            Poll::Pending => {
                let back = emit.as_mut().cancel();
                assert!(matches!(back, Some(EmitError::Full(_))));
                if stuck {
                    return accepted;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}
