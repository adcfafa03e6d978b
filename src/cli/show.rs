//! `battorrent show`.

use super::format;
use anyhow::Context;
use battorrent::metainfo::{Metainfo, Version};
use std::path::Path;
use std::process::ExitCode;

/// Loads a .torrent, printing its tolerated irregularities as warnings on stderr.
pub fn load(path: &Path) -> anyhow::Result<Metainfo> {
    let meta = Metainfo::load(path)
        .with_context(|| format!("{} is not a usable .torrent", path.display()))?;
    for warning in &meta.warnings {
        tracing::warn!(
            "{}: {}",
            format::escape(&path.display().to_string()),
            format::escape(warning)
        );
    }
    Ok(meta)
}

pub fn run(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let meta = load(path)?;
    let info = &meta.info;
    let version = match meta.version {
        Version::V1 => "v1",
        Version::Hybrid => "hybrid",
    };
    if json {
        let files: Vec<_> = info
            .files
            .iter()
            .map(|f| serde_json::json!({"path": info.display_path(f), "length": f.length, "padding": f.padding}))
            .collect();
        let out = serde_json::json!({
            "name": info.name,
            "info_hash": meta.info_hash.to_hex(),
            "version": version,
            "total_size": info.total_length,
            "piece_length": info.piece_length,
            "piece_count": info.piece_count(),
            "multi_file": info.multi_file,
            "files": files,
            "trackers": meta.trackers,
            "private": info.private,
            "web_seeds": meta.web_seeds,
            "comment": meta.comment,
            "created_by": meta.created_by,
            "creation_date": meta.creation_date,
            "source": info.source,
            "magnet": meta.magnet().to_string(),
            "warnings": meta.warnings,
        });
        println!("{}", format::json(&out, true));
        return Ok(ExitCode::SUCCESS);
    }

    // Every value from the torrent goes through `escape`: it is text from outside.
    let row = |label: &str, value: &str| println!("{label:<12} {}", format::escape(value));
    row("Name", &info.name);
    row("Info hash", &meta.info_hash.to_hex());
    if meta.version == Version::Hybrid {
        row(
            "Version",
            "hybrid v1+v2 (the v1 part is used; v2 is not supported yet)",
        );
    }
    row(
        "Size",
        &format!(
            "{} ({} bytes)",
            format::size(info.total_length),
            info.total_length
        ),
    );
    let last = info.piece_len(info.piece_count() - 1);
    let mut pieces = format!(
        "{} × {}",
        info.piece_count(),
        format::size(info.piece_length)
    );
    if last != info.piece_length {
        pieces += &format!(" (last {})", format::size(last));
    }
    row("Pieces", &pieces);
    row("Private", if info.private { "yes" } else { "no" });
    if let Some(source) = &info.source {
        row("Source", source);
    }
    if let Some(by) = &meta.created_by {
        row("Created by", by);
    }
    if let Some(date) = meta.creation_date {
        row("Created on", &format::date(date));
    }
    if let Some(comment) = &meta.comment {
        row("Comment", comment);
    }
    if meta.trackers.is_empty() {
        row("Trackers", "none");
    }
    for (i, tier) in meta.trackers.iter().enumerate() {
        let label = if i == 0 { "Trackers" } else { "" };
        row(label, &format!("tier {}: {}", i + 1, tier.join(", ")));
    }
    for (i, seed) in meta.web_seeds.iter().enumerate() {
        row(if i == 0 { "Web seeds" } else { "" }, seed);
    }
    let real = info.files.iter().filter(|f| !f.padding).count();
    row("Files", &real.to_string());
    for file in info.files.iter().filter(|f| !f.padding) {
        println!(
            "  {:>10}  {}",
            format::size(file.length),
            format::escape(info.display_path(file))
        );
    }
    row("Magnet", &meta.magnet().to_string());
    Ok(ExitCode::SUCCESS)
}
