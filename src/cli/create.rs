//! `battorrent create`.

use super::format;
use anyhow::{bail, Context};
use battorrent::metainfo::create::{build, scan, CreateOptions};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// File or folder to make a torrent of.
    path: PathBuf,
    /// Tracker announce URL; each -a forms its own tier, in order.
    #[arg(short = 'a', long = "announce", value_name = "URL")]
    announce: Vec<String>,
    /// A tier of several tracker URLs, comma-separated (after the -a tiers).
    #[arg(long, value_name = "URL,URL")]
    tier: Vec<String>,
    /// Bytes per piece: 262144, 256K, 1M... (default: a power of two near 10·√size).
    #[arg(short = 'l', long, value_name = "SIZE", value_parser = format::parse_size)]
    piece_length: Option<u64>,
    /// Mark the torrent private (BEP 27): peers only from its trackers.
    #[arg(short, long)]
    private: bool,
    /// Free-text comment.
    #[arg(short, long)]
    comment: Option<String>,
    /// Source tag (changes the info hash; used by private trackers).
    #[arg(short, long)]
    source: Option<String>,
    /// Web seed URL (BEP 19); may be repeated.
    #[arg(short, long = "web-seed", value_name = "URL")]
    web_seed: Vec<String>,
    /// Leave out the creation date (for reproducible output).
    #[arg(long)]
    no_date: bool,
    /// Include files and folders whose names start with '.'.
    #[arg(long)]
    include_hidden: bool,
    /// Follow symbolic links inside the folder instead of skipping them.
    #[arg(long)]
    follow_symlinks: bool,
    /// Hashing threads (default: one per core).
    #[arg(short, long, default_value_t = 0)]
    threads: usize,
    /// Where to write the .torrent (default: NAME.torrent in the current folder).
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Overwrite OUT if it exists.
    #[arg(short, long)]
    force: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut input = scan(&args.path, args.include_hidden, args.follow_symlinks)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", input.name)));
    if output.exists() && !args.force {
        bail!(
            "{} already exists; use --force to overwrite it",
            output.display()
        );
    }
    input.exclude(&output)?;
    let mut trackers: Vec<Vec<String>> = args.announce.iter().map(|u| vec![u.clone()]).collect();
    trackers.extend(args.tier.iter().map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }));
    let options = CreateOptions {
        trackers,
        piece_length: args.piece_length,
        private: args.private,
        comment: args.comment,
        source: args.source,
        web_seeds: args.web_seed,
        creation_date: (!args.no_date).then(now_unix),
        created_by: Some(concat!("BatTorrent/", env!("CARGO_PKG_VERSION")).to_owned()),
        include_hidden: args.include_hidden,
        follow_symlinks: args.follow_symlinks,
        threads: args.threads,
    };
    let bar = format::progress_bar(input.total_length, "Hashing");
    let created = build(&input, &options, |n| bar.inc(n))?;
    bar.finish_and_clear();
    write_atomically(&output, &created.bytes)?;

    let meta = &created.metainfo;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let summary = serde_json::json!({
            "torrent": output,
            "name": meta.info.name,
            "info_hash": meta.info_hash.to_hex(),
            "total_size": meta.info.total_length,
            "piece_length": meta.info.piece_length,
            "piece_count": meta.info.piece_count(),
            "file_count": meta.info.files.len(),
            "magnet": meta.magnet().to_string(),
            "seconds": seconds,
        });
        println!("{}", format::json(&summary, false));
    } else {
        // The name comes from the input's file name, which may come from anywhere.
        println!("Created {}", format::escape(&output.display().to_string()));
        println!("  info hash  {}", meta.info_hash);
        println!(
            "  size       {} in {} file{}",
            format::size(meta.info.total_length),
            meta.info.files.len(),
            if meta.info.files.len() == 1 { "" } else { "s" }
        );
        println!(
            "  pieces     {} × {}",
            meta.info.piece_count(),
            format::size(meta.info.piece_length)
        );
        println!("  magnet     {}", meta.magnet());
    }
    Ok(ExitCode::SUCCESS)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Writes through a temporary file in the same folder and renames it into place, so an
/// interrupted run never leaves half a .torrent behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .context("the output path has no file name")?;
    let tmp = dir.join(format!(".{}.partial", file_name.to_string_lossy()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}
