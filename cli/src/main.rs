//! `ringwal`: run the demo, and read, verify and follow a log directory.

mod demo;
mod inspect;
mod ship;

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
        /// hex: the payload in hex; json: one JSON object per line.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
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
        Command::Cat { dir, from, format } => inspect::cat(&dir, from, format),
        Command::Verify { dir } => inspect::verify(&dir),
        Command::Tail {
            follow,
            lines,
            format,
            dir,
        } => inspect::tail(&dir, lines, follow, format),
        Command::Info { dir } => inspect::info(&dir),
        Command::Ship(args) => ship::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringwal: {e}");
            ExitCode::from(2)
        }
    }
}
