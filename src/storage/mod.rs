//! Storage: how a torrent's pieces map onto files on disk, and hashing them.
//!
//! This module owns the byte-range arithmetic between the torrent's concatenated data and
//! its files, and the one hashing pipeline that `create`, `verify` and the peer engine share.
//! It only reads and writes paths handed to it by [`Layout`], whose relative parts come from
//! validated metainfo: it never builds a path from raw torrent bytes.

mod delete;
mod files;
mod hasher;
mod open;

pub use delete::{delete_files, Deleted};
pub use files::{Access, AlignedBuf, Storage, StorageError, DIRECT_ALIGN};
pub use hasher::{hash_pieces, HashError, HashOptions, PieceHash};
pub use open::{raise_open_file_limit, OpenFiles, DEFAULT_OPEN_FILES};

use std::ops::Range;
use std::path::PathBuf;

/// One file's place in the torrent's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSlot {
    /// Where the file lives on disk.
    pub path: PathBuf,
    /// Offset of the file's first byte in the torrent's data.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// BEP 47 padding: reads as zeros, never touches the disk.
    pub padding: bool,
}

/// The piece geometry of a torrent and where its files are.
#[derive(Debug, Clone)]
pub struct Layout {
    pub piece_length: u64,
    pub total_length: u64,
    pub files: Vec<FileSlot>,
}

/// A run of bytes inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index into [`Layout::files`].
    pub file: usize,
    /// Offset inside that file.
    pub file_offset: u64,
    /// Length of the run.
    pub len: u64,
}

impl Layout {
    /// Builds a layout from files listed in torrent order (offsets are computed here).
    /// `piece_length` must be positive.
    pub fn new(piece_length: u64, files: impl IntoIterator<Item = (PathBuf, u64, bool)>) -> Layout {
        assert!(piece_length > 0, "piece length must be positive");
        let mut offset = 0;
        let files = files
            .into_iter()
            .map(|(path, length, padding)| {
                let slot = FileSlot {
                    path,
                    offset,
                    length,
                    padding,
                };
                offset += length;
                slot
            })
            .collect();
        Layout {
            piece_length,
            total_length: offset,
            files,
        }
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> usize {
        self.total_length.div_ceil(self.piece_length) as usize
    }

    /// Byte range of piece `index` in the torrent's data (the last one may be short).
    pub fn piece_range(&self, index: usize) -> Range<u64> {
        let start = (index as u64)
            .saturating_mul(self.piece_length)
            .min(self.total_length);
        start..(start + self.piece_length).min(self.total_length)
    }

    /// The file runs that make up `range`, in order; empty files never appear.
    pub fn segments(&self, range: Range<u64>) -> impl Iterator<Item = Segment> + '_ {
        let first = self
            .files
            .partition_point(|f| f.offset + f.length <= range.start);
        self.files[first..]
            .iter()
            .enumerate()
            .take_while(move |(_, f)| f.offset < range.end)
            .filter(|(_, f)| f.length > 0)
            .map(move |(i, f)| {
                let start = range.start.max(f.offset);
                let end = range.end.min(f.offset + f.length);
                Segment {
                    file: first + i,
                    file_offset: start - f.offset,
                    len: end - start,
                }
            })
    }

    /// Indexes of the pieces that hold bytes of file `file` (none for an empty file).
    pub fn pieces_of_file(&self, file: usize) -> Range<usize> {
        let f = &self.files[file];
        if f.length == 0 {
            return 0..0;
        }
        let first = f.offset / self.piece_length;
        let last = (f.offset + f.length - 1) / self.piece_length;
        first as usize..last as usize + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        // Files: a=5, empty=0, b=10, c=1 → total 16, pieces of 4 → 4 pieces.
        Layout::new(
            4,
            [("a", 5), ("empty", 0), ("b", 10), ("c", 1)]
                .map(|(p, l)| (PathBuf::from(p), l, false)),
        )
    }

    #[test]
    fn pieces_cross_file_boundaries_and_skip_empty_files() {
        let l = layout();
        assert_eq!(l.piece_count(), 4);
        let seg = |file, file_offset, len| Segment {
            file,
            file_offset,
            len,
        };
        assert_eq!(
            l.segments(l.piece_range(0)).collect::<Vec<_>>(),
            [seg(0, 0, 4)]
        );
        assert_eq!(
            l.segments(l.piece_range(1)).collect::<Vec<_>>(),
            [seg(0, 4, 1), seg(2, 0, 3)]
        );
        assert_eq!(
            l.segments(l.piece_range(3)).collect::<Vec<_>>(),
            [seg(2, 7, 3), seg(3, 0, 1)]
        );
    }

    #[test]
    fn short_last_piece() {
        let l = Layout::new(4, [(PathBuf::from("x"), 10, false)]);
        assert_eq!(l.piece_count(), 3);
        assert_eq!(l.piece_range(2), 8..10);
        assert_eq!(l.pieces_of_file(0), 0..3);
    }

    #[test]
    fn indexes_past_the_end_are_empty_not_a_panic() {
        let l = layout();
        assert_eq!(l.piece_range(usize::MAX), 16..16);
        assert_eq!(l.segments(l.piece_range(usize::MAX)).count(), 0);
    }

    #[test]
    fn pieces_of_each_file() {
        let l = layout();
        assert_eq!(l.pieces_of_file(0), 0..2);
        assert_eq!(l.pieces_of_file(1), 0..0);
        assert_eq!(l.pieces_of_file(2), 1..4);
        assert_eq!(l.pieces_of_file(3), 3..4);
    }
}
