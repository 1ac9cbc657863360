//! The body of the `tracing_decoder` fuzz target, also driven on stable by
//! `tracing/tests/fuzz_body.rs` (seeds in `fuzz/seeds/tracing_decoder/`).
//!
//! The input is a sequence of records, each a little-endian u16 length and that many bytes
//! (the last one cut short by the input's end), fed in order to one `Decoder`, which keeps
//! callsites and spans across them. Property: never a panic, whatever the bytes; every event
//! decoded renders as text and JSON; an event's fields are named by its callsite. A length
//! with its top bit set marks a segment preamble frame (`Decoder::decode_preamble`).

use ringwal_tracing::{Decoder, Record};

pub fn tracing_decoder(data: &[u8]) {
    let mut decoder = Decoder::new();
    let mut rest = data;
    let mut line = String::new();
    while rest.len() >= 2 {
        let raw = u16::from_le_bytes([rest[0], rest[1]]);
        let len = usize::from(raw & 0x7FFF);
        let end = (2 + len).min(rest.len());
        let record = &rest[2..end];
        rest = &rest[end..];
        if raw & 0x8000 != 0 {
            let _ = decoder.decode_preamble(record);
            continue;
        }
        if let Ok(Record::Event(e)) = decoder.decode(record) {
            for (name, _) in &e.fields {
                assert!(
                    e.callsite.fields.contains(name) || e.callsite.name == "log event",
                    "field {name} not in its callsite"
                );
            }
            line.clear();
            e.write_text(&mut line);
            line.clear();
            e.write_json(&mut line);
        }
    }
}
