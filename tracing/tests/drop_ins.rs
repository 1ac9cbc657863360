//! The drop-ins: `MakeWriter` under `fmt` (one record per line, long lines cut and marked,
//! refusals counted in the log) and `Logger` (records cut short still decode).

mod common;

use common::{read, Item};
use ringwal_tracing::{Builder, Record, Value};

fn payloads(dir: &std::path::Path) -> Vec<Vec<u8>> {
    ringwal::Reader::open(dir)
        .unwrap()
        .iter()
        .map(|e| e.unwrap().payload)
        .collect()
}

#[test]
fn make_writer_writes_one_record_per_line_and_cuts_long_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path())
        .writer(|w| w.capacity(1 << 12))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(guard.make_writer())
        .with_ansi(false)
        .finish();
    let long = "y".repeat(5_000);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(n = 1, "first");
        tracing::warn!(big = %long, "second");
    });
    guard.shutdown().unwrap();
    let lines: Vec<String> = payloads(dir.path())
        .into_iter()
        .filter(|p| !ringwal_tracing::is_tracing_record(p))
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].ends_with("INFO drop_ins: first n=1"),
        "{}",
        lines[0]
    );
    assert!(!lines[0].ends_with('\n'));
    assert_eq!(
        lines[1].len(),
        (1 << 11) - 8,
        "cut to the ring's largest record"
    );
    assert!(lines[1].ends_with("…[truncated]"), "{}", &lines[1][2000..]);
}

#[test]
fn make_writer_refusals_are_counted_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path())
        .writer(|w| w.capacity(1 << 12).overflow(ringwal::Overflow::Reject))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(guard.make_writer())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..20_000u64 {
            tracing::info!(i, "storm");
        }
    });
    let report = guard.shutdown().unwrap();
    assert!(report.rejected > 0, "{report:?}");
    let mut lines = 0u64;
    let mut gaps = 0u64;
    for item in read(dir.path()) {
        match item {
            Item::Gap(n) => gaps += n,
            Item::Error(seq, e) => panic!("{seq}: {e}"),
            Item::Event(e) => panic!("no tracing events here: {e:?}"),
        }
    }
    for p in payloads(dir.path()) {
        lines += u64::from(!ringwal_tracing::is_tracing_record(&p));
    }
    assert_eq!(gaps, report.rejected);
    assert_eq!(lines + gaps, 20_000, "every line written or counted");
}

#[test]
fn a_log_record_cut_short_still_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path()).build().unwrap();
    // 64 bytes of room: the target alone does not fit.
    let logger = ringwal_tracing::Logger::new(guard.emitter().clone(), log::LevelFilter::Info, 64);
    let target = "t".repeat(100);
    log::Log::log(
        &logger,
        &log::Record::builder()
            .level(log::Level::Error)
            .target(&target)
            .args(format_args!("lost in the cut"))
            .build(),
    );
    guard.shutdown().unwrap();
    let mut decoder = ringwal_tracing::Decoder::new();
    let events: Vec<_> = payloads(dir.path())
        .iter()
        .filter_map(|p| match decoder.decode(p).unwrap() {
            Record::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 1);
    assert!(events[0].truncated);
    assert_eq!(events[0].level(), ringwal_tracing::Level::ERROR);
    assert_eq!(events[0].message(), Some(&Value::Debug(String::new())));
}

/// The `Logger`'s records, decoded.
fn log_events(dir: &std::path::Path) -> Vec<ringwal_tracing::Event> {
    let mut decoder = ringwal_tracing::Decoder::new();
    payloads(dir)
        .iter()
        .filter_map(|p| match decoder.decode(p).unwrap() {
            Record::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn log_key_values_are_fields_typed_as_the_layer_types_them() {
    use log::kv::Value as Kv;
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path()).build().unwrap();
    let logger = guard.logger(log::LevelFilter::Info);
    let addr = std::net::Ipv4Addr::new(10, 0, 0, 1);
    let path = std::path::Path::new("/tmp/a b");
    let kvs: [(&str, Kv<'_>); 9] = [
        ("count", Kv::from(7u64)),
        ("delta", Kv::from(-3i64)),
        ("ratio", Kv::from(0.5f64)),
        ("ok", Kv::from(true)),
        ("user", Kv::from("ann \"a\"")),
        ("grade", Kv::from('b')),
        ("addr", Kv::from_display(&addr)),
        ("path", Kv::from_debug(&path)),
        ("big", Kv::from(u128::MAX)),
    ];
    log::Log::log(
        &logger,
        &log::Record::builder()
            .level(log::Level::Info)
            .target("svc")
            .args(format_args!("served"))
            .key_values(&kvs)
            .build(),
    );
    // Through the macros' key-value syntax (as the README shows it); the macros check the
    // global max level, which `Logger::install` would have set.
    log::set_max_level(log::LevelFilter::Info);
    let p = std::path::Path::new("/srv");
    log::info!(logger: &logger, target: "svc", user = 42, path:? = p, n:% = 5; "via {}", "macro");
    // And without any: the message alone, as before key-values were written.
    log::Log::log(
        &logger,
        &log::Record::builder()
            .level(log::Level::Info)
            .args(format_args!("plain"))
            .build(),
    );
    guard.shutdown().unwrap();
    let events = log_events(dir.path());
    assert_eq!(events.len(), 3);
    let fields: Vec<(&str, &Value)> = events[0]
        .fields
        .iter()
        .map(|(n, v)| (n.as_str(), v))
        .collect();
    assert_eq!(
        fields,
        [
            ("message", &Value::Debug("served".into())),
            ("count", &Value::U64(7)),
            ("delta", &Value::I64(-3)),
            ("ratio", &Value::F64(0.5)),
            ("ok", &Value::Bool(true)),
            ("user", &Value::Str("ann \"a\"".into())),
            ("grade", &Value::Str("b".into())),
            ("addr", &Value::Debug("10.0.0.1".into())),
            ("path", &Value::Debug("\"/tmp/a b\"".into())),
            ("big", &Value::Debug(u128::MAX.to_string())),
        ]
    );
    assert!(!events[0].truncated);
    assert_eq!(events[0].callsite.fields[1..3], ["count", "delta"]);
    // Rendered as `fmt` renders an event's fields.
    let mut line = String::new();
    events[0].write_text(&mut line);
    assert!(
        line.ends_with(
            " INFO svc: served count=7 delta=-3 ratio=0.5 ok=true user=\"ann \\\"a\\\"\" \
             grade=\"b\" addr=10.0.0.1 path=\"/tmp/a b\" big=340282366920938463463374607431768211455"
        ),
        "{line}"
    );
    assert_eq!(
        events[1].fields,
        [
            ("message".to_owned(), Value::Debug("via macro".into())),
            ("user".to_owned(), Value::I64(42)),
            ("path".to_owned(), Value::Debug("\"/srv\"".into())),
            ("n".to_owned(), Value::Debug("5".into())),
        ]
    );
    assert_eq!(
        events[2].fields,
        [("message".to_owned(), Value::Debug("plain".into()))]
    );
}

#[test]
fn log_key_values_that_do_not_fit_are_cut_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_layer, guard) = Builder::new(dir.path()).build().unwrap();
    // 64 bytes: the header (4 + 1 + 8 + 8 + 4 = 25), target "t" (3), no module or file
    // (2 + 2), the message "m" (4 + 1) leave 27: "first" (2 + 5 + 1 + 8) fits, then
    // "second" (2 + 6 + 1 + 4 + 10) does not, and "third" after it is not written either.
    let logger = ringwal_tracing::Logger::new(guard.emitter().clone(), log::LevelFilter::Info, 64);
    let kvs: [(&str, &dyn log::kv::ToValue); 3] = [
        ("first", &1u64),
        ("second", &"0123456789"),
        ("third", &true),
    ];
    log::Log::log(
        &logger,
        &log::Record::builder()
            .level(log::Level::Warn)
            .target("t")
            .args(format_args!("m"))
            .key_values(&kvs)
            .build(),
    );
    guard.shutdown().unwrap();
    let events = log_events(dir.path());
    assert_eq!(events.len(), 1);
    assert!(events[0].truncated);
    assert_eq!(
        events[0].fields,
        [
            ("message".to_owned(), Value::Debug("m".into())),
            ("first".to_owned(), Value::U64(1)),
        ]
    );
}
