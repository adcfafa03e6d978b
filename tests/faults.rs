//! Faults a download must survive, with our `battorrent` binary as every honest peer on
//! loopback addresses (127.0.0.x):
//! - a peer that serves corrupt blocks next to an honest seeder;
//! - `kill -9` half way, then a rerun that resumes;
//! - the only seeder leaving half way, and another arriving later.

use battorrent::metainfo::InfoHash;
use battorrent::wire::{decode, Handshake, Message, HANDSHAKE_LEN};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_battorrent");
const PIECE: usize = 64 * 1024;

/// A child process killed (by process id) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("battorrent-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `size` pseudo-random bytes to `dir/payload.bin` and makes a torrent of them
/// (announcing to `tracker` if given). Returns the data and the .torrent path.
fn make_torrent(dir: &Path, size: usize, tracker: Option<&str>) -> (Vec<u8>, PathBuf) {
    let mut rng = fastrand::Rng::with_seed(size as u64);
    let data: Vec<u8> = (0..size).map(|_| rng.u8(..)).collect();
    let seed = dir.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(seed.join("payload.bin"), &data).unwrap();
    let torrent = dir.join("payload.torrent");
    let mut create = Command::new(BIN);
    create.arg("create").arg(seed.join("payload.bin"));
    create.args(["-l", &PIECE.to_string(), "-o"]).arg(&torrent);
    if let Some(url) = tracker {
        create.args(["-a", url]);
    }
    let out = create.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (data, torrent)
}

/// `battorrent download TORRENT --dir DL` on 127.0.0.1, any port, JSON summary, with
/// `extra` options (peers, verbosity).
fn download_args(torrent: &Path, dl: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "download",
        "--no-dht",
        torrent.to_str().unwrap(),
        "--dir",
        dl.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--json",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts `battorrent ARGS...` with stderr to `log`.
fn start<S: AsRef<std::ffi::OsStr>>(args: &[S], log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc(
        Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Waits for a process to exit; returns its status and stdout.
fn finish(mut p: Proc, timeout: Duration, log: &Path) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            let mut out = String::new();
            p.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            assert!(status.success(), "exit {status}; log:\n{log}");
            return serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{log}"));
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("still running after {timeout:?}; log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until something accepts connections on `addr`.
fn wait_listening(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stat(summary: &Value, field: &str) -> u64 {
    summary["torrents"][0]["stats"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no stats.{field} in {summary}"))
}

/// Starts our seeder of `dir/seed` on a free port of 127.0.0.2, uploading at most `limit`
/// bytes a second, and waits until it listens. Returns it and its address.
fn start_seeder(dir: &Path, torrent: &Path, limit: &str) -> (Proc, String) {
    start_seeder_with(dir, torrent, &["--upload-limit", limit])
}

/// [`start_seeder`] with other options.
fn start_seeder_with(dir: &Path, torrent: &Path, options: &[&str]) -> (Proc, String) {
    let port = free_port("127.0.0.2").to_string();
    let seed_dir = dir.join("seed");
    let mut args = vec![
        "seed",
        "--no-dht",
        torrent.to_str().unwrap(),
        "--dir",
        seed_dir.to_str().unwrap(),
        "--bind",
        "127.0.0.2",
        "--port",
        &port,
    ];
    args.extend_from_slice(options);
    let seeder = start(&args, &dir.join("seed.log"));
    let addr = format!("127.0.0.2:{port}");
    wait_listening(&addr);
    (seeder, addr)
}

/// Waits until `file` holds at least `bytes` bytes; fails with `what` after 30 s.
fn wait_for_size(file: &Path, bytes: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(file).map_or(0, |m| m.len()) < bytes as u64 {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A peer that has every piece, unchokes everyone and answers every request at once with
/// garbage. Returns its address and the number of blocks it served.
fn corrupt_peer(
    info_hash: InfoHash,
    pieces: usize,
) -> (SocketAddr, Arc<AtomicU64>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.3:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (served2, stop2) = (served.clone(), stop.clone());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let served = served2.clone();
            std::thread::spawn(move || {
                let _ = s.set_nonblocking(false);
                let mut hs = [0u8; HANDSHAKE_LEN];
                if s.read_exact(&mut hs).is_err() {
                    return;
                }
                let mut out = Handshake::new(info_hash, *b"-XX0001-corruptcorru")
                    .encode()
                    .to_vec();
                let mut bits = vec![0xffu8; pieces.div_ceil(8)];
                if pieces % 8 != 0 {
                    *bits.last_mut().unwrap() = 0xff << (8 - pieces % 8);
                }
                Message::Bitfield(&bits).encode(&mut out);
                Message::Unchoke.encode(&mut out);
                if s.write_all(&out).is_err() {
                    return;
                }
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                let junk = vec![0x5au8; 16384];
                loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let mut pos = 0;
                    let mut reply = Vec::new();
                    while let Ok(Some((m, used))) = decode(&buf[pos..], 1 << 20) {
                        if let Message::Request { piece, offset, len } = m {
                            Message::Piece {
                                piece,
                                offset,
                                data: &junk[..len as usize],
                            }
                            .encode(&mut reply);
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        pos += used;
                    }
                    buf.drain(..pos);
                    if s.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, served, stop)
}

#[test]
fn a_corrupt_peer_is_banned_and_the_download_still_completes() {
    let dir = scratch("corrupt");
    let (data, torrent) = make_torrent(&dir, 4 << 20, None);
    let meta = battorrent::metainfo::Metainfo::load(&torrent).unwrap();
    let (bad, served, stop) = corrupt_peer(meta.info_hash, meta.info.piece_count());
    // The honest seeder is slower than the corrupt peer, so the corrupt one gets blocks.
    let (_seeder, seed_addr) = start_seeder(&dir, &torrent, "2M");
    let dl = dir.join("dl");
    let log = dir.join("dl.log");
    let bad = bad.to_string();
    let args = download_args(&torrent, &dl, &["--peer", &bad, "--peer", &seed_addr, "-v"]);
    let leecher = start(&args, &log);
    let summary = finish(leecher, Duration::from_secs(60), &log);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(std::fs::read(dl.join("payload.bin")).unwrap(), data);
    assert!(
        served.load(Ordering::Relaxed) > 0,
        "the corrupt peer was never asked for data"
    );
    assert!(stat(&summary, "hash_failures") >= 1, "{summary}");
    assert_eq!(stat(&summary, "banned"), 1, "{summary}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains(&format!("banning {bad}")), "{log}");
    assert!(
        !log.contains("banning 127.0.0.2"),
        "the honest seeder was banned:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_download_killed_half_way_resumes_without_fetching_verified_pieces_again() {
    let dir = scratch("resume");
    let size = 8 << 20;
    let (data, torrent) = make_torrent(&dir, size, None);
    let (_seeder, seed_addr) = start_seeder(&dir, &torrent, "4M");
    let dl = dir.join("dl");
    let args = download_args(&torrent, &dl, &["--peer", &seed_addr]);
    let first = start(&args, &dir.join("first.log"));
    // Let about half arrive (4 MiB/s for 8 MiB), then kill -9.
    let file = dl.join("payload.bin");
    wait_for_size(&file, size / 3, "the first run made no progress");
    drop(first); // SIGKILL, then reaped

    let log = dir.join("second.log");
    let second = start(&args, &log);
    let summary = finish(second, Duration::from_secs(60), &log);
    assert_eq!(std::fs::read(&file).unwrap(), data);
    let text = std::fs::read_to_string(&log).unwrap();
    let had: usize = text
        .split("resuming: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume line in:\n{text}"));
    let pieces = size / PIECE;
    assert!(had > 0 && had < pieces, "had {had} of {pieces}");
    // Only the missing pieces were fetched (one peer: no endgame duplicates).
    let fetched = stat(&summary, "downloaded");
    assert_eq!(fetched, ((pieces - had) * PIECE) as u64, "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_only_seeder_leaves_and_a_later_one_finishes_the_download() {
    let dir = scratch("reseed");
    let tracker_port = free_port("127.0.0.1");
    let announce = format!("http://127.0.0.1:{tracker_port}/announce");
    let size = 8 << 20;
    let (data, torrent) = make_torrent(&dir, size, Some(&announce));
    let t = torrent.to_str().unwrap();
    let _tracker = start(
        &[
            "tracker",
            "--bind",
            &format!("127.0.0.1:{tracker_port}"),
            "--interval",
            "2",
        ],
        &dir.join("tracker.log"),
    );
    wait_listening(&format!("127.0.0.1:{tracker_port}"));
    let seed_dir = dir.join("seed");
    let first_seeder = start(
        &[
            "seed",
            "--no-dht",
            t,
            "--dir",
            seed_dir.to_str().unwrap(),
            "--bind",
            "127.0.0.2",
            "--port",
            "0",
            "--upload-limit",
            "2M",
        ],
        &dir.join("seed1.log"),
    );
    let dl = dir.join("dl");
    let log = dir.join("dl.log");
    let leecher = start(&download_args(&torrent, &dl, &["-v"]), &log);
    let file = dl.join("payload.bin");
    wait_for_size(&file, size / 4, "no progress from the first seeder");
    drop(first_seeder);
    std::thread::sleep(Duration::from_secs(1));
    // The second seeder has its own copy of the data.
    let seed2 = dir.join("seed2");
    std::fs::create_dir_all(&seed2).unwrap();
    std::fs::copy(seed_dir.join("payload.bin"), seed2.join("payload.bin")).unwrap();
    let _second_seeder = start(
        &[
            "seed",
            "--no-dht",
            t,
            "--dir",
            seed2.to_str().unwrap(),
            "--bind",
            "127.0.0.3",
            "--port",
            "0",
        ],
        &dir.join("seed2.log"),
    );
    let summary = finish(leecher, Duration::from_secs(60), &log);
    assert!(summary["complete"].as_bool().unwrap());
    assert_eq!(std::fs::read(&file).unwrap(), data);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_longer_file_already_in_place_is_cut_so_download_and_verify_agree() {
    let dir = scratch("longer");
    let size = 1 << 20;
    let (data, torrent) = make_torrent(&dir, size, None);
    let dl = dir.join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    let mut longer = data.clone();
    longer.extend_from_slice(b"trailing bytes the torrent does not have");
    std::fs::write(dl.join("payload.bin"), &longer).unwrap();
    let t = torrent.to_str().unwrap();
    let d = dl.to_str().unwrap();
    let log = dir.join("download.log");
    let args = download_args(&torrent, &dl, &[]);
    let summary = finish(start(&args, &log), Duration::from_secs(30), &log);
    assert_eq!(summary["complete"], true, "{summary}");
    let on_disk = std::fs::read(dl.join("payload.bin")).unwrap();
    assert!(
        on_disk == data,
        "{} bytes on disk, {} in the torrent",
        on_disk.len(),
        data.len()
    );
    let verify = Command::new(BIN)
        .args(["verify", t, "--dir", d])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connections_that_only_idle_cannot_lock_an_honest_peer_out() {
    // A seeder with 8 slots; 8 connections handshake and then say nothing.
    let dir = scratch("idle");
    let (data, torrent) = make_torrent(&dir, 4 << 20, None);
    let meta = battorrent::metainfo::Metainfo::load(&torrent).unwrap();
    let (_seeder, seed_addr) = start_seeder_with(&dir, &torrent, &["--max-peers", "8"]);
    let idle: Vec<TcpStream> = (0..8u8)
        .map(|i| {
            let mut s = TcpStream::connect(&seed_addr).unwrap();
            let mut id = *b"-XX0001-idleidleidle";
            id[19] = i;
            s.write_all(&Handshake::new(meta.info_hash, id).encode())
                .unwrap();
            let mut answer = [0u8; HANDSHAKE_LEN];
            s.read_exact(&mut answer).expect("a slot was free");
            s
        })
        .collect();
    // Past the newcomers' grace period, an honest downloader arrives.
    std::thread::sleep(Duration::from_secs(11));
    let dl = dir.join("dl");
    let log = dir.join("dl.log");
    let started = Instant::now();
    let leecher = start(&download_args(&torrent, &dl, &["--peer", &seed_addr]), &log);
    let summary = finish(leecher, Duration::from_secs(30), &log);
    eprintln!(
        "honest download with every slot idle-held: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(summary["complete"], true, "{summary}");
    assert!(std::fs::read(dl.join("payload.bin")).unwrap() == data);
    drop(idle);
    let _ = std::fs::remove_dir_all(&dir);
}
