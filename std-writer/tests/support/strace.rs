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
