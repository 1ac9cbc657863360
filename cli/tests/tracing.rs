//! `ringwal cat` and `tail` on a log written by ringwal-tracing: fmt-like text, JSON, filters,
//! gaps in place, and a plain text line (MakeWriter's) among them.

use std::process::{Command, Output};
use tracing_subscriber::layer::SubscriberExt as _;

fn ringwal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringwal"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn lines(o: &Output) -> Vec<String> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The part after the timestamp (27 characters).
fn untimed(line: &str) -> &str {
    &line[27..]
}

fn write_log(dir: &std::path::Path) {
    let (layer, guard) = ringwal_tracing::Builder::new(dir).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let conn = tracing::info_span!("conn", peer = "10.0.0.7");
        let _c = conn.enter();
        tracing::info!(user = 42u64, order = %"A-17", "order filled");
        tracing::debug!(target: "shop::db", rows = 3u64, "query");
        tracing::warn!(free_pct = 3.5, "disk nearly full");
    });
    // A plain text record in the same log.
    guard.emitter().emit(b"plain line").unwrap();
    guard.shutdown().unwrap();
}

#[test]
fn cat_renders_tracing_records_like_fmt() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = lines(&ringwal(&["cat", d]));
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(
        untimed(&out[0]),
        r#"  INFO conn{peer="10.0.0.7"}: tracing: order filled user=42 order=A-17"#
    );
    assert_eq!(
        untimed(&out[1]),
        r#" DEBUG conn{peer="10.0.0.7"}: shop::db: query rows=3"#
    );
    assert_eq!(
        untimed(&out[2]),
        r#"  WARN conn{peer="10.0.0.7"}: tracing: disk nearly full free_pct=3.5"#
    );
    assert!(out[3].ends_with("\tplain line"), "{}", out[3]);

    let out = lines(&ringwal(&["cat", d, "--level", "info"]));
    assert_eq!(out.len(), 3, "{out:?}");
    let out = lines(&ringwal(&["cat", d, "--target", "shop"]));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].ends_with("query rows=3"));
    let out = lines(&ringwal(&["cat", d, "--until", "2000-01-01T00:00:00Z"]));
    assert_eq!(out, vec![out[0].clone()], "only the plain line");
    let out = lines(&ringwal(&["cat", d, "--since", "2000-01-01T00:00:00Z"]));
    assert_eq!(out.len(), 4);

    let out = lines(&ringwal(&["cat", d, "--format", "json", "--level", "warn"]));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].starts_with("{\"timestamp\":\""), "{}", out[0]);
    assert!(
        out[0].contains(r#","level":"WARN","fields":{"message":"disk nearly full","free_pct":3.5},"target":"tracing","span":{"peer":"10.0.0.7","name":"conn"},"spans":[{"peer":"10.0.0.7","name":"conn"}],"threadId":"#),
        "{}",
        out[0]
    );

    // -n counts lines shown: the span's close between the warning and the plain line shows
    // nothing and does not count.
    let out = lines(&ringwal(&["tail", "-n", "3", d]));
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out[0].ends_with("shop::db: query rows=3"), "{out:?}");
    assert!(out[1].ends_with("disk nearly full free_pct=3.5"), "{out:?}");
    assert!(out[2].ends_with("\tplain line"), "{out:?}");
}

#[test]
fn refusals_show_in_place_and_corrupt_records_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = ringwal_tracing::Builder::new(dir.path())
        .writer(|w| w.capacity(8192))
        .event_bytes(128)
        .build()
        .unwrap();
    // A corrupt tracing record (the tag, then a kind nobody knows), after the layer's session
    // record and, if it reads the time-stamp counter, its clock record.
    let corrupt_seq = if format!("{layer:?}").contains("tsc: true") {
        2
    } else {
        1
    };
    guard.emitter().emit(&[0xFF, b'T', 1, 42]).unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..20_000u64 {
            tracing::info!(i, "storm");
            if i % 1000 == 0 {
                // Let the writer catch up now and then: some events get through.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    });
    let report = guard.shutdown().unwrap();
    assert!(report.rejected > 0, "{report:?}");
    let d = dir.path().to_str().unwrap();
    let out = lines(&ringwal(&["cat", d]));
    let mut refused = 0u64;
    let mut events = 0u64;
    let mut errors = 0;
    for l in &out {
        if *l == format!("-- record {corrupt_seq}: unknown tracing record kind 42 --") {
            errors += 1;
        } else if l.starts_with("-- record ") && l.contains("not described earlier") {
            // An event whose callsite record the ring refused: an error in its place.
            events += 1;
        } else if let Some(rest) = l.strip_prefix("-- ") {
            let n: u64 = rest.split(' ').next().unwrap().parse().unwrap();
            assert!(rest.contains("refused"), "{l}");
            refused += n;
        } else {
            assert!(l.contains("storm i="), "{l}");
            events += 1;
        }
    }
    assert_eq!(errors, 1);
    assert_eq!(refused, report.rejected);
    assert!(events > 0);
    assert!(events + refused >= 20_000, "{events} + {refused}");
}

/// 600 events (`i` 0..600) in spans into 4 KiB segments, the oldest deleted by retention.
/// Returns whether the layer read the time-stamp counter (then each preamble holds a clock
/// record too).
fn write_rotated_log(dir: &std::path::Path) -> bool {
    let (layer, guard) = ringwal_tracing::Builder::new(dir)
        .writer(|w| {
            w.segment_bytes(4 << 10)
                .retain(ringwal::Retain::Segments(4))
                .overflow(ringwal::Overflow::Block(None))
        })
        .build()
        .unwrap();
    let tsc = format!("{layer:?}").contains("tsc: true");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..600u64 {
            let span = tracing::info_span!("job", n = i);
            let _e = span.enter();
            tracing::info!(i, "step");
        }
    });
    guard.shutdown().unwrap();
    tsc
}

/// The `i=` of each line (all lines must be events).
fn event_numbers(out: &[String]) -> Vec<u64> {
    out.iter()
        .map(|l| {
            let at = l
                .rfind(" i=")
                .unwrap_or_else(|| panic!("not an event: {l}"));
            l[at + 3..].parse().unwrap()
        })
        .collect()
}

#[test]
fn cat_and_tail_decode_any_suffix_of_a_rotated_log() {
    let dir = tempfile::tempdir().unwrap();
    let tsc = write_rotated_log(dir.path());
    let d = dir.path().to_str().unwrap();
    let reader = ringwal::Reader::open(dir.path()).unwrap();
    let segments = reader.segments().unwrap();
    assert_eq!(segments.len(), 4);
    assert!(segments[0].first_seq > 0, "retention deleted the oldest");

    // Everything retention kept decodes (each segment's preamble describes the callsites).
    let all = event_numbers(&lines(&ringwal(&["cat", d])));
    assert_eq!(all.last(), Some(&599));
    assert_eq!(all, (all[0]..600).collect::<Vec<_>>());
    // From the middle of a segment: the records before `--from` in it are taken in.
    let mid = segments[2].first_seq + 3;
    let from = event_numbers(&lines(&ringwal(&["cat", d, "--from", &mid.to_string()])));
    assert_eq!(from.last(), Some(&599));
    assert!(from.len() < all.len());
    // `info` shows each segment's preamble (the span's and the event's callsites, the clock
    // if it is the time-stamp counter, and the `job` span if one was open where the segment
    // began).
    let info = lines(&ringwal(&["info", d]));
    let frames = |spans: usize| format!("(preamble: {} frames)", 2 + usize::from(tsc) + spans);
    assert_eq!(
        info.iter()
            .filter(|l| l.ends_with(&frames(0)) || l.ends_with(&frames(1)))
            .count(),
        4,
        "{info:?}"
    );
    // `tail -n` counts lines shown, not records (span records show nothing).
    let tail = lines(&ringwal(&["tail", d, "-n", "5"]));
    assert_eq!(event_numbers(&tail), [595, 596, 597, 598, 599]);
    assert!(
        tail[4].contains("job{n=599}: tracing: step i=599"),
        "{tail:?}"
    );
    // More lines than the log shows: all of it (reading back to the oldest segment); a filter
    // nothing passes: nothing.
    let everything = lines(&ringwal(&["tail", d, "-n", "100000"]));
    assert_eq!(event_numbers(&everything), all);
    assert!(lines(&ringwal(&["tail", d, "-n", "3", "--target", "nothing"])).is_empty());
}
