//! The CLI's create / show / verify / magnet behaviour, run as a person would run it.
//! Every torrent `create` writes here is read back with `show --json` and checked with `verify`.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("battorrent-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `len` deterministic bytes at `rel`, creating folders.
    fn file(&self, rel: &str, len: usize) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut x: u32 = len as u32 ^ 0x9e37_79b9;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_battorrent"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run battorrent")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "battorrent {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = run(dir, args);
    assert!(!out.status.success(), "battorrent {args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// Pulls `"key": value` out of our own JSON (flat values only).
fn json_field(json: &str, key: &str) -> String {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} missing in {json}"));
    let rest = json[at + key.len() + 3..].trim_start();
    let end = rest.find([',', '\n', '}']).unwrap();
    rest[..end].trim().trim_matches('"').to_owned()
}

#[test]
fn single_file_create_show_verify() {
    let s = Scratch::new("single");
    s.file("data.bin", 100_000);
    let created = ok(
        &s.0,
        &[
            "create",
            "data.bin",
            "-l",
            "16K",
            "-a",
            "http://127.0.0.1:1/announce",
            "--no-date",
            "--json",
        ],
    );
    assert_eq!(json_field(&created, "piece_count"), "7");
    let shown = ok(&s.0, &["show", "data.bin.torrent", "--json"]);
    assert_eq!(
        json_field(&shown, "info_hash"),
        json_field(&created, "info_hash")
    );
    assert_eq!(json_field(&shown, "total_size"), "100000");
    assert_eq!(json_field(&shown, "piece_length"), "16384");
    assert_eq!(json_field(&shown, "multi_file"), "false");
    assert_eq!(json_field(&shown, "creation_date"), "null");
    assert!(shown.contains("\"http://127.0.0.1:1/announce\""));
    let verified = ok(&s.0, &["verify", "data.bin.torrent"]);
    assert!(verified.contains("OK: 7 of 7 pieces good"), "{verified}");
    let magnet = ok(&s.0, &["magnet", "data.bin.torrent"]);
    assert_eq!(magnet.trim(), json_field(&shown, "magnet"));
}

#[test]
fn verify_names_corrupt_short_and_missing_files() {
    let s = Scratch::new("verify");
    s.file("d/a.bin", 50_000);
    s.file("d/sub/b.bin", 40_000);
    s.file("d/c.bin", 30_000);
    ok(&s.0, &["create", "d", "-l", "16K", "--no-date"]);
    assert!(ok(&s.0, &["verify", "d.torrent"]).contains("OK: 8 of 8 pieces good"));

    // Flip one byte in piece 1 (a.bin bytes 16384..32768).
    let a = s.path("d/a.bin");
    let mut bytes = std::fs::read(&a).unwrap();
    bytes[20_000] ^= 0xff;
    std::fs::write(&a, &bytes).unwrap();
    let (code, out, _) = fails(&s.0, &["verify", "d.torrent"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("corrupt     a.bin: 1 bad piece"), "{out}");
    assert!(out.contains("bad pieces  1\n"), "{out}");
    assert!(out.contains("FAILED: 7 of 8 pieces good"), "{out}");

    std::fs::remove_file(s.path("d/sub/b.bin")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("d/c.bin"))
        .unwrap()
        .set_len(100)
        .unwrap();
    let (_, out, _) = fails(&s.0, &["verify", "d.torrent", "--json"]);
    assert!(out.contains("\"status\": \"missing\""), "{out}");
    assert!(out.contains("\"status\": \"wrong_size\""), "{out}");
    assert_eq!(json_field(&out, "ok"), "false");

    // --dir points verify at data elsewhere.
    let other = Scratch::new("verify-dir");
    let (code, _, _) = fails(
        &s.0,
        &["verify", "d.torrent", "--dir", other.0.to_str().unwrap()],
    );
    assert_eq!(code, Some(1));
}

#[test]
fn folder_walk_order_hidden_files_and_symlinks() {
    let s = Scratch::new("walk");
    for f in [
        "t/b",
        "t/B",
        "t/a.txt",
        "t/a/x",
        "t/.hidden",
        "t/.git/config",
    ] {
        s.file(f, 1000);
    }
    s.file("outside.bin", 5000);
    symlink(s.path("outside.bin"), s.path("t/link")).unwrap();
    symlink(s.path("t"), s.path("t/a/loop")).unwrap();

    let shown_paths = |json: &str| -> Vec<String> {
        json.lines()
            .filter_map(|l| l.trim().strip_prefix("\"path\": \""))
            .map(|p| p.trim_end_matches(['"', ',']).to_owned())
            .collect()
    };
    ok(&s.0, &["create", "t", "--no-date"]);
    let shown = ok(&s.0, &["show", "t.torrent", "--json"]);
    // Sorted per path element by raw bytes: 'B' < 'a' < 'a.txt' < 'b'.
    assert_eq!(shown_paths(&shown), ["B", "a/x", "a.txt", "b"]);

    ok(
        &s.0,
        &[
            "create",
            "t",
            "--no-date",
            "--include-hidden",
            "-o",
            "hidden.torrent",
        ],
    );
    let shown = ok(&s.0, &["show", "hidden.torrent", "--json"]);
    assert_eq!(
        shown_paths(&shown),
        [".git/config", ".hidden", "B", "a/x", "a.txt", "b"]
    );

    ok(
        &s.0,
        &[
            "create",
            "t",
            "--no-date",
            "--follow-symlinks",
            "-o",
            "links.torrent",
        ],
    );
    let shown = ok(&s.0, &["show", "links.torrent", "--json"]);
    // The loop back to t/ is skipped; the link to a file outside is followed.
    assert_eq!(shown_paths(&shown), ["B", "a/x", "a.txt", "b", "link"]);
    assert_eq!(json_field(&shown, "total_size"), "9000");
    assert!(ok(&s.0, &["verify", "links.torrent"]).starts_with("OK"));
}

#[test]
fn create_refuses_empty_input_and_overwrites() {
    let s = Scratch::new("empty");
    std::fs::create_dir_all(s.path("nothing")).unwrap();
    let (code, _, err) = fails(&s.0, &["create", "nothing"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("holds no files"), "{err}");

    s.file("hidden-only/.x", 10);
    let (_, _, err) = fails(&s.0, &["create", "hidden-only"]);
    assert!(err.contains("--include-hidden"), "{err}");

    s.file("zeros/a", 0);
    let (_, _, err) = fails(&s.0, &["create", "zeros"]);
    assert!(err.contains("every file under zeros is empty"), "{err}");

    let (_, _, err) = fails(&s.0, &["create", "no-such-path"]);
    assert!(err.contains("cannot read no-such-path"), "{err}");

    s.file("x.bin", 10);
    ok(&s.0, &["create", "x.bin"]);
    let (_, _, err) = fails(&s.0, &["create", "x.bin"]);
    assert!(
        err.contains("x.bin.torrent already exists; use --force"),
        "{err}"
    );
    ok(&s.0, &["create", "x.bin", "--force"]);

    // Re-creating a torrent written inside its own input folder leaves the old one out.
    s.file("folder/data", 5000);
    ok(&s.0, &["create", "folder", "-o", "folder/self.torrent"]);
    ok(
        &s.0,
        &["create", "folder", "-o", "folder/self.torrent", "--force"],
    );
    let shown = ok(&s.0, &["show", "folder/self.torrent", "--json"]);
    assert_eq!(json_field(&shown, "total_size"), "5000");
    assert!(ok(&s.0, &["verify", "folder/self.torrent", "--dir", "."]).starts_with("OK"));

    let (_, _, err) = fails(&s.0, &["create", "x.bin", "-f", "-l", "1K"]);
    assert!(err.contains("piece length 1024 is outside"), "{err}");
    let (code, _, err) = fails(&s.0, &["create", "x.bin", "-f", "-l", "big"]);
    assert_eq!(code, Some(2), "usage errors exit 2");
    assert!(err.contains("not a size"), "{err}");
}

#[test]
fn create_records_every_option() {
    let s = Scratch::new("options");
    s.file("f.bin", 70_000);
    ok(
        &s.0,
        &[
            "create",
            "f.bin",
            "-a",
            "http://a/1",
            "-a",
            "http://b/2",
            "--tier",
            "http://c/3,udp://d:4",
            "--private",
            "--comment",
            "hello",
            "--source",
            "SRC",
            "--web-seed",
            "http://ws/f.bin",
        ],
    );
    let shown = ok(&s.0, &["show", "f.bin.torrent", "--json"]);
    let compact: String = shown.split_whitespace().collect();
    assert!(
        compact
            .contains(r#""trackers":[["http://a/1"],["http://b/2"],["http://c/3","udp://d:4"]]"#),
        "{shown}"
    );
    assert_eq!(json_field(&shown, "private"), "true");
    assert_eq!(json_field(&shown, "comment"), "hello");
    assert_eq!(json_field(&shown, "source"), "SRC");
    assert!(compact.contains(r#""web_seeds":["http://ws/f.bin"]"#));
    assert!(json_field(&shown, "created_by").starts_with("BatTorrent/"));
    assert_ne!(json_field(&shown, "creation_date"), "null");

    // The source tag is part of the info dictionary, so it changes the info hash.
    ok(
        &s.0,
        &["create", "f.bin", "-o", "plain.torrent", "--private"],
    );
    let plain = ok(&s.0, &["show", "plain.torrent", "--json"]);
    assert_ne!(
        json_field(&plain, "info_hash"),
        json_field(&shown, "info_hash")
    );

    let text = ok(&s.0, &["show", "f.bin.torrent"]);
    assert!(text.contains("Trackers     tier 1: http://a/1"), "{text}");
    assert!(text.contains("tier 3: http://c/3, udp://d:4"), "{text}");
    assert!(text.contains("Private      yes"), "{text}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let torrent = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    // `show` of a torrent made from the sample folder, with stdout closed before it writes.
    let dir = std::env::temp_dir().join(format!("battorrent-cli-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("sample.torrent");
    let made = Command::new(env!("CARGO_BIN_EXE_battorrent"))
        .arg("create")
        .arg(torrent.join("sample"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(made.status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_battorrent"))
        .arg("show")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_private_dht_node_runs_without_any_router_and_no_dht_excludes_dht_options() {
    let scratch = Scratch::new("dht-none");
    let dir = scratch.path("");
    // `--dht-bootstrap none`: the first node of a private swarm (no public router asked).
    let out = ok(
        &dir,
        &[
            "dht",
            "--bind",
            "127.0.0.1:0",
            "--dht-bootstrap",
            "none",
            "--seconds",
            "1",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dht"]["nodes"], 0, "{out}");
    assert_eq!(v["dht"]["queries_sent"], 0, "no router was asked: {out}");
    let (code, _, err) = fails(
        &dir,
        &[
            "download",
            "x.torrent",
            "--no-dht",
            "--dht-bootstrap",
            "127.0.0.1:1",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--no-dht"), "{err}");
}
