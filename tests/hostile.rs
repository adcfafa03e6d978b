//! Every hostile .torrent in fixtures/hostile gets its exact error, exit status 1, no panic.
//! The cases and expected messages are listed in fixtures/hostile/cases.tsv. A torrent that
//! loads but carries terminal escapes in its text is generated here: nothing it says may act
//! on the terminal.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hostile")
}

fn cases() -> Vec<(String, String)> {
    let table = std::fs::read_to_string(fixtures().join("cases.tsv")).expect("cases.tsv");
    table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            let file = cols.next().expect("file column").to_owned();
            let expected = cols.next().expect("expected column").to_owned();
            (file, expected)
        })
        .collect()
}

#[test]
fn every_hostile_torrent_is_refused_with_its_reason() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases listed", cases.len());
    let mut failures = Vec::new();
    for (file, expected) in &cases {
        for command in ["show", "verify", "magnet"] {
            let out = Command::new(env!("CARGO_BIN_EXE_battorrent"))
                .arg(command)
                .arg(fixtures().join(file))
                .output()
                .expect("run battorrent");
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(1)
                || !stderr.contains(expected.as_str())
                || stderr.contains("panicked")
            {
                failures.push(format!(
                    "{command} {file}: status {:?}, expected {expected:?} in stderr, got: {stderr}",
                    out.status.code()
                ));
            }
            if !out.stdout.is_empty() {
                failures.push(format!(
                    "{command} {file}: printed to stdout despite failing"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_file_is_listed() {
    let listed: Vec<String> = cases().into_iter().map(|(f, _)| f).collect();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".torrent") {
            assert!(listed.contains(&name), "{name} has no line in cases.tsv");
        }
    }
}

#[test]
fn oversized_torrent_file_is_refused_before_reading() {
    let dir = std::env::temp_dir().join(format!("battorrent-oversized-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.torrent");
    // Sparse: 65 MiB of nothing, just over the limit.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_battorrent"))
        .args(["show".as_ref(), path.as_os_str()])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("a .torrent may be at most 67108864 bytes"),
        "{stderr}"
    );
}

/// Bytes a terminal acts on: C0 controls other than the newline, DEL, and C1 controls.
fn terminal_controls(output: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(output)
        .chars()
        .filter(|&c| c != '\n' && c.is_control())
        .map(|c| format!("{c:?}"))
        .collect()
}

#[test]
fn text_from_a_torrent_cannot_drive_the_terminal() {
    // Name, path, comment, creator and tracker URL each carry a forged "Info hash" line,
    // a title change (OSC 0), a clipboard write (OSC 52), CR, BEL and a one-byte CSI.
    let evil = "x\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\r\nInfo hash    0000\u{9b}2J\x7f";
    let s = |t: &str| format!("{}:{t}", t.len());
    let info = format!(
        "d5:filesld6:lengthi1e4:pathl{}eee4:name{}12:piece lengthi16384e6:pieces20:{}e",
        s(evil),
        s(evil),
        "h".repeat(20)
    );
    let torrent = format!(
        "d8:announce{}7:comment{}10:created by{}4:info{info}e",
        s(&format!("http://t.example/{evil}/announce")),
        s(evil),
        s(evil)
    );
    let dir = std::env::temp_dir().join(format!("battorrent-escapes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("evil.torrent");
    std::fs::write(&path, torrent).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_battorrent"))
            .args(args)
            .arg(&path)
            .output()
            .expect("run battorrent")
    };
    let mut failures = Vec::new();
    for args in [
        &["show"][..],
        &["show", "--json"],
        &["verify"],
        &["verify", "--json"],
        &["magnet"],
        &["-vvv", "verify"],
    ] {
        let out = run(args);
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let found = terminal_controls(bytes);
            if !found.is_empty() {
                failures.push(format!("{args:?} {stream}: {found:?}"));
            }
            let forged = String::from_utf8_lossy(bytes)
                .lines()
                .filter(|l| l.starts_with("Info hash"))
                .count();
            if forged > usize::from(args == ["show"]) {
                failures.push(format!("{args:?} {stream}: a forged 'Info hash' line"));
            }
        }
        if args.contains(&"--json") {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{args:?}: invalid JSON ({e})"));
            let path = &json["files"][0]["path"];
            assert_eq!(
                path.as_str(),
                Some(evil),
                "{args:?}: the path must survive exactly"
            );
        }
    }
    let shown = String::from_utf8_lossy(&run(&["show"]).stdout).into_owned();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        shown.contains("Name         x\\u{1b}]0;pwned\\u{7}\\u{1b}]52;c;ZXZpbA==\\u{7}\\r\\nInfo hash    0000\\u{9b}2J\\u{7f}\n"),
        "{shown}"
    );
}
