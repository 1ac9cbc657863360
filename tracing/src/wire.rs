//! The record format, and the encoder that writes it in place into a ring reservation.
//!
//! Every tracing record starts with a 4-byte tag: `0xFF 'T'`, the format version, and a byte
//! holding the kind (bits 0..4) and the *truncated* flag (bit 7). `0xFF` never starts UTF-8
//! text, so a tracing record is never mistaken for a text line (`MakeWriter`'s records are
//! text). Integers are little-endian. The bodies, by kind:
//!
//! | kind | body |
//! |---|---|
//! | 0 session | pid u32, start time ns u64 |
//! | 1 callsite | id u64, level u8, is_span u8, line u32 (`u32::MAX`: none), name, target, module, file (str16; module/file `0xFFFF`: none), field count u8, field names (str16) |
//! | 2 event | callsite u64, time u64, thread u64, span u64 (0: none), fields |
//! | 3 span opened | span u64, parent u64 (0: none), callsite u64, time u64, thread u64, fields |
//! | 4 span recorded | span u64, time u64, fields |
//! | 5 span closed | span u64, time u64 |
//! | 6 log | level u8, time u64, thread u64, line u32, target, module, file (str16), message (str32), then the record's key-values, each a name (str16) and a field's type byte and value |
//! | 7 clock (version 2) | ticks u64, Unix time ns u64, scale u64 (ns per 2³² ticks) |
//!
//! The two versions differ only in their times (kinds 2 to 6): in version 1 they are
//! nanoseconds since the Unix epoch; in version 2 they are ticks of the writing process's
//! clock, converted by the last clock record (kind 7) before them in the same session (see
//! `clock.rs`). The layer writes version 2 where it reads the time-stamp counter, version 1
//! elsewhere; the `log` backend always writes version 1.
//!
//! A field is its index in the callsite's field set (u8), a type byte and the value: u64, i64,
//! f64 (8 bytes), bool (1), str or debug-formatted text (str32: u32 length + UTF-8). A record
//! that did not fit its reservation keeps what fit, cut at a field (text cut at a character
//! boundary), and has the truncated flag set.

use std::fmt;

pub(crate) const MAGIC: [u8; 2] = [0xFF, b'T'];
/// The layer's records: times in clock ticks.
pub(crate) const VERSION: u8 = 2;
/// Times in Unix nanoseconds (the `log` backend's records; every record before version 2).
pub(crate) const VERSION_NS: u8 = 1;
pub(crate) const TRUNCATED: u8 = 0x80;
pub(crate) const HEADER: usize = 4;

pub(crate) const KIND_SESSION: u8 = 0;
pub(crate) const KIND_CALLSITE: u8 = 1;
pub(crate) const KIND_EVENT: u8 = 2;
pub(crate) const KIND_SPAN_NEW: u8 = 3;
pub(crate) const KIND_SPAN_RECORD: u8 = 4;
pub(crate) const KIND_SPAN_CLOSE: u8 = 5;
pub(crate) const KIND_LOG: u8 = 6;
pub(crate) const KIND_CLOCK: u8 = 7;

pub(crate) const T_U64: u8 = 0;
pub(crate) const T_I64: u8 = 1;
pub(crate) const T_F64: u8 = 2;
pub(crate) const T_BOOL: u8 = 3;
pub(crate) const T_STR: u8 = 4;
pub(crate) const T_DEBUG: u8 = 5;

pub(crate) const NONE16: u16 = 0xFFFF;
pub(crate) const NO_LINE: u32 = u32::MAX;

/// Whether `payload` is a tracing record (starts with the tag), whatever its version.
pub fn is_tracing_record(payload: &[u8]) -> bool {
    payload.starts_with(&MAGIC)
}

#[cfg(feature = "subscriber")]
pub(crate) fn level_byte(level: &tracing_core::Level) -> u8 {
    match *level {
        tracing_core::Level::TRACE => 0,
        tracing_core::Level::DEBUG => 1,
        tracing_core::Level::INFO => 2,
        tracing_core::Level::WARN => 3,
        tracing_core::Level::ERROR => 4,
    }
}

/// Writes a record into a fixed slice (the ring's reservation): never allocates, never panics,
/// never writes past the end. What does not fit is cut at a field boundary (text at a
/// character boundary) and the record marked truncated.
#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
pub(crate) struct Enc<'a> {
    buf: &'a mut [u8],
    pos: usize,
    truncated: bool,
}

#[cfg_attr(not(feature = "subscriber"), allow(dead_code))]
impl<'a> Enc<'a> {
    /// Starts a record of format `version` ([`VERSION`] with times in clock ticks,
    /// [`VERSION_NS`] in Unix nanoseconds) and `kind`. `buf` must hold at least the header
    /// (callers reserve more).
    pub(crate) fn new(buf: &'a mut [u8], version: u8, kind: u8) -> Self {
        let mut enc = Enc {
            buf,
            pos: 0,
            truncated: false,
        };
        enc.put(&[MAGIC[0], MAGIC[1], version, kind]);
        enc
    }

    /// The length to commit, with the truncated flag set in the header if anything was cut.
    pub(crate) fn finish(self) -> usize {
        if self.truncated && self.buf.len() >= HEADER {
            self.buf[3] |= TRUNCATED;
        }
        self.pos
    }

    #[cfg(test)]
    pub(crate) fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Writes all of `bytes` or (not enough room) nothing, and marks the record truncated.
    #[inline]
    pub(crate) fn put(&mut self, bytes: &[u8]) -> bool {
        if self.truncated {
            return false;
        }
        match self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos += bytes.len();
                true
            }
            None => {
                self.truncated = true;
                false
            }
        }
    }

    pub(crate) fn u8(&mut self, v: u8) -> bool {
        self.put(&[v])
    }
    pub(crate) fn u32(&mut self, v: u32) -> bool {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> bool {
        self.put(&v.to_le_bytes())
    }
    /// Several u64 at once, or (not enough room) none (a record's fixed header: one bounds
    /// check, a copy of known size).
    #[inline]
    pub(crate) fn u64s<const N: usize>(&mut self, vs: [u64; N]) -> bool {
        self.put(vs.map(u64::to_le_bytes).as_flattened())
    }

    /// A short string (metadata): u16 length + bytes, or nothing if it does not fit whole.
    pub(crate) fn str16(&mut self, s: Option<&str>) -> bool {
        match s {
            None => self.put(&NONE16.to_le_bytes()),
            Some(s) => {
                let s = &s[..floor_char_boundary(s, usize::from(NONE16 - 1))];
                let need = 2 + s.len();
                if self.truncated || self.pos + need > self.buf.len() {
                    self.truncated = true;
                    return false;
                }
                self.put(&(s.len() as u16).to_le_bytes()) && self.put(s.as_bytes())
            }
        }
    }

    /// A text value written by `f` through `fmt::Write`, straight into the buffer: u32 length
    /// (back-patched) + what fit. Returns false if it was cut.
    pub(crate) fn text(&mut self, f: impl FnOnce(&mut TextWriter<'_, 'a>) -> fmt::Result) -> bool {
        if self.truncated || self.pos + 4 > self.buf.len() {
            self.truncated = true;
            return false;
        }
        let len_at = self.pos;
        self.pos += 4;
        let start = self.pos;
        let _ = f(&mut TextWriter { enc: self });
        let len = (self.pos - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        !self.truncated
    }

    /// A field header (index, type), written only with room for `value_len` more bytes.
    pub(crate) fn field(&mut self, index: usize, ty: u8, value_len: usize) -> bool {
        if self.truncated || self.pos + 2 + value_len > self.buf.len() {
            self.truncated = true;
            return false;
        }
        self.put(&[index.min(255) as u8, ty])
    }

    /// A key-value's header (name, type; a `log` record's), written only with room for
    /// `value_len` more bytes.
    pub(crate) fn kv(&mut self, name: &str, ty: u8, value_len: usize) -> bool {
        let name = &name[..floor_char_boundary(name, usize::from(NONE16 - 1))];
        if self.truncated || self.pos + 2 + name.len() + 1 + value_len > self.buf.len() {
            self.truncated = true;
            return false;
        }
        self.str16(Some(name)) && self.u8(ty)
    }

    pub(crate) fn field_u64(&mut self, index: usize, v: u64) {
        if self.field(index, T_U64, 8) {
            self.u64(v);
        }
    }
    pub(crate) fn field_i64(&mut self, index: usize, v: i64) {
        if self.field(index, T_I64, 8) {
            self.put(&v.to_le_bytes());
        }
    }
    pub(crate) fn field_f64(&mut self, index: usize, v: f64) {
        if self.field(index, T_F64, 8) {
            self.put(&v.to_le_bytes());
        }
    }
    pub(crate) fn field_bool(&mut self, index: usize, v: bool) {
        if self.field(index, T_BOOL, 1) {
            self.u8(u8::from(v));
        }
    }
    pub(crate) fn field_str(&mut self, index: usize, v: &str) {
        if self.field(index, T_STR, 4) {
            self.text(|w| fmt::Write::write_str(w, v));
        }
    }
    pub(crate) fn field_debug(&mut self, index: usize, v: &dyn fmt::Debug) {
        if self.field(index, T_DEBUG, 4) {
            self.text(|w| fmt::write(w, format_args!("{v:?}")));
        }
    }
}

/// `fmt::Write` into the record's own bytes: what does not fit is cut at a character boundary
/// and formatting stops there (an `Err`, which the encoder swallows).
pub(crate) struct TextWriter<'e, 'a> {
    enc: &'e mut Enc<'a>,
}

impl fmt::Write for TextWriter<'_, '_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let enc = &mut *self.enc;
        if enc.truncated {
            return Err(fmt::Error);
        }
        let room = enc.buf.len() - enc.pos;
        let take = if s.len() <= room {
            s.len()
        } else {
            floor_char_boundary(s, room)
        };
        copy_short(&mut enc.buf[enc.pos..enc.pos + take], &s.as_bytes()[..take]);
        enc.pos += take;
        if take < s.len() {
            enc.truncated = true;
            return Err(fmt::Error);
        }
        Ok(())
    }

    /// A character in place (the default goes through a `&str` and `write_str`): `Debug`
    /// output writes its quotes, braces and escapes one character at a time.
    #[inline]
    fn write_char(&mut self, c: char) -> fmt::Result {
        let enc = &mut *self.enc;
        if enc.truncated {
            return Err(fmt::Error);
        }
        let n = c.len_utf8();
        match enc.buf.get_mut(enc.pos..enc.pos + n) {
            Some(dst) => {
                c.encode_utf8(dst);
                enc.pos += n;
                Ok(())
            }
            None => {
                enc.truncated = true;
                Err(fmt::Error)
            }
        }
    }
}

/// `dst.copy_from_slice(src)` (equal lengths) without a call to `memcpy` for the short pieces
/// formatting writes (names, separators, short values): up to 16 bytes as two overlapping
/// loads and stores.
#[inline]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    match n {
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        0 => {}
        _ => dst.copy_from_slice(src),
    }
}

/// The largest `i <= max` that is a character boundary of `s`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_char_boundary_and_flagged() {
        let mut buf = [0u8; 14];
        let mut enc = Enc::new(&mut buf, VERSION, KIND_EVENT);
        enc.field_str(0, "aé€x"); // 2 + 4 + 7 bytes > 10 left
        let used = enc.finish();
        assert_eq!(buf[3], KIND_EVENT | TRUNCATED);
        let len = u32::from_le_bytes(buf[6..10].try_into().unwrap()) as usize;
        assert_eq!(used, 10 + len);
        assert_eq!(std::str::from_utf8(&buf[10..10 + len]).unwrap(), "aé");
    }

    #[test]
    fn short_copies_copy_every_byte() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            let mut dst = vec![0u8; n];
            copy_short(&mut dst, &src[..n]);
            assert_eq!(dst, src[..n], "{n} bytes");
        }
    }

    #[test]
    fn characters_are_written_whole_or_cut_there() {
        // 4 header + 2 field + 4 length = 10; 5 bytes of room for the text.
        let mut buf = [0u8; 15];
        let mut enc = Enc::new(&mut buf, VERSION, KIND_EVENT);
        enc.field(0, T_DEBUG, 4);
        let whole = enc.text(|w| {
            use fmt::Write as _;
            w.write_char('a')?;
            w.write_char('é')?;
            w.write_char('€') // 3 bytes, 2 left
        });
        assert!(!whole && enc.is_truncated());
        let used = enc.finish();
        assert_eq!(buf[3], KIND_EVENT | TRUNCATED);
        assert_eq!(used, 13);
        assert_eq!(u32::from_le_bytes(buf[6..10].try_into().unwrap()), 3);
        assert_eq!(std::str::from_utf8(&buf[10..13]).unwrap(), "aé");
    }

    #[test]
    fn a_fixed_header_is_written_whole_or_not_at_all() {
        let mut buf = [0u8; 24];
        let mut enc = Enc::new(&mut buf, VERSION, KIND_EVENT);
        assert!(enc.u64s([1, 2]));
        assert!(!enc.u64s([3]), "4 + 16 + 8 > 24");
        assert!(enc.is_truncated());
        assert_eq!(enc.finish(), 20);
        assert_eq!(buf[4..12], 1u64.to_le_bytes());
        assert_eq!(buf[12..20], 2u64.to_le_bytes());
        assert_eq!(buf[20..], [0; 4]);
    }

    #[test]
    fn a_field_that_does_not_fit_is_left_out_whole() {
        let mut buf = [0u8; 12];
        let mut enc = Enc::new(&mut buf, VERSION, KIND_EVENT);
        enc.field_u64(0, 7); // 4 + 2 + 8 = 14 > 12
        assert!(enc.is_truncated());
        assert_eq!(enc.finish(), 4);
    }
}
