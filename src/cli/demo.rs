//! `battorrent demo`: a whole swarm in one process on loopback.
//!
//! Generates a file, makes a torrent of it that announces to an in-process tracker, seeds
//! it from one session and downloads it with several others, then checks every copy byte
//! for byte and prints what happened.

use super::format;
use super::peer::{shutdown_signal, status_line};
use anyhow::{bail, Context};
use battorrent::metainfo::create::{build, scan, CreateOptions};
use battorrent::metainfo::Metainfo;
use battorrent::session::{AddTorrent, Session, SessionConfig, TorrentId, TorrentStats as Stats};
use battorrent::tracker::{serve, AccessList, ServerConfig, Shared};
use battorrent::wire::Bitfield;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Size of the generated file: 64M, 1G...
    #[arg(long, default_value = "64M", value_parser = format::parse_size)]
    size: u64,
    /// Number of downloading peers.
    #[arg(long, default_value_t = 4)]
    leechers: usize,
    /// Bytes per piece.
    #[arg(long, default_value = "256K", value_parser = format::parse_size)]
    piece_length: u64,
    /// Work in this folder and keep it (default: a temporary folder, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.leechers == 0 || args.leechers > 64 {
        bail!("--leechers must be between 1 and 64");
    }
    if args.size == 0 {
        bail!("--size must be at least 1 byte");
    }
    let (work, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("battorrent-demo-{}", std::process::id())),
            true,
        ),
    };
    let result = demo(&args, &work);
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

/// Writes `size` bytes of seeded pseudo-random data (incompressible, reproducible).
fn generate(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let mut rng = fastrand::Rng::with_seed(0xBA77_0BE5);
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.u64(..).to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

fn demo(args: &DemoArgs, work: &Path) -> anyhow::Result<ExitCode> {
    let seed_dir = work.join("seed");
    std::fs::create_dir_all(&seed_dir)
        .with_context(|| format!("cannot create {}", seed_dir.display()))?;
    let data = seed_dir.join("demo.bin");
    eprintln!(
        "generating {} of data in {}",
        format::size(args.size),
        data.display()
    );
    generate(&data, args.size)?;

    // Blocking threads only read blocks to upload: a few are plenty, and each one costs
    // memory.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The tracker.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let announce = format!("http://{}/announce", listener.local_addr()?);
        let mut config = ServerConfig::default();
        config.tracker.interval = 10;
        config.tracker.min_interval = 1;
        let shared = Shared::new(config, AccessList::Open);
        let stop_tracker = CancellationToken::new();
        let tracker = tokio::spawn(serve(
            shared,
            vec![listener],
            stop_tracker.clone().cancelled_owned(),
        ));

        // The torrent.
        let input = scan(&data, false, false)?;
        let options = CreateOptions {
            trackers: vec![vec![announce.clone()]],
            piece_length: Some(args.piece_length),
            ..CreateOptions::default()
        };
        let created = build(&input, &options, |_| {})?;
        let torrent_path = work.join("demo.torrent");
        std::fs::write(&torrent_path, &created.bytes)?;
        let meta = created.metainfo;
        eprintln!(
            "torrent {} ({} pieces of {}), tracker {announce}",
            meta.info_hash,
            meta.info.piece_count(),
            format::size(meta.info.piece_length)
        );

        let pieces = meta.info.piece_count();
        let seeder = Peer::start(&meta, &seed_dir, Bitfield::repeat(true, pieces)).await?;
        let started = Instant::now();
        let mut leechers = Vec::new();
        for i in 1..=args.leechers {
            let dir = work.join(format!("leecher-{i}"));
            std::fs::create_dir_all(&dir)?;
            let peer = Peer::start(&meta, &dir, Bitfield::repeat(false, pieces)).await?;
            leechers.push((dir, peer));
        }

        let outcome = wait_all(&leechers, args.timeout, args.size).await;
        let elapsed = started.elapsed();
        let seeder_stats = seeder.stats();
        let stats: Vec<Stats> = leechers.iter().map(|(_, s)| s.stats()).collect();
        for (_, peer) in leechers {
            peer.session.shutdown().await;
        }
        seeder.session.shutdown().await;
        stop_tracker.cancel();
        let _ = tracker.await;
        if let Err(reason) = outcome {
            bail!("{reason}");
        }

        // Every copy must equal the original, byte for byte.
        let original = std::fs::read(&data)?;
        for i in 1..=args.leechers {
            let copy = work.join(format!("leecher-{i}")).join("demo.bin");
            let bytes =
                std::fs::read(&copy).with_context(|| format!("cannot read {}", copy.display()))?;
            if bytes != original {
                bail!("{} differs from the original", copy.display());
            }
        }
        report(args, elapsed, &seeder_stats, &stats);
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// One peer of the demo swarm: a session of its own on loopback, sharing one torrent.
struct Peer {
    session: Session,
    id: TorrentId,
}

impl Peer {
    async fn start(meta: &Metainfo, dir: &Path, have: Bitfield) -> anyhow::Result<Peer> {
        let config = SessionConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..SessionConfig::default()
        };
        let session = Session::start(config).await?;
        let id = session.add(AddTorrent {
            meta: meta.clone(),
            dir: dir.to_path_buf(),
            have: Some(have),
            peers: Vec::new(),
            paused: false,
        })?;
        Ok(Peer { session, id })
    }

    fn stats(&self) -> Stats {
        self.session.stats(self.id).unwrap_or_default()
    }

    fn error(&self) -> Option<String> {
        self.session.error(self.id)
    }
}

/// Shows a bar per leecher until all complete, a timeout, or Ctrl-C.
async fn wait_all(leechers: &[(PathBuf, Peer)], timeout: u64, size: u64) -> Result<(), String> {
    let terminal = std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let bars: Vec<ProgressBar> = leechers
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let bar = if terminal {
                multi.add(ProgressBar::new(size))
            } else {
                ProgressBar::hidden()
            };
            bar.set_style(
                ProgressStyle::with_template("leecher {prefix} [{bar:30}] {percent:>3}% {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix((i + 1).to_string());
            bar
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut signal = std::pin::pin!(shutdown_signal());
    let mut every = tokio::time::interval(Duration::from_millis(200));
    let mut last_line = Instant::now();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = &mut signal => return Err("interrupted".into()),
        }
        let stats: Vec<Stats> = leechers.iter().map(|(_, s)| s.stats()).collect();
        for (bar, s) in bars.iter().zip(&stats) {
            bar.set_position(s.verified_bytes);
            bar.set_message(status_line(s));
        }
        if !terminal && last_line.elapsed() >= Duration::from_secs(2) {
            last_line = Instant::now();
            let done: u64 = stats.iter().map(|s| s.verified_bytes).sum();
            eprintln!(
                "{:5.1}% of all copies",
                done as f64 * 100.0 / (size as f64 * stats.len() as f64)
            );
        }
        if let Some((i, e)) = leechers
            .iter()
            .enumerate()
            .find_map(|(i, (_, s))| s.error().map(|e| (i, e)))
        {
            return Err(format!("leecher {} failed: {e}", i + 1));
        }
        if stats.iter().all(|s| s.complete) {
            for bar in &bars {
                bar.finish_and_clear();
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not complete after {timeout} s"));
        }
    }
}

fn report(args: &DemoArgs, elapsed: Duration, seeder: &Stats, leechers: &[Stats]) {
    let secs = elapsed.as_secs_f64();
    let delivered = args.size * leechers.len() as u64;
    let ratio = seeder.uploaded as f64 / args.size as f64;
    if args.json {
        let summary = serde_json::json!({
            "size": args.size,
            "leechers": leechers.len(),
            "seconds": secs,
            "bytes_per_second": delivered as f64 / secs,
            "seeder_uploaded": seeder.uploaded,
            "seeder_upload_ratio": ratio,
            "leecher_stats": leechers,
        });
        println!("{summary}");
        return;
    }
    println!(
        "{} leechers each downloaded {} in {:.2} s ({}/s in all); every copy matches the original.",
        leechers.len(),
        format::size(args.size),
        secs,
        format::size((delivered as f64 / secs) as u64)
    );
    println!(
        "The seeder uploaded {} ({ratio:.2}x the file); the leechers uploaded {} to each other.",
        format::size(seeder.uploaded),
        format::size(leechers.iter().map(|s| s.uploaded).sum())
    );
    for (i, s) in leechers.iter().enumerate() {
        println!(
            "  leecher {}: received {}, sent {}, {} hash failures",
            i + 1,
            format::size(s.downloaded),
            format::size(s.uploaded),
            s.hash_failures
        );
    }
}
