//! Which callsites this process has already written metadata for: a fixed open-addressing
//! table of atomics, read without a lock on every event; written under a mutex only the first
//! time a callsite is seen (the cold path). And every callsite whose metadata record was ever
//! attempted, for the preamble of each new segment.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tracing_core::Metadata;

/// Slots in the table; more distinct callsites than this are announced before each of their
/// events instead (correct, only slower).
pub(crate) const SLOTS: usize = 4096;

pub(crate) struct Callsites {
    slots: Box<[AtomicUsize]>,
    /// Serialises first sights: the metadata record is emitted, then the key published.
    announce: Mutex<()>,
    /// Every callsite [`describe`](Self::describe)d, in order: what a new segment's preamble
    /// repeats. Its own lock, held only to push or copy (never while the ring is waited for):
    /// the writer's thread takes it when it creates a segment, and must never wait for an
    /// emitter that waits for the writer.
    described: Mutex<Vec<&'static Metadata<'static>>>,
}

/// What [`Callsites::announce`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Its metadata was in the log before this call.
    Known,
    /// This call wrote its metadata (or, table full, writes it before every event).
    Announced,
    /// The ring refused the metadata record; not published, tried again next time.
    Refused,
}

impl Callsites {
    pub(crate) fn new() -> Self {
        Callsites {
            slots: (0..SLOTS).map(|_| AtomicUsize::new(0)).collect(),
            announce: Mutex::new(()),
            // Room for as many as the table holds (32 KiB): a first sight allocates nothing.
            described: Mutex::new(Vec::with_capacity(SLOTS)),
        }
    }

    /// Adds `meta` to the callsites every new segment's preamble describes, if not there yet.
    /// Called before its metadata record is emitted: so the writer, which creates a segment
    /// only after it has taken from the ring every record it put in the segments before, finds
    /// `meta` here whenever an earlier segment holds its record (the push happens before the
    /// record's commit, which happens before the writer's take, which happens before the
    /// preamble's copy, through the lock and the ring's Release/Acquire). A callsite whose
    /// record comes later, or was refused, is described early: harmless, its metadata are
    /// static.
    pub(crate) fn describe(&self, meta: &'static Metadata<'static>) {
        let mut list = self
            .described
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if !list.iter().any(|m| std::ptr::eq(*m, meta)) {
            list.push(meta);
        }
    }

    /// A copy of the described callsites (the lock is not held while the caller encodes).
    pub(crate) fn described(&self) -> Vec<&'static Metadata<'static>> {
        self.described
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    fn start(key: usize) -> usize {
        // Metadata are 8-aligned statics: drop the low bits, then Fibonacci hashing.
        ((key >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> 7) & (SLOTS - 1)
    }

    /// Whether `key` (a `&'static Metadata`'s address, never 0) is in the table: lock-free.
    pub(crate) fn contains(&self, key: usize) -> bool {
        let mut i = Self::start(key);
        for _ in 0..SLOTS {
            // Acquire pairs with the Release store in `announce`: seeing the key means the
            // metadata record's commit happened before, so this thread's next reservation is
            // later in the ring, hence later in the log.
            match self.slots[i].load(Ordering::Acquire) {
                0 => return false,
                k if k == key => return true,
                _ => i = (i + 1) & (SLOTS - 1),
            }
        }
        false
    }

    /// Makes sure the metadata for `key` is in the log before the caller's next record: if it
    /// is not in the table, `write` emits it (under the lock, so once), then the key is
    /// published. If `write` fails (the ring refused the record: a gap in the log), the key
    /// is not published and the next record of that callsite tries again. `write`'s argument
    /// says whether the callsite has a place in the table: only those are repeated in segment
    /// preambles (the others, table full, are written before each of their records anyway).
    pub(crate) fn announce(&self, key: usize, write: impl FnOnce(bool) -> bool) -> Seen {
        if self.contains(key) {
            return Seen::Known;
        }
        // A poisoned lock only means another announcer panicked; the table is still sound.
        let _guard = self
            .announce
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut i = Self::start(key);
        for _ in 0..SLOTS {
            match self.slots[i].load(Ordering::Acquire) {
                0 => {
                    if !write(true) {
                        return Seen::Refused;
                    }
                    // Release: the metadata's commit (above, this thread) happens before any
                    // thread's Acquire load that sees the key.
                    self.slots[i].store(key, Ordering::Release);
                    return Seen::Announced;
                }
                k if k == key => return Seen::Known,
                _ => i = (i + 1) & (SLOTS - 1),
            }
        }
        // Full: announce every time (the record still precedes the caller's).
        if write(false) {
            Seen::Announced
        } else {
            Seen::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announces_once_then_knows() {
        let c = Callsites::new();
        let mut writes = 0;
        assert_eq!(c.announce(0x1000, |_| false), Seen::Refused);
        assert!(!c.contains(0x1000));
        let mut w = |in_table: bool| {
            assert!(in_table);
            writes += 1;
            true
        };
        assert_eq!(c.announce(0x1000, &mut w), Seen::Announced);
        assert_eq!(c.announce(0x1000, &mut w), Seen::Known);
        assert_eq!(writes, 1);
        assert!(c.contains(0x1000));
        assert!(!c.contains(0x2000));
    }

    #[test]
    fn a_full_table_announces_every_time() {
        let c = Callsites::new();
        for k in 1..=SLOTS {
            c.announce(k * 8, |in_table| in_table);
        }
        let mut writes = 0;
        let mut w = |in_table: bool| {
            assert!(!in_table, "the table is full");
            writes += 1;
            true
        };
        c.announce((SLOTS + 1) * 8, &mut w);
        c.announce((SLOTS + 1) * 8, &mut w);
        assert_eq!(writes, 2);
        assert!(c.contains(8) && c.contains(SLOTS * 8));
    }
}
