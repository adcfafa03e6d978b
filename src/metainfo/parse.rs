//! Loading: bytes → checked bencode read in place ([`Lazy`]) → validated [`Metainfo`].
//!
//! Fields are read from the checked bytes rather than through serde so that every error can
//! say which field, at which byte offset, was wrong. No bencode value tree is built beside
//! the typed result: memory goes to what is kept (see the README for the bound).

use super::files::parse_files;
use super::path::check_element;
use super::{FileEntry, Info, InfoHash, Metainfo, Version};
use crate::bencode::{self, DecodeError, Lazy, Limits};
use sha1::{Digest, Sha1};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest .torrent file accepted (64 MiB: over 3 million pieces).
pub const MAX_TORRENT_FILE_SIZE: u64 = 64 << 20;
/// Largest piece length accepted (256 MiB); hashing buffers never grow with it.
pub const MAX_PIECE_LENGTH: u64 = 256 << 20;

/// Why a .torrent could not be loaded.
#[derive(Debug, Error)]
pub enum MetainfoError {
    #[error("cannot read {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the file is {size} bytes; a .torrent may be at most {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error(transparent)]
    Bencode(#[from] DecodeError),
    #[error("'{field}' at byte {offset}: {problem}")]
    Field {
        field: String,
        offset: usize,
        problem: String,
    },
    #[error("'{field}' is missing from the {place}")]
    Missing {
        field: &'static str,
        place: &'static str,
    },
    #[error("not supported yet: {0}")]
    Unsupported(String),
}

pub(super) fn field_err(
    field: impl Into<String>,
    at: &Lazy<'_>,
    problem: impl Into<String>,
) -> MetainfoError {
    MetainfoError::Field {
        field: field.into(),
        offset: at.span.start,
        problem: problem.into(),
    }
}

pub(super) fn wrong_type(field: impl Into<String>, at: &Lazy<'_>, expected: &str) -> MetainfoError {
    field_err(
        field,
        at,
        format!("expected {expected}, found {}", at.type_name()),
    )
}

fn int(field: &str, v: &Lazy<'_>) -> Result<i64, MetainfoError> {
    v.as_int().ok_or_else(|| wrong_type(field, v, "an integer"))
}

fn bytes<'a>(field: &str, v: &Lazy<'a>) -> Result<&'a [u8], MetainfoError> {
    v.as_bytes().ok_or_else(|| wrong_type(field, v, "a string"))
}

/// Text from a string field; invalid UTF-8 is replaced and noted in `warnings`. `field`
/// names the field, and is only called when there is something to say.
pub(super) fn text<'a>(
    field: impl Fn() -> String,
    v: &Lazy<'a>,
    warnings: &mut Vec<String>,
) -> Result<Cow<'a, str>, MetainfoError> {
    let raw = v
        .as_bytes()
        .ok_or_else(|| wrong_type(field(), v, "a string"))?;
    Ok(match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            warnings.push(format!(
                "'{}' at byte {} is not UTF-8; invalid bytes were replaced",
                field(),
                v.span.start
            ));
            String::from_utf8_lossy(raw)
        }
    })
}

/// A dictionary's entries, read once: each lookup in a [`Lazy`] walks the dictionary, and
/// the top level and `info` hold the whole file list.
struct Dict<'a> {
    at: Lazy<'a>,
    entries: Vec<(&'a [u8], Lazy<'a>)>,
}

impl<'a> Dict<'a> {
    fn new(field: &str, v: &Lazy<'a>) -> Result<Dict<'a>, MetainfoError> {
        let entries = v
            .dict()
            .ok_or_else(|| wrong_type(field, v, "a dictionary"))?
            .collect();
        Ok(Dict {
            at: v.clone(),
            entries,
        })
    }

    /// The first entry for `key`.
    fn get(&self, key: &str) -> Option<&Lazy<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }
}

/// Text from `key.utf-8` when present and valid, else from `key` (BEP 3 extension used by
/// many clients for names in legacy encodings).
fn utf8_preferred(
    dict: &Dict<'_>,
    key: &'static str,
    place: &'static str,
    warnings: &mut Vec<String>,
) -> Result<String, MetainfoError> {
    let utf8_key = format!("{key}.utf-8");
    if let Some(s) = dict.get(&utf8_key).and_then(Lazy::as_str) {
        return Ok(s.to_owned());
    }
    let v = dict
        .get(key)
        .ok_or(MetainfoError::Missing { field: key, place })?;
    Ok(text(|| key.to_owned(), v, warnings)?.into_owned())
}

pub(super) fn load(path: &Path) -> Result<Metainfo, MetainfoError> {
    let io = |source| MetainfoError::Io {
        path: path.to_owned(),
        error: source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_TORRENT_FILE_SIZE {
        return Err(MetainfoError::TooLarge {
            size,
            max: MAX_TORRENT_FILE_SIZE,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse(&bytes)
}

pub(super) fn parse(input: &[u8]) -> Result<Metainfo, MetainfoError> {
    if input.len() as u64 > MAX_TORRENT_FILE_SIZE {
        return Err(MetainfoError::TooLarge {
            size: input.len() as u64,
            max: MAX_TORRENT_FILE_SIZE,
        });
    }
    let doc = bencode::decode_lazy(input, Limits::default())?;
    let mut warnings: Vec<String> = doc.warnings.iter().map(|w| w.to_string()).collect();
    let root = Dict::new("(top level)", &doc.root)?;
    let info_value = root.get("info").ok_or(MetainfoError::Missing {
        field: "info",
        place: "top-level dictionary",
    })?;
    let info = Dict::new("info", info_value)?;
    let info_bytes: std::sync::Arc<[u8]> = input[info_value.span.clone()].into();
    let info_hash = InfoHash(Sha1::digest(&info_bytes).into());
    let (info, version) = parse_info(&info, &mut warnings)?;

    let trackers = parse_trackers(&root, &mut warnings);
    let web_seeds = match root.get("url-list") {
        Some(v) if v.as_bytes().is_some() => v.as_str().into_iter().map(str::to_owned).collect(),
        Some(v) => url_list(v),
        None => Vec::new(),
    };
    let optional_text = |key: &str, warnings: &mut Vec<String>| -> Option<String> {
        let v = root.get(key)?;
        text(|| key.to_owned(), v, warnings)
            .ok()
            .map(Cow::into_owned)
    };
    let comment = optional_text("comment", &mut warnings);
    let created_by = optional_text("created by", &mut warnings);
    let creation_date = root.get("creation date").and_then(Lazy::as_int);

    Ok(Metainfo {
        info_hash,
        info,
        info_bytes,
        trackers,
        web_seeds,
        comment,
        created_by,
        creation_date,
        version,
        warnings,
    })
}

/// Parses a bare info dictionary (metadata fetched from peers, BEP 9) into a
/// [`Metainfo`] with the given trackers, with the same checks as a .torrent's. The info
/// hash is the SHA-1 of `input`.
pub(super) fn parse_info_bytes(
    input: &[u8],
    trackers: Vec<Vec<String>>,
) -> Result<Metainfo, MetainfoError> {
    let doc = bencode::decode_lazy(input, Limits::default())?;
    let mut warnings: Vec<String> = doc.warnings.iter().map(|w| w.to_string()).collect();
    let info = Dict::new("info", &doc.root)?;
    let (info, version) = parse_info(&info, &mut warnings)?;
    Ok(Metainfo {
        info_hash: InfoHash(Sha1::digest(input).into()),
        info,
        info_bytes: input.into(),
        trackers,
        web_seeds: Vec::new(),
        comment: None,
        created_by: None,
        creation_date: None,
        version,
        warnings,
    })
}

/// The non-empty UTF-8 strings of a list (nothing if `v` is not a list).
fn url_list(v: &Lazy<'_>) -> Vec<String> {
    v.list()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str())
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

/// BEP 12 tiers from `announce-list`, or the single `announce` URL. Malformed entries are
/// skipped with a warning: trackers are hints, not part of the torrent's identity.
fn parse_trackers(root: &Dict<'_>, warnings: &mut Vec<String>) -> Vec<Vec<String>> {
    let mut tiers = Vec::new();
    if let Some(list) = root.get("announce-list") {
        for tier in list.list().into_iter().flatten() {
            let urls = url_list(&tier);
            if urls.is_empty() {
                warnings.push(format!(
                    "'announce-list' tier at byte {} has no usable URL; skipped",
                    tier.span.start
                ));
            } else {
                tiers.push(urls);
            }
        }
    }
    if tiers.is_empty() {
        if let Some(url) = root.get("announce").and_then(Lazy::as_str) {
            if !url.is_empty() {
                tiers.push(vec![url.to_owned()]);
            }
        }
    }
    tiers
}

fn parse_info(
    info: &Dict<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Info, Version), MetainfoError> {
    let place = "info dictionary";
    let version = match info.get("meta version") {
        None => Version::V1,
        Some(v) => match int("info.meta version", v)? {
            1 => Version::V1,
            2 if info.get("pieces").is_none() => {
                return Err(MetainfoError::Unsupported(
                    "v2-only torrent (BEP 52): it has no v1 'pieces'; only v1 and hybrid torrents can be used"
                        .into(),
                ))
            }
            2 => Version::Hybrid,
            n => return Err(MetainfoError::Unsupported(format!("'meta version' {n}"))),
        },
    };

    let name = utf8_preferred(info, "name", place, warnings)?;
    if let Err(why) = check_element(&name) {
        let at = info
            .get("name.utf-8")
            .or(info.get("name"))
            .unwrap_or(&info.at);
        return Err(field_err("info.name", at, format!("unsafe name: {why}")));
    }

    let pl_value = info.get("piece length").ok_or(MetainfoError::Missing {
        field: "piece length",
        place,
    })?;
    let piece_length = int("info.piece length", pl_value)?;
    if piece_length <= 0 || piece_length as u64 > MAX_PIECE_LENGTH {
        return Err(field_err(
            "info.piece length",
            pl_value,
            format!("{piece_length} is outside 1..={MAX_PIECE_LENGTH}"),
        ));
    }
    let piece_length = piece_length as u64;

    let pieces_value = info.get("pieces").ok_or(MetainfoError::Missing {
        field: "pieces",
        place,
    })?;
    let pieces_raw = bytes("info.pieces", pieces_value)?;
    if pieces_raw.len() % 20 != 0 {
        return Err(field_err(
            "info.pieces",
            pieces_value,
            format!("length {} is not a multiple of 20", pieces_raw.len()),
        ));
    }

    let private = match info.get("private") {
        None => false,
        Some(v) => int("info.private", v)? == 1,
    };
    let source = match info.get("source") {
        Some(v) => Some(text(|| "info.source".into(), v, warnings)?.into_owned()),
        None => None,
    };

    let (files, multi_file) =
        match (info.get("length"), info.get("files")) {
            (Some(_), Some(files)) => return Err(field_err(
                "info.files",
                files,
                "both 'length' and 'files' are present; a torrent is either one file or a folder",
            )),
            (None, None) => {
                return Err(MetainfoError::Missing {
                    field: "length' or 'files",
                    place,
                })
            }
            (Some(length), None) => {
                let file = FileEntry {
                    path: name.as_str().into(),
                    length: file_length(|| "info.length".into(), length)?,
                    offset: 0,
                    padding: false,
                    attr: info.get("attr").and_then(Lazy::as_str).unwrap_or("").into(),
                };
                (vec![file], false)
            }
            (None, Some(files)) => (parse_files(files, name.len(), warnings)?, true),
        };
    let total_length = files.last().map_or(0, |f| f.offset + f.length);
    if total_length == 0 {
        return Err(MetainfoError::Field {
            field: "info".into(),
            offset: info.at.span.start,
            problem: "the torrent holds no data (total size 0)".into(),
        });
    }
    let expected = total_length.div_ceil(piece_length);
    let actual = (pieces_raw.len() / 20) as u64;
    if actual != expected {
        return Err(field_err(
            "info.pieces",
            pieces_value,
            format!(
                "has {actual} hashes but {total_length} bytes in pieces of {piece_length} need {expected}"
            ),
        ));
    }
    let pieces = pieces_raw
        .chunks_exact(20)
        .map(|c| c.try_into().expect("chunks of 20"))
        .collect();
    let info = Info {
        name,
        piece_length,
        pieces,
        private,
        source,
        files,
        multi_file,
        total_length,
    };
    Ok((info, version))
}

/// A file's length; `field` is only called to name it in an error.
pub(super) fn file_length(field: impl Fn() -> String, v: &Lazy<'_>) -> Result<u64, MetainfoError> {
    let len = v
        .as_int()
        .ok_or_else(|| wrong_type(field(), v, "an integer"))?;
    u64::try_from(len).map_err(|_| field_err(field(), v, format!("negative length {len}")))
}
