//! The torrent's life: checking, live (downloading or seeding), paused, stopped, failed.

use super::{Action, DisconnectReason, Engine, TorrentError, TorrentState};
use crate::core::PeerKey;
use crate::tracker::Event;
use crate::wire::Bitfield;
use std::time::{Duration, Instant};

impl Engine {
    /// The check of the data on disk finished: `have` holds the pieces that verified (as
    /// many bits as pieces). The torrent goes live and announces itself, or goes straight
    /// to paused if [`Engine::pause`] came during the check. Ignored unless checking.
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
        self.downloading = !self.picker.is_done();
        if self.pause_after_check {
            self.set_state(TorrentState::Paused);
            // A magnet torrent keeps the connections it fetched the metadata over.
            self.drop_everyone(now, DisconnectReason::Paused);
        } else {
            self.go_live(now);
            self.adopted_go_live(now);
        }
    }

    /// The check of the data on disk failed: the torrent fails.
    pub fn handle_check_failed(&mut self, now: Instant, error: TorrentError) {
        self.fail(now, error);
    }

    pub(super) fn go_live(&mut self, now: Instant) {
        let state = if self.picker.is_done() {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        };
        self.set_state(state);
        self.actions.push_back(Action::Announce {
            event: Event::Started,
        });
        if state == TorrentState::Seeding && self.completed_while_paused {
            // The last piece verified while paused: the news was held until now.
            self.completed_while_paused = false;
            self.actions.push_back(Action::Completed);
            self.actions.push_back(Action::Announce {
                event: Event::Completed,
            });
        }
        self.dial_more(now);
        self.arm(now);
    }

    /// Pauses: every connection closes, trackers are told we left. While checking, the
    /// torrent pauses once the check ends. Ignored otherwise unless live.
    pub fn pause(&mut self, now: Instant) {
        if self.is_fetching() {
            self.pause_fetch(now);
            return;
        }
        if self.state == TorrentState::Checking {
            self.pause_after_check = true;
            return;
        }
        if !self.is_live() {
            return;
        }
        // The state first: connections closed below must not trigger dials or rechokes.
        self.set_state(TorrentState::Paused);
        self.drop_everyone(now, DisconnectReason::Paused);
        self.actions.push_back(Action::Announce {
            event: Event::Stopped,
        });
    }

    /// Resumes a paused torrent (or cancels a pause asked for during the check). Ignored
    /// otherwise.
    pub fn resume(&mut self, now: Instant) {
        match self.state {
            TorrentState::Paused if self.lacks_metadata() => self.resume_fetch(now),
            TorrentState::Paused => self.go_live(now),
            TorrentState::Checking => self.pause_after_check = false,
            _ => {}
        }
    }

    /// Stops for good: every connection closes and, if it was live, trackers are told.
    pub fn stop(&mut self, now: Instant) {
        let was_live = self.takes_peers();
        if !matches!(self.state, TorrentState::Failed) {
            self.set_state(TorrentState::Stopped);
        }
        self.drop_everyone(now, DisconnectReason::Stopped);
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
        let was_live = self.takes_peers();
        self.error = Some(error);
        self.set_state(TorrentState::Failed);
        self.drop_everyone(now, DisconnectReason::TorrentFailed);
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
