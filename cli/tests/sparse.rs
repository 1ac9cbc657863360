//! `ringwal verify` and `info` check a sparse 1 GiB segment (a valid header and records, then
//! a hole of zero bytes) in constant memory: run under a 300 MB address-space limit
//! (`ulimit -v`), they answer instead of failing to allocate the whole file (issue 11, item 5).

use ringwal::format::encode_frame;
use ringwal::{Batch, LogOptions, SegmentLog, Sink};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GIB: u64 = 1 << 30;

/// Runs the binary with `args` under `ulimit -v 300000` (KiB): far below the 1 GiB a
/// whole-file read of the segment takes.
fn ringwal_limited(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 300000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_ringwal"))
        .args(args)
        .output()
        .expect("sh runs")
}

fn show(o: &Output) -> String {
    format!(
        "status: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A log of 20 records (seq from 0), in segments of at most 256 bytes.
fn make_log(dir: &Path) -> Vec<PathBuf> {
    let mut log = SegmentLog::open(
        dir,
        LogOptions {
            segment_bytes: 256,
            ..LogOptions::default()
        },
    )
    .unwrap();
    for i in 0..20u64 {
        let mut frame = Vec::new();
        encode_frame(&mut frame, i, 0, format!("record {i}").as_bytes());
        log.append(&Batch::new(&frame, i, 1).unwrap()).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let mut s: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rwl"))
        .collect();
    s.sort();
    assert!(s.len() > 2, "{s:?}");
    s
}

/// Extends `path` to 1 GiB with a hole; returns its length before.
fn make_sparse(path: &Path) -> u64 {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let before = file.metadata().unwrap().len();
    file.set_len(GIB).unwrap();
    before
}

fn name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

#[test]
fn verify_and_info_check_a_sparse_1gib_newest_segment_in_constant_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let segs = make_log(dir.path());
    let newest = segs.last().unwrap();
    let valid = make_sparse(newest);

    let o = ringwal_limited(&["verify", d]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        out.contains(&format!(
            "{}: at offset {valid}: {} bytes (",
            name(newest),
            GIB - valid
        )),
        "{}",
        show(&o)
    );
    assert!(out.contains("records:    20 (sequence 0..=19)"), "{out}");
    assert!(out.contains("corruption: none"), "{out}");
    assert!(out.contains("result:     torn tail only"), "{out}");

    let o = ringwal_limited(&["info", d]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let line = out
        .lines()
        .find(|l| l.starts_with(name(newest)))
        .unwrap_or_else(|| panic!("{}", show(&o)));
    assert!(
        line.contains(&GIB.to_string()) && line.ends_with("(torn tail)"),
        "{out}"
    );
    assert!(out.contains(", 20 records, "), "{out}");
}

#[test]
fn verify_checks_a_sparse_1gib_older_segment_in_constant_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let segs = make_log(dir.path());
    // Not the newest: its hole of zeros is damage, not a torn tail.
    let older = &segs[1];
    let valid = make_sparse(older);

    let o = ringwal_limited(&["verify", d]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        out.contains(&format!(
            "corruption: {}: at offset {valid}: ",
            older.display()
        )) && out.contains("(not the newest segment)"),
        "{}",
        show(&o)
    );
    assert!(out.contains("records:    20 (sequence 0..=19)"), "{out}");
    assert!(out.contains("result:     CORRUPT"), "{out}");
}
