//! The torrent's life: checking, live (downloading or seeding), paused, stopped, failed.

use super::{Action, DisconnectReason, Engine, TorrentError, TorrentState};
use crate::core::PeerKey;
use crate::tracker::Event;
use crate::wire::Bitfield;
use std::time::{Duration, Instant};

impl Engine {
    /// The check of the data on disk finished: `have` holds the pieces that verified (as
    /// many bits as pieces). The torrent goes live and announces itself. Ignored unless
    /// checking.
    pub fn handle_checked(&mut self, now: Instant, have: &Bitfield) {
        if self.state != TorrentState::Checking {
            return;
        }
        for piece in have
            .iter_ones()
            .take_while(|&p| p < self.geometry.pieces as usize)
        {
            let piece = piece as u32;
            if !self.picker.have()[piece as usize] {
                self.picker.set_have(piece);
                self.verified_bytes += u64::from(self.geometry.piece_len(piece));
            }
        }
        self.downloading = !self.picker.is_complete();
        self.go_live(now);
    }

    /// The check of the data on disk failed: the torrent fails.
    pub fn handle_check_failed(&mut self, now: Instant, error: TorrentError) {
        self.fail(now, error);
    }

    pub(super) fn go_live(&mut self, now: Instant) {
        let state = if self.picker.is_complete() {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        };
        self.set_state(state);
        self.actions.push_back(Action::Announce {
            event: Event::Started,
        });
        self.dial_more(now);
        self.arm(now);
    }

    /// Pauses: every connection closes, trackers are told we left. Ignored unless live.
    pub fn pause(&mut self, now: Instant) {
        if !self.is_live() {
            return;
        }
        self.drop_everyone(now, DisconnectReason::Paused);
        self.set_state(TorrentState::Paused);
        self.actions.push_back(Action::Announce {
            event: Event::Stopped,
        });
    }

    /// Resumes a paused torrent. Ignored unless paused.
    pub fn resume(&mut self, now: Instant) {
        if self.state == TorrentState::Paused {
            self.go_live(now);
        }
    }

    /// Stops for good: every connection closes and, if it was live, trackers are told.
    pub fn stop(&mut self, now: Instant) {
        let was_live = self.is_live();
        self.drop_everyone(now, DisconnectReason::Stopped);
        if !matches!(self.state, TorrentState::Failed) {
            self.set_state(TorrentState::Stopped);
        }
        if was_live {
            self.actions.push_back(Action::Announce {
                event: Event::Stopped,
            });
        }
    }

    /// A disk operation failed: the torrent cannot go on and moves to the failed state.
    pub fn handle_failed(&mut self, now: Instant, error: TorrentError) {
        self.fail(now, error);
    }

    pub(super) fn fail(&mut self, now: Instant, error: TorrentError) {
        if self.state == TorrentState::Failed {
            return;
        }
        let was_live = self.is_live();
        self.error = Some(error);
        self.drop_everyone(now, DisconnectReason::TorrentFailed);
        self.set_state(TorrentState::Failed);
        if was_live {
            self.actions.push_back(Action::Announce {
                event: Event::Stopped,
            });
        }
    }

    pub(super) fn drop_everyone(&mut self, now: Instant, reason: DisconnectReason) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.close(now, key, reason.clone(), Some(Duration::ZERO));
        }
        self.next_tick = None;
    }
}
