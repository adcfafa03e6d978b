//! Command-line front end: argument parsing, human and JSON output, progress bars.
//! Each command is a thin layer over the library; errors become one clear sentence.

mod client;
mod create;
mod daemon;
mod demo;
mod dht;
mod format;
mod peer;
mod show;
mod tracker;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// BatTorrent: create, inspect and verify .torrent files; run a tracker; seed and download.
#[derive(Debug, Parser)]
#[command(name = "battorrent", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a .torrent from a file or folder.
    Create(create::CreateArgs),
    /// Show what a .torrent holds.
    Show {
        /// The .torrent file.
        torrent: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check data on disk against a .torrent; exit status 0 only if every piece is good.
    Verify(verify::VerifyArgs),
    /// Print a .torrent's magnet link.
    Magnet {
        /// The .torrent file.
        torrent: PathBuf,
    },
    /// Run a tracker: HTTP (announce, scrape, /stats, /metrics) and, with --udp, UDP (BEP 15).
    Tracker(tracker::TrackerArgs),
    /// Check the data, then share it with peers until stopped.
    Seed(peer::PeerArgs),
    /// Download a torrent's data; exits 0 once every piece is verified. Resumes if rerun.
    Download(peer::DownloadArgs),
    /// Run a tracker, a seeder and leechers on this machine over a generated file.
    Demo(demo::DemoArgs),
    /// Run a standalone DHT node (a bootstrap node for a private swarm).
    Dht(dht::DhtNodeArgs),
    /// Run the always-on client: torrents kept across restarts, driven over Transmission's
    /// RPC (transmission-remote, Flood, the *arr tools).
    Daemon(daemon::DaemonArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

/// Sets up `tracing` on stderr: warnings by default, more with each -v.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| EscapedStderr)
        // Colours would be escaped like everything else a terminal acts on.
        .with_ansi(false)
        .with_target(false)
        .init();
}

/// Log output on stderr with anything a terminal acts on escaped: log fields can carry
/// text from outside (peer messages, tracker replies) that no call site escaped. The
/// formatter hands over one event at a time; only its final newline stays raw.
struct EscapedStderr;

impl std::io::Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (line, end) = match text.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (&*text, ""),
        };
        let mut err = std::io::stderr().lock();
        write!(err, "{}{end}", battorrent::text::escape(line))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Create(args) => create::run(args),
        Command::Show { torrent, json } => show::run(&torrent, json),
        Command::Verify(args) => verify::run(args),
        Command::Tracker(args) => tracker::run(args),
        Command::Seed(args) => peer::seed(args),
        Command::Download(args) => peer::download(args),
        Command::Demo(args) => demo::run(args),
        Command::Dht(args) => dht::run(args),
        Command::Daemon(args) => daemon::run(args),
        Command::Client(command) => client::run(command),
        Command::Magnet { torrent } => {
            let meta = show::load(&torrent)?;
            println!("{}", meta.magnet());
            Ok(ExitCode::SUCCESS)
        }
    }
}
