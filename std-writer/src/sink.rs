//! Where the writer puts encoded records: the [`Sink`] trait.

use crate::format;
use std::io;

/// A run of whole, encoded frames with consecutive sequence numbers, as the writer hands them
/// to a [`Sink`]. It may hold gap markers (see [`format`](crate::format)): frames that record
/// losses and carry the next record's sequence number without consuming it.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    bytes: &'a [u8],
    first_seq: u64,
    records: u64,
}

impl<'a> Batch<'a> {
    /// A batch over `bytes`, which must hold exactly `records` record frames (see
    /// [`format`](crate::format)) numbered from `first_seq`, and any gap markers among them. Checked: an invalid batch is an
    /// `InvalidInput` error, not a panic later.
    ///
    /// ```
    /// let mut bytes = Vec::new();
    /// ringwal::format::encode_frame(&mut bytes, 5, 0, b"a");
    /// ringwal::format::encode_frame(&mut bytes, 6, 0, b"bc");
    /// let batch = ringwal::Batch::new(&bytes, 5, 2).unwrap();
    /// assert_eq!(batch.frames().map(|f| f.payload.len()).collect::<Vec<_>>(), [1, 2]);
    /// assert!(ringwal::Batch::new(&bytes, 5, 3).is_err());
    /// ```
    pub fn new(bytes: &'a [u8], first_seq: u64, records: u64) -> io::Result<Self> {
        let mut offset = 0;
        let mut seq = first_seq;
        while offset < bytes.len() {
            match format::decode_frame(&bytes[offset..]) {
                Ok((frame, _)) if frame.preamble => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "batch: a preamble frame at offset {offset} (the log writes those, \
                             see SegmentPreamble)"
                        ),
                    ))
                }
                Ok((frame, used)) if frame.seq == seq => {
                    offset += used;
                    if !frame.marker {
                        seq = seq.wrapping_add(1);
                    }
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("batch: no valid frame for record {seq} at offset {offset}"),
                    ))
                }
            }
        }
        if seq.wrapping_sub(first_seq) != records {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "batch: record count does not match its frames",
            ));
        }
        Ok(Batch {
            bytes,
            first_seq,
            records,
        })
    }

    /// Trusted constructor for the writer, which built the frames itself.
    pub(crate) fn from_writer(bytes: &'a [u8], first_seq: u64, records: u64) -> Self {
        Batch {
            bytes,
            first_seq,
            records,
        }
    }

    /// The encoded frames, back to back.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The first frame's sequence number.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// How many record frames (gap markers not counted).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The frames, decoded (the writer encoded them, so they are valid), gap markers
    /// included ([`Frame::marker`](format::Frame::marker)).
    pub fn frames(&self) -> impl Iterator<Item = format::Frame<'a>> + 'a {
        let mut rest = self.bytes;
        std::iter::from_fn(move || {
            let (frame, used) = format::decode_frame(rest).ok()?;
            rest = &rest[used..];
            Some(frame)
        })
    }

    /// Frame boundaries: `(offset, size)` of each frame in [`bytes`](Self::bytes).
    pub fn frame_spans(&self) -> impl Iterator<Item = (usize, usize)> + 'a {
        let bytes = self.bytes;
        let mut offset = 0;
        std::iter::from_fn(move || {
            let size = format::frame_size(bytes.get(offset..)?).ok()?;
            let span = (offset, size);
            offset += size;
            Some(span)
        })
    }
}

/// Storage for the writer: append batches of frames, make them durable.
///
/// The segmented file log ([`SegmentLog`](crate::SegmentLog)) is the default. Implement this to
/// send records elsewhere (your log system), or to inject faults in tests. The writer calls it
/// from its one thread only.
///
/// # The contract the writer relies on
///
/// - [`next_seq`](Self::next_seq) is the sequence number the next appended record must have:
///   the batch the writer passes to `append` always starts there.
/// - `append` either appends the whole batch, or fails; after a failure, `next_seq` says how
///   far the sink got (usually: where it was before the call).
/// - `sync` makes everything appended so far durable, or fails. After a failed sync nothing
///   since the last successful sync may be assumed durable (a failed `fsync` can lose dirty
///   pages and a retry can then "succeed"): the sink rolls back to a point it can vouch for
///   and reports it through `next_seq`. It must never go back past the last successful `sync`.
///
/// After any error the writer asks `next_seq` and appends again from there, from the records
/// it still holds, so nothing is written twice and nothing accepted is lost. (Under
/// `SyncPolicy::Never` the writer keeps no copy after a successful append: a sink that then
/// rolls back further loses those records, and the writer counts them as dropped.)
///
/// ```
/// use ringwal::{Batch, Sink};
/// use std::io;
///
/// /// Keeps records in memory.
/// #[derive(Default)]
/// struct Memory { frames: Vec<u8>, next: u64 }
///
/// impl Sink for Memory {
///     fn next_seq(&self) -> u64 { self.next }
///     fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
///         self.frames.extend_from_slice(batch.bytes());
///         self.next = batch.first_seq() + batch.records();
///         Ok(())
///     }
///     fn sync(&mut self) -> io::Result<()> { Ok(()) }
/// }
///
/// let (writer, emitter) = ringwal::Writer::builder("unused-with-a-sink")
///     .capacity(64).start_with_sink::<&'static str, _>(Memory::default())
///     .unwrap();
/// emitter.emit("hi").unwrap();
/// let report = writer.shutdown().unwrap();
/// assert_eq!(report.persisted, 1);
/// ```
pub trait Sink: Send + 'static {
    /// The sequence number the next appended record must have. At most `u64::MAX / 2` when
    /// the writer starts (else `start_with_sink` refuses the sink), as for a log on disk.
    fn next_seq(&self) -> u64;

    /// Appends the whole batch, or fails (see the trait docs for what a failure must leave).
    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()>;

    /// Makes everything appended durable, or fails (see the trait docs).
    fn sync(&mut self) -> io::Result<()>;

    /// How many segments (files) the sink holds, for [`Stats`](crate::Stats). 1 by default.
    fn segments(&self) -> usize {
        1
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn next_seq(&self) -> u64 {
        (**self).next_seq()
    }
    fn append(&mut self, batch: &Batch<'_>) -> io::Result<()> {
        (**self).append(batch)
    }
    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }
    fn segments(&self) -> usize {
        (**self).segments()
    }
}
