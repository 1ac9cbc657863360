//! Runs the `ringwal` binary: every subcommand, on logs made here (clean, torn, corrupt), and
//! the exit codes.

use ringwal::format::{self, encode_frame};
use ringwal::{Batch, LogOptions, SegmentLog, Sink};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `ringwal tail -f` running, its stdout read line by line on a thread, so that a wait for a
/// line is bounded: a regression fails the test instead of hanging CI. Killed when dropped.
struct Follow {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Follow {
    /// Starts `ringwal ARGS` with stdout piped (stderr piped too if `stderr`).
    fn start(args: &[&str], stderr: bool) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringwal"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(if stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follow { child, lines }
    }

    /// The next line it prints, waiting at most 60 s.
    fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("tail -f printed no line within 60 s")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("tail -f ended: {:?}", self.child.try_wait())
            }
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ringwal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringwal"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A one-line error, no panic, no backtrace.
fn assert_clean_error(o: &Output, code: i32, mentions: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("ringwal: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    for m in mentions {
        assert!(err.contains(m), "error should mention {m:?}: {err}");
    }
}

/// A log with `payloads` as records (seq from 0), `dropped` giving each record's
/// `dropped_before`, split into segments of at most `segment_bytes`.
fn make_log(dir: &Path, payloads: &[&[u8]], dropped: &[u64], segment_bytes: u64) {
    let mut log = SegmentLog::open(
        dir,
        LogOptions {
            segment_bytes,
            ..LogOptions::default()
        },
    )
    .unwrap();
    for (i, p) in payloads.iter().enumerate() {
        let mut frame = Vec::new();
        encode_frame(
            &mut frame,
            i as u64,
            dropped.get(i).copied().unwrap_or(0),
            p,
        );
        log.append(&Batch::new(&frame, i as u64, 1).unwrap())
            .unwrap();
    }
    log.sync().unwrap();
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut s: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rwl"))
        .collect();
    s.sort();
    s
}

/// The first record's number of the segment file at `path`, from its name.
fn first_seq_of(path: &Path) -> u64 {
    format::parse_segment_file_name(path.file_name().unwrap().to_str().unwrap()).unwrap()
}

#[test]
fn demo_runs_checks_and_prints_the_tables() {
    let o = ringwal(&["demo", "--seconds", "0.3"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(
        out.contains("Reject     kept [1, 2, 3, 4]  rejected (handed back) [5, 6, 7, 8]"),
        "{out}"
    );
    assert!(
        out.contains("DropOldest kept [5, 6, 7, 8]  dropped 4 (the log says: 4 dropped before 5)"),
        "{out}"
    );
    assert!(
        out.contains("Block      kept [1, 2, 3, 4, 5, 6, 7, 8]"),
        "{out}"
    );
    for policy in ["Reject", "DropOldest", "Block"] {
        assert!(
            out.contains(&format!("   {policy:<10} ok: ")),
            "{policy}: {out}"
        );
    }
    assert!(out.contains("p99.9"), "{out}");
    assert!(out.trim_end().ends_with("all invariants held"), "{out}");
    // Not a terminal: no progress line.
    assert!(!out.contains('\r'), "progress line written to a pipe");
}

#[test]
fn demo_keeps_its_logs_in_a_given_dir_and_refuses_to_reuse_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let root_s = root.to_str().unwrap();
    let args = [
        "demo",
        "--seconds",
        "0.2",
        "--policy",
        "block",
        "--producers",
        "1",
        "--sync",
        "never",
        "--dir",
        root_s,
    ];
    let o = ringwal(&args);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("logs kept in"));
    // The kept log verifies clean.
    let v = ringwal(&["verify", root.join("overload-block").to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    let again = ringwal(&args);
    assert_clean_error(&again, 2, &["not empty"]);
}

/// `ringwal demo | head`: stdout closed before the demo writes; it runs its checks without
/// printing and exits by them (0: every invariant held), instead of panicking ("failed
/// printing to stdout", status 101).
#[test]
fn demo_ends_quietly_when_stdout_is_closed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringwal"))
        .args(["demo", "--seconds", "0.05", "--policy", "reject"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader has gone before the first line
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
}

#[test]
fn demo_rejects_bad_options() {
    assert_clean_error(&ringwal(&["demo", "--seconds", "0"]), 2, &["--seconds"]);
    assert_clean_error(&ringwal(&["demo", "--producers", "0"]), 2, &["--producers"]);
    let o = ringwal(&["demo", "--sync", "sometimes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("sometimes"));
}

#[test]
fn cat_prints_records_gaps_and_escapes() {
    let dir = tempfile::tempdir().unwrap();
    make_log(
        dir.path(),
        &[b"hello", b"caf\xc3\xa9\n", b"\xff\x00bin"],
        &[0, 3, 0],
        1 << 20,
    );
    let d = dir.path().to_str().unwrap();
    let text = ringwal(&["cat", d]);
    assert!(text.status.success());
    assert_eq!(
        stdout(&text),
        "0\thello\n-- 3 events dropped --\n1\tcafé\\n\n2\t\\xff\\u{0}bin\n"
    );
    let hex = ringwal(&["cat", d, "--format", "hex"]);
    assert_eq!(
        stdout(&hex),
        "0\t68656c6c6f\n-- 3 events dropped --\n1\t636166c3a90a\n2\tff0062696e\n"
    );
    let json = ringwal(&["cat", d, "--format", "json"]);
    assert_eq!(
        stdout(&json),
        "{\"seq\":0,\"dropped_before\":0,\"refused_before\":0,\"payload\":\"hello\"}\n\
         {\"gap\":3,\"refused\":0,\"before_seq\":1}\n\
         {\"seq\":1,\"dropped_before\":3,\"refused_before\":0,\"payload\":\"café\\n\"}\n\
         {\"seq\":2,\"dropped_before\":0,\"refused_before\":0,\"payload_hex\":\"ff0062696e\"}\n"
    );
    let from = ringwal(&["cat", d, "--from", "2", "--format", "hex"]);
    assert_eq!(stdout(&from), "2\tff0062696e\n");
}

#[test]
fn verify_clean_torn_and_corrupt_logs() {
    let payloads: Vec<Vec<u8>> = (0..40u32)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();

    let clean = tempfile::tempdir().unwrap();
    make_log(clean.path(), &refs, &[0, 0, 2], 200);
    let o = ringwal(&["verify", clean.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let n = segments(clean.path()).len();
    assert!(n > 2);
    assert!(out.contains(&format!("segments:   {n}\n")), "{out}");
    assert!(out.contains("records:    40 (sequence 0..=39)"), "{out}");
    assert!(
        out.contains("gaps:       1 (2 events dropped, 0 refused)"),
        "{out}"
    );
    assert!(out.contains("result:     clean"), "{out}");

    let torn = tempfile::tempdir().unwrap();
    make_log(torn.path(), &refs, &[], 200);
    let last = segments(torn.path()).pop().unwrap();
    let mut frame = Vec::new();
    encode_frame(&mut frame, 40, 0, b"cut short by a crash");
    let mut bytes = fs::read(&last).unwrap();
    let clean_len = bytes.len();
    bytes.extend_from_slice(&frame[..frame.len() - 5]);
    fs::write(&last, &bytes).unwrap();
    let o = ringwal(&["verify", torn.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("at offset {clean_len}")), "{out}");
    assert!(out.contains("torn tail only"), "{out}");

    let corrupt = tempfile::tempdir().unwrap();
    make_log(corrupt.path(), &refs, &[], 200);
    let first = segments(corrupt.path()).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    let flip = format::HEADER_LEN + format::FRAME_HEADER_LEN + 2; // inside the first payload
    bytes[flip] ^= 0x10;
    fs::write(&first, &bytes).unwrap();
    let o = ringwal(&["verify", corrupt.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let name = first.file_name().unwrap().to_str().unwrap();
    assert!(
        out.contains(name) && out.contains(&format!("at offset {}", format::HEADER_LEN)),
        "{out}"
    );
    assert!(out.contains("result:     CORRUPT"), "{out}");
    // cat stops at the damage with a one-line error naming the file.
    let o = ringwal(&["cat", corrupt.path().to_str().unwrap()]);
    assert_clean_error(&o, 2, &[name, "offset"]);
}

#[test]
fn bad_directories_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let not_a_log = dir.path().join("other");
    fs::create_dir(&not_a_log).unwrap();
    fs::write(not_a_log.join("notes.txt"), b"hi").unwrap();
    for cmd in ["cat", "verify", "tail", "info"] {
        assert_clean_error(
            &ringwal(&[cmd, missing.to_str().unwrap()]),
            2,
            &["nope", "no such directory"],
        );
        assert_clean_error(
            &ringwal(&[cmd, file.to_str().unwrap()]),
            2,
            &["file", "not a log directory"],
        );
        assert_clean_error(
            &ringwal(&[cmd, not_a_log.to_str().unwrap()]),
            2,
            &["other", "not a ringwal log"],
        );
    }
    // A segment from a newer format version.
    let newer = dir.path().join("newer");
    make_log(&newer, &[b"a"], &[], 1 << 20);
    let seg = segments(&newer).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    let newer_version = ringwal::format::VERSION + 1;
    bytes[8..12].copy_from_slice(&newer_version.to_le_bytes());
    let crc = ringwal::format::crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    assert_clean_error(
        &ringwal(&["cat", newer.to_str().unwrap()]),
        2,
        &[&format!("version {newer_version}")],
    );
    let v = ringwal(&["verify", newer.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(2));
    assert!(
        stdout(&v).contains(&format!("version {newer_version}")),
        "{}",
        stdout(&v)
    );
}

#[test]
fn info_lists_segments_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..30u32).map(|i| vec![b'x'; 10 + i as usize]).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    make_log(dir.path(), &refs, &[], 300);
    let o = ringwal(&["info", dir.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    let segs = segments(dir.path());
    let total_bytes: u64 = segs.iter().map(|s| fs::metadata(s).unwrap().len()).sum();
    for s in &segs {
        assert!(
            out.contains(s.file_name().unwrap().to_str().unwrap()),
            "{out}"
        );
    }
    assert!(
        out.contains("sequence range") && out.contains("0..="),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "total: {} segments, 30 records, {total_bytes} bytes",
            segs.len()
        )),
        "{out}"
    );
}

#[test]
fn tail_prints_the_last_records_and_follows_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let (writer, emitter) = ringwal::Writer::builder(dir.path())
        .segment_bytes(256)
        .start::<String>()
        .unwrap();
    for i in 0..20 {
        emitter.emit(format!("event {i}")).unwrap();
    }
    emitter.flush().unwrap();
    let o = ringwal(&["tail", "-n", "3", &d]);
    assert_eq!(stdout(&o), "17\tevent 17\n18\tevent 18\n19\tevent 19\n");

    let mut follow = Follow::start(&["tail", "-f", "-n", "1", &d], false);
    assert_eq!(follow.next_line(), "19\tevent 19");
    // New records, across several segment rotations (256-byte segments).
    for i in 20..40 {
        emitter.emit(format!("event {i}")).unwrap();
    }
    emitter.flush().unwrap();
    for i in 20..40 {
        assert_eq!(follow.next_line(), format!("{i}\tevent {i}"));
    }
    drop(follow);
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, report.persisted + report.dropped);
    assert!(segments(dir.path()).len() > 3);
}

/// `tail -f` falls behind a writer whose retention deletes segments before it reads them
/// (it is stopped with SIGSTOP meanwhile): it warns on stderr which records went and goes on
/// following, instead of exiting.
#[test]
fn tail_follows_on_when_retention_deletes_records_it_had_not_read() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let (writer, emitter) = ringwal::Writer::builder(dir.path())
        .segment_bytes(256)
        .retain(ringwal::Retain::Segments(2))
        .start::<String>()
        .unwrap();
    for i in 0..5 {
        emitter.emit(format!("event {i}")).unwrap();
    }
    emitter.flush().unwrap();
    let mut follow = Follow::start(&["tail", "-f", "-n", "1", &d], true);
    assert_eq!(follow.next_line(), "4\tevent 4");
    let pid = follow.child.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig}");
    };
    signal("-STOP");
    for i in 5..400 {
        emitter.emit(format!("event {i}")).unwrap();
    }
    emitter.flush().unwrap();
    // Retention keeps two 256-byte segments: record 5 is long gone.
    assert!(!segments(dir.path())[0].ends_with(format::segment_file_name(0)));
    signal("-CONT");
    let mut last = 4;
    let mut gaps = Vec::new();
    loop {
        let line = follow.next_line();
        let seq: u64 = line.split('\t').next().unwrap().parse().unwrap();
        assert!(seq > last, "{seq} after {last}");
        if seq > last + 1 {
            gaps.push((last + 1, seq - 1));
        }
        last = seq;
        if seq == 399 {
            break;
        }
    }
    // Still following after the warning.
    emitter.emit("event 400".to_string()).unwrap();
    emitter.flush().unwrap();
    assert_eq!(follow.next_line(), "400\tevent 400");
    follow.child.kill().unwrap();
    follow.child.wait().unwrap();
    let mut err = String::new();
    follow
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.starts_with("ringwal tail: warning: ") && err.contains("deleted by retention"),
        "{err}"
    );
    // Each gap in what it printed is one warning naming exactly those records.
    assert!(
        !gaps.is_empty(),
        "retention deleted records tail had not read"
    );
    assert_eq!(err.lines().count(), gaps.len(), "{err}");
    for (from, to) in gaps {
        assert!(
            err.contains(&format!("records {from} to {to} were")),
            "{err}"
        );
    }
    drop(emitter);
    writer.shutdown().unwrap();
}

#[test]
fn help_documents_verify_exit_codes() {
    let o = ringwal(&["verify", "--help"]);
    let out = stdout(&o);
    assert!(
        out.contains("0  clean")
            && out.contains("1  torn tail only")
            && out.contains("2  corruption"),
        "{out}"
    );
}

/// Refusals (format version 2) show where they happened, in `cat` (text and JSON), `verify`
/// and `info`, including a shutdown's gap marker after the last record.
#[test]
fn refusals_and_trailing_markers_show_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
    let mut frames = Vec::new();
    ringwal::format::encode_frame_with(&mut frames, 0, 0, 0, b"a");
    ringwal::format::encode_frame_with(&mut frames, 1, 2, 5, b"b");
    frames.extend_from_slice(&ringwal::format::encode_marker(2, 1, 7));
    log.append(&Batch::new(&frames, 0, 2).unwrap()).unwrap();
    log.sync().unwrap();
    drop(log);
    let d = dir.path().to_str().unwrap();
    let text = ringwal(&["cat", d]);
    assert!(text.status.success());
    assert_eq!(
        stdout(&text),
        "0\ta\n-- 2 events dropped, 5 events refused --\n1\tb\n\
         -- 1 event dropped, 7 events refused (end of log) --\n"
    );
    let json = ringwal(&["cat", d, "--format", "json"]);
    assert_eq!(
        stdout(&json),
        "{\"seq\":0,\"dropped_before\":0,\"refused_before\":0,\"payload\":\"a\"}\n\
         {\"gap\":2,\"refused\":5,\"before_seq\":1}\n\
         {\"seq\":1,\"dropped_before\":2,\"refused_before\":5,\"payload\":\"b\"}\n\
         {\"gap\":1,\"refused\":7,\"at_end\":true}\n"
    );
    let v = ringwal(&["verify", d]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("gaps:       2 (3 events dropped, 12 refused)"),
        "{}",
        stdout(&v)
    );
    let i = ringwal(&["info", d]);
    assert!(
        stdout(&i).contains("lost: 3 dropped, 12 refused"),
        "{}",
        stdout(&i)
    );
}

/// `tail` shows the losses after the last record (a writer's shutdown marker), as `cat` does;
/// `tail -f` shows them when the marker is written, and not again on the record after it
/// (whose `dropped_before`/`refused_before` the reader gives them to).
#[test]
fn tail_shows_losses_at_the_end_of_the_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let append = |frames: &[u8], first_seq: u64, records: u64| {
        let mut log = SegmentLog::open(dir.path(), LogOptions::default()).unwrap();
        log.append(&Batch::new(frames, first_seq, records).unwrap())
            .unwrap();
        log.sync().unwrap();
    };
    let mut frames = Vec::new();
    format::encode_frame_with(&mut frames, 0, 0, 0, b"a");
    format::encode_frame_with(&mut frames, 1, 0, 0, b"b");
    frames.extend_from_slice(&format::encode_marker(2, 1, 7));
    append(&frames, 0, 2);
    let end = "-- 1 event dropped, 7 events refused (end of log) --";
    let o = ringwal(&["tail", "-n", "1", &d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("1\tb\n{end}\n"));
    let o = ringwal(&["tail", "-n", "1", "--format", "json", &d]);
    assert_eq!(
        stdout(&o),
        "{\"seq\":1,\"dropped_before\":0,\"refused_before\":0,\"payload\":\"b\"}\n\
         {\"gap\":1,\"refused\":7,\"at_end\":true}\n"
    );

    let mut follow = Follow::start(&["tail", "-f", "-n", "1", &d], false);
    let mut next = || follow.next_line();
    assert_eq!(next(), "1\tb");
    assert_eq!(next(), end);
    // Another writer's shutdown loses more after the same record.
    append(&format::encode_marker(2, 0, 2), 2, 0);
    assert_eq!(next(), "-- 2 events refused (end of log) --");
    // The next record carries all of these losses: they are not shown again.
    let mut frames = Vec::new();
    format::encode_frame_with(&mut frames, 2, 0, 1, b"c");
    append(&frames, 2, 1);
    assert_eq!(next(), "-- 1 event refused --");
    assert_eq!(next(), "2\tc");
}

/// `cat --format json` escapes every control character of a plain record's payload (DEL and
/// the C1 controls too, as the tracing records' JSON does), so that a line shown on a
/// terminal cannot drive it (U+009B is CSI); the JSON still decodes to the payload.
#[test]
fn json_escapes_del_and_c1_controls_in_plain_payloads() {
    let dir = tempfile::tempdir().unwrap();
    make_log(
        dir.path(),
        &["a\u{7f}b\u{9b}31mc\u{85}".as_bytes()],
        &[],
        1 << 20,
    );
    let o = ringwal(&["cat", dir.path().to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "{\"seq\":0,\"dropped_before\":0,\"refused_before\":0,\
         \"payload\":\"a\\u007fb\\u009b31mc\\u0085\"}\n"
    );
}

/// `tail -f | head -1`: once the reader of its output has gone, `tail -f` ends (status 0) even
/// when the log is quiet, instead of running until a record comes to fail writing.
#[cfg(unix)]
#[test]
fn tail_f_ends_when_its_reader_goes_on_a_quiet_log() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), &[b"a", b"b"], &[], 1 << 20);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringwal"))
        .args(["tail", "-f", "-n", "1", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // One line read on a thread (a bounded wait), which then closes the pipe, as `head -1`
    // exiting does.
    let out = child.stdout.take().unwrap();
    let (tx, first) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let line = BufReader::new(out).lines().next();
        let _ = tx.send(line.map(Result::unwrap));
    });
    let first = first.recv_timeout(Duration::from_secs(60));
    if first.is_err() {
        child.kill().unwrap();
    }
    assert_eq!(first.unwrap().as_deref(), Some("1\tb"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("tail -f still running 30 s after its reader went");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

/// `verify` on a log damaged in the middle (a segment emptied, or one missing) gives the range
/// of the records it read up to the last one, not the first record plus the count (which
/// made a log of records 0 to 39 missing four say "0..=35").
#[test]
fn verify_gives_the_last_record_of_a_log_damaged_in_the_middle() {
    let payloads: Vec<Vec<u8>> = (0..40u32)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), &refs, &[], 200);
    let segs = segments(dir.path());
    assert!(segs.len() > 3);
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    let (emptied, removed) = (&segs[1], &segs[2]);
    let lost = first_seq_of(&segs[3]) - first_seq_of(emptied);
    fs::write(emptied, b"").unwrap();
    fs::remove_file(removed).unwrap();
    let o = ringwal(&["verify", dir.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(&format!(
            "records:    {} (sequence 0..=39, not consecutive: see corruption)\n",
            40 - lost
        )),
        "{out}"
    );
    assert!(out.contains(&name(emptied)), "{out}");
}

/// `info`'s lag for a shipper counts the records up to the log's last one even when a segment
/// in the middle is damaged (it counted from the first record plus the records read, which
/// fell short by the damaged segment's records).
#[test]
fn info_lag_runs_to_the_last_record_of_a_log_damaged_in_the_middle() {
    use ringwal::checkpoint::{Checkpoint, LogId};
    let payloads: Vec<Vec<u8>> = (0..40u32)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), &refs, &[], 200);
    Checkpoint {
        log: LogId::get_or_create(dir.path()).unwrap(),
        next_seq: 2,
        position: None,
        gap_shipped: ringwal::Gap::default(),
        destination: "nats://h/s".into(),
    }
    .store(dir.path(), "x")
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let lag = "cursor 2 (records below it shipped) to nats://h/s; lag 38 records";
    let out = stdout(&ringwal(&["info", d]));
    assert!(out.contains(lag), "{out}");
    let segs = segments(dir.path());
    assert!(segs.len() > 3);
    fs::write(&segs[2], b"").unwrap();
    let o = ringwal(&["info", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(lag), "{}", stdout(&o));
}

/// A byte stream framed by the `no_std` `Framer` (what a firmware writes to flash) is a log
/// `verify` accepts and `cat` prints.
#[test]
fn a_firmware_framed_stream_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut image = Vec::new();
    let mut sink = |b: &[u8]| -> Result<(), std::convert::Infallible> {
        image.extend_from_slice(b);
        Ok(())
    };
    let mut framer = format::Framer::new(7);
    framer.write_record(b"boot", &mut sink).unwrap();
    framer.note_lost(2, 0);
    framer.write_record(b"adc=513", &mut sink).unwrap();
    framer.note_lost(0, 1);
    framer.finish(&mut sink).unwrap();
    fs::write(dir.path().join(format::segment_file_name(7)), &image).unwrap();
    let d = dir.path().to_str().unwrap();
    let v = ringwal(&["verify", d]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(
        stdout(&v).contains("records:    2 (sequence 7..=8)"),
        "{}",
        stdout(&v)
    );
    assert!(
        stdout(&v).contains("(2 events dropped, 1 refused)"),
        "{}",
        stdout(&v)
    );
    assert_eq!(
        stdout(&ringwal(&["cat", d])),
        "7\tboot\n-- 2 events dropped --\n8\tadc=513\n-- 1 event refused (end of log) --\n"
    );
}

/// Writes one segment file named for `first_seq`: its header, then `frames`.
fn write_segment(dir: &Path, first_seq: u64, frames: &[u8]) -> std::path::PathBuf {
    let path = dir.join(format::segment_file_name(first_seq));
    let mut bytes = format::encode_header(first_seq).to_vec();
    bytes.extend_from_slice(frames);
    fs::write(&path, bytes).unwrap();
    path
}

fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(
        !err.contains("panicked") && !err.contains("overflow"),
        "stdout: {}\nstderr: {err}",
        stdout(o)
    );
}

/// A kill between creating the newest segment and writing its header: a torn tail (exit 1),
/// which the writer's recovery removes, not corruption; `info` and `cat` agree. The same file
/// before another segment is damage (exit 2).
#[test]
fn verify_calls_a_newest_segment_with_a_cut_short_header_a_torn_tail() {
    let refs: Vec<&[u8]> = vec![b"a", b"b", b"c"];
    let cases: [(&str, Vec<u8>); 3] = [
        ("empty", Vec::new()),
        ("short", format::encode_header(3)[..10].to_vec()),
        ("zeros", vec![0u8; format::HEADER_LEN]),
    ];
    for (what, header) in &cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        make_log(dir.path(), &refs, &[], 1 << 20);
        let name = format::segment_file_name(3);
        fs::write(dir.path().join(&name), header).unwrap();

        let o = ringwal(&["verify", d]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {out}");
        assert!(
            out.contains(&format!(
                "{name} header cut short ({} bytes): a crash during its creation; recovery removes it",
                header.len()
            )),
            "{what}: {out}"
        );
        assert!(out.contains("corruption: none"), "{what}: {out}");
        assert!(
            out.contains("records:    3 (sequence 0..=2)"),
            "{what}: {out}"
        );
        assert!(out.contains("result:     torn tail only"), "{what}: {out}");

        let o = ringwal(&["info", d]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{what}: {out}");
        assert!(!out.contains("unreadable"), "{what}: {out}");
        assert!(
            out.contains("header cut short: a crash during its creation; recovery removes it"),
            "{what}: {out}"
        );
        assert!(out.contains("3 records"), "{what}: {out}");

        let o = ringwal(&["cat", d]);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
        assert_eq!(stdout(&o), "0\ta\n1\tb\n2\tc\n", "{what}");

        // Not the newest: a later segment follows it, so it is damage.
        let mut frame = Vec::new();
        encode_frame(&mut frame, 3, 0, b"d");
        write_segment(dir.path(), 4, &frame);
        let o = ringwal(&["verify", d]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {out}");
        assert!(!out.contains("corruption: none"), "{what}: {out}");
        assert!(out.contains(&name), "{what}: {out}");
        assert!(out.contains("result:     CORRUPT"), "{what}: {out}");
        let o = ringwal(&["info", d]);
        assert!(stdout(&o).contains("unreadable"), "{what}: {}", stdout(&o));
    }
}

/// Sequence numbers and counts near `u64::MAX` on disk: no panic, no wrapped range; a range
/// past `u64::MAX` is damage, a count too large saturates and says so.
#[test]
fn verify_and_info_handle_numbers_near_u64_max() {
    let max = u64::MAX;

    // Two records ending exactly at u64::MAX: clean, the range printed exactly.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut frames = Vec::new();
    encode_frame(&mut frames, max - 1, 0, b"x");
    encode_frame(&mut frames, max, 0, b"y");
    write_segment(dir.path(), max - 1, &frames);
    for cmd in ["verify", "info"] {
        let o = ringwal(&[cmd, d]);
        assert_no_panic(&o);
        assert!(
            stdout(&o).contains(&format!("{}..={max}", max - 1)),
            "{cmd}: {}",
            stdout(&o)
        );
    }
    assert_eq!(ringwal(&["verify", d]).status.code(), Some(0));

    // A third record numbered 0 after u64::MAX: sequence numbers exhausted, reported as
    // damage where it starts (the scan stops there), not as a wrapped range; the two records
    // before it keep their exact range.
    encode_frame(&mut frames, 0, 0, b"z");
    write_segment(dir.path(), max - 1, &frames);
    let o = ringwal(&["verify", d]);
    assert_no_panic(&o);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("sequence numbers exhausted"), "{out}");
    assert!(out.contains(&format!("{}..={max})", max - 1)), "{out}");
    assert!(!out.contains("..=0"), "{out}");
    let o = ringwal(&["info", d]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("{}..={max}  (corrupt: see verify)", max - 1)),
        "{out}"
    );

    // Two segments, the newest starting at u64::MAX: continuous, the range exact.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut frames = Vec::new();
    encode_frame(&mut frames, max, 0, b"last");
    write_segment(dir.path(), max, &frames);
    let mut frames = Vec::new();
    encode_frame(&mut frames, max - 2, 0, b"a");
    encode_frame(&mut frames, max - 1, 0, b"b");
    write_segment(dir.path(), max - 2, &frames);
    let o = ringwal(&["verify", d]);
    assert_no_panic(&o);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("(sequence {}..={max})", max - 2)),
        "{out}"
    );

    // Losses that add up past u64::MAX saturate and say so.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut frames = Vec::new();
    format::encode_frame_with(&mut frames, 0, max, max, b"a");
    format::encode_frame_with(&mut frames, 1, max, 1, b"b");
    write_segment(dir.path(), 0, &frames);
    let mut frames = Vec::new();
    format::encode_frame_with(&mut frames, 2, max, max, b"c");
    write_segment(dir.path(), 2, &frames);
    for cmd in ["verify", "info", "cat"] {
        let o = ringwal(&[cmd, d]);
        assert_no_panic(&o);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{cmd}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
    let out = stdout(&ringwal(&["verify", d]));
    assert!(
        out.contains(&format!(
            "gaps:       3 (at least {max} events dropped, at least {max} refused)"
        )),
        "{out}"
    );
    let out = stdout(&ringwal(&["info", d]));
    assert!(
        out.contains(&format!(
            "lost: at least {max} dropped, at least {max} refused"
        )),
        "{out}"
    );
}

/// A byte writer's log (`start_bytes`, records written in place, refusals recorded) is a log
/// like any other: `cat` prints it and `verify` calls it clean, with the gap the refusals left.
#[test]
fn cat_and_verify_read_a_byte_writers_log() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = ringwal::Writer::builder(dir.path())
        .capacity(64)
        .segment_bytes(100)
        .start_bytes()
        .unwrap();
    emitter.emit(b"first line").unwrap();
    // Written before the refusal (a refusal is recorded before the first record of the next
    // batch the writer takes after counting it).
    emitter.flush().unwrap();
    // Too long for a 64-byte ring (its longest record is 24 bytes): refused, recorded.
    assert!(emitter.emit(&[b'x'; 25]).is_err());
    emitter
        .emit_with(24, |buf| {
            let line = b"written in place";
            buf[..line.len()].copy_from_slice(line);
            line.len()
        })
        .unwrap();
    emitter.emit(b"").unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!((report.persisted, report.rejected), (3, 1));
    assert!(
        segments(dir.path()).len() > 1,
        "small segments: several files"
    );
    let d = dir.path().to_str().unwrap();
    let text = ringwal(&["cat", d]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert_eq!(
        stdout(&text),
        "0\tfirst line\n-- 1 event refused --\n1\twritten in place\n2\t\n"
    );
    let v = ringwal(&["verify", d]);
    let out = stdout(&v);
    assert_eq!(v.status.code(), Some(0), "{out}");
    assert!(out.contains("records:    3 (sequence 0..=2)"), "{out}");
    assert!(
        out.contains("gaps:       1 (0 events dropped, 1 refused)"),
        "{out}"
    );
    assert!(out.contains("result:     clean"), "{out}");
}

/// A FIFO named as a shipper checkpoint or `LOG-ID` used to hang `info` (opening a FIFO
/// blocks until something writes to it); each is now reported as not a regular file.
#[cfg(unix)]
#[test]
fn info_reports_a_fifo_checkpoint_or_log_id_as_unreadable_and_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), &[b"a", b"b"], &[], 4096);
    for name in ["ship-x.checkpoint", "LOG-ID"] {
        let made = Command::new("mkfifo")
            .arg(dir.path().join(name))
            .status()
            .expect("mkfifo runs")
            .success();
        assert!(made, "mkfifo {name}");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringwal"))
        .args(["info", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ringwal info hung on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        out.contains("log id: unreadable:")
            && out.contains("LOG-ID: is a FIFO, not a regular file"),
        "{out}"
    );
    assert!(
        out.contains("shipper x: unreadable checkpoint:")
            && out.contains("ship-x.checkpoint: is a FIFO, not a regular file"),
        "{out}"
    );
}

/// An error naming something from outside (here a directory name holding an OSC sequence, a
/// bell and a newline) is printed with its control characters escaped: one line, nothing that
/// drives the terminal or fakes a line of output. Before, they reached the terminal raw.
#[test]
fn errors_escape_control_characters_from_outside() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("log\x1b]0;pwned\x07\nringwal: all good");
    let out = ringwal(&["verify", hostile.to_str().unwrap()]);
    assert_clean_error(&out, 2, &["\\u{1b}]0;pwned\\u{7}\\u{a}ringwal: all good"]);
    let err = stderr(&out);
    assert!(
        !err.contains('\x1b') && !err.contains('\x07'),
        "raw control characters: {err:?}"
    );
}

/// `verify`'s report and `info`'s lines escape the control characters of a directory's name
/// (in the report's paths, and in the errors naming files in it), as the one-line errors do:
/// a name can neither drive the terminal nor fake a line ("result:     clean") of the report.
#[test]
fn verify_and_info_reports_escape_control_characters_in_paths() {
    let base = tempfile::tempdir().unwrap();
    let hostile = base.path().join("log\x1b]0;pwned\x07\nresult:     clean");
    let payloads: Vec<Vec<u8>> = (0..40u32)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    make_log(&hostile, &refs, &[], 200);
    let segs = segments(&hostile);
    fs::write(&segs[1], b"").unwrap();
    let status = Command::new("mkfifo")
        .arg(hostile.join("ship-x.checkpoint"))
        .status()
        .unwrap();
    assert!(status.success());
    let d = hostile.to_str().unwrap();
    let escaped = "log\\u{1b}]0;pwned\\u{7}\\u{a}result:     clean";
    let o = ringwal(&["verify", d]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        !out.contains(['\x1b', '\x07']),
        "raw control characters: {out:?}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("result:")).count(),
        1,
        "{out}"
    );
    assert!(out.contains(escaped), "{out}");
    assert!(out.contains("result:     CORRUPT"), "{out}");
    let o = ringwal(&["info", d]);
    let out = stdout(&o);
    assert!(
        !out.contains(['\x1b', '\x07']),
        "raw control characters: {out:?}"
    );
    assert!(out.contains("shipper x: unreadable checkpoint:"), "{out}");
    assert!(out.contains(escaped), "{out}");
}

/// A shipper's cursor past the log's end (a directory restored from an older copy, segments
/// deleted and a writer started again) is what `ship` stops on with an error; `info` says so
/// instead of "lag 0 records", which read as "all shipped, in step".
#[test]
fn info_flags_a_shipper_cursor_past_the_logs_end() {
    use ringwal::checkpoint::{Checkpoint, LogId};
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), &[b"a", b"b", b"c"], &[], 1 << 20);
    Checkpoint {
        log: LogId::get_or_create(dir.path()).unwrap(),
        next_seq: 10,
        position: None,
        gap_shipped: ringwal::Gap::default(),
        destination: "nats://h/s".into(),
    }
    .store(dir.path(), "x")
    .unwrap();
    let o = ringwal(&["info", dir.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.contains("lag 0 records"), "{out}");
    assert!(
        out.contains(
            "shipper x: cursor 10 (records below it shipped) to nats://h/s; PAST THE LOG'S END \
             (the log's next record is 3): records from 3 to 9 are shipped but not in the log"
        ),
        "{out}"
    );
}

/// A segment renamed away from the log's naming (`36.rwl`) is never read by anything: `verify`
/// must not call the log clean, but name the file as corruption.
#[test]
fn verify_names_a_segment_file_the_log_does_not_read() {
    let payloads: Vec<Vec<u8>> = (0..40u32)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(|p| &p[..]).collect();
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), &refs, &[], 200);
    let o = ringwal(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let newest = segments(dir.path()).pop().unwrap();
    let first = first_seq_of(&newest);
    let renamed = dir.path().join(format!("{first}.rwl"));
    fs::rename(&newest, &renamed).unwrap();
    let o = ringwal(&["verify", dir.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(&format!(
            "corruption: {}: named like a segment but not as the log names one",
            renamed.display()
        )),
        "{out}"
    );
    assert!(out.contains("result:     CORRUPT"), "{out}");
}

/// `cat --from N` where retention already deleted record N: the records from the log's first
/// on, and a warning on stderr naming the missing ones (none when N is in the log).
#[test]
fn cat_from_a_deleted_record_warns_and_starts_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let (writer, emitter) = ringwal::Writer::builder(dir.path())
        .segment_bytes(256)
        .retain(ringwal::Retain::Segments(2))
        .start::<String>()
        .unwrap();
    for i in 0..60 {
        emitter.emit(format!("event {i}")).unwrap();
    }
    writer.shutdown().unwrap();
    let first = first_seq_of(&segments(dir.path())[0]);
    assert!(first > 3, "retention deleted the first segments");
    let o = ringwal(&["cat", "--from", "3", &d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("{first}\tevent {first}\n")),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        stderr(&o),
        format!(
            "ringwal cat: warning: the log starts at record {first}: records 3 to {} are not \
             in it (deleted by retention, or never written)\n",
            first - 1
        )
    );
    let o = ringwal(&["cat", "--from", &first.to_string(), &d]);
    assert_eq!(stderr(&o), "", "no warning from a record in the log");
}
