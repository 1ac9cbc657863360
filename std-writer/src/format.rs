//! The on-disk format: segment files, their header, and record frames — `ringwal-core`'s
//! [`format`](ringwal_core::format) module (one implementation, `no_std`, shared with
//! firmware), re-exported here. The format is documented there.
//!
//! ```
//! use ringwal::format;
//!
//! let mut buf = Vec::new();
//! format::encode_frame(&mut buf, 7, 0, b"hello");
//! let (frame, used) = format::decode_frame(&buf).unwrap();
//! assert_eq!((frame.seq, frame.payload, used), (7, &b"hello"[..], buf.len()));
//! ```

pub use ringwal_core::format::*;
