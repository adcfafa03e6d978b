//! Our client announces to UDP trackers (BEP 15) from the session's one UDP socket: to a
//! scripted tracker that checks every field, and to opentracker, through which two of our
//! peers find each other and complete a transfer. Loopback only.

use battorrent::metainfo::create::{build, scan, CreateOptions};
use battorrent::metainfo::Metainfo;
use battorrent::session::{AddTorrent, Session, SessionConfig};
use battorrent::tracker::udp::packet::{self, Request};
use battorrent::tracker::Event;
use battorrent::wire::Bitfield;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("battorrent-udp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `size` bytes at `dir/name` and makes a torrent of them announcing to `tracker`
/// (the torrent and its bytes).
fn torrent(dir: &Path, name: &str, size: usize, tracker: &str) -> (Metainfo, Vec<u8>) {
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.join(name), data).unwrap();
    let input = scan(&dir.join(name), false, false).unwrap();
    let options = CreateOptions {
        piece_length: Some(64 * 1024),
        trackers: vec![vec![tracker.to_string()]],
        ..CreateOptions::default()
    };
    let built = build(&input, &options, |_| {}).unwrap();
    (built.metainfo, built.bytes)
}

/// What the scripted tracker saw: (event, port, URL data) per announce, and connects.
#[derive(Default)]
struct Seen {
    connects: usize,
    announces: Vec<(Event, u16, Vec<u8>)>,
}

/// A UDP tracker that checks connection ids and answers every announce with `peers`.
fn scripted_tracker(peers: Vec<SocketAddr>) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let connection = 0x1234_5678_9abc_def0u64;
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let mut out = Vec::new();
            match Request::parse(&buf[..n]) {
                Ok(Request::Connect { transaction }) => {
                    log.lock().unwrap().connects += 1;
                    packet::connect_reply(&mut out, transaction, connection);
                }
                Ok(Request::Announce {
                    connection: c,
                    transaction,
                    announce,
                    url_data,
                    ..
                }) if c == connection => {
                    log.lock()
                        .unwrap()
                        .announces
                        .push((announce.event, announce.port, url_data));
                    packet::announce_reply_head(&mut out, transaction, 1800, 0, 1);
                    for p in &peers {
                        if let SocketAddr::V4(v4) = p {
                            out.extend_from_slice(&v4.ip().octets());
                            out.extend_from_slice(&v4.port().to_be_bytes());
                        }
                    }
                }
                _ => continue,
            }
            let _ = socket.send_to(&out, from);
        }
    });
    (addr, seen)
}

fn config(ip: [u8; 4]) -> SessionConfig {
    SessionConfig {
        bind: SocketAddr::from((ip, 0)),
        direct_writes: false,
        ..SessionConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_finds_its_seed_through_a_udp_tracker() {
    let dir = scratch("scripted");
    let seeder = Session::start(config([127, 0, 0, 2])).await.unwrap();
    let (tracker, seen) = scripted_tracker(vec![seeder.local_addr()]);
    let url = format!("udp://{tracker}/announce?key=abc");
    let (meta, _) = torrent(&dir, "file.bin", 300_000, &url);
    let pieces = meta.info.piece_count();
    seeder
        .add(AddTorrent {
            meta: meta.clone(),
            dir: dir.clone(),
            have: Some(Bitfield::repeat(true, pieces)),
            peers: vec![],
            paused: false,
        })
        .unwrap();
    let getter = Session::start(config([127, 0, 0, 3])).await.unwrap();
    let get_dir = dir.join("get");
    let id = getter
        .add(AddTorrent {
            meta,
            dir: get_dir.clone(),
            have: Some(Bitfield::repeat(false, pieces)),
            peers: vec![],
            paused: false,
        })
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), getter.completed(id))
        .await
        .expect("the peer found through the UDP tracker serves everything");
    assert!(
        std::fs::read(get_dir.join("file.bin")).unwrap()
            == std::fs::read(dir.join("file.bin")).unwrap()
    );
    {
        let seen = seen.lock().unwrap();
        assert!(seen.connects >= 1);
        let getter_port = getter.local_addr().port();
        let started = seen
            .announces
            .iter()
            .find(|(_, port, _)| *port == getter_port)
            .expect("the getter announced");
        assert_eq!(started.0, Event::Started);
        assert_eq!(started.2, b"/announce?key=abc", "BEP 41 URL data");
    }
    getter.shutdown().await;
    seeder.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A child process killed (by process id) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_battorrent");

#[test]
fn ours_complete_transfers_through_opentracker_over_udp_from_a_torrent_and_a_magnet() {
    if Command::new("opentracker").arg("-h").output().is_err() {
        if std::env::var_os("BATTORRENT_SKIP_INTEROP").is_some() {
            eprintln!("skipped: opentracker is not installed");
            return;
        }
        panic!("opentracker is not installed (apt-get install opentracker)");
    }
    let dir = scratch("opentracker");
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("udp://127.0.0.1:{port}/announce");
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let (meta, bytes) = torrent(&seed_dir, "payload.bin", 3 << 20, &url);
    let torrent_path = dir.join("payload.torrent");
    std::fs::write(&torrent_path, bytes).unwrap();
    // Debian's opentracker serves only whitelisted hashes; it chroots to -d.
    std::fs::write(
        dir.join("whitelist"),
        format!("{}\n", meta.info_hash.to_hex()),
    )
    .unwrap();
    let _tracker = Proc(
        Command::new("opentracker")
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
            ])
            .arg("-d")
            .arg(&dir)
            .args(["-w", "whitelist"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let t = torrent_path.to_str().unwrap();
    let _seeder = Proc(
        Command::new(BIN)
            .args([
                "seed",
                "--no-dht",
                t,
                "--dir",
                seed_dir.to_str().unwrap(),
                "--bind",
                "127.0.0.2",
                "--port",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("seed.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(1));
    let get_dir = dir.join("get");
    let started = Instant::now();
    let out = Command::new("timeout")
        .args([
            "60",
            BIN,
            "download",
            "--no-dht",
            t,
            "--dir",
            get_dir.to_str().unwrap(),
            "--bind",
            "127.0.0.3",
            "--port",
            "0",
            "--json",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "download failed after {:?}: {log}",
        started.elapsed()
    );
    assert!(
        std::fs::read(get_dir.join("payload.bin")).unwrap()
            == std::fs::read(seed_dir.join("payload.bin")).unwrap()
    );
    // A magnet link whose only source of peers is the udp:// tracker: the metadata and
    // the data come from the peers it returns.
    let link = meta.magnet().to_string();
    assert!(link.contains("tr=udp://"), "{link}");
    let magnet_dir = dir.join("magnet");
    let out = Command::new("timeout")
        .args([
            "60",
            BIN,
            "download",
            "--no-dht",
            &link,
            "--dir",
            magnet_dir.to_str().unwrap(),
            "--bind",
            "127.0.0.4",
            "--port",
            "0",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "magnet download failed: {log}");
    assert!(
        std::fs::read(magnet_dir.join("payload.bin")).unwrap()
            == std::fs::read(seed_dir.join("payload.bin")).unwrap()
    );
    let saved = Metainfo::load(&magnet_dir.join("payload.bin.torrent")).unwrap();
    assert!(
        saved.info_bytes == meta.info_bytes,
        "info dictionary byte for byte"
    );
    assert_eq!(saved.trackers, vec![vec![url.clone()]]);
    let _ = std::fs::remove_dir_all(&dir);
}
