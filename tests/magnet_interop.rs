//! Standard clients fetch a torrent's metadata from our seeder (BEP 9 over BEP 10) given
//! only a magnet link, then its data. Loopback; needs python3-libtorrent (see .ci/run);
//! BATTORRENT_SKIP_INTEROP=1 skips it where that is missing.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_battorrent");

/// A child process killed (by process id) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("battorrent-magnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn libtorrent_missing() -> bool {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return false;
    }
    if std::env::var_os("BATTORRENT_SKIP_INTEROP").is_some() {
        eprintln!("skipped: python3-libtorrent is missing");
        return true;
    }
    panic!("python3-libtorrent is missing (set BATTORRENT_SKIP_INTEROP=1 to skip)");
}

#[test]
fn libtorrent_downloads_a_magnet_link_seeded_by_ours() {
    if libtorrent_missing() {
        return;
    }
    let dir = scratch("lt");
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    // 64 MiB in many files, so the info dictionary spans several metadata pieces.
    let mut rng = fastrand::Rng::with_seed(64);
    for i in 0..40 {
        let data: Vec<u8> = (0..(64 << 20) / 40).map(|_| rng.u8(..)).collect();
        std::fs::create_dir_all(seed_dir.join("set")).unwrap();
        std::fs::write(seed_dir.join(format!("set/part-{i:02}.bin")), data).unwrap();
    }
    let torrent = dir.join("set.torrent");
    let out = Command::new(BIN)
        .arg("create")
        .arg(seed_dir.join("set"))
        .args(["-l", "16384", "-o"])
        .arg(&torrent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = battorrent::metainfo::Metainfo::load(&torrent).unwrap();
    assert!(
        meta.info_bytes.len() > 3 * 16 * 1024,
        "metadata spans several pieces"
    );
    let port = TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _seeder = Proc(
        Command::new(BIN)
            .args([
                "seed",
                torrent.to_str().unwrap(),
                "--dir",
                seed_dir.to_str().unwrap(),
            ])
            .args([
                "--bind",
                "127.0.0.2",
                "--port",
                &port.to_string(),
                "--no-trackers",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("seed.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.2", port)).is_err() {
        assert!(Instant::now() < deadline, "the seeder never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=set", meta.info_hash.to_hex());
    let get = dir.join("get");
    std::fs::create_dir_all(&get).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt_magnet.py");
    let started = Instant::now();
    let out = Command::new("/usr/bin/python3")
        .args([
            script,
            &magnet,
            get.to_str().unwrap(),
            "127.0.0.3",
            "127.0.0.2",
        ])
        .args([&port.to_string(), "120"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "libtorrent failed: {log}");
    assert!(
        log.contains(&format!("metadata: {} bytes", meta.info_bytes.len())),
        "{log}"
    );
    eprintln!(
        "libtorrent: magnet to complete in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for i in 0..40 {
        let name = format!("set/part-{i:02}.bin");
        assert!(
            std::fs::read(get.join(&name)).unwrap() == std::fs::read(seed_dir.join(&name)).unwrap(),
            "{name} differs"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
