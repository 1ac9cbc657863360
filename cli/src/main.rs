//! `ringwal`: run the demo, and read, verify and follow a log directory.

mod demo;
mod inspect;
mod ship;
mod tracing_view;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// ringwal: events out of latency-critical code and onto disk, without making the emitting
/// thread wait.
#[derive(Debug, Parser)]
#[command(name = "ringwal", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the system working: the overflow policies on a 4-slot ring, an overload run per
    /// policy against a writer persisting to disk (emit latency, records/s), and the checks
    /// (conservation, and a read-back of every record and gap). Exits non-zero if any
    /// invariant breaks.
    Demo(demo::Args),
    /// Print records with their sequence numbers; gaps (events dropped before a record) are
    /// lines of their own.
    Cat {
        /// The log directory.
        dir: PathBuf,
        /// Start at this sequence number.
        #[arg(long)]
        from: Option<u64>,
        /// text: UTF-8 payloads as-is (control characters escaped), other bytes as \xNN;
        /// hex: the payload in hex; json: one JSON object per line. Records written by
        /// ringwal-tracing: text as tracing_subscriber::fmt prints, json in the shape of its
        /// JSON formatter.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Check every frame and CRC in every segment, and print a report.
    #[command(
        after_help = "Exit status:\n  0  clean\n  1  torn tail only (a write cut short \
        at the end of the newest segment: recoverable, a writer opening the log cuts it)\n  2  \
        corruption (named by file and offset), or the directory cannot be read"
    )]
    Verify {
        /// The log directory.
        dir: PathBuf,
    },
    /// Print the last records; with -f, keep printing new ones as a writer appends them
    /// (across segment rotation), like `tail -f`.
    Tail {
        /// Follow: wait for new records (stop with Ctrl-C).
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many of the last records to print first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        /// Output format, as for `cat`.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        filter: FilterArgs,
        /// The log directory.
        dir: PathBuf,
    },
    /// List the segments with their sizes and sequence ranges, the totals, and each shipper's
    /// cursor and lag.
    Info {
        /// The log directory.
        dir: PathBuf,
    },
    /// Ship the log to a NATS JetStream stream, exactly once, following it as a writer
    /// appends (stop with Ctrl-C). Needs the `ship` feature:
    /// `cargo run --release -p ringwal-cli --features ship -- ship DIR ...`.
    Ship(ship::Args),
}

/// Filters for logs written by `ringwal-tracing` (other records are always printed, and so
/// are gaps).
#[derive(Debug, Clone, clap::Args)]
struct FilterArgs {
    /// tracing logs: the most verbose level shown (trace, debug, info, warn, error).
    #[arg(long, value_parser = tracing_view::parse_level)]
    level: Option<ringwal_tracing::Level>,
    /// tracing logs: only events whose target starts with this.
    #[arg(long)]
    target: Option<String>,
    /// tracing logs: only events at or after this time (seconds since the epoch, RFC 3339
    /// such as 2024-05-01T12:00:00Z or 2024-05-01 14:00:00.5+02:00, or a date).
    #[arg(long, value_parser = tracing_view::parse_time)]
    since: Option<u64>,
    /// tracing logs: only events before this time (as --since).
    #[arg(long, value_parser = tracing_view::parse_time)]
    until: Option<u64>,
}

impl FilterArgs {
    fn into_filter(self) -> tracing_view::Filter {
        tracing_view::Filter {
            level: self.level,
            target: self.target,
            since: self.since,
            until: self.until,
        }
    }
}

/// How `cat` and `tail` print records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// UTF-8 as-is, other bytes escaped.
    Text,
    /// Hex.
    Hex,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Cat {
            dir,
            from,
            format,
            filter,
        } => inspect::cat(&dir, from, format, filter.into_filter()),
        Command::Verify { dir } => inspect::verify(&dir),
        Command::Tail {
            follow,
            lines,
            format,
            filter,
            dir,
        } => inspect::tail(&dir, lines, follow, format, filter.into_filter()),
        Command::Info { dir } => inspect::info(&dir),
        Command::Ship(args) => ship::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringwal: {}", printable(&e.to_string()));
            ExitCode::from(2)
        }
    }
}

/// `text` with every control character (C0, DEL, C1: newlines included) escaped as `\u{..}`:
/// for errors and status lines that carry text from outside (a file name, a server's error
/// message), so that it can neither drive the terminal (an escape sequence, a bell) nor fake a
/// line of output.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.into()
}
