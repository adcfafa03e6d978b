//! Who keeps a connection slot when slots run short.
//!
//! Slots are few (`max_peers`), and a peer that handshakes and then only sends keep-alives
//! would hold one for ever. When an incoming peer finds every slot taken, or a downloader
//! has addresses to try and no slot to dial them from, the least useful live peer goes:
//! first one with which neither side wants anything, then one with which nothing useful
//! (a needed block either way) has passed for [`USELESS_AFTER`], the longest idle first.
//! Peers younger than [`EVICT_GRACE`] are never dropped, so a newcomer gets time to show
//! what it has; peers that exchange data are never dropped to make room.

use super::{DisconnectReason, Engine};
use crate::core::PeerKey;
use std::time::{Duration, Instant};

/// A connection younger than this is never dropped to make room.
pub const EVICT_GRACE: Duration = Duration::from_secs(10);
/// A peer with no useful exchange for this long may be dropped to make room.
pub const USELESS_AFTER: Duration = Duration::from_secs(60);
/// An address dropped to make room is dialled again only after this.
const EVICTED_RETRY: Duration = Duration::from_secs(600);
/// Ticks between drops made to dial someone new.
pub const EVICT_FOR_DIAL_TICKS: u64 = 10;

impl Engine {
    /// The live peer least worth its slot, if one may be dropped; see the module
    /// documentation.
    pub(super) fn least_useful(&self, now: Instant) -> Option<PeerKey> {
        self.peers
            .values()
            .filter(|p| p.is_live() && now.saturating_duration_since(p.connected_at) >= EVICT_GRACE)
            .filter_map(|p| {
                let neither = !p.peer_interested && !p.am_interested;
                let idle = now.saturating_duration_since(p.useful_at) >= USELESS_AFTER;
                let class = if neither {
                    0
                } else if idle {
                    1
                } else {
                    return None;
                };
                Some(((class, p.useful_at), p.key))
            })
            .min()
            .map(|(_, key)| key)
    }

    /// Drops the least useful peer to make room, if one may go. Returns whether one did.
    pub(super) fn make_room(&mut self, now: Instant) -> bool {
        let Some(victim) = self.least_useful(now) else {
            return false;
        };
        self.close(now, victim, DisconnectReason::MadeRoom, Some(EVICTED_RETRY));
        true
    }

    /// On the tick: a downloader whose slots are all taken while addresses wait to be
    /// tried drops one useless peer now and then, so a hostile tracker's list of idle
    /// peers cannot hold every slot.
    pub(super) fn make_room_to_dial(&mut self, now: Instant) {
        // Exactly full: dropping one frees a slot to dial from (with more connections
        // still handshaking, it would not).
        let full = self.peers.len() + self.dialing.len() == self.config.max_peers;
        if full && !self.picker.is_done() && self.book.ready(now) {
            self.make_room(now);
        }
    }
}
