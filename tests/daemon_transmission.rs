//! Debian's real `transmission-remote` (package transmission-cli, Transmission 3.00)
//! driving `battorrent daemon` over loopback: add by .torrent and by magnet link, list,
//! details, files, session info and statistics, stop, start, verify, remove with and
//! without the data, add into another folder paused, and basic auth. Each step checks the
//! daemon's state through the RPC or the disk, and that transmission-remote parsed the
//! answers (its listing shows the torrents complete at 100% once they came from our seeder).
//!
//! Needs transmission-cli; with BATTORRENT_SKIP_INTEROP=1 the tests skip when it is missing.

#[path = "support/daemon.rs"]
mod daemon;

use daemon::*;
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Whether transmission-remote can run; fails the test (naming the package) when it
/// cannot and skipping is not allowed.
fn have_transmission_remote() -> bool {
    let works = Command::new("transmission-remote")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stderr.is_empty());
    if works {
        return true;
    }
    let reason = "transmission-remote is not installed (apt-get install transmission-cli)";
    if std::env::var_os("BATTORRENT_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!("skipped: {reason}");
        return false;
    }
    panic!("{reason}; set BATTORRENT_SKIP_INTEROP=1 to skip");
}

/// `transmission-remote ADDR ARGS...`: whether it succeeded, and what it printed.
fn remote(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new("transmission-remote")
        .arg(addr.to_string())
        .args(args)
        .output()
        .expect("run transmission-remote");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// [`remote`], which must succeed.
fn ok(addr: SocketAddr, args: &[&str]) -> String {
    let (success, text) = remote(addr, args);
    assert!(success, "transmission-remote {args:?} failed:\n{text}");
    text
}

/// The `-l` row of the torrent named `name`, if listed.
fn row(addr: SocketAddr, name: &str) -> Option<String> {
    ok(addr, &["-l"])
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .map(str::to_owned)
}

/// Waits until the `-l` row of `name` satisfies `check`; returns it.
fn wait_row(d: &Daemon, name: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    wait_for(
        Duration::from_secs(60),
        what,
        || format!("listing:\n{}\nlog:\n{}", ok(d.rpc, &["-l"]), d.proc.log()),
        || row(d.rpc, name).filter(|r| check(r)),
    )
}

fn status(d: &Daemon, id: u64) -> u64 {
    torrent(d.rpc, id, &["status"]).unwrap()["status"]
        .as_u64()
        .unwrap()
}

fn torrent_files(state: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state.join("torrents"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn transmission_remote_drives_the_daemon() {
    if !have_transmission_remote() {
        return;
    }
    let dir = scratch("tr-remote");
    let (_tracker, url) = start_tracker(&dir);
    let (alpha, alpha_torrent) = make_torrent(&dir, "alpha.bin", 3 << 20, &url);
    let (beta, beta_torrent) = make_torrent(&dir, "beta.bin", 2 << 20, &url);
    let _seeder = start_seeder(&dir, &[&alpha_torrent, &beta_torrent], "100M");
    let (state, dl) = (dir.join("state"), dir.join("dl"));
    let d = start_daemon(&dir, &state, &dl, "daemon.log", &[]);
    let a = d.rpc;

    // Add by file (transmission-remote sends it as base64 metainfo); it completes.
    let text = ok(a, &["-a", alpha_torrent.to_str().unwrap()]);
    assert!(text.contains("responded: \"success\""), "{text}");
    let done = wait_row(&d, "alpha.bin", "alpha.bin never shows 100%", |r| {
        r.contains("100%") && r.contains("Done")
    });
    assert!(done.trim_start().starts_with("1 "), "{done}");
    assert_eq!(std::fs::read(dl.join("alpha.bin")).unwrap(), alpha);

    // Details, files, session info and statistics are parsed.
    let info = ok(a, &["-t", "1", "-i"]);
    let hash = torrent(a, 1, &["hashString"]).unwrap()["hashString"]
        .as_str()
        .unwrap()
        .to_string();
    for line in [
        "Name: alpha.bin".to_string(),
        format!("Hash: {hash}"),
        format!("Location: {}", dl.display()),
        "Percent Done: 100%".into(),
        "Total size: 3.15 MB (3.15 MB wanted)".into(),
        "Piece Count: 48".into(),
    ] {
        assert!(info.contains(&line), "no {line:?} in:\n{info}");
    }
    let files = ok(a, &["-t", "1", "-f"]);
    assert!(files.contains("alpha.bin (1 files)"), "{files}");
    assert!(
        files
            .lines()
            .any(|l| l.contains("100%") && l.ends_with("alpha.bin")),
        "{files}"
    );
    let session = ok(a, &["-si"]);
    assert!(
        session.contains("Daemon version: 3.00 (battorrent"),
        "{session}"
    );
    assert!(
        session.contains(&format!("Download directory: {}", dl.display())),
        "{session}"
    );
    let stats = ok(a, &["-st"]);
    assert!(stats.contains("Started 1 times"), "{stats}");
    assert!(stats.contains("Downloaded: 3.15 MB"), "{stats}");

    // Stop and start.
    ok(a, &["-t", "1", "-S"]);
    assert_eq!(status(&d, 1), 0);
    wait_row(&d, "alpha.bin", "a stopped torrent is not listed so", |r| {
        r.contains("Stopped")
    });
    ok(a, &["-t", "1", "-s"]);
    assert_eq!(status(&d, 1), 6);

    // Verify: checked again, still complete, same id.
    ok(a, &["-t", "1", "-v"]);
    wait_for(
        Duration::from_secs(30),
        "the verified torrent is not seeding again",
        || d.proc.log(),
        || (torrent(a, 1, &["status"])?["status"] == 6).then_some(()),
    );
    assert!(row(a, "alpha.bin").unwrap().contains("100%"));

    // Moved to another folder: the file goes there and the torrent seeds on, unchecked.
    let moved = dir.join("moved");
    ok(a, &["-t", "1", "--move", moved.to_str().unwrap()]);
    assert_eq!(std::fs::read(moved.join("alpha.bin")).unwrap(), alpha);
    assert!(!dl.join("alpha.bin").exists());
    wait_for(
        Duration::from_secs(30),
        "the moved torrent is not seeding",
        || d.proc.log(),
        || {
            let t = torrent(a, 1, &["status", "downloadDir"])?;
            (t["status"] == 6 && t["downloadDir"] == moved.to_str().unwrap()).then_some(())
        },
    );
    // Found in a folder holding a copy: checked there, and seeds from it.
    std::fs::copy(moved.join("alpha.bin"), dl.join("alpha.bin")).unwrap();
    ok(a, &["-t", "1", "--find", dl.to_str().unwrap()]);
    wait_for(
        Duration::from_secs(30),
        "the found torrent is not seeding",
        || d.proc.log(),
        || {
            let t = torrent(a, 1, &["status", "downloadDir"])?;
            (t["status"] == 6 && t["downloadDir"] == dl.to_str().unwrap()).then_some(())
        },
    );

    // A magnet link: the metadata comes from the seeder, then the data; the .torrent is
    // saved in the state folder once known.
    let magnet = Command::new(BIN)
        .arg("magnet")
        .arg(&beta_torrent)
        .output()
        .unwrap();
    let link = String::from_utf8(magnet.stdout).unwrap().trim().to_string();
    ok(a, &["-a", &link]);
    wait_row(&d, "beta.bin", "the magnet link never completes", |r| {
        r.contains("100%")
    });
    assert_eq!(std::fs::read(dl.join("beta.bin")).unwrap(), beta);
    let beta_hash = link
        .split("btih:")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    wait_for(
        Duration::from_secs(20),
        "the magnet's .torrent is not saved",
        || format!("{:?}", torrent_files(&state)),
        || {
            torrent_files(&state)
                .contains(&format!("{beta_hash}.torrent"))
                .then_some(())
        },
    );

    // Remove without the data, then with it.
    ok(a, &["-t", "1", "-r"]);
    assert!(row(a, "alpha.bin").is_none());
    assert!(dl.join("alpha.bin").exists());
    assert!(!torrent_files(&state).iter().any(|f| f.starts_with(&hash)));
    ok(a, &["-t", "2", "--remove-and-delete"]);
    assert!(row(a, "beta.bin").is_none());
    assert!(!dl.join("beta.bin").exists());
    assert_eq!(torrent_files(&state), Vec::<String>::new());

    // Added again into another folder, paused: stays stopped until started.
    let other = dir.join("other");
    ok(
        a,
        &[
            "-a",
            alpha_torrent.to_str().unwrap(),
            "-w",
            other.to_str().unwrap(),
            "-S",
        ],
    );
    let paused = wait_row(
        &d,
        "alpha.bin",
        "the paused torrent is not listed stopped",
        |r| r.contains("Stopped"),
    );
    assert!(paused.trim_start().starts_with("3 "), "{paused}");
    assert_eq!(
        torrent(a, 3, &["downloadDir"]).unwrap()["downloadDir"],
        json!(other.to_str().unwrap())
    );
    ok(a, &["-t", "3", "-s"]);
    wait_row(
        &d,
        "alpha.bin",
        "the started torrent never completes",
        |r| r.contains("100%") && !r.contains("Stopped"),
    );
    assert_eq!(std::fs::read(other.join("alpha.bin")).unwrap(), alpha);

    // What the session cannot do is refused with a reason.
    let (success, text) = remote(a, &["-t", "3", "--tracker-add", "http://127.0.0.1:1/a"]);
    assert!(!success && text.contains("trackers"), "{text}");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_limits_and_their_restart() {
    if !have_transmission_remote() {
        return;
    }
    let dir = scratch("tr-options");
    let (_tracker, url) = start_tracker(&dir);
    let multi = dir.join("seed/multi");
    std::fs::create_dir_all(&multi).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let data: Vec<Vec<u8>> = (0..3)
        .map(|_| (0..1 << 20).map(|_| rng.u8(..)).collect())
        .collect();
    for (name, bytes) in ["a.bin", "b.bin", "c.bin"].iter().zip(&data) {
        std::fs::write(multi.join(name), bytes).unwrap();
    }
    let torrent_path = dir.join("multi.torrent");
    let out = std::process::Command::new(BIN)
        .arg("create")
        .arg(&multi)
        .args(["-l", "65536", "-a", &url, "--no-date", "-o"])
        .arg(&torrent_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _seeder = start_seeder(&dir, &[&torrent_path], "100M");
    let (state, dl) = (dir.join("state"), dir.join("dl"));
    let mut d = start_daemon(&dir, &state, &dl, "daemon.log", &[]);
    let a = d.rpc;

    // Added paused, b.bin left out, then started: it finishes without b.bin.
    ok(a, &["-a", torrent_path.to_str().unwrap(), "-S"]);
    ok(a, &["-t", "1", "-G", "1"]);
    ok(a, &["-t", "1", "-s"]);
    wait_row(&d, "multi", "multi never shows 100%", |r| {
        r.contains("100%")
    });
    let t = torrent(
        a,
        1,
        &["wanted", "sizeWhenDone", "leftUntilDone", "fileStats"],
    )
    .unwrap();
    assert_eq!(t["wanted"], json!([1, 0, 1]), "{t}");
    assert_eq!(t["sizeWhenDone"], json!(2 << 20), "{t}");
    assert_eq!(t["leftUntilDone"], json!(0), "{t}");
    assert_eq!(t["fileStats"][1]["bytesCompleted"], json!(0), "{t}");
    let dl_multi = dl.join("multi");
    assert_eq!(std::fs::read(dl_multi.join("a.bin")).unwrap(), data[0]);
    assert_eq!(std::fs::read(dl_multi.join("c.bin")).unwrap(), data[2]);
    assert_ne!(
        std::fs::read(dl_multi.join("b.bin")).ok().as_ref(),
        Some(&data[1])
    );
    let files = ok(a, &["-t", "1", "-f"]);
    assert!(
        files
            .lines()
            .any(|l| l.contains(" No ") && l.ends_with("b.bin")),
        "{files}"
    );

    // Session limits, a torrent's own limit and a file priority.
    ok(a, &["-d", "500", "-u", "300"]);
    ok(a, &["-t", "1", "-d", "100", "-ph", "2"]);
    let check = |a: SocketAddr| {
        let s = rpc(a, "session-get", json!({}));
        assert_eq!(s["speed-limit-down"], 500, "{s}");
        assert_eq!(s["speed-limit-down-enabled"], true, "{s}");
        assert_eq!(s["speed-limit-up"], 300, "{s}");
        assert_eq!(s["speed-limit-up-enabled"], true, "{s}");
        let t = torrent(
            a,
            1,
            &[
                "downloadLimit",
                "downloadLimited",
                "uploadLimited",
                "wanted",
                "priorities",
            ],
        )
        .unwrap();
        assert_eq!(t["downloadLimit"], 100, "{t}");
        assert_eq!(t["downloadLimited"], true, "{t}");
        assert_eq!(t["uploadLimited"], false, "{t}");
        assert_eq!(t["wanted"], json!([1, 0, 1]), "{t}");
        assert_eq!(t["priorities"], json!([0, 0, 1]), "{t}");
    };
    check(a);
    let info = ok(a, &["-t", "1", "-i"]);
    assert!(info.contains("Download Limit: 100 kB/s"), "{info}");
    let session = ok(a, &["-si"]);
    assert!(session.contains("500 kB/s"), "{session}");

    // A restart keeps them all.
    assert!(d.proc.terminate(Duration::from_secs(20)));
    drop(d);
    d = start_daemon(&dir, &state, &dl, "daemon2.log", &[]);
    check(d.rpc);
    wait_row(
        &d,
        "multi",
        "multi is not complete after the restart",
        |r| r.contains("100%"),
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_download_queue_runs_one_torrent_at_a_time() {
    if !have_transmission_remote() {
        return;
    }
    let dir = scratch("tr-queue");
    let (_tracker, url) = start_tracker(&dir);
    let (first, first_torrent) = make_torrent(&dir, "first.bin", 3 << 20, &url);
    let (second, second_torrent) = make_torrent(&dir, "second.bin", 3 << 20, &url);
    let _seeder = start_seeder(&dir, &[&first_torrent, &second_torrent], "600K");
    let (state, dl) = (dir.join("state"), dir.join("dl"));
    let d = start_daemon(&dir, &state, &dl, "daemon.log", &["--max-active", "1"]);
    let a = d.rpc;
    let s = rpc(
        a,
        "session-get",
        json!({"fields": ["download-queue-size", "download-queue-enabled"]}),
    );
    assert_eq!(
        s,
        json!({"download-queue-size": 1, "download-queue-enabled": true})
    );
    ok(a, &["-a", first_torrent.to_str().unwrap()]);
    wait_for(
        Duration::from_secs(20),
        "the first torrent does not download",
        || d.proc.log(),
        || (status(&d, 1) == 4).then_some(()),
    );
    ok(a, &["-a", second_torrent.to_str().unwrap()]);
    // The second waits (status 3) while the first downloads.
    wait_for(
        Duration::from_secs(20),
        "the second torrent is not queued",
        || format!("{}\n{}", ok(a, &["-l"]), d.proc.log()),
        || (status(&d, 2) == 3).then_some(()),
    );
    let listing = ok(a, &["-l"]);
    assert!(status(&d, 1) == 4 || status(&d, 1) == 6, "{listing}");
    // Once the first is done, the second runs and finishes.
    wait_row(&d, "first.bin", "the first never completes", |r| {
        r.contains("100%")
    });
    wait_row(&d, "second.bin", "the second never completes", |r| {
        r.contains("100%")
    });
    assert_eq!(std::fs::read(dl.join("first.bin")).unwrap(), first);
    assert_eq!(std::fs::read(dl.join("second.bin")).unwrap(), second);
    // The queue can be changed over RPC.
    rpc(
        a,
        "session-set",
        json!({"download-queue-size": 3, "download-queue-enabled": false}),
    );
    let s = rpc(
        a,
        "session-get",
        json!({"fields": ["download-queue-size", "download-queue-enabled"]}),
    );
    assert_eq!(
        s,
        json!({"download-queue-size": 3, "download-queue-enabled": false})
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn transmission_remote_with_a_password() {
    if !have_transmission_remote() {
        return;
    }
    let dir = scratch("tr-auth");
    let d = start_daemon(
        &dir,
        &dir.join("state"),
        &dir.join("dl"),
        "daemon.log",
        &["--rpc-auth", "me:s3cret"],
    );
    let listing = ok(d.rpc, &["-n", "me:s3cret", "-l"]);
    assert!(listing.contains("Sum:"), "{listing}");
    let (success, text) = remote(d.rpc, &["-l"]);
    assert!(!success, "{text}");
    let (success, text) = remote(d.rpc, &["-n", "me:wrong", "-l"]);
    assert!(!success, "{text}");
    // --exit (session-close) is answered, then the daemon stops by itself.
    let mut d = d;
    let text = ok(d.rpc, &["-n", "me:s3cret", "--exit"]);
    assert!(text.contains("success"), "{text}");
    let exited = wait_for(
        Duration::from_secs(20),
        "the daemon does not stop after session-close",
        || std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default(),
        || d.proc.child.try_wait().unwrap(),
    );
    assert!(exited.success(), "{}", d.proc.log());
    assert!(d.proc.log().contains("stopping: saving state"));
    let _ = std::fs::remove_dir_all(&dir);
}
