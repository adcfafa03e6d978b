//! Choosing files: each file's priority (0 leaves it out) becomes each piece's (the highest
//! of the files the piece holds, so a piece shared with a wanted file is still fetched), and
//! each file's progress is read back from the verified pieces.

use super::{Session, SessionError, TorrentId};
use crate::metainfo::FileEntry;
use crate::picker::SKIP;

/// One file's state: its length, the bytes of it held in verified pieces, its priority.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileStat {
    pub path: String,
    pub length: u64,
    pub done_bytes: u64,
    pub priority: u8,
}

impl Session {
    /// Sets each file's priority, in the torrent's file order (padding files included):
    /// [`crate::picker::SKIP`] leaves a file out, [`crate::picker::NORMAL`] is the default,
    /// up to [`crate::picker::URGENT`].
    pub fn set_file_priorities(&self, id: TorrentId, priority: &[u8]) -> Result<(), SessionError> {
        let torrent = self.torrent(id)?;
        let meta = torrent.meta.get().ok_or(SessionError::NoMetadata(id))?;
        let files = &meta.info.files;
        if priority.len() != files.len() {
            return Err(SessionError::FileCount {
                id,
                files: files.len(),
                given: priority.len(),
            });
        }
        let pieces = piece_priorities(
            files,
            meta.info.piece_length,
            meta.info.pieces.len(),
            priority,
        );
        *super::driver::lock(&torrent.file_priority) = Some(priority.to_vec());
        self.drive(id, |e, now| e.set_piece_priorities(now, &pieces))
    }

    /// Downloads pieces in order (to play a file while it downloads), or rarest first.
    pub fn set_sequential(&self, id: TorrentId, sequential: bool) -> Result<(), SessionError> {
        self.drive(id, |e, _| e.set_sequential(sequential))
    }

    /// Each file's length, verified bytes and priority (`None`: no such torrent, or no
    /// metadata yet).
    pub fn file_stats(&self, id: TorrentId) -> Option<Vec<FileStat>> {
        let torrent = self.torrent(id).ok()?;
        let meta = torrent.meta.get()?;
        let priority = super::driver::lock(&torrent.file_priority).clone();
        let d = torrent.lock();
        let have = d.engine.have();
        let piece_length = meta.info.piece_length;
        Some(
            meta.info
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| FileStat {
                    path: f.path.to_string(),
                    length: f.length,
                    done_bytes: done_bytes(f, piece_length, |p| have.get(p).is_some_and(|b| *b)),
                    priority: priority
                        .as_ref()
                        .and_then(|p| p.get(i).copied())
                        .unwrap_or(crate::picker::NORMAL),
                })
                .collect(),
        )
    }
}

/// The pieces a file's bytes lie in.
fn piece_span(f: &FileEntry, piece_length: u64) -> std::ops::Range<usize> {
    if f.length == 0 || piece_length == 0 {
        return 0..0;
    }
    let first = f.offset / piece_length;
    let last = (f.offset + f.length - 1) / piece_length;
    first as usize..last as usize + 1
}

/// Each piece's priority: the highest of the files (not padding) it holds bytes of.
pub fn piece_priorities(
    files: &[FileEntry],
    piece_length: u64,
    pieces: usize,
    priority: &[u8],
) -> Vec<u8> {
    let mut out = vec![SKIP; pieces];
    for (f, &p) in files.iter().zip(priority) {
        if f.padding {
            continue;
        }
        for piece in piece_span(f, piece_length) {
            if let Some(slot) = out.get_mut(piece) {
                *slot = (*slot).max(p);
            }
        }
    }
    out
}

/// Bytes of `f` in pieces for which `had` holds.
fn done_bytes(f: &FileEntry, piece_length: u64, had: impl Fn(usize) -> bool) -> u64 {
    let end = f.offset + f.length;
    piece_span(f, piece_length)
        .filter(|&p| had(p))
        .map(|p| {
            let start = (p as u64 * piece_length).max(f.offset);
            let stop = ((p as u64 + 1) * piece_length).min(end);
            stop - start
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picker::{NORMAL, URGENT};

    fn file(offset: u64, length: u64, padding: bool) -> FileEntry {
        FileEntry {
            path: format!("f{offset}").into(),
            length,
            offset,
            padding,
            attr: "".into(),
        }
    }

    #[test]
    fn a_piece_takes_the_highest_priority_of_its_files_and_padding_counts_for_nothing() {
        // Pieces of 10 bytes: a [0,15), b [15,30), padding [30,40), c [40,45), empty d.
        let files = [
            file(0, 15, false),
            file(15, 15, false),
            file(30, 10, true),
            file(40, 5, false),
            file(45, 0, false),
        ];
        let p = piece_priorities(&files, 10, 5, &[SKIP, NORMAL, NORMAL, URGENT, NORMAL]);
        assert_eq!(p, vec![SKIP, NORMAL, NORMAL, SKIP, URGENT]);
        let p = piece_priorities(&files, 10, 5, &[NORMAL, SKIP, NORMAL, SKIP, SKIP]);
        assert_eq!(p, vec![NORMAL, NORMAL, SKIP, SKIP, SKIP]);
    }

    #[test]
    fn a_files_done_bytes_count_only_its_part_of_each_verified_piece() {
        let b = file(15, 15, false);
        assert_eq!(done_bytes(&b, 10, |p| p == 1), 5);
        assert_eq!(done_bytes(&b, 10, |p| p == 2), 10);
        assert_eq!(done_bytes(&b, 10, |_| true), 15);
        assert_eq!(done_bytes(&file(45, 0, false), 10, |_| true), 0);
    }
}
