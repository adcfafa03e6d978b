//! The fast extension (BEP 6) on a connection, in force when both handshakes set its bit:
//! what we hold goes out as have-all, have-none or a bitfield; every request we will not
//! serve gets a reject (while we choke the peer, for a piece we lack, when we choke it with
//! requests queued, when it cancels one still queued) instead of silence; a reject from
//! the peer hands the block back to the picker and keeps that piece away from the peer
//! until it unchokes us again; while it chokes us we ask it for blocks of the pieces it
//! allowed fast, and its choke leaves those requests standing; suggestions are ignored.
//!
//! Choices where the BEP leaves room:
//! - A choke from a fast peer still releases every block we asked of it (as without the
//!   extension) except those of its allowed-fast pieces, although BEP 6 says a choke no
//!   longer cancels requests and the peer will reject them: the blocks go to other peers at
//!   once instead of after a round trip, a block the peer sends anyway is still taken (late
//!   data is good data), and its rejects then name requests we no longer track, which are
//!   ignored.
//! - A reject for a request we do not track is ignored, not a reason to close (the BEP's
//!   SHOULD): our bookkeeping forgets requests on a choke, a snub and an endgame cancel, so
//!   it cannot tell a request never sent from one released since, and the peer's answer
//!   to our cancel is exactly such a reject.
//! - Allowed-fast pieces are kept (at most [`MAX_ALLOWED_FAST`]; the BEP suggests sets of
//!   10) and a reject for one while choked withdraws it. We send no allowed-fast set of our
//!   own (the BEP's SHOULD for starting peers): a peer we choke gets nothing until the
//!   choker picks it, optimistic unchokes included.
//! - Requests the peer makes while choked are rejected one by one; more than
//!   [`MAX_QUEUED_REQUESTS`] rejects since we last unchoked it is a flood and ends the
//!   connection, as a queue that long does (the BEP allows closing on excessive requests).

use super::peer::Peer;
use super::{DisconnectReason, Engine, MAX_QUEUED_REQUESTS};
use crate::core::PeerKey;
use crate::picker::Block;
use crate::wire::{supports_fast, Bitfield, Handshake, Message};
use std::time::Instant;

/// Allowed-fast pieces kept per peer; later ones are ignored (BEP 6 suggests sets of 10).
pub const MAX_ALLOWED_FAST: usize = 64;
/// Pieces a peer rejected remembered per peer (the oldest is forgotten past this).
const MAX_REJECTED: usize = 64;

/// Fast extension state of one connection.
#[derive(Debug, Default)]
pub struct PeerFast {
    /// Pieces it will serve even while it chokes us (its allowed-fast set).
    pub allowed: Vec<u32>,
    /// Pieces it rejected a request for while it had us unchoked: not asked of it again
    /// until it unchokes us anew (asking at once would ping-pong with its rejects).
    pub rejected: Vec<u32>,
    /// Requests of its we refused with a reject since we last unchoked it (not counting
    /// those rejected when we choked it).
    pub rejects_sent: usize,
}

impl PeerFast {
    /// What of `has` may be asked of the peer, if not all of it: while it chokes us only
    /// its allowed-fast pieces, else all but the pieces it rejected.
    pub fn narrow(&self, has: &Bitfield, choked: bool) -> Option<Bitfield> {
        if choked {
            let mut allowed = Bitfield::repeat(false, has.len());
            for &piece in &self.allowed {
                if let Some(mut bit) = allowed.get_mut(piece as usize) {
                    *bit = true;
                }
            }
            return Some(allowed & has);
        }
        if self.rejected.is_empty() {
            return None;
        }
        let mut narrowed = has.clone();
        for &piece in &self.rejected {
            if let Some(mut bit) = narrowed.get_mut(piece as usize) {
                *bit = false;
            }
        }
        Some(narrowed)
    }
}

/// Fast extension figures of one torrent (part of [`super::TorrentStats`]).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct FastStats {
    /// Connections that negotiated the fast extension, ever.
    pub fast_peers: u64,
    /// Have-all messages received.
    pub have_all_received: u64,
    /// Reject messages sent.
    pub rejects_sent: u64,
    /// Reject messages received.
    pub rejects_received: u64,
}

/// Sends `peer` a reject for every request it has queued with us, in the order asked,
/// and empties its queue; returns how many went out. For a fast peer we just choked (BEP
/// 6: the choke first, then the rejects); a peer without the extension only loses the
/// queue, as a choke means under BEP 3.
pub(super) fn reject_queued(peer: &mut Peer, dirty: &mut Vec<PeerKey>) -> u64 {
    let mut sent = 0;
    if peer.fast {
        for b in std::mem::take(&mut peer.serves) {
            // Cancelled entries are no longer queued; repeats are answered once.
            if peer.queued.remove(&b) {
                peer.send(dirty, reject(b));
                sent += 1;
            }
        }
    }
    peer.serves.clear();
    peer.queued.clear();
    sent
}

/// The reject message for `block`.
pub(super) fn reject(block: Block) -> Message<'static> {
    Message::Reject {
        piece: block.piece,
        offset: block.offset,
        len: block.len,
    }
}

impl Engine {
    /// Right after the handshakes: records whether the fast extension is in force (both
    /// handshakes set its bit; `theirs` is the peer's reserved bytes) and tells the peer
    /// what we hold. With the extension: have-all, have-none or the bitfield (exactly one,
    /// BEP 6); without: the bitfield, or nothing when we hold nothing (BEP 3 allows that).
    pub(super) fn start_connection(&mut self, key: PeerKey, theirs: &[u8; 8]) {
        let ours = Handshake::new(self.info_hash, self.config.peer_id).reserved;
        let fast = supports_fast(&ours) && supports_fast(theirs);
        // A magnet torrent fetching its metadata holds nothing (and has no piece count yet).
        let complete = !self.lacks_metadata() && self.picker.is_complete();
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.fast = fast;
        peer.rules.set_fast(fast);
        if fast {
            self.fast_stats.fast_peers += 1;
        }
        let held = self.picker.have_count();
        if fast && complete {
            peer.send(&mut self.dirty, Message::HaveAll);
        } else if fast && held == 0 {
            peer.send(&mut self.dirty, Message::HaveNone);
        } else if held > 0 {
            let bits = self.picker.have().to_bitvec();
            peer.send(&mut self.dirty, Message::Bitfield(bits.as_raw_slice()));
        }
    }

    /// Have-all or have-none from a fast peer: a bitfield with every piece or none.
    pub(super) fn on_have_all_or_none(&mut self, now: Instant, key: PeerKey, all: bool) {
        if all {
            self.fast_stats.have_all_received += 1;
        }
        let bits = Bitfield::repeat(all, self.geometry.pieces as usize);
        self.set_peer_bits(now, key, bits);
    }

    /// A request we will not serve (we choke the peer, or lack the piece): a fast peer gets
    /// a reject, and more rejects than a queue may hold since we last unchoked it end the
    /// connection; without the extension it is dropped silently, as BEP 3 says (a choke
    /// tells the peer its requests are discarded).
    pub(super) fn refuse_request(&mut self, now: Instant, key: PeerKey, block: Block) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.fast {
            return;
        }
        if peer.fast_state.rejects_sent >= MAX_QUEUED_REQUESTS {
            self.close(
                now,
                key,
                DisconnectReason::RequestFlood(MAX_QUEUED_REQUESTS),
                None,
            );
            return;
        }
        peer.fast_state.rejects_sent += 1;
        peer.send(&mut self.dirty, reject(block));
        self.fast_stats.rejects_sent += 1;
    }

    /// The peer cancelled a request still queued with us: a fast peer still gets exactly
    /// one answer for it (BEP 6), the reject.
    pub(super) fn cancelled_queued(&mut self, key: PeerKey, block: Block) {
        if let Some(peer) = self.peers.get_mut(&key).filter(|p| p.fast) {
            peer.send(&mut self.dirty, reject(block));
            self.fast_stats.rejects_sent += 1;
        }
    }

    /// The peer will not serve `block`: it goes back to the picker for others. While the
    /// peer has us unchoked its piece is not asked of it again until it unchokes us anew;
    /// while it chokes us the piece leaves its allowed-fast set (it withdrew the offer).
    /// A reject for a block we do not (or no longer) ask of it changes nothing else.
    pub(super) fn on_reject(&mut self, now: Instant, key: PeerKey, block: Block) {
        self.fast_stats.rejects_received += 1;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let before = self.picker.requested_from(key);
        self.picker.release(key, block);
        if self.picker.requested_from(key) == before {
            return;
        }
        let piece = block.piece;
        let fast = &mut peer.fast_state;
        if peer.peer_choking {
            fast.allowed.retain(|&p| p != piece);
        } else if !fast.rejected.contains(&piece) {
            if fast.rejected.len() >= MAX_REJECTED {
                fast.rejected.remove(0);
            }
            fast.rejected.push(piece);
        }
        // The block is free again: let the other peers ask for it now.
        self.refill_all(now);
    }

    /// The peer choked us: what we asked of it goes back to the picker for others, but for
    /// the blocks of a fast peer's allowed-fast pieces, which it still serves.
    pub(super) fn release_on_choke(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let keep: &[u32] = if peer.fast {
            &peer.fast_state.allowed
        } else {
            &[]
        };
        self.picker.release_peer_except(key, keep);
    }

    /// An allowed-fast piece from the peer: recorded, at most [`MAX_ALLOWED_FAST`] (the
    /// rules checked that it exists; whether the peer has it is up to its bitfield).
    pub(super) fn on_allowed_fast(&mut self, key: PeerKey, piece: u32) {
        if let Some(peer) = self.peers.get_mut(&key) {
            let allowed = &mut peer.fast_state.allowed;
            if allowed.len() < MAX_ALLOWED_FAST && !allowed.contains(&piece) {
                allowed.push(piece);
            }
        }
    }
}
