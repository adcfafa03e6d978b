//! Assembling a torrent's info dictionary from peers (BEP 9, `ut_metadata`): which peer is
//! asked for which 16 KiB piece, what came back, and whom to trust after a bad result.
//!
//! No I/O and no clock of its own. The engine (`torrent/magnet.rs`) tells it which peers
//! offer metadata and of what size, hands it every data and reject message, and sends the
//! requests it returns. Rules:
//! - A size over [`MAX_METADATA_SIZE`] (or zero) is refused before anything is allocated;
//!   the buffer is allocated for the size most peers claim, and only peers claiming that
//!   size are asked.
//! - At most [`MAX_IN_FLIGHT`] requests per peer; a request unanswered for
//!   [`REQUEST_TIMEOUT`] goes to another peer; a peer that rejects is left alone for
//!   [`REJECT_BACKOFF`].
//! - A data message must match a request we sent that peer; its `total_size` must be the
//!   size being fetched, and every piece but the last exactly 16 KiB (checked by the codec).
//! - The assembled bytes must hash to the info hash. When they do not, nobody can tell which
//!   piece lied, so the fetch starts again taking every piece from one peer at a time,
//!   peers that did not contribute first: a peer whose own copy fails is proven bad (the
//!   engine bans it), and an honest peer's copy completes the fetch. A liar costs one
//!   fetch of the metadata, never the torrent.

use crate::core::{InfoHash, PeerKey};
pub use crate::wire::metadata::MAX_METADATA_SIZE;
use crate::wire::metadata::{piece_count, piece_len, METADATA_PIECE};
use sha1::{Digest, Sha1};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Metadata requests in flight per peer (libtorrent and Transmission serve a few at a time
/// and reject the rest; the round trip on a LAN is far shorter than a piece's transfer).
pub const MAX_IN_FLIGHT: u32 = 4;
/// A request unanswered this long goes to another peer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that rejected a request is not asked again for this long.
pub const REJECT_BACKOFF: Duration = Duration::from_secs(2);

/// Why a peer's metadata offer or message is refused (the engine closes the connection).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchError {
    #[error("it offers metadata of {0} bytes (the limit is {MAX_METADATA_SIZE})")]
    TooLarge(u64),
    #[error("it offers metadata of 0 bytes")]
    Empty,
    #[error("its metadata piece says the total is {got} bytes, not {expected}")]
    WrongTotal { got: u64, expected: u64 },
}

/// What a data message led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored (or not asked for, and dropped); more pieces to come.
    Pending,
    /// Every piece is in and the bytes hash to the info hash: the info dictionary.
    Complete(Vec<u8>),
    /// Every piece is in and the bytes do not hash to the info hash. `proven` lists a peer
    /// whose own complete copy failed (ban it); the fetch has started again.
    HashFailed { proven: Option<PeerKey> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Missing,
    Requested { peer: PeerKey, at: Instant },
    Have { from: PeerKey },
}

#[derive(Debug)]
struct Offer {
    /// Its extended message id for `ut_metadata`.
    id: u8,
    /// The size it claims.
    size: u64,
    in_flight: u32,
    /// Not asked again before this (after a reject or a timeout).
    rest_until: Option<Instant>,
}

/// One metadata fetch; see the module documentation.
#[derive(Debug)]
pub struct MetadataFetch {
    info_hash: InfoHash,
    offers: HashMap<PeerKey, Offer>,
    /// The size being fetched, once chosen.
    size: Option<u64>,
    buf: Vec<u8>,
    slots: Vec<Slot>,
    /// After a hash failure: the one peer asked for every piece.
    solo: Option<PeerKey>,
    /// Peers whose pieces were in a failed copy (they go last in solo mode).
    suspects: HashSet<PeerKey>,
    /// Peers whose own copy failed or who already had their solo turn.
    tried_solo: HashSet<PeerKey>,
    /// Whether a hash failure has happened (from then on, one peer at a time).
    failed_once: bool,
    done: bool,
}

/// A request to send: `ut_metadata` request for `piece` under the peer's id `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub peer: PeerKey,
    pub id: u8,
    pub piece: u32,
}

impl MetadataFetch {
    pub fn new(info_hash: InfoHash) -> MetadataFetch {
        MetadataFetch {
            info_hash,
            offers: HashMap::new(),
            size: None,
            buf: Vec::new(),
            slots: Vec::new(),
            solo: None,
            suspects: HashSet::new(),
            tried_solo: HashSet::new(),
            failed_once: false,
            done: false,
        }
    }

    /// `peer` offers metadata of `size` bytes under its extended id `id` (from its
    /// extension handshake). A repeated handshake updates the offer.
    pub fn offer(&mut self, peer: PeerKey, id: u8, size: u64) -> Result<(), FetchError> {
        if size > MAX_METADATA_SIZE {
            return Err(FetchError::TooLarge(size));
        }
        if size == 0 {
            return Err(FetchError::Empty);
        }
        self.release(peer);
        self.offers.insert(
            peer,
            Offer {
                id,
                size,
                in_flight: 0,
                rest_until: None,
            },
        );
        Ok(())
    }

    /// The peer is gone: what it was asked goes to others.
    pub fn remove(&mut self, peer: PeerKey) {
        self.release(peer);
        self.offers.remove(&peer);
        if self.solo == Some(peer) {
            self.solo = None;
            self.restart();
        }
    }

    /// Whether the metadata is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Peers offering metadata now.
    pub fn offers(&self) -> usize {
        self.offers.len()
    }

    /// Bytes received so far and the size being fetched (0 before one is chosen).
    pub fn progress(&self) -> (u64, u64) {
        let Some(size) = self.size else {
            return (0, 0);
        };
        let have = (0..self.slots.len() as u32)
            .filter(|&i| matches!(self.slots[i as usize], Slot::Have { .. }))
            .map(|i| piece_len(size, i) as u64)
            .sum();
        (have, size)
    }

    /// Requests to send now, appended to `out`.
    pub fn requests(&mut self, now: Instant, out: &mut Vec<Request>) {
        if self.done {
            return;
        }
        if self.failed_once && self.solo.is_none() {
            self.pick_solo();
        }
        if self.size.is_none() && !self.choose_size() {
            return;
        }
        let size = self.size.unwrap_or_default();
        let mut askable: Vec<PeerKey> = self
            .offers
            .iter()
            .filter(|(k, o)| {
                o.size == size
                    && o.in_flight < MAX_IN_FLIGHT
                    && o.rest_until.map_or(true, |t| now >= t)
                    && self.solo.map_or(true, |s| s == **k)
            })
            .map(|(k, _)| *k)
            .collect();
        askable.sort();
        // Round robin: one piece per peer per pass, so several peers share the work.
        let mut next = 0;
        while !askable.is_empty() {
            let Some(piece) = self.slots[next..]
                .iter()
                .position(|s| *s == Slot::Missing)
                .map(|i| i + next)
            else {
                return;
            };
            next = piece + 1;
            let peer = askable[piece % askable.len()];
            let offer = self
                .offers
                .get_mut(&peer)
                .expect("askable peers have offers");
            offer.in_flight += 1;
            self.slots[piece] = Slot::Requested { peer, at: now };
            out.push(Request {
                peer,
                id: offer.id,
                piece: piece as u32,
            });
            if offer.in_flight >= MAX_IN_FLIGHT {
                askable.retain(|k| *k != peer);
            }
        }
    }

    /// A data message from `peer`.
    pub fn on_data(
        &mut self,
        peer: PeerKey,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> Result<Received, FetchError> {
        let Some(size) = self.size else {
            return Ok(Received::Pending);
        };
        match self.slots.get(piece as usize) {
            Some(Slot::Requested { peer: p, .. }) if *p == peer => {}
            // Not asked of this peer (or asked again of another after a timeout): dropped.
            _ => return Ok(Received::Pending),
        }
        if total_size != size {
            return Err(FetchError::WrongTotal {
                got: total_size,
                expected: size,
            });
        }
        let len = piece_len(size, piece);
        if data.len() != len {
            // The codec checks lengths against the message's own total, equal to ours.
            return Err(FetchError::WrongTotal {
                got: total_size,
                expected: size,
            });
        }
        let start = piece as usize * METADATA_PIECE;
        self.buf[start..start + len].copy_from_slice(data);
        self.slots[piece as usize] = Slot::Have { from: peer };
        if let Some(o) = self.offers.get_mut(&peer) {
            o.in_flight = o.in_flight.saturating_sub(1);
        }
        if self.slots.iter().all(|s| matches!(s, Slot::Have { .. })) {
            return Ok(self.finish());
        }
        Ok(Received::Pending)
    }

    /// A reject from `peer`: the piece goes to someone else, the peer rests.
    pub fn on_reject(&mut self, now: Instant, peer: PeerKey, piece: u32) {
        if let Some(slot) = self.slots.get_mut(piece as usize) {
            if matches!(slot, Slot::Requested { peer: p, .. } if *p == peer) {
                *slot = Slot::Missing;
                if let Some(o) = self.offers.get_mut(&peer) {
                    o.in_flight = o.in_flight.saturating_sub(1);
                    o.rest_until = Some(now + REJECT_BACKOFF);
                }
            }
        }
    }

    /// Time passed: requests unanswered for [`REQUEST_TIMEOUT`] go back to be asked of
    /// others, and their peers rest.
    pub fn on_tick(&mut self, now: Instant) {
        for slot in &mut self.slots {
            if let Slot::Requested { peer, at } = *slot {
                if now.saturating_duration_since(at) >= REQUEST_TIMEOUT {
                    *slot = Slot::Missing;
                    if let Some(o) = self.offers.get_mut(&peer) {
                        o.in_flight = o.in_flight.saturating_sub(1);
                        o.rest_until = Some(now + REQUEST_TIMEOUT);
                    }
                }
            }
        }
    }

    /// Every piece is in: checks the hash.
    fn finish(&mut self) -> Received {
        let hash: [u8; 20] = Sha1::digest(&self.buf).into();
        if hash == self.info_hash.0 {
            self.done = true;
            self.offers.clear();
            return Received::Complete(std::mem::take(&mut self.buf));
        }
        let contributors: HashSet<PeerKey> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Have { from } => Some(*from),
                _ => None,
            })
            .collect();
        let proven = match self.solo.take() {
            Some(solo) => {
                // Its own copy, every piece: it lied. Never ask it again.
                self.offers.remove(&solo);
                Some(solo)
            }
            None if contributors.len() == 1 => {
                let only = contributors.iter().next().copied();
                if let Some(p) = only {
                    self.offers.remove(&p);
                }
                only
            }
            None => None,
        };
        if let Some(p) = proven {
            self.tried_solo.insert(p);
        }
        tracing::debug!(
            "metadata from {} peer(s) does not hash to {}; fetching again one peer at a time",
            contributors.len(),
            self.info_hash
        );
        self.suspects.extend(contributors);
        self.failed_once = true;
        self.restart();
        Received::HashFailed { proven }
    }

    /// Forgets every piece and the chosen size (requests in flight are dropped when they
    /// come back).
    fn restart(&mut self) {
        for o in self.offers.values_mut() {
            o.in_flight = 0;
        }
        self.size = None;
        self.buf = Vec::new();
        self.slots.clear();
    }

    /// Picks the peer to take every piece from after a hash failure: one not suspected
    /// first, then a suspect not yet tried alone.
    fn pick_solo(&mut self) {
        let mut keys: Vec<PeerKey> = self.offers.keys().copied().collect();
        keys.sort();
        let pick = keys
            .iter()
            .find(|k| !self.suspects.contains(k) && !self.tried_solo.contains(k))
            .or_else(|| keys.iter().find(|k| !self.tried_solo.contains(k)))
            .copied();
        if let Some(p) = pick {
            self.tried_solo.insert(p);
            self.solo = Some(p);
            self.size = None;
        }
    }

    /// Chooses the size to fetch: the one most offers (or the solo peer) claim. Returns
    /// whether there is one.
    fn choose_size(&mut self) -> bool {
        let size = match self.solo {
            Some(s) => self.offers.get(&s).map(|o| o.size),
            None => {
                let mut votes: HashMap<u64, usize> = HashMap::new();
                for o in self.offers.values() {
                    *votes.entry(o.size).or_default() += 1;
                }
                votes
                    .into_iter()
                    .max_by_key(|&(size, n)| (n, std::cmp::Reverse(size)))
                    .map(|(size, _)| size)
            }
        };
        let Some(size) = size else {
            return false;
        };
        self.size = Some(size);
        self.buf = vec![0; size as usize];
        self.slots = vec![Slot::Missing; piece_count(size) as usize];
        true
    }

    /// Returns what `peer` was asked to the pool.
    fn release(&mut self, peer: PeerKey) {
        for slot in &mut self.slots {
            if matches!(slot, Slot::Requested { peer: p, .. } if *p == peer) {
                *slot = Slot::Missing;
            }
        }
        if let Some(o) = self.offers.get_mut(&peer) {
            o.in_flight = 0;
        }
    }
}

#[cfg(test)]
mod tests;
