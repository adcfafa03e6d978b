//! Bytes from a peer: the handshake, then BEP 3 messages checked by [`crate::wire::Rules`]
//! and applied to the torrent's state.

use super::peer::Phase;
use super::{Action, DisconnectReason, Engine, PieceBuf, TorrentState, MAX_QUEUED_REQUESTS};
use crate::core::{PeerKey, BLOCK_LEN};
use crate::picker::{Block, Received};
use crate::wire::{decode, Bitfield, Handshake, Message, HANDSHAKE_LEN};
use std::time::Instant;

impl Engine {
    /// Bytes received from `peer`. Returns how many were used: whole frames only, so pass
    /// the rest again with the next bytes. A peer that breaks the protocol is closed
    /// ([`Action::Close`]) and all its bytes count as used; so do bytes for an unknown key.
    pub fn handle_bytes(&mut self, now: Instant, peer: PeerKey, bytes: &[u8]) -> usize {
        let max = self.max_frame_len();
        let fetching = self.is_fetching();
        let mut used = 0;
        loop {
            let Some(p) = self.peers.get_mut(&peer) else {
                return bytes.len();
            };
            let rest = &bytes[used..];
            if p.phase == Phase::Handshake {
                let Some(theirs) = rest.get(..HANDSHAKE_LEN) else {
                    break;
                };
                used += HANDSHAKE_LEN;
                let theirs: &[u8; HANDSHAKE_LEN] = theirs.try_into().expect("sliced to length");
                if let Err(reason) = self.on_handshake(now, peer, theirs) {
                    // A full house or a second connection to the same peer says nothing
                    // against the address: keep it for later.
                    let retry = matches!(
                        reason,
                        DisconnectReason::TooManyPeers | DisconnectReason::DuplicatePeerId
                    )
                    .then_some(super::REDIAL_AFTER);
                    self.close(now, peer, reason, retry);
                    return bytes.len();
                }
                continue;
            }
            let (message, n) = match decode(rest, max) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    self.close(now, peer, DisconnectReason::Violation(e.into()), None);
                    return bytes.len();
                }
            };
            p.last_received = now;
            if fetching {
                used += n;
                self.on_fetch_message(now, peer, &message);
                continue;
            }
            // A bitfield is checked by turning it into bits, which the message then uses.
            let checked = match message {
                Message::Bitfield(raw) => p.rules.bitfield(raw).map(Some),
                _ => p.rules.check(&message).map(|()| None),
            };
            let bits = match checked {
                Ok(bits) => bits,
                Err(v) => {
                    self.close(now, peer, DisconnectReason::Violation(v), None);
                    return bytes.len();
                }
            };
            used += n;
            self.on_message(now, peer, &message, bits);
        }
        self.refill(now, peer);
        used
    }

    /// Checks the peer's handshake; on success the connection goes live (we answer an
    /// incoming one with ours) and what we hold goes out (see `fast.rs`).
    fn on_handshake(
        &mut self,
        now: Instant,
        key: PeerKey,
        bytes: &[u8; HANDSHAKE_LEN],
    ) -> Result<(), DisconnectReason> {
        let theirs = Handshake::decode(bytes)?;
        theirs.check(self.info_hash, &self.config.peer_id)?;
        let Some(peer) = self.peers.get(&key) else {
            return Ok(());
        };
        if self.bans.is_banned(peer.addr) {
            return Err(DisconnectReason::Banned);
        }
        // A second connection from the same peer: the same id from the same address. The
        // id alone proves nothing (anyone can send any id), so it never refuses a peer at
        // another address.
        let ip = peer.addr.ip().to_canonical();
        if self
            .peers
            .values()
            .any(|p| p.is_live() && p.id == theirs.peer_id && p.addr.ip().to_canonical() == ip)
        {
            return Err(DisconnectReason::DuplicatePeerId);
        }
        let live = self.peers.values().filter(|p| p.is_live()).count();
        if live >= self.config.max_peers && !self.make_room(now) {
            return Err(DisconnectReason::TooManyPeers);
        }
        let ours = self.handshake();
        let peer = self.peers.get_mut(&key).expect("looked up above");
        peer.id = theirs.peer_id;
        peer.phase = Phase::Live;
        peer.last_received = now;
        if peer.direction == super::Direction::Incoming {
            peer.out.extend_from_slice(&ours);
            peer.mark(&mut self.dirty);
        }
        peer.speaks_extensions = crate::wire::extension::supports_extensions(&theirs.reserved);
        tracing::debug!("{}: connected ({:?})", peer.addr, peer.direction);
        let extensions = peer.speaks_extensions;
        self.start_connection(key, &theirs.reserved);
        self.send_dht_port(key, &theirs.reserved);
        if extensions {
            self.send_extension_handshake(key);
        }
        Ok(())
    }

    /// Applies one checked message (`bits`: a bitfield message's checked bits).
    fn on_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        message: &Message,
        bits: Option<Bitfield>,
    ) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        match *message {
            Message::Choke => {
                if !peer.peer_choking {
                    peer.peer_choking = true;
                    self.release_on_choke(key);
                }
            }
            Message::Unchoke => {
                peer.peer_choking = false;
                // A new round: pieces it rejected may be asked of it again.
                peer.fast_state.rejected.clear();
            }
            Message::Interested => {
                peer.peer_interested = true;
                let unchoked = self.peers.values().filter(|p| !p.am_choking).count();
                if unchoked <= self.config.upload_slots {
                    // A free slot: no need to wait for the next round.
                    self.rechoke(now);
                }
            }
            Message::NotInterested => peer.peer_interested = false,
            Message::Have(piece) => {
                // Repeats change nothing; a new piece can only make us interested.
                if !peer.bits.replace(piece as usize, true) {
                    self.picker.peer_have(piece);
                    let lacking = !self.picker.have().get(piece as usize).is_some_and(|b| *b);
                    if lacking && !peer.am_interested {
                        peer.am_interested = true;
                        peer.send(&mut self.dirty, Message::Interested);
                    }
                    self.drop_if_both_seeds(now, key);
                }
            }
            Message::Bitfield(_) => {
                if let Some(bits) = bits {
                    self.set_peer_bits(now, key, bits);
                }
            }
            Message::HaveAll => self.on_have_all_or_none(now, key, true),
            Message::HaveNone => self.on_have_all_or_none(now, key, false),
            Message::Request { piece, offset, len } => {
                let have = self.picker.have().get(piece as usize).is_some_and(|b| *b);
                // Requests while choked, or for pieces we lack, are not served: dropped
                // (BEP 3) or rejected (BEP 6).
                if peer.am_choking || !have {
                    self.refuse_request(now, key, Block { piece, offset, len });
                    return;
                }
                if peer.queued.len() >= MAX_QUEUED_REQUESTS {
                    self.close(
                        now,
                        key,
                        DisconnectReason::RequestFlood(MAX_QUEUED_REQUESTS),
                        None,
                    );
                    return;
                }
                let block = Block { piece, offset, len };
                if !peer.queued.insert(block) {
                    // Asked twice: served once.
                    return;
                }
                if peer.queued.len() == 1 {
                    self.actions.push_back(Action::Serve { peer: key });
                }
                peer.serves.push_back(block);
                if peer.serves.len() > 2 * MAX_QUEUED_REQUESTS {
                    // Cancelled entries pile up under request-cancel churn: keep one entry
                    // per queued block, so the queue never exceeds the limit for long.
                    let queued = &peer.queued;
                    let mut kept = std::collections::HashSet::with_capacity(queued.len());
                    peer.serves
                        .retain(|b| queued.contains(b) && kept.insert(*b));
                }
            }
            Message::Cancel { piece, offset, len } => {
                let block = Block { piece, offset, len };
                if peer.queued.remove(&block) {
                    self.cancelled_queued(key, block);
                }
            }
            Message::Reject { piece, offset, len } => {
                self.on_reject(now, key, Block { piece, offset, len })
            }
            Message::AllowedFast(piece) => self.on_allowed_fast(key, piece),
            Message::Piece {
                piece,
                offset,
                data,
            } => self.on_block(
                now,
                key,
                Block {
                    piece,
                    offset,
                    len: data.len() as u32,
                },
                data,
            ),
            Message::Extended { id, payload } => self.on_extended(now, key, id, payload),
            // Suggestions are advice we do not take (the picker goes rarest first).
            Message::Port(port) => self.on_dht_port(key, port),
            Message::KeepAlive | Message::Suggest(_) | Message::Unknown { .. } => {}
        }
    }

    /// A block of piece data arrived.
    fn on_block(&mut self, now: Instant, key: PeerKey, block: Block, data: &[u8]) {
        let len = u64::from(block.len);
        self.counters.downloaded += len;
        let received = self.picker.block_received(key, block);
        let Received::New {
            piece_complete,
            cancel,
        } = received
        else {
            self.counters.wasted += len;
            return;
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        // Only data we needed counts as progress and as rate (junk must neither hold off
        // the snub timer nor win an unchoke slot).
        peer.last_progress = now;
        peer.useful_at = now;
        peer.snubbed = false;
        peer.down.add(len);
        let sender = peer.ban_key;
        let piece = block.piece;
        let piece_len = self.geometry.piece_len(piece) as usize;
        let blocks = self.geometry.block_count(piece) as usize;
        let spill = self.spills();
        if spill && !self.partial.contains_key(&piece) {
            self.last_attempt += 1;
            self.attempts.insert(piece, self.last_attempt);
        }
        let pool = &mut self.pool;
        let buf = self.partial.entry(piece).or_insert_with(|| PieceBuf {
            data: super::spill::piece_buffer(pool, spill, piece_len),
            senders: vec![sender; blocks],
        });
        let start = block.offset as usize;
        buf.senders[start / BLOCK_LEN as usize] = sender;
        if spill {
            self.spill_block(piece, block.offset, data);
        } else {
            buf.data[start..start + data.len()].copy_from_slice(data);
        }
        for other in cancel {
            if let Some(p) = self.peers.get_mut(&other) {
                p.send(
                    &mut self.dirty,
                    Message::Cancel {
                        piece,
                        offset: block.offset,
                        len: block.len,
                    },
                );
            }
        }
        if piece_complete {
            if let Some(buf) = self.partial.remove(&piece) {
                if spill {
                    self.spilled_piece_complete(piece, buf);
                    return;
                }
                self.verifying.insert(piece, buf.senders);
                self.actions.push_back(Action::Verify {
                    piece,
                    expected: self.hashes[piece as usize],
                    data: buf.data,
                });
            }
        }
    }

    /// What the peer holds is now `bits` (a bitfield, have-all or have-none; a later one,
    /// which aria2 sends, replaces what we knew).
    pub(super) fn set_peer_bits(&mut self, now: Instant, key: PeerKey, bits: Bitfield) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        self.picker.peer_gone(&peer.bits);
        self.picker.peer_bitfield(&bits);
        peer.bits = bits;
        self.update_interest(key);
        self.drop_if_both_seeds(now, key);
    }

    /// Two seeds have nothing to say to each other: close the connection for good.
    fn drop_if_both_seeds(&mut self, now: Instant, key: PeerKey) {
        let both = self.state == TorrentState::Seeding
            && self.peers.get(&key).is_some_and(|p| p.is_seed());
        if both {
            let retry = self.seed_retry();
            self.close(now, key, DisconnectReason::BothSeeds, retry);
        }
    }
}
