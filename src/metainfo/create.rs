//! Making .torrent files: walk the input, choose a piece length, hash, encode, re-check.

use super::path::check_element;
use super::raw::{RawFile, RawInfo, RawTorrent};
use super::{Metainfo, MetainfoError, MAX_TORRENT_FILE_SIZE};
use crate::storage::{hash_pieces, HashError, HashOptions, Layout, PieceHash};
use serde_bytes::ByteBuf;
use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Smallest piece length `create` accepts (one wire block).
pub const MIN_PIECE_LENGTH: u64 = 16 << 10;
/// Largest piece length `create` accepts.
pub const MAX_CREATE_PIECE_LENGTH: u64 = 128 << 20;
/// Folders nested deeper than this are refused (guards against symlink loops).
const MAX_DIR_DEPTH: usize = 64;

/// What goes into a new torrent besides the data.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Tracker URLs by tier (BEP 12); the first URL also becomes `announce`.
    pub trackers: Vec<Vec<String>>,
    /// Bytes per piece; `None` picks [`auto_piece_length`].
    pub piece_length: Option<u64>,
    pub private: bool,
    pub comment: Option<String>,
    pub source: Option<String>,
    pub web_seeds: Vec<String>,
    /// Seconds since the Unix epoch; `None` leaves the date out.
    pub creation_date: Option<i64>,
    pub created_by: Option<String>,
    /// Include files and folders whose names start with '.'.
    pub include_hidden: bool,
    /// Follow symbolic links inside the input folder instead of skipping them.
    pub follow_symlinks: bool,
    /// Hashing threads; 0 means one per core.
    pub threads: usize,
}

/// Why a torrent could not be made.
#[derive(Debug, Error)]
pub enum CreateError {
    #[error("cannot read {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("nothing to put in a torrent: {} holds no files (hidden files and symbolic links are skipped unless --include-hidden / --follow-symlinks)", path.display())]
    NoFiles { path: PathBuf },
    #[error("nothing to put in a torrent: every file under {} is empty", path.display())]
    NoData { path: PathBuf },
    #[error("cannot put {} in a torrent: {problem}; rename it", path.display())]
    BadName { path: PathBuf, problem: String },
    #[error("{} is nested more than {MAX_DIR_DEPTH} folders deep (a symbolic link loop?)", path.display())]
    TooDeep { path: PathBuf },
    #[error("piece length {0} is outside {MIN_PIECE_LENGTH}..={MAX_CREATE_PIECE_LENGTH} bytes")]
    PieceLength(u64),
    #[error("{pieces} pieces of {piece_length} bytes would make the .torrent too large; use a larger --piece-length")]
    TooManyPieces { pieces: u64, piece_length: u64 },
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("internal error: the torrent we wrote does not load back: {0}")]
    Reload(MetainfoError),
}

/// One file to include.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Where it is on disk.
    pub disk_path: PathBuf,
    /// Its path elements inside the torrent (below the torrent's name for a folder).
    pub torrent_path: Vec<String>,
    pub length: u64,
}

/// The files found under an input path, in torrent order.
#[derive(Debug, Clone)]
pub struct Input {
    /// The torrent's name: the input's file or folder name.
    pub name: String,
    /// True when the input is a folder.
    pub multi_file: bool,
    pub files: Vec<InputFile>,
    pub total_length: u64,
}

impl Input {
    /// Drops the file at `path` (such as the .torrent being written into the input
    /// folder) from the input. Fails like [`scan`] if nothing with data is left.
    pub fn exclude(&mut self, path: &Path) -> Result<(), CreateError> {
        let Ok(target) = fs::canonicalize(path) else {
            return Ok(()); // does not exist yet, so it was not scanned
        };
        self.files.retain(|f| f.disk_path != target);
        self.total_length = self.files.iter().map(|f| f.length).sum();
        match (self.files.is_empty(), self.total_length) {
            (true, _) => Err(CreateError::NoFiles {
                path: path.to_owned(),
            }),
            (false, 0) => Err(CreateError::NoData {
                path: path.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// A finished torrent: its bytes and its parsed form.
#[derive(Debug, Clone)]
pub struct Created {
    pub bytes: Vec<u8>,
    pub metainfo: Metainfo,
}

/// The default piece length for `total` bytes: the power of two nearest to 10·√total,
/// clamped to 16 KiB–16 MiB. That keeps the piece hash list near 2·√total bytes (the rule
/// libtorrent and imdl share): 1 GiB gets 256 KiB pieces, 100 GiB gets 4 MiB.
pub fn auto_piece_length(total: u64) -> u64 {
    let target = 10.0 * (total.max(1) as f64).sqrt();
    let exponent = target.log2().round().clamp(14.0, 24.0) as u32;
    1 << exponent
}

/// Lists the files under `path` in torrent order: per folder, entries sorted by the raw
/// bytes of their names, recursively. Skips hidden entries and symbolic links unless asked;
/// the top-level `path` itself is always taken as given.
pub fn scan(
    path: &Path,
    include_hidden: bool,
    follow_symlinks: bool,
) -> Result<Input, CreateError> {
    let io = |source| CreateError::Io {
        path: path.to_owned(),
        error: source,
    };
    let absolute = fs::canonicalize(path).map_err(io)?;
    let meta = fs::metadata(&absolute).map_err(io)?;
    let name = element_name(&absolute)?;
    let mut files = Vec::new();
    let multi_file = meta.is_dir();
    if multi_file {
        let mut visited = HashSet::new();
        let options = (include_hidden, follow_symlinks);
        walk(
            &absolute,
            &mut Vec::new(),
            options,
            &mut visited,
            &mut files,
        )?;
        if files.is_empty() {
            return Err(CreateError::NoFiles {
                path: path.to_owned(),
            });
        }
    } else {
        files.push(InputFile {
            disk_path: absolute.clone(),
            torrent_path: vec![name.clone()],
            length: meta.len(),
        });
    }
    let total_length = files.iter().map(|f| f.length).sum();
    if total_length == 0 {
        return Err(CreateError::NoData {
            path: path.to_owned(),
        });
    }
    Ok(Input {
        name,
        multi_file,
        files,
        total_length,
    })
}

/// A file or folder name as a checked torrent path element.
fn element_name(path: &Path) -> Result<String, CreateError> {
    let bad = |problem: String| CreateError::BadName {
        path: path.to_owned(),
        problem,
    };
    let raw = path
        .file_name()
        .ok_or_else(|| bad("it has no name".into()))?;
    let name = std::str::from_utf8(raw.as_bytes())
        .map_err(|_| bad("its name is not valid UTF-8".into()))?;
    check_element(name).map_err(|why| bad(why.to_string()))?;
    Ok(name.to_owned())
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    (include_hidden, follow_symlinks): (bool, bool),
    visited: &mut HashSet<(u64, u64)>,
    out: &mut Vec<InputFile>,
) -> Result<(), CreateError> {
    let io = |source| CreateError::Io {
        path: dir.to_owned(),
        error: source,
    };
    if prefix.len() >= MAX_DIR_DEPTH {
        return Err(CreateError::TooDeep {
            path: dir.to_owned(),
        });
    }
    let dir_meta = fs::metadata(dir).map_err(io)?;
    if !visited.insert((dir_meta.dev(), dir_meta.ino())) {
        tracing::warn!(
            "skipping {}: already included (symbolic link loop)",
            dir.display()
        );
        return Ok(());
    }
    let mut entries = fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    for entry in entries {
        let path = entry.path();
        let hidden = entry.file_name().as_bytes().first() == Some(&b'.');
        if hidden && !include_hidden {
            tracing::debug!("skipping hidden {}", path.display());
            continue;
        }
        let mut kind = entry.file_type().map_err(|source| CreateError::Io {
            path: path.clone(),
            error: source,
        })?;
        let mut length = None;
        if kind.is_symlink() {
            if !follow_symlinks {
                tracing::debug!("skipping symbolic link {}", path.display());
                continue;
            }
            let meta = fs::metadata(&path).map_err(|source| CreateError::Io {
                path: path.clone(),
                error: source,
            })?;
            kind = meta.file_type();
            length = Some(meta.len());
        }
        let name = element_name(&path)?;
        if kind.is_dir() {
            prefix.push(name);
            walk(
                &path,
                prefix,
                (include_hidden, follow_symlinks),
                visited,
                out,
            )?;
            prefix.pop();
        } else if kind.is_file() {
            let length = match length {
                Some(l) => l,
                None => entry
                    .metadata()
                    .map_err(|source| CreateError::Io {
                        path: path.clone(),
                        error: source,
                    })?
                    .len(),
            };
            let mut torrent_path = prefix.clone();
            torrent_path.push(name);
            out.push(InputFile {
                disk_path: path,
                torrent_path,
                length,
            });
        } else {
            tracing::warn!("skipping {}: not a regular file or folder", path.display());
        }
    }
    Ok(())
}

/// Hashes `input` and encodes the torrent. `on_progress(bytes)` is called as data is hashed.
/// The result is loaded back through [`Metainfo::from_bytes`] before it is returned.
pub fn build(
    input: &Input,
    options: &CreateOptions,
    mut on_progress: impl FnMut(u64),
) -> Result<Created, CreateError> {
    let piece_length = options
        .piece_length
        .unwrap_or_else(|| auto_piece_length(input.total_length));
    if !(MIN_PIECE_LENGTH..=MAX_CREATE_PIECE_LENGTH).contains(&piece_length) {
        return Err(CreateError::PieceLength(piece_length));
    }
    let pieces = input.total_length.div_ceil(piece_length);
    if pieces.saturating_mul(20) > MAX_TORRENT_FILE_SIZE - (1 << 20) {
        return Err(CreateError::TooManyPieces {
            pieces,
            piece_length,
        });
    }

    let layout = Layout::new(
        piece_length,
        input
            .files
            .iter()
            .map(|f| (f.disk_path.clone(), f.length, false)),
    );
    let hash_options = HashOptions {
        threads: if options.threads == 0 {
            HashOptions::default().threads
        } else {
            options.threads
        },
        require_all: true,
        cancel: None,
        only: None,
    };
    let hashes = hash_pieces(&layout, hash_options, &mut on_progress)?;
    let mut piece_bytes = Vec::with_capacity(hashes.len() * 20);
    for hash in hashes {
        match hash {
            PieceHash::Hashed(h) => piece_bytes.extend_from_slice(&h),
            // require_all turns missing data into an error before we get here.
            PieceHash::Incomplete => unreachable!("incomplete piece with require_all"),
        }
    }

    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let info = RawInfo {
        files: input.multi_file.then(|| {
            input
                .files
                .iter()
                .map(|f| RawFile {
                    length: as_i64(f.length),
                    path: f.torrent_path.clone(),
                })
                .collect()
        }),
        length: (!input.multi_file).then(|| as_i64(input.total_length)),
        name: input.name.clone(),
        piece_length: as_i64(piece_length),
        pieces: ByteBuf::from(piece_bytes),
        private: options.private.then_some(1),
        source: options.source.clone(),
    };
    let tiers: Vec<Vec<String>> = options
        .trackers
        .iter()
        .filter(|t| !t.is_empty())
        .cloned()
        .collect();
    let torrent = RawTorrent {
        announce: tiers.first().map(|t| t[0].clone()),
        announce_list: (tiers.iter().map(Vec::len).sum::<usize>() > 1).then(|| tiers.clone()),
        comment: options.comment.clone(),
        created_by: options.created_by.clone(),
        creation_date: options.creation_date,
        info,
        url_list: (!options.web_seeds.is_empty()).then(|| options.web_seeds.clone()),
    };
    let bytes = serde_bencode::to_bytes(&torrent).expect("serializing plain structs cannot fail");
    let metainfo = Metainfo::from_bytes(&bytes).map_err(CreateError::Reload)?;
    Ok(Created { bytes, metainfo })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::{self, Limits};

    #[test]
    fn auto_piece_length_follows_the_documented_rule() {
        assert_eq!(auto_piece_length(1), MIN_PIECE_LENGTH);
        assert_eq!(auto_piece_length(100 << 20), 128 << 10);
        assert_eq!(auto_piece_length(1 << 30), 256 << 10);
        assert_eq!(auto_piece_length(100 << 30), 4 << 20);
        assert_eq!(auto_piece_length(u64::MAX), 16 << 20);
        for total in [1u64, 1 << 20, 1 << 30, 1 << 40] {
            let pl = auto_piece_length(total);
            assert!(pl.is_power_of_two() && (MIN_PIECE_LENGTH..=16 << 20).contains(&pl));
        }
    }

    fn sample_torrent() -> Created {
        // One folder per call: tests calling this run in parallel.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("battorrent-unit-create-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("d/sub")).unwrap();
        std::fs::write(dir.join("d/a"), vec![7u8; 40_000]).unwrap();
        std::fs::write(dir.join("d/sub/b"), b"hello").unwrap();
        let input = scan(&dir.join("d"), false, false).unwrap();
        let options = CreateOptions {
            trackers: vec![
                vec!["http://a/".into()],
                vec!["http://b/".into(), "http://c/".into()],
            ],
            piece_length: Some(16 << 10),
            private: true,
            comment: Some("c".into()),
            web_seeds: vec!["http://w/".into()],
            creation_date: Some(1_700_000_000),
            ..CreateOptions::default()
        };
        let created = build(&input, &options, |_| {}).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        created
    }

    #[test]
    fn output_is_canonical_and_survives_a_serde_round_trip() {
        let created = sample_torrent();
        let doc = bencode::decode(&created.bytes, Limits::default()).unwrap();
        assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
        assert_eq!(bencode::encode(&doc.root).unwrap(), created.bytes);
        let raw: RawTorrent = serde_bencode::from_bytes(&created.bytes).unwrap();
        assert_eq!(serde_bencode::to_bytes(&raw).unwrap(), created.bytes);
    }

    #[test]
    fn built_torrent_describes_its_input() {
        let meta = sample_torrent().metainfo;
        assert_eq!(meta.info.name, "d");
        assert!(meta.info.multi_file && meta.info.private);
        let paths: Vec<_> = meta.info.files.iter().map(|f| &*f.path).collect();
        assert_eq!(paths, ["a", "sub/b"]);
        assert_eq!(meta.info.total_length, 40_005);
        assert_eq!(meta.info.piece_count(), 3);
        assert_eq!(meta.trackers.len(), 2);
        assert_eq!(meta.web_seeds, ["http://w/"]);
        assert_eq!(meta.creation_date, Some(1_700_000_000));
        // Piece 0 is 16 KiB of 7s.
        let expected: [u8; 20] = Sha1::digest(vec![7u8; 16 << 10]).into();
        assert_eq!(meta.info.pieces[0], expected);
    }

    use sha1::{Digest, Sha1};
}
