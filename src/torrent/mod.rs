//! The torrent engine: one torrent's protocol logic with no I/O.
//!
//! An [`Engine`] owns everything one torrent decides: its lifecycle, every connection's
//! protocol state (handshake, then BEP 3 messages), the picker and choker, pieces being
//! received, bans, rates and the peer book. It never touches a socket, a file, a thread or
//! the clock: bytes and events go in, bytes and actions come out, and time is passed in.
//! The session ([`crate::session`]) moves the bytes and carries out the actions.
//!
//! # The contract
//! Inputs are the `handle_*` calls and the commands ([`Engine::pause`], [`Engine::resume`],
//! [`Engine::stop`]), each with `now`. After any input, the caller drains
//! [`Engine::poll_action`] until it returns `None` and carries out each [`Action`] in order,
//! then sleeps until [`Engine::poll_timeout`] (or the next input) and calls
//! [`Engine::handle_timeout`]. In detail:
//! - A connection starts with [`Engine::handle_connected`], which hands back its
//!   [`PeerKey`]; bytes received go to [`Engine::handle_bytes`], which says how many it
//!   used (keep the rest and pass them again with more); its end is reported with
//!   [`Engine::handle_closed`]. [`Action::Close`] means the engine has already forgotten
//!   the peer: close the socket, and later calls for that key are ignored.
//! - [`Action::Send`] carries bytes to write to a peer, in order. [`Action::Serve`] says a
//!   peer has blocks queued: take them with [`Engine::take_serves`] when its socket has
//!   room, read them from storage, send each behind [`crate::wire::piece_header`], and
//!   report the payload with [`Engine::handle_sent`].
//! - [`Action::Verify`] hands over a complete piece: hash it, write it only if it matches,
//!   and report with [`Engine::handle_verified`] (returning the buffer). Nothing is marked,
//!   announced or served before that report says the hash matched.
//! - [`Action::Dial`] asks for an outgoing connection: report [`Engine::handle_connected`]
//!   or [`Engine::handle_dial_failed`].
//! - [`Action::Announce`] asks the trackers (and later the DHT) to be told of an event;
//!   peers they return come back through [`Engine::handle_peers`].
//!
//! The engine never blocks and never allocates by a peer's word beyond the checked limits
//! of [`crate::wire`], [`MAX_QUEUED_REQUESTS`] and the peer book's cap.

mod bans;
mod book;
mod connections;
mod dht;
mod disk;
mod error;
mod extension;
mod fast;
pub mod fetch;
mod flow;
mod lifecycle;
mod magnet;
mod messages;
mod peer;
mod pex;
mod rate;
mod selection;
mod slots;
mod spill;

pub use bans::{BanKey, Bans, MAX_STRIKES};
pub use book::{PeerBook, PeerSource, MAX_CANDIDATES};
pub use disk::DiskHash;
pub use error::{DisconnectReason, TorrentError};
pub use fast::FastStats;
pub use magnet::LEFT_UNKNOWN;
pub use peer::Direction;
pub use rate::Rate;

#[cfg(test)]
mod tests;

use crate::core::keyed::{Map, Set};
use crate::core::{Geometry, InfoHash, PeerId, PeerKey};
use crate::picker::{Choker, Picker};
use crate::storage::AlignedBuf;
use crate::tracker::Event;
use crate::wire::max_message_len;
use peer::Peer;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Requests a peer may queue with us; one more ends the connection (a real client keeps
/// far fewer in flight: Transmission several thousand at most, libtorrent 500). Queued
/// requests cost 12 bytes each, data is read only when its turn comes.
pub const MAX_QUEUED_REQUESTS: usize = 16_384;
/// Memory for pieces being received or waiting for their hash check (at least 4 pieces).
pub const PARTIAL_BYTES: u64 = 8 << 20;
/// The peer must complete its handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that sends nothing (not even keep-alives) for this long is dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// We send a keep-alive after this long without sending anything.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// A peer that answers none of our requests for this long is snubbed: its blocks are
/// requested from others.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections beyond `max_peers` allowed while they handshake (incoming ones are only
/// refused once this many more are open).
pub const HANDSHAKE_SLACK: usize = 32;
/// The engine's clock tick while it has peers or candidates.
const TICK: Duration = Duration::from_secs(1);
/// Ticks between choker rounds.
const RECHOKE_TICKS: u64 = 10;
/// After a connection ends, how long before its address is dialled again.
const REDIAL_AFTER: Duration = Duration::from_secs(60);

/// How one torrent behaves.
#[derive(Debug, Clone)]
pub struct TorrentConfig {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Most peers connected at once (handshaken, in and out).
    pub max_peers: usize,
    /// Regular unchoke slots (one optimistic slot comes on top).
    pub upload_slots: usize,
    /// Where we listen (never dialled: that would be ourselves).
    pub listen: Option<SocketAddr>,
    /// Seed for the choker's and picker's random draws (tests fix it).
    pub seed: u64,
    /// The info dictionary's bytes, served to peers that ask (BEP 9); `None` for a
    /// private torrent (BEP 27), which never hands out its metadata.
    pub metadata: Option<std::sync::Arc<[u8]>>,
    /// A private torrent (BEP 27): peers come from its trackers only (no PEX).
    pub private: bool,
    /// The UDP port of our DHT node, told to peers that run one (BEP 5 `port` message).
    pub dht_port: Option<u16>,
}

impl Default for TorrentConfig {
    fn default() -> Self {
        TorrentConfig {
            peer_id: [0; 20],
            max_peers: 50,
            upload_slots: 4,
            listen: None,
            seed: fastrand::u64(..),
            metadata: None,
            private: false,
            dht_port: None,
        }
    }
}

/// Where a torrent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TorrentState {
    /// Started from a magnet link: fetching the info dictionary from peers (BEP 9).
    #[serde(rename = "fetching metadata")]
    FetchingMetadata,
    /// Checking the data on disk; no peers yet.
    Checking,
    /// Live, some pieces missing.
    Downloading,
    /// Live with every piece.
    Seeding,
    /// No peers, no announces, until resumed.
    Paused,
    /// Stopped for good (removed or shut down).
    Stopped,
    /// A disk error stopped it; see [`Engine::error`].
    Failed,
}

/// Something the caller must do; see the module documentation.
#[derive(Debug)]
pub enum Action {
    /// Write these bytes to the peer.
    Send { peer: PeerKey, bytes: Vec<u8> },
    /// The peer has requests queued: call [`Engine::take_serves`].
    Serve { peer: PeerKey },
    /// Close the connection (the engine has forgotten it).
    Close {
        peer: PeerKey,
        addr: SocketAddr,
        reason: DisconnectReason,
    },
    /// Open a connection to this address.
    Dial { addr: SocketAddr },
    /// Hash this complete piece; write it if it matches `expected`; report back.
    Verify {
        piece: u32,
        expected: [u8; 20],
        data: AlignedBuf,
    },
    /// Write a block of a large piece now, before its hash is known (see `spill.rs`);
    /// report with [`Engine::handle_written`].
    Write {
        piece: u32,
        offset: u32,
        data: Vec<u8>,
        /// Which attempt at the piece this block belongs to (a piece that starts again
        /// gets a new number): lets the driver hash blocks as they are written.
        attempt: u64,
    },
    /// Read this piece from disk and hash it (a large piece just downloaded, or a piece
    /// we had that could not be read); report with [`Engine::handle_hashed_on_disk`],
    /// with each block's SHA-1 if `block_hashes` or if it failed. Until then the piece is
    /// neither served nor downloaded.
    HashOnDisk {
        piece: u32,
        expected: [u8; 20],
        block_hashes: bool,
        /// For a spilled piece, the attempt whose writes made it (see [`Action::Write`]):
        /// what the driver hashed of that attempt's writes, in order, need not be read
        /// again. `None` for a piece checked again.
        attempt: Option<u64>,
    },
    /// Tell the trackers (`Event::None`: nothing new, but more peers are wanted now).
    Announce { event: Event },
    /// A peer runs a DHT node at this address (its BEP 5 `port` message): worth trying.
    DhtNode { addr: SocketAddr },
    /// A peer at `voter` sees us at `seen` (its `yourip`, BEP 10): a vote on our external
    /// address, which gives the DHT node its BEP 42 id.
    ExternalIp { voter: IpAddr, seen: IpAddr },
    /// Every piece is verified (sent once per download).
    Completed,
    /// The lifecycle state changed.
    State(TorrentState),
    /// A magnet torrent's metadata arrived, hashed right and parsed (the engine is now
    /// checking): create the storage, check what is on disk, and call
    /// [`Engine::handle_checked`]. `meta` has no trackers: add the magnet's.
    Metadata {
        meta: Box<crate::metainfo::Metainfo>,
    },
}

/// A snapshot of one torrent's progress.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TorrentStats {
    pub pieces: usize,
    pub pieces_have: usize,
    pub total_bytes: u64,
    pub verified_bytes: u64,
    /// Bytes of the wanted pieces (all unless files were left out), and of those still
    /// to verify.
    pub wanted_bytes: u64,
    pub left_bytes: u64,
    /// Piece bytes received from peers (good or not).
    pub downloaded: u64,
    /// Piece bytes sent.
    pub uploaded: u64,
    /// Bytes received that were duplicates or failed the hash check.
    pub wasted: u64,
    /// Pieces that failed their hash check (not counting pieces from a peer already
    /// banned when the result came).
    pub hash_failures: u64,
    /// Pieces that could not be written or read (each is downloaded or checked again).
    pub disk_errors: u64,
    /// Bytes per second, smoothed over a few seconds.
    pub download_rate: f64,
    pub upload_rate: f64,
    pub peers: usize,
    pub seeds: usize,
    /// Live peers sending us piece data now (a download rate above zero).
    pub peers_sending: usize,
    /// Live peers we send piece data to now.
    pub peers_receiving: usize,
    pub banned: usize,
    pub complete: bool,
    /// While fetching metadata: bytes of the info dictionary received, and its size (0
    /// until a peer offered it).
    pub metadata_bytes: u64,
    pub metadata_size: u64,
    /// The fast extension's counters (BEP 6), at the top level of the serialised form.
    #[serde(flatten)]
    pub fast: FastStats,
}

/// A piece being received: its bytes (none for a spilled piece) and who sent each block.
struct PieceBuf {
    data: AlignedBuf,
    senders: Vec<BanKey>,
}

/// Plain byte counters.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    downloaded: u64,
    uploaded: u64,
    wasted: u64,
    hash_failures: u64,
    disk_errors: u64,
}

/// One torrent's protocol engine; see the module documentation.
pub struct Engine {
    info_hash: InfoHash,
    config: TorrentConfig,
    geometry: Geometry,
    hashes: std::sync::Arc<[[u8; 20]]>,
    state: TorrentState,
    error: Option<TorrentError>,
    /// Origin of the choker's clock.
    epoch: Instant,
    picker: Picker,
    choker: Choker,
    bans: Bans,
    book: PeerBook,
    peers: Map<PeerKey, Peer>,
    next_key: u64,
    /// Outgoing connections asked for and not yet reported.
    dialing: Set<SocketAddr>,
    /// Pieces being received.
    partial: Map<u32, PieceBuf>,
    /// Pieces handed out for verification, with who sent each block.
    verifying: Map<u32, Vec<BanKey>>,
    /// Piece buffers to reuse.
    pool: Vec<AlignedBuf>,
    verified_bytes: u64,
    counters: Counters,
    fast_stats: FastStats,
    /// Failed writes since the last good one.
    write_errors: u32,
    /// Blocks of spilled pieces handed out for writing and not yet reported, per piece.
    unwritten: Map<u32, u32>,
    unwritten_bytes: u64,
    /// Block buffers to reuse for [`Action::Write`].
    block_pool: Vec<Vec<u8>>,
    /// Pieces we had that are being checked again after a failed read.
    rechecking: Set<u32>,
    /// Spilled pieces to start again once their old writes landed.
    draining: Set<u32>,
    /// Pieces we had and stopped serving (a failed read), ever.
    revocations: u64,
    /// The attempt number of each spilled piece in progress, and the last one given.
    attempts: Map<u32, u64>,
    last_attempt: u64,
    /// Peers with bytes in their `out` queue.
    dirty: Vec<PeerKey>,
    actions: VecDeque<Action>,
    next_tick: Option<Instant>,
    ticks: u64,
    /// Whether this run started incomplete (so completion is news for the trackers).
    downloading: bool,
    /// The block list `refill` fills, kept to reuse its allocation (every read refills).
    scratch_blocks: Vec<crate::picker::Block>,
    /// A pause asked for while checking: applied when the check ends.
    pause_after_check: bool,
    /// The last piece verified while paused: completion is reported on resume.
    completed_while_paused: bool,
    /// A magnet torrent's metadata fetch (kept, done, once the metadata arrived).
    fetch: Option<Box<fetch::MetadataFetch>>,
}

impl Engine {
    /// A torrent of `geometry` whose pieces hash to `hashes`, in the checking state: no
    /// peers until [`Engine::handle_checked`] says which pieces the disk already holds.
    pub fn new(
        now: Instant,
        info_hash: InfoHash,
        geometry: Geometry,
        hashes: impl Into<std::sync::Arc<[[u8; 20]]>>,
        config: TorrentConfig,
    ) -> Engine {
        let picker = picker_for(geometry, config.seed);
        Engine {
            info_hash,
            choker: Choker::new(config.upload_slots, config.seed),
            config,
            geometry,
            hashes: hashes.into(),
            state: TorrentState::Checking,
            error: None,
            epoch: now,
            picker,
            bans: Bans::default(),
            book: PeerBook::default(),
            peers: Map::default(),
            next_key: 0,
            dialing: Set::default(),
            partial: Map::default(),
            verifying: Map::default(),
            pool: Vec::new(),
            verified_bytes: 0,
            write_errors: 0,
            unwritten: Map::default(),
            unwritten_bytes: 0,
            block_pool: Vec::new(),
            rechecking: Set::default(),
            draining: Set::default(),
            revocations: 0,
            attempts: Map::default(),
            last_attempt: 0,
            counters: Counters::default(),
            fast_stats: FastStats::default(),
            dirty: Vec::new(),
            actions: VecDeque::new(),
            next_tick: None,
            ticks: 0,
            downloading: false,
            scratch_blocks: Vec::new(),
            pause_after_check: false,
            completed_while_paused: false,
            fetch: None,
        }
    }

    /// Takes the shape of the torrent `info` describes (a magnet torrent whose metadata
    /// just arrived; no piece is had or in flight yet).
    fn take_shape(&mut self, info: &crate::metainfo::Info) {
        self.geometry = info.geometry();
        self.hashes = info.pieces.clone();
        self.picker = picker_for(self.geometry, self.config.seed);
    }

    /// The torrent's info hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The piece geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Whether the torrent is private (BEP 27): no DHT, no PEX.
    pub fn is_private(&self) -> bool {
        self.config.private
    }

    /// The lifecycle state.
    pub fn state(&self) -> TorrentState {
        self.state
    }

    /// Why the torrent failed, once it has.
    pub fn error(&self) -> Option<&TorrentError> {
        self.error.as_ref()
    }

    /// Pieces we hold verified.
    pub fn have(&self) -> &bitvec::slice::BitSlice<u8, bitvec::order::Msb0> {
        self.picker.have()
    }

    /// Bytes still missing ([`LEFT_UNKNOWN`] before the metadata is known).
    pub fn left(&self) -> u64 {
        if self.lacks_metadata() {
            return LEFT_UNKNOWN;
        }
        self.geometry.total_length - self.verified_bytes
    }

    /// The largest frame a peer may send (size receive buffers by it, plus 4 bytes).
    pub fn max_frame_len(&self) -> usize {
        if self.is_fetching() {
            return Self::fetch_frame_len();
        }
        max_message_len(self.geometry.pieces as usize)
    }

    /// Whether the torrent exchanges pieces now.
    pub(super) fn is_live(&self) -> bool {
        matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        )
    }

    /// Whether the torrent takes peers now (live, or fetching its metadata).
    pub(super) fn takes_peers(&self) -> bool {
        self.is_live() || self.is_fetching()
    }

    pub(super) fn set_state(&mut self, state: TorrentState) {
        if self.state != state {
            self.state = state;
            self.actions.push_back(Action::State(state));
        }
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        while let Some(key) = self.dirty.pop() {
            if let Some(p) = self.peers.get_mut(&key) {
                p.dirty = false;
                if !p.out.is_empty() {
                    return Some(Action::Send {
                        peer: key,
                        bytes: std::mem::take(&mut p.out),
                    });
                }
            }
        }
        let next = self.actions.pop_front();
        if next.is_none() && self.peers.is_empty() && self.actions.capacity() > 0 {
            // Idle: give back the queues' memory (thousands of idle torrents add up).
            self.actions = VecDeque::new();
            self.dirty = Vec::new();
            self.scratch_blocks = Vec::new();
        }
        next
    }

    /// When [`Engine::handle_timeout`] is due; `None` while there is nothing to time (no
    /// peers and nobody to dial: an idle torrent costs no wake-ups).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Bytes of piece data the engine holds now: pieces being received, buffers kept for
    /// reuse, and blocks of spilled pieces waiting for their write.
    pub fn piece_memory(&self) -> u64 {
        let held: usize = self.partial.values().map(|b| b.data.len()).sum();
        let pooled: usize = self.pool.iter().map(|b| b.len()).sum();
        let blocks: usize = self.block_pool.iter().map(|b| b.capacity()).sum();
        (held + pooled + blocks) as u64 + self.unwritten_bytes
    }

    /// How many times a piece we had stopped being served (a failed read). A driver that
    /// reads blocks from disk without the engine's lock compares this before and after:
    /// if it changed, the blocks read may belong to a piece being fetched again.
    pub fn revocations(&self) -> u64 {
        self.revocations
    }

    /// Progress figures now.
    pub fn stats(&self) -> TorrentStats {
        let live = || self.peers.values().filter(|p| p.is_live());
        let (metadata_bytes, metadata_size) = self.metadata_progress();
        let (wanted_bytes, left_bytes) = self.wanted_bytes();
        TorrentStats {
            pieces: self.picker.piece_count(),
            pieces_have: self.picker.have_count(),
            total_bytes: self.geometry.total_length,
            verified_bytes: self.verified_bytes,
            wanted_bytes,
            left_bytes,
            downloaded: self.counters.downloaded,
            uploaded: self.counters.uploaded,
            wasted: self.counters.wasted,
            hash_failures: self.counters.hash_failures,
            disk_errors: self.counters.disk_errors,
            download_rate: live().map(|p| p.down.per_second()).sum(),
            upload_rate: live().map(|p| p.up.per_second()).sum(),
            peers: live().count(),
            seeds: live().filter(|p| p.bits.all()).count(),
            peers_sending: live().filter(|p| p.down.per_second() > 0.0).count(),
            peers_receiving: live().filter(|p| p.up.per_second() > 0.0).count(),
            banned: self.bans.banned_count(),
            complete: !self.lacks_metadata() && self.picker.is_done(),
            metadata_bytes,
            metadata_size,
            fast: self.fast_stats,
        }
    }
}

/// A picker for `geometry`. Partial pieces are held in memory until verified: keep them
/// within about PARTIAL_BYTES (a piece buffer is reused, never freed, while the torrent
/// runs). Pieces too large for that go to disk block by block (`spill.rs`).
fn picker_for(geometry: Geometry, seed: u64) -> Picker {
    let mut picker = Picker::with_seed(geometry.piece_length as u32, geometry.total_length, seed);
    picker.set_max_partial((PARTIAL_BYTES / geometry.piece_length.max(1)).clamp(4, 256) as usize);
    picker
}
