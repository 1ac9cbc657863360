//! loom models of ringwal's concurrent code. The models are the integration tests in `tests/`,
//! compiled only under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p ringwal-loom-tests --release
//! ```
//!
//! Without `--cfg loom` this crate is empty and its tests compile to nothing, so a plain
//! `cargo test --workspace` stays fast; `.ci/run` runs the models explicitly.
