//! `battorrent seed` and `battorrent download`.

use super::{format, show};
use anyhow::{bail, Context};
use battorrent::metainfo::{Magnet, Metainfo};
use battorrent::session::{
    self, AddMagnet, AddTorrent, Session, SessionConfig, SessionEvent, SessionStats, TorrentId,
    TorrentState, TorrentStats, TorrentSummary,
};
use battorrent::storage::{Access, Storage};
use battorrent::wire::Bitfield;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Options shared by `seed` and `download`.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// The .torrent files (all run in one process on one port); `download` also takes
    /// magnet links ('magnet:?xt=urn:btih:...': quote them for the shell).
    #[arg(required = true, value_name = "TORRENT")]
    torrents: Vec<PathBuf>,
    /// Folder that holds (or will hold) the data: each torrent's files go under it as the
    /// torrent names them.
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
    /// Do not contact the torrents' trackers.
    #[arg(long)]
    no_trackers: bool,
    /// Most peers connected at once, per torrent.
    #[arg(long, default_value_t = 50)]
    max_peers: usize,
    /// Peers unchoked by upload rank, per torrent (one optimistic unchoke comes on top).
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
    #[command(flatten)]
    dht: super::dht::DhtArgs,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    peer: PeerArgs,
    /// Keep seeding after the downloads complete (until Ctrl-C).
    #[arg(long)]
    seed: bool,
    /// Where to save the .torrent of a magnet link's metadata (default: DIR/NAME.torrent).
    /// Only with one magnet link.
    #[arg(long, value_name = "PATH")]
    save_torrent: Option<PathBuf>,
}

/// How a run ended.
enum End {
    Complete,
    Interrupted,
    Failed(String),
}

/// A torrent to run: a loaded .torrent with the pieces found on disk, or a magnet link.
enum Loaded {
    Torrent { meta: Metainfo, have: Bitfield },
    Magnet(Magnet),
}

/// The magnet link an argument holds, if it is one.
fn as_magnet(arg: &Path) -> Option<&str> {
    arg.to_str().filter(|s| {
        s.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
    })
}

pub fn seed(args: PeerArgs) -> anyhow::Result<ExitCode> {
    let mut loaded = Vec::new();
    for path in &args.torrents {
        if as_magnet(path).is_some() {
            bail!(
                "`seed` needs the .torrent file, not a magnet link \
                 (run `battorrent download LINK --seed` to fetch and then seed it)"
            );
        }
        let meta = show::load(path)?;
        let have = check(&meta, &args.dir)?;
        let missing = have.count_zeros();
        if missing > 0 {
            bail!(
                "{missing} of {} pieces of {} are missing or damaged under {}: nothing to seed \
                 there (check --dir, or run `battorrent download` to fetch them)",
                have.len(),
                format::escape(&meta.info.name),
                args.dir.display()
            );
        }
        eprintln!(
            "seeding {} from {}",
            format::escape(&meta.info.name),
            args.dir.display()
        );
        loaded.push(Loaded::Torrent { meta, have });
    }
    run(loaded, &args, true, None)
}

pub fn download(args: DownloadArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.peer.dir)
        .with_context(|| format!("cannot create {}", args.peer.dir.display()))?;
    let mut loaded = Vec::new();
    for path in &args.peer.torrents {
        if let Some(link) = as_magnet(path) {
            let magnet: Magnet = link
                .parse()
                .with_context(|| format!("cannot read the magnet link {}", format::escape(link)))?;
            loaded.push(Loaded::Magnet(magnet));
            continue;
        }
        let meta = show::load(path)?;
        let have = check(&meta, &args.peer.dir)?;
        if have.all() {
            // Nothing to fetch, but the files must end where the torrent says: opening
            // them for download cuts any that are longer.
            Storage::new(
                meta.info.layout(&args.peer.dir),
                &args.peer.dir,
                Access::ReadWrite,
            )
            .with_context(|| format!("cannot prepare {}", args.peer.dir.display()))?;
        }
        if have.any() && !have.all() {
            eprintln!(
                "{}: resuming: {} of {} pieces already verified",
                format::escape(&meta.info.name),
                have.count_ones(),
                have.len()
            );
        }
        loaded.push(Loaded::Torrent { meta, have });
    }
    let magnets = loaded
        .iter()
        .filter(|l| matches!(l, Loaded::Magnet(_)))
        .count();
    if args.save_torrent.is_some() && magnets != 1 {
        bail!("--save-torrent takes one magnet link; {magnets} were given");
    }
    run(loaded, &args.peer, args.seed, args.save_torrent.as_deref())
}

/// Checks existing data with a progress bar.
fn check(meta: &Metainfo, dir: &Path) -> anyhow::Result<Bitfield> {
    let bar = format::progress_bar(meta.info.total_length, "Checking");
    let have = session::check(meta, dir, |n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok(have)
}

fn run(
    loaded: Vec<Loaded>,
    args: &PeerArgs,
    keep_seeding: bool,
    save_torrent: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = SessionConfig {
        bind: SocketAddr::new(args.bind, args.port),
        max_peers: args.max_peers.max(1),
        upload_slots: args.upload_slots.max(1),
        use_trackers: !args.no_trackers,
        upload_limit: args.upload_limit,
        direct_writes: !args.buffered_writes,
        dht: args.dht.config()?,
        ..SessionConfig::default()
    };
    for l in &loaded {
        let (name, no_peers) = match l {
            Loaded::Torrent { meta, .. } => (meta.info.name.clone(), meta.trackers.is_empty()),
            Loaded::Magnet(m) => (
                m.display_name
                    .clone()
                    .unwrap_or_else(|| m.info_hash.to_hex()),
                m.trackers.is_empty() && m.peer_addrs().is_empty(),
            ),
        };
        if no_peers && args.peers.is_empty() && args.dht.no_dht {
            eprintln!(
                "note: {} lists no tracker and no peer, and no --peer was given: waiting for \
                 peers to connect",
                format::escape(&name)
            );
        }
    }
    // Blocking threads only read blocks to upload: a few are plenty, and each one costs
    // memory.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (end, summaries, dht_state) = runtime.block_on(async {
        let session = Session::start(config).await?;
        eprintln!("listening on {}", session.local_addr());
        let mut ids = Vec::new();
        for l in loaded {
            ids.push(match l {
                Loaded::Torrent { meta, have } => session.add(AddTorrent {
                    meta,
                    dir: args.dir.clone(),
                    have: Some(have),
                    peers: args.peers.clone(),
                    paused: false,
                })?,
                Loaded::Magnet(magnet) => session.add_magnet(AddMagnet {
                    magnet,
                    dir: args.dir.clone(),
                    peers: args.peers.clone(),
                    paused: false,
                })?,
            });
        }
        release_freed_memory();
        let saving = Saving {
            dir: &args.dir,
            path: save_torrent,
        };
        let end = watch(&session, &ids, keep_seeding, &saving).await;
        let summaries = session.torrents();
        let dht_state = session.shutdown().await;
        anyhow::Ok((end, summaries, dht_state))
    })?;
    args.dht.save(dht_state)?;
    let elapsed = started.elapsed();
    let all_complete = summaries.iter().all(|t| t.stats.complete);
    if args.json {
        let summary = serde_json::json!({
            "complete": all_complete,
            "seconds": elapsed.as_secs_f64(),
            "torrents": summaries,
        });
        println!("{}", format::json(&summary, false));
    }
    match end {
        End::Complete => {
            for t in &summaries {
                eprintln!(
                    "{}: complete, {} received and {} sent in {:.1} s",
                    format::escape(&t.name),
                    format::size(t.stats.downloaded),
                    format::size(t.stats.uploaded),
                    elapsed.as_secs_f64()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        End::Interrupted if all_complete => Ok(ExitCode::SUCCESS),
        End::Interrupted => {
            for t in summaries.iter().filter(|t| !t.stats.complete) {
                eprintln!(
                    "{}: interrupted at {} of {} pieces",
                    format::escape(&t.name),
                    t.stats.pieces_have,
                    t.stats.pieces
                );
            }
            eprintln!("run the same command again to resume");
            Ok(ExitCode::from(130))
        }
        End::Failed(reason) => bail!("{reason}"),
    }
}

/// Shows progress until every download completes (unless seeding on), a signal arrives,
/// or a torrent fails.
async fn watch(
    session: &Session,
    ids: &[TorrentId],
    keep_seeding: bool,
    saving: &Saving<'_>,
) -> End {
    let names: Vec<String> = session.torrents().into_iter().map(|t| t.name).collect();
    let bars = Progress::new(&names);
    drop(names);
    let mut signal = std::pin::pin!(shutdown_signal());
    let mut every = tokio::time::interval(Duration::from_millis(250));
    let mut events = session.subscribe();
    let mut announced_complete = false;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            // Completion ends a plain download at once, not at the next progress tick.
            event = events.recv() => {
                if let Ok(SessionEvent::Metadata(id)) = event {
                    if let Some(meta) = session.metainfo(id) {
                        bars.println(&saving.save(&meta));
                    }
                }
            }
            _ = &mut signal => {
                bars.done();
                return End::Interrupted;
            }
        }
        let totals = session.totals();
        bars.show(session, &totals);
        if totals.failed > 0 {
            bars.done();
            let failed = session.torrents().into_iter().find(|t| t.error.is_some());
            return End::Failed(failed.map_or_else(
                || "a torrent failed".into(),
                |t| format!("{}: {}", t.name, t.error.unwrap_or_default()),
            ));
        }
        if totals.complete == ids.len() && !announced_complete {
            announced_complete = true;
            if !keep_seeding {
                bars.done();
                return End::Complete;
            }
            bars.println("complete, seeding (Ctrl-C to stop)");
        }
    }
}

/// Torrents past which progress shows only the total (one bar or line each is no use).
const MAX_BARS: usize = 20;

/// On a terminal, a bar per torrent (up to [`MAX_BARS`]) and a total; otherwise a log line
/// every few seconds.
struct Progress {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
    total: Option<ProgressBar>,
    terminal: bool,
    last_line: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(names: &[String]) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("{prefix:20!} [{bar:30}] {percent:>3}% {msg}")
            .expect("valid template")
            .progress_chars("=> ");
        let bar = |name: &str| {
            let bar = multi.add(ProgressBar::new(1));
            bar.set_style(style.clone());
            bar.set_prefix(format::escape(name).into_owned());
            bar
        };
        let (bars, total) = if !terminal {
            (Vec::new(), None)
        } else if names.len() <= MAX_BARS {
            let bars = names.iter().map(|n| bar(n)).collect();
            (bars, (names.len() > 1).then(|| bar("total")))
        } else {
            (Vec::new(), Some(bar(&format!("{} torrents", names.len()))))
        };
        Progress {
            multi,
            bars,
            total,
            terminal,
            last_line: std::cell::Cell::new(Instant::now()),
        }
    }

    fn show(&self, session: &Session, totals: &SessionStats) {
        let sum = TorrentStats {
            total_bytes: totals.total_bytes,
            verified_bytes: totals.verified_bytes,
            download_rate: totals.download_rate,
            upload_rate: totals.upload_rate,
            peers: totals.peers,
            seeds: totals.seeds,
            ..TorrentStats::default()
        };
        let few = totals.torrents <= MAX_BARS;
        // Per-torrent figures only where they are shown.
        let all = if few && (self.terminal || self.line_due()) {
            session.torrents()
        } else {
            Vec::new()
        };
        for (bar, t) in self.bars.iter().zip(&all) {
            if t.state == TorrentState::FetchingMetadata {
                bar.set_length(t.stats.metadata_size.max(1));
                bar.set_position(t.stats.metadata_bytes);
            } else {
                bar.set_length(t.stats.total_bytes.max(1));
                bar.set_position(t.stats.verified_bytes);
            }
            bar.set_prefix(format::escape(&t.name).into_owned());
            bar.set_message(summary_line(t));
        }
        if let Some(total) = &self.total {
            total.set_length(sum.total_bytes.max(1));
            total.set_position(sum.verified_bytes);
            total.set_message(status_line(&sum));
        }
        if !self.terminal && self.line_due() {
            self.last_line.set(Instant::now());
            let percent = |s: &TorrentStats| {
                if s.total_bytes == 0 {
                    100.0
                } else {
                    s.verified_bytes as f64 * 100.0 / s.total_bytes as f64
                }
            };
            if few {
                for t in &all {
                    let s = &t.stats;
                    eprintln!(
                        "{:5.1}% {}: {}",
                        percent(s),
                        format::escape(&t.name),
                        summary_line(t)
                    );
                }
            } else {
                eprintln!(
                    "{:5.1}% of {} torrents ({} complete): {}",
                    percent(&sum),
                    totals.torrents,
                    totals.complete,
                    status_line(&sum)
                );
            }
        }
    }

    /// Whether a log line is due (every 5 s when not on a terminal).
    fn line_due(&self) -> bool {
        self.last_line.get().elapsed() >= Duration::from_secs(5)
    }

    fn println(&self, text: &str) {
        if self.terminal {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }

    fn done(&self) {
        for bar in self.bars.iter().chain(&self.total) {
            bar.finish_and_clear();
        }
    }
}

/// Hands memory freed while loading and checking (parsed torrents, read buffers) back to
/// the system, so a long-running process's size reflects what it holds.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A torrent's progress line: "fetching metadata (48 KiB of 120 KiB), 3 peers" first for
/// a magnet link, then [`status_line`].
fn summary_line(t: &TorrentSummary) -> String {
    let s = &t.stats;
    if t.state != TorrentState::FetchingMetadata {
        return status_line(s);
    }
    if s.metadata_size == 0 {
        return format!("fetching metadata, {} peers", s.peers);
    }
    format!(
        "fetching metadata ({} of {}), {} peers",
        format::size(s.metadata_bytes),
        format::size(s.metadata_size),
        s.peers
    )
}

/// Where the .torrent of a magnet link's metadata goes.
struct Saving<'a> {
    /// The download folder: `NAME.torrent` goes there by default.
    dir: &'a Path,
    /// `--save-torrent`.
    path: Option<&'a Path>,
}

impl Saving<'_> {
    /// Saves the .torrent; says what happened, in one line. An existing file with other
    /// bytes is never replaced.
    fn save(&self, meta: &Metainfo) -> String {
        let name = &meta.info.name;
        let bytes = meta.to_torrent_bytes();
        let path = match self.path {
            Some(p) => p.to_path_buf(),
            // The name passed the same checks as any path element of a torrent (no
            // separator, not "." or ".."), so it stays in the folder.
            None => self.dir.join(format!("{name}.torrent")),
        };
        let shown = format::escape(&path.display().to_string()).into_owned();
        match std::fs::read(&path) {
            Ok(existing) if existing == bytes => {
                return format!("metadata received: {shown} is already saved");
            }
            Ok(_) => {
                return format!("metadata received; not saved: {shown} exists with other contents");
            }
            Err(_) => {}
        }
        let tmp = path.with_extension("torrent.part");
        let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => format!(
                "metadata received: {} ({}, {} files), saved to {shown}",
                format::escape(name),
                format::size(meta.info.total_length),
                meta.info.files.iter().filter(|f| !f.padding).count()
            ),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                format!("metadata received; cannot save {shown}: {e}")
            }
        }
    }
}

/// "down 12.3 MiB/s up 1.2 MiB/s, 5 peers (2 seeds)".
pub fn status_line(s: &TorrentStats) -> String {
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
