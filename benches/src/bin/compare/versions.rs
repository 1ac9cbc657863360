//! Machine and build facts for the report header. Crate versions come from the workspace's
//! `Cargo.lock`, compiled in, so they are the versions this binary was built with.

const LOCK: &str = include_str!("../../../../Cargo.lock");

/// The version(s) of `name` in Cargo.lock, comma-separated ("?" if absent).
pub fn of(name: &str) -> String {
    let wanted = format!("name = \"{name}\"");
    let mut lines = LOCK.lines();
    let mut found = Vec::new();
    while let Some(line) = lines.next() {
        if line == wanted {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'))
            {
                found.push(v);
            }
        }
    }
    if found.is_empty() {
        "?".into()
    } else {
        found.join(", ")
    }
}

/// `rustc -V` of the rustc on PATH now ("unknown" if it cannot be run).
pub fn rustc() -> String {
    std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU model from /proc/cpuinfo, if there is one.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
}

/// The 1/5/15-minute load averages from /proc/loadavg, if readable.
pub fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// The crates compared, for the header.
pub const CRATES: &[&str] = &[
    "ringwal-core",
    "ringwal",
    "crossbeam-channel",
    "crossbeam-queue",
    "flume",
    "thingbuf",
    "heapless",
    "rtrb",
    "bbqueue",
    "tracing-appender",
    "hdrhistogram",
];
