//! What keeps data flowing: interest, requests in flight, choking, the clock tick, and the
//! results of hash checks.

use super::bans::BanKey;
use super::{
    Action, DisconnectReason, Engine, TorrentState, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT,
    KEEPALIVE_EVERY, RECHOKE_TICKS, REQUEST_TIMEOUT, TICK,
};
use crate::core::{PeerKey, BLOCK_LEN};
use crate::picker::ChokerPeer;
use crate::storage::AlignedBuf;
use crate::tracker::Event;
use crate::wire::{Bitfield, Message};
use std::time::Instant;

/// Blocks kept in flight to a peer: at least this many...
const MIN_QUEUE: usize = 32;
/// ...at most this many (4 MiB)...
const MAX_QUEUE: usize = 256;
/// ...and otherwise enough for this much time at the peer's current rate.
const QUEUE_TIME: f64 = 1.0;

impl Engine {
    /// Sends `interested` when the peer has something we lack, `not interested` when it
    /// no longer does.
    pub(super) fn update_interest(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let wants = self.picker.wants_any(&peer.bits);
        if wants != peer.am_interested {
            peer.am_interested = wants;
            peer.send(
                &mut self.dirty,
                if wants {
                    Message::Interested
                } else {
                    Message::NotInterested
                },
            );
        }
    }

    /// Tops up the requests in flight to every peer (after blocks became pickable again).
    pub(super) fn refill_all(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.refill(now, k);
        }
    }

    /// Tops up the requests in flight to peer `key`, if it has us unchoked.
    pub(super) fn refill(&mut self, now: Instant, key: PeerKey) {
        if self.state != TorrentState::Downloading {
            return;
        }
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        // A peer that chokes us may still serve its allowed-fast pieces (BEP 6).
        let choked = peer.peer_choking;
        if !peer.is_live() || !peer.am_interested || choked && peer.fast_state.allowed.is_empty() {
            return;
        }
        // A snubbed peer keeps one request: its answer lifts the snub (asking nothing
        // would leave a stalled seed unused for ever).
        let depth = if peer.snubbed {
            1
        } else {
            ((peer.down.per_second() * QUEUE_TIME) as usize / BLOCK_LEN as usize)
                .clamp(MIN_QUEUE, MAX_QUEUE)
        };
        let pending = self.picker.requested_from(key);
        // Blocks of large pieces go to disk as they arrive: keep them within the backlog.
        let depth = if self.spills() {
            depth.min(pending + self.spill_budget())
        } else {
            depth
        };
        if pending >= depth {
            return;
        }
        // Spare the seeds: from a seed, ask only for pieces no other peer that unchoked us
        // holds, unless those peers cannot keep us busy. A seed's upload then spreads new
        // pieces into the swarm instead of repeating what the leechers can trade.
        let mut spared = None;
        if peer.snubbed {
            // The probe asks only for pieces no healthy peer that unchoked us holds: blocks
            // taken from a staller must go to the others, not back to it.
            let only_here = match self.held_elsewhere(key, |p| !p.snubbed).0 {
                Some(others) => !others & &peer.bits,
                None => peer.bits.clone(),
            };
            if !self.picker.wants_any(&only_here) {
                return;
            }
            spared = Some(only_here);
        } else if peer.bits.all() {
            let (elsewhere, busy) = self.held_elsewhere(key, |p| !p.bits.all());
            if let Some(others) = elsewhere.filter(|_| busy >= MIN_QUEUE) {
                let only_seeds = !others & &peer.bits;
                if self.picker.wants_any(&only_seeds) {
                    spared = Some(only_seeds);
                } else if !self.picker.in_endgame() {
                    // Other peers have what we need and keep us busy: leave the seed alone.
                    return;
                }
            }
        }
        // Only allowed-fast pieces while choked; pieces the peer rejected are asked of
        // others (fast extension, `fast.rs`).
        if let Some(narrowed) = peer
            .fast_state
            .narrow(spared.as_ref().unwrap_or(&peer.bits), choked)
        {
            spared = Some(narrowed);
        }
        let peer = self.peers.get_mut(&key).expect("looked up above");
        let has: &Bitfield = spared.as_ref().unwrap_or(&peer.bits);
        let mut blocks = std::mem::take(&mut self.scratch_blocks);
        blocks.clear();
        if self.bans.on_parole(peer.ban_key) {
            // Whole pieces only, so a bad one is attributable to this peer alone.
            if pending == 0 {
                self.picker
                    .pick_whole_within(key, has, &peer.bits, &mut blocks);
            }
        } else {
            self.picker
                .pick_within(key, has, &peer.bits, depth - pending, &mut blocks);
        }
        if !blocks.is_empty() {
            if pending == 0 {
                peer.last_progress = now;
            }
            for b in &blocks {
                Message::Request {
                    piece: b.piece,
                    offset: b.offset,
                    len: b.len,
                }
                .encode(&mut peer.out);
            }
            peer.mark(&mut self.dirty);
        }
        self.scratch_blocks = blocks;
    }

    /// What the other live peers that unchoked us and pass `counts` hold together (`None`:
    /// no such peer), and how many of our requests are in flight to them.
    fn held_elsewhere(
        &self,
        key: PeerKey,
        counts: impl Fn(&super::peer::Peer) -> bool,
    ) -> (Option<Bitfield>, usize) {
        let mut held: Option<Bitfield> = None;
        let mut busy = 0;
        for (k, p) in &self.peers {
            if *k != key && p.is_live() && !p.peer_choking && counts(p) {
                busy += self.picker.requested_from(*k);
                match held.as_mut() {
                    Some(bits) => *bits |= &p.bits,
                    None => held = Some(p.bits.clone()),
                }
            }
        }
        (held, busy)
    }

    /// Runs the choker now and sends the resulting choke and unchoke messages.
    pub(super) fn rechoke(&mut self, now: Instant) {
        if !self.is_live() {
            // Checking (a magnet torrent keeps its peers meanwhile): nothing to serve yet.
            return;
        }
        let elapsed = now.saturating_duration_since(self.epoch);
        // Nothing more to download (every wanted piece): upload as a seed does.
        let seeding = self.picker.is_done();
        let candidates: Vec<ChokerPeer> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_live())
            .map(|(key, p)| ChokerPeer {
                key: *key,
                interested: p.peer_interested,
                download_rate: p.down.per_second() as u64,
                upload_rate: p.up.per_second() as u64,
                snubbed: p.snubbed,
                connected_at: p.connected_at.saturating_duration_since(self.epoch),
                unchoked: !p.am_choking,
            })
            .collect();
        let unchoke = self.choker.decide(elapsed, seeding, &candidates);
        for (key, peer) in self.peers.iter_mut() {
            if !peer.is_live() {
                continue;
            }
            let should = unchoke.contains(key);
            if should && peer.am_choking {
                peer.am_choking = false;
                peer.fast_state.rejects_sent = 0;
                peer.send(&mut self.dirty, Message::Unchoke);
            } else if !should && !peer.am_choking {
                peer.am_choking = true;
                // A choke discards the peer's requests (BEP 3): it will ask again. A fast
                // peer hears a reject for each after the choke (BEP 6).
                peer.send(&mut self.dirty, Message::Choke);
                self.fast_stats.rejects_sent += super::fast::reject_queued(peer, &mut self.dirty);
            }
        }
    }

    /// Time passed: once a second, rates, handshake and idle timeouts, keep-alives, snubbed
    /// peers and dials; every tenth second, the choker.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.next_tick {
            Some(due) if now >= due => {}
            _ => return,
        }
        self.next_tick = Some(now + TICK);
        self.ticks += 1;
        let mut expired = Vec::new();
        let mut snubbed = Vec::new();
        for (key, peer) in self.peers.iter_mut() {
            if !peer.is_live() {
                if now.saturating_duration_since(peer.connected_at) > HANDSHAKE_TIMEOUT {
                    expired.push((*key, DisconnectReason::HandshakeTimeout));
                }
                continue;
            }
            peer.down.tick();
            peer.up.tick();
            if now.saturating_duration_since(peer.last_received) > IDLE_TIMEOUT {
                expired.push((*key, DisconnectReason::Idle));
                continue;
            }
            if now.saturating_duration_since(peer.last_sent) >= KEEPALIVE_EVERY {
                peer.last_sent = now;
                peer.send(&mut self.dirty, Message::KeepAlive);
            }
            // Also a snubbed peer whose one request went unanswered: it goes to others.
            if now.saturating_duration_since(peer.last_progress) > REQUEST_TIMEOUT {
                snubbed.push(*key);
            }
        }
        for (key, reason) in expired {
            self.close(now, key, reason, Some(super::REDIAL_AFTER));
        }
        if self.is_fetching() {
            self.fetch_tick(now);
            self.dial_more(now);
            if self.peers.is_empty() && self.dialing.is_empty() && !self.book.has_candidates() {
                self.next_tick = None;
            }
            return;
        }
        for key in snubbed {
            if self.picker.requested_from(key) == 0 {
                continue;
            }
            let released = self.picker.release_peer(key);
            if let Some(peer) = self.peers.get_mut(&key) {
                if !peer.snubbed {
                    tracing::debug!("{}: snubbed us, re-requesting its blocks", peer.addr);
                }
                peer.snubbed = true;
                for b in released {
                    peer.send(
                        &mut self.dirty,
                        Message::Cancel {
                            piece: b.piece,
                            offset: b.offset,
                            len: b.len,
                        },
                    );
                }
            }
        }
        if self.ticks % RECHOKE_TICKS == 0 {
            self.rechoke(now);
        }
        if self.ticks % super::slots::EVICT_FOR_DIAL_TICKS == 0 {
            self.make_room_to_dial(now);
        }
        self.send_pex(now);
        self.refill_all(now);
        self.dial_more(now);
        if self.peers.is_empty() && self.dialing.is_empty() && !self.book.has_candidates() {
            self.next_tick = None;
        }
    }

    /// A piece's hash check (and, if good, its write) finished; `data` is the buffer from
    /// [`Action::Verify`], handed back for reuse. A good piece is marked, announced to
    /// peers and may be served from now on; a bad one goes back to the picker, and its
    /// senders get strikes or bans.
    pub fn handle_verified(&mut self, now: Instant, piece: u32, data: AlignedBuf, good: bool) {
        let Some(senders) = self.verifying.remove(&piece) else {
            self.pool.push(data);
            return;
        };
        let len = data.len() as u64;
        let block = BLOCK_LEN as usize;
        let banned = self.judge(piece, good, len, &senders, |bans, good| {
            if good {
                bans.piece_verified(piece, &data, block)
            } else {
                bans.piece_failed(piece, &data, block, &senders)
            }
        });
        self.pool.push(data);
        self.after_verification(now, piece, good, banned);
    }

    /// Books a hash result in the picker and the counters; `blame` updates the ban
    /// bookkeeping and returns who it bans (not asked for a piece whose sender is banned
    /// already: its failure proves nothing about the others).
    pub(super) fn judge(
        &mut self,
        piece: u32,
        good: bool,
        len: u64,
        senders: &[BanKey],
        blame: impl FnOnce(&mut super::bans::Bans, bool) -> Vec<BanKey>,
    ) -> Vec<BanKey> {
        if good {
            self.picker.piece_verified(piece);
            self.verified_bytes += len;
            self.write_errors = 0;
            blame(&mut self.bans, true)
        } else if senders.iter().any(|s| self.bans.is_banned_key(*s)) {
            tracing::debug!("piece {piece} from a banned peer failed its hash check");
            self.counters.wasted += len;
            self.picker.piece_failed(piece);
            Vec::new()
        } else {
            tracing::warn!("piece {piece} failed its hash check");
            self.counters.hash_failures += 1;
            self.counters.wasted += len;
            self.picker.piece_failed(piece);
            blame(&mut self.bans, false)
        }
    }

    /// What follows a hash result: bans, `have` messages, interest, completion.
    pub(super) fn after_verification(
        &mut self,
        now: Instant,
        piece: u32,
        good: bool,
        banned: Vec<BanKey>,
    ) {
        // Done: every wanted piece (all of them unless files were left out).
        let complete = self.picker.is_done();
        let mut to_close = Vec::new();
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if banned.contains(&peer.ban_key) {
                tracing::warn!(
                    "banning {}: it sent data that failed the hash check",
                    peer.addr
                );
                self.bans.ban(peer.ban_key);
                to_close.push((key, DisconnectReason::SentBadData));
                continue;
            }
            if !good || !peer.is_live() {
                continue;
            }
            if !peer.bits[piece as usize] {
                peer.send(&mut self.dirty, Message::Have(piece));
            }
            if peer.am_interested {
                self.update_interest(key);
            }
            if complete && self.peers.get(&key).is_some_and(|p| p.is_seed()) {
                to_close.push((key, DisconnectReason::BothSeeds));
            }
        }
        if good && complete && self.state == TorrentState::Paused && self.downloading {
            self.completed_while_paused = true;
        }
        if good && complete && self.state == TorrentState::Downloading {
            tracing::info!("download complete");
            self.actions.push_back(Action::Completed);
            self.set_state(TorrentState::Seeding);
            if self.downloading {
                self.actions.push_back(Action::Announce {
                    event: Event::Completed,
                });
            }
        }
        if !banned.is_empty() {
            self.discard_blocks_from(&banned);
        }
        for (key, reason) in to_close {
            let retry = match reason {
                DisconnectReason::BothSeeds => self.seed_retry(),
                _ => None,
            };
            self.close(now, key, reason, retry);
        }
        self.refill_all(now);
    }

    /// A banned peer's data is never used: pieces in progress holding one of its blocks
    /// start again (the picker forgets their requests, so late blocks count as waste).
    fn discard_blocks_from(&mut self, banned: &[BanKey]) {
        let tainted: Vec<u32> = self
            .partial
            .iter()
            .filter(|(_, buf)| buf.senders.iter().any(|s| banned.contains(s)))
            .map(|(piece, _)| *piece)
            .collect();
        for piece in tainted {
            tracing::debug!("piece {piece}: dropping blocks from a banned peer");
            if let Some(buf) = self.partial.remove(&piece) {
                self.pool.push(buf.data);
            }
            self.restart_piece(piece);
        }
    }
}
