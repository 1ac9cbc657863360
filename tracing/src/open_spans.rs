//! The spans open at each point of the log, as the writer wrote it: kept on the writer's
//! thread from the records it appends (a [`ringwal::SegmentPreamble`] observer), repeated in
//! each new segment's preamble, so that a reader starting at any segment — after rotation, or
//! once retention deleted the older ones — shows the events after it in their spans.
//!
//! Kept from the log itself rather than from the layer's calls: the state at a segment's
//! start is then exactly that of the records before it (a span whose close the writer has not
//! yet written is still open there; one whose opening the ring refused is not), and the
//! emitting threads do nothing more.

use crate::wire;
use std::collections::HashMap;

/// One open span: its opening record's header and its fields as last recorded.
struct OpenSpan {
    /// The order of openings (parents open before their children: a preamble lists them
    /// in this order).
    order: u64,
    version: u8,
    /// id, parent, callsite, time, thread: the span-new record's words.
    words: [u64; 5],
    /// Each field's index and its encoded type and value, in the order the decoder shows
    /// them (the opening's, then those first recorded later).
    fields: Vec<(u8, Vec<u8>)>,
    truncated: bool,
}

/// The open spans (by id).
#[derive(Default)]
pub(crate) struct OpenSpans {
    spans: HashMap<u64, OpenSpan>,
    next_order: u64,
}

/// A cursor over a record's bytes (the writer wrote them: a record that does not parse is
/// ignored, never a panic).
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    /// One field: its index and its type byte and value, as encoded.
    fn field(&mut self) -> Option<(u8, &'a [u8])> {
        let whole = self.0;
        let index = *self.take(1)?.first()?;
        let ty = *self.take(1)?.first()?;
        let len = match ty {
            wire::T_U64 | wire::T_I64 | wire::T_F64 => 8,
            wire::T_BOOL => 1,
            wire::T_STR | wire::T_DEBUG => {
                let n = self.take(4)?;
                u32::from_le_bytes(n.try_into().expect("4 bytes")) as usize
            }
            _ => return None,
        };
        self.take(len)?;
        let used = whole.len() - self.0.len();
        Some((index, &whole[1..used]))
    }
    /// Every field to the end.
    fn fields(&mut self) -> Option<Vec<(u8, &'a [u8])>> {
        let mut out = Vec::new();
        while !self.0.is_empty() {
            out.push(self.field()?);
        }
        Some(out)
    }
}

impl OpenSpans {
    /// Takes in a record the writer appended.
    pub(crate) fn observe(&mut self, payload: &[u8]) {
        if !wire::is_tracing_record(payload) || payload.len() < wire::HEADER {
            return;
        }
        let version = payload[2];
        let truncated = payload[3] & wire::TRUNCATED != 0;
        let mut b = Bytes(&payload[wire::HEADER..]);
        match payload[3] & !wire::TRUNCATED {
            // A new process: ids and spans are its own.
            wire::KIND_SESSION => self.spans.clear(),
            wire::KIND_SPAN_NEW => {
                let mut words = [0u64; 5];
                for w in &mut words {
                    let Some(v) = b.u64() else { return };
                    *w = v;
                }
                let Some(fields) = b.fields() else { return };
                let order = self.next_order;
                self.next_order += 1;
                self.spans.insert(
                    words[0],
                    OpenSpan {
                        order,
                        version,
                        words,
                        fields: fields.into_iter().map(|(i, v)| (i, v.to_vec())).collect(),
                        truncated,
                    },
                );
            }
            wire::KIND_SPAN_RECORD => {
                let (Some(id), Some(_time)) = (b.u64(), b.u64()) else {
                    return;
                };
                let Some(fields) = b.fields() else { return };
                let Some(span) = self.spans.get_mut(&id) else {
                    return;
                };
                span.truncated |= truncated;
                for (index, value) in fields {
                    match span.fields.iter_mut().find(|(i, _)| *i == index) {
                        Some(slot) => {
                            slot.1.clear();
                            slot.1.extend_from_slice(value);
                        }
                        None => span.fields.push((index, value.to_vec())),
                    }
                }
            }
            wire::KIND_SPAN_CLOSE => {
                if let Some(id) = b.u64() {
                    self.spans.remove(&id);
                }
            }
            _ => {}
        }
    }

    /// Each open span as one span-new record holding its fields as last recorded, parents
    /// before children, for a new segment's preamble.
    pub(crate) fn write(&self, mut push: impl FnMut(&[u8])) {
        let mut open: Vec<&OpenSpan> = self.spans.values().collect();
        open.sort_unstable_by_key(|s| s.order);
        let mut record = Vec::new();
        for span in open {
            record.clear();
            let kind = wire::KIND_SPAN_NEW | if span.truncated { wire::TRUNCATED } else { 0 };
            record.extend_from_slice(&[wire::MAGIC[0], wire::MAGIC[1], span.version, kind]);
            for w in span.words {
                record.extend_from_slice(&w.to_le_bytes());
            }
            for (index, value) in &span.fields {
                record.push(*index);
                record.extend_from_slice(value);
            }
            push(&record);
        }
    }

    /// How many spans are open.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.spans.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoder, Record, Value};
    use crate::wire::Enc;

    fn record(kind: u8, words: &[u64], fields: impl FnOnce(&mut Enc<'_>)) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        let mut enc = Enc::new(&mut buf, wire::VERSION_NS, kind);
        for w in words {
            enc.u64(*w);
        }
        fields(&mut enc);
        let n = enc.finish();
        buf.truncate(n);
        buf
    }

    fn callsite(id: u64, fields: &[&str]) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        let mut enc = Enc::new(&mut buf, wire::VERSION_NS, wire::KIND_CALLSITE);
        enc.u64(id);
        enc.u8(2);
        enc.u8(1);
        enc.u32(wire::NO_LINE);
        for s in [Some("span"), Some("t"), None, None] {
            enc.str16(s);
        }
        enc.u8(fields.len() as u8);
        for f in fields {
            enc.str16(Some(f));
        }
        let n = enc.finish();
        buf.truncate(n);
        buf
    }

    /// What a decoder that reads only `spans`' preamble knows of span `id`.
    fn as_read(spans: &OpenSpans, id: u64) -> Option<Vec<(String, Value)>> {
        let mut d = Decoder::new();
        d.decode_preamble(&callsite(9, &["a", "b", "c"])).unwrap();
        let mut found = None;
        spans.write(|r| {
            d.decode_preamble(r).unwrap();
            if let Ok(Record::SpanOpened(s)) = d.decode(r) {
                if s.id == id {
                    found = Some(s.fields.clone());
                }
            }
        });
        found
    }

    #[test]
    fn the_preamble_holds_each_open_span_as_last_recorded() {
        let mut spans = OpenSpans::default();
        spans.observe(&record(wire::KIND_SPAN_NEW, &[1, 0, 9, 0, 1], |e| {
            e.field_u64(0, 7);
            e.field_str(1, "x");
        }));
        spans.observe(&record(wire::KIND_SPAN_NEW, &[2, 1, 9, 0, 1], |_| {}));
        // A value replaced, one recorded for the first time.
        spans.observe(&record(wire::KIND_SPAN_RECORD, &[1, 5], |e| {
            e.field_str(1, "y");
            e.field_bool(2, true);
        }));
        // A record for a span not open (its opening refused): nothing.
        spans.observe(&record(wire::KIND_SPAN_RECORD, &[3, 5], |e| {
            e.field_u64(0, 1)
        }));
        assert_eq!(spans.len(), 2);
        assert_eq!(
            as_read(&spans, 1),
            Some(vec![
                ("a".into(), Value::U64(7)),
                ("b".into(), Value::Str("y".into())),
                ("c".into(), Value::Bool(true)),
            ])
        );
        assert_eq!(as_read(&spans, 2), Some(vec![]));
        // Parents before children, whatever the table's order.
        let mut ids = Vec::new();
        spans.write(|r| ids.push(u64::from_le_bytes(r[4..12].try_into().unwrap())));
        assert_eq!(ids, [1, 2]);
        // Seen again in order (a retried append): the same state.
        spans.observe(&record(wire::KIND_SPAN_RECORD, &[1, 5], |e| {
            e.field_str(1, "y");
            e.field_bool(2, true);
        }));
        assert_eq!(as_read(&spans, 1).unwrap().len(), 3);
        spans.observe(&record(wire::KIND_SPAN_CLOSE, &[1, 6], |_| {}));
        assert_eq!(as_read(&spans, 1), None);
        assert_eq!(spans.len(), 1);
        // A new process: nothing of the last one is open.
        let mut session = vec![0u8; 32];
        let mut enc = Enc::new(&mut session, wire::VERSION_NS, wire::KIND_SESSION);
        enc.u32(1);
        enc.u64(0);
        let n = enc.finish();
        spans.observe(&session[..n]);
        assert_eq!(spans.len(), 0);
    }

    #[test]
    fn a_cut_record_marks_the_span_and_garbage_is_ignored() {
        let mut spans = OpenSpans::default();
        let mut cut = record(wire::KIND_SPAN_NEW, &[4, 0, 9, 0, 1], |e| e.field_u64(0, 1));
        cut[3] |= wire::TRUNCATED;
        spans.observe(&cut);
        let mut written = Vec::new();
        spans.write(|r| written.push(r.to_vec()));
        assert_eq!(written, [cut.clone()]);
        // Not tracing records, or cut anywhere: no panic, no change.
        for junk in [&b""[..], b"\xffT", b"\xffT\x01\x03\x01", b"text"] {
            spans.observe(junk);
        }
        // (Cut after the five words it is a whole record: a span with no fields.)
        for end in (0..cut.len()).filter(|&e| e != wire::HEADER + 40) {
            let mut other = cut[..end].to_vec();
            if other.len() > 4 {
                other[4] = 5; // another id
            }
            spans.observe(&other);
        }
        assert_eq!(spans.len(), 1);
    }
}
