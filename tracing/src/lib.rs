//! [`tracing`](https://docs.rs/tracing) and [`log`](https://docs.rs/log) into a ringwal log,
//! captured in binary on the emitting thread, formatted later.
//!
//! The [`Layer`] writes each event and span as a small binary record straight into the
//! writer's lock-free byte ring (the callsite's id, a timestamp, the thread, the current span,
//! the field values typed; the message and `Debug` values formatted into the record's own
//! bytes): no allocation, no lock, no channel, and under [`ringwal::Idle::Poll`] no syscall on
//! the emitting thread. Timestamps are read from the CPU's time-stamp counter where the kernel
//! keeps time with it, and tied to Unix time by clock records in the log ([`Builder::tsc`]). Each callsite's static metadata (level, target, name, file, line,
//! field names) is written once, the first time it is seen, and again at the start of every
//! segment the writer creates (its preamble), with the spans open at that point, so a reader
//! starting at any segment — after rotation, or once retention deleted the oldest — decodes
//! what follows and shows it in its spans. The writer thread persists the
//! records to ringwal's crash-safe segmented log; `ringwal cat DIR` renders them as
//! `tracing_subscriber::fmt` would (text or JSON), and [`Decoder`] reads them in programs.
//! Nothing is lost silently: what the ring refuses is counted in the log where it happened.
//!
//! The two-line setup:
//!
//! ```no_run
//! let _guard = ringwal_tracing::init("logs")?; // flushes and stops the writer when dropped
//! tracing::info!(user = 42, order = %"A-17", "order filled");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Also: [`MakeWriter`] for `tracing_subscriber::fmt().with_writer(..)` (formatted on the
//! caller's thread, each line one record, no allocation, no silent loss), and [`Logger`], a
//! `log::Log` with the layer's binary capture.
//!
//! Without the default features (`subscriber`, `log`) the crate is only the decoder.

#![warn(missing_docs)]

#[cfg(feature = "subscriber")]
mod callsites;
mod clock;
mod decode;
#[cfg(feature = "subscriber")]
mod guard;
#[cfg(feature = "subscriber")]
mod layer;
#[cfg(feature = "log")]
mod logger;
#[cfg(feature = "subscriber")]
mod make_writer;
#[cfg(feature = "subscriber")]
mod open_spans;
mod render;
mod wire;

pub use decode::{Callsite, DecodeError, Decoder, Event, Field, Record, Span, Value};
#[cfg(feature = "subscriber")]
pub use guard::{init, Builder, Guard, DEFAULT_RING_BYTES};
#[cfg(feature = "subscriber")]
pub use layer::{Layer, DEFAULT_EVENT_BYTES};
#[cfg(feature = "log")]
pub use logger::Logger;
#[cfg(feature = "subscriber")]
pub use make_writer::{EventWriter, MakeWriter};
pub use render::{json_str, write_timestamp};
pub use tracing_core::Level;
pub use wire::is_tracing_record;
