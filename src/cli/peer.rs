//! `battorrent seed` and `battorrent download`.

use super::{format, show};
use anyhow::{bail, Context};
use battorrent::metainfo::Metainfo;
use battorrent::session::{self, Session, SessionConfig, Stats};
use battorrent::wire::Bitfield;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Options shared by `seed` and `download`.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// The .torrent file.
    torrent: PathBuf,
    /// Folder that holds (or will hold) the torrent's data.
    #[arg(short, long, default_value = ".")]
    dir: PathBuf,
    /// Port to accept peers on (0: any free port).
    #[arg(short, long, default_value_t = 6881)]
    port: u16,
    /// Address to listen on; a specific address is also used for outgoing connections.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// A peer to connect to besides those from trackers (ADDR:PORT); may be repeated.
    #[arg(long = "peer", value_name = "ADDR:PORT")]
    peers: Vec<SocketAddr>,
    /// Do not contact the torrent's trackers.
    #[arg(long)]
    no_trackers: bool,
    /// Most peers connected at once.
    #[arg(long, default_value_t = 50)]
    max_peers: usize,
    /// Peers unchoked by upload rank (one optimistic unchoke comes on top).
    #[arg(long, default_value_t = 4)]
    upload_slots: usize,
    /// Most bytes per second to upload, all peers together: 500K, 10M...
    #[arg(long, value_name = "RATE", value_parser = format::parse_size)]
    upload_limit: Option<u64>,
    /// Write downloaded pieces through the page cache instead of with O_DIRECT.
    #[arg(long)]
    buffered_writes: bool,
    /// Print a JSON summary on stdout at the end.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    peer: PeerArgs,
    /// Keep seeding after the download completes (until Ctrl-C).
    #[arg(long)]
    seed: bool,
}

/// How a run ended.
enum End {
    Complete,
    Interrupted,
    Failed(String),
}

pub fn seed(args: PeerArgs) -> anyhow::Result<ExitCode> {
    let meta = show::load(&args.torrent)?;
    let have = check(&meta, &args.dir)?;
    let missing = have.count_zeros();
    if missing > 0 {
        bail!(
            "{missing} of {} pieces are missing or damaged under {}: nothing to seed there \
             (check --dir, or run `battorrent download` to fetch them)",
            have.len(),
            args.dir.display()
        );
    }
    eprintln!("seeding {} from {}", meta.info.name, args.dir.display());
    run(meta, have, &args, true)
}

pub fn download(args: DownloadArgs) -> anyhow::Result<ExitCode> {
    let meta = show::load(&args.peer.torrent)?;
    std::fs::create_dir_all(&args.peer.dir)
        .with_context(|| format!("cannot create {}", args.peer.dir.display()))?;
    let have = check(&meta, &args.peer.dir)?;
    if have.any() && !have.all() {
        eprintln!(
            "resuming: {} of {} pieces already verified",
            have.count_ones(),
            have.len()
        );
    }
    run(meta, have, &args.peer, args.seed)
}

/// Checks existing data with a progress bar.
fn check(meta: &Metainfo, dir: &Path) -> anyhow::Result<Bitfield> {
    let bar = format::progress_bar(meta.info.total_length, "Checking");
    let have = session::check(meta, dir, |n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok(have)
}

fn run(
    meta: Metainfo,
    have: Bitfield,
    args: &PeerArgs,
    keep_seeding: bool,
) -> anyhow::Result<ExitCode> {
    let config = SessionConfig {
        bind: SocketAddr::new(args.bind, args.port),
        max_peers: args.max_peers.max(1),
        upload_slots: args.upload_slots.max(1),
        peers: args.peers.clone(),
        use_trackers: !args.no_trackers,
        upload_limit: args.upload_limit,
        direct_writes: !args.buffered_writes,
        ..SessionConfig::default()
    };
    if meta.trackers.is_empty() && args.peers.is_empty() {
        eprintln!("note: the torrent lists no tracker and no --peer was given: waiting for peers to connect");
    }
    // Blocking threads only read blocks to upload: a few are plenty, and each one costs
    // memory.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (end, stats) = runtime.block_on(async {
        let session = Session::start(&meta, &args.dir, have, config).await?;
        eprintln!("listening on {}", session.local_addr());
        let end = watch(&session, &meta, keep_seeding).await;
        let stats = session.stats();
        session.shutdown().await;
        anyhow::Ok((end, stats))
    })?;
    let elapsed = started.elapsed();
    if args.json {
        let summary = serde_json::json!({
            "name": meta.info.name,
            "info_hash": meta.info_hash.to_hex(),
            "complete": stats.complete,
            "seconds": elapsed.as_secs_f64(),
            "stats": stats,
        });
        println!("{summary}");
    }
    match end {
        End::Complete => {
            eprintln!(
                "{}: complete, {} received and {} sent in {:.1} s",
                meta.info.name,
                format::size(stats.downloaded),
                format::size(stats.uploaded),
                elapsed.as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        End::Interrupted if stats.complete => Ok(ExitCode::SUCCESS),
        End::Interrupted => {
            eprintln!(
                "interrupted at {} of {} pieces; run the same command again to resume",
                stats.pieces_have, stats.pieces
            );
            Ok(ExitCode::from(130))
        }
        End::Failed(reason) => bail!("{reason}"),
    }
}

/// Shows progress until the download completes (unless seeding on), a signal arrives, or
/// the session fails.
async fn watch(session: &Session, meta: &Metainfo, keep_seeding: bool) -> End {
    let bar = Progress::new(meta.info.total_length);
    let mut signal = std::pin::pin!(shutdown_signal());
    let mut every = tokio::time::interval(Duration::from_millis(250));
    let mut announced_complete = false;
    loop {
        // Completion ends a plain download at once, not at the next progress tick.
        let completed = async {
            if announced_complete {
                std::future::pending::<()>().await
            } else {
                session.completed().await
            }
        };
        tokio::select! {
            _ = every.tick() => bar.show(&session.stats()),
            _ = completed => {
                announced_complete = true;
                bar.show(&session.stats());
                if !keep_seeding {
                    bar.done();
                    return End::Complete;
                }
                bar.println(&format!("{}: complete, seeding (Ctrl-C to stop)", meta.info.name));
            }
            _ = session.stopped() => {
                bar.done();
                return End::Failed(session.error().unwrap_or_else(|| "stopped".into()));
            }
            _ = &mut signal => {
                bar.done();
                return End::Interrupted;
            }
        }
    }
}

/// A progress bar on a terminal, or a log line every few seconds otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    last_line: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("[{bar:30}] {percent:>3}% {msg} ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            last_line: std::cell::Cell::new(Instant::now()),
        }
    }

    fn show(&self, s: &Stats) {
        let line = status_line(s);
        match &self.bar {
            Some(bar) => {
                bar.set_position(s.verified_bytes);
                bar.set_message(line);
            }
            None if self.last_line.get().elapsed() >= Duration::from_secs(5) => {
                self.last_line.set(Instant::now());
                let percent = if s.total_bytes == 0 {
                    100.0
                } else {
                    s.verified_bytes as f64 * 100.0 / s.total_bytes as f64
                };
                eprintln!("{percent:5.1}% {line}");
            }
            None => {}
        }
    }

    fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// "down 12.3 MiB/s up 1.2 MiB/s, 5 peers (2 seeds)".
pub fn status_line(s: &Stats) -> String {
    format!(
        "down {}/s up {}/s, {} peers ({} seeds)",
        format::size(s.download_rate as u64),
        format::size(s.upload_rate as u64),
        s.peers,
        s.seeds
    )
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
