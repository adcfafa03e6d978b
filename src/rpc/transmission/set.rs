//! torrent-set (and the file choices of torrent-add): labels, files wanted and their
//! priorities, speed limits, sequential download.

use super::{labels, select, unsupported, Outcome};
use crate::rpc::backend::{Backend, OptionsChange};
use serde_json::{Map, Value};

/// Most file indexes one list may hold.
const MAX_INDEXES: usize = crate::rpc::options::MAX_FILES;

/// A list of file indexes.
fn index_list(args: &Map<String, Value>, key: &str) -> Result<Option<Vec<u32>>, String> {
    let Some(v) = args.get(key) else {
        return Ok(None);
    };
    let list = v
        .as_array()
        .ok_or_else(|| format!("'{key}' must be a list of file indexes"))?;
    if list.len() > MAX_INDEXES {
        return Err(format!("'{key}' may name at most {MAX_INDEXES} files"));
    }
    list.iter()
        .map(|i| {
            i.as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| format!("'{key}' holds something that is not a file index"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A speed limit in kB/s.
fn kbps(args: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    super::session::whole(args, key, "a speed in kB/s (a whole number)")
}

/// The file and limit settings `args` holds (torrent-set's names; torrent-add's file
/// lists are named the same).
pub fn options_change(args: &Map<String, Value>) -> Result<OptionsChange, String> {
    let flag = super::flag;
    Ok(OptionsChange {
        download_limit: kbps(args, "downloadLimit")?,
        download_limited: flag(args, "downloadLimited")?,
        upload_limit: kbps(args, "uploadLimit")?,
        upload_limited: flag(args, "uploadLimited")?,
        sequential: flag(args, "sequentialDownload")?,
        wanted: index_list(args, "files-wanted")?,
        unwanted: index_list(args, "files-unwanted")?,
        high: index_list(args, "priority-high")?,
        normal: index_list(args, "priority-normal")?,
        low: index_list(args, "priority-low")?,
    })
}

/// torrent-set: labels, files, limits and sequential are kept; settings that only tune
/// what we do anyway are accepted and have no effect; the rest is refused, naming what.
pub fn torrent_set<B: Backend>(backend: &B, args: &Map<String, Value>, now: i64) -> Outcome {
    let ids = select(backend, args, now)?;
    let mut refused = Vec::new();
    for key in args.keys() {
        match key.as_str() {
            "peer-limit" => refused.push("changing a torrent's peer limit"),
            "location" => refused.push("moving a torrent's data"),
            "trackerAdd" | "trackerRemove" | "trackerReplace" | "trackerList" => {
                refused.push("changing a torrent's trackers")
            }
            // Bandwidth priority, seed limits, queue moves, groups: accepted, no effect.
            _ => {}
        }
    }
    if !refused.is_empty() {
        refused.dedup();
        return Err(unsupported(&refused.join(", ")));
    }
    let change = options_change(args)?;
    if change != OptionsChange::default() {
        backend
            .set_options(&ids, &change)
            .map_err(|e| e.to_string())?;
    }
    if let Some(labels) = labels(args)? {
        backend
            .set_labels(&ids, &labels)
            .map_err(|e| e.to_string())?;
    }
    Ok(Map::new())
}
