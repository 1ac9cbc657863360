// Shared by the integration tests: read a log back through the decoder.
#![allow(dead_code)]

use ringwal_tracing::{DecodeError, Decoder, Event, Record};
use std::path::Path;

/// What the log holds, in order: events, decode errors and gaps (dropped + refused).
#[derive(Debug)]
pub enum Item {
    Event(Event),
    Error(u64, DecodeError),
    Gap(u64),
}

pub fn read(dir: &Path) -> Vec<Item> {
    read_with(dir, &mut Decoder::new(), 0)
}

/// From record `from` on, taking in each segment's preamble unless `preambles` is false.
pub fn read_with(dir: &Path, decoder: &mut Decoder, from: u64) -> Vec<Item> {
    read_from(dir, decoder, from, true)
}

pub fn read_from(dir: &Path, decoder: &mut Decoder, from: u64, preambles: bool) -> Vec<Item> {
    let reader = ringwal::Reader::open(dir).unwrap();
    let mut iter = reader.from_seq(from);
    let mut items = Vec::new();
    while let Some(entry) = iter.next() {
        let entry = entry.unwrap();
        for preamble in iter.take_preamble() {
            if preambles {
                decoder.decode_preamble(&preamble).unwrap();
            }
        }
        let gap = entry.dropped_before + entry.refused_before;
        if gap > 0 {
            items.push(Item::Gap(gap));
        }
        match decoder.decode(&entry.payload) {
            Ok(Record::Event(e)) => items.push(Item::Event(e)),
            Ok(_) => {}
            Err(e) => items.push(Item::Error(entry.seq, e)),
        }
    }
    let trailing = iter.trailing_gap();
    if trailing.dropped + trailing.refused > 0 {
        items.push(Item::Gap(trailing.dropped + trailing.refused));
    }
    items
}

pub fn events(items: Vec<Item>) -> Vec<Event> {
    items
        .into_iter()
        .map(|i| match i {
            Item::Event(e) => e,
            other => panic!("expected only events, got {other:?}"),
        })
        .collect()
}
