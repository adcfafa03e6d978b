//! Transmission RPC methods as JSON in, JSON out, over a fake backend that records calls.

use super::handle;
use crate::core::InfoHash;
use crate::rpc::backend::*;
use crate::session::{TorrentState, TorrentStats};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Mutex;

/// A torrent of one 1,000-byte file in pieces of 256 bytes, half verified.
pub fn view(id: u32, name: &str) -> TorrentView {
    let meta = crate::metainfo::Metainfo::from_bytes(&torrent_bytes(name)).unwrap();
    let mut have = crate::wire::Bitfield::repeat(false, 4);
    have.set(0, true);
    have.set(3, true);
    TorrentView {
        id,
        info_hash: meta.info_hash,
        pending_name: String::new(),
        state: TorrentState::Downloading,
        error: None,
        stats: TorrentStats {
            verified_bytes: 256 + 232,
            wanted_bytes: 1000,
            left_bytes: 512,
            download_rate: 100.4,
            ..TorrentStats::default()
        },
        dir: Path::new("/data").into(),
        added: 1_000,
        done: None,
        started: 1_000,
        changed: 1_000,
        downloaded_ever: 500,
        uploaded_ever: 250,
        magnet: None,
        trackers: vec![],
        meta: Some(std::sync::Arc::new(meta)),
        have: Some(have),
        labels: vec![],
        max_peers: 50,
        options: TorrentOptions::default(),
        queued: false,
        queue_position: u64::from(id) - 1,
    }
}

/// A valid .torrent of one 1,000-byte file named `name`.
fn torrent_bytes(name: &str) -> Vec<u8> {
    let mut info = Vec::new();
    info.extend_from_slice(format!("d6:lengthi1000e4:name{}:{name}", name.len()).as_bytes());
    info.extend_from_slice(b"12:piece lengthi256e6:pieces80:");
    info.extend_from_slice(&[7u8; 80]);
    info.extend_from_slice(b"e");
    let mut t = b"d8:announce25:http://t.example/announce4:info".to_vec();
    t.extend_from_slice(&info);
    t.push(b'e');
    t
}

#[derive(Default)]
struct Fake {
    torrents: Vec<TorrentView>,
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn with_two() -> Fake {
        Fake {
            torrents: vec![view(1, "one"), view(2, "two")],
            ..Fake::default()
        }
    }
    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Backend for Fake {
    fn torrents(&self, detail: Detail) -> Vec<TorrentView> {
        let mut all = self.torrents.clone();
        if detail == Detail::Brief {
            all.iter_mut().for_each(|t| t.have = None);
        }
        all
    }
    fn ids(&self) -> Vec<(u32, InfoHash)> {
        self.torrents.iter().map(|t| (t.id, t.info_hash)).collect()
    }
    fn removed_recently(&self) -> Vec<u32> {
        vec![7]
    }
    async fn add(&self, new: NewTorrent) -> Result<Added, BackendError> {
        let what = match &new.source {
            Source::Torrent(b) => format!("bytes {}", b.len()),
            Source::File(p) => format!("file {}", p.display()),
            Source::Magnet(m) => format!("magnet {m}"),
        };
        self.log(format!(
            "add {what} dir={:?} paused={:?}",
            new.dir, new.paused
        ));
        Ok(Added::New {
            id: 3,
            name: "new".into(),
            info_hash: InfoHash([1; 20]),
        })
    }
    fn start(&self, ids: &[u32]) -> Result<(), BackendError> {
        self.log(format!("start {ids:?}"));
        Ok(())
    }
    fn stop(&self, ids: &[u32]) -> Result<(), BackendError> {
        self.log(format!("stop {ids:?}"));
        Ok(())
    }
    async fn remove(&self, ids: &[u32], delete_data: bool) -> Result<(), BackendError> {
        self.log(format!("remove {ids:?} delete={delete_data}"));
        Ok(())
    }
    async fn verify(&self, ids: &[u32]) -> Result<(), BackendError> {
        self.log(format!("verify {ids:?}"));
        Ok(())
    }
    async fn set_location(
        &self,
        ids: &[u32],
        location: std::path::PathBuf,
        move_data: bool,
    ) -> Result<(), BackendError> {
        self.log(format!(
            "location {ids:?} {} {move_data}",
            location.display()
        ));
        Ok(())
    }
    fn set_labels(&self, ids: &[u32], labels: &[String]) -> Result<(), BackendError> {
        self.log(format!("labels {ids:?} {labels:?}"));
        Ok(())
    }
    fn set_options(&self, ids: &[u32], change: &OptionsChange) -> Result<(), BackendError> {
        self.log(format!("options {ids:?} {change:?}"));
        Ok(())
    }
    fn settings(&self) -> Settings {
        Settings {
            download_dir: "/data".into(),
            config_dir: "/state".into(),
            peer_port: 51413,
            dht: false,
            speed: Default::default(),
            queue: Default::default(),
            max_peers_per_torrent: 50,
            start_added: true,
            free_space: Some(1 << 30),
        }
    }
    fn change_settings(&self, change: SettingsChange) -> Result<(), BackendError> {
        self.log(format!("settings {change:?}"));
        Ok(())
    }
    fn totals(&self) -> Totals {
        Totals::default()
    }
    fn free_space(&self, _path: &Path) -> Option<(u64, u64)> {
        Some((5, 10))
    }
    fn close(&self) {
        self.log("close".into());
    }
    fn queue_move(&self, ids: &[u32], to: QueueMove) -> Result<(), BackendError> {
        self.log(format!("queue {to:?} {ids:?}"));
        Ok(())
    }
}

fn call(backend: &Fake, request: Value) -> Value {
    let body = request.to_string();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(handle(backend, body.as_bytes(), "sid", 2_000))
        .parse()
        .unwrap()
}

fn ok(backend: &Fake, request: Value) -> Value {
    let answer = call(backend, request);
    assert_eq!(answer["result"], "success", "{answer}");
    answer["arguments"].clone()
}

fn refused(backend: &Fake, request: Value) -> String {
    let answer = call(backend, request);
    let result = answer["result"].as_str().unwrap().to_string();
    assert_ne!(result, "success", "{answer}");
    result
}

#[test]
fn malformed_requests_get_a_reason_and_the_tag_comes_back() {
    let b = Fake::default();
    let answer = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(handle(&b, b"{not json", "sid", 0));
    let answer: Value = answer.parse().unwrap();
    assert!(answer["result"].as_str().unwrap().contains("not JSON"));
    assert_eq!(
        refused(&b, json!([1, 2])),
        "the request must be a JSON object"
    );
    assert_eq!(refused(&b, json!({"arguments": {}})), "no method name");
    let answer = call(&b, json!({"method": "no-such", "tag": 42}));
    assert_eq!(answer["tag"], 42);
    assert!(answer["result"].as_str().unwrap().contains("no-such"));
    assert!(refused(&b, json!({"method": "torrent-get", "arguments": 5})).contains("object"));
}

#[test]
fn the_list_transmission_remote_asks_for() {
    let b = Fake::with_two();
    let fields = [
        "error",
        "errorString",
        "eta",
        "id",
        "isFinished",
        "leftUntilDone",
        "name",
        "peersGettingFromUs",
        "peersSendingToUs",
        "rateDownload",
        "rateUpload",
        "sizeWhenDone",
        "status",
        "uploadRatio",
    ];
    let args = ok(
        &b,
        json!({"method": "torrent-get", "arguments": {"fields": fields}, "tag": 4}),
    );
    let list = args["torrents"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let t = &list[0];
    assert_eq!(t["id"], 1);
    assert_eq!(t["name"], "one");
    assert_eq!(t["sizeWhenDone"], 1000);
    assert_eq!(t["leftUntilDone"], 512);
    // Rates are integers (transmission-remote reads them only as such), ratios reals.
    assert_eq!(t["rateDownload"], 100);
    assert!(t["rateDownload"].is_u64());
    assert_eq!(t["uploadRatio"], 0.5);
    assert_eq!(t["status"], 4);
    assert_eq!(t["eta"], 6);
    assert_eq!(t["error"], 0);
    assert_eq!(t.as_object().unwrap().len(), fields.len());
}

#[test]
fn ids_as_numbers_hashes_lists_and_recently_active() {
    let b = Fake::with_two();
    let hash = b.torrents[1].info_hash.to_hex();
    let get = |ids: Value| {
        let args = ok(
            &b,
            json!({"method": "torrent-get", "arguments": {"fields": ["id"], "ids": ids}}),
        );
        let ids: Vec<u64> = args["torrents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect();
        (ids, args.get("removed").cloned())
    };
    assert_eq!(get(json!(2)).0, [2]);
    assert_eq!(get(json!([1, 2, 9])).0, [1, 2]);
    assert_eq!(get(json!(hash)).0, [2]);
    assert_eq!(get(json!([hash.to_uppercase()])).0, [2]);
    // Active: the fake torrents download at 100 B/s.
    let (ids, removed) = get(json!("recently-active"));
    assert_eq!(ids, [1, 2]);
    assert_eq!(removed, Some(json!([7])));
    assert!(refused(
        &b,
        json!({"method": "torrent-get", "arguments": {"fields": ["id"], "ids": ["zz"]}})
    )
    .contains("neither an id"));
}

#[test]
fn files_with_their_progress_and_the_piece_map() {
    let b = Fake::with_two();
    let args = ok(
        &b,
        json!({"method": "torrent-get", "arguments": {"ids": 1,
            "fields": ["files", "fileStats", "priorities", "wanted", "pieces", "pieceCount"]}}),
    );
    let t = &args["torrents"][0];
    // Pieces 0 and 3 of 256, 256, 256, 232 bytes.
    assert_eq!(
        t["files"],
        json!([{"bytesCompleted": 488, "length": 1000, "name": "one"}])
    );
    assert_eq!(
        t["fileStats"],
        json!([{"bytesCompleted": 488, "wanted": true, "priority": 0}])
    );
    assert_eq!(t["wanted"], json!([1]));
    assert_eq!(t["priorities"], json!([0]));
    assert_eq!(t["pieces"], "kA==");
    assert_eq!(t["pieceCount"], 4);
    let args = ok(
        &b,
        json!({"method": "torrent-get", "arguments": {"ids": 1, "fields": ["magnetLink", "trackers"]}}),
    );
    let t = &args["torrents"][0];
    assert!(t["magnetLink"]
        .as_str()
        .unwrap()
        .starts_with("magnet:?xt=urn:btih:"));
    assert_eq!(t["trackers"][0]["announce"], "http://t.example/announce");
    assert_eq!(t["trackers"][0]["scrape"], "http://t.example/scrape");
}

#[test]
fn the_table_format() {
    let b = Fake::with_two();
    let args = ok(
        &b,
        json!({"method": "torrent-get", "arguments": {"fields": ["id", "name", "bogus"], "format": "table"}}),
    );
    assert_eq!(
        args["torrents"],
        json!([["id", "name", "bogus"], [1, "one", null], [2, "two", null]])
    );
    // Repeated names count once; too many distinct ones are refused.
    let args = ok(
        &b,
        json!({"method": "torrent-get", "arguments": {"fields": ["id", "id", "id"], "format": "table"}}),
    );
    assert_eq!(args["torrents"][0], json!(["id"]));
    let many: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
    assert!(refused(
        &b,
        json!({"method": "torrent-get", "arguments": {"fields": many}})
    )
    .contains("at most"));
}

#[test]
fn torrent_add_by_metainfo_magnet_or_path() {
    let b = Fake::default();
    let args = ok(
        &b,
        json!({"method": "torrent-add", "arguments": {"metainfo": "ZDQ6aW5mb2Rl\nZQ==",
            "download-dir": "/dl", "paused": true}}),
    );
    assert_eq!(args["torrent-added"]["id"], 3);
    assert_eq!(args["torrent-added"]["hashString"], "01".repeat(20));
    ok(
        &b,
        json!({"method": "torrent-add", "arguments": {"filename": "magnet:?xt=urn:btih:x"}}),
    );
    ok(
        &b,
        json!({"method": "torrent-add", "arguments": {"filename": "/t/a.torrent", "paused": 0}}),
    );
    assert_eq!(
        b.calls(),
        [
            "add bytes 10 dir=Some(\"/dl\") paused=Some(true)",
            "add magnet magnet:?xt=urn:btih:x dir=None paused=None",
            "add file /t/a.torrent dir=None paused=Some(false)",
        ]
    );
    let add = |args: Value| refused(&b, json!({"method": "torrent-add", "arguments": args}));
    assert!(add(json!({"filename": "a.torrent"})).contains("absolute"));
    assert!(add(json!({"filename": "https://x/a.torrent"})).contains("URL"));
    assert!(add(json!({"metainfo": "@@@"})).contains("base64"));
    assert!(add(json!({"filename": "/a.torrent", "download-dir": "dl"})).contains("absolute"));
    assert!(add(json!({"filename": "/a.torrent", "files-unwanted": ["x"]})).contains("file index"));
    assert!(add(json!({})).contains("filename"));
    assert_eq!(b.calls().len(), 3);
    ok(
        &b,
        json!({"method": "torrent-add", "arguments": {"filename": "/b.torrent", "files-unwanted": [0]}}),
    );
    assert!(b.calls()[4].starts_with("options [3]"), "{:?}", b.calls());
}

#[test]
fn start_stop_verify_remove_by_id() {
    let b = Fake::with_two();
    ok(
        &b,
        json!({"method": "torrent-stop", "arguments": {"ids": [2]}}),
    );
    ok(&b, json!({"method": "torrent-start", "arguments": {}}));
    ok(
        &b,
        json!({"method": "torrent-verify", "arguments": {"ids": 1}}),
    );
    ok(
        &b,
        json!({"method": "torrent-remove", "arguments": {"ids": [1], "delete-local-data": true}}),
    );
    ok(
        &b,
        json!({"method": "torrent-remove", "arguments": {"ids": [2]}}),
    );
    ok(
        &b,
        json!({"method": "torrent-start", "arguments": {"ids": [99]}}),
    );
    assert_eq!(
        b.calls(),
        [
            "stop [2]",
            "start [1, 2]",
            "verify [1]",
            "remove [1] delete=true",
            "remove [2] delete=false",
            "start []",
        ]
    );
}

#[test]
fn torrent_set_keeps_labels_files_and_limits_accepts_hints_and_refuses_the_rest() {
    let b = Fake::with_two();
    ok(
        &b,
        json!({"method": "torrent-set", "arguments": {"ids": [1], "labels": ["tv"],
            "seedRatioLimit": 1.5, "priority-high": [0], "files-unwanted": [1],
            "downloadLimit": 100, "downloadLimited": true, "sequentialDownload": true}}),
    );
    assert_eq!(
        b.calls(),
        [
            "options [1] OptionsChange { download_limit: Some(100), download_limited: Some(true), \
             upload_limit: None, upload_limited: None, sequential: Some(true), wanted: None, \
             unwanted: Some([1]), high: Some([0]), normal: None, low: None }",
            "labels [1] [\"tv\"]"
        ]
    );
    let why = refused(
        &b,
        json!({"method": "torrent-set", "arguments": {"ids": [1], "peer-limit": 3, "location": "/x"}}),
    );
    assert!(
        why.contains("peer limit") && why.contains("moving"),
        "{why}"
    );
    assert!(refused(
        &b,
        json!({"method": "torrent-set", "arguments": {"files-wanted": [-1]}})
    )
    .contains("file index"));
    assert!(refused(
        &b,
        json!({"method": "torrent-set", "arguments": {"labels": ["a,b"]}})
    )
    .contains("comma"));
    assert!(refused(&b, json!({"method": "torrent-reannounce"})).contains("not support"));
}

#[test]
fn file_choices_and_limits_are_shown() {
    let mut t = view(1, "one");
    t.options.unwanted = vec![0];
    t.options.download_limit = 7;
    t.options.download_limited = true;
    t.stats.wanted_bytes = 0;
    let f = |n| super::fields::field(n, &t, 0).unwrap();
    assert_eq!(f("wanted"), json!([0]));
    assert_eq!(f("priorities"), json!([0]));
    assert_eq!(f("downloadLimit"), json!(7));
    assert_eq!(f("downloadLimited"), json!(true));
    assert_eq!(f("sizeWhenDone"), json!(0));
    assert_eq!(f("fileStats")[0]["wanted"], json!(false));
    t.queued = true;
    assert_eq!(super::fields::field("status", &t, 0), Some(json!(3)));
}

#[test]
fn session_get_set_and_stats() {
    let b = Fake::with_two();
    let all = ok(&b, json!({"method": "session-get"}));
    assert_eq!(all["rpc-version"], 16);
    assert_eq!(all["session-id"], "sid");
    assert_eq!(all["download-dir"], "/data");
    assert!(all["version"]
        .as_str()
        .unwrap()
        .starts_with("3.00 (battorrent "));
    let some = ok(
        &b,
        json!({"method": "session-get", "arguments": {"fields": ["peer-port"]}}),
    );
    assert_eq!(some, json!({"peer-port": 51413}));
    ok(
        &b,
        json!({"method": "session-set", "arguments": {"download-dir": "/new", "peer-port": 51413, "dht-enabled": false,
            "speed-limit-down": 10, "speed-limit-down-enabled": true, "download-queue-size": 2}}),
    );
    assert_eq!(
        b.calls(),
        [
            r#"settings SettingsChange { download_dir: Some("/new"), start_added: None, speed_down: Some(10), speed_down_enabled: Some(true), speed_up: None, speed_up_enabled: None, queue_size: Some(2), queue_enabled: None }"#
        ]
    );
    let why = refused(
        &b,
        json!({"method": "session-set", "arguments": {"peer-port": 1, "encryption": "required"}}),
    );
    assert!(
        why.contains("peer-port") && why.contains("encryption"),
        "{why}"
    );
    let stats = ok(&b, json!({"method": "session-stats"}));
    assert_eq!(stats["torrentCount"], 2);
    assert_eq!(stats["activeTorrentCount"], 2);
    assert_eq!(stats["downloadSpeed"], 201);
    assert_eq!(stats["cumulative-stats"]["uploadedBytes"], 0);
    let free = ok(
        &b,
        json!({"method": "free-space", "arguments": {"path": "/data"}}),
    );
    assert_eq!(free["size-bytes"], 5);
}

#[test]
fn queue_moves_reach_the_backend_and_positions_are_shown() {
    let b = Fake::with_two();
    ok(
        &b,
        json!({"method": "queue-move-top", "arguments": {"ids": [2]}}),
    );
    ok(
        &b,
        json!({"method": "queue-move-down", "arguments": {"ids": [1]}}),
    );
    assert_eq!(b.calls(), vec!["queue Top [2]", "queue Down [1]"]);
    let got = ok(
        &b,
        json!({"method": "torrent-get", "arguments": {"fields": ["id", "queuePosition"]}}),
    );
    assert_eq!(got["torrents"][1]["queuePosition"], json!(1));
}

#[test]
fn set_location_reaches_the_backend_with_its_move_flag() {
    let b = Fake::with_two();
    ok(
        &b,
        json!({"method": "torrent-set-location",
               "arguments": {"ids": [1], "location": "/new", "move": true}}),
    );
    ok(
        &b,
        json!({"method": "torrent-set-location", "arguments": {"ids": [2], "location": "/x"}}),
    );
    assert_eq!(
        b.calls(),
        vec!["location [1] /new true", "location [2] /x false"]
    );
    let why = refused(
        &b,
        json!({"method": "torrent-set-location", "arguments": {"ids": [1]}}),
    );
    assert!(why.contains("location"), "{why}");
}
