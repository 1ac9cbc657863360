//! The global subscriber (`init`): a second `init` fails and leaves the first in place; an
//! event whose field's `Debug` itself logs (re-entrant: the global dispatcher has no guard
//! against it) writes both, no deadlock, no panic.

mod common;

use common::{events, read};

struct Noisy(u32);

impl std::fmt::Debug for Noisy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::warn!(inner = self.0, "from Debug");
        write!(f, "Noisy({})", self.0)
    }
}

#[test]
fn init_twice_and_re_entrant_events() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let guard = ringwal_tracing::init(dir.path()).unwrap();
    let second = ringwal_tracing::init(other.path());
    assert_eq!(
        second.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::AlreadyExists)
    );
    let span = tracing::info_span!("outer", n = ?Noisy(1));
    let _e = span.enter();
    tracing::info!(v = ?Noisy(2), "outer event");
    drop(_e);
    drop(span);
    guard.shutdown().unwrap();
    let evs = events(read(dir.path()));
    let msgs: Vec<String> = evs
        .iter()
        .map(|e| e.message().unwrap().to_string())
        .collect();
    // The nested event's room is reserved after its outer record's: it follows it in the log.
    assert_eq!(
        msgs,
        ["from Debug", "outer event", "from Debug"],
        "{evs:#?}"
    );
    assert_eq!(evs[1].field("v").unwrap().to_string(), "Noisy(2)");
    assert_eq!(evs[1].scope[0].fields[0].1.to_string(), "Noisy(1)");
}
