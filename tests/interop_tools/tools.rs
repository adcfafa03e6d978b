//! Running battorrent and the other tools, the BATTORRENT_SKIP_INTEROP skip logic, temp dirs
//! and the payloads the tests make torrents of.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const BATTORRENT: &str = env!("CARGO_BIN_EXE_battorrent");
const PYTHON: &str = "/usr/bin/python3";
const SKIP_ENV: &str = "BATTORRENT_SKIP_INTEROP";

pub const TRACKER_1: &str = "http://tracker-one.example/announce";
pub const TRACKER_2: &str = "http://tracker-two.example:8080/announce";
pub const TIER_A: &str = "http://tier-a.example/announce";
pub const TIER_B: &str = "udp://tier-b.example:6969/announce";
pub const WEB_SEED: &str = "http://seed.example/files/";

/// Files of the multi-file test tree: nested directories, an empty file, sizes that do not line
/// up with piece boundaries. The paths sort the same way byte-wise and component-wise, so
/// every tool that sorts puts them in the same order.
pub const TREE: &[(&str, usize)] = &[
    ("docs/readme.txt", 1_000),
    ("docs/sub/deep/notes.bin", 300_001),
    ("empty.txt", 0),
    ("media/audio.bin", 70_001),
    ("media/video.bin", 1_000_003),
    ("z.txt", 5),
];

/// Size of the file `make_single_file` writes: 3 MiB + 123 bytes.
pub const SINGLE_FILE_LEN: u64 = 3 * 1024 * 1024 + 123;

// ---------------------------------------------------------------------------------------------
// Tools and the skip logic
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
pub enum Tool {
    Mktorrent,
    TransmissionCreate,
    TransmissionShow,
    Aria2c,
    Libtorrent,
}

impl Tool {
    /// A command that exits 0 if and only if the tool is usable.
    fn probe(self) -> Command {
        let (program, args): (&str, &[&str]) = match self {
            Tool::Mktorrent => ("mktorrent", &["-h"]),
            Tool::TransmissionCreate => ("transmission-create", &["-V"]),
            Tool::TransmissionShow => ("transmission-show", &["-V"]),
            Tool::Aria2c => ("aria2c", &["--version"]),
            Tool::Libtorrent => (PYTHON, &["-c", "import libtorrent"]),
        };
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd
    }

    fn install_hint(self) -> &'static str {
        match self {
            Tool::Mktorrent => "mktorrent (apt-get install mktorrent)",
            Tool::TransmissionCreate => "transmission-create (apt-get install transmission-cli)",
            Tool::TransmissionShow => "transmission-show (apt-get install transmission-cli)",
            Tool::Aria2c => "aria2c (apt-get install aria2)",
            Tool::Libtorrent => {
                "libtorrent for /usr/bin/python3 (apt-get install python3-libtorrent)"
            }
        }
    }
}

/// True when every tool is usable. A missing tool panics with an install hint, unless
/// BATTORRENT_SKIP_INTEROP=1: then it prints a note and returns false (the test returns).
pub fn tools_available(test: &str, tools: &[Tool]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|tool| !matches!(tool.probe().output(), Ok(out) if out.status.success()))
        .map(|tool| tool.install_hint())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        eprintln!(
            "note: {test} skipped ({SKIP_ENV}=1); missing: {}",
            missing.join(", ")
        );
        return false;
    }
    panic!(
        "{test}: interop tools missing: {}. Install them, or set {SKIP_ENV}=1 to skip.",
        missing.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------------------------

/// Runs `cmd`, returns its stdout; panics with the command, status, stdout and stderr on failure.
pub fn run(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not start {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        panic!(
            "{shown} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stdout
}

pub fn battorrent_cmd() -> Command {
    Command::new(BATTORRENT)
}

/// `battorrent SUBCOMMAND TORRENT [EXTRA...]`, returning stdout.
pub fn battorrent(subcommand: &str, torrent: &Path, extra: &[&str]) -> String {
    run(battorrent_cmd().arg(subcommand).arg(torrent).args(extra))
}

/// tests/support/lt_tool.py (libtorrent), run with the system Python.
pub fn lt_tool_cmd() -> Command {
    let mut cmd = Command::new(PYTHON);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/lt_tool.py"));
    cmd
}

// ---------------------------------------------------------------------------------------------
// Temp dirs and payloads
// ---------------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "battorrent-interop-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), different for each seed.
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write_file(path: &Path, len: usize, seed: u64) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, pseudo_random_bytes(len, seed))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes `TREE` below `dir/name` and returns that folder.
pub fn make_tree(dir: &TempDir, name: &str) -> PathBuf {
    let root = dir.join(name);
    for (seed, (rel, len)) in TREE.iter().enumerate() {
        write_file(&root.join(rel), *len, seed as u64 + 100);
    }
    root
}

/// Writes a single file of `SINGLE_FILE_LEN` bytes and returns its path.
pub fn make_single_file(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.join(name);
    write_file(&path, SINGLE_FILE_LEN as usize, 7);
    path
}

/// A payload for other tools to make a torrent of.
pub struct Payload {
    /// "single-file" or "multi-file".
    pub kind: &'static str,
    pub path: PathBuf,
    /// Total size of its files.
    pub len: u64,
}

/// A single file ("payload.bin") and the `TREE` folder ("tree") below `dir`.
pub fn make_payloads(dir: &TempDir) -> [Payload; 2] {
    [
        Payload {
            kind: "single-file",
            path: make_single_file(dir, "payload.bin"),
            len: SINGLE_FILE_LEN,
        },
        Payload {
            kind: "multi-file",
            path: make_tree(dir, "tree"),
            len: TREE.iter().map(|(_, len)| *len as u64).sum(),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Our torrents with every option
// ---------------------------------------------------------------------------------------------

/// `battorrent create` with two -a tiers, one --tier, --private, a web seed, comment and source.
fn create_ours_with_all_options(src: &Path, out: &Path, piece_length: &str) {
    run(battorrent_cmd()
        .arg("create")
        .arg(src)
        .args(["-a", TRACKER_1, "-a", TRACKER_2])
        .args(["--tier", &format!("{TIER_A},{TIER_B}")])
        .args(["--private", "--web-seed", WEB_SEED])
        .args(["--comment", "interop test", "--source", "BATTEST"])
        .args(["--piece-length", piece_length, "-o"])
        .arg(out));
}

/// The tiers `create_ours_with_all_options` asks for.
pub fn expected_tiers() -> Vec<Vec<String>> {
    vec![
        vec![TRACKER_1.to_string()],
        vec![TRACKER_2.to_string()],
        vec![TIER_A.to_string(), TIER_B.to_string()],
    ]
}

/// Our single-file and multi-file torrents made with every option, for the "tool reads ours"
/// tests.
pub struct OurTorrents {
    pub single: PathBuf,
    pub multi: PathBuf,
}

impl OurTorrents {
    pub fn make(dir: &TempDir) -> OurTorrents {
        let single = dir.join("single.torrent");
        let multi = dir.join("multi.torrent");
        create_ours_with_all_options(&make_single_file(dir, "payload.bin"), &single, "256K");
        create_ours_with_all_options(&make_tree(dir, "tree"), &multi, "32KiB");
        OurTorrents { single, multi }
    }

    /// Both torrents, each with the label assertion messages use.
    pub fn labeled(&self) -> [(&'static str, &Path); 2] {
        [
            ("our single-file torrent", &self.single),
            ("our multi-file torrent", &self.multi),
        ]
    }
}
