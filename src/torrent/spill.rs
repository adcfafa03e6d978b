//! Large pieces: written to disk block by block as they arrive, and hashed from disk once
//! complete, so memory for pieces in flight stays within [`WRITE_BACKLOG`] (blocks
//! requested plus blocks waiting for the disk) whatever the piece length. A piece of
//! 256 MiB would otherwise be buffered whole.
//!
//! Unverified bytes on disk are harmless: a piece is marked had, announced and served only
//! after the hash of what the disk holds matched. A failed hash means the piece is
//! downloaded again over the same bytes; a restart checks the disk anyway.

use super::{Action, Engine, PieceBuf};
use crate::core::BLOCK_LEN;
use crate::storage::AlignedBuf;
use std::time::Instant;

/// Pieces longer than this are spilled to disk block by block (shorter ones are held in
/// memory and written whole after their hash check, with `O_DIRECT` where possible).
pub const SPILL_PIECE: u64 = 2 << 20;
/// Bytes of blocks of spilled pieces requested or waiting for their write, at most.
pub const WRITE_BACKLOG: u64 = 8 << 20;
/// Below this many blocks of budget, a landed write refills every peer.
const LOW_BUDGET: usize = 64;

impl Engine {
    /// Whether this torrent's pieces are spilled (see the module documentation).
    pub(super) fn spills(&self) -> bool {
        self.geometry.piece_length > SPILL_PIECE
    }

    /// A needed block of a spilled piece arrived: it goes to the disk now.
    pub(super) fn spill_block(&mut self, piece: u32, offset: u32, data: &[u8]) {
        let mut buf = self.block_pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        *self.unwritten.entry(piece).or_default() += 1;
        self.unwritten_bytes += data.len() as u64;
        let attempt = self.attempts.get(&piece).copied().unwrap_or_default();
        self.actions.push_back(Action::Write {
            piece,
            offset,
            data: buf,
            attempt,
        });
    }

    /// A spilled piece has all its blocks: hash it from disk once they are all written.
    pub(super) fn spilled_piece_complete(&mut self, piece: u32, buf: PieceBuf) {
        self.verifying.insert(piece, buf.senders);
        if !self.unwritten.contains_key(&piece) {
            self.hash_spilled(piece);
        }
    }

    fn hash_spilled(&mut self, piece: u32) {
        self.actions.push_back(Action::HashOnDisk {
            piece,
            expected: self.hashes[piece as usize],
            block_hashes: self.bans.has_suspects(piece),
            attempt: self.attempts.remove(&piece),
        });
    }

    /// A block from [`Action::Write`] reached the disk (or failed to); `data` is handed
    /// back for reuse.
    pub fn handle_written(
        &mut self,
        now: Instant,
        piece: u32,
        data: Vec<u8>,
        result: Result<(), String>,
    ) {
        let was_short = self.spill_budget() < LOW_BUDGET;
        self.unwritten_bytes = self.unwritten_bytes.saturating_sub(data.len() as u64);
        if self.block_pool.len() < 64 {
            self.block_pool.push(data);
        }
        let left = match self.unwritten.get_mut(&piece) {
            Some(n) => {
                *n -= 1;
                *n
            }
            None => return,
        };
        if left == 0 {
            self.unwritten.remove(&piece);
        }
        match result {
            Err(message) => {
                // One error per attempt at the piece: the attempt ends here, and the
                // errors of its other blocks still on the way say nothing new.
                let active =
                    self.partial.remove(&piece).is_some() | self.verifying.remove(&piece).is_some();
                if active {
                    if !self.disk_failed(now, piece, "cannot save a block of", message) {
                        return;
                    }
                    self.restart_piece(piece);
                }
            }
            Ok(()) => {
                self.write_errors = 0;
                if left == 0 && self.verifying.contains_key(&piece) {
                    self.hash_spilled(piece);
                }
            }
        }
        if left == 0 && self.draining.remove(&piece) {
            // Its last old write landed: a new attempt cannot be overwritten by it.
            self.picker.piece_failed(piece);
            self.refill_all(now);
        } else if was_short && self.spill_budget() >= LOW_BUDGET {
            self.refill_all(now);
        }
    }

    /// A spilled piece must start again. While writes of the old attempt are still on
    /// the way (the pool has several threads), it is parked: not picked until they
    /// landed, so none of them can overwrite a block of the new attempt.
    pub(super) fn restart_piece(&mut self, piece: u32) {
        self.attempts.remove(&piece);
        if self.unwritten.contains_key(&piece) {
            self.picker.piece_parked(piece);
            self.draining.insert(piece);
        } else {
            self.picker.piece_failed(piece);
        }
    }

    /// Blocks that may still be requested for spilled pieces: the write backlog less
    /// what waits for the disk and what is already requested.
    pub(super) fn spill_budget(&self) -> usize {
        let requested = self.picker.requested_total() as u64 * u64::from(BLOCK_LEN);
        (WRITE_BACKLOG.saturating_sub(self.unwritten_bytes + requested) / u64::from(BLOCK_LEN))
            as usize
    }

    /// The hash of a spilled piece, read from disk ([`Action::HashOnDisk`] for a piece
    /// being downloaded). `block_hashes` holds each block's SHA-1 when the piece failed or
    /// when asked for.
    pub(super) fn spilled_verified(
        &mut self,
        now: Instant,
        piece: u32,
        good: bool,
        block_hashes: &[[u8; 20]],
    ) {
        let Some(senders) = self.verifying.remove(&piece) else {
            return;
        };
        let len = u64::from(self.geometry.piece_len(piece));
        let banned = self.judge(piece, good, len, &senders, |bans, good| {
            if good && block_hashes.is_empty() {
                // The blocks could not be read back: keep the suspects for a later proof.
                Vec::new()
            } else if good {
                bans.piece_verified_hashes(piece, block_hashes)
            } else {
                bans.piece_failed_hashes(piece, block_hashes, &senders)
            }
        });
        self.after_verification(now, piece, good, banned);
    }
}

/// A reusable piece buffer for an in-memory piece, or none for a spilled one.
pub(super) fn piece_buffer(pool: &mut Vec<AlignedBuf>, spill: bool, len: usize) -> AlignedBuf {
    if spill {
        return AlignedBuf::default();
    }
    let mut data = pool.pop().unwrap_or_default();
    data.resize(len);
    data
}
