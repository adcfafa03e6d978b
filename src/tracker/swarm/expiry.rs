//! Forgetting peers that stopped announcing, a bounded number of swarms at a time.
//!
//! A cursor walks the list of torrents ([`Tracker::order`]); each step visits at most the
//! number of swarms it is given, so the server holds the tracker's lock only that long
//! (a full pass at 1,000,000 torrents used to stall every announce for 0.6 s). Swarms
//! before the cursor have been visited in this round; removing one there moves an
//! unvisited swarm from the end into the unvisited part, so each round visits every swarm
//! that lived through it.

use super::budget::PEER_BYTES;
use super::Tracker;

/// What one expiry step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expired {
    /// Peers dropped.
    pub peers: usize,
    /// Swarms visited.
    pub visited: usize,
    /// The cursor reached the end of the list and starts over at the next step.
    pub round_done: bool,
}

impl Tracker {
    /// Forgets peers not seen since `now - peer_ttl` in up to `max_swarms` swarms from the
    /// cursor on, and the swarms left empty.
    pub fn expire_step(&mut self, now: u32, max_swarms: usize) -> Expired {
        let oldest = now.saturating_sub(self.config.peer_ttl);
        let mut done = Expired::default();
        while done.visited < max_swarms {
            let Some(&hash) = self.order.get(self.cursor) else {
                self.cursor = 0;
                done.round_done = true;
                break;
            };
            done.visited += 1;
            let Some(swarm) = self.torrents.get_mut(&hash) else {
                // Never happens (the list and the table change together); heal if it did.
                self.order.swap_remove(self.cursor);
                continue;
            };
            let (usage, mut seeders) = (&mut self.usage, 0);
            let mut gone = |prefix, seeder: bool| {
                usage.release(prefix, PEER_BYTES);
                seeders += usize::from(seeder);
            };
            let dropped = swarm.v4.expire(oldest, &mut gone) + swarm.v6.expire(oldest, &mut gone);
            let empty = swarm.len() == 0;
            self.peers -= dropped;
            self.seeders -= seeders;
            done.peers += dropped;
            if empty {
                // The last swarm moves into the cursor's place: it is visited next.
                self.remove_swarm(&hash);
            } else {
                self.cursor += 1;
            }
        }
        done
    }

    /// Forgets peers not seen since `now - peer_ttl` in every swarm, and swarms left empty,
    /// in one pass. Returns how many peers were dropped.
    pub fn expire(&mut self, now: u32) -> usize {
        self.cursor = 0;
        self.expire_step(now, usize::MAX).peers
    }
}
