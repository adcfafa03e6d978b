//! The JSON reports: `battorrent show --json` and tests/support/lt_tool.py (libtorrent), read
//! with serde_json.
//!
//! Both always print every key (null when absent). Optional fields therefore use
//! `deserialize_with = "Option::deserialize"`: a null is `None`, a missing key is an error
//! (plain serde would quietly read a missing key as `None`). Extra keys are ignored.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::tools::{battorrent, lt_tool_cmd, run};

/// One entry of `files` (both `show --json` and lt_tool.py).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub length: u64,
    pub padding: bool,
}

/// `battorrent show --json`.
#[derive(Debug, Deserialize)]
pub struct Show {
    pub name: String,
    pub info_hash: String,
    pub total_size: u64,
    pub piece_length: u64,
    pub piece_count: u64,
    pub files: Vec<FileEntry>,
    pub trackers: Vec<Vec<String>>,
    pub private: bool,
    pub web_seeds: Vec<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub comment: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub created_by: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub creation_date: Option<i64>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub source: Option<String>,
    pub magnet: String,
    pub version: String,
}

impl Show {
    pub fn is_single_file(&self) -> bool {
        self.files.len() == 1 && self.files[0].path == self.name
    }

    /// A file's path the way libtorrent and transmission-show print it: "name/dir/file" for
    /// multi-file torrents, the name for single-file ones.
    pub fn tool_path(&self, file: &FileEntry) -> String {
        if self.is_single_file() {
            self.name.clone()
        } else {
            format!("{}/{}", self.name, file.path)
        }
    }

    pub fn payload_size(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| !f.padding)
            .map(|f| f.length)
            .sum()
    }
}

/// `lt_tool.py info` / `lt_tool.py create` (libtorrent's torrent_info).
#[derive(Debug, Deserialize)]
pub struct Libtorrent {
    pub name: String,
    #[serde(deserialize_with = "Option::deserialize")]
    pub info_hash_v1: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub info_hash_v2: Option<String>,
    pub total_size: u64,
    pub piece_length: u64,
    pub piece_count: u64,
    /// Paths as libtorrent prints them ("name/dir/file").
    pub files: Vec<FileEntry>,
    /// Tiers in order; order inside a tier is libtorrent's (it may shuffle).
    pub trackers: Vec<Vec<String>>,
    pub private: bool,
    pub web_seeds: Vec<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub comment: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub created_by: Option<String>,
}

/// Parses `text` (printed by `what`) as JSON, panicking with the text on failure.
pub fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: bad JSON: {e}\n{text}"))
}

/// `battorrent show --json TORRENT`, with sanity checks on what it reports.
pub fn show(torrent: &Path) -> Show {
    let what = format!("show --json of {}", torrent.display());
    let show: Show = from_json(&what, &battorrent("show", torrent, &["--json"]));
    assert!(
        show.info_hash.len() == 40
            && show
                .info_hash
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{what}: info_hash {:?} is not 40 lowercase hex digits",
        show.info_hash
    );
    assert!(
        show.version == "v1" || show.version == "hybrid",
        "{what}: unexpected version {:?}",
        show.version
    );
    let sum: u64 = show.files.iter().map(|f| f.length).sum();
    assert_eq!(
        sum, show.total_size,
        "{what}: file lengths don't add up to total_size"
    );
    assert_eq!(
        show.piece_count,
        show.total_size.div_ceil(show.piece_length),
        "{what}: piece_count doesn't fit total_size / piece_length"
    );
    show
}

/// `lt_tool.py info TORRENT`.
pub fn libtorrent_info(torrent: &Path) -> Libtorrent {
    let out = run(lt_tool_cmd().arg("info").arg(torrent));
    from_json("lt_tool.py info", &out)
}

/// `lt_tool.py create [ARGS...] SRC OUT`: makes OUT with libtorrent and returns what
/// libtorrent reads from it.
pub fn libtorrent_create(args: &[&str], src: &Path, out: &Path) -> Libtorrent {
    let printed = run(lt_tool_cmd().arg("create").args(args).arg(src).arg(out));
    from_json("lt_tool.py create", &printed)
}
