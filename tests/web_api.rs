//! The daemon's JSON API, file streaming and CLI client, over loopback with our tracker and
//! a rate-limited seeder of our own:
//! - `battorrent add|list|pause|resume|remove` drive a running daemon, and say how to start
//!   one when none answers;
//! - a file is read with `curl` range requests while it downloads (the reads hurry the
//!   pieces they need), and every byte matches; 200, 206 and 416 as they should be;
//! - the API's errors are JSON with fitting status codes, and another site's page cannot
//!   change anything.

#[path = "support/daemon.rs"]
mod daemon;

use daemon::*;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `battorrent ARGS...` to completion.
fn cli(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `curl -s ARGS...` (no proxy): its stdout, which `-w` can end with the status.
fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-s", "--noproxy", "*", "--max-time", "120"])
        .args(args)
        .output()
        .expect("curl is needed (apt-get install curl)");
    out.stdout
}

/// Status and body of one API call.
fn call(method: &str, url: &str, extra: &[&str]) -> (u16, Value) {
    let mut args = vec!["-X", method, "-w", "\n%{http_code}", url];
    args.extend_from_slice(extra);
    let out = String::from_utf8(curl(&args)).unwrap();
    let (body, status) = out.rsplit_once('\n').unwrap();
    (
        status.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// Reads `range` of the streamed file: status, Content-Range, body.
fn range(url: &str, range: &str) -> (u16, Option<String>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("battorrent-web-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let headers = dir.join("headers");
    let body = curl(&[
        "-D",
        headers.to_str().unwrap(),
        "-H",
        &format!("Range: bytes={range}"),
        url,
    ]);
    let head = std::fs::read_to_string(&headers).unwrap_or_default();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_range = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-range:")
            .map(|v| v.trim().to_string())
    });
    (status, content_range, body)
}

fn progress(api: &str) -> f64 {
    call("GET", &format!("{api}/torrents"), &[]).1["torrents"][0]["progress"]
        .as_f64()
        .unwrap_or(0.0)
}

#[test]
fn a_file_streams_with_ranges_while_it_downloads_and_the_cli_drives_the_daemon() {
    let dir = scratch("web-api");
    let (_tracker, url) = start_tracker(&dir);
    let size = 12 << 20;
    let (data, torrent_file) = make_torrent(&dir, "clip.bin", size, &url);
    let _seeder = start_seeder(&dir, &[&torrent_file], "1M");
    let (state, dl) = (dir.join("state"), dir.join("dl"));
    let d = start_daemon(&dir, &state, &dl, "daemon.log", &[]);
    let rpc = d.rpc.to_string();
    let api = format!("http://{rpc}/api/v1");

    // Added with the CLI; listed with it.
    let out = cli(&["add", torrent_file.to_str().unwrap(), "--rpc", &rpc]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).trim(), "added torrent 1: clip.bin");
    let out = cli(&["list", "--json", "--rpc", &rpc]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["torrents"][0]["name"], "clip.bin");
    assert_eq!(list["torrents"][0]["size"], size as u64);

    // Read while it downloads: the start, the middle across pieces, the end.
    let stream = format!("http://{rpc}/stream/1/clip.bin");
    let started = Instant::now();
    let mut while_downloading = 0;
    for (spec, start, end) in [
        ("0-99999", 0, 100_000),
        ("6000000-6300000", 6_000_000, 6_300_001),
        ("-1000", size - 1000, size),
        ("9437180-9437190", 9_437_180, 9_437_191),
    ] {
        let (status, content_range, body) = range(&stream, spec);
        let p = progress(&api);
        eprintln!(
            "range {spec}: {status} {content_range:?}, {} bytes after {:.1?}, torrent at {:.0}%",
            body.len(),
            started.elapsed(),
            p * 100.0
        );
        if p < 1.0 {
            while_downloading += 1;
        }
        assert_eq!(status, 206, "{spec}\n{}", d.proc.log());
        assert_eq!(
            content_range.as_deref(),
            Some(&*format!("bytes {start}-{}/{size}", end - 1))
        );
        assert!(body == data[start..end], "the bytes of {spec} differ");
    }
    assert!(
        while_downloading >= 2,
        "the reads did not overlap the download (make the seeder slower)"
    );

    // The event stream, from here until it completes.
    let events_log = dir.join("events.txt");
    let mut events = Command::new("curl")
        .args(["-s", "-N", "--noproxy", "*", &format!("{api}/events")])
        .stdout(std::fs::File::create(&events_log).unwrap())
        .spawn()
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "the event stream sends no list",
        || d.proc.log(),
        || {
            let seen = std::fs::read_to_string(&events_log).unwrap_or_default();
            seen.contains("event: torrents").then_some(())
        },
    );

    // A magnet link nobody serves: added, no file list yet, removed.
    let link = format!("magnet:?xt=urn:btih:{}&dn=nothing", "ab".repeat(20));
    let out = cli(&["add", &link, "--rpc", &rpc]);
    assert_eq!(text(&out).trim(), "added torrent 2: nothing");
    let (status, body) = call("GET", &format!("{api}/torrents/2/files"), &[]);
    assert_eq!(status, 409, "{body}");
    let (status, body) = call("DELETE", &format!("{api}/torrents/2"), &[]);
    assert_eq!(status, 200, "{body}");

    // The CLI pauses and resumes it.
    let out = cli(&["pause", "1", "--rpc", &rpc]);
    assert!(out.status.success(), "{}", text(&out));
    let paused = call("GET", &format!("{api}/torrents"), &[]).1;
    assert_eq!(paused["torrents"][0]["state"], "paused");
    let out = cli(&["resume", "1", "--rpc", &rpc]);
    assert!(out.status.success(), "{}", text(&out));

    // Complete: the whole file in one reply, and a range past its end refused.
    wait_for(
        Duration::from_secs(90),
        "the download does not complete",
        || d.proc.log(),
        || (progress(&api) >= 1.0).then_some(()),
    );
    // Stopped by its process id.
    std::thread::sleep(Duration::from_millis(1500));
    let _ = events.kill();
    let _ = events.wait();
    let seen = std::fs::read_to_string(&events_log).unwrap();
    for expected in [
        "event: torrents\ndata: {\"torrents\":[{",
        "event: state\ndata: {\"id\":1,\"state\":\"paused\"}",
        "event: completed\ndata: {\"id\":1,",
        "event: added\ndata: {\"id\":2,",
        "event: removed\ndata: {\"id\":2,",
    ] {
        assert!(
            seen.contains(expected),
            "no {expected:?} in the events:\n{seen}"
        );
    }
    let whole = curl(&[&stream]);
    assert!(whole == data, "the whole file differs");
    let (status, content_range, _) = range(&stream, &format!("{size}-"));
    assert_eq!(status, 416);
    assert_eq!(content_range.as_deref(), Some(&*format!("bytes */{size}")));

    // Errors are JSON with fitting statuses.
    let (status, body) = call("GET", &format!("http://{rpc}/stream/1/other.bin"), &[]);
    assert_eq!((status, body["error"].is_string()), (404, true));
    let (status, body) = call("POST", &format!("{api}/torrents/7/pause"), &[]);
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("there is no torrent 7"))
    );
    let (status, body) = call(
        "POST",
        &format!("{api}/torrents"),
        &["-H", "Content-Type: application/json", "-d", "{nope"],
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(
        "POST",
        &format!("{api}/torrents/1/pause"),
        &["-H", "Origin: http://evil.example"],
    );
    assert_eq!(status, 403);
    let (status, body) = call(
        "PUT",
        &format!("{api}/torrents/1/files"),
        &["-d", r#"{"priorities":[1,2]}"#],
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        "PUT",
        &format!("{api}/limits"),
        &["-d", r#"{"download":null,"upload":500000}"#],
    );
    assert_eq!(
        (status, body["upload"].as_u64()),
        (200, Some(500_000)),
        "{body}"
    );

    // Added again: the same torrent.
    let out = cli(&["add", torrent_file.to_str().unwrap(), "--rpc", &rpc]);
    assert_eq!(text(&out).trim(), "already there as torrent 1: clip.bin");

    // Removed with its data.
    let out = cli(&["remove", "1", "--delete-data", "--rpc", &rpc]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dl.join("clip.bin").exists());
    let out = cli(&["list", "--rpc", &rpc]);
    assert_eq!(text(&out).trim(), "no torrents");

    // No daemon there: one sentence saying how to start one.
    let nobody = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let out = cli(&["list", "--rpc", &nobody]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("no daemon answers") && said.contains("battorrent daemon"),
        "{said}"
    );
    let out = cli(&["pause", "3", "--rpc", &rpc]);
    assert!(
        text(&out).contains("there is no torrent 3"),
        "{}",
        text(&out)
    );
}
