//! The shipper's settings, its errors and its final report.

use crate::destination::SendError;
use crate::metrics::Status;
use ringwal::checkpoint::Checkpoint;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

/// Settings of a [`Shipper`](crate::Shipper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The shipper's name: its checkpoint is `ship-<name>.checkpoint` in the log directory,
    /// its dead letters `ship-<name>.dead`, its lock `ship-<name>.lock`. One shipper per name
    /// runs at a time. 1 to 64 characters of `A-Z a-z 0-9 . _ -`. Default `"default"`.
    pub name: String,
    /// Publishes awaiting their ack, at most (1 to 65,536; capped at the destination's own
    /// bound, [`Destination::window_limit`](crate::Destination::window_limit)). Default 256.
    pub window: usize,
    /// Write the checkpoint after this many acks (at least 1)... Default 1024.
    pub checkpoint_every: u64,
    /// ... or this long after the first ack it does not cover, whichever comes first (at least
    /// 1 ms). Default 200 ms. A checkpoint is written off the publishing path.
    pub checkpoint_interval: Duration,
    /// At the end of the log, the reader looks again after 100 µs, doubling up to this
    /// (100 µs to 10 s). Default 10 ms.
    pub poll_max: Duration,
    /// The first retry after a failure waits about this long, doubling (with jitter: a
    /// random half to all of it) up to `backoff_max`; reset by a successful ack. Default
    /// 50 ms.
    pub backoff_min: Duration,
    /// The longest wait between retries (at least `backoff_min`). Default 5 s.
    pub backoff_max: Duration,
    /// Return once everything in the log is acknowledged (the log's end when last looked),
    /// instead of following it until stopped. Default false.
    pub until_caught_up: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: "default".into(),
            window: 256,
            checkpoint_every: 1024,
            checkpoint_interval: Duration::from_millis(200),
            poll_max: Duration::from_millis(10),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            until_caught_up: false,
        }
    }
}

impl Options {
    /// Checks the settings; the error says which is wrong.
    pub fn check(&self) -> Result<(), String> {
        Checkpoint::path(Path::new("."), &self.name).map_err(|e| e.to_string())?;
        if !(1..=65_536).contains(&self.window) {
            return Err(format!("window {} is outside 1..=65536", self.window));
        }
        if self.checkpoint_every == 0 {
            return Err("checkpoint_every must be at least 1".into());
        }
        if self.checkpoint_interval < Duration::from_millis(1) {
            return Err("checkpoint_interval must be at least 1 ms".into());
        }
        if !(Duration::from_micros(100)..=Duration::from_secs(10)).contains(&self.poll_max) {
            return Err(format!(
                "poll_max {:?} is outside 100µs..=10s",
                self.poll_max
            ));
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return Err(format!(
                "backoff_min {:?} must be non-zero and at most backoff_max {:?}",
                self.backoff_min, self.backoff_max
            ));
        }
        if self.backoff_max > Duration::from_secs(3600) {
            return Err("backoff_max must be at most one hour".into());
        }
        Ok(())
    }
}

/// Why a shipper stopped.
#[derive(Debug)]
pub enum ShipError {
    /// A setting is out of range.
    Settings(String),
    /// The log directory: not a log, damage in a segment (file and offset), a bad checkpoint
    /// or log id file, another shipper of the same name running, a dead-letter file that
    /// cannot be written. Nothing after the damage is shipped.
    Log(io::Error),
    /// The destination failed for good ([`SendErrorKind::Fatal`](crate::SendErrorKind::Fatal)).
    Destination(SendError),
}

impl fmt::Display for ShipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShipError::Settings(e) => write!(f, "invalid settings: {e}"),
            ShipError::Log(e) => write!(f, "{e}"),
            ShipError::Destination(e) => write!(f, "destination: {e}"),
        }
    }
}

impl std::error::Error for ShipError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShipError::Log(e) => Some(e),
            ShipError::Destination(e) => Some(e),
            ShipError::Settings(_) => None,
        }
    }
}

impl From<io::Error> for ShipError {
    fn from(e: io::Error) -> Self {
        ShipError::Log(e)
    }
}

/// What a run did: its final [`Status`], and the error that ended it, if any.
#[derive(Debug)]
pub struct Report {
    /// The counters at the end; `status.cursor` is what the final checkpoint holds.
    pub status: Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        assert!(Options::default().check().is_ok());
        let bad = [
            Options {
                window: 0,
                ..Options::default()
            },
            Options {
                name: "a/b".into(),
                ..Options::default()
            },
            Options {
                checkpoint_every: 0,
                ..Options::default()
            },
            Options {
                poll_max: Duration::ZERO,
                ..Options::default()
            },
            Options {
                backoff_min: Duration::from_secs(9),
                ..Options::default()
            },
        ];
        for o in bad {
            assert!(o.check().is_err(), "{o:?}");
        }
    }
}
