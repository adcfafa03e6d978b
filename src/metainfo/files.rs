//! The `files` list of a multi-file torrent: each entry's length, checked path and BEP 47
//! attributes, read in place; paths that would share bytes on disk are refused.

use super::parse::{field_err, file_length, text, wrong_type, MetainfoError};
use super::path::{check_element, Clash, PathSet, UnsafePath, MAX_PATH_BYTES};
use super::FileEntry;
use crate::bencode::Lazy;

/// The entries of `files`, with offsets. `name_len` (the torrent's folder name) counts
/// towards each path's [`MAX_PATH_BYTES`].
pub(super) fn parse_files(
    files: &Lazy<'_>,
    name_len: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<FileEntry>, MetainfoError> {
    let items = files
        .list()
        .ok_or_else(|| wrong_type("info.files", files, "a list"))?;
    // Counting walks the list once more, and lets the result be allocated exactly.
    let count = items.clone().count();
    if count == 0 {
        return Err(field_err("info.files", files, "the file list is empty"));
    }
    let mut out = Vec::with_capacity(count);
    let mut offset: u64 = 0;
    let mut seen = PathSet::new();
    for (i, item) in items.enumerate() {
        let field = || format!("info.files[{i}]");
        let fields =
            Fields::read(&item).ok_or_else(|| wrong_type(field(), &item, "a dictionary"))?;
        let len_value = fields.length.clone().ok_or(MetainfoError::Missing {
            field: "length",
            place: "file entry",
        })?;
        let length = file_length(|| format!("{}.length", field()), &len_value)?;
        let path = file_path(&fields, i, name_len, warnings)?;
        let attr: Box<str> = fields
            .attr
            .as_ref()
            .and_then(Lazy::as_str)
            .unwrap_or("")
            .into();
        let padding = attr.contains('p');

        // Two entries for one path, or a path that is both a file and a folder, would make
        // two parts of the torrent share bytes on disk.
        if !padding {
            match seen.insert(path.split('/')) {
                Ok(()) => {}
                Err(Clash::Twice) => {
                    return Err(field_err(
                        field(),
                        &item,
                        format!("path '{path}' is used twice"),
                    ))
                }
                Err(Clash::FileIsFolder(depth)) => {
                    let folder: Vec<&str> = path.split('/').take(depth).collect();
                    return Err(field_err(
                        field(),
                        &item,
                        format!("'{}' is both a file and a folder", folder.join("/")),
                    ));
                }
            }
        }
        let end = offset
            .checked_add(length)
            .filter(|&end| end <= i64::MAX as u64)
            .ok_or_else(|| {
                field_err(
                    format!("{}.length", field()),
                    &len_value,
                    "total size overflows",
                )
            })?;
        out.push(FileEntry {
            path,
            length,
            offset,
            padding,
            attr,
        });
        offset = end;
    }
    Ok(out)
}

/// The keys of a file entry that loading reads, found in one walk over the entry (the first
/// of a duplicated key wins, as everywhere).
#[derive(Default)]
struct Fields<'a> {
    length: Option<Lazy<'a>>,
    path: Option<Lazy<'a>>,
    path_utf8: Option<Lazy<'a>>,
    attr: Option<Lazy<'a>>,
}

impl<'a> Fields<'a> {
    /// `None` when `item` is not a dictionary.
    fn read(item: &Lazy<'a>) -> Option<Fields<'a>> {
        let mut fields = Fields::default();
        for (key, value) in item.dict()? {
            let slot = match key {
                b"length" => &mut fields.length,
                b"path" => &mut fields.path,
                b"path.utf-8" => &mut fields.path_utf8,
                b"attr" => &mut fields.attr,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        Some(fields)
    }
}

/// The checked elements of file `i`'s path joined with '/' (no element holds one). Lengths
/// are checked element by element, so a huge path stops early.
fn file_path(
    item: &Fields<'_>,
    i: usize,
    name_len: usize,
    warnings: &mut Vec<String>,
) -> Result<Box<str>, MetainfoError> {
    let utf8 = item.path_utf8.clone().filter(|l| {
        l.list().is_some_and(|mut items| {
            items.clone().next().is_some() && items.all(|e| e.as_str().is_some())
        })
    });
    let (key, value) = match (utf8, item.path.clone()) {
        (Some(v), _) => ("path.utf-8", v),
        (None, Some(p)) => ("path", p),
        (None, None) => {
            return Err(MetainfoError::Missing {
                field: "path",
                place: "file entry",
            })
        }
    };
    let field = || format!("info.files[{i}].{key}");
    let elements = value
        .list()
        .ok_or_else(|| wrong_type(field(), &value, "a list"))?;
    let mut path = String::new();
    let mut path_len = name_len;
    for (j, e) in elements.enumerate() {
        let element_field = || format!("{}[{j}]", field());
        let s = text(element_field, &e, warnings)?;
        path_len += 1 + s.len();
        let checked = match check_element(&s) {
            Ok(()) if path_len > MAX_PATH_BYTES => Err(UnsafePath::PathTooLong(path_len)),
            other => other,
        };
        checked.map_err(|why| field_err(element_field(), &e, format!("unsafe path: {why}")))?;
        if j > 0 {
            path.push('/');
        }
        path.push_str(&s);
    }
    if path.is_empty() {
        return Err(field_err(field(), &value, "empty path"));
    }
    Ok(path.into_boxed_str())
}
