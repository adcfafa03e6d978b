//! Our peer engine against the real clients on a private network of namespaces
//! (tests/support/netns.rs): our tracker runs on host 1, the seeder on host 2 and the
//! downloader on host 3, and they find each other only through the tracker. Our `seed` and
//! `download` meet Transmission 3.00, aria2 and libtorrent in both directions, each on three
//! torrents: a multi-file one (odd file sizes, an empty file, a file in a subfolder, 48 KiB
//! pieces, a short last piece), a single-file one (80 KiB pieces, a short last piece), and
//! a 64 MiB one (256 KiB pieces), big enough to show a transfer that stalls. The
//! downloaded bytes must equal the originals, and our log must show no protocol violation
//! by the other client. Downloading from Transmission and libtorrent, ours must also
//! negotiate the fast extension (BEP 6) and hear their "have all".
//!
//! Needs root, iproute2, transmission-cli, aria2 and python3-libtorrent (see .ci/run);
//! with BATTORRENT_SKIP_INTEROP=1 a test whose requirements are missing is skipped.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/netns.rs"]
mod netns;

use clients::{missing, Client, Run, BIN, READY, TRACKER, TRACKER_PORT};
use netns::Network;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `multi/`: a.bin, empty.txt (0 bytes), sub/b.bin, z.dat; 48 KiB pieces.
    Multi,
    /// `single.bin`; 80 KiB pieces.
    Single,
    /// `large.bin`, 64 MiB in 256 KiB pieces: big enough to show stalls (a client that
    /// queues thousands of requests, a request dropped without a word).
    Large,
}

// --- ours seeds, they download -------------------------------------------------------

#[test]
fn ours_seeds_multi_file_to_transmission() {
    exchange(Client::Ours, Client::Transmission, Shape::Multi);
}

#[test]
fn ours_seeds_single_file_to_transmission() {
    exchange(Client::Ours, Client::Transmission, Shape::Single);
}

#[test]
fn ours_seeds_multi_file_to_aria2() {
    exchange(Client::Ours, Client::Aria2, Shape::Multi);
}

#[test]
fn ours_seeds_single_file_to_aria2() {
    exchange(Client::Ours, Client::Aria2, Shape::Single);
}

#[test]
fn ours_seeds_multi_file_to_libtorrent() {
    exchange(Client::Ours, Client::Libtorrent, Shape::Multi);
}

#[test]
fn ours_seeds_single_file_to_libtorrent() {
    exchange(Client::Ours, Client::Libtorrent, Shape::Single);
}

#[test]
fn ours_seeds_64_mib_to_transmission() {
    exchange(Client::Ours, Client::Transmission, Shape::Large);
}

#[test]
fn ours_seeds_64_mib_to_aria2() {
    exchange(Client::Ours, Client::Aria2, Shape::Large);
}

#[test]
fn ours_seeds_64_mib_to_libtorrent() {
    exchange(Client::Ours, Client::Libtorrent, Shape::Large);
}

// --- they seed, ours downloads -------------------------------------------------------

#[test]
fn transmission_seeds_64_mib_to_ours() {
    exchange(Client::Transmission, Client::Ours, Shape::Large);
}

#[test]
fn aria2_seeds_64_mib_to_ours() {
    exchange(Client::Aria2, Client::Ours, Shape::Large);
}

#[test]
fn libtorrent_seeds_64_mib_to_ours() {
    exchange(Client::Libtorrent, Client::Ours, Shape::Large);
}

#[test]
fn transmission_seeds_multi_file_to_ours() {
    exchange(Client::Transmission, Client::Ours, Shape::Multi);
}

#[test]
fn transmission_seeds_single_file_to_ours() {
    exchange(Client::Transmission, Client::Ours, Shape::Single);
}

#[test]
fn aria2_seeds_multi_file_to_ours() {
    exchange(Client::Aria2, Client::Ours, Shape::Multi);
}

#[test]
fn aria2_seeds_single_file_to_ours() {
    exchange(Client::Aria2, Client::Ours, Shape::Single);
}

#[test]
fn libtorrent_seeds_multi_file_to_ours() {
    exchange(Client::Libtorrent, Client::Ours, Shape::Multi);
}

#[test]
fn libtorrent_seeds_single_file_to_ours() {
    exchange(Client::Libtorrent, Client::Ours, Shape::Single);
}

// --- the fast extension (BEP 6) --------------------------------------------------------

#[test]
fn fast_extension_with_a_transmission_seed() {
    fast_extension_with(Client::Transmission);
}

#[test]
fn fast_extension_with_a_libtorrent_seed() {
    fast_extension_with(Client::Libtorrent);
}

/// Ours downloads from `seeder`: the fast extension is negotiated (both handshakes set the
/// bit) and the seed says "have all" instead of a bitfield, as our `--json` summary counts.
fn fast_extension_with(seeder: Client) {
    let Some(summary) = exchange(seeder, Client::Ours, Shape::Single) else {
        return;
    };
    let stats = &summary["torrents"][0]["stats"];
    let count = |key: &str| stats[key].as_u64().unwrap_or(0);
    assert!(
        count("fast_peers") >= 1 && count("have_all_received") >= 1,
        "{seeder:?} and ours did not use the fast extension: {stats}"
    );
}

/// `seeder` on host 2 has the data; `leecher` on host 3 downloads it; both learn of each
/// other from our tracker on host 1. Returns our `--json` summary when ours downloads
/// (`None` when skipped or another client downloads).
fn exchange(seeder: Client, leecher: Client, shape: Shape) -> Option<serde_json::Value> {
    let net = network_for(&[seeder, leecher])?;
    let scratch = Scratch::new();
    let data = Dataset::new(shape);
    let seed_dir = scratch.0.join("seed");
    data.write(&seed_dir);
    let torrent = scratch.0.join(format!("{}.torrent", data.name));
    let announce = format!("http://{}:{TRACKER_PORT}/announce", net.addr(TRACKER));
    let created = Command::new(BIN)
        .args(["create", "--no-date", "-a", &announce, "-l"])
        .arg(data.piece_length.to_string())
        .arg("-o")
        .arg(&torrent)
        .arg(seed_dir.join(data.name))
        .output()
        .expect("run battorrent create");
    assert!(
        created.status.success(),
        "battorrent create failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let info_hash = info_hash(&torrent);

    let mut run = Run::new(&net, &scratch.0, &torrent);
    run.start_tracker();
    run.start_seeder(seeder, &seed_dir);
    run.wait_until("the tracker to list the seeder as complete", READY, |run| {
        run.scrape_complete(&info_hash).filter(|&n| n > 0)
    });
    let dl_dir = scratch.0.join("download");
    std::fs::create_dir_all(&dl_dir).unwrap();
    // Transmission 3.00 never creates zero-length files (transmission/transmission#417,
    // fixed in 4.x); the others must.
    let transmission = leecher == Client::Transmission;
    let summary = run.download(leecher, &dl_dir, data.total(), || {
        data.compare(&dl_dir, transmission).is_ok()
    });
    if let Err(e) = data.compare(&dl_dir, transmission) {
        run.fail(&format!("{leecher:?} downloaded wrong data: {e}"));
    }
    run.check_our_log();
    summary
}

/// The namespace network, once every tool the clients need is found; None when skipped.
fn network_for(clients: &[Client]) -> Option<Network> {
    for client in clients {
        if let Some(reason) = missing(*client) {
            if skip(&reason) {
                return None;
            }
        }
    }
    match Network::new(3) {
        Ok(net) => Some(net),
        Err(e) => {
            skip(&format!(
                "cannot build the namespace network (needs root and iproute2): {e}"
            ));
            None
        }
    }
}

/// Returns true (after saying why) when skipping is allowed; fails the test otherwise.
fn skip(reason: &str) -> bool {
    if std::env::var_os("BATTORRENT_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!("skipped: {reason}");
        return true;
    }
    panic!("{reason} (set BATTORRENT_SKIP_INTEROP=1 to skip)");
}

fn info_hash(torrent: &Path) -> [u8; 20] {
    let out = Command::new(BIN)
        .args(["show", "--json"])
        .arg(torrent)
        .output()
        .expect("run battorrent show");
    assert!(out.status.success(), "battorrent show failed");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("show --json");
    let hex = json["info_hash"]
        .as_str()
        .expect("info_hash in show --json");
    let mut hash = [0u8; 20];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex info hash");
    }
    hash
}

/// A temporary folder, deleted when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "battorrent-peer-interop-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A torrent's content: files (paths start with the torrent's name) and piece length.
struct Dataset {
    name: &'static str,
    piece_length: u64,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Dataset {
    fn new(shape: Shape) -> Dataset {
        let bytes = |len: usize, seed: u32| -> Vec<u8> {
            (0..len as u32)
                .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect()
        };
        match shape {
            // 3,012,347 bytes: 62 pieces of 49,152, the last one 14,075 bytes.
            Shape::Multi => Dataset {
                name: "multi",
                piece_length: 49_152,
                files: vec![
                    ("multi/a.bin".into(), bytes(1_000_003, 1)),
                    ("multi/empty.txt".into(), Vec::new()),
                    ("multi/sub/b.bin".into(), bytes(777_777, 2)),
                    ("multi/z.dat".into(), bytes(1_234_567, 3)),
                ],
            },
            // 67,108,864 bytes: 256 pieces of 262,144.
            Shape::Large => Dataset {
                name: "large.bin",
                piece_length: 262_144,
                files: vec![("large.bin".into(), bytes(64 << 20, 5))],
            },
            // 2,500,001 bytes: 31 pieces of 81,920, the last one 42,401 bytes.
            Shape::Single => Dataset {
                name: "single.bin",
                piece_length: 81_920,
                files: vec![("single.bin".into(), bytes(2_500_001, 4))],
            },
        }
    }

    fn total(&self) -> u64 {
        self.files.iter().map(|(_, b)| b.len() as u64).sum()
    }

    fn write(&self, dir: &Path) {
        for (path, bytes) in &self.files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }

    /// Checks every file under `dir` byte for byte; says what is wrong otherwise.
    fn compare(&self, dir: &Path, empty_may_be_missing: bool) -> Result<(), String> {
        for (path, want) in &self.files {
            let got = match std::fs::read(dir.join(path)) {
                Ok(got) => got,
                Err(_) if want.is_empty() && empty_may_be_missing => continue,
                Err(e) => return Err(format!("{}: {e}", path.display())),
            };
            if got.len() != want.len() {
                return Err(format!(
                    "{}: {} bytes, expected {}",
                    path.display(),
                    got.len(),
                    want.len()
                ));
            }
            if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
                return Err(format!("{}: differs at byte {at}", path.display()));
            }
        }
        Ok(())
    }
}
