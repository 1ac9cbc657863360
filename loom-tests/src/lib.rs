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
