//! Transmission's RPC (as of Transmission 3.00, RPC version 16), so transmission-remote,
//! Flood and the *arr tools drive the daemon unchanged: one JSON request in
//! (`{"method", "arguments", "tag"}`), one JSON response out (`{"result", "arguments",
//! "tag"}`). No sockets here: [`handle`] maps a request onto a [`Backend`] and its answer
//! back; the HTTP side (session-id handshake, auth) is in [`crate::rpc::http`].
//!
//! What the session cannot do is refused with a sentence saying so (moving data, changing
//! trackers), except settings that only tune what we do anyway (bandwidth priority, seed
//! ratios), which are accepted and have no effect; see the README.

mod fields;
mod list;
mod session;
mod set;
#[cfg(test)]
pub(crate) mod tests;

pub use fields::FIELDS;

use super::backend::{Added, Backend, Detail, NewTorrent, QueueMove, Source};
use crate::core::InfoHash;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// The largest .torrent accepted through torrent-add (base64 makes the request a third
/// larger; see [`crate::rpc::http::MAX_BODY`]).
pub const MAX_METAINFO: usize = 16 << 20;
/// Most ids one request may name.
const MAX_IDS: usize = 100_000;
/// Most distinct fields one torrent-get may ask for (Transmission has about 90).
const MAX_FIELDS: usize = 256;

/// What a method answered: its arguments, or the sentence for `result`.
type Outcome = Result<Map<String, Value>, String>;

/// Answers one request body with the response's JSON text. Never fails: a malformed
/// request gets a `result` saying what is wrong. `now` is Unix seconds. The response is
/// written as text (torrent-get of thousands of torrents straight into one buffer, with
/// no tree of JSON values in between).
pub async fn handle<B: Backend>(backend: &B, body: &[u8], session_id: &str, now: i64) -> String {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return json!({ "result": format!("the request is not JSON: {e}") }).to_string(),
    };
    let tag = request
        .get("tag")
        .filter(|t| t.is_i64() || t.is_u64())
        .cloned();
    // The whole answer is written into one buffer: a listing of thousands of torrents is
    // megabytes, and each copy of it costs the caller time.
    let mut out: Vec<u8> = Vec::new();
    out.extend_from_slice(b"{\"arguments\":");
    let start = out.len();
    let outcome = match request.as_object() {
        None => Err("the request must be a JSON object".into()),
        Some(obj) => {
            let empty = Map::new();
            let args = match obj.get("arguments") {
                None | Some(Value::Null) => Ok(&empty),
                Some(Value::Object(args)) => Ok(args),
                Some(_) => Err("'arguments' must be an object".to_string()),
            };
            match (obj.get("method").and_then(Value::as_str), args) {
                (None, _) => Err("no method name".into()),
                (_, Err(e)) => Err(e),
                (Some("torrent-get"), Ok(args)) => list::torrent_get(backend, args, now, &mut out),
                (Some(method), Ok(args)) => call(backend, method, args, session_id, now)
                    .await
                    .map(|map| out.extend_from_slice(Value::Object(map).to_string().as_bytes())),
            }
        }
    };
    let result = match outcome {
        Ok(()) => "success".to_string(),
        Err(why) => {
            out.truncate(start);
            out.extend_from_slice(b"{}");
            why
        }
    };
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(Value::String(result).to_string().as_bytes());
    if let Some(tag) = tag {
        out.extend_from_slice(b",\"tag\":");
        out.extend_from_slice(tag.to_string().as_bytes());
    }
    out.push(b'}');
    // Every part is serde_json's output or ASCII.
    String::from_utf8(out).unwrap_or_else(|e| {
        json!({ "result": format!("cannot write the answer: {e}") }).to_string()
    })
}

async fn call<B: Backend>(
    backend: &B,
    method: &str,
    args: &Map<String, Value>,
    session_id: &str,
    now: i64,
) -> Outcome {
    match method {
        "session-get" => session::get(backend, args, session_id),
        "session-set" => session::set(backend, args, session_id),
        "session-stats" => Ok(session::stats(backend)),
        "session-close" => {
            backend.close();
            Ok(Map::new())
        }
        "free-space" => session::free_space(backend, args),
        "torrent-add" => torrent_add(backend, args).await,
        "torrent-start" | "torrent-start-now" => {
            let ids = select(backend, args, now)?;
            backend.start(&ids).map_err(|e| e.to_string())?;
            Ok(Map::new())
        }
        "torrent-stop" => {
            let ids = select(backend, args, now)?;
            backend.stop(&ids).map_err(|e| e.to_string())?;
            Ok(Map::new())
        }
        "torrent-verify" => {
            let ids = select(backend, args, now)?;
            backend.verify(&ids).await.map_err(|e| e.to_string())?;
            Ok(Map::new())
        }
        "torrent-remove" => {
            let ids = select(backend, args, now)?;
            let delete = flag(args, "delete-local-data")?.unwrap_or(false);
            backend
                .remove(&ids, delete)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Map::new())
        }
        "torrent-set" => set::torrent_set(backend, args, now),
        "torrent-reannounce" => Err(unsupported(
            "asking the trackers now (they are asked on their own schedule)",
        )),
        "torrent-set-location" => {
            let ids = select(backend, args, now)?;
            let Some(location) = args.get("location").and_then(Value::as_str) else {
                return Err("torrent-set-location needs 'location', a folder".into());
            };
            let move_data = flag(args, "move")?.unwrap_or(false);
            backend
                .set_location(&ids, PathBuf::from(location), move_data)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Map::new())
        }
        "torrent-rename-path" => Err(unsupported("renaming a torrent's files")),
        "queue-move-top" | "queue-move-up" | "queue-move-down" | "queue-move-bottom" => {
            let to = match method {
                "queue-move-top" => QueueMove::Top,
                "queue-move-up" => QueueMove::Up,
                "queue-move-down" => QueueMove::Down,
                _ => QueueMove::Bottom,
            };
            let ids = select(backend, args, now)?;
            backend.queue_move(&ids, to).map_err(|e| e.to_string())?;
            Ok(Map::new())
        }
        "blocklist-update" => Err(unsupported("blocklists")),
        "port-test" => Err(unsupported("testing the port from outside")),
        other => Err(format!("method name not recognized: {other}")),
    }
}

fn unsupported(what: &str) -> String {
    format!("battorrent does not support {what} yet")
}

/// A boolean argument (Transmission's clients also send 0 and 1).
fn flag(args: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) if v.as_i64() == Some(0) => Ok(Some(false)),
        Some(v) if v.as_i64() == Some(1) => Ok(Some(true)),
        Some(_) => Err(format!("'{key}' must be true or false")),
    }
}

/// Which torrents `ids` names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ids {
    All,
    RecentlyActive,
    These(Vec<IdRef>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdRef {
    Number(i64),
    Hash(InfoHash),
}

/// Reads `ids`: absent (every torrent), a number, a hash, "recently-active", or a list of
/// numbers and hashes.
fn parse_ids(value: Option<&Value>) -> Result<Ids, String> {
    let one = |v: &Value| -> Result<IdRef, String> {
        if let Some(n) = v.as_i64() {
            return Ok(IdRef::Number(n));
        }
        v.as_str()
            .and_then(InfoHash::from_hex)
            .map(IdRef::Hash)
            .ok_or_else(|| "'ids' holds something that is neither an id nor a 40-digit hash".into())
    };
    match value {
        None | Some(Value::Null) => Ok(Ids::All),
        Some(Value::String(s)) if s == "recently-active" => Ok(Ids::RecentlyActive),
        Some(Value::Array(list)) if list.len() > MAX_IDS => {
            Err(format!("'ids' may name at most {MAX_IDS} torrents"))
        }
        Some(Value::Array(list)) => list
            .iter()
            .map(one)
            .collect::<Result<_, _>>()
            .map(Ids::These),
        Some(v) => one(v).map(|id| Ids::These(vec![id])),
    }
}

/// The RPC ids of the torrents `args["ids"]` names, in the order added.
fn select<B: Backend>(
    backend: &B,
    args: &Map<String, Value>,
    now: i64,
) -> Result<Vec<u32>, String> {
    let index = backend.ids();
    Ok(match parse_ids(args.get("ids"))? {
        Ids::All => index.iter().map(|(id, _)| *id).collect(),
        Ids::RecentlyActive => backend
            .torrents(Detail::Brief)
            .iter()
            .filter(|t| fields::recently_active(t, now))
            .map(|t| t.id)
            .collect(),
        Ids::These(refs) => index
            .iter()
            .filter(|(id, hash)| {
                refs.iter().any(|r| match r {
                    IdRef::Number(n) => i64::from(*id) == *n,
                    IdRef::Hash(h) => h == hash,
                })
            })
            .map(|(id, _)| *id)
            .collect(),
    })
}

/// Labels: a list of strings, each without a comma (Transmission's rule).
fn labels(args: &Map<String, Value>) -> Result<Option<Vec<String>>, String> {
    let Some(v) = args.get("labels") else {
        return Ok(None);
    };
    let list = v.as_array().ok_or("'labels' must be a list of strings")?;
    if list.len() > 64 {
        return Err("at most 64 labels".into());
    }
    list.iter()
        .map(|l| match l.as_str() {
            Some(s) if !s.contains(',') && s.len() <= 256 => Ok(s.trim().to_string()),
            _ => Err("each label must be a string of at most 256 bytes without a comma".into()),
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Some)
}

/// An absolute folder from a string argument.
fn folder(args: &Map<String, Value>, key: &str) -> Result<Option<PathBuf>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.starts_with('/') => Ok(Some(PathBuf::from(s))),
        Some(Value::String(s)) => Err(format!(
            "'{key}' must be an absolute path (starting with /), not \"{s}\""
        )),
        Some(_) => Err(format!("'{key}' must be a string")),
    }
}

async fn torrent_add<B: Backend>(backend: &B, args: &Map<String, Value>) -> Outcome {
    let source = match (args.get("metainfo"), args.get("filename")) {
        (Some(Value::String(b64)), _) => {
            // Some clients wrap the base64 text in lines.
            let text: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            if text.len() > MAX_METAINFO / 3 * 4 + 4 {
                return Err(format!(
                    "the .torrent is over {} MiB: too large",
                    MAX_METAINFO >> 20
                ));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("'metainfo' is not base64: {e}"))?;
            Source::Torrent(bytes)
        }
        (Some(_), _) => return Err("'metainfo' must be a base64 string".into()),
        (None, Some(Value::String(name))) => {
            let lower = name.get(..8).unwrap_or(name).to_ascii_lowercase();
            if lower.starts_with("magnet:") {
                Source::Magnet(name.clone())
            } else if lower.starts_with("http://") || lower.starts_with("https://") {
                return Err(unsupported(
                    "fetching a .torrent from a URL (send its bytes as 'metainfo')",
                ));
            } else if name.starts_with('/') {
                Source::File(PathBuf::from(name))
            } else {
                return Err(format!(
                    "'filename' must be a magnet link or an absolute path, not \"{name}\""
                ));
            }
        }
        (None, Some(_)) => return Err("'filename' must be a string".into()),
        (None, None) => return Err("torrent-add needs 'filename' or 'metainfo'".into()),
    };
    let options = set::options_change(args)?;
    let new = NewTorrent {
        source,
        dir: folder(args, "download-dir")?,
        paused: flag(args, "paused")?,
        labels: labels(args)?.unwrap_or_default(),
    };
    let added = backend.add(new).await.map_err(|e| e.to_string())?;
    let (key, id, name, hash) = match added {
        Added::New {
            id,
            name,
            info_hash,
        } => ("torrent-added", id, name, info_hash),
        Added::Duplicate {
            id,
            name,
            info_hash,
        } => ("torrent-duplicate", id, name, info_hash),
    };
    if key == "torrent-added" && options != Default::default() {
        backend
            .set_options(&[id], &options)
            .map_err(|e| e.to_string())?;
    }
    let mut out = Map::new();
    out.insert(
        key.into(),
        json!({ "id": id, "name": name, "hashString": hash.to_hex() }),
    );
    Ok(out)
}
