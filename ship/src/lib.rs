//! Ships a [ringwal] log directory to NATS JetStream, exactly once, surviving
//! crashes and outages.
//!
//! A [`Shipper`] follows a log directory (also while a writer appends to it, across segment
//! rotation) and publishes each record to a [`Destination`] — [`JetStream`] here — with a
//! bounded window of unacknowledged publishes. What it guarantees, and how:
//!
//! - **Each record in the stream once, in log order.** Every publish carries
//!   `Nats-Msg-Id` = `<log id>:<seq>` (the log's id is 128 random bits in `LOG-ID`, made on
//!   first use: see [`ringwal::checkpoint`]), so the stream drops a copy sent inside its
//!   duplicate window; every message also carries the cursor after it (`Ringwal-Next`), and on
//!   start and after every failure the shipper reads the subject's last message and goes on
//!   from there, so a restart after the window has passed sends nothing twice either. Each
//!   publish names the previous one as the stream's expected last message, so a retry never
//!   lands after a later record.
//! - **A durable cursor.** The highest acknowledged prefix, in `ship-<name>.checkpoint`
//!   (written atomically and fsynced, at most every N acks or T ms). It also holds back the
//!   writer's `Retain::Segments` retention; `Retain::Bytes` is a hard bound that deletes
//!   regardless, and the records it deletes unshipped are counted, reported and shipped as a
//!   lost-records message.
//! - **Outages** (connection lost, server restarting, slow acks): capped exponential
//!   backoff with jitter, for ever, dropping nothing; the log on disk is the buffer, and the
//!   writer never waits for the shipper.
//! - **Refusals for good** (larger than `max_payload` or the stream's `max_msg_size`) go to
//!   `ship-<name>.dead` with the reason, counted, never retried, never skipped silently.
//! - **Loss accounting**: events dropped or refused at emit travel as headers of the next
//!   record (`Ringwal-Dropped-Before`, `Ringwal-Refused-Before`) or as a gap message, so the
//!   consumer sees what `ringwal cat` shows.
//! - **Damage** in the log stops the shipper with an error naming file and offset; nothing
//!   damaged is shipped.
//!
//! ```no_run
//! use ringwal_ship::{JetStream, JetStreamOptions, Options, Shipper};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut nats = JetStreamOptions::new("nats://127.0.0.1:4222", "app.events");
//!     nats.stream = Some("APP_EVENTS".into());
//!     nats.create_stream = true;
//!     let destination = JetStream::connect(nats).await?;
//!     let options = Options { name: "app-events".into(), window: 256, ..Options::default() };
//!     let report = Shipper::new("/var/log/app", destination, options)
//!         .run(async { let _ = tokio::signal::ctrl_c().await; })
//!         .await?;
//!     println!("cursor at {}", report.status.cursor);
//!     Ok(())
//! }
//! ```
//!
//! What "exactly once" covers, and what it does not: see the README's section "Shipping to
//! NATS JetStream".

#![warn(missing_docs)]

mod backoff;
mod destination;
mod files;
mod jetstream;
mod message;
mod metrics;
mod options;
mod shipper;
mod tail;

pub use destination::{Acked, Destination, Resume, SendError, SendErrorKind};
pub use jetstream::{
    JetStream, JetStreamAck, JetStreamOptions, HEADER_DROPPED, HEADER_GAP, HEADER_LOG, HEADER_LOST,
    HEADER_NEXT, HEADER_REFUSED, HEADER_SEQ,
};
pub use message::{Kind, Outgoing};
pub use metrics::{lag_bytes, Metrics, Status};
pub use options::{Options, Report, ShipError};
pub use shipper::Shipper;
