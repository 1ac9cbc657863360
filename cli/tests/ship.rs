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
    for i in 0..n {
        emitter.emit(format!("event {i}")).unwrap();
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
