//! The one place that decides whether a torrent path element is safe on disk.
//!
//! Policy: unsafe elements are refused, never rewritten, so a torrent either maps onto
//! files strictly inside the target folder or does not load at all.

use std::path::PathBuf;

/// Why a path element from a torrent is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafePath {
    Empty,
    Dot,
    DotDot,
    Separator,
    Nul,
    DrivePrefix,
}

impl std::fmt::Display for UnsafePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnsafePath::Empty => "empty path element",
            UnsafePath::Dot => "path element '.'",
            UnsafePath::DotDot => "path element '..' (would leave the download folder)",
            UnsafePath::Separator => "path element contains '/' or '\\'",
            UnsafePath::Nul => "path element contains a NUL byte",
            UnsafePath::DrivePrefix => "path element starts with a drive prefix like 'C:'",
        })
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
        _ => Ok(()),
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
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in ["a", ".hidden", "...", "file.txt", "ab:c", "名前", ".pad"] {
            assert_eq!(check_element(name), Ok(()), "{name}");
        }
    }
}
