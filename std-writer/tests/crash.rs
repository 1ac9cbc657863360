//! Crash safety under SIGKILL.
//!
//! The test binary re-executes itself as a child process that writes to a log (see
//! [`crash_child_process_entry`]), and the parent kills it with SIGKILL at a random moment, many
//! times over, on the same directory. In debug builds every fourth round the child instead
//! kills itself at the library's `segment-created` kill point (`RINGWAL_CRASH_POINT`), between
//! creating a segment file and writing its header: a window too short for a timed kill to
//! hit. After every kill the parent checks the log:
//!
//! - read back before any recovery (as `ringwal tail` would see it): every record valid, in
//!   order, sequence numbers consecutive, and each payload the one the child built for it;
//! - every counter the child reported as flushed (in any round) is on disk;
//! - the directory reopens with the builder (recovery succeeds; it may cut a torn tail) and
//!   recovery and the reader agree on where the log ends.
//!
//! After the last round a writer appends a few more records, shuts down cleanly, and the
//! whole log is read back.
//!
//! The child numbers its events with a counter that continues after the last one it finds on
//! disk. It emits with `Overflow::Reject` and retries a full ring, so nothing it emits is ever
//! dropped: the log is always a prefix of what it emitted, and the counter of every record
//! equals its sequence number. That is what the parent checks. Every other round the child is
//! a byte writer (`start_bytes`, records written in place with `emit` and `emit_with`): the
//! same log, the same checks.
//!
//! Seed: `RINGWAL_CRASH_SEED=<u64>` reproduces a run's delays; `RINGWAL_CRASH_ROUNDS=<n>`
//! overrides the number of rounds.

#![cfg(unix)]

use ringwal::{format, Entry, Reader, SyncPolicy, Writer};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to the log directory) in the child process only.
const CHILD_ENV: &str = "RINGWAL_CRASH_CHILD";
/// `batch` or `interval`: the child's sync policy.
const POLICY_ENV: &str = "RINGWAL_CRASH_POLICY";
/// `typed` or `bytes`: the child's kind of writer.
const KIND_ENV: &str = "RINGWAL_CRASH_KIND";
/// The name of the child's entry point, as the test harness knows it.
const CHILD_TEST: &str = "crash_child_process_entry";

/// Small segments, so the child rotates often and kills land during rotation too.
const SEGMENT_BYTES: u64 = 64 << 10;
/// The child flushes after this many emits.
const FLUSH_EVERY: u64 = 16;

/// The payload for event `counter`: the counter, then filler of a length (8..=207 bytes) and
/// content derived from it, so a record that is valid but holds the wrong bytes is caught.
fn payload(counter: u64) -> Vec<u8> {
    let filler = 8 + (counter.wrapping_mul(2_654_435_761) % 200) as usize;
    let mut p = Vec::with_capacity(8 + filler);
    p.extend_from_slice(&counter.to_le_bytes());
    let base = (counter as u8).wrapping_mul(31);
    p.extend((0..filler).map(|i| base.wrapping_add(i as u8)));
    p
}

/// The counter a payload carries, if it is exactly what [`payload`] builds for it.
fn counter_of(payload_bytes: &[u8]) -> Option<u64> {
    let counter = u64::from_le_bytes(payload_bytes.get(..8)?.try_into().ok()?);
    (payload(counter) == payload_bytes).then_some(counter)
}

/// Not a test: the entry point of the child process that `crash_sigkill_loses_nothing_flushed`
/// spawns (it re-executes this binary with `--exact crash_child_process_entry` and
/// `RINGWAL_CRASH_CHILD` set). In a normal test run the variable is unset and this returns at
/// once: it checks nothing by itself, all the checks are in the parent.
#[test]
fn crash_child_process_entry() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    child_main(Path::new(&dir));
}

/// The child: writes forever (until SIGKILL), reporting `flushed N` after every flush.
fn child_main(dir: &Path) -> ! {
    let policy = match std::env::var(POLICY_ENV).as_deref() {
        Ok("interval") => SyncPolicy::Interval(Duration::from_millis(5)),
        _ => SyncPolicy::EveryBatch,
    };
    let builder = Writer::builder(dir)
        .sync(policy)
        .segment_bytes(SEGMENT_BYTES);
    if std::env::var(KIND_ENV).as_deref() == Ok("bytes") {
        let (writer, emitter) = builder.start_bytes().expect("child: open the log");
        let mut counter = first_counter(dir, writer.recovery().next_seq);
        let mut out = std::io::stdout().lock();
        writeln!(out, "start {counter}").unwrap();
        out.flush().unwrap();
        loop {
            for _ in 0..FLUSH_EVERY {
                let event = payload(counter);
                loop {
                    // Copied in, or written in place: both must land the same bytes.
                    let result = if counter.is_multiple_of(2) {
                        emitter.emit(&event)
                    } else {
                        emitter.emit_with(event.len(), |buf| {
                            buf.copy_from_slice(&event);
                            event.len()
                        })
                    };
                    match result {
                        Ok(()) => break,
                        Err(ringwal::ByteEmitError::Full) => std::thread::yield_now(),
                        Err(e) => panic!("child: emit failed: {e}"),
                    }
                }
                counter += 1;
            }
            emitter.flush().expect("child: flush");
            writeln!(out, "flushed {}", counter - 1).unwrap();
            out.flush().unwrap();
        }
    }
    let (writer, emitter) = builder.start::<Vec<u8>>().expect("child: open the log");
    let mut counter = first_counter(dir, writer.recovery().next_seq);
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {counter}").unwrap();
    out.flush().unwrap();
    loop {
        for _ in 0..FLUSH_EVERY {
            let mut event = payload(counter);
            loop {
                match emitter.emit(event) {
                    Ok(()) => break,
                    Err(ringwal::EmitError::Full(e)) => {
                        event = e;
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("child: emit failed: {e}"),
                }
            }
            counter += 1;
        }
        emitter.flush().expect("child: flush");
        writeln!(out, "flushed {}", counter - 1).unwrap();
        out.flush().unwrap();
    }
}

/// The child's first counter: the one after the last on disk (`next_seq` records).
fn first_counter(dir: &Path, next_seq: u64) -> u64 {
    if next_seq == 0 {
        return 0;
    }
    let last = Reader::open(dir)
        .expect("child: reader")
        .from_seq(next_seq - 1)
        .last()
        .expect("child: the last record is readable")
        .expect("child: the last record is valid");
    counter_of(&last.payload).expect("child: last payload is one of ours") + 1
}

/// xorshift64*, seeded from the clock unless `RINGWAL_CRASH_SEED` is set.
struct Rng(u64);

impl Rng {
    fn new() -> (Self, u64) {
        let seed = std::env::var("RINGWAL_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        (Rng(seed | 1), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Kills the child if the parent panics mid-round (so no writer outlives the test).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one child run reported.
#[derive(Debug, Default)]
struct ChildOutput {
    start: Option<u64>,
    max_flushed: Option<u64>,
    flushes: u64,
}

/// Checks the records from `from` on; returns the sequence number after the last one.
/// `Err` carries the reader's error, unchecked.
fn verify_from(dir: &Path, from: u64) -> Result<u64, std::io::Error> {
    let mut expected = from;
    for entry in Reader::open(dir)?.from_seq(from) {
        let Entry {
            seq,
            payload,
            dropped_before,
            refused_before: _,
        } = entry?;
        assert_eq!(seq, expected, "sequence numbers must be consecutive");
        assert_eq!(dropped_before, 0, "record {seq}: the child drops nothing");
        assert_eq!(
            counter_of(&payload),
            Some(seq),
            "record {seq}: payload is not the one the child emitted for it"
        );
        expected += 1;
    }
    Ok(expected)
}

/// Whether the newest segment file is shorter than a segment header (a crash cut its creation
/// short), which recovery removes.
fn newest_segment_is_half_created(dir: &Path) -> bool {
    Reader::open(dir)
        .and_then(|r| r.segments())
        .ok()
        .and_then(|s| s.last().map(|s| s.bytes < format::HEADER_LEN as u64))
        .unwrap_or(false)
}

/// `crash_point`: `Some(n)` makes the child kill itself the `n`th time it has created a segment
/// file and not yet written its header (the library's `segment-created` kill point, debug
/// builds only).
fn spawn_child(dir: &Path, policy: &str, kind: &str, crash_point: Option<u64>) -> KillOnDrop {
    let exe = std::env::current_exe().expect("current_exe");
    let mut command = Command::new(exe);
    command
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(POLICY_ENV, policy)
        .env(KIND_ENV, kind)
        .env_remove("RINGWAL_CRASH_POINT")
        .env_remove("RUST_TEST_THREADS");
    if let Some(n) = crash_point {
        command.env("RINGWAL_CRASH_POINT", format!("segment-created:{n}"));
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    KillOnDrop(child)
}

#[test]
fn crash_sigkill_loses_nothing_flushed() {
    let started = Instant::now();
    let (mut rng, seed) = Rng::new();
    let rounds: u64 = std::env::var("RINGWAL_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 25 } else { 60 });
    eprintln!("crash test: seed {seed} (RINGWAL_CRASH_SEED), {rounds} rounds");
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("log");

    // Everything up to here is verified (the sequence number after the last verified record).
    let mut verified = 0u64;
    let mut max_flushed: Option<u64> = None;
    let mut rounds_cut = 0u64;
    let mut bytes_cut = 0u64;
    let mut half_created = 0u64;
    let mut total_flushes = 0u64;
    let mut byte_flushes = 0u64;
    let mut at_creation = 0u64;

    for round in 0..rounds {
        let policy = if round % 3 == 2 { "interval" } else { "batch" };
        let kind = if round % 2 == 1 { "bytes" } else { "typed" };
        // Every fourth round the kill lands between creating a segment and writing its header
        // (a window a timed kill almost never hits): the library's kill point, debug builds.
        let crash_point = (cfg!(debug_assertions) && round % 4 == 3).then(|| rng.range(1, 4));
        let mut child = spawn_child(&dir, policy, kind, crash_point);
        let stdout = child.0.stdout.take().unwrap();
        let mut stderr = child.0.stderr.take().unwrap();
        let out_thread = std::thread::spawn(move || {
            let mut out = ChildOutput::default();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("flushed ") {
                    let n: u64 = n.parse().expect("flushed N");
                    assert!(out.max_flushed.is_none_or(|m| n > m), "flushed goes up");
                    out.max_flushed = Some(n);
                    out.flushes += 1;
                } else if let Some(n) = line.strip_prefix("start ") {
                    out.start = Some(n.parse().expect("start N"));
                }
            }
            out
        });
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });

        let delay = Duration::from_millis(rng.range(20, 300));
        let status = if crash_point.is_some() {
            // The child kills itself at its kill point.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = child.0.try_wait().unwrap() {
                    break status;
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}: the child never reached its kill point"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            std::thread::sleep(delay);
            if let Some(status) = child.0.try_wait().unwrap() {
                let err = err_thread.join().unwrap();
                panic!("round {round}: the child exited by itself ({status}):\n{err}");
            }
            child.0.kill().expect("SIGKILL the child");
            child.0.wait().unwrap()
        };
        // At a kill point the library SIGKILLs itself through `kill -9`, or aborts (SIGABRT)
        // if that cannot run: to the file system the two are the same.
        let killed =
            status.signal() == Some(9) || (crash_point.is_some() && status.signal() == Some(6));
        if !killed {
            let err = err_thread.join().unwrap();
            panic!("round {round}: the child was not killed by SIGKILL ({status}):\n{err}");
        }
        if crash_point.is_some() {
            // The kill landed in the window: the newest segment has no byte.
            let newest = Reader::open(&dir).unwrap().segments().unwrap();
            let newest = newest.last().expect("a segment");
            assert_eq!(newest.bytes, 0, "round {round}: {newest:?}");
            at_creation += 1;
        }
        let out = out_thread.join().expect("stdout reader");
        let _ = err_thread.join();
        total_flushes += out.flushes;
        if kind == "bytes" {
            byte_flushes += out.flushes;
        }

        if let Some(start) = out.start {
            assert_eq!(
                start, verified,
                "round {round}: the child must continue after the last record on disk"
            );
        }
        if let Some(n) = out.max_flushed {
            max_flushed = Some(n);
        }

        // 1. Read back as found, before recovery.
        let read_to = match verify_from(&dir, verified.saturating_sub(1)) {
            Ok(end) => Some(end),
            Err(e) if crash_point.is_some() => {
                panic!("round {round}: reading past a segment cut short at creation: {e}")
            }
            Err(e) if newest_segment_is_half_created(&dir) => {
                // Covered by `reader_before_recovery_reads_past_a_half_created_segment`.
                half_created += 1;
                eprintln!("round {round}: reader before recovery: {e}");
                None
            }
            Err(e) => panic!("round {round}: reading the log before recovery: {e}"),
        };

        // 2. Recovery.
        let (writer, emitter) = Writer::builder(&dir)
            .segment_bytes(SEGMENT_BYTES)
            .start::<Vec<u8>>()
            .unwrap_or_else(|e| panic!("round {round}: recovery failed: {e}"));
        let recovery = writer.recovery().clone();
        if crash_point.is_some() {
            assert_eq!(recovery.bytes_cut, 0, "round {round}: {recovery:?}");
            assert!(
                recovery
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.contains("removed the empty segment")),
                "round {round}: {recovery:?}"
            );
        }
        drop(emitter);
        let report = writer.shutdown().expect("shut down the recovering writer");
        assert_eq!((report.emitted, report.persisted), (0, 0));
        if recovery.bytes_cut > 0 {
            rounds_cut += 1;
            bytes_cut += recovery.bytes_cut;
            eprintln!(
                "round {round}: recovery cut {} bytes: {:?}",
                recovery.bytes_cut, recovery.reason
            );
        }

        // 3. After recovery: everything valid, agreeing with recovery.
        let end = verify_from(&dir, verified.saturating_sub(1))
            .unwrap_or_else(|e| panic!("round {round}: reading the log after recovery: {e}"));
        assert_eq!(recovery.next_seq, end, "round {round}: recovery vs reader");
        if let Some(read_to) = read_to {
            assert_eq!(
                read_to, end,
                "round {round}: the reader before recovery saw a different end"
            );
        }
        assert!(end >= verified, "round {round}: records disappeared");
        if let Some(m) = max_flushed {
            assert!(
                m < end,
                "round {round}: counter {m} was reported flushed but the log ends at {end}"
            );
        }
        verified = end;
        eprintln!(
            "round {round}: {policy:8} {kind:5} killed after {:3} ms; {} flushes; log holds {end} records",
            delay.as_millis(),
            out.flushes
        );
    }

    // Finally: a clean run on top of the crashed log, and the whole log read back.
    let (writer, emitter) = Writer::builder(&dir)
        .segment_bytes(SEGMENT_BYTES)
        .start::<Vec<u8>>()
        .unwrap();
    assert_eq!(writer.recovery().next_seq, verified);
    for counter in verified..verified + 100 {
        emitter.emit(payload(counter)).unwrap();
    }
    emitter.flush().unwrap();
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, 100);
    assert_eq!(report.persisted, 100);
    assert_eq!(report.dropped, 0);
    assert_eq!(report.emitted, report.persisted + report.dropped);
    let end = verify_from(&dir, 0).expect("read the whole log");
    assert_eq!(end, verified + 100);
    let segments = Reader::open(&dir).unwrap().segments().unwrap().len();

    assert!(
        total_flushes > 0,
        "no child ever reported a flush: the test checked nothing"
    );
    assert!(
        rounds < 2 || byte_flushes > 0,
        "no byte-writer child ever reported a flush: the byte path was not checked"
    );
    assert!(
        !cfg!(debug_assertions) || rounds < 4 || at_creation > 0,
        "no round was killed between creating a segment and writing its header"
    );
    eprintln!(
        "crash test: seed {seed}: {rounds} rounds in {:.1} s, {end} records in {segments} segments, \
         {total_flushes} flushes reported (last flushed counter {max_flushed:?}); \
         recovery cut a tail in {rounds_cut} rounds ({bytes_cut} bytes); \
         killed between creating a segment and writing its header in {at_creation} rounds \
         (debug builds only); \
         reader before recovery tripped on a half-created segment in {half_created} rounds",
        started.elapsed().as_secs_f64()
    );
}

/// A crash between creating a segment file and writing its header leaves an empty (or short)
/// newest segment; recovery removes it. Before recovery, a reader (`ringwal tail` on a live
/// log sees the same thing between the writer's `create` and its header `write`) should treat
/// it like a torn tail, as the end for now, not as damage.
#[test]
fn reader_before_recovery_reads_past_a_half_created_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (writer, emitter) = Writer::builder(dir).start::<Vec<u8>>().unwrap();
    for counter in 0..10 {
        emitter.emit(payload(counter)).unwrap();
    }
    writer.shutdown().unwrap();

    let mut reader_errors = Vec::new();
    for len in [0usize, 5, format::HEADER_LEN - 1] {
        let path = dir.join(format::segment_file_name(10));
        std::fs::write(&path, &format::encode_header(10)[..len]).unwrap();

        let read: Vec<_> = Reader::open(dir).unwrap().iter().collect();
        let ok = read.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 10, "the ten records before the half-created segment");
        if let Some(Err(e)) = read.iter().find(|r| r.is_err()) {
            reader_errors.push(format!("newest segment {len} bytes long: {e}"));
        }

        // Recovery removes it, and then the reader is happy.
        let (writer, _emitter) = Writer::builder(dir).start::<Vec<u8>>().unwrap();
        assert_eq!(writer.recovery().next_seq, 10);
        assert_eq!(writer.recovery().bytes_cut, len as u64);
        assert!(!path.exists());
        writer.shutdown().unwrap();
        assert_eq!(verify_from(dir, 0).unwrap(), 10);
    }
    assert!(
        reader_errors.is_empty(),
        "a segment whose creation was cut short (recovery removes it silently) makes the reader \
         report damage instead of the end of the log:\n{}",
        reader_errors.join("\n")
    );
}
