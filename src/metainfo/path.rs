//! The one place that decides whether a torrent path element is safe on disk.
//!
//! Policy: unsafe elements are refused, never rewritten, so a torrent either maps onto
//! files strictly inside the target folder or does not load at all. Lengths are capped as
//! file systems cap them, and every check costs time linear in the path's bytes.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;

/// Longest path element accepted, in bytes (NAME_MAX on common file systems).
pub const MAX_ELEMENT_BYTES: usize = 255;
/// Longest path accepted, in bytes, counted from the torrent's name with a '/' between
/// elements (PATH_MAX on Linux). It also bounds a path's depth to 2,048 elements.
pub const MAX_PATH_BYTES: usize = 4096;

/// Why a path element from a torrent is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafePath {
    Empty,
    Dot,
    DotDot,
    Separator,
    Nul,
    DrivePrefix,
    /// The element's length in bytes, over [`MAX_ELEMENT_BYTES`].
    ElementTooLong(usize),
    /// The path's length in bytes so far, over [`MAX_PATH_BYTES`].
    PathTooLong(usize),
}

impl std::fmt::Display for UnsafePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            UnsafePath::Empty => "empty path element",
            UnsafePath::Dot => "path element '.'",
            UnsafePath::DotDot => "path element '..' (would leave the download folder)",
            UnsafePath::Separator => "path element contains '/' or '\\'",
            UnsafePath::Nul => "path element contains a NUL byte",
            UnsafePath::DrivePrefix => "path element starts with a drive prefix like 'C:'",
            UnsafePath::ElementTooLong(n) => {
                return write!(
                    f,
                    "path element is {n} bytes long; at most {MAX_ELEMENT_BYTES} are allowed"
                )
            }
            UnsafePath::PathTooLong(n) => {
                return write!(
                    f,
                    "path is at least {n} bytes long; at most {MAX_PATH_BYTES} are allowed"
                )
            }
        };
        f.write_str(text)
    }
}

/// Checks one path element (a file or folder name) from a torrent.
pub fn check_element(element: &str) -> Result<(), UnsafePath> {
    let bytes = element.as_bytes();
    match element {
        "" => Err(UnsafePath::Empty),
        "." => Err(UnsafePath::Dot),
        ".." => Err(UnsafePath::DotDot),
        _ if bytes.iter().any(|&b| b == b'/' || b == b'\\') => Err(UnsafePath::Separator),
        _ if bytes.contains(&0) => Err(UnsafePath::Nul),
        _ if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' => {
            Err(UnsafePath::DrivePrefix)
        }
        _ if bytes.len() > MAX_ELEMENT_BYTES => Err(UnsafePath::ElementTooLong(bytes.len())),
        _ => Ok(()),
    }
}

/// Why a file's path cannot join the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// Another file has the same path, or a folder is there.
    Twice,
    /// The path's first `n` elements name another file, which would be a folder too.
    FileIsFolder(usize),
}

/// Whether an entry of [`PathSet`] is a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File,
    Folder,
}

/// The files of a torrent and the folders above them, to refuse two files at one path and
/// a path that is both a file and a folder (two parts of a torrent sharing bytes on disk).
///
/// Each path prefix is kept as a 64-bit hash chained from its parent's hash and its last
/// element, with a key random per process, so adding a path costs time linear in its bytes
/// and memory per distinct prefix, whatever the depth. Two different prefixes with one hash
/// (odds about n²/2⁶⁴, and the key is unknown to a torrent's author) could only refuse a
/// good torrent, never let a clash through.
#[derive(Debug, Default)]
pub struct PathSet {
    key: RandomState,
    entries: HashMap<u64, Entry>,
    hashed: usize,
}

impl PathSet {
    /// An empty set.
    pub fn new() -> PathSet {
        PathSet::default()
    }

    /// Adds the file at `elements` (checked elements, outermost first). After a clash the
    /// set may hold some of the path's folders: a torrent with a clash is refused whole.
    pub fn insert<'a>(&mut self, elements: impl IntoIterator<Item = &'a str>) -> Result<(), Clash> {
        use std::collections::hash_map::Entry::{Occupied, Vacant};
        let mut elements = elements.into_iter().peekable();
        let mut hash = 0u64;
        let mut depth = 0;
        while let Some(element) = elements.next() {
            depth += 1;
            self.hashed += element.len() + 8;
            hash = self.key.hash_one((hash, element));
            let last = elements.peek().is_none();
            match (self.entries.entry(hash), last) {
                (Vacant(v), _) => {
                    v.insert(if last { Entry::File } else { Entry::Folder });
                }
                (Occupied(_), true) => return Err(Clash::Twice),
                (Occupied(o), false) if *o.get() == Entry::File => {
                    return Err(Clash::FileIsFolder(depth))
                }
                (Occupied(_), false) => {}
            }
        }
        Ok(())
    }

    /// Bytes hashed so far (each element plus 8 for its parent's hash): the work done,
    /// which tests hold to a constant times the bytes of the paths added.
    pub fn work(&self) -> usize {
        self.hashed
    }
}

/// Joins already-checked elements into a relative path.
pub fn relative_path<'a>(elements: impl IntoIterator<Item = &'a str>) -> PathBuf {
    let path: PathBuf = elements.into_iter().collect();
    debug_assert!(path.is_relative());
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_escape() {
        assert_eq!(check_element(""), Err(UnsafePath::Empty));
        assert_eq!(check_element("."), Err(UnsafePath::Dot));
        assert_eq!(check_element(".."), Err(UnsafePath::DotDot));
        assert_eq!(check_element("/etc"), Err(UnsafePath::Separator));
        assert_eq!(check_element("a/../b"), Err(UnsafePath::Separator));
        assert_eq!(check_element("..\\x"), Err(UnsafePath::Separator));
        assert_eq!(check_element("a\0b"), Err(UnsafePath::Nul));
        assert_eq!(check_element("C:"), Err(UnsafePath::DrivePrefix));
        assert_eq!(check_element("c:evil"), Err(UnsafePath::DrivePrefix));
        let long = "x".repeat(MAX_ELEMENT_BYTES + 1);
        assert_eq!(check_element(&long), Err(UnsafePath::ElementTooLong(256)));
        assert_eq!(check_element(&long[1..]), Ok(()));
    }

    #[test]
    fn clashes_are_found_in_either_order() {
        let mut set = PathSet::new();
        assert_eq!(set.insert(["a", "b"]), Ok(()));
        assert_eq!(set.insert(["a", "c"]), Ok(()));
        assert_eq!(set.insert(["a", "b"]), Err(Clash::Twice));
        assert_eq!(set.insert(["a"]), Err(Clash::Twice), "a folder already");
        assert_eq!(set.insert(["a", "b", "c"]), Err(Clash::FileIsFolder(2)));
        // Elements are not confused with their concatenation.
        assert_eq!(set.insert(["ab"]), Ok(()));
        assert_eq!(set.insert(["b", "a"]), Ok(()));
    }

    #[test]
    fn deep_paths_cost_work_linear_in_their_bytes() {
        // 300 files 2,000 elements deep: a check that looks at every prefix of every path
        // (as before) does 300 x 2,000 x 2,000 / 2 element comparisons.
        let mut set = PathSet::new();
        let mut bytes = 0;
        for i in 0..300 {
            let last = format!("f{i}");
            let path: Vec<&str> = std::iter::repeat("a")
                .take(1999)
                .chain([last.as_str()])
                .collect();
            bytes += path.iter().map(|e| e.len() + 1).sum::<usize>();
            set.insert(path).unwrap();
        }
        assert!(set.work() <= 10 * bytes, "{} for {bytes} bytes", set.work());
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in ["a", ".hidden", "...", "file.txt", "ab:c", "名前", ".pad"] {
            assert_eq!(check_element(name), Ok(()), "{name}");
        }
    }
}
