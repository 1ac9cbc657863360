//! loom models of ringwal's concurrent code. The models are the integration tests in `tests/`,
//! compiled only under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p ringwal-loom-tests --release -- --nocapture
//! ```
//!
//! Without `--cfg loom` this crate is empty and its tests compile to nothing, so a plain
//! `cargo test --workspace` stays fast; `.ci/run` runs the models explicitly.
//!
//! Each model prints how many executions loom explored and fails if it explored only one.
//! That check found a DPOR gap in loom 0.7.3 (tokio-rs/loom#392, generalised): loom tracks
//! only the last access to an atomic, so in `A: load(x) … B: load(x); B: store(x)` it never
//! tries B's store before A's load — the shape of every CAS loop. `ringwal-core`'s `sync` shim
//! works around it under `cfg(loom)` (every load also writes a private companion atomic, which
//! makes all accesses to one atomic mutually dependent for DPOR); see `core/src/sync.rs`.

/// Runs a model. `max_branches` is raised because the spin-then-yield loops make long paths;
/// `preemption_bound` is `None` (exhaustive) unless a model documents why it needs a bound.
/// `LOOM_MAX_PREEMPTIONS` in the environment overrides the bound.
///
/// Prints how many executions loom explored, so a model that silently stopped exploring
/// (one execution) is visible, and asserts it explored more than one.
#[cfg(loom)]
#[track_caller]
pub fn check(preemption_bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize as StdAtomic, Ordering as StdOrdering};
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = preemption_bound;
    }
    let executions = std::sync::Arc::new(StdAtomic::new(0));
    let counter = executions.clone();
    let started = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        f()
    });
    let n = executions.load(StdOrdering::Relaxed);
    println!(
        "loom: {n} executions in {:.1?} ({}, preemption bound {:?})",
        started.elapsed(),
        std::panic::Location::caller(),
        builder.preemption_bound
    );
    assert!(
        n > 1,
        "the model explored a single execution: is loom active?"
    );
}

/// The consumer's side of the "never `Pending`" models (a split ring's consumer, a `Lanes`
/// consumer) against one producer that pushes a value, then sets `pushed` (Release): one
/// `try_pop`, then, if it got nothing, one `pop`. Each look must give the value or nothing,
/// never `Pending`, and must see the value once the push happened-before it (`pushed` read
/// Acquire just before the look). Returns what the looks took.
#[cfg(loom)]
pub fn look_twice_never_pending<R>(
    rx: &mut R,
    pushed: &loom::sync::atomic::AtomicBool,
    try_pop: fn(&mut R) -> Result<u32, ringwal_core::TryPopError>,
    pop: fn(&mut R) -> Option<u32>,
) -> Vec<u32> {
    use loom::sync::atomic::Ordering;
    let mut got = Vec::new();
    // Acquire (both loads) pairs with the producer's Release store of `pushed`.
    let before = pushed.load(Ordering::Acquire);
    match try_pop(rx) {
        Ok(v) => got.push(v),
        Err(e) => {
            assert_eq!(e, ringwal_core::TryPopError::Empty, "never Pending");
            assert!(!before, "try_pop missed a push that happened before it");
        }
    }
    if got.is_empty() {
        let before = pushed.load(Ordering::Acquire);
        match pop(rx) {
            Some(v) => got.push(v),
            None => assert!(!before, "pop missed a push that happened before it"),
        }
    }
    got
}
