//! The JSON API's calls as functions: request values in, `(status, JSON)` out, no sockets.

use super::{ApiBackend, ApiError, Reply};
use crate::rpc::backend::{
    Added, BackendError, Detail, NewTorrent, SettingsChange, Source, TorrentView,
};
use crate::rpc::options::OptionsChange;
use crate::session::{FileStat, Limits};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;

/// A torrent as the API lists it.
pub fn torrent_json(t: &TorrentView) -> Value {
    let s = &t.stats;
    let progress = if s.complete {
        1.0
    } else if s.wanted_bytes > 0 {
        s.wanted_bytes.saturating_sub(s.left_bytes) as f64 / s.wanted_bytes as f64
    } else {
        0.0
    };
    let eta = (s.download_rate > 1.0 && s.left_bytes > 0)
        .then(|| (s.left_bytes as f64 / s.download_rate).ceil() as u64);
    json!({
        "id": t.id,
        "name": t.name(),
        "hash": t.info_hash.to_hex(),
        "state": t.state,
        "error": t.error,
        "progress": progress,
        "size": s.total_bytes,
        "wanted": s.wanted_bytes,
        "left": s.left_bytes,
        "verified": s.verified_bytes,
        "downloaded": t.downloaded_ever,
        "uploaded": t.uploaded_ever,
        "download_rate": s.download_rate.round() as u64,
        "upload_rate": s.upload_rate.round() as u64,
        "peers": s.peers,
        "seeds": s.seeds,
        "eta": eta,
        "dir": t.dir.to_string_lossy(),
        "added": t.added,
    })
}

/// Every torrent, in the order added.
pub fn list<B: ApiBackend>(backend: &B) -> Value {
    let torrents: Vec<Value> = backend
        .torrents(Detail::Brief)
        .iter()
        .map(torrent_json)
        .collect();
    json!({ "torrents": torrents })
}

/// The JSON form of an add.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    pub magnet: Option<String>,
    /// A .torrent file in base64.
    pub torrent: Option<String>,
    pub dir: Option<String>,
    pub paused: Option<bool>,
}

/// Reads a JSON body into `T`, with the reason in one sentence when it does not fit.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("the JSON body does not fit: {e}")))
}

/// Checks a folder given by a client: absolute.
fn folder(dir: Option<String>) -> Result<Option<PathBuf>, ApiError> {
    match dir {
        None => Ok(None),
        Some(d) if d.is_empty() => Ok(None),
        Some(d) => {
            let path = PathBuf::from(&d);
            if !path.is_absolute() {
                return Err(ApiError::bad("\"dir\" must be an absolute folder"));
            }
            Ok(Some(path))
        }
    }
}

/// What to add, from the JSON form.
pub fn new_torrent(request: AddRequest) -> Result<NewTorrent, ApiError> {
    let source = match (request.magnet, request.torrent) {
        (Some(link), None) => Source::Magnet(link.trim().to_string()),
        (None, Some(encoded)) => Source::Torrent(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| ApiError::bad("\"torrent\" is not base64"))?,
        ),
        _ => return Err(ApiError::bad(
            "give exactly one of \"magnet\" (a magnet link) and \"torrent\" (a .torrent in base64)",
        )),
    };
    Ok(NewTorrent {
        source,
        dir: folder(request.dir)?,
        paused: request.paused,
        labels: Vec::new(),
    })
}

/// What to add, from a raw .torrent upload and the query string's `dir` and `paused`.
pub fn uploaded_torrent(bytes: Vec<u8>, query: &str) -> Result<NewTorrent, ApiError> {
    let mut request = AddRequest::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "dir" => request.dir = Some(value.into_owned()),
            "paused" => request.paused = Some(matches!(&*value, "true" | "1")),
            _ => {}
        }
    }
    if bytes.is_empty() {
        return Err(ApiError::bad(
            "the upload is empty: send the .torrent file's bytes",
        ));
    }
    Ok(NewTorrent {
        source: Source::Torrent(bytes),
        dir: folder(request.dir)?,
        paused: request.paused,
        labels: Vec::new(),
    })
}

/// Adds a torrent: 201 with its id, or 200 when it was already there.
pub async fn add<B: ApiBackend>(backend: &B, new: NewTorrent) -> Reply {
    Ok(match backend.add(new).await? {
        Added::New {
            id,
            name,
            info_hash,
        } => (
            StatusCode::CREATED,
            json!({"id": id, "name": name, "hash": info_hash.to_hex(), "duplicate": false}),
        ),
        Added::Duplicate {
            id,
            name,
            info_hash,
        } => (
            StatusCode::OK,
            json!({"id": id, "name": name, "hash": info_hash.to_hex(), "duplicate": true}),
        ),
    })
}

fn known<B: ApiBackend>(backend: &B, id: u32) -> Result<crate::session::TorrentId, ApiError> {
    backend
        .session_id(id)
        .ok_or_else(|| ApiError::no_torrent(id))
}

/// Pauses or resumes a torrent.
pub fn set_running<B: ApiBackend>(backend: &B, id: u32, run: bool) -> Reply {
    known(backend, id)?;
    if run {
        backend.start(&[id])?;
    } else {
        backend.stop(&[id])?;
    }
    Ok((StatusCode::OK, json!({"id": id})))
}

/// Removes a torrent, with its data if asked.
pub async fn remove<B: ApiBackend>(backend: &B, id: u32, delete_data: bool) -> Reply {
    known(backend, id)?;
    backend.remove(&[id], delete_data).await?;
    Ok((
        StatusCode::OK,
        json!({"id": id, "deleted_data": delete_data}),
    ))
}

/// A torrent's files as the API shows them: BEP 47 padding files left out, so file
/// indexes count only real files; each with its index in the torrent's own order.
pub fn visible_files<B: ApiBackend>(
    backend: &B,
    id: u32,
) -> Result<Vec<(usize, FileStat)>, ApiError> {
    let tid = known(backend, id)?;
    let no_list = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "this torrent has no file list yet (a magnet link still fetching its metadata)",
        )
    };
    let meta = backend.session().metainfo(tid).ok_or_else(no_list)?;
    let stats = backend.session().file_stats(tid).ok_or_else(no_list)?;
    Ok(stats
        .into_iter()
        .enumerate()
        .filter(|(i, _)| meta.info.files.get(*i).is_some_and(|f| !f.padding))
        .collect())
}

/// A torrent's files.
pub fn files<B: ApiBackend>(backend: &B, id: u32) -> Reply {
    let list: Vec<Value> = visible_files(backend, id)?
        .iter()
        .enumerate()
        .map(|(index, (_, f))| {
            json!({
                "index": index,
                "path": f.path,
                "length": f.length,
                "done": f.done_bytes,
                "priority": f.priority,
                "wanted": f.priority > 0,
            })
        })
        .collect();
    Ok((StatusCode::OK, json!({"id": id, "files": list})))
}

/// A change of file selection: every file's priority, or some files' wanted flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesRequest {
    /// One per file: 0 (skip) to 7 (urgent).
    pub priorities: Option<Vec<u8>>,
    /// File index to wanted or not; the others keep their priority.
    pub wanted: Option<std::collections::BTreeMap<usize, bool>>,
}

/// The priorities after a change, from the current ones.
pub fn new_priorities(current: &[u8], request: &FilesRequest) -> Result<Vec<u8>, ApiError> {
    match (&request.priorities, &request.wanted) {
        (Some(p), None) => {
            if p.len() != current.len() {
                return Err(ApiError::bad(format!(
                    "the torrent has {} files but {} priorities were given",
                    current.len(),
                    p.len()
                )));
            }
            if p.iter().any(|&x| x > crate::picker::URGENT) {
                return Err(ApiError::bad("priorities go from 0 (skip) to 7 (urgent)"));
            }
            Ok(p.clone())
        }
        (None, Some(wanted)) => {
            let mut out = current.to_vec();
            for (&index, &want) in wanted {
                let slot = out
                    .get_mut(index)
                    .ok_or_else(|| ApiError::bad(format!("the torrent has no file {index}")))?;
                *slot = match (want, *slot) {
                    (false, _) => crate::picker::SKIP,
                    (true, 0) => crate::picker::NORMAL,
                    (true, p) => p,
                };
            }
            Ok(out)
        }
        _ => Err(ApiError::bad(
            "give exactly one of \"priorities\" (one per file) and \"wanted\" ({\"index\": true})",
        )),
    }
}

/// Changes a torrent's file selection; answers with the files. Padding files keep their
/// priority.
pub fn set_files<B: ApiBackend>(backend: &B, id: u32, request: FilesRequest) -> Reply {
    let tid = known(backend, id)?;
    let all: Vec<u8> = backend
        .session()
        .file_stats(tid)
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this torrent has no file list yet"))?
        .iter()
        .map(|f| f.priority)
        .collect();
    let visible = visible_files(backend, id)?;
    let current: Vec<u8> = visible.iter().map(|(_, f)| f.priority).collect();
    let chosen = new_priorities(&current, &request)?;
    if all.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this torrent has no file list yet",
        ));
    }
    // Through the daemon, which saves the choice (file indexes skip padding files, as
    // `visible_files` does), in its three priority levels: low, normal, high.
    let mut change = OptionsChange::default();
    let (mut wanted, mut unwanted, mut low, mut normal, mut high) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (index, &p) in chosen.iter().enumerate() {
        let index = index as u32;
        match p {
            0 => unwanted.push(index),
            1..=2 => low.push(index),
            3..=5 => normal.push(index),
            _ => high.push(index),
        }
        if p != 0 {
            wanted.push(index);
        }
    }
    // An empty list names every file: send only lists that name some.
    let some = |v: Vec<u32>| (!v.is_empty()).then_some(v);
    change.wanted = some(wanted);
    change.unwanted = some(unwanted);
    change.low = some(low);
    change.normal = some(normal);
    change.high = some(high);
    backend
        .set_options(&[id], &change)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.to_string()))?;
    files(backend, id)
}

/// `{"sequential": true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequentialRequest {
    pub sequential: bool,
}

pub fn set_sequential<B: ApiBackend>(backend: &B, id: u32, request: SequentialRequest) -> Reply {
    known(backend, id)?;
    let change = OptionsChange {
        sequential: Some(request.sequential),
        ..OptionsChange::default()
    };
    backend
        .set_options(&[id], &change)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.to_string()))?;
    Ok((
        StatusCode::OK,
        json!({"id": id, "sequential": request.sequential}),
    ))
}

fn limits_json(l: Limits) -> Value {
    json!({"download": l.download, "upload": l.upload})
}

/// The session's limits (`id` None) or a torrent's.
pub fn limits<B: ApiBackend>(backend: &B, id: Option<u32>) -> Reply {
    let l = match id {
        None => backend.session().limits(),
        Some(id) => backend.session().torrent_limits(known(backend, id)?)?,
    };
    Ok((StatusCode::OK, limits_json(l)))
}

/// Sets the session's limits or a torrent's (bytes per second; null: none). Both fields
/// are needed: what is set is what was sent.
pub fn set_limits<B: ApiBackend>(backend: &B, id: Option<u32>, body: &[u8]) -> Reply {
    let l: Limits = parse(body)?;
    if l.download == Some(0) || l.upload == Some(0) {
        return Err(ApiError::bad(
            "a limit of 0 would stop all traffic: give null for no limit, or at least 1",
        ));
    }
    // Through the daemon, which saves them; it keeps limits in kB/s (1000 bytes, as
    // Transmission), so they are rounded up to whole kB/s.
    let kb = |b: Option<u64>| b.map(|b| b.div_ceil(1000));
    let failed = |e: BackendError| ApiError::new(StatusCode::CONFLICT, e.to_string());
    match id {
        None => {
            let change = SettingsChange {
                speed_down: kb(l.download),
                speed_down_enabled: Some(l.download.is_some()),
                speed_up: kb(l.upload),
                speed_up_enabled: Some(l.upload.is_some()),
                ..SettingsChange::default()
            };
            backend.change_settings(change).map_err(failed)?;
        }
        Some(id) => {
            known(backend, id)?;
            let change = OptionsChange {
                download_limit: kb(l.download),
                download_limited: Some(l.download.is_some()),
                upload_limit: kb(l.upload),
                upload_limited: Some(l.upload.is_some()),
                ..OptionsChange::default()
            };
            backend.set_options(&[id], &change).map_err(failed)?;
        }
    }
    limits(backend, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(priorities: Option<Vec<u8>>, wanted: &[(usize, bool)]) -> FilesRequest {
        FilesRequest {
            priorities,
            wanted: (!wanted.is_empty()).then(|| wanted.iter().copied().collect()),
        }
    }

    #[test]
    fn file_selection_changes() {
        let current = [4, 7, 0];
        assert_eq!(
            new_priorities(
                &current,
                &request(None, &[(0, false), (2, true), (1, true)])
            )
            .unwrap(),
            vec![0, 7, 4]
        );
        assert_eq!(
            new_priorities(&current, &request(Some(vec![1, 2, 3]), &[])).unwrap(),
            vec![1, 2, 3]
        );
        let e = new_priorities(&current, &request(Some(vec![1]), &[])).unwrap_err();
        assert!(e.message.contains("3 files"), "{e:?}");
        assert!(new_priorities(&current, &request(Some(vec![8, 0, 0]), &[])).is_err());
        assert!(new_priorities(&current, &request(None, &[(3, true)])).is_err());
        assert!(new_priorities(&current, &request(None, &[])).is_err());
    }

    #[test]
    fn adds_are_read_from_json_and_uploads() {
        let r: AddRequest = parse(br#"{"magnet":"magnet:?xt=x","paused":true}"#).unwrap();
        let n = new_torrent(r).unwrap();
        assert!(matches!(n.source, Source::Magnet(ref m) if m == "magnet:?xt=x"));
        assert_eq!(n.paused, Some(true));
        let r: AddRequest = parse(br#"{"torrent":"ZDRlZQ==","dir":"/srv"}"#).unwrap();
        let n = new_torrent(r).unwrap();
        assert!(matches!(n.source, Source::Torrent(ref b) if b == b"d4ee"));
        assert_eq!(n.dir, Some(PathBuf::from("/srv")));
        for bad in [
            &br#"{"torrent":"!!"}"#[..],
            br#"{"magnet":"m","torrent":"ZQ=="}"#,
            br#"{}"#,
            br#"{"dir":"relative","magnet":"m"}"#,
        ] {
            let e = parse::<AddRequest>(bad).and_then(new_torrent).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
        assert!(parse::<AddRequest>(br#"{"bogus":1}"#).is_err());
        assert!(parse::<AddRequest>(b"not json").is_err());
        let n = uploaded_torrent(b"d4ee".to_vec(), "dir=%2Ftmp%2Fx&paused=true").unwrap();
        assert_eq!(n.dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(n.paused, Some(true));
        assert!(uploaded_torrent(Vec::new(), "").is_err());
    }
}
