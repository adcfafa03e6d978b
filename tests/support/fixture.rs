//! What an interop scenario is made of: a scratch folder, a generated dataset and a torrent
//! of it made by ours, and the namespace network (or a skip when the tools are missing and
//! BATTORRENT_SKIP_INTEROP=1).

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use crate::clients::{Client, BIN};
use crate::netns::Network;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The namespace network with `hosts` hosts, once every tool the clients need is found;
/// None when skipped.
pub fn network_for(clients: &[Client], hosts: usize) -> Option<Network> {
    for client in clients {
        if let Some(reason) = missing(*client) {
            if skip(&reason) {
                return None;
            }
        }
    }
    match Network::new(hosts) {
        Ok(net) => Some(net),
        Err(e) => {
            skip(&format!(
                "cannot build the namespace network (needs root and iproute2): {e}"
            ));
            None
        }
    }
}

/// Why `client` cannot run here, if it cannot.
pub fn missing(client: Client) -> Option<String> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    match client {
        Client::Ours => None,
        Client::Transmission => (!works("transmission-cli", &["--version"]))
            .then(|| "transmission-cli is not installed (apt-get install transmission-cli)".into()),
        Client::Aria2 => (!works("aria2c", &["--version"]))
            .then(|| "aria2c is not installed (apt-get install aria2)".into()),
        Client::Libtorrent => {
            (!works("/usr/bin/python3", &["-c", "import libtorrent"])).then(|| {
                "/usr/bin/python3 cannot import libtorrent (apt-get install python3-libtorrent)"
                    .into()
            })
        }
    }
}

/// Returns true (after saying why) when skipping is allowed; fails the test otherwise.
pub fn skip(reason: &str) -> bool {
    if std::env::var_os("BATTORRENT_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!("skipped: {reason}");
        return true;
    }
    panic!("{reason} (set BATTORRENT_SKIP_INTEROP=1 to skip)");
}

/// Runs `battorrent ARGS` to completion and returns its stdout; fails the test otherwise.
pub fn ours<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let out = Command::new(BIN)
        .args(&args)
        .output()
        .expect("run battorrent");
    assert!(
        out.status.success(),
        "battorrent {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("battorrent prints UTF-8")
}

/// Makes `torrent` of `data` (written under `dir`) with `battorrent create`, announcing to
/// `announce` when given.
pub fn create_torrent(data: &Dataset, dir: &Path, announce: Option<&str>, torrent: &Path) {
    let mut args: Vec<OsString> = vec!["create".into(), "--no-date".into()];
    if let Some(url) = announce {
        args.extend(["-a".into(), url.into()]);
    }
    args.extend([
        "-l".into(),
        data.piece_length.to_string().into(),
        "-o".into(),
    ]);
    args.extend([torrent.into(), dir.join(data.name).into()]);
    ours(args);
}

/// The magnet tests' torrent: `set/` (64 MiB in 40 files) written under `SCRATCH/seed`,
/// and `SCRATCH/set.torrent` announcing to the tracker on host `tracker`. Returns the data,
/// the seed folder and the torrent's path.
pub fn tracked_set(
    net: &Network,
    scratch: &Scratch,
    tracker: usize,
) -> (Dataset, PathBuf, PathBuf) {
    let data = Dataset::new(Shape::ManyFiles);
    let seed_dir = scratch.0.join("seed");
    data.write(&seed_dir);
    let torrent = scratch.0.join("set.torrent");
    let announce = format!(
        "http://{}:{}/announce",
        net.addr(tracker),
        crate::clients::TRACKER_PORT
    );
    create_torrent(&data, &seed_dir, Some(&announce), &torrent);
    (data, seed_dir, torrent)
}

/// The magnet link `battorrent magnet` prints for `torrent`.
pub fn magnet(torrent: &Path) -> String {
    ours([OsStr::new("magnet"), torrent.as_os_str()])
        .trim()
        .to_string()
}

/// The info hash of `torrent`, from `battorrent show --json`.
pub fn info_hash(torrent: &Path) -> [u8; 20] {
    let out = ours([
        OsStr::new("show"),
        OsStr::new("--json"),
        torrent.as_os_str(),
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("show --json");
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
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "battorrent-interop-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    /// Deletes the folder, unless BATTORRENT_KEEP_SCRATCH=1 (then says where it is, for
    /// reading the clients' logs).
    fn drop(&mut self) {
        if std::env::var_os("BATTORRENT_KEEP_SCRATCH").is_some_and(|v| v == "1") {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// `multi/`: a.bin, empty.txt (0 bytes), sub/b.bin, z.dat; 48 KiB pieces.
    Multi,
    /// `single.bin`; 80 KiB pieces.
    Single,
    /// `large.bin`, 64 MiB in 256 KiB pieces: big enough to show stalls (a client that
    /// queues thousands of requests, a request dropped without a word).
    Large,
    /// `set/`: 64 MiB in 40 files and 4,096 pieces of 16 KiB, so the info dictionary (82 KiB)
    /// spans six 16 KiB metadata pieces (BEP 9), the last one short.
    ManyFiles,
}

/// A torrent's content: files (paths start with the torrent's name) and piece length.
pub struct Dataset {
    pub name: &'static str,
    pub piece_length: u64,
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

impl Dataset {
    pub fn new(shape: Shape) -> Dataset {
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
            // 67,108,864 bytes: 40 files of 1,677,721 or 1,677,722 bytes (most of them
            // cross piece boundaries), 4,096 pieces of 16,384.
            Shape::ManyFiles => Dataset {
                name: "set",
                piece_length: 16_384,
                files: (0..40u32)
                    .map(|i| {
                        let len = (64 << 20) * (i as usize + 1) / 40 - (64 << 20) * i as usize / 40;
                        (format!("set/part-{i:02}.bin").into(), bytes(len, 100 + i))
                    })
                    .collect(),
            },
        }
    }

    pub fn total(&self) -> u64 {
        self.files.iter().map(|(_, b)| b.len() as u64).sum()
    }

    pub fn write(&self, dir: &Path) {
        for (path, bytes) in &self.files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }

    /// Checks every file under `dir` byte for byte; says what is wrong otherwise.
    pub fn compare(&self, dir: &Path, empty_may_be_missing: bool) -> Result<(), String> {
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
