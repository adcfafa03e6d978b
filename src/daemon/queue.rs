//! The download queue: while it is on, at most `size` torrents download at once; the
//! others wait, paused in the session (not by a person: they show as Transmission's
//! "queued for download" and are saved as running), and start in queue order (the order
//! added, unless moved with `queue-move-*`) when a downloading torrent finishes, is stopped
//! or removed, or the queue grows. A torrent already downloading is queued again only when
//! the queue shrinks below the number downloading (the last in the queue wait first).
//! Seeding torrents are not counted.

use super::{lock, Daemon};
use crate::session::TorrentState;
use std::sync::Arc;
use std::time::Duration;

/// How often the queue is looked at (besides after each command).
const EVERY: Duration = Duration::from_secs(1);

impl Daemon {
    pub(super) async fn queue_loop(self: Arc<Self>) {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = self.shutdown.cancelled() => return,
            }
            self.run_queue();
        }
    }

    /// Whether a torrent still has something to download (`None`: not in the session).
    fn downloading(&self, id: crate::session::TorrentId) -> Option<bool> {
        let stats = self.session.stats(id)?;
        let state = self.session.state(id)?;
        Some(match state {
            TorrentState::Downloading | TorrentState::FetchingMetadata => true,
            // Paused by the queue: wanted pieces still missing, or no metadata yet.
            TorrentState::Paused => {
                !stats.complete && (stats.left_bytes > 0 || self.session.metainfo(id).is_none())
            }
            _ => false,
        })
    }

    /// Starts or queues torrents so that at most the queue's size download.
    pub(super) fn run_queue(&self) {
        let queue = lock(&self.live).queue;
        let mut table = lock(&self.table);
        let any_queued = table.entries.values().any(|e| e.queued);
        if !queue.enabled && !any_queued {
            return;
        }
        let size = if queue.enabled {
            queue.size
        } else {
            usize::MAX
        };
        // Running downloads in queue order, and those waiting.
        let mut running = Vec::new();
        let mut waiting = Vec::new();
        for id in table.queue_order() {
            let Some(e) = table.entries.get(&id) else {
                continue;
            };
            if e.paused || e.busy {
                continue;
            }
            match self.downloading(e.session) {
                Some(true) if e.queued => waiting.push(id),
                Some(true) => running.push(id),
                // Finished while queued (nothing left to fetch): it may seed.
                Some(false) if e.queued => waiting.insert(0, id),
                _ => {}
            }
        }
        while running.len() > size {
            let Some(id) = running.pop() else { break };
            if let Some(e) = table.entries.get_mut(&id) {
                if self.session.pause(e.session).is_ok() {
                    e.queued = true;
                }
            }
        }
        let mut free = size.saturating_sub(running.len());
        for id in waiting {
            let Some(e) = table.entries.get_mut(&id) else {
                continue;
            };
            let has_work = self.downloading(e.session) == Some(true);
            if has_work && free == 0 {
                continue;
            }
            if self.session.resume(e.session).is_ok() {
                e.queued = false;
                if has_work {
                    free -= 1;
                }
            }
        }
    }
}
