//! What the disk reports besides good hash checks: failed writes, failed reads, and pieces
//! checked again. A disk error costs the piece it concerned, never the torrent, unless
//! writes keep failing (a full or vanished disk).

use super::{Action, Engine, TorrentError, TorrentState};
use crate::core::PeerKey;
use crate::storage::AlignedBuf;
use std::time::Instant;

/// What reading a piece back from disk found ([`Action::HashOnDisk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskHash {
    /// It matched; each block's SHA-1 if they were asked for (else empty).
    Good(Vec<[u8; 20]>),
    /// It did not match; each block's SHA-1 (empty if they could not be read).
    Bad(Vec<[u8; 20]>),
    /// It could not be read (a disk problem, which proves nothing about the senders).
    Unreadable(String),
}

/// Failed writes in a row (no good one between) after which the torrent fails: the disk
/// is full or gone, and downloading more would only waste the peers' bandwidth.
pub const MAX_WRITE_ERRORS: u32 = 8;

impl Engine {
    /// A piece that verified could not be written ([`Action::Verify`]): it goes back to the
    /// picker and is downloaded again; `data` returns for reuse. `MAX_WRITE_ERRORS` (8) in a
    /// row fail the torrent.
    pub fn handle_write_failed(
        &mut self,
        now: Instant,
        piece: u32,
        data: AlignedBuf,
        message: String,
    ) {
        self.pool.push(data);
        if self.verifying.remove(&piece).is_none() {
            return;
        }
        self.picker.piece_failed(piece);
        if self.disk_failed(now, piece, "cannot save", message) {
            self.refill_all(now);
        }
    }

    /// An attempt at `piece` ended on a disk error (`what` says which, for the log): it is
    /// counted, and [`MAX_WRITE_ERRORS`] in a row fail the torrent. Returns whether the
    /// torrent goes on.
    pub(super) fn disk_failed(
        &mut self,
        now: Instant,
        piece: u32,
        what: &str,
        message: String,
    ) -> bool {
        self.counters.disk_errors += 1;
        self.write_errors += 1;
        tracing::warn!("{what} piece {piece}: {message}");
        if self.write_errors >= MAX_WRITE_ERRORS {
            self.fail(now, TorrentError::Write { piece, message });
            return false;
        }
        true
    }

    /// Reading piece `piece` to serve a peer failed: the request is dropped, the piece is no
    /// longer served and is checked again ([`Action::HashOnDisk`]): kept if the disk still
    /// holds it, downloaded again if not.
    pub fn handle_read_failed(&mut self, piece: u32, message: &str) {
        if !self.picker.have().get(piece as usize).is_some_and(|b| *b) {
            return;
        }
        self.counters.disk_errors += 1;
        tracing::warn!("cannot read piece {piece}: {message}; checking it again");
        self.picker.piece_rechecking(piece);
        self.rechecking.insert(piece);
        self.revocations += 1;
        self.actions.push_back(Action::HashOnDisk {
            piece,
            expected: self.hashes[piece as usize],
            block_hashes: false,
            attempt: None,
        });
    }

    /// The result of [`Action::HashOnDisk`]. A result for a piece that is neither being
    /// downloaded in blocks nor checked again (a late one) is ignored.
    pub fn handle_hashed_on_disk(&mut self, now: Instant, piece: u32, result: DiskHash) {
        if self.verifying.contains_key(&piece) {
            match result {
                DiskHash::Good(blocks) => self.spilled_verified(now, piece, true, &blocks),
                DiskHash::Bad(blocks) => self.spilled_verified(now, piece, false, &blocks),
                DiskHash::Unreadable(message) => {
                    // Nobody is blamed: the piece starts again, and a disk that keeps
                    // failing stops the torrent as failed writes do.
                    self.verifying.remove(&piece);
                    self.picker.piece_failed(piece);
                    if self.disk_failed(now, piece, "cannot read back", message) {
                        self.refill_all(now);
                    }
                }
            }
        } else if self.rechecking.remove(&piece) {
            if let DiskHash::Unreadable(message) = &result {
                tracing::warn!("cannot read piece {piece} again: {message}");
            }
            self.rechecked(now, piece, matches!(result, DiskHash::Good(_)));
        }
    }

    /// A piece we had, checked again after a failed read.
    fn rechecked(&mut self, now: Instant, piece: u32, good: bool) {
        if good {
            self.picker.piece_verified(piece);
            self.update_all_interest();
            return;
        }
        tracing::warn!("piece {piece} is no longer on disk: downloading it again");
        self.picker.piece_failed(piece);
        self.verified_bytes = self
            .verified_bytes
            .saturating_sub(u64::from(self.geometry.piece_len(piece)));
        // Incomplete again: completing is news for the trackers once more.
        self.downloading = true;
        if self.state == TorrentState::Seeding {
            self.set_state(TorrentState::Downloading);
        }
        self.update_all_interest();
        self.refill_all(now);
    }

    pub(super) fn update_all_interest(&mut self) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if self.peers.get(&key).is_some_and(|p| p.is_live()) {
                self.update_interest(key);
            }
        }
    }
}
