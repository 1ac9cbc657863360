//! [`MakeWriter`]: the drop-in for `tracing_subscriber::fmt().with_writer(..)`.

use ringwal::ByteEmitter;
use std::io;

/// A `tracing_subscriber::fmt::MakeWriter` writing each formatted event as one record of the
/// log (formatted on the caller's thread, as with tracing-appender, then copied into the
/// ring: no allocation per event, no channel, no lock).
///
/// `fmt` formats an event into its own reused buffer and hands it over in one `write`; each
/// `write` call becomes one record, without its trailing newline (`ringwal cat` prints one per
/// line). A line the ring refuses follows the writer's overflow policy and is counted in the
/// log as a gap (never silently lost); a line longer than the ring's largest record is cut to
/// it and ends with `…[truncated]`.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let (_layer, guard) = ringwal_tracing::Builder::new(dir.path()).build().unwrap();
/// let subscriber = tracing_subscriber::fmt()
///     .with_writer(guard.make_writer())
///     .with_ansi(false)
///     .finish();
/// tracing::subscriber::with_default(subscriber, || tracing::info!(user = 42, "logged in"));
/// guard.shutdown().unwrap();
/// # let payloads: Vec<_> = ringwal::Reader::open(dir.path()).unwrap().iter()
/// #     .map(|e| e.unwrap().payload).collect();
/// # let line = String::from_utf8(payloads.last().unwrap().clone()).unwrap();
/// # assert!(line.ends_with("INFO rust_out: logged in user=42"), "{line}");
/// ```
#[derive(Clone, Debug)]
pub struct MakeWriter {
    emitter: ByteEmitter,
}

/// What [`MakeWriter`] makes for each event: one `write` is one record.
#[derive(Debug)]
pub struct EventWriter<'a> {
    emitter: &'a ByteEmitter,
}

const CUT: &[u8] = "…[truncated]".as_bytes();

impl MakeWriter {
    /// Writes through `emitter` (from a [`Guard`](crate::Guard), or a byte writer of your own).
    pub fn new(emitter: ByteEmitter) -> Self {
        MakeWriter { emitter }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeWriter {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter {
            emitter: &self.emitter,
        }
    }
}

impl io::Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = buf.strip_suffix(b"\n").unwrap_or(buf);
        let max = self.emitter.max_record_len();
        // Refusals are counted by the writer and recorded in the log as a gap: reporting
        // them here too would only make `fmt` print to stderr.
        let _ = if line.len() <= max {
            self.emitter.emit(line)
        } else {
            self.emitter.emit_with(max, |dst| {
                // Cut before a character that would not fit whole (`fmt` writes UTF-8: the
                // record stays UTF-8): back over at most 3 continuation bytes.
                // A ring whose largest record is shorter than the mark: the line's start only.
                let cut = if max >= CUT.len() { CUT } else { &[] };
                let mut keep = max - cut.len();
                while keep > 0 && line[keep] & 0xC0 == 0x80 {
                    keep -= 1;
                }
                dst[..keep].copy_from_slice(&line[..keep]);
                dst[keep..keep + cut.len()].copy_from_slice(cut);
                keep + cut.len()
            })
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
