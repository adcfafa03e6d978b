//! session-get, session-set, session-stats and free-space.

use super::{flag, folder, Outcome};
use crate::rpc::backend::{Backend, Counters, Settings, SettingsChange};
use serde_json::{json, Map, Value};

/// The Transmission RPC version whose behaviour we follow, and the oldest we answer.
pub const RPC_VERSION: u32 = 16;
pub const RPC_VERSION_MINIMUM: u32 = 14;
/// `version`: Transmission's version first (the *arr tools parse it to pick their
/// requests), then ours.
fn version() -> String {
    format!("3.00 (battorrent {})", env!("CARGO_PKG_VERSION"))
}

/// Every session-get field, as values.
fn all_settings(s: &Settings, session_id: &str) -> Map<String, Value> {
    let dir = s.download_dir.to_string_lossy();
    let fields: [(&str, Value); 50] = [
        ("alt-speed-down", json!(50)),
        ("alt-speed-enabled", json!(false)),
        ("alt-speed-time-begin", json!(540)),
        ("alt-speed-time-day", json!(127)),
        ("alt-speed-time-enabled", json!(false)),
        ("alt-speed-time-end", json!(1020)),
        ("alt-speed-up", json!(50)),
        ("blocklist-enabled", json!(false)),
        ("blocklist-size", json!(0)),
        ("blocklist-url", json!("")),
        ("cache-size-mb", json!(0)),
        ("config-dir", json!(s.config_dir.to_string_lossy())),
        ("dht-enabled", json!(s.dht)),
        ("download-dir", json!(dir)),
        (
            "download-dir-free-space",
            json!(s.free_space.map_or(-1, |n| n as i64)),
        ),
        ("download-queue-enabled", json!(s.queue.enabled)),
        ("download-queue-size", json!(s.queue.size)),
        ("encryption", json!("tolerated")),
        ("idle-seeding-limit", json!(30)),
        ("idle-seeding-limit-enabled", json!(false)),
        ("incomplete-dir", json!(dir)),
        ("incomplete-dir-enabled", json!(false)),
        ("lpd-enabled", json!(false)),
        (
            "peer-limit-global",
            json!(s.max_peers_per_torrent.saturating_mul(4)),
        ),
        ("peer-limit-per-torrent", json!(s.max_peers_per_torrent)),
        ("peer-port", json!(s.peer_port)),
        ("peer-port-random-on-start", json!(false)),
        ("pex-enabled", json!(true)),
        ("port-forwarding-enabled", json!(false)),
        ("queue-stalled-enabled", json!(false)),
        ("queue-stalled-minutes", json!(30)),
        ("rename-partial-files", json!(false)),
        ("rpc-version", json!(RPC_VERSION)),
        ("rpc-version-minimum", json!(RPC_VERSION_MINIMUM)),
        ("script-torrent-done-enabled", json!(false)),
        ("script-torrent-done-filename", json!("")),
        ("seed-queue-enabled", json!(false)),
        ("seed-queue-size", json!(0)),
        ("seedRatioLimit", json!(2.0)),
        ("seedRatioLimited", json!(false)),
        ("session-id", json!(session_id)),
        ("speed-limit-down", json!(s.speed.down)),
        ("speed-limit-down-enabled", json!(s.speed.down_enabled)),
        ("speed-limit-up", json!(s.speed.up)),
        ("speed-limit-up-enabled", json!(s.speed.up_enabled)),
        ("start-added-torrents", json!(s.start_added)),
        ("trash-original-torrent-files", json!(false)),
        (
            "units",
            json!({
                "memory-bytes": 1024,
                "memory-units": ["KiB", "MiB", "GiB", "TiB"],
                "size-bytes": 1000,
                "size-units": ["kB", "MB", "GB", "TB"],
                "speed-bytes": 1000,
                "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
            }),
        ),
        ("utp-enabled", json!(false)),
        ("version", json!(version())),
    ];
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

pub fn get<B: Backend>(backend: &B, args: &Map<String, Value>, session_id: &str) -> Outcome {
    let mut all = all_settings(&backend.settings(), session_id);
    if let Some(Value::Array(wanted)) = args.get("fields") {
        let wanted: Vec<&str> = wanted.iter().filter_map(Value::as_str).collect();
        all.retain(|k, _| wanted.contains(&k.as_str()));
    }
    Ok(all)
}

/// Changes what can change while running (the download folder, whether new torrents
/// start, speed limits, the download queue); a setting sent with the value it already has is fine; any other change is
/// refused, naming the settings.
pub fn set<B: Backend>(backend: &B, args: &Map<String, Value>, session_id: &str) -> Outcome {
    let current = all_settings(&backend.settings(), session_id);
    let mut change = SettingsChange::default();
    let mut refused = Vec::new();
    for (key, value) in args {
        match key.as_str() {
            "download-dir" => change.download_dir = folder(args, key)?,
            "start-added-torrents" => change.start_added = flag(args, key)?,
            "speed-limit-down" => change.speed_down = number(args, key)?,
            "speed-limit-up" => change.speed_up = number(args, key)?,
            "speed-limit-down-enabled" => change.speed_down_enabled = flag(args, key)?,
            "speed-limit-up-enabled" => change.speed_up_enabled = flag(args, key)?,
            "download-queue-size" => {
                change.queue_size = number(args, key)?.map(|n| n as usize);
            }
            "download-queue-enabled" => change.queue_enabled = flag(args, key)?,
            _ if current.get(key) == Some(value) => {}
            _ => refused.push(key.as_str()),
        }
    }
    if !refused.is_empty() {
        return Err(format!(
            "battorrent cannot change {} while it runs (set them when starting the daemon, \
             where an option exists)",
            refused.join(", ")
        ));
    }
    backend.change_settings(change).map_err(|e| e.to_string())?;
    Ok(Map::new())
}

/// A whole number setting (speeds in kB/s, queue sizes), at most 2^32 - 1.
fn number(args: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    whole(args, key, "a whole number")
}

/// The whole number at `key` (absent or null: none), at most 2^32 - 1; else an error
/// saying it must be `what`.
pub(super) fn whole(
    args: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<u64>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|&n| n <= u64::from(u32::MAX))
            .map(Some)
            .ok_or_else(|| format!("'{key}' must be {what}")),
    }
}

fn counters(c: &Counters) -> Value {
    json!({
        "uploadedBytes": c.uploaded,
        "downloadedBytes": c.downloaded,
        "filesAdded": c.files_added,
        "sessionCount": c.session_count,
        "secondsActive": c.seconds_active,
    })
}

pub fn stats<B: Backend>(backend: &B) -> Map<String, Value> {
    let views = backend.torrents(crate::rpc::backend::Detail::Brief);
    let paused = views
        .iter()
        .filter(|t| super::fields::status(t) == 0)
        .count();
    let totals = backend.totals();
    let rate = |f: fn(&crate::session::TorrentStats) -> f64| -> u64 {
        views.iter().map(|t| f(&t.stats)).sum::<f64>().round() as u64
    };
    let out = json!({
        "activeTorrentCount": views.len() - paused,
        "pausedTorrentCount": paused,
        "torrentCount": views.len(),
        "downloadSpeed": rate(|s| s.download_rate),
        "uploadSpeed": rate(|s| s.upload_rate),
        "cumulative-stats": counters(&totals.cumulative),
        "current-stats": counters(&totals.current),
    });
    match out {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

pub fn free_space<B: Backend>(backend: &B, args: &Map<String, Value>) -> Outcome {
    let Some(path) = folder(args, "path")? else {
        return Err("free-space needs 'path'".into());
    };
    let (free, total) = backend
        .free_space(&path)
        .ok_or_else(|| format!("cannot tell the free space of {}", path.display()))?;
    let out = json!({
        "path": path.to_string_lossy(),
        "size-bytes": free,
        "total_size": total,
    });
    match out {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}
