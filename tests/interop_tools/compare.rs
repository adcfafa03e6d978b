//! Comparisons: what `battorrent show --json` reports against what each tool reports, and
//! against what the tests asked for.

use crate::json::{FileEntry, Libtorrent, Show};
use crate::parse::{human_size_matches, magnet_btih, Aria2, Transmission};
use crate::tools::{expected_tiers, SINGLE_FILE_LEN, TREE, WEB_SEED};

/// The tiers with the URLs inside each tier sorted (some tools shuffle a tier).
fn sorted_tiers(tiers: &[Vec<String>]) -> Vec<Vec<String>> {
    tiers
        .iter()
        .map(|tier| {
            let mut tier = tier.clone();
            tier.sort();
            tier
        })
        .collect()
}

/// libtorrent and we read the same torrent the same way.
pub fn assert_agrees_with_libtorrent(what: &str, ours: &Show, lt: &Libtorrent) {
    assert_eq!(
        lt.info_hash_v1.as_deref(),
        Some(ours.info_hash.as_str()),
        "{what}: v1 info hash (libtorrent vs ours)"
    );
    assert_eq!(lt.name, ours.name, "{what}: name");
    assert_eq!(lt.total_size, ours.total_size, "{what}: total size");
    assert_eq!(lt.piece_length, ours.piece_length, "{what}: piece length");
    assert_eq!(lt.piece_count, ours.piece_count, "{what}: piece count");
    let expected: Vec<FileEntry> = ours
        .files
        .iter()
        .map(|f| FileEntry {
            path: ours.tool_path(f),
            ..f.clone()
        })
        .collect();
    assert_eq!(
        lt.files, expected,
        "{what}: files (libtorrent vs ours, libtorrent's path style)"
    );
    // libtorrent may shuffle URLs inside a tier.
    assert_eq!(
        sorted_tiers(&lt.trackers),
        sorted_tiers(&ours.trackers),
        "{what}: tracker tiers"
    );
    assert_eq!(lt.private, ours.private, "{what}: private flag");
    assert_eq!(lt.web_seeds, ours.web_seeds, "{what}: web seeds");
    assert_eq!(lt.comment, ours.comment, "{what}: comment");
    assert_eq!(lt.created_by, ours.created_by, "{what}: created by");
}

/// aria2c and we read the same torrent the same way.
pub fn assert_agrees_with_aria2(what: &str, ours: &Show, a: &Aria2) {
    assert_eq!(
        a.info_hash, ours.info_hash,
        "{what}: info hash (aria2c vs ours)"
    );
    assert_eq!(
        magnet_btih(&a.magnet),
        ours.info_hash,
        "{what}: aria2c's magnet btih"
    );
    assert_eq!(a.name, ours.name, "{what}: name");
    assert_eq!(
        a.mode,
        if ours.is_single_file() {
            "single"
        } else {
            "multi"
        },
        "{what}: mode"
    );
    assert_eq!(a.piece_count, ours.piece_count, "{what}: piece count");
    assert_eq!(a.total_length, ours.total_size, "{what}: total length");
    let expected: Vec<(String, u64)> = ours
        .files
        .iter()
        .map(|f| (format!("./{}", ours.tool_path(f)), f.length))
        .collect();
    assert_eq!(
        a.files, expected,
        "{what}: files (aria2c vs ours, aria2c's path style)"
    );
    assert_eq!(a.trackers, ours.trackers, "{what}: tracker tiers");
    assert_eq!(a.web_seeds, ours.web_seeds, "{what}: web seeds");
}

/// transmission-show and we read the same torrent the same way (sizes as rounded by it).
pub fn assert_agrees_with_transmission(what: &str, ours: &Show, t: &Transmission) {
    assert_eq!(
        t.info_hash, ours.info_hash,
        "{what}: info hash (transmission-show vs ours)"
    );
    assert_eq!(t.name, ours.name, "{what}: name");
    assert_eq!(t.piece_count, ours.piece_count, "{what}: piece count");
    assert!(
        human_size_matches(&t.piece_size, ours.piece_length),
        "{what}: transmission-show piece size {:?} vs ours {}",
        t.piece_size,
        ours.piece_length
    );
    assert!(
        human_size_matches(&t.total_size, ours.total_size),
        "{what}: transmission-show total size {:?} vs ours {}",
        t.total_size,
        ours.total_size
    );
    assert_eq!(t.private, Some(ours.private), "{what}: private flag");
    let paths: Vec<&str> = t.files.iter().map(|(p, _)| p.as_str()).collect();
    let expected: Vec<String> = ours.files.iter().map(|f| ours.tool_path(f)).collect();
    assert_eq!(
        paths, expected,
        "{what}: file paths (transmission-show vs ours)"
    );
    for ((path, human), file) in t.files.iter().zip(&ours.files) {
        assert!(
            human_size_matches(human, file.length),
            "{what}: {path}: transmission-show size {human:?} vs ours {}",
            file.length
        );
    }
    assert_eq!(
        sorted_tiers(&t.trackers),
        sorted_tiers(&ours.trackers),
        "{what}: tracker tiers"
    );
    assert_eq!(t.web_seeds, ours.web_seeds, "{what}: web seeds");
}

/// What `create_ours_with_all_options` asked for is what we report back.
pub fn assert_has_all_options(what: &str, ours: &Show) {
    assert_eq!(ours.trackers, expected_tiers(), "{what}: our tracker tiers");
    assert!(ours.private, "{what}: our private flag");
    assert_eq!(
        ours.web_seeds,
        vec![WEB_SEED.to_string()],
        "{what}: our web seeds"
    );
    assert_eq!(
        ours.comment.as_deref(),
        Some("interop test"),
        "{what}: our comment"
    );
    assert_eq!(
        ours.source.as_deref(),
        Some("BATTEST"),
        "{what}: our source"
    );
    assert_eq!(ours.version, "v1", "{what}: our version");
}

/// The multi-file tree as we must list it: in `TREE` order, no padding.
pub fn expected_tree_files() -> Vec<FileEntry> {
    TREE.iter()
        .map(|(path, len)| FileEntry {
            path: path.to_string(),
            length: *len as u64,
            padding: false,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Same input, same info hash

/// The single file `make_single_file` writes ("payload.bin"), as we must list it.
pub fn expected_single_file() -> Vec<FileEntry> {
    vec![FileEntry {
        path: "payload.bin".into(),
        length: SINGLE_FILE_LEN,
        padding: false,
    }]
}
