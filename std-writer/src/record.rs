//! What can be emitted: anything that can encode itself to bytes, on the writer thread.

/// An event the writer can persist. `encode` runs on the writer thread, never on the emitting
/// one: emitting a value only moves it into the ring.
///
/// `encode` appends the payload bytes to `out` (an empty, reused buffer; whatever `encode`
/// leaves in it is the payload). A payload longer than [`MAX_PAYLOAD`](crate::format::MAX_PAYLOAD) bytes is not
/// written; it counts as dropped and shows in the next record's `dropped_before`. So does a
/// record whose `encode` panics: the writer catches the panic and carries on.
///
/// Since it runs on the writer thread, `encode` must not wait for the writer: a `flush` (or
/// `FlushGuard`) on the same writer, or an `emit` under `Overflow::Block` into a full ring,
/// called from `encode` waits for work only the writer can do, which it cannot do while it
/// waits: a deadlock, ended only by the call's own timeout if it has one. A non-blocking
/// `emit` is fine.
///
/// Implemented for byte and string containers (`Vec<u8>`, `String`, `Box<[u8]>`, `Box<str>`,
/// `&'static str`, `&'static [u8]`, `[u8; N]`, `Cow<'static, str>`, `Cow<'static, [u8]>`,
/// `Arc<str>`, `Arc<[u8]>`: their bytes as they are) and for the integers (their
/// little-endian bytes; `usize` and `isize` as 8-byte `u64` and `i64`).
///
/// ```
/// use ringwal::Record;
///
/// struct Trade { id: u64, price_cents: i64 }
///
/// impl Record for Trade {
///     fn encode(&self, out: &mut Vec<u8>) {
///         out.extend_from_slice(&self.id.to_le_bytes());
///         out.extend_from_slice(&self.price_cents.to_le_bytes());
///     }
/// }
///
/// let mut out = Vec::new();
/// Trade { id: 7, price_cents: -5 }.encode(&mut out);
/// assert_eq!(out.len(), 16);
/// ```
pub trait Record: Send + 'static {
    /// Appends this record's payload to `out`.
    fn encode(&self, out: &mut Vec<u8>);
}

impl Record for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl Record for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl Record for Box<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl Record for Box<str> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl Record for &'static str {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl Record for &'static [u8] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> Record for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl Record for std::borrow::Cow<'static, str> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl Record for std::borrow::Cow<'static, [u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl Record for std::sync::Arc<str> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl Record for std::sync::Arc<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

// The integers encode as their little-endian bytes (`to_le_bytes`): a `u32` is 4 bytes, a
// `u128` 16. `usize` and `isize` are widened to `u64` and `i64` (8 bytes) so that a log reads
// the same on every platform.
macro_rules! integer_records {
    ($($int:ty),*) => {$(
        /// Its little-endian bytes (see the [`Record`] impls of the integers).
        impl Record for $int {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

integer_records!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

/// Widened to `u64`: 8 little-endian bytes on every platform.
impl Record for usize {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(*self as u64).to_le_bytes());
    }
}

/// Widened to `i64`: 8 little-endian bytes on every platform.
impl Record for isize {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(*self as i64).to_le_bytes());
    }
}
