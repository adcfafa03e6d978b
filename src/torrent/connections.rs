//! Connections: peers learned and dialled, connections opened and closed, and what the
//! driver reports about sending.

use super::peer::Peer;
use super::{
    Action, Direction, DisconnectReason, Engine, PeerSource, TorrentState, HANDSHAKE_SLACK,
    REDIAL_AFTER, TICK,
};
use crate::core::PeerKey;
use crate::picker::Block;
use crate::wire::{Handshake, Rules, HANDSHAKE_LEN};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

impl Engine {
    /// Addresses learned from `source`. Dials them (within the peer limit) while live.
    pub fn handle_peers(&mut self, now: Instant, source: PeerSource, addrs: &[SocketAddr]) {
        for &addr in addrs {
            if !self.is_us(addr) {
                self.book.add(now, source, addr);
            }
        }
        if self.takes_peers() {
            self.dial_more(now);
            self.arm(now);
        }
    }

    /// An outgoing connection asked for by [`Action::Dial`] could not be made.
    pub fn handle_dial_failed(&mut self, now: Instant, addr: SocketAddr) {
        if self.dialing.remove(&addr) {
            self.book.dial_failed(now, addr);
        }
    }

    /// A connection is open (TCP for now; later any transport). Returns its key, or why it
    /// is refused (then close it: no [`Action::Close`] follows). An outgoing connection
    /// sends our handshake at once; an incoming one answers after the peer's.
    pub fn handle_connected(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        direction: Direction,
    ) -> Result<PeerKey, DisconnectReason> {
        if direction == Direction::Outgoing {
            self.dialing.remove(&addr);
        }
        let refusal = if !self.takes_peers() {
            Some(match self.state {
                TorrentState::Checking => DisconnectReason::NotReady,
                TorrentState::Paused => DisconnectReason::Paused,
                TorrentState::Failed => DisconnectReason::TorrentFailed,
                _ => DisconnectReason::Stopped,
            })
        } else if self.bans.is_banned(addr) {
            Some(DisconnectReason::Banned)
        } else if direction == Direction::Incoming
            && self.peers.len() >= self.config.max_peers + HANDSHAKE_SLACK
        {
            Some(DisconnectReason::TooManyPeers)
        } else {
            None
        };
        if let Some(reason) = refusal {
            if direction == Direction::Outgoing {
                self.book.disconnected(now, addr, Some(REDIAL_AFTER));
            }
            return Err(reason);
        }
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        let source = match direction {
            Direction::Incoming => PeerSource::Incoming,
            // Dialled addresses are in the book already; this keeps their source.
            Direction::Outgoing => PeerSource::Tracker,
        };
        self.book.connected(now, addr, source);
        let rules = Rules::new(self.geometry.piece_length, self.geometry.total_length);
        let mut peer = Peer::new(key, addr, direction, rules, now);
        if direction == Direction::Outgoing {
            peer.out.extend_from_slice(&self.handshake());
            peer.mark(&mut self.dirty);
        }
        self.peers.insert(key, peer);
        self.arm(now);
        Ok(key)
    }

    /// The connection ended (closed by the peer, a socket error, a write timeout). Its
    /// pieces no longer count as available and its requests go back to the picker.
    pub fn handle_closed(&mut self, now: Instant, peer: PeerKey) {
        if let Some(p) = self.peers.get(&peer) {
            // A peer that went away cleanly is worth trying again later.
            let retry = if !self.lacks_metadata() && self.picker.is_done() && p.is_seed() {
                self.seed_retry()
            } else {
                Some(REDIAL_AFTER)
            };
            self.forget(now, peer, retry);
        }
    }

    /// Closes a connection on our side: forgets it and tells the caller.
    pub(super) fn close(
        &mut self,
        now: Instant,
        key: PeerKey,
        reason: DisconnectReason,
        retry: Option<Duration>,
    ) {
        if let Some(addr) = self.forget(now, key, retry) {
            tracing::debug!("{addr}: closing: {reason}");
            self.actions.push_back(Action::Close {
                peer: key,
                addr,
                reason,
            });
        }
    }

    /// Removes a peer and everything that depends on it; returns its address.
    pub(super) fn forget(
        &mut self,
        now: Instant,
        key: PeerKey,
        retry: Option<Duration>,
    ) -> Option<SocketAddr> {
        let listen = self.incoming_listen_addr(key);
        let peer = self.peers.remove(&key)?;
        if let Some(listen) = listen {
            // Its listen address becomes a candidate again.
            self.book.disconnected(now, listen, retry);
        }
        if peer.is_live() {
            self.picker.peer_gone(&peer.bits);
        }
        self.picker.release_peer(key);
        self.book.disconnected(now, peer.addr, retry);
        if let Some(fetch) = self.fetch.as_mut() {
            fetch.remove(key);
        }
        if self.is_fetching() {
            self.request_metadata(now);
            self.dial_more(now);
        }
        if self.is_live() {
            if !peer.am_choking {
                self.rechoke(now);
            }
            self.refill_all(now);
            self.dial_more(now);
        }
        Some(peer.addr)
    }

    /// Bytes of requested blocks sent to `peer` (counts toward rates and totals).
    pub fn handle_sent(&mut self, now: Instant, peer: PeerKey, payload: u64) {
        self.counters.uploaded += payload;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.up.add(payload);
            p.last_sent = now;
            if payload > 0 {
                p.useful_at = now;
            }
        }
    }

    /// Moves up to `max` of the blocks `peer` asked for into `out`, oldest first. Only
    /// blocks of verified pieces are ever handed out.
    pub fn take_serves(&mut self, peer: PeerKey, max: usize, out: &mut Vec<Block>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let have = self.picker.have();
        let mut taken = 0;
        while taken < max {
            let Some(block) = p.serves.pop_front() else {
                break;
            };
            if !p.queued.remove(&block) {
                continue;
            }
            if have.get(block.piece as usize).is_some_and(|b| *b) {
                out.push(block);
                taken += 1;
            } else if p.fast {
                // A piece we stopped serving (a failed read): the fast peer hears so.
                p.send(&mut self.dirty, super::fast::reject(block));
                self.fast_stats.rejects_sent += 1;
            }
        }
    }

    /// When to try a seed again once we are done with it: never if we hold every piece;
    /// if files were left out, much later (wanting them makes it at once).
    pub(super) fn seed_retry(&self) -> Option<Duration> {
        if self.picker.is_complete() {
            None
        } else {
            Some(super::selection::DONE_SEED_RETRY)
        }
    }

    /// Starts the tick if the engine has something to time.
    pub(super) fn arm(&mut self, now: Instant) {
        let busy = self.takes_peers()
            && (!self.peers.is_empty() || !self.dialing.is_empty() || self.book.has_candidates());
        if busy {
            self.next_tick.get_or_insert(now + TICK);
        } else if self.peers.is_empty() {
            self.next_tick = None;
        }
    }

    /// Our handshake for this torrent.
    pub(super) fn handshake(&self) -> [u8; HANDSHAKE_LEN] {
        let mut ours = Handshake::new(self.info_hash, self.config.peer_id);
        if self.dht_enabled() {
            ours.reserved[crate::wire::DHT_RESERVED_BYTE] |= crate::wire::DHT_RESERVED_BIT;
        }
        ours.encode()
    }

    /// Whether we tell peers about our DHT node (not for private torrents, BEP 27).
    pub(super) fn dht_enabled(&self) -> bool {
        self.config.dht_port.is_some() && !self.config.private
    }

    /// Whether `addr` is our own listening address.
    pub(super) fn is_us(&self, addr: SocketAddr) -> bool {
        self.config.listen.is_some_and(|ours| {
            addr.port() == ours.port()
                && (addr.ip() == ours.ip() || ours.ip().is_unspecified() && addr.ip().is_loopback())
        })
    }

    /// Asks for connections to candidates within the peer limit.
    pub(super) fn dial_more(&mut self, now: Instant) {
        if !self.takes_peers() {
            return;
        }
        // The book skips addresses being dialled or connected (they are busy there), and
        // our own address never enters it: only bans are left to check.
        while self.peers.len() + self.dialing.len() < self.config.max_peers {
            let bans = &self.bans;
            let Some(addr) = self.book.next_to_dial(now, |a| bans.is_banned(a)) else {
                break;
            };
            self.dialing.insert(addr);
            tracing::debug!("{addr}: dialling");
            self.actions.push_back(Action::Dial { addr });
        }
    }
}
