//! A torrent that starts from a magnet link: it exists, connects and announces before its
//! info dictionary is known, fetches that dictionary from peers (BEP 9, see `fetch/`), and
//! then becomes an ordinary torrent.
//!
//! While [`TorrentState::FetchingMetadata`], connections carry only what fetching needs:
//! the handshakes, extension messages (metadata and peer exchange) and keep-alives; piece
//! traffic is ignored (we have nothing and know no piece count to check indexes against).
//! Once the bytes hash to the info hash and parse as a valid info dictionary (the same
//! strict code as a .torrent file, path safety included), the engine takes its geometry,
//! closes the fetching connections (their addresses stay in the peer book, to be dialled
//! at once) and moves to [`TorrentState::Checking`] with [`Action::Metadata`]: the
//! session creates the storage, checks what is on disk and calls
//! [`Engine::handle_checked`] as for any torrent. The torrent's identity (info hash,
//! session id) never changes.

use super::fetch::{FetchError, MetadataFetch, Received, Request};
use super::peer::MAX_EARLY_HAVES;
use super::{Action, DisconnectReason, Engine, TorrentConfig, TorrentError, TorrentState};
use crate::core::{Geometry, InfoHash, PeerKey};
use crate::tracker::Event;
use crate::wire::metadata::{MetadataMessage, MAX_METADATA_SIZE, METADATA_PIECE};
use crate::wire::{max_message_len, Bitfield, Message, Rules};
use std::sync::Arc;
use std::time::Instant;

/// What a torrent reports as `left` to trackers before it knows its size: not zero (that
/// would make it a seed in the tracker's eyes).
pub const LEFT_UNKNOWN: u64 = METADATA_PIECE as u64;

impl Engine {
    /// A torrent known only by its info hash (a magnet link), fetching its metadata from
    /// the peers it is given or finds. It announces at once.
    pub fn new_magnet(now: Instant, info_hash: InfoHash, config: TorrentConfig) -> Engine {
        let mut engine = Engine::new(now, info_hash, Geometry::new(1, 0), Vec::new(), config);
        engine.fetch = Some(Box::new(MetadataFetch::new(info_hash)));
        engine.set_state(TorrentState::FetchingMetadata);
        engine.actions.push_back(Action::Announce {
            event: Event::Started,
        });
        engine
    }

    /// Whether the torrent is fetching its metadata now.
    pub(super) fn is_fetching(&self) -> bool {
        self.state == TorrentState::FetchingMetadata
    }

    /// Whether the metadata is still to be fetched (fetching, or paused while fetching).
    pub(super) fn lacks_metadata(&self) -> bool {
        self.fetch.as_ref().is_some_and(|f| !f.is_done())
    }

    /// Bytes of metadata received and the size being fetched (0, 0 when not fetching).
    pub fn metadata_progress(&self) -> (u64, u64) {
        match &self.fetch {
            Some(f) if !f.is_done() => f.progress(),
            _ => (0, 0),
        }
    }

    /// The largest frame while fetching: the bitfield of the largest torrent whose info
    /// dictionary we would fetch (20 bytes per piece), or a metadata piece.
    pub(super) fn fetch_frame_len() -> usize {
        max_message_len((MAX_METADATA_SIZE / 20) as usize)
    }

    /// A message while fetching: extension messages are handled, what the peer has is
    /// kept for later, choke and interest are noted, a request gets a reject from a fast
    /// peer (we have nothing to serve); the rest waits for the data phase.
    pub(super) fn on_fetch_message(&mut self, now: Instant, key: PeerKey, message: &Message) {
        if let Message::Extended { id, payload } = *message {
            self.on_extended(now, key, id, payload);
            return;
        }
        if let Message::Port(port) = *message {
            self.on_dht_port(key, port);
            return;
        }
        if let Message::Request { piece, offset, len } = *message {
            self.refuse_request(now, key, crate::picker::Block { piece, offset, len });
            return;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let early = peer.early.get_or_insert_with(Default::default);
        match *message {
            Message::Bitfield(raw) => {
                early.bitfield = Some(raw.to_vec());
                early.all = false;
                early.haves.clear();
            }
            Message::HaveAll => early.all = true,
            Message::HaveNone => {
                early.bitfield = None;
                early.all = false;
                early.haves.clear();
            }
            Message::Have(piece) if early.haves.len() < MAX_EARLY_HAVES => early.haves.push(piece),
            Message::Choke => peer.peer_choking = true,
            Message::Unchoke => peer.peer_choking = false,
            Message::Interested => peer.peer_interested = true,
            Message::NotInterested => peer.peer_interested = false,
            _ => {}
        }
    }

    /// The metadata arrived: each connection's checks take the torrent's shape, and what
    /// it said it has while we fetched is applied (a peer whose bitfield or haves do not
    /// fit the torrent is closed).
    fn adopt_connections(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        let pieces = self.geometry.pieces as usize;
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let mut rules = Rules::new(self.geometry.piece_length, self.geometry.total_length);
            rules.set_fast(peer.fast);
            peer.rules = rules;
            peer.bits = Bitfield::repeat(false, pieces);
            let early = peer.early.take().map(|e| *e).unwrap_or_default();
            if !peer.is_live() {
                continue;
            }
            let mut bits = match &early.bitfield {
                Some(raw) => match peer.rules.bitfield(raw) {
                    Ok(bits) => bits,
                    Err(v) => {
                        self.close(now, key, DisconnectReason::Violation(v), None);
                        continue;
                    }
                },
                None => Bitfield::repeat(false, pieces),
            };
            if early.all {
                bits.fill(true);
            }
            let rules = &mut peer.rules;
            if let Some(v) = early
                .haves
                .iter()
                .find_map(|&p| rules.check(&Message::Have(p)).err())
            {
                self.close(now, key, DisconnectReason::Violation(v), None);
                continue;
            }
            for p in early.haves {
                bits.set(p as usize, true);
            }
            self.set_peer_bits(now, key, bits);
        }
    }

    /// The peer's extension handshake offered metadata (or not): tell the fetch.
    pub(super) fn fetch_offer(
        &mut self,
        now: Instant,
        key: PeerKey,
        id: Option<u8>,
        size: Option<u64>,
    ) {
        let (Some(fetch), Some(id), Some(size)) = (self.fetch.as_mut(), id, size) else {
            return;
        };
        if fetch.is_done() {
            return;
        }
        match fetch.offer(key, id, size) {
            Ok(()) => {
                if let Some(p) = self.peers.get(&key) {
                    tracing::debug!("{}: offers metadata of {size} bytes", p.addr);
                }
                self.request_metadata(now)
            }
            Err(e) => self.refuse_metadata(now, key, "refusing its metadata", &e),
        }
    }

    /// A `ut_metadata` data or reject message from `key` while fetching.
    pub(super) fn on_metadata_reply(
        &mut self,
        now: Instant,
        key: PeerKey,
        message: MetadataMessage<'_>,
    ) {
        let Some(fetch) = self.fetch.as_mut().filter(|f| !f.is_done()) else {
            return;
        };
        let received = match message {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => fetch.on_data(key, piece, total_size, data),
            MetadataMessage::Reject { piece } => {
                fetch.on_reject(now, key, piece);
                Ok(Received::Pending)
            }
            MetadataMessage::Request { .. } => return,
        };
        match received {
            Ok(Received::Pending) => self.request_metadata(now),
            Ok(Received::Complete(bytes)) => self.metadata_complete(now, bytes),
            Ok(Received::HashFailed { proven }) => {
                if let Some(bad) = proven {
                    if let Some(p) = self.peers.get(&bad) {
                        tracing::warn!(
                            "{}: banned: its metadata does not hash to {}",
                            p.addr,
                            self.info_hash
                        );
                        self.bans.ban(p.ban_key);
                    }
                    self.close(now, bad, DisconnectReason::SentBadData, None);
                }
                self.request_metadata(now);
            }
            Err(e) => self.refuse_metadata(now, key, "bad metadata piece", &e),
        }
    }

    /// A peer's metadata offer or piece broke the rules: say why in the log, close it.
    fn refuse_metadata(&mut self, now: Instant, key: PeerKey, what: &str, why: &FetchError) {
        if let Some(p) = self.peers.get(&key) {
            tracing::info!("{}: {what}: {why}", p.addr);
        }
        self.close(
            now,
            key,
            DisconnectReason::BadExtension(why.to_string()),
            None,
        );
    }

    /// Sends the metadata requests the fetch wants now.
    pub(super) fn request_metadata(&mut self, now: Instant) {
        let Some(fetch) = self.fetch.as_mut() else {
            return;
        };
        let mut requests: Vec<Request> = Vec::new();
        fetch.requests(now, &mut requests);
        let mut payload = Vec::new();
        for r in requests {
            let Some(peer) = self.peers.get_mut(&r.peer) else {
                continue;
            };
            payload.clear();
            MetadataMessage::Request { piece: r.piece }.encode(&mut payload);
            peer.send(
                &mut self.dirty,
                Message::Extended {
                    id: r.id,
                    payload: &payload,
                },
            );
        }
    }

    /// The once-a-second part of fetching: timed-out requests go to others.
    pub(super) fn fetch_tick(&mut self, now: Instant) {
        if let Some(fetch) = self.fetch.as_mut() {
            fetch.on_tick(now);
        }
        self.request_metadata(now);
    }

    /// The metadata hashed right: parse it, take the torrent's shape, close the fetching
    /// connections and hand over to the session (state checking).
    fn metadata_complete(&mut self, now: Instant, bytes: Vec<u8>) {
        let meta = match crate::metainfo::Metainfo::from_info_bytes(&bytes, Vec::new()) {
            Ok(meta) => meta,
            Err(e) => {
                // It hashes to the info hash: the torrent itself is invalid (for example
                // a path that leaves the download folder). Nothing to retry.
                tracing::error!("{}: the metadata is invalid: {e}", self.info_hash);
                self.fail(
                    now,
                    TorrentError::Metadata {
                        message: e.to_string(),
                    },
                );
                return;
            }
        };
        let info = &meta.info;
        tracing::info!(
            "{}: metadata received ({} bytes, {} pieces)",
            self.info_hash,
            bytes.len(),
            info.piece_count()
        );
        let bytes: Arc<[u8]> = bytes.into();
        self.config.private = info.private;
        self.config.metadata = (!info.private).then(|| bytes.clone());
        self.set_state(TorrentState::Checking);
        self.take_shape(&meta.info);
        self.adopt_connections(now);
        self.actions.push_back(Action::Metadata {
            meta: Box::new(meta),
        });
    }

    /// The check after the metadata found what the disk holds: the connections kept from
    /// fetching hear of it (haves: they saw have-none or nothing), and requests start.
    pub(super) fn adopted_go_live(&mut self, now: Instant) {
        if self.peers.is_empty() {
            return;
        }
        let had: Vec<u32> = self.picker.have().iter_ones().map(|p| p as u32).collect();
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in &keys {
            if let Some(peer) = self.peers.get_mut(key) {
                if peer.is_live() {
                    for &p in &had {
                        peer.send(&mut self.dirty, Message::Have(p));
                    }
                }
            }
            self.update_interest(*key);
        }
        self.rechoke(now);
        self.refill_all(now);
    }

    /// Pauses while fetching: connections close, the fetch resumes with [`Engine::resume`].
    pub(super) fn pause_fetch(&mut self, now: Instant) {
        self.set_state(TorrentState::Paused);
        self.drop_everyone(now, DisconnectReason::Paused);
        self.actions.push_back(Action::Announce {
            event: Event::Stopped,
        });
    }

    /// Resumes fetching after a pause.
    pub(super) fn resume_fetch(&mut self, now: Instant) {
        self.set_state(TorrentState::FetchingMetadata);
        self.actions.push_back(Action::Announce {
            event: Event::Started,
        });
        self.book.retry_all_now(now);
        self.dial_more(now);
        self.arm(now);
    }
}
