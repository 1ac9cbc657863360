//! Running a test's own binary under `strace -f` and reading its log: shared by the
//! no-syscall-per-emit checks (std-writer's and ringwal-tracing's `idle_syscalls.rs`, each
//! including this file with `#[path]`). The child prints `EMITTER_TID=<its thread id>` and
//! marks its windows with `getpid` (open) and `getppid` (close); each test parses the windows
//! itself.

use std::path::Path;
use std::process::Command;

/// Whether strace can trace here. Without it: under `CI=true` the test fails (loudly);
/// elsewhere it prints NOT RUN and the caller returns.
pub fn available() -> bool {
    let usable = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("strace is missing or cannot trace here, and CI=true: install strace");
        }
        eprintln!("!!! NOT RUN: idle_syscalls needs a working strace (apt-get install strace)");
    }
    usable
}

/// Runs this test binary's `child_role` test under strace with `child_env` = `name`, the
/// trace written to `out`; returns the trace and the thread id the child printed.
pub fn trace_child(child_env: &str, name: &str, out: &Path) -> (String, String) {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(out)
        .arg(&exe)
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(child_env, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child {name} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tid = stdout
        .lines()
        .find_map(|l| l.split("EMITTER_TID=").nth(1))
        .unwrap_or_else(|| panic!("child {name} printed no thread id: {stdout}"))
        .trim()
        .to_owned();
    (std::fs::read_to_string(out).unwrap(), tid)
}

/// The syscall a strace line of thread `tid` reports, if it is one (resumed calls count under
/// their name; signals and exits are not calls).
pub fn syscall_of<'a>(line: &'a str, tid: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(tid)?.strip_prefix(' ')?.trim_start();
    if let Some(resumed) = rest.strip_prefix("<... ") {
        return resumed.split_whitespace().next();
    }
    if rest.starts_with("---") || rest.starts_with("+++") {
        return None;
    }
    Some(&rest[..rest.find('(')?])
}

/// How long [`settle`] waits at least after each emit before the next one.
pub const PAUSE: std::time::Duration = std::time::Duration::from_millis(40);

/// Called by the child between its windows: waits [`PAUSE`], then, if `sleeps` (a writer that
/// parks or polls when idle), until the writer thread (`ringwal-writer`) is asleep in the
/// kernel — state `S` in `/proc/self/task/<tid>/stat`, which for this writer means parked on
/// its futex (yielding or writing is `R`, `D` or `t` under strace) — for at most 30 s. A fixed
/// pause alone is not enough: under strace on a loaded host, the writer's polling rounds (each
/// yield a traced syscall) can outlast it, and the next emit then finds it awake (CI saw that).
pub fn settle(sleeps: bool) {
    std::thread::sleep(PAUSE);
    if !sleeps {
        return;
    }
    let tid = writer_tid();
    let stat = format!("/proc/self/task/{tid}/stat");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = std::fs::read_to_string(&stat).unwrap();
        // The state follows the command name's closing parenthesis.
        let state = s[s.rfind(')').unwrap() + 1..].split_whitespace().next();
        if state == Some("S") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the writer thread did not go to sleep within 30 s (state {state:?})"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The id of this process's `ringwal-writer` thread (there must be exactly one).
fn writer_tid() -> String {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim_end() == "ringwal-writer" {
            found.push(task.file_name().unwrap().to_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        found.len(),
        1,
        "expected one ringwal-writer thread: {found:?}"
    );
    found.pop().unwrap()
}
