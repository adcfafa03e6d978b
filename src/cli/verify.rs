//! `battorrent verify`.

use super::{format, show};
use battorrent::storage::{hash_pieces, HashOptions, PieceHash};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The .torrent file.
    torrent: PathBuf,
    /// Folder that holds the torrent's data (default: the .torrent's own folder).
    #[arg(short, long)]
    dir: Option<PathBuf>,
    /// Hashing threads (default: one per core).
    #[arg(short, long, default_value_t = 0)]
    threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// What verification found for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Good,
    Missing,
    WrongSize(u64),
    BadPieces(usize),
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let meta = show::load(&args.torrent)?;
    let info = &meta.info;
    let dir = args.dir.clone().unwrap_or_else(|| {
        args.torrent
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    let layout = info.layout(&dir);
    let mut options = HashOptions::default();
    if args.threads > 0 {
        options.threads = args.threads;
    }
    let bar = format::progress_bar(info.total_length, "Verifying");
    let results = hash_pieces(&layout, options, |n| bar.inc(n))?;
    bar.finish_and_clear();

    let good: Vec<bool> = results
        .iter()
        .zip(info.pieces.iter())
        .map(|(got, want)| *got == PieceHash::Hashed(*want))
        .collect();
    let statuses: Vec<Status> = layout
        .files
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            if slot.padding {
                return Status::Good;
            }
            match std::fs::metadata(&slot.path) {
                Err(_) => Status::Missing,
                Ok(m) if m.len() != slot.length => Status::WrongSize(m.len()),
                Ok(_) => match layout.pieces_of_file(i).filter(|&p| !good[p]).count() {
                    0 => Status::Good,
                    n => Status::BadPieces(n),
                },
            }
        })
        .collect();
    let good_count = good.iter().filter(|&&g| g).count();
    let all_good = good_count == good.len() && statuses.iter().all(|s| *s == Status::Good);
    let bad: Vec<usize> = (0..good.len()).filter(|&i| !good[i]).collect();

    if args.json {
        let files: Vec<_> = info
            .files
            .iter()
            .zip(&statuses)
            .filter(|(f, _)| !f.padding)
            .map(|(f, s)| {
                let (status, detail) = match s {
                    Status::Good => ("good", serde_json::Value::Null),
                    Status::Missing => ("missing", serde_json::Value::Null),
                    Status::WrongSize(n) => ("wrong_size", (*n).into()),
                    Status::BadPieces(n) => ("bad_pieces", (*n).into()),
                };
                serde_json::json!({"path": info.display_path(f), "status": status, "detail": detail})
            })
            .collect();
        let out = serde_json::json!({
            "ok": all_good,
            "info_hash": meta.info_hash.to_hex(),
            "piece_count": good.len(),
            "good_pieces": good_count,
            "bad_pieces": bad,
            "files": files,
        });
        println!("{}", format::json(&out, true));
    } else {
        for (file, status) in info.files.iter().zip(&statuses) {
            let path = format::escape(info.display_path(file));
            match status {
                Status::Good => {}
                Status::Missing => println!("missing     {path}"),
                Status::WrongSize(n) => {
                    println!("wrong size  {path}: {n} bytes, expected {}", file.length)
                }
                Status::BadPieces(n) => println!(
                    "corrupt     {path}: {n} bad piece{}",
                    if *n == 1 { "" } else { "s" }
                ),
            }
        }
        if !bad.is_empty() {
            println!("bad pieces  {}", ranges(&bad));
        }
        println!(
            "{}: {good_count} of {} pieces good in {}",
            if all_good { "OK" } else { "FAILED" },
            good.len(),
            format::escape(&dir.display().to_string())
        );
    }
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `0-3, 7, 9-10` from sorted indexes.
fn ranges(indexes: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indexes.len() {
        let start = indexes[i];
        while i + 1 < indexes.len() && indexes[i + 1] == indexes[i] + 1 {
            i += 1;
        }
        parts.push(if indexes[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", indexes[i])
        });
        i += 1;
    }
    parts.join(", ")
}
