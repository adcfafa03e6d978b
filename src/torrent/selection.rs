//! What to download: each piece's priority (from the files chosen and their priorities, or
//! a reader waiting for a piece) and whether pieces come in order. A torrent whose wanted
//! pieces are all verified is done: it seeds what it has (`Seeding`), and goes back to
//! downloading when more is wanted.

use super::{Action, Engine, TorrentState};
use crate::tracker::Event;
use std::time::{Duration, Instant};

/// When a seed is tried again after we closed it for having every wanted piece while
/// files are left out (wanting more tries every known peer at once).
pub const DONE_SEED_RETRY: Duration = Duration::from_secs(30 * 60);

impl Engine {
    /// Sets each piece's priority (see [`crate::picker::SKIP`] .. [`crate::picker::URGENT`];
    /// one per piece, else ignored). Interest and requests follow at once.
    pub fn set_piece_priorities(&mut self, now: Instant, priority: &[u8]) {
        if self.lacks_metadata() || priority.len() != self.geometry.pieces as usize {
            return;
        }
        let was_done = self.picker.is_done();
        self.picker.set_priorities(priority);
        let done = self.picker.is_done();
        if was_done && !done {
            // More is wanted: downloading again, and completing is news once more.
            self.downloading = true;
            if self.state == TorrentState::Seeding {
                self.set_state(TorrentState::Downloading);
                // The seeds we closed (nothing to want from them then) are wanted back
                // now, and the trackers are asked for peers.
                self.book.retry_all_now(now);
                self.dial_more(now);
                self.arm(now);
                self.actions
                    .push_back(Action::Announce { event: Event::None });
            }
        } else if !was_done && done && self.state == TorrentState::Paused && self.downloading {
            // Finished by leaving the rest out while paused: the news waits for resume.
            self.completed_while_paused = true;
        } else if !was_done && done && self.state == TorrentState::Downloading {
            // What is left is no longer wanted.
            self.actions.push_back(Action::Completed);
            self.set_state(TorrentState::Seeding);
            if self.downloading {
                self.actions.push_back(Action::Announce {
                    event: Event::Completed,
                });
            }
        }
        self.update_all_interest();
        if self.is_live() {
            self.refill_all(now);
        }
    }

    /// Raises the pieces in `pieces` to at least `priority` (a reader waits for them).
    pub fn raise_priority(&mut self, now: Instant, pieces: std::ops::Range<u32>, priority: u8) {
        let mut all = self.picker.priorities().to_vec();
        let mut changed = false;
        let count = all.len();
        for p in pieces.take_while(|&p| (p as usize) < count) {
            if all[p as usize] < priority {
                all[p as usize] = priority;
                changed = true;
            }
        }
        if changed {
            self.set_piece_priorities(now, &all);
        }
    }

    /// Pieces verified so far.
    pub fn pieces_have(&self) -> usize {
        self.picker.have_count()
    }

    /// Each piece's priority.
    pub fn piece_priorities(&self) -> &[u8] {
        self.picker.priorities()
    }

    /// Starts pieces in order (playing while downloading) or rarest first.
    pub fn set_sequential(&mut self, sequential: bool) {
        self.picker.set_sequential(sequential);
    }

    /// Bytes of the wanted pieces, and of those not verified yet.
    pub fn wanted_bytes(&self) -> (u64, u64) {
        if self.picker.wanted_count() == self.picker.piece_count() {
            // Every piece wanted (the usual case): no walk over the pieces.
            let total = self.geometry.total_length;
            return (total, total.saturating_sub(self.verified_bytes));
        }
        let priority = self.picker.priorities();
        let have = self.picker.have();
        let (mut wanted, mut left) = (0, 0);
        for (piece, &p) in priority.iter().enumerate() {
            if p != crate::picker::SKIP {
                let len = u64::from(self.geometry.piece_len(piece as u32));
                wanted += len;
                if !have[piece] {
                    left += len;
                }
            }
        }
        (wanted, left)
    }
}
