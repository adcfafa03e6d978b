//! What the engine knows about one connection: its handshake phase, then the BEP 3 state
//! of both sides, rates, the requests it queued with us and the bytes waiting for it.

use super::bans::BanKey;
use super::rate::Rate;
use crate::core::{PeerId, PeerKey};
use crate::picker::Block;
use crate::wire::{Bitfield, Message, Rules};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// We dialled it: we send our handshake first.
    Outgoing,
    /// It connected to us: its handshake comes first (the session may already have read it
    /// to route the connection, and hands it over as the first bytes).
    Incoming,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the peer's 68-byte handshake.
    Handshake,
    /// Handshakes exchanged: messages flow.
    Live,
}

/// One connection's state; see the module documentation.
pub(super) struct Peer {
    pub key: PeerKey,
    pub addr: SocketAddr,
    pub direction: Direction,
    pub phase: Phase,
    /// From its handshake (zeros before).
    pub id: PeerId,
    pub ban_key: BanKey,
    pub rules: Rules,
    pub bits: Bitfield,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// Requests went unanswered too long: its blocks went to others.
    pub snubbed: bool,
    pub connected_at: Instant,
    pub last_received: Instant,
    pub last_sent: Instant,
    /// When a needed block last arrived, or when requests were first sent after none were
    /// pending.
    pub last_progress: Instant,
    /// When a needed block last passed either way (or when it connected): how useful it
    /// is when slots run short.
    pub useful_at: Instant,
    pub down: Rate,
    pub up: Rate,
    /// Blocks it asked for, served in order by the driver ([`super::Engine::take_serves`]).
    /// Entries no longer in `queued` were cancelled and are skipped.
    pub serves: VecDeque<Block>,
    /// The blocks it asked for and did not cancel: a cancel costs one lookup, not a scan.
    pub queued: HashSet<Block>,
    /// Encoded messages not yet handed to the driver.
    pub out: Vec<u8>,
    /// It set the extension protocol bit (BEP 10) in its handshake.
    pub speaks_extensions: bool,
    /// What its extension handshake said, once received.
    pub extensions: Option<super::extension::PeerExtensions>,
    /// Its listen port, from its extension handshake (for an incoming connection, the
    /// address it can be dialled at).
    pub listen_port: Option<u16>,
    /// Peer exchange with it (BEP 11).
    pub pex: super::pex::PeerPex,
    /// Both handshakes set the fast extension bit (BEP 6).
    pub fast: bool,
    /// Its allowed-fast set and the pieces it rejected (see `fast.rs`).
    pub fast_state: super::fast::PeerFast,
    /// Listed in the engine's dirty list (has bytes in `out`).
    pub dirty: bool,
    /// What it said it has while we fetched the metadata (no piece count to check it
    /// against yet): applied when the metadata arrives.
    pub early: Option<Box<Early>>,
    /// It sent its DHT port already (one is enough).
    pub dht_port_seen: bool,
}

/// A peer's bitfield, have-all or have-none and haves, kept as sent while a magnet torrent
/// fetches its metadata.
#[derive(Debug, Default)]
pub(super) struct Early {
    /// Its last bitfield, raw (bounded by the frame limit).
    pub bitfield: Option<Vec<u8>>,
    /// It sent have-all (after its last bitfield).
    pub all: bool,
    /// Haves after that, at most [`MAX_EARLY_HAVES`].
    pub haves: Vec<u32>,
}

/// Haves kept per peer before the metadata is known (4 bytes each).
pub(super) const MAX_EARLY_HAVES: usize = 1 << 16;

impl Peer {
    pub fn new(
        key: PeerKey,
        addr: SocketAddr,
        direction: Direction,
        rules: Rules,
        now: Instant,
    ) -> Peer {
        let pieces = rules.pieces() as usize;
        Peer {
            key,
            addr,
            direction,
            phase: Phase::Handshake,
            id: [0; 20],
            ban_key: BanKey::of(addr),
            rules,
            bits: Bitfield::repeat(false, pieces),
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            snubbed: false,
            connected_at: now,
            last_received: now,
            last_sent: now,
            last_progress: now,
            useful_at: now,
            down: Rate::default(),
            up: Rate::default(),
            serves: VecDeque::new(),
            queued: HashSet::new(),
            out: Vec::new(),
            speaks_extensions: false,
            extensions: None,
            listen_port: None,
            pex: Default::default(),
            fast: false,
            fast_state: Default::default(),
            dirty: false,
            early: None,
            dht_port_seen: false,
        }
    }

    /// Queues `message` for the peer, listing it in `dirty` if its queue was empty.
    pub fn send(&mut self, dirty: &mut Vec<PeerKey>, message: Message) {
        message.encode(&mut self.out);
        self.mark(dirty);
    }

    /// Lists the peer in `dirty` once.
    pub fn mark(&mut self, dirty: &mut Vec<PeerKey>) {
        if !self.dirty {
            self.dirty = true;
            dirty.push(self.key);
        }
    }

    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    pub fn is_seed(&self) -> bool {
        self.is_live() && self.bits.all()
    }
}
