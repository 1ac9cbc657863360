//! `ringwal ship` and the shippers' lines of `ringwal info`. With the `ship` feature: against
//! a nats-server this test starts (fails under `CI=true` without one, else prints NOT RUN);
//! without it: a clean error saying how to get it.

use std::path::Path;
use std::process::{Command, Output};

fn ringwal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringwal"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn make_log(dir: &Path, n: u64) {
    let (writer, emitter) = ringwal::Writer::builder(dir)
        .segment_bytes(4096)
        .start::<String>()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for i in 0..n {
        // A full ring (many events at once): wait for the writer.
        while let Err(e) = emitter.emit(format!("event {i}")) {
            assert!(std::time::Instant::now() < deadline, "emit: {e:?}");
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }
    writer.shutdown().unwrap();
}

#[cfg(not(feature = "ship"))]
#[test]
fn without_the_feature_ship_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path(), 3);
    let out = ringwal(&["ship", dir.path().to_str().unwrap(), "--subject", "s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features ship"), "{err}");
    // `info` needs no network code for the cursor: no shipper yet, no shipper lines.
    let info = ringwal(&["info", dir.path().to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&info.stdout).contains("shipper"));
}

#[cfg(feature = "ship")]
#[test]
fn ship_once_then_info_shows_the_cursor_and_lag() {
    use std::net::{TcpListener, TcpStream};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let available = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("nats-server is missing and CI=true: install it (apt-get install nats-server)");
        }
        eprintln!("!!! NOT RUN: ringwal ship needs nats-server (apt-get install nats-server)");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let url = format!("nats://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    make_log(dir.path(), 500);
    let ship = |extra: &[&str]| {
        let mut args = vec![
            "ship",
            d,
            "--server",
            &url,
            "--subject",
            "cli.events",
            "--once",
        ];
        args.extend_from_slice(extra);
        ringwal(&args)
    };
    // No stream: a clear one-line error.
    let out = ship(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no JetStream stream takes subject"), "{err}");
    // Created, shipped, caught up.
    let out = ship(&["--stream", "CLI", "--create"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("cursor 500  acked 500"), "{err}");
    let info = String::from_utf8_lossy(&ringwal(&["info", d]).stdout).into_owned();
    assert!(info.contains("log id: "), "{info}");
    assert!(
        info.contains("shipper cli.events: cursor 500 (records below it shipped)")
            && info.contains("lag 0 records, 0 bytes"),
        "{info}"
    );
    // The writer goes on; info shows the lag.
    make_log(dir.path(), 20);
    let info = String::from_utf8_lossy(&ringwal(&["info", d]).stdout).into_owned();
    assert!(info.contains("lag 20 records"), "{info}");
    // An unreachable server: one clear line.
    let out = ringwal(&[
        "ship",
        d,
        "--server",
        "nats://127.0.0.1:1",
        "--subject",
        "x",
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to NATS"));
    // A password in the URL is never printed.
    let out = ringwal(&[
        "ship",
        d,
        "--server",
        "nats://user:hunter2-pw@127.0.0.1:1",
        "--subject",
        "x",
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to NATS at nats://user:***@127.0.0.1:1"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    // A wildcard subject: refused at once, saying why.
    let out = ringwal(&[
        "ship",
        d,
        "--server",
        &url,
        "--subject",
        "cli.*",
        "--stream",
        "WILD",
        "--create",
        "--once",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wildcard"), "{err}");
    let _ = server.kill();
    let _ = server.wait();
}

/// SIGTERM while publishes are in flight: `ringwal ship` takes the acks still coming,
/// writes the checkpoint and exits 0, within a bound; the checkpoint then holds exactly what
/// the stream holds (a second run sends the rest, and only the rest).
#[cfg(feature = "ship")]
#[test]
fn sigterm_mid_stream_drains_the_window_checkpoints_and_exits_0() {
    use std::net::{TcpListener, TcpStream};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let available = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("nats-server is missing and CI=true: install it (apt-get install nats-server)");
        }
        eprintln!("!!! NOT RUN: ringwal ship needs nats-server (apt-get install nats-server)");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let url = format!("nats://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    const N: u64 = 30_000;
    make_log(dir.path(), N);
    let args = [
        "ship",
        d,
        "--server",
        &url,
        "--subject",
        "cli.term",
        "--stream",
        "TERM",
        "--create",
        "--window",
        "64",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringwal"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-stream: the first checkpoint past 0, well before the end.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at = ringwal::checkpoint::Checkpoint::load(dir.path(), "cli.term")
            .ok()
            .flatten()
            .map_or(0, |c| c.next_seq);
        if at > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint in 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringwal ship did not exit within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("ringwal ship: stopped; cursor "), "{err}");
    let first = ringwal::checkpoint::Checkpoint::load(dir.path(), "cli.term")
        .unwrap()
        .unwrap()
        .next_seq;
    assert!(first > 0 && first < N, "stopped at {first} of {N}");
    // The rest, and only the rest: had the exit left acknowledged records out of the
    // checkpoint, the resume would start past it (fewer acks); had it checkpointed records
    // not in the stream, they would never be sent (cursor short of N).
    let out = ringwal(&[
        "ship",
        d,
        "--server",
        &url,
        "--subject",
        "cli.term",
        "--stream",
        "TERM",
        "--once",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("cursor {N}  acked {}", N - first)),
        "first run stopped at {first}: {err}"
    );
    let _ = server.kill();
    let _ = server.wait();
}
