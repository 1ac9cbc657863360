//! `ringwal ship`: the log to NATS JetStream (feature `ship`).

use std::path::PathBuf;
use std::process::ExitCode;

/// `ringwal ship DIR --server URL --subject S`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log directory.
    pub dir: PathBuf,
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub server: String,
    /// The subject to publish to (one subject, and one stream, per log).
    #[arg(long)]
    pub subject: String,
    /// The stream (default: the one that takes the subject).
    #[arg(long)]
    pub stream: Option<String>,
    /// Create the stream (its subjects: `SUBJECT`) if it does not exist; needs --stream.
    #[arg(long, requires = "stream")]
    pub create: bool,
    /// The shipper's name: its checkpoint is DIR/ship-NAME.checkpoint, its dead letters
    /// DIR/ship-NAME.dead (default: the subject, with characters other than A-Z a-z 0-9 . _ -
    /// replaced by _).
    #[arg(long)]
    pub name: Option<String>,
    /// Publishes awaiting their ack, at most.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Seconds an ack may take before the publish is retried.
    #[arg(long, default_value_t = 5.0)]
    pub ack_timeout: f64,
    /// Exit once everything in the log is acknowledged, instead of following it.
    #[arg(long)]
    pub once: bool,
}

#[cfg(not(feature = "ship"))]
pub fn run(_args: Args) -> std::io::Result<ExitCode> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "this ringwal was built without shipping (the NATS client stays out of the default \
         build): cargo run --release -p ringwal-cli --features ship -- ship ...",
    ))
}

#[cfg(feature = "ship")]
pub fn run(args: Args) -> std::io::Result<ExitCode> {
    use ringwal_ship::{
        Destination, JetStream, JetStreamOptions, Options, ShipError, Shipper, Status,
    };
    use std::io::{self, IsTerminal, Write};
    use std::time::Duration;

    let name = args.name.clone().unwrap_or_else(|| {
        args.subject
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect()
    });
    if !(args.ack_timeout > 0.0 && args.ack_timeout <= 3600.0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--ack-timeout {} is outside (0, 3600] seconds",
                args.ack_timeout
            ),
        ));
    }
    let options = Options {
        name,
        window: args.window,
        until_caught_up: args.once,
        ..Options::default()
    };
    options
        .check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // Not a log: say so before connecting.
    ringwal::Reader::open(&args.dir)?;
    let mut js = JetStreamOptions::new(&args.server, &args.subject);
    js.stream = args.stream.clone();
    js.create_stream = args.create;
    js.ack_timeout = Duration::from_secs_f64(args.ack_timeout);
    js.max_inflight = args.window.max(1);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let terminal = io::stderr().is_terminal();
    let line = |s: &Status| {
        format!(
            "cursor {}  acked {}  lag {}{} records {} bytes  inflight {}  retries {}  dead {}  \
             lost {}  {}",
            s.cursor,
            s.acked,
            s.lag_records,
            if s.lag_exact { "" } else { "+" },
            s.lag_bytes,
            s.inflight,
            s.retries,
            s.dead_lettered,
            s.lost,
            if s.connected { "connected" } else { "RETRYING" }
        )
    };
    let result = runtime.block_on(async {
        let destination = JetStream::connect(js)
            .await
            .map_err(ShipError::Destination)?;
        // The server and subject as the destination shows them: without a password the URL
        // may hold.
        let target = destination.describe();
        let shipper = Shipper::new(&args.dir, destination, options);
        let metrics = shipper.metrics();
        eprintln!(
            "ringwal ship: {} -> {target} (stream {})",
            args.dir.display(),
            args.stream.as_deref().unwrap_or("by subject")
        );
        let status = async {
            let mut last_error = None;
            let mut ticks = 0u64;
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                ticks += 1;
                let s = metrics.status();
                if s.last_error != last_error {
                    if let Some(e) = &s.last_error {
                        // The server's words: escaped, so they cannot drive the terminal.
                        eprintln!(
                            "{}ringwal ship: {}",
                            if terminal { "\r\x1b[K" } else { "" },
                            crate::printable(e)
                        );
                    }
                    last_error = s.last_error.clone();
                }
                if terminal {
                    eprint!("\r\x1b[K{}", line(&s));
                    let _ = io::stderr().flush();
                } else if ticks.is_multiple_of(40) {
                    eprintln!("{}", line(&s));
                }
            }
        };
        // Ctrl-C or SIGTERM: drain the window, checkpoint, exit.
        let stop = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        tokio::select! {
            report = shipper.run(stop) => report,
            _ = status => unreachable!("the status loop never ends"),
        }
    });
    if terminal {
        eprint!("\r\x1b[K");
    }
    match result {
        Ok(report) => {
            eprintln!("ringwal ship: stopped; {}", line(&report.status));
            Ok(ExitCode::SUCCESS)
        }
        Err(ShipError::Log(e)) => Err(e),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}
