//! What the disk reports besides good hash checks: failed writes, failed reads, and pieces
//! checked again. A disk error costs the piece it concerned, never the torrent, unless
//! writes keep failing (a full or vanished disk).

use super::{Action, Engine, TorrentError, TorrentState};
use crate::core::PeerKey;
use crate::storage::AlignedBuf;
use std::time::Instant;

/// Failed writes in a row (no good one between) after which the torrent fails: the disk
/// is full or gone, and downloading more would only waste the peers' bandwidth.
pub const MAX_WRITE_ERRORS: u32 = 8;

impl Engine {
    /// A piece that verified could not be written ([`Action::Verify`]): it goes back to the
    /// picker and is downloaded again; `data` returns for reuse. [`MAX_WRITE_ERRORS`] in a
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
        self.counters.disk_errors += 1;
        self.write_errors += 1;
        tracing::warn!("cannot save piece {piece}: {message}");
        self.picker.piece_failed(piece);
        if self.write_errors >= MAX_WRITE_ERRORS {
            self.fail(now, TorrentError::Write { piece, message });
            return;
        }
        self.refill_all(now);
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
        self.actions.push_back(Action::HashOnDisk {
            piece,
            expected: self.hashes[piece as usize],
            block_hashes: false,
        });
    }

    /// The result of [`Action::HashOnDisk`]: `good` if the piece was read and matched;
    /// `block_hashes`, each block's SHA-1 if asked for or if it failed (else empty).
    pub fn handle_hashed_on_disk(
        &mut self,
        now: Instant,
        piece: u32,
        good: bool,
        block_hashes: &[[u8; 20]],
    ) {
        if self.verifying.contains_key(&piece) {
            self.spilled_verified(now, piece, good, block_hashes);
        } else if self.rechecking.remove(&piece) {
            self.rechecked(now, piece, good);
        }
    }

    /// A piece we had, checked again after a failed read.
    fn rechecked(&mut self, now: Instant, piece: u32, good: bool) {
        if good {
            self.picker.piece_verified(piece);
            return;
        }
        tracing::warn!("piece {piece} is no longer on disk: downloading it again");
        self.picker.piece_failed(piece);
        self.verified_bytes = self
            .verified_bytes
            .saturating_sub(u64::from(self.geometry.piece_len(piece)));
        if self.state == TorrentState::Seeding {
            self.downloading = true;
            self.set_state(TorrentState::Downloading);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if self.peers.get(&key).is_some_and(|p| p.is_live()) {
                self.update_interest(key);
            }
        }
        self.refill_all(now);
    }
}
