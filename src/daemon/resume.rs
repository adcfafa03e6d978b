//! Resume data: the verified pieces with each file's size and modification time as they
//! were after those pieces were written. On start a torrent whose files all still match is
//! added as it was, without hashing; the pieces of a file that differs (touched, grown,
//! cut, gone) are not trusted: they are hashed again, and the rest is kept.

use crate::storage::Layout;
use crate::wire::Bitfield;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::fs::MetadataExt;

/// A file's size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime: i64,
    pub mtime_ns: i64,
}

/// The verified pieces and what the files looked like when they were taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// Number of pieces (the bitfield's length).
    pub pieces: usize,
    /// The bitfield's bytes in base64, most significant bit first (the wire format).
    pub have: String,
    /// Per file of the torrent, in order: its stamp, or `None` if missing (or padding).
    pub files: Vec<Option<Stamp>>,
}

impl Resume {
    /// Resume data from verified pieces and the files' stamps taken after them.
    pub fn new(have: &Bitfield, files: Vec<Option<Stamp>>) -> Resume {
        // Spare bits past the last piece are clear, as on the wire (a bitfield made whole,
        // `repeat(true, n)`, can have them set).
        let mut bytes = have.as_raw_slice().to_vec();
        let spare = (bytes.len() * 8).saturating_sub(have.len());
        if let Some(last) = bytes.last_mut().filter(|_| spare > 0) {
            *last &= 0xFFu8 << spare;
        }
        Resume {
            pieces: have.len(),
            have: base64::engine::general_purpose::STANDARD.encode(bytes),
            files,
        }
    }

    /// The verified pieces, if the files are exactly as they were (`now`, from [`stamps`])
    /// and the data fits a torrent of `pieces` pieces; `None` means check the data.
    pub fn usable(&self, pieces: usize, now: &[Option<Stamp>]) -> Option<Bitfield> {
        if self.files.as_slice() != now {
            return None;
        }
        self.decode(pieces)
    }

    /// The saved bitfield, if it fits a torrent of `pieces` pieces.
    fn decode(&self, pieces: usize) -> Option<Bitfield> {
        if self.pieces != pieces {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.have)
            .ok()?;
        if bytes.len() != pieces.div_ceil(8) {
            return None;
        }
        let mut have = Bitfield::from_vec(bytes);
        // Spare bits past the last piece must be clear, as on the wire.
        if have[pieces..].any() {
            return None;
        }
        have.truncate(pieces);
        Some(have)
    }
}

/// What a start does with a torrent's saved resume data.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The saved pieces still trusted.
    pub have: Bitfield,
    /// Pieces to hash again before the torrent goes live (sorted, each once).
    pub recheck: Vec<u32>,
}

impl Resume {
    /// The saved pieces to keep and those to hash again, for the torrent laid out as
    /// `layout` whose files now look like `now`: every piece touching a file whose stamp
    /// changed is hashed again, and a file missing now has no piece kept (even if it was
    /// missing at the save too). `None`: the data does not fit the torrent (check it all).
    pub fn plan_for(&self, layout: &Layout, now: &[Option<Stamp>]) -> Option<Plan> {
        if self.files.len() != now.len() || layout.files.len() != now.len() {
            return None;
        }
        let pieces = layout.total_length.div_ceil(layout.piece_length.max(1)) as usize;
        let mut have = self.decode(pieces)?;
        let mut recheck = std::collections::BTreeSet::new();
        for ((file, then), now) in layout.files.iter().zip(&self.files).zip(now) {
            if file.padding || file.length == 0 || (then == now && now.is_some()) {
                continue;
            }
            let first = file.offset / layout.piece_length;
            let last = (file.offset + file.length - 1) / layout.piece_length;
            for p in first..=last.min(pieces as u64 - 1) {
                have.set(p as usize, false);
                if now.is_some() {
                    recheck.insert(p as u32);
                }
            }
        }
        Some(Plan {
            have,
            recheck: recheck.into_iter().collect(),
        })
    }
}

/// Each file's stamp (following symlinks, as seeding reads do); `None` for a padding file
/// or one that is missing or not a regular file.
pub fn stamps(layout: &Layout) -> Vec<Option<Stamp>> {
    layout
        .files
        .iter()
        .map(|f| {
            if f.padding {
                return None;
            }
            let m = std::fs::metadata(&f.path).ok().filter(|m| m.is_file())?;
            Some(Stamp {
                size: m.len(),
                mtime: m.mtime(),
                mtime_ns: m.mtime_nsec(),
            })
        })
        .collect()
}

/// Flushes to disk the files whose stamps differ from `before` (written since the last
/// save), so resume data never outlives the data it describes in a power cut.
pub fn sync_changed(layout: &Layout, before: Option<&[Option<Stamp>]>, now: &[Option<Stamp>]) {
    for (i, f) in layout.files.iter().enumerate() {
        let old = before.and_then(|b| b.get(i).copied()).flatten();
        if now.get(i).copied().flatten().is_some() && old != now[i] {
            if let Ok(file) = File::open(&f.path) {
                let _ = file.sync_data();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(size: u64, mtime: i64) -> Option<Stamp> {
        Some(Stamp {
            size,
            mtime,
            mtime_ns: 5,
        })
    }

    #[test]
    fn resume_data_holds_only_while_every_file_is_unchanged() {
        let mut have = Bitfield::repeat(false, 11);
        have.set(0, true);
        have.set(10, true);
        let files = vec![stamp(100, 7), None];
        let r = Resume::new(&have, files.clone());
        assert_eq!(r.usable(11, &files), Some(have));
        // Touched, grown, gone, or another torrent's shape: check again.
        assert_eq!(r.usable(11, &[stamp(100, 8), None]), None);
        assert_eq!(r.usable(11, &[stamp(101, 7), None]), None);
        assert_eq!(r.usable(11, &[None, None]), None);
        assert_eq!(r.usable(11, &[stamp(100, 7), stamp(1, 1)]), None);
        assert_eq!(r.usable(12, &files), None);
    }

    #[test]
    fn hostile_resume_bitfields_are_refused() {
        let files = vec![stamp(1, 1)];
        let bad = |have: &str, pieces| Resume {
            pieces,
            have: have.into(),
            files: files.clone(),
        };
        assert_eq!(bad("!!", 3).usable(3, &files), None);
        // Two bytes for three pieces, and a spare bit set.
        assert_eq!(bad("AAA=", 3).usable(3, &files), None);
        assert_eq!(
            bad("4A==", 3).usable(3, &files),
            Some(Bitfield::repeat(true, 3))
        );
        assert_eq!(bad("8A==", 3).usable(3, &files), None);
    }

    /// A file of `length` bytes at `offset` in the torrent, not on disk.
    fn slot(offset: u64, length: u64) -> crate::storage::FileSlot {
        crate::storage::FileSlot {
            path: "/nonexistent".into(),
            offset,
            length,
            padding: false,
        }
    }

    #[test]
    fn a_file_missing_at_save_and_at_start_voids_its_pieces() {
        // Two files of 20 bytes in pieces of 10: pieces 0-1 and 2-3.
        let layout = Layout {
            piece_length: 10,
            total_length: 40,
            files: vec![slot(0, 20), slot(20, 20)],
        };
        let files = vec![stamp(20, 7), None];
        let mut have = Bitfield::repeat(false, 4);
        have.set(0, true);
        have.set(1, true);
        let plan = |r: &Resume| r.plan_for(&layout, &files).unwrap();
        // The missing file's pieces are not had: kept as it is, nothing to hash.
        let r = Resume::new(&have, files.clone());
        let kept = plan(&r);
        assert_eq!((kept.have, kept.recheck), (have.clone(), vec![]));
        // They are had (the file was deleted while seeding): not any more.
        let mut claimed = have.clone();
        claimed.set(3, true);
        let r = Resume::new(&claimed, files.clone());
        assert_eq!(r.usable(4, &files), Some(claimed));
        let kept = plan(&r);
        assert_eq!((kept.have, kept.recheck), (have, vec![]));
    }

    #[test]
    fn only_the_pieces_of_changed_files_are_hashed_again() {
        // Three files of 15 bytes in pieces of 10: pieces 0-1, 1-2 and 3-4.
        let layout = Layout {
            piece_length: 10,
            total_length: 45,
            files: vec![slot(0, 15), slot(15, 15), slot(30, 15)],
        };
        let then = vec![stamp(15, 1), stamp(15, 2), stamp(15, 3)];
        let r = Resume::new(&Bitfield::repeat(true, 5), then.clone());
        let plan = r.plan_for(&layout, &then).unwrap();
        assert_eq!((plan.have.count_ones(), plan.recheck), (5, vec![]));
        // The middle file touched: its pieces (one shared with each neighbour) are hashed
        // again; the last file gone: its pieces are dropped, with nothing to hash.
        let now = vec![stamp(15, 1), stamp(15, 9), None];
        let plan = r.plan_for(&layout, &now).unwrap();
        assert_eq!(plan.recheck, vec![1, 2]);
        assert_eq!(plan.have.iter_ones().collect::<Vec<_>>(), vec![0]);
        // Another torrent's shape: check everything.
        assert_eq!(r.plan_for(&layout, &now[..2]), None);
        let other = Resume::new(&Bitfield::repeat(true, 4), then.clone());
        assert_eq!(other.plan_for(&layout, &then), None);
    }
}
