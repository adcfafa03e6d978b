//! The API's calls against a real daemon in this process, without HTTP: add, list, files,
//! selection, sequential, limits, pause, resume, a streamed range, remove.

use super::handlers as h;
use super::range::Wanted;
use crate::daemon::{Daemon, DaemonConfig};
use crate::metainfo::create::{build, scan, CreateOptions};
use crate::session::SessionConfig;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_work_against_a_daemon() {
    let dir = std::env::temp_dir().join(format!("battorrent-api-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data_dir.join("a.bin"), &data).unwrap();
    let created = build(
        &scan(&data_dir.join("a.bin"), false, false).unwrap(),
        &CreateOptions {
            piece_length: Some(32 << 10),
            ..CreateOptions::default()
        },
        |_| {},
    )
    .unwrap();
    let (daemon, _) = Daemon::start(DaemonConfig {
        state_dir: dir.join("state"),
        download_dir: Some(data_dir.clone()),
        default_download_dir: data_dir.clone(),
        session: SessionConfig {
            bind: ([127, 0, 0, 1], 0).into(),
            use_trackers: false,
            direct_writes: false,
            ..SessionConfig::default()
        },
        save_every: Duration::from_secs(3600),
        max_active: None,
    })
    .await
    .unwrap();
    let b = Arc::new(daemon.clone());

    // Added from JSON with the .torrent in base64: the data is in place, so it seeds.
    let body = serde_json::json!({
        "torrent": base64::engine::general_purpose::STANDARD.encode(&created.bytes),
    });
    let new = h::new_torrent(h::parse(body.to_string().as_bytes()).unwrap()).unwrap();
    let (status, added) = h::add(&*b, new.clone()).await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let id = added["id"].as_u64().unwrap() as u32;
    let (status, again) = h::add(&*b, new).await.unwrap();
    assert_eq!(
        (status, again["duplicate"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let mut listed = serde_json::Value::Null;
    for _ in 0..200 {
        listed = h::list(&*b);
        if listed["torrents"][0]["state"] == "seeding" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let t = &listed["torrents"][0];
    assert_eq!(
        (t["state"].as_str(), t["progress"].as_f64()),
        (Some("seeding"), Some(1.0)),
        "{t}"
    );
    assert_eq!(t["size"], 300_000);

    // Files, selection, sequential, limits.
    let (_, files) = h::files(&*b, id).unwrap();
    assert_eq!(files["files"][0]["path"], "a.bin");
    assert_eq!(files["files"][0]["done"], 300_000);
    let (_, files) =
        h::set_files(&*b, id, h::parse(br#"{"wanted":{"0":false}}"#).unwrap()).unwrap();
    assert_eq!(files["files"][0]["priority"], 0);
    let (_, files) = h::set_files(&*b, id, h::parse(br#"{"priorities":[7]}"#).unwrap()).unwrap();
    assert_eq!(files["files"][0]["priority"], 7);
    h::set_sequential(&*b, id, h::parse(br#"{"sequential":true}"#).unwrap()).unwrap();
    let (_, l) = h::set_limits(&*b, Some(id), br#"{"download":1000,"upload":null}"#).unwrap();
    assert_eq!(l, serde_json::json!({"download": 1000, "upload": null}));
    assert_eq!(
        h::set_limits(&*b, None, br#"{"download":0,"upload":null}"#)
            .unwrap_err()
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(h::files(&*b, 99).unwrap_err().status, StatusCode::NOT_FOUND);

    // Pause and resume; a client that reads its events hears of them.
    let mut reader = super::events::client(b.clone());
    let first = reader.next().await.unwrap();
    assert_eq!(first.0, "torrents");
    h::set_running(&*b, id, false).unwrap();
    assert_eq!(h::list(&*b)["torrents"][0]["state"], "paused");
    h::set_running(&*b, id, true).unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let (kind, data) = reader.next().await.unwrap();
        if kind == "state" {
            kinds.push(data);
        }
    }
    assert_eq!(kinds[0], format!(r#"{{"id":{id},"state":"paused"}}"#));

    // A client that does not read while the session's event channel overflows is told so
    // and its stream ends; the daemon went on meanwhile.
    let mut sleeper = super::events::client(b.clone());
    for _ in 0..1100 {
        h::set_running(&*b, id, false).unwrap();
        h::set_running(&*b, id, true).unwrap();
    }
    let mut last = None;
    while let Some((kind, _)) = sleeper.next().await {
        last = Some(kind);
    }
    assert_eq!(last, Some("dropped"));

    // A range, streamed.
    let mut headers = HeaderMap::new();
    headers.insert(
        header::RANGE,
        HeaderValue::from_static("bytes=40000-250000"),
    );
    let reply = super::stream::reply(b.clone(), id, "a.bin", &headers).unwrap();
    assert_eq!(reply.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        reply.headers()[header::CONTENT_RANGE],
        "bytes 40000-250000/300000"
    );
    let bytes = axum::body::to_bytes(reply.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(bytes[..] == data[40_000..250_001]);
    assert_eq!(
        super::range::wanted(Some("bytes=0-"), 0),
        Wanted::Unsatisfiable
    );
    let missing = super::stream::reply(b.clone(), id, "../a.bin", &HeaderMap::new()).unwrap_err();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // A folder of two files: indexes, selection and streaming of the second file.
    let pack = data_dir.join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(pack.join("one.txt"), &data[..70_000]).unwrap();
    std::fs::write(pack.join("two.bin"), &data[70_000..]).unwrap();
    let created = build(
        &scan(&pack, false, false).unwrap(),
        &CreateOptions {
            piece_length: Some(16 << 10),
            ..CreateOptions::default()
        },
        |_| {},
    )
    .unwrap();
    let new = h::uploaded_torrent(created.bytes.clone(), "").unwrap();
    let (_, added) = h::add(&*b, new).await.unwrap();
    let pack_id = added["id"].as_u64().unwrap() as u32;
    let (_, files) = h::set_files(
        &*b,
        pack_id,
        h::parse(br#"{"wanted":{"1":false}}"#).unwrap(),
    )
    .unwrap();
    let shown: Vec<_> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["index"].as_u64().unwrap(),
                f["path"].as_str().unwrap().to_string(),
                f["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [(0, "one.txt".to_string(), 4), (1, "two.bin".to_string(), 0)]
    );
    h::set_files(&*b, pack_id, h::parse(br#"{"wanted":{"1":true}}"#).unwrap()).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(header::RANGE, HeaderValue::from_static("bytes=-5000"));
    let reply = super::stream::reply(b.clone(), pack_id, "two.bin", &headers).unwrap();
    assert_eq!(
        reply.headers()[header::CONTENT_RANGE],
        "bytes 225000-229999/230000"
    );
    let bytes = axum::body::to_bytes(reply.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(bytes[..] == data[data.len() - 5000..]);
    h::remove(&*b, pack_id, false).await.unwrap();

    // Removed (the data stays).
    h::remove(&*b, id, false).await.unwrap();
    assert_eq!(h::list(&*b)["torrents"], serde_json::json!([]));
    assert!(data_dir.join("a.bin").exists());
    daemon.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
