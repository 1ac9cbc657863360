//! What can be emitted: anything that can encode itself to bytes, on the writer thread.

/// An event the writer can persist. `encode` runs on the writer thread, never on the emitting
/// one: emitting a value only moves it into the ring.
///
/// `encode` appends the payload bytes to `out` (an empty, reused buffer; whatever `encode`
/// leaves in it is the payload). A payload longer than [`MAX_PAYLOAD`](crate::format::MAX_PAYLOAD) bytes is not
/// written; it counts as dropped and shows in the next record's `dropped_before`. So does a
/// record whose `encode` panics: the writer catches the panic and carries on.
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
