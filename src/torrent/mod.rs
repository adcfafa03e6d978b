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
mod error;
mod flow;
mod messages;
mod peer;
mod rate;

pub use bans::{BanKey, Bans, MAX_STRIKES};
pub use book::{PeerBook, PeerSource, MAX_CANDIDATES};
pub use error::{DisconnectReason, TorrentError};
pub use peer::Direction;
pub use rate::Rate;

#[cfg(test)]
mod tests;

use crate::core::{Geometry, InfoHash, PeerId, PeerKey};
use crate::picker::{Block, Choker, Picker};
use crate::storage::AlignedBuf;
use crate::tracker::Event;
use crate::wire::{max_message_len, Bitfield, Handshake, Rules};
use peer::Peer;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
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
}

impl Default for TorrentConfig {
    fn default() -> Self {
        TorrentConfig {
            peer_id: [0; 20],
            max_peers: 50,
            upload_slots: 4,
            listen: None,
            seed: fastrand::u64(..),
        }
    }
}

/// Where a torrent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TorrentState {
    /// Checking the data on disk; no peers yet. (A "fetching metadata" state will come
    /// before it for magnet links.)
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
    /// Tell the trackers (`Event::None`: nothing new, but more peers are wanted now).
    Announce { event: Event },
    /// Every piece is verified (sent once per download).
    Completed,
    /// The lifecycle state changed.
    State(TorrentState),
}

/// A snapshot of one torrent's progress.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TorrentStats {
    pub pieces: usize,
    pub pieces_have: usize,
    pub total_bytes: u64,
    pub verified_bytes: u64,
    /// Piece bytes received from peers (good or not).
    pub downloaded: u64,
    /// Piece bytes sent.
    pub uploaded: u64,
    /// Bytes received that were duplicates or failed the hash check.
    pub wasted: u64,
    pub hash_failures: u64,
    /// Bytes per second, smoothed over a few seconds.
    pub download_rate: f64,
    pub upload_rate: f64,
    pub peers: usize,
    pub seeds: usize,
    pub banned: usize,
    pub complete: bool,
}

/// A piece being received: its bytes and who sent each block.
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
}

/// One torrent's protocol engine; see the module documentation.
pub struct Engine {
    info_hash: InfoHash,
    config: TorrentConfig,
    geometry: Geometry,
    hashes: Vec<[u8; 20]>,
    state: TorrentState,
    error: Option<TorrentError>,
    /// Origin of the choker's clock.
    epoch: Instant,
    picker: Picker,
    choker: Choker,
    bans: Bans,
    book: PeerBook,
    peers: HashMap<PeerKey, Peer>,
    next_key: u64,
    /// Outgoing connections asked for and not yet reported.
    dialing: HashSet<SocketAddr>,
    /// Pieces being received.
    partial: HashMap<u32, PieceBuf>,
    /// Pieces handed out for verification, with who sent each block.
    verifying: HashMap<u32, Vec<BanKey>>,
    /// Piece buffers to reuse.
    pool: Vec<AlignedBuf>,
    verified_bytes: u64,
    counters: Counters,
    /// Peers with bytes in their `out` queue.
    dirty: Vec<PeerKey>,
    actions: VecDeque<Action>,
    next_tick: Option<Instant>,
    ticks: u64,
    /// Whether this run started incomplete (so completion is news for the trackers).
    downloading: bool,
}

impl Engine {
    /// A torrent of `geometry` whose pieces hash to `hashes`, in the checking state: no
    /// peers until [`Engine::handle_checked`] says which pieces the disk already holds.
    pub fn new(
        now: Instant,
        info_hash: InfoHash,
        geometry: Geometry,
        hashes: Vec<[u8; 20]>,
        config: TorrentConfig,
    ) -> Engine {
        let mut picker = Picker::with_seed(
            geometry.piece_length as u32,
            geometry.total_length,
            config.seed,
        );
        // Partial pieces are held in memory until verified: keep them within about
        // PARTIAL_BYTES (a piece buffer is reused, never freed, while the torrent runs).
        picker
            .set_max_partial((PARTIAL_BYTES / geometry.piece_length.max(1)).clamp(4, 256) as usize);
        Engine {
            info_hash,
            choker: Choker::new(config.upload_slots, config.seed),
            config,
            geometry,
            hashes,
            state: TorrentState::Checking,
            error: None,
            epoch: now,
            picker,
            bans: Bans::default(),
            book: PeerBook::default(),
            peers: HashMap::new(),
            next_key: 0,
            dialing: HashSet::new(),
            partial: HashMap::new(),
            verifying: HashMap::new(),
            pool: Vec::new(),
            verified_bytes: 0,
            counters: Counters::default(),
            dirty: Vec::new(),
            actions: VecDeque::new(),
            next_tick: None,
            ticks: 0,
            downloading: false,
        }
    }

    /// The torrent's info hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The piece geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
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

    /// Bytes still missing.
    pub fn left(&self) -> u64 {
        self.geometry.total_length - self.verified_bytes
    }

    /// The largest frame a peer may send (size receive buffers by it, plus 4 bytes).
    pub fn max_frame_len(&self) -> usize {
        max_message_len(self.geometry.pieces as usize)
    }

    /// Whether the torrent takes peers now.
    fn is_live(&self) -> bool {
        matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        )
    }

    fn set_state(&mut self, state: TorrentState) {
        if self.state != state {
            self.state = state;
            self.actions.push_back(Action::State(state));
        }
    }

    /// The check of the data on disk finished: `have` holds the pieces that verified (as
    /// many bits as pieces). The torrent goes live and announces itself. Ignored unless
    /// checking.
    pub fn handle_checked(&mut self, now: Instant, have: &Bitfield) {
        if self.state != TorrentState::Checking {
            return;
        }
        for piece in have
            .iter_ones()
            .take_while(|&p| p < self.geometry.pieces as usize)
        {
            let piece = piece as u32;
            if !self.picker.have()[piece as usize] {
                self.picker.set_have(piece);
                self.verified_bytes += u64::from(self.geometry.piece_len(piece));
            }
        }
        self.downloading = !self.picker.is_complete();
        self.go_live(now);
    }

    /// The check of the data on disk failed: the torrent fails.
    pub fn handle_check_failed(&mut self, now: Instant, error: TorrentError) {
        self.fail(now, error);
    }

    fn go_live(&mut self, now: Instant) {
        let state = if self.picker.is_complete() {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        };
        self.set_state(state);
        self.actions.push_back(Action::Announce {
            event: Event::Started,
        });
        self.dial_more(now);
        self.arm(now);
    }

    /// Pauses: every connection closes, trackers are told we left. Ignored unless live.
    pub fn pause(&mut self, now: Instant) {
        if !self.is_live() {
            return;
        }
        self.drop_everyone(now, DisconnectReason::Paused);
        self.set_state(TorrentState::Paused);
        self.actions.push_back(Action::Announce {
            event: Event::Stopped,
        });
    }

    /// Resumes a paused torrent. Ignored unless paused.
    pub fn resume(&mut self, now: Instant) {
        if self.state == TorrentState::Paused {
            self.go_live(now);
        }
    }

    /// Stops for good: every connection closes and, if it was live, trackers are told.
    pub fn stop(&mut self, now: Instant) {
        let was_live = self.is_live();
        self.drop_everyone(now, DisconnectReason::Stopped);
        if !matches!(self.state, TorrentState::Failed) {
            self.set_state(TorrentState::Stopped);
        }
        if was_live {
            self.actions.push_back(Action::Announce {
                event: Event::Stopped,
            });
        }
    }

    /// A disk operation failed: the torrent cannot go on and moves to the failed state.
    pub fn handle_failed(&mut self, now: Instant, error: TorrentError) {
        self.fail(now, error);
    }

    fn fail(&mut self, now: Instant, error: TorrentError) {
        if self.state == TorrentState::Failed {
            return;
        }
        let was_live = self.is_live();
        self.error = Some(error);
        self.drop_everyone(now, DisconnectReason::TorrentFailed);
        self.set_state(TorrentState::Failed);
        if was_live {
            self.actions.push_back(Action::Announce {
                event: Event::Stopped,
            });
        }
    }

    fn drop_everyone(&mut self, now: Instant, reason: DisconnectReason) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.close(now, key, reason.clone(), Some(Duration::ZERO));
        }
        self.next_tick = None;
    }

    /// Addresses learned from `source`. Dials them (within the peer limit) while live.
    pub fn handle_peers(&mut self, now: Instant, source: PeerSource, addrs: &[SocketAddr]) {
        for &addr in addrs {
            if !self.is_us(addr) {
                self.book.add(now, source, addr);
            }
        }
        if self.is_live() {
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
        let refusal = if !self.is_live() {
            Some(match self.state {
                TorrentState::Checking => DisconnectReason::NotReady,
                TorrentState::Paused => DisconnectReason::Paused,
                TorrentState::Failed => DisconnectReason::TorrentFailed,
                _ => DisconnectReason::Stopped,
            })
        } else if self.bans.is_banned(addr, None) {
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
            peer.out
                .extend_from_slice(&Handshake::new(self.info_hash, self.config.peer_id).encode());
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
            let retry = if self.picker.is_complete() && p.is_seed() {
                None
            } else {
                Some(REDIAL_AFTER)
            };
            self.forget(now, peer, retry);
        }
    }

    /// Closes a connection on our side: forgets it and tells the caller.
    fn close(
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
    fn forget(
        &mut self,
        now: Instant,
        key: PeerKey,
        retry: Option<Duration>,
    ) -> Option<SocketAddr> {
        let peer = self.peers.remove(&key)?;
        if peer.is_live() {
            self.picker.peer_gone(&peer.bits);
        }
        self.picker.release_peer(key);
        self.book.disconnected(now, peer.addr, retry);
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
            if have.get(block.piece as usize).is_some_and(|b| *b) {
                out.push(block);
                taken += 1;
            }
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
        self.actions.pop_front()
    }

    /// When [`Engine::handle_timeout`] is due; `None` while there is nothing to time (no
    /// peers and nobody to dial: an idle torrent costs no wake-ups).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Starts the tick if the engine has something to time.
    fn arm(&mut self, now: Instant) {
        let busy = self.is_live()
            && (!self.peers.is_empty() || !self.dialing.is_empty() || self.book.has_candidates());
        if busy {
            self.next_tick.get_or_insert(now + TICK);
        } else if self.peers.is_empty() {
            self.next_tick = None;
        }
    }

    /// Whether `addr` is our own listening address.
    fn is_us(&self, addr: SocketAddr) -> bool {
        self.config.listen.is_some_and(|ours| {
            addr.port() == ours.port()
                && (addr.ip() == ours.ip() || ours.ip().is_unspecified() && addr.ip().is_loopback())
        })
    }

    /// Asks for connections to candidates within the peer limit.
    fn dial_more(&mut self, now: Instant) {
        if !self.is_live() {
            return;
        }
        while self.peers.len() + self.dialing.len() < self.config.max_peers {
            let bans = &self.bans;
            let listen = self.config.listen;
            let dialing = &self.dialing;
            let connected: HashSet<SocketAddr> = self.peers.values().map(|p| p.addr).collect();
            let skip = |a: SocketAddr| {
                bans.is_banned(a, None)
                    || dialing.contains(&a)
                    || connected.contains(&a)
                    || listen.is_some_and(|l| l == a)
            };
            let Some(addr) = self.book.next_to_dial(now, skip) else {
                break;
            };
            self.dialing.insert(addr);
            self.actions.push_back(Action::Dial { addr });
        }
    }

    /// Progress figures now.
    pub fn stats(&self) -> TorrentStats {
        let live = || self.peers.values().filter(|p| p.is_live());
        TorrentStats {
            pieces: self.picker.piece_count(),
            pieces_have: self.picker.have_count(),
            total_bytes: self.geometry.total_length,
            verified_bytes: self.verified_bytes,
            downloaded: self.counters.downloaded,
            uploaded: self.counters.uploaded,
            wasted: self.counters.wasted,
            hash_failures: self.counters.hash_failures,
            download_rate: live().map(|p| p.down.per_second()).sum(),
            upload_rate: live().map(|p| p.up.per_second()).sum(),
            peers: live().count(),
            seeds: live().filter(|p| p.bits.all()).count(),
            banned: self.bans.banned_count(),
            complete: self.picker.is_complete(),
        }
    }
}
