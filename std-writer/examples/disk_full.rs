//! A real full disk: the fault campaign's case, run on a directory of a small file system (a
//! 5 MiB tmpfs in CI: `mount -t tmpfs -o size=5m tmpfs /mnt/x`).
//!
//! ```text
//! cargo run --release -p ringwal --example disk_full -- /mnt/x
//! ```
//!
//! 1. Retention on (`Retain::Bytes(2 MiB)`, 256 KiB segments) and a burst of 4,097 × 1 KiB
//!    records, more than the disk holds: retention must free space as the writer goes, so
//!    every accepted record is written and the writer ends healthy.
//! 2. The disk filled by another file but 512 KiB, then 2,048 × 1 KiB records: the writer
//!    writes what fits (partial progress), reports itself unhealthy, and once the other file
//!    goes it writes the rest by itself, in order, with no duplicate.
//!
//! Exits non-zero if any of that does not hold; prints what it measured.

use ringwal::{Reader, Retain, Writer};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const KIB: usize = 1024;

fn record(i: u64) -> Vec<u8> {
    let mut r = vec![(i % 251) as u8; KIB];
    r[..8].copy_from_slice(&i.to_le_bytes());
    r
}

/// Every record from the oldest kept on: consecutive sequence numbers, each payload the one
/// built for its number. Returns (first, next) sequence numbers.
fn check_log(dir: &Path) -> Result<(u64, u64), String> {
    let mut first = None;
    let mut next = 0;
    for entry in Reader::open(dir).map_err(|e| e.to_string())?.iter() {
        let entry = entry.map_err(|e| e.to_string())?;
        if first.is_none() {
            first = Some(entry.seq);
        } else if entry.seq != next {
            return Err(format!("record {} after {}", entry.seq, next - 1));
        }
        if entry.payload != record(entry.seq) {
            return Err(format!("record {}: wrong payload", entry.seq));
        }
        next = entry.seq + 1;
    }
    Ok((first.unwrap_or(0), next))
}

fn free_bytes(dir: &Path) -> String {
    std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().nth(1).map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

/// Fills the file system of `base` with a file (returned, to delete later) until about
/// `leave` bytes are free.
fn fill_leaving(base: &Path, leave: u64) -> Result<PathBuf, String> {
    let filler = base.join("filler");
    let free: u64 = free_bytes(base)
        .parse()
        .map_err(|_| "df failed".to_string())?;
    let fill = free.saturating_sub(leave);
    std::fs::write(&filler, vec![0xA5u8; fill as usize]).map_err(|e| format!("filler: {e}"))?;
    Ok(filler)
}

fn wait_healthy_and_drained<T: ringwal::Record>(
    emitter: &ringwal::Emitter<T>,
    limit: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let s = emitter.stats();
        if s.healthy && s.queued == 0 {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(format!("not drained after {limit:?}: {s:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn burst_with_retention(base: &Path) -> Result<(), String> {
    let dir = base.join("retained");
    let (writer, emitter) = Writer::builder(&dir)
        .segment_bytes(256 * KIB as u64)
        .retain(Retain::Bytes(2 << 20))
        .start::<Vec<u8>>()
        .map_err(|e| e.to_string())?;
    // Leave the log a little more than its retention limit: it runs into ENOSPC unless
    // retention frees segments as it goes.
    let filler = fill_leaving(base, (2 << 20) + 128 * KIB as u64)?;
    let free_before = free_bytes(base);
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..4097 {
        if emitter.emit(record(i)).is_ok() {
            accepted += 1;
        } else {
            break; // Reject: the ring (4,096 slots) is full; the rest would be refused too.
        }
    }
    let drained = wait_healthy_and_drained(&emitter, Duration::from_secs(30))?;
    emitter.flush().map_err(|e| format!("flush: {e}"))?;
    let stats = emitter.stats();
    drop(emitter);
    let report = writer.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    let (first, next) = check_log(&dir)?;
    println!(
        "1. retention on a full disk ({free_before} bytes free): {accepted} accepted, {} \
         persisted, {} write errors on the way, drained and healthy {:.1} ms after the burst \
         ({:.1} ms in all); log keeps records {first}..{next}; {} bytes free",
        report.persisted,
        stats.write_errors,
        drained.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3,
        free_bytes(base)
    );
    if report.persisted != accepted || next != accepted {
        return Err(format!(
            "accepted {accepted}, persisted {}, log ends at {next}",
            report.persisted
        ));
    }
    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::remove_file(&filler).map_err(|e| e.to_string())?;
    Ok(())
}

fn partial_progress(base: &Path) -> Result<(), String> {
    let dir = base.join("partial");
    let (writer, emitter) = Writer::builder(&dir)
        .segment_bytes(256 * KIB as u64)
        .start::<Vec<u8>>()
        .map_err(|e| e.to_string())?;
    // Fill the disk but for about 512 KiB.
    let filler = fill_leaving(base, 512 * KIB as u64)?;
    println!(
        "2. the disk filled but {} bytes; 2,048 records of 1 KiB",
        free_bytes(base)
    );
    for i in 0..2048 {
        emitter
            .emit(record(i))
            .map_err(|e| format!("emit {i}: {e}"))?;
    }
    // Wait until the writer has written what fits and is stuck on the rest.
    let stuck_at = Instant::now();
    let stuck = loop {
        let s = emitter.stats();
        if !s.healthy && s.write_errors > 0 {
            std::thread::sleep(Duration::from_millis(200));
            break emitter.stats();
        }
        if stuck_at.elapsed() > Duration::from_secs(20) {
            return Err(format!("the writer never hit the full disk: {s:?}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    println!(
        "   while full: {} of 2,048 persisted, {} queued, healthy {}, {} write errors, {} bytes \
         free",
        stuck.persisted,
        stuck.queued,
        stuck.healthy,
        stuck.write_errors,
        free_bytes(base)
    );
    if stuck.persisted < 256 {
        return Err(format!(
            "no partial progress: {} records written with ~512 KiB free",
            stuck.persisted
        ));
    }
    let flushed = emitter.flush_timeout(Duration::from_millis(100));
    if flushed.is_ok() {
        return Err("flush succeeded on a full disk".into());
    }
    std::fs::remove_file(&filler).map_err(|e| e.to_string())?;
    let drained = wait_healthy_and_drained(&emitter, Duration::from_secs(30))?;
    emitter
        .flush()
        .map_err(|e| format!("flush after space returned: {e}"))?;
    drop(emitter);
    let report = writer.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    let (first, next) = check_log(&dir)?;
    println!(
        "   space returned: healthy and drained {:.1} ms later (by itself); {} persisted, log \
         holds records {first}..{next}",
        drained.as_secs_f64() * 1e3,
        report.persisted
    );
    if (first, next, report.persisted) != (0, 2048, 2048) {
        return Err(format!(
            "expected records 0..2048, all persisted; got {first}..{next}, {} persisted",
            report.persisted
        ));
    }
    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    let Some(base) = std::env::args_os().nth(1) else {
        eprintln!("usage: disk_full DIR (a directory on a small file system, e.g. a 5 MiB tmpfs)");
        return ExitCode::from(2);
    };
    let base = Path::new(&base);
    println!("{}: {} bytes free", base.display(), free_bytes(base));
    for (name, run) in [
        (
            "retention",
            burst_with_retention as fn(&Path) -> Result<(), String>,
        ),
        ("partial progress", partial_progress),
    ] {
        if let Err(e) = run(base) {
            eprintln!("disk_full: {name}: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("disk_full: ok");
    ExitCode::SUCCESS
}
