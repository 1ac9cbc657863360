//! tracing-subscriber end to end: events in spans from several threads come back with their
//! fields, levels, spans and order.

mod common;

use common::{events, read, Item};
use ringwal_tracing::{Builder, Record, Value};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug)]
#[allow(dead_code)]
struct Order {
    id: u32,
}

#[test]
fn events_in_spans_from_several_threads_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    const THREADS: u64 = 4;
    const EVENTS: u64 = 500;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let worker = tracing::info_span!("worker", t);
                    let _w = worker.enter();
                    for i in 0..EVENTS {
                        let req = tracing::debug_span!("request", i, path = "/orders");
                        let _r = req.enter();
                        tracing::info!(
                            thread = t,
                            seq = i,
                            neg = -(i as i64),
                            ratio = 0.5,
                            ok = true,
                            order = ?Order { id: i as u32 },
                            shown = %i,
                            "order {} filled",
                            i
                        );
                        if i % 100 == 0 {
                            tracing::warn!(late = i, "slow");
                        }
                    }
                });
            });
        }
    });
    let report = guard.shutdown().unwrap();
    assert_eq!(report.rejected, 0);

    let events = events(read(dir.path()));
    assert_eq!(events.len() as u64, THREADS * (EVENTS + EVENTS / 100));
    let mut next = [0u64; THREADS as usize];
    for e in &events {
        let t = match e.field("thread").or(e
            .scope
            .first()
            .and_then(|w| w.fields.iter().find(|f| f.0 == "t").map(|f| &f.1)))
        {
            Some(Value::U64(t)) => *t,
            other => panic!("no thread in {e:?}: {other:?}"),
        };
        // Scope: worker{t} > request{i, path}.
        assert_eq!(e.scope.len(), 2, "{e:?}");
        assert_eq!(e.scope[0].callsite.name, "worker");
        assert_eq!(e.scope[0].fields, vec![("t".to_owned(), Value::U64(t))]);
        assert_eq!(e.scope[1].callsite.name, "request");
        if e.level() == tracing::Level::WARN {
            assert_eq!(e.message(), Some(&Value::Debug("slow".into())));
            continue;
        }
        let i = next[t as usize];
        next[t as usize] += 1;
        assert_eq!(e.level(), tracing::Level::INFO);
        assert_eq!(e.target(), "end_to_end");
        assert_eq!(
            e.scope[1].fields,
            vec![
                ("i".to_owned(), Value::U64(i)),
                ("path".to_owned(), Value::Str("/orders".into()))
            ]
        );
        assert_eq!(
            e.fields,
            vec![
                (
                    "message".to_owned(),
                    Value::Debug(format!("order {i} filled"))
                ),
                ("thread".to_owned(), Value::U64(t)),
                ("seq".to_owned(), Value::U64(i)),
                ("neg".to_owned(), Value::I64(-(i as i64))),
                ("ratio".to_owned(), Value::F64(0.5)),
                ("ok".to_owned(), Value::Bool(true)),
                (
                    "order".to_owned(),
                    Value::Debug(format!("Order {{ id: {i} }}"))
                ),
                ("shown".to_owned(), Value::Debug(i.to_string())),
            ]
        );
        assert!(!e.truncated);
    }
    assert_eq!(
        next, [EVENTS; THREADS as usize],
        "each thread's events, in its order"
    );
}

#[test]
fn text_and_json_render_like_fmt() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing::info_span!("conn", peer = "10.0.0.7");
        let _e = span.enter();
        span.record("peer", "10.0.0.8");
        tracing::error!(code = 503u16, "upstream \"down\"");
    });
    guard.shutdown().unwrap();
    let events = events(read(dir.path()));
    let mut text = String::new();
    events[0].write_text(&mut text);
    let after_time = &text[27..];
    assert_eq!(
        after_time,
        r#" ERROR conn{peer="10.0.0.8"}: end_to_end: upstream "down" code=503"#
    );
    let mut json = String::new();
    events[0].write_json(&mut json);
    let after_time = &json[42..];
    assert_eq!(
        after_time,
        r#","level":"ERROR","fields":{"message":"upstream \"down\"","code":503},"target":"end_to_end","span":{"peer":"10.0.0.8","name":"conn"},"spans":[{"peer":"10.0.0.8","name":"conn"}],"threadId":1}"#
            .replace("\"threadId\":1", &format!("\"threadId\":{}", events[0].thread))
    );
}

#[test]
fn an_event_larger_than_its_room_is_cut_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).event_bytes(100).build().unwrap();
    let long = "x".repeat(300);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(a = 1u64, big = %long, after = 2, "m");
    });
    guard.shutdown().unwrap();
    let events = events(read(dir.path()));
    let e = &events[0];
    assert!(e.truncated);
    assert_eq!(e.field("a"), Some(&Value::U64(1)));
    match e.field("big") {
        Some(Value::Debug(s)) => assert!(s.len() < 100 && s.chars().all(|c| c == 'x')),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.field("after"), None);
}

#[test]
fn a_suffix_without_the_metadata_is_an_error_in_place_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // The system clock: no clock records (version 1), so the records are where said below.
    let (layer, guard) = Builder::new(dir.path()).tsc(false).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..3 {
            tracing::info!(i, "tick");
        }
    });
    guard.shutdown().unwrap();
    // Records: session 0, callsite 1, events 2.. : start after the callsite (the segment's
    // preamble has no callsite: the segment began before it was seen).
    let items = common::read_with(dir.path(), &mut ringwal_tracing::Decoder::new(), 2);
    assert_eq!(items.len(), 3);
    for item in items {
        assert!(
            matches!(
                item,
                Item::Error(_, ringwal_tracing::DecodeError::UnknownCallsite(_))
            ),
            "{item:?}"
        );
    }
    let mut decoder = ringwal_tracing::Decoder::new();
    let first = ringwal::Reader::open(dir.path())
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .unwrap();
    assert!(matches!(
        decoder.decode(&first.payload),
        Ok(Record::Session { .. })
    ));
}

/// An error with a source, as services log them.
#[derive(Debug)]
struct Failed(std::io::Error);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("write failed")
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// `Vec<u8>` behind a lock, as fmt's writer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The same events through `tracing_subscriber::fmt` and through the Layer: `write_text`
/// gives fmt's lines (after the timestamp, which fmt's test writer leaves out).
#[test]
fn text_is_fmt_s_text_for_the_same_events() {
    fn emit() {
        let outer = tracing::info_span!("conn", peer = "10.0.0.7", tries = 2u64);
        let _o = outer.enter();
        let inner = tracing::debug_span!("req", r#type = "get", state = tracing::field::Empty);
        let _i = inner.enter();
        inner.record("state", "sent");
        let named = tracing::trace_span!("named", name = "nm", message = "span message");
        let _n = named.enter();
        tracing::info!(user = 42, order = %"A-17", "order filled");
        tracing::info!(message = "explicit str message", k = 1);
        tracing::warn!("title \u{1b}]0;pwned\u{7} bell \u{7f} c1 \u{9b}31m end");
        tracing::info!(s = "quote \" nl \n esc \u{1b}", d = ?"dbg", shown = %"disp");
        tracing::info!(
            one = 1.0,
            big = 1e20,
            small = 1e-7,
            nan = f64::NAN,
            inf = f64::INFINITY,
            neg = -0.0
        );
        tracing::info!(b = true, i = -5i64, u = 7u64);
        let e = Failed(std::io::Error::other("disk gone"));
        tracing::error!(
            error = &e as &(dyn std::error::Error + 'static),
            "op failed"
        );
        let bare = std::io::Error::other("no source");
        tracing::error!(error = &bare as &(dyn std::error::Error + 'static));
        tracing::info!(no_message = 3);
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let fmt = tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(fmt, emit);
    let fmt_text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
    guard.shutdown().unwrap();
    let ours: Vec<String> = events(read(dir.path()))
        .iter()
        .map(|e| {
            let mut line = String::new();
            e.write_text(&mut line);
            // fmt without a timer starts at the level.
            line[27..].trim_start().to_owned()
        })
        .collect();
    let theirs: Vec<&str> = fmt_text.lines().map(str::trim_start).collect();
    assert_eq!(ours.len(), 9);
    // fmt writes a value with a newline in it (a `str`'s, quoted and escaped by Debug, has
    // none): one line per event.
    assert_eq!(ours, theirs);
}

#[test]
fn json_is_valid_and_shaped_like_fmt_s() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing::info_span!("conn", big = tracing::field::Empty);
        let _e = span.enter();
        span.record("big", "x".repeat(1_000).as_str());
        tracing::info!(
            one = 1.0,
            nan = f64::NAN,
            inf = f64::NEG_INFINITY,
            c1 = "\u{9b}31m",
            del = "\u{7f}",
            esc = %"\u{1b}[2J",
            "m"
        );
    });
    guard.shutdown().unwrap();
    let events = events(read(dir.path()));
    let mut json = String::new();
    events[0].write_json(&mut json);
    let fields = &json[json.find("\"fields\"").unwrap()..json.find(",\"target\"").unwrap()];
    assert_eq!(
        fields,
        r#""fields":{"message":"m","one":1.0,"nan":null,"inf":null,"c1":"\u009b31m","del":"\u007f","esc":"\u001b[2J"}"#
    );
    // The span's record was cut (the default 512-byte room): said in the span, as the
    // text says `[truncated]` inside its braces.
    assert!(events[0].scope[0].truncated);
    assert!(
        json.contains(",\"name\":\"conn\",\"truncated\":true}"),
        "{json}"
    );
    let mut text = String::new();
    events[0].write_text(&mut text);
    assert!(text.contains("x\" [truncated]}: end_to_end: m"), "{text}");
    // Nothing a terminal acts on, in either.
    for c in ['\u{1b}', '\u{7f}', '\u{9b}'] {
        assert!(!json.contains(c) && !text.contains(c), "{c:?}");
    }
}

#[test]
fn log_records_bridged_by_log_tracer_show_their_own_target() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = Builder::new(dir.path()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // What `tracing_log::LogTracer` makes of `log::info!(target: "legacy", "hello")`.
        tracing::event!(
            target: "log",
            tracing::Level::INFO,
            log.target = "legacy",
            log.module_path = "app::db",
            log.file = "src/db.rs",
            log.line = 12u64,
            "hello"
        );
    });
    guard.shutdown().unwrap();
    let events = events(read(dir.path()));
    let e = &events[0];
    assert_eq!(e.target(), "legacy");
    assert_eq!(e.callsite.module_path.as_deref(), Some("app::db"));
    assert_eq!(e.callsite.file.as_deref(), Some("src/db.rs"));
    assert_eq!(e.callsite.line, Some(12));
    assert_eq!(
        e.fields,
        vec![("message".to_owned(), Value::Debug("hello".into()))]
    );
    let mut text = String::new();
    e.write_text(&mut text);
    assert!(text.ends_with("  INFO legacy: hello"), "{text}");
}
