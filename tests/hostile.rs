//! Every hostile .torrent in fixtures/hostile gets its exact error, exit status 1, no panic.
//! The cases and expected messages are listed in fixtures/hostile/cases.tsv.

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
