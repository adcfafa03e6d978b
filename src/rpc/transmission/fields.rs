//! torrent-get's fields: each one computed from a [`TorrentView`], named and typed as
//! Transmission does (RPC version 16). Integers stay integers (Transmission's own client
//! reads rates and sizes only as integers) and ratios and fractions are reals. A field we
//! have no true value for is left out rather than made up: clients skip what is missing.

use crate::rpc::backend::TorrentView;
use crate::session::TorrentState;
use base64::Engine as _;
use serde_json::{json, Value};

/// Transmission's torrent status codes.
mod status {
    pub const STOPPED: u8 = 0;
    pub const CHECK: u8 = 2;
    pub const DOWNLOAD_WAIT: u8 = 3;
    pub const DOWNLOAD: u8 = 4;
    pub const SEED: u8 = 6;
}

/// `eta` when there is nothing to wait for, and when the time cannot be told.
const ETA_NOT_AVAILABLE: i64 = -1;
const ETA_UNKNOWN: i64 = -2;
/// `uploadRatio` with nothing downloaded: nothing uploaded either, or something.
const RATIO_NOT_AVAILABLE: f64 = -1.0;
const RATIO_INFINITE: f64 = -2.0;
/// `error` for a local error (disk, check).
const LOCAL_ERROR: u8 = 3;
/// `seedRatioMode` and `seedIdleMode`: we seed until told to stop.
const UNLIMITED: u8 = 2;

/// Every field this module answers (fields asked for but not listed are left out).
pub const FIELDS: &[&str] = &[
    "activityDate",
    "addedDate",
    "bandwidthPriority",
    "comment",
    "corruptEver",
    "creator",
    "dateCreated",
    "doneDate",
    "downloadDir",
    "downloadLimit",
    "downloadLimited",
    "downloadedEver",
    "error",
    "errorString",
    "eta",
    "etaIdle",
    "file-count",
    "fileStats",
    "files",
    "hashString",
    "haveUnchecked",
    "haveValid",
    "honorsSessionLimits",
    "id",
    "isFinished",
    "isPrivate",
    "isStalled",
    "labels",
    "leftUntilDone",
    "magnetLink",
    "maxConnectedPeers",
    "metadataPercentComplete",
    "name",
    "peer-limit",
    "peersConnected",
    "peersGettingFromUs",
    "peersSendingToUs",
    "percentComplete",
    "percentDone",
    "pieceCount",
    "pieceSize",
    "pieces",
    "priorities",
    "queuePosition",
    "rateDownload",
    "rateUpload",
    "recheckProgress",
    "seedIdleLimit",
    "seedIdleMode",
    "seedRatioLimit",
    "seedRatioMode",
    "sequentialDownload",
    "sizeWhenDone",
    "startDate",
    "status",
    "totalSize",
    "trackers",
    "uploadLimit",
    "uploadLimited",
    "uploadRatio",
    "uploadedEver",
    "wanted",
    "webseeds",
    "webseedsSendingToUs",
];

/// Whether a field needs the verified pieces ([`crate::rpc::backend::Detail::Pieces`]).
pub fn needs_pieces(field: &str) -> bool {
    matches!(field, "files" | "fileStats" | "pieces")
}

/// The torrent's status code.
pub fn status(t: &TorrentView) -> u8 {
    match t.state {
        TorrentState::Checking => status::CHECK,
        _ if t.queued => status::DOWNLOAD_WAIT,
        TorrentState::FetchingMetadata | TorrentState::Downloading => status::DOWNLOAD,
        TorrentState::Seeding => status::SEED,
        TorrentState::Paused | TorrentState::Stopped | TorrentState::Failed => status::STOPPED,
    }
}

/// Whether the torrent moved data, changed state or was commanded in the last minute.
pub fn recently_active(t: &TorrentView, now: i64) -> bool {
    t.stats.download_rate > 0.0
        || t.stats.upload_rate > 0.0
        || matches!(
            t.state,
            TorrentState::Checking | TorrentState::FetchingMetadata
        )
        || now - t.changed < 60
}

fn total_size(t: &TorrentView) -> u64 {
    t.meta.as_ref().map_or(0, |m| m.info.total_length)
}

/// Bytes of the wanted files' pieces not verified yet.
fn left(t: &TorrentView) -> u64 {
    t.stats.left_bytes
}

/// Done of what is wanted (Transmission's `percentDone`).
fn percent_done(t: &TorrentView) -> f64 {
    match t.stats.wanted_bytes {
        0 => 0.0,
        size => size.saturating_sub(t.stats.left_bytes) as f64 / size as f64,
    }
}

/// Done of the whole torrent (`percentComplete`).
fn percent_complete(t: &TorrentView) -> f64 {
    match total_size(t) {
        0 => 0.0,
        size => t.stats.verified_bytes.min(size) as f64 / size as f64,
    }
}

fn eta(t: &TorrentView) -> i64 {
    let downloading = matches!(
        t.state,
        TorrentState::Downloading | TorrentState::FetchingMetadata
    );
    if !downloading {
        ETA_NOT_AVAILABLE
    } else if t.stats.download_rate >= 1.0 && t.meta.is_some() {
        (left(t) as f64 / t.stats.download_rate).ceil() as i64
    } else {
        ETA_UNKNOWN
    }
}

fn upload_ratio(t: &TorrentView) -> f64 {
    let down = match t.downloaded_ever {
        0 => t.stats.verified_bytes,
        n => n,
    };
    match (t.uploaded_ever, down) {
        (0, 0) => RATIO_NOT_AVAILABLE,
        (_, 0) => RATIO_INFINITE,
        (up, down) => up as f64 / down as f64,
    }
}

/// A file of the torrent as listed: its name as Transmission shows it (under the
/// torrent's folder for a multi-file torrent), length and verified bytes.
pub struct FileProgress {
    pub name: String,
    pub length: u64,
    pub completed: u64,
}

/// The torrent's files (padding files left out) with their verified bytes (0 without
/// [`TorrentView::have`]).
pub fn files(t: &TorrentView) -> Vec<FileProgress> {
    let Some(meta) = &t.meta else {
        return Vec::new();
    };
    let info = &meta.info;
    let piece_length = info.piece_length.max(1);
    info.files
        .iter()
        .filter(|f| !f.padding)
        .map(|f| {
            let name = if info.multi_file {
                format!("{}/{}", info.name, info.display_path(f))
            } else {
                info.name.clone()
            };
            let mut completed = 0;
            if let (Some(have), true) = (&t.have, f.length > 0) {
                let (start, end) = (f.offset, f.offset + f.length);
                let first = start / piece_length;
                let last = (end - 1) / piece_length;
                for piece in first..=last {
                    if have.get(piece as usize).is_some_and(|b| *b) {
                        let from = start.max(piece * piece_length);
                        let to = end.min((piece + 1) * piece_length);
                        completed += to - from;
                    }
                }
            }
            FileProgress {
                name,
                length: f.length,
                completed,
            }
        })
        .collect()
}

/// How many files the RPC lists (padding files left out).
fn file_count(t: &TorrentView) -> usize {
    t.meta
        .as_ref()
        .map_or(0, |m| m.info.files.iter().filter(|f| !f.padding).count())
}

/// Whether each of `n` files is wanted, and its priority (-1, 0, 1).
fn choices(t: &TorrentView, n: usize) -> (Vec<bool>, Vec<i8>) {
    (t.options.wanted(n), t.options.priorities(n))
}

/// The host of a URL, for a tracker's `sitename`.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A tracker's scrape URL (BEP 48 convention: the last path element `announce` becomes
/// `scrape`); empty when it has none.
fn scrape_of(url: &str) -> String {
    match url.rfind('/') {
        Some(slash) if url[slash + 1..].starts_with("announce") => {
            format!(
                "{}/scrape{}",
                &url[..slash],
                &url[slash + 1 + "announce".len()..]
            )
        }
        _ => String::new(),
    }
}

/// One field's value for a torrent; `None` for a field this module does not answer.
/// `now` is Unix seconds.
pub fn field(name: &str, t: &TorrentView, now: i64) -> Option<Value> {
    let s = &t.stats;
    let meta = t.meta.as_deref();
    let value = match name {
        "activityDate" => {
            let active = s.download_rate > 0.0 || s.upload_rate > 0.0;
            json!(if active { now } else { t.changed })
        }
        "addedDate" => json!(t.added),
        "bandwidthPriority" => json!(0),
        "comment" => json!(meta.and_then(|m| m.comment.clone()).unwrap_or_default()),
        "corruptEver" => {
            let piece = meta.map_or(0, |m| m.info.piece_length);
            json!(s.hash_failures.saturating_mul(piece))
        }
        "creator" => json!(meta.and_then(|m| m.created_by.clone()).unwrap_or_default()),
        "dateCreated" => json!(meta.and_then(|m| m.creation_date).unwrap_or(0)),
        "doneDate" => json!(t.done.unwrap_or(0)),
        "downloadDir" => json!(t.dir.to_string_lossy()),
        "downloadLimit" => json!(t.options.download_limit),
        "downloadLimited" => json!(t.options.download_limited),
        "uploadLimit" => json!(t.options.upload_limit),
        "uploadLimited" => json!(t.options.upload_limited),
        "downloadedEver" => json!(t.downloaded_ever),
        "error" => json!(if t.error.is_some() { LOCAL_ERROR } else { 0 }),
        "errorString" => json!(t.error.clone().unwrap_or_default()),
        "eta" => json!(eta(t)),
        "etaIdle" => json!(ETA_NOT_AVAILABLE),
        "file-count" => json!(file_count(t)),
        "fileStats" => {
            let files = files(t);
            let (wanted, priorities) = choices(t, files.len());
            Value::Array(
                files
                    .iter()
                    .zip(wanted.iter().zip(&priorities))
                    .map(|(f, (w, p))| {
                        json!({"bytesCompleted": f.completed, "wanted": w, "priority": p})
                    })
                    .collect(),
            )
        }
        "files" => Value::Array(
            files(t)
                .iter()
                .map(|f| json!({"bytesCompleted": f.completed, "length": f.length, "name": f.name}))
                .collect(),
        ),
        "hashString" => json!(t.info_hash.to_hex()),
        "haveUnchecked" => json!(0),
        "haveValid" => json!(s.verified_bytes),
        "honorsSessionLimits" => json!(true),
        "id" => json!(t.id),
        "isFinished" => json!(false),
        "isPrivate" => json!(meta.is_some_and(|m| m.info.private)),
        "isStalled" => json!(false),
        "labels" => json!(t.labels),
        "leftUntilDone" | "sizeWhenDone" | "totalSize" if meta.is_none() => json!(0),
        "leftUntilDone" => json!(left(t)),
        "magnetLink" => match meta {
            Some(m) => json!(m.magnet().to_string()),
            None => json!(t.magnet.clone().unwrap_or_default()),
        },
        "maxConnectedPeers" | "peer-limit" => json!(t.max_peers),
        "metadataPercentComplete" => json!(match (meta, s.metadata_size) {
            (Some(_), _) => 1.0,
            (None, 0) => 0.0,
            (None, size) => s.metadata_bytes as f64 / size as f64,
        }),
        "name" => json!(t.name()),
        "peersConnected" => json!(s.peers),
        "peersGettingFromUs" => json!(s.peers_receiving),
        "peersSendingToUs" => json!(s.peers_sending),
        "percentComplete" => json!(percent_complete(t)),
        "percentDone" => json!(percent_done(t)),
        "pieceCount" => json!(meta.map_or(0, |m| m.info.piece_count())),
        "pieceSize" => json!(meta.map_or(0, |m| m.info.piece_length)),
        "pieces" => json!(base64::engine::general_purpose::STANDARD
            .encode(t.have.as_ref().map_or(&[][..], |h| h.as_raw_slice()))),
        "priorities" => json!(choices(t, file_count(t)).1),
        "queuePosition" => json!(t.queue_position),
        "rateDownload" => json!(s.download_rate.round() as u64),
        "rateUpload" => json!(s.upload_rate.round() as u64),
        "recheckProgress" => json!(0.0),
        "seedIdleLimit" => json!(30),
        "seedIdleMode" | "seedRatioMode" => json!(UNLIMITED),
        "seedRatioLimit" => json!(2.0),
        "sequentialDownload" => json!(t.options.sequential),
        "sizeWhenDone" => json!(t.stats.wanted_bytes),
        "totalSize" => json!(total_size(t)),
        "startDate" => json!(t.started),
        "status" => json!(status(t)),
        "trackers" => {
            let mut id = 0;
            let mut list = Vec::new();
            let tiers = meta.map_or(&t.trackers, |m| &m.trackers);
            for (tier, urls) in tiers.iter().enumerate() {
                for url in urls {
                    list.push(json!({
                        "announce": url,
                        "id": id,
                        "scrape": scrape_of(url),
                        "sitename": host_of(url),
                        "tier": tier,
                    }));
                    id += 1;
                }
            }
            Value::Array(list)
        }
        "uploadRatio" => json!(upload_ratio(t)),
        "uploadedEver" => json!(t.uploaded_ever),
        "wanted" => {
            let wanted = choices(t, file_count(t)).0;
            Value::Array(wanted.into_iter().map(|w| json!(u8::from(w))).collect())
        }
        "webseeds" => json!(meta.map(|m| m.web_seeds.clone()).unwrap_or_default()),
        "webseedsSendingToUs" => json!(0),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_urls_follow_the_announce_convention() {
        assert_eq!(
            scrape_of("http://t.example/announce"),
            "http://t.example/scrape"
        );
        assert_eq!(
            scrape_of("http://t.example/x/announce.php?k=1"),
            "http://t.example/x/scrape.php?k=1"
        );
        assert_eq!(scrape_of("http://t.example/a"), "");
        assert_eq!(
            host_of("udp://tracker.example:6969/announce"),
            "tracker.example"
        );
    }

    #[test]
    fn every_listed_field_is_answered() {
        let t = super::super::tests::view(1, "x");
        for f in FIELDS {
            assert!(field(f, &t, 0).is_some(), "{f}");
        }
        assert!(field("nonsense", &t, 0).is_none());
    }
}
