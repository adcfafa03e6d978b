//! `battorrent daemon` across restarts, driven over its Transmission RPC (our own small
//! client, tests/support/daemon.rs), with our tracker and seeder on loopback:
//! - killed with SIGKILL mid-download, it comes back and completes with the right bytes,
//!   fetching only what was not yet on disk;
//! - a complete torrent comes back seeding without hashing its data, unless a file changed;
//! - a corrupt state folder gives notes, not a crash; an RPC open to the network without a
//!   password is refused.

#[path = "support/daemon.rs"]
mod daemon;

use base64::Engine as _;
use daemon::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The saved record of the only torrent in `state`, if written yet.
fn record(state: &Path) -> Option<Value> {
    let dir = std::fs::read_dir(state.join("torrents")).ok()?;
    let path = dir
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))?;
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Verified pieces in a saved record's resume data.
fn saved_pieces(record: &Value) -> u32 {
    let have = record["resume"]["have"].as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(have)
        .map_or(0, |b| b.iter().map(|x| x.count_ones()).sum())
}

fn percent_done(rpc: std::net::SocketAddr, id: u64) -> f64 {
    torrent(rpc, id, &["percentDone"]).map_or(0.0, |t| t["percentDone"].as_f64().unwrap())
}

#[test]
fn killed_mid_download_it_resumes_and_a_complete_torrent_comes_back_without_hashing() {
    let dir = scratch("resume");
    let (_tracker, url) = start_tracker(&dir);
    let size = 16 << 20;
    let pieces = (size / 65536) as u32;
    let (data, torrent_file) = make_torrent(&dir, "payload.bin", size, &url);
    let _seeder = start_seeder(&dir, &[&torrent_file], "4M");
    let (state, dl) = (dir.join("state"), dir.join("dl"));

    // First run: killed once a third is verified and saved.
    let first = start_daemon(&dir, &state, &dl, "first.log", &[]);
    let added = rpc(
        first.rpc,
        "torrent-add",
        json!({"filename": torrent_file.to_str().unwrap()}),
    );
    let id = added["torrent-added"]["id"].as_u64().unwrap();
    assert_eq!(id, 1);
    let had = wait_for(
        Duration::from_secs(60),
        "no third of the data was saved as verified",
        || first.proc.log(),
        || {
            record(&state)
                .map(|r| saved_pieces(&r))
                .filter(|n| *n >= pieces / 3)
        },
    );
    drop(first); // SIGKILL
    assert!(
        had < pieces,
        "it finished before the kill: make the seeder slower"
    );

    // Second run: the file changed since the last save, so it is checked, and only what
    // is missing is fetched.
    let second = start_daemon(&dir, &state, &dl, "second.log", &[]);
    wait_for(
        Duration::from_secs(60),
        "the resumed download does not complete",
        || second.proc.log(),
        || (percent_done(second.rpc, 1) == 1.0).then_some(()),
    );
    assert_eq!(std::fs::read(dl.join("payload.bin")).unwrap(), data);
    let stats = rpc(second.rpc, "session-stats", json!({}));
    let fetched = stats["current-stats"]["downloadedBytes"].as_u64().unwrap();
    assert!(
        fetched > 0 && fetched <= (size - had as usize * 65536) as u64,
        "fetched {fetched} bytes after {had} of {pieces} pieces were saved"
    );
    // Both runs' bytes (those of the first up to its last save).
    let t = torrent(second.rpc, 1, &["downloadedEver", "status"]).unwrap();
    assert!(t["downloadedEver"].as_u64().unwrap() > fetched, "{t}");
    assert_eq!(t["status"], 6, "{t}");
    // Saved complete (every piece, and the files as they are now), then stopped cleanly.
    wait_for(
        Duration::from_secs(20),
        "the complete torrent is not saved",
        || second.proc.log(),
        || record(&state).filter(|r| saved_pieces(r) == pieces && !r["done"].is_null()),
    );
    let mut second = second;
    assert!(
        second.proc.terminate(Duration::from_secs(20)),
        "{}",
        second.proc.log()
    );

    // Third run: seeding at once, nothing hashed.
    let started = Instant::now();
    let third = start_daemon(&dir, &state, &dl, "third.log", &[]);
    let status = torrent(third.rpc, 1, &["status", "percentDone"]).unwrap();
    let ready = started.elapsed();
    assert_eq!(status["status"], 6, "{status}");
    assert_eq!(status["percentDone"], 1.0);
    let log = third.proc.log();
    assert!(
        log.contains("1 torrents resumed without a check, 0 to check"),
        "{log}"
    );
    eprintln!("restart of a complete 16 MiB torrent: seeding after {ready:?}");
    drop(third);

    // Fourth run: the file was touched, so it is checked again (and still complete).
    let file = std::fs::File::options()
        .append(true)
        .open(dl.join("payload.bin"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    let fourth = start_daemon(&dir, &state, &dl, "fourth.log", &[]);
    let log = fourth.proc.log();
    assert!(
        log.contains("0 torrents resumed without a check, 1 to check"),
        "{log}"
    );
    wait_for(
        Duration::from_secs(60),
        "the check of a complete torrent does not find it complete",
        || fourth.proc.log(),
        || (percent_done(fourth.rpc, 1) == 1.0).then_some(()),
    );
    drop(fourth);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_state_folder_gives_notes_not_a_crash() {
    let dir = scratch("corrupt");
    let state = dir.join("state");
    std::fs::create_dir_all(state.join("torrents")).unwrap();
    let hash = "ab".repeat(20);
    std::fs::write(
        state.join(format!("torrents/{hash}.json")),
        b"{\"version\":1,",
    )
    .unwrap();
    std::fs::write(state.join(format!("torrents/{hash}.torrent")), b"d4:junke").unwrap();
    std::fs::write(state.join("session.json"), [0xff, 0x00, 0x7b]).unwrap();
    let d = start_daemon(&dir, &state, &dir.join("dl"), "daemon.log", &[]);
    let log = d.proc.log();
    assert!(log.contains("note: ignoring"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let list = rpc(d.rpc, "torrent-get", json!({"fields": ["id"]}));
    assert_eq!(list["torrents"], json!([]));
    assert!(state.join(format!("torrents/{hash}.json.bad")).exists());
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_rpc_open_to_the_network_needs_a_password() {
    let dir = scratch("exposed");
    let state = dir.join("state");
    let out = std::process::Command::new(BIN)
        .args([
            "daemon",
            "--no-dht",
            "--rpc-bind",
            "0.0.0.0:0",
            "--state-dir",
        ])
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without a password") && err.contains("--rpc-auth USER:PASS"),
        "{err}"
    );
    // With a password it starts, and the RPC asks for it.
    let mut d = start_daemon(
        &dir,
        &state,
        &dir.join("dl"),
        "daemon.log",
        &["--rpc-auth", "me:secret"],
    );
    let (status, headers, _) = post(d.rpc, &[], "{}");
    assert_eq!(status, 401);
    assert!(headers.iter().any(|(k, _)| k == "www-authenticate"));
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("me:secret")
    );
    let (status, _, _) = post(d.rpc, &[("Authorization", &auth)], "{}");
    assert_eq!(status, 409);
    assert!(d.proc.terminate(Duration::from_secs(20)));
    let _ = std::fs::remove_dir_all(&dir);
}
