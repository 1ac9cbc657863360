//! Subscriber behaviours a service relies on: per-layer filters, span id reuse, explicit
//! parents, deferred `record`, long values, thread exit.

mod common;

use common::{events, read};
use ringwal_tracing::{Builder, Value};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

fn scope_names(e: &ringwal_tracing::Event) -> Vec<String> {
    e.scope.iter().map(|s| s.callsite.name.clone()).collect()
}

/// With `Layer::with_filter`, an event inside a span the layer's filter disables shows in the
/// nearest enabled span (as `fmt` with the same filter shows it), not in no span at all.
#[test]
fn a_per_layer_filter_keeps_the_enabled_spans_of_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).tsc(false).build().unwrap();
    // Another layer sees every span, so the debug span exists.
    let subscriber = tracing_subscriber::registry()
        .with(layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("outer", a = 1);
        let _o = outer.enter();
        let inner = tracing::debug_span!("inner", b = 2);
        let _i = inner.enter();
        tracing::info!("in inner");
        tracing::debug!("filtered out for this layer only");
        let child = tracing::info_span!("child", c = 3);
        let _c = child.enter();
        tracing::info!("in child");
    });
    guard.shutdown().unwrap();
    let evs = events(read(dir.path()));
    assert_eq!(evs.len(), 2);
    assert_eq!(scope_names(&evs[0]), ["outer"]);
    assert_eq!(scope_names(&evs[1]), ["outer", "child"]);
}

/// The registry reuses a closed span's id: an event in the new span shows its fields only.
#[test]
fn a_reused_span_id_never_shows_the_old_span_s_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..50u64 {
            let s = if i.is_multiple_of(2) {
                tracing::info_span!("a", x = i, y = tracing::field::Empty)
            } else {
                tracing::info_span!("b", z = i)
            };
            if i.is_multiple_of(3) {
                s.record("y", "late");
            }
            let _e = s.enter();
            tracing::info!(i, "ev");
        }
    });
    guard.shutdown().unwrap();
    let evs = events(read(dir.path()));
    assert_eq!(evs.len(), 50);
    for (i, e) in evs.iter().enumerate() {
        let i = i as u64;
        assert_eq!(e.scope.len(), 1, "{i}");
        let s = &e.scope[0];
        let mut want = if i.is_multiple_of(2) {
            vec![("x".to_owned(), Value::U64(i))]
        } else {
            vec![("z".to_owned(), Value::U64(i))]
        };
        if i.is_multiple_of(2) && i.is_multiple_of(3) {
            want.push(("y".to_owned(), Value::Str("late".into())));
        }
        assert_eq!(s.fields, want, "{i}");
    }
}

/// `parent: None` events are in no span; `parent: &span` ones in that span, whatever is
/// entered; spans opened with an explicit parent hang under it.
#[test]
fn explicit_and_root_parents() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let p = tracing::info_span!("p");
        let q = tracing::info_span!("q");
        let _q = q.enter();
        tracing::info!(parent: None, "root");
        tracing::info!(parent: &p, "in p");
        let c = tracing::info_span!(parent: &p, "c");
        tracing::info!(parent: &c, "in c");
        let r = tracing::info_span!(parent: None, "r");
        let _r = r.enter();
        tracing::info!(target: "custom::t", "in r");
    });
    guard.shutdown().unwrap();
    let evs = events(read(dir.path()));
    assert_eq!(scope_names(&evs[0]), Vec::<String>::new());
    assert_eq!(scope_names(&evs[1]), ["p"]);
    assert_eq!(scope_names(&evs[2]), ["p", "c"]);
    assert_eq!(scope_names(&evs[3]), ["r"]);
    assert_eq!(evs[3].target(), "custom::t");
}

/// A message far longer than the room, of multi-byte characters: cut at a character, marked.
#[test]
fn long_values_are_cut_at_a_character_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).event_bytes(100).build().unwrap();
    let long = "é€😀".repeat(1000);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(r#type = "k", v = %long, "{long}");
        tracing::info!(r#type = long.as_str());
        let s = tracing::info_span!("s", big = %long);
        let _e = s.enter();
        tracing::info!("in s");
    });
    guard.shutdown().unwrap();
    let evs = events(read(dir.path()));
    assert_eq!(evs.len(), 3);
    assert!(evs[0].truncated && evs[1].truncated);
    assert!(evs[2].scope[0].truncated);
    let mut line = String::new();
    evs[0].write_text(&mut line);
    assert!(line.ends_with(" [truncated]"), "{line}");
    line.clear();
    evs[1].write_json(&mut line);
    assert!(line.contains("\"type\":\""), "{line}");
}

/// Logging from a thread-local's destructor at thread exit does not panic and is recorded.
#[test]
fn logging_during_thread_exit_does_not_panic() {
    struct LogOnDrop;
    impl Drop for LogOnDrop {
        fn drop(&mut self) {
            tracing::info!("bye");
        }
    }
    thread_local! { static L: LogOnDrop = const { LogOnDrop }; }
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let d = dispatch.clone();
    std::thread::spawn(move || {
        let _g = tracing::dispatcher::set_default(&d);
        L.with(|_| {});
        let s = tracing::info_span!("s");
        let _e = s.enter();
        tracing::info!("hello");
        std::mem::forget(_e);
    })
    .join()
    .unwrap();
    drop(dispatch);
    guard.shutdown().unwrap();
    let evs = events(read(dir.path()));
    assert!(!evs.is_empty());
}

/// A span entered on one thread and then another (as a task migrating between a runtime's
/// workers: `Instrument`), events on both show in it; `follows_from` changes nothing.
#[test]
fn a_span_entered_on_several_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let task = tracing::info_span!("task", n = 1u64, state = tracing::field::Empty);
        let other = tracing::info_span!("other");
        task.follows_from(&other);
        drop(other);
        for i in 0..4u64 {
            let task = task.clone();
            let d = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    let _e = task.enter();
                    task.record("state", i);
                    tracing::info!(i, "poll");
                })
            })
            .join()
            .unwrap();
        }
    });
    drop(dispatch);
    guard.shutdown().unwrap();
    let evs = events(read(dir.path()));
    assert_eq!(evs.len(), 4);
    let threads: std::collections::HashSet<u64> = evs.iter().map(|e| e.thread).collect();
    assert_eq!(threads.len(), 4);
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(scope_names(e), ["task"]);
        assert_eq!(
            e.scope[0].fields,
            [
                ("n".to_owned(), Value::U64(1)),
                ("state".to_owned(), Value::U64(i as u64))
            ]
        );
    }
}

/// tracing's most fields in one event: every one comes back, named.
#[test]
fn thirty_two_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).event_bytes(4096).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(
            f0 = 0,
            f1 = 1,
            f2 = 2,
            f3 = 3,
            f4 = 4,
            f5 = 5,
            f6 = 6,
            f7 = 7,
            f8 = 8,
            f9 = 9,
            f10 = 10,
            f11 = 11,
            f12 = 12,
            f13 = 13,
            f14 = 14,
            f15 = 15,
            f16 = 16,
            f17 = 17,
            f18 = 18,
            f19 = 19,
            f20 = 20,
            f21 = 21,
            f22 = 22,
            f23 = 23,
            f24 = 24,
            f25 = 25,
            f26 = 26,
            f27 = 27,
            f28 = 28,
            f29 = 29,
            f30 = 30,
            r#type = "last"
        );
    });
    guard.shutdown().unwrap();
    let evs = events(read(dir.path()));
    assert_eq!(evs[0].fields.len(), 32);
    assert_eq!(evs[0].field("f30"), Some(&Value::I64(30)));
    // `r#type` is named `type` or `r#type` (tracing versions differ); shown `type`.
    let (name, value) = &evs[0].fields[31];
    assert!(name == "type" || name == "r#type", "{name}");
    assert_eq!(value, &Value::Str("last".into()));
    let mut line = String::new();
    evs[0].write_text(&mut line);
    assert!(line.ends_with(" f30=30 type=\"last\""), "{line}");
}

/// The guard dropped while other threads still log: no panic, and what was logged before is
/// in the log.
#[test]
fn a_guard_dropped_while_threads_log() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = std::sync::Arc::new(std::sync::Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let d = dispatch.clone();
            let stop = stop.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    tracing::info!("first");
                    started.wait();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let s = tracing::info_span!("s");
                        let _e = s.enter();
                        tracing::info!("more");
                    }
                })
            })
        })
        .collect();
    started.wait();
    drop(guard);
    std::thread::sleep(std::time::Duration::from_millis(20));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let firsts = read(dir.path())
        .into_iter()
        .filter(
            |i| matches!(i, common::Item::Event(e) if e.message().unwrap().to_string() == "first"),
        )
        .count();
    assert_eq!(firsts, 2);
}

/// A second writer on a directory a first one writes to is refused (two writers would
/// interleave their segments).
#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path()).build().unwrap();
    assert!(Builder::new(dir.path()).build().is_err());
    drop(guard);
}

/// A `fmt` line longer than the ring's largest record, through the `MakeWriter`: cut at a
/// character boundary (the record stays UTF-8) and marked.
#[test]
fn a_make_writer_line_too_long_is_cut_at_a_character() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path())
        .writer(|w| w.capacity(8192))
        .build()
        .unwrap();
    let max = guard.emitter().max_record_len();
    let subscriber = tracing_subscriber::fmt()
        .without_time()
        .with_ansi(false)
        .with_writer(guard.make_writer())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        // 4-byte characters at each of 4 offsets: one of them straddles any cut.
        for pad in 0..4 {
            let msg = format!("{}{}", "x".repeat(pad), "😀".repeat(max));
            tracing::info!("{msg}");
            // Room for the next one (a record this size fills half the ring).
            guard.flush().unwrap();
        }
    });
    guard.shutdown().unwrap();
    let mut lines = 0;
    for entry in ringwal::Reader::open(dir.path()).unwrap().iter() {
        let payload = entry.unwrap().payload;
        if ringwal_tracing::is_tracing_record(&payload) {
            continue;
        }
        let text = std::str::from_utf8(&payload).expect("a cut line is still UTF-8");
        assert!(
            text.ends_with("…[truncated]"),
            "{}",
            &text[text.len() - 40..]
        );
        assert!(payload.len() <= max && payload.len() > max - 20);
        lines += 1;
    }
    assert_eq!(lines, 4);
}

/// A tiny ring (its largest record under the 64 bytes an event's room is clamped to): the
/// layer, logger and MakeWriter are built and write what fits, never a panic.
#[test]
fn a_tiny_ring_never_panics() {
    let mut maxima = Vec::new();
    for capacity in [16, 32, 64, 128] {
        let dir = tempfile::tempdir().unwrap();
        let Ok((layer, guard)) = Builder::new(dir.path())
            .writer(|w| w.capacity(capacity))
            .build()
        else {
            continue; // refused by the writer: fine
        };
        maxima.push(guard.emitter().max_record_len());
        let logger = guard.logger(log::LevelFilter::Info);
        log::Log::log(
            &logger,
            &log::Record::builder()
                .level(log::Level::Warn)
                .args(format_args!("from log"))
                .build(),
        );
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::info!(x = 1u64, "hello");
        });
        let fmt = tracing_subscriber::fmt()
            .with_writer(guard.make_writer())
            .finish();
        tracing::subscriber::with_default(fmt, || tracing::info!("a line longer than the ring"));
        guard.flush().unwrap();
        let mw = guard.make_writer();
        let mut w = tracing_subscriber::fmt::MakeWriter::make_writer(&mw);
        std::io::Write::write_all(&mut w, "a line longer than the ring\n".as_bytes()).unwrap();
        guard.shutdown().unwrap();
    }
    // The cases that matter were built: a largest record under 64 bytes, and under the
    // MakeWriter's 14-byte mark.
    assert!(maxima.iter().any(|&m| m < 14), "{maxima:?}");
    assert!(maxima.iter().any(|&m| (14..64).contains(&m)), "{maxima:?}");
}
