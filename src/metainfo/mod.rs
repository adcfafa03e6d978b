//! .torrent metainfo (BEP 3, 12, 19, 27, 47; the v1 part of BEP 52) and magnet links (BEP 9).
//!
//! This module owns the validated, in-memory view of a torrent. Anything that loads is safe
//! to use: sizes add up, piece hashes match the piece count, and every file path stays inside
//! the target folder. It never touches the network and never writes files except through
//! [`create`].

pub mod create;
mod files;
mod magnet;
mod parse;
pub mod path;
mod raw;
#[cfg(test)]
mod tests;

/// The info hash is a core type; re-exported where torrents are loaded.
pub use crate::core::InfoHash;
pub use magnet::{Magnet, MagnetError};
pub use parse::{MetainfoError, MAX_PIECE_LENGTH, MAX_TORRENT_FILE_SIZE};

use std::path::PathBuf;

/// Which BitTorrent protocol versions a torrent carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// BEP 3 only.
    V1,
    /// BEP 52 hybrid: v1 and v2 parts. Only the v1 part is used for now.
    Hybrid,
}

/// A parsed and validated .torrent file.
#[derive(Debug, Clone)]
pub struct Metainfo {
    /// SHA-1 over the exact bytes of `info` as they appear in the file.
    pub info_hash: InfoHash,
    /// The validated `info` dictionary.
    pub info: Info,
    /// The raw bencoded `info` dictionary (for metadata exchange), shared with the engine
    /// that serves it.
    pub info_bytes: std::sync::Arc<[u8]>,
    /// Trackers by tier (BEP 12); from `announce` alone when there is no `announce-list`.
    pub trackers: Vec<Vec<String>>,
    /// Web seed URLs (BEP 19 `url-list`).
    pub web_seeds: Vec<String>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    pub version: Version,
    /// Irregularities tolerated while loading (unsorted keys, non-UTF-8 names, ...).
    pub warnings: Vec<String>,
}

/// The `info` dictionary: what the data is and how it is cut into pieces.
#[derive(Debug, Clone)]
pub struct Info {
    /// Suggested name: the file name (single-file) or the top folder (multi-file).
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u64,
    /// SHA-1 of each piece, in order.
    pub pieces: std::sync::Arc<[[u8; 20]]>,
    /// BEP 27 private flag.
    pub private: bool,
    /// `source` tag (used by private trackers to change the info hash).
    pub source: Option<String>,
    /// Files in torrent order, including BEP 47 padding files.
    pub files: Vec<FileEntry>,
    /// True when the torrent has a `files` list (a folder), false for a single file.
    pub multi_file: bool,
    /// Sum of all file lengths, padding included.
    pub total_length: u64,
}

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Checked path elements below the torrent's folder, joined with '/' (no element holds
    /// one; see [`FileEntry::elements`]): the name, for single-file torrents. One string, not
    /// a list, so a torrent of a million files costs a million strings, not two million.
    pub path: Box<str>,
    /// Length in bytes.
    pub length: u64,
    /// Offset of the file's first byte in the torrent's concatenated data.
    pub offset: u64,
    /// BEP 47 padding file (`attr` contains `p`): zeros, never written to disk.
    pub padding: bool,
    /// BEP 47 `attr` string, as given (`x` executable, `h` hidden, `l` symlink, `p` padding).
    pub attr: Box<str>,
}

impl FileEntry {
    /// The checked path elements, outermost first.
    pub fn elements(&self) -> impl Iterator<Item = &str> {
        self.path.split('/')
    }
}

impl Info {
    /// Number of pieces.
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `index` in bytes (the last one may be short); 0 past the end.
    pub fn piece_len(&self, index: usize) -> u64 {
        let start = (index as u64).saturating_mul(self.piece_length);
        self.total_length
            .saturating_sub(start)
            .min(self.piece_length)
    }

    /// Where `file` lives, relative to the download folder: `name` for a single-file
    /// torrent, `name/path...` for a multi-file one. Every element was checked on load.
    pub fn relative_path(&self, file: &FileEntry) -> PathBuf {
        if self.multi_file {
            path::relative_path(std::iter::once(self.name.as_str()).chain(file.elements()))
        } else {
            path::relative_path([self.name.as_str()])
        }
    }

    /// Where each file lives under the download folder `dir`, with the piece geometry: the
    /// one place that turns a torrent's paths into filesystem paths.
    pub fn layout(&self, dir: &std::path::Path) -> crate::storage::Layout {
        crate::storage::Layout::new(
            self.piece_length,
            self.files
                .iter()
                .map(|f| (dir.join(self.relative_path(f)), f.length, f.padding)),
        )
    }

    /// The piece geometry.
    pub fn geometry(&self) -> crate::core::Geometry {
        crate::core::Geometry::new(self.piece_length, self.total_length)
    }

    /// The file's path as shown to people: elements joined with '/'. Text from outside:
    /// escape it before it reaches a terminal ([`crate::text::escape`]).
    pub fn display_path<'f>(&self, file: &'f FileEntry) -> &'f str {
        &file.path
    }
}

impl Metainfo {
    /// Parses and validates a .torrent file's bytes. See [`MetainfoError`] for what is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        parse::parse(bytes)
    }

    /// Reads and parses a .torrent file, refusing files over [`MAX_TORRENT_FILE_SIZE`].
    pub fn load(path: &std::path::Path) -> Result<Metainfo, MetainfoError> {
        parse::load(path)
    }

    /// A torrent from a bare info dictionary (metadata fetched from peers) and the
    /// trackers it should use (a magnet link's). Refuses what a .torrent would be refused
    /// for.
    pub fn from_info_bytes(
        info: &[u8],
        trackers: Vec<Vec<String>>,
    ) -> Result<Metainfo, MetainfoError> {
        parse::parse_info_bytes(info, trackers)
    }

    /// The .torrent file for this torrent: its info dictionary byte for byte (so the info
    /// hash is unchanged), its trackers, comment and creator.
    pub fn to_torrent_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.info_bytes.len() + 256);
        let mut w = crate::bencode::Writer(&mut out);
        // Keys in byte order.
        w.begin_dict();
        if let Some(first) = self.trackers.first().and_then(|t| t.first()) {
            w.key_bytes("announce", first.as_bytes());
        }
        if self.trackers.iter().map(Vec::len).sum::<usize>() > 1 {
            w.bytes(b"announce-list");
            w.begin_list();
            for tier in &self.trackers {
                w.begin_list();
                for url in tier {
                    w.bytes(url.as_bytes());
                }
                w.end();
            }
            w.end();
        }
        if let Some(c) = &self.comment {
            w.key_bytes("comment", c.as_bytes());
        }
        if let Some(c) = &self.created_by {
            w.key_bytes("created by", c.as_bytes());
        }
        if let Some(d) = self.creation_date {
            w.key_int("creation date", d);
        }
        w.bytes(b"info");
        w.0.extend_from_slice(&self.info_bytes);
        if !self.web_seeds.is_empty() {
            w.bytes(b"url-list");
            w.begin_list();
            for url in &self.web_seeds {
                w.bytes(url.as_bytes());
            }
            w.end();
        }
        w.end();
        out
    }

    /// The magnet link for this torrent: info hash, name, and every tracker.
    pub fn magnet(&self) -> Magnet {
        Magnet {
            info_hash: self.info_hash,
            display_name: Some(self.info.name.clone()),
            trackers: self.trackers.iter().flatten().cloned().collect(),
            web_seeds: self.web_seeds.clone(),
            exact_length: Some(self.info.total_length),
            peers: Vec::new(),
        }
    }
}
