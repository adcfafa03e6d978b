//! One torrent's shared state and the rules that change it.
//!
//! Everything that several connections touch (picker, choker, bans, peers' protocol
//! state, partial pieces) lives in one [`State`] behind one mutex, held briefly and never
//! across an `.await`. Connection tasks call in here with the lock held; the functions here
//! never block on I/O. Data is hashed and written by [`Torrent::verify_piece`] on a blocking
//! thread, and a piece is marked, announced and served only after its SHA-1 matched.

use super::limit::Limiter;
use super::SessionConfig;
use crate::metainfo::InfoHash;
use crate::picker::{Block, Choker, ChokerPeer, PeerKey, Picker, Received};
use crate::storage::{AlignedBuf, Storage};
use crate::torrent::{BanKey, Bans, Rate};
use crate::wire::{Bitfield, Message, BLOCK_LEN};
use sha1::{Digest, Sha1};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// Requests a peer may queue with us before further ones are dropped.
pub const MAX_QUEUED_SERVES: usize = 512;
/// Blocks kept in flight to a peer: at least this many...
const MIN_QUEUE: usize = 32;
/// ...at most this many (4 MiB)...
const MAX_QUEUE: usize = 256;
/// ...and otherwise enough for this much time at the peer's current rate.
const QUEUE_TIME: f64 = 1.0;
/// Unsent bytes of messages queued for one peer past which it is dropped.
const MAX_UNSENT_BYTES: usize = 1 << 20;
/// Memory for pieces being received or waiting for their hash check (at least 4 pieces).
const PARTIAL_BYTES: u64 = 8 << 20;

/// Bytes and blocks waiting to be sent to one peer.
#[derive(Default)]
pub struct OutQueue {
    /// Encoded messages, in order.
    pub bytes: Vec<u8>,
    /// Blocks the peer asked for, served in order.
    pub serves: VecDeque<Block>,
}

/// The send side of one connection: the writer task drains it.
pub struct Outbox {
    pub queue: Mutex<OutQueue>,
    pub notify: Notify,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox {
            queue: Mutex::new(OutQueue::default()),
            notify: Notify::new(),
        }
    }

    /// Queues a message and wakes the writer.
    pub fn send(&self, message: Message) {
        message.encode(&mut lock(&self.queue).bytes);
        self.notify.notify_one();
    }
}

/// Locks a mutex, ignoring poisoning (state stays consistent: no code here panics while
/// holding a lock on purpose, and a crashed task must not take the session down).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What we know about one connected peer.
pub struct PeerEntry {
    pub addr: SocketAddr,
    pub id: [u8; 20],
    pub ban_key: BanKey,
    pub out: Arc<Outbox>,
    pub cancel: CancellationToken,
    pub bits: Bitfield,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// Requests went unanswered too long: its blocks went to others.
    pub snubbed: bool,
    pub connected_at: Instant,
    pub last_received: Instant,
    /// When a block last arrived, or when requests were first sent after none were pending.
    pub last_progress: Instant,
    pub down: Rate,
    pub up: Rate,
}

/// A piece being received: its bytes and who sent each block.
struct PieceBuf {
    data: AlignedBuf,
    senders: Vec<BanKey>,
}

/// A piece with every block received, on its way to the hash check.
pub struct Completed {
    pub piece: u32,
    pub data: AlignedBuf,
    senders: Vec<BanKey>,
}

/// The mutable state shared by a torrent's connections.
pub struct State {
    pub picker: Picker,
    pub peers: HashMap<PeerKey, PeerEntry>,
    pub choker: Choker,
    pub bans: Bans,
    /// Outgoing connection attempts in progress.
    pub connecting: HashSet<SocketAddr>,
    next_key: u64,
    partial: HashMap<u32, PieceBuf>,
    pool: Vec<AlignedBuf>,
    /// Bytes of verified pieces.
    pub verified_bytes: u64,
}

/// Counters readable without the lock.
#[derive(Default)]
pub struct Counters {
    /// Piece payload bytes received (good, duplicate or bad).
    pub downloaded: AtomicU64,
    /// Piece payload bytes sent.
    pub uploaded: AtomicU64,
    /// Bytes received that were not needed or failed the hash check.
    pub wasted: AtomicU64,
    pub hash_failures: AtomicU64,
}

/// A torrent in a session: fixed facts, shared state, signals.
pub struct Torrent {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub hashes: Vec<[u8; 20]>,
    pub piece_length: u64,
    pub total_length: u64,
    pub storage: Storage,
    pub config: SessionConfig,
    pub state: Mutex<State>,
    pub counters: Counters,
    pub started: Instant,
    /// Becomes true when every piece is verified.
    pub complete: watch::Sender<bool>,
    /// Cancelled to shut everything down; peer tokens are its children.
    pub shutdown: CancellationToken,
    /// Set when the session cannot go on (a disk write failed).
    pub fatal: Mutex<Option<String>>,
    /// Paces uploads when the user set a limit.
    pub upload_limit: Option<Limiter>,
    /// Completed pieces on their way to the hashing thread (None once shut down).
    hash_queue: Mutex<Option<mpsc::Sender<Completed>>>,
}

impl Torrent {
    pub fn new(
        info_hash: InfoHash,
        hashes: Vec<[u8; 20]>,
        storage: Storage,
        have: &Bitfield,
        config: SessionConfig,
    ) -> Arc<Torrent> {
        let layout = storage.layout();
        let (piece_length, total_length) = (layout.piece_length, layout.total_length);
        let mut picker = Picker::new(piece_length as u32, total_length);
        let mut verified_bytes = 0;
        for piece in have.iter_ones() {
            picker.set_have(piece as u32);
            verified_bytes += u64::from(picker.piece_len(piece as u32));
        }
        let complete = picker.is_complete();
        // Partial pieces are held in memory until verified: keep them within about
        // PARTIAL_BYTES (a piece buffer is reused, never freed, while the session runs).
        picker.set_max_partial((PARTIAL_BYTES / piece_length.max(1)).clamp(4, 256) as usize);
        let seed = fastrand::u64(..);
        let (hash_tx, hash_rx) = mpsc::channel::<Completed>();
        let torrent = Arc::new(Torrent {
            info_hash,
            peer_id: config.peer_id,
            hashes,
            piece_length,
            total_length,
            storage,
            state: Mutex::new(State {
                picker,
                peers: HashMap::new(),
                choker: Choker::new(config.upload_slots, seed),
                bans: Bans::default(),
                connecting: HashSet::new(),
                next_key: 0,
                partial: HashMap::new(),
                pool: Vec::new(),
                verified_bytes,
            }),
            counters: Counters::default(),
            started: Instant::now(),
            complete: watch::Sender::new(complete),
            shutdown: CancellationToken::new(),
            fatal: Mutex::new(None),
            upload_limit: config.upload_limit.map(Limiter::new),
            config,
            hash_queue: Mutex::new(Some(hash_tx)),
        });
        // One hashing thread per torrent: SHA-1 runs at about 2 GB/s per core, faster than
        // one connection delivers, and the network keeps the other cores busy.
        let t = torrent.clone();
        std::thread::Builder::new()
            .name("hasher".into())
            .spawn(move || {
                for piece in hash_rx {
                    match t.verify_piece(&piece) {
                        Ok(good) => t.piece_checked(piece, good),
                        Err(e) => t.fail(format!("cannot save piece {}: {e}", piece.piece)),
                    }
                }
            })
            .expect("cannot start the hashing thread");
        torrent
    }

    /// Hands a completed piece to the hashing thread.
    pub fn queue_for_hashing(&self, piece: Completed) {
        if let Some(tx) = lock(&self.hash_queue).as_ref() {
            let _ = tx.send(piece);
        }
    }

    /// Stops the hashing thread once the pieces queued so far are done.
    pub fn stop_hashing(&self) {
        lock(&self.hash_queue).take();
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Registers a connected peer after its handshake, or says why it is refused.
    pub fn add_peer(
        &self,
        addr: SocketAddr,
        id: [u8; 20],
        out: Arc<Outbox>,
        cancel: CancellationToken,
    ) -> Result<PeerKey, &'static str> {
        let mut st = self.lock();
        if st.bans.is_banned(addr, Some(&id)) {
            return Err("banned");
        }
        if st.peers.values().any(|p| p.id == id) {
            return Err("already connected to this peer id");
        }
        if st.peers.len() >= self.config.max_peers {
            return Err("connection limit reached");
        }
        let key = PeerKey(st.next_key);
        st.next_key += 1;
        let now = Instant::now();
        if st.picker.have_count() > 0 {
            let bits: Bitfield = st.picker.have().to_bitvec();
            out.send(Message::Bitfield(bits.as_raw_slice()));
        }
        let pieces = st.picker.piece_count();
        st.peers.insert(
            key,
            PeerEntry {
                addr,
                id,
                ban_key: BanKey::of(addr),
                out,
                cancel,
                bits: Bitfield::repeat(false, pieces),
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                snubbed: false,
                connected_at: now,
                last_received: now,
                last_progress: now,
                down: Rate::default(),
                up: Rate::default(),
            },
        );
        Ok(key)
    }

    /// Forgets a peer whose connection ended: its pieces no longer count as available and
    /// its outstanding requests go back to the picker.
    pub fn remove_peer(&self, key: PeerKey) {
        let mut st = self.lock();
        let Some(peer) = st.peers.remove(&key) else {
            return;
        };
        peer.cancel.cancel();
        st.picker.peer_gone(&peer.bits);
        st.picker.release_peer(key);
        if !peer.am_choking {
            self.rechoke(&mut st);
        }
        self.refill_all(&mut st);
    }

    /// Applies one checked message from peer `key`. Pieces completed by it are pushed to
    /// `done` for [`Torrent::verify_piece`]. `bitfield` is the already validated form of a
    /// bitfield message.
    pub fn on_message(
        &self,
        st: &mut State,
        key: PeerKey,
        message: &Message,
        bitfield: Option<Bitfield>,
        done: &mut Vec<Completed>,
    ) {
        let State {
            picker,
            peers,
            partial,
            pool,
            ..
        } = st;
        let Some(peer) = peers.get_mut(&key) else {
            return;
        };
        peer.last_received = Instant::now();
        match *message {
            Message::Choke => {
                if !peer.peer_choking {
                    peer.peer_choking = true;
                    picker.release_peer(key);
                }
            }
            Message::Unchoke => peer.peer_choking = false,
            Message::Interested => {
                peer.peer_interested = true;
                let unchoked = peers.values().filter(|p| !p.am_choking).count();
                if unchoked <= self.config.upload_slots {
                    // A free slot: no need to wait for the next round.
                    self.rechoke(st);
                }
            }
            Message::NotInterested => peer.peer_interested = false,
            Message::Have(piece) => {
                // Repeats change nothing; a new piece can only make us interested.
                if !peer.bits.replace(piece as usize, true) {
                    picker.peer_have(piece);
                    let lacking = !picker.have().get(piece as usize).is_some_and(|b| *b);
                    if lacking && !peer.am_interested {
                        peer.am_interested = true;
                        peer.out.send(Message::Interested);
                    }
                }
            }
            Message::Bitfield(_) => {
                if let Some(bits) = bitfield {
                    // A later bitfield (aria2 sends them) replaces what we knew.
                    picker.peer_gone(&peer.bits);
                    picker.peer_bitfield(&bits);
                    peer.bits = bits;
                    self.update_interest(picker, peer);
                }
            }
            Message::Request { piece, offset, len } => {
                let ok = !peer.am_choking && picker.have().get(piece as usize).is_some_and(|b| *b);
                let mut q = lock(&peer.out.queue);
                if ok && q.serves.len() < MAX_QUEUED_SERVES {
                    q.serves.push_back(Block { piece, offset, len });
                    drop(q);
                    peer.out.notify.notify_one();
                }
            }
            Message::Cancel { piece, offset, len } => {
                let block = Block { piece, offset, len };
                lock(&peer.out.queue).serves.retain(|b| *b != block);
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                let len = data.len() as u32;
                self.counters
                    .downloaded
                    .fetch_add(u64::from(len), Ordering::Relaxed);
                let block = Block { piece, offset, len };
                match picker.block_received(key, block) {
                    Received::New {
                        piece_complete,
                        cancel,
                    } => {
                        // Only data we needed counts as progress and as rate (junk must
                        // neither hold off the snub timer nor win an unchoke slot).
                        peer.last_progress = Instant::now();
                        peer.snubbed = false;
                        peer.down.add(u64::from(len));
                        let piece_len = picker.piece_len(piece) as usize;
                        let blocks = picker.block_count(piece) as usize;
                        let sender = peer.ban_key;
                        let buf = partial.entry(piece).or_insert_with(|| {
                            let mut data = pool.pop().unwrap_or_default();
                            data.resize(piece_len);
                            PieceBuf {
                                data,
                                senders: vec![sender; blocks],
                            }
                        });
                        let start = offset as usize;
                        buf.data[start..start + data.len()].copy_from_slice(data);
                        buf.senders[start / BLOCK_LEN as usize] = sender;
                        for other in cancel {
                            if let Some(p) = peers.get(&other) {
                                p.out.send(Message::Cancel { piece, offset, len });
                            }
                        }
                        if piece_complete {
                            if let Some(buf) = partial.remove(&piece) {
                                done.push(Completed {
                                    piece,
                                    data: buf.data,
                                    senders: buf.senders,
                                });
                            }
                        }
                    }
                    Received::Duplicate | Received::Unrequested => {
                        self.counters
                            .wasted
                            .fetch_add(u64::from(len), Ordering::Relaxed);
                    }
                }
            }
            Message::KeepAlive | Message::Port(_) | Message::Unknown { .. } => {}
        }
    }

    /// Sends `interested` when the peer has something we lack, `not interested` when it
    /// no longer does.
    fn update_interest(&self, picker: &Picker, peer: &mut PeerEntry) {
        let wants = picker.wants_any(&peer.bits);
        if wants != peer.am_interested {
            peer.am_interested = wants;
            peer.out.send(if wants {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
    }

    /// Tops up the requests in flight to every peer (after blocks became pickable again).
    fn refill_all(&self, st: &mut State) {
        let keys: Vec<PeerKey> = st.peers.keys().copied().collect();
        for k in keys {
            self.refill(st, k);
        }
    }

    /// Tops up the requests in flight to peer `key`, if it has us unchoked.
    pub fn refill(&self, st: &mut State, key: PeerKey) {
        let State {
            picker,
            peers,
            bans,
            ..
        } = st;
        let Some(peer) = peers.get(&key) else {
            return;
        };
        if peer.peer_choking || !peer.am_interested || peer.snubbed {
            return;
        }
        let depth = ((peer.down.per_second() * QUEUE_TIME) as usize / BLOCK_LEN as usize)
            .clamp(MIN_QUEUE, MAX_QUEUE);
        let pending = picker.requested_from(key);
        if pending >= depth {
            return;
        }
        // Spare the seeds: from a seed, ask only for pieces no other peer that unchoked us
        // holds, unless those peers cannot keep us busy. A seed's upload then spreads new
        // pieces into the swarm instead of repeating what the leechers can trade.
        let mut spared = None;
        if peer.bits.all() {
            let mut elsewhere: Option<Bitfield> = None;
            let mut busy = 0;
            for (k, p) in peers.iter() {
                if *k != key && !p.peer_choking && !p.bits.all() {
                    busy += picker.requested_from(*k);
                    match elsewhere.as_mut() {
                        Some(bits) => *bits |= &p.bits,
                        None => elsewhere = Some(p.bits.clone()),
                    }
                }
            }
            if let Some(others) = elsewhere.filter(|_| busy >= MIN_QUEUE) {
                let only_seeds = !others & &peer.bits;
                if picker.wants_any(&only_seeds) {
                    spared = Some(only_seeds);
                } else if !picker.in_endgame() {
                    // Other peers have what we need and keep us busy: leave the seed alone.
                    return;
                }
            }
        }
        let peer = peers.get_mut(&key).expect("looked up above");
        let has: &Bitfield = spared.as_ref().unwrap_or(&peer.bits);
        let mut blocks = Vec::new();
        if bans.on_parole(peer.ban_key) {
            // Whole pieces only, so a bad one is attributable to this peer alone.
            if pending == 0 {
                picker.pick_whole(key, has, &mut blocks);
            }
        } else {
            picker.pick(key, has, depth - pending, &mut blocks);
        }
        if blocks.is_empty() {
            return;
        }
        if pending == 0 {
            peer.last_progress = Instant::now();
        }
        let mut q = lock(&peer.out.queue);
        if q.bytes.len() > MAX_UNSENT_BYTES {
            // It does not read what we send (yet keeps talking): drop it.
            drop(q);
            for b in blocks {
                picker.release(key, b);
            }
            tracing::debug!("{}: not reading, disconnecting", peer.addr);
            peer.cancel.cancel();
            return;
        }
        for b in &blocks {
            Message::Request {
                piece: b.piece,
                offset: b.offset,
                len: b.len,
            }
            .encode(&mut q.bytes);
        }
        drop(q);
        peer.out.notify.notify_one();
    }

    /// Hashes a completed piece and writes it if good (blocking: call on a blocking thread).
    /// Returns whether it verified; the data is handed back for [`Torrent::piece_checked`].
    pub fn verify_piece(&self, piece: &Completed) -> Result<bool, String> {
        let good = self
            .hashes
            .get(piece.piece as usize)
            .is_some_and(|h| Sha1::digest(&piece.data[..])[..] == h[..]);
        if good {
            let offset = u64::from(piece.piece) * self.piece_length;
            self.storage
                .write(offset, &piece.data)
                .map_err(|e| e.to_string())?;
        }
        Ok(good)
    }

    /// Records a hash check's result: marks and announces a good piece, or returns a bad
    /// one to the picker and applies strikes and bans.
    pub fn piece_checked(&self, piece: Completed, good: bool) {
        let mut st = self.lock();
        let len = piece.data.len() as u64;
        let banned = if good {
            st.picker.piece_verified(piece.piece);
            st.verified_bytes += len;
            st.bans
                .piece_verified(piece.piece, &piece.data, BLOCK_LEN as usize)
        } else {
            tracing::warn!("piece {} failed its hash check", piece.piece);
            self.counters.hash_failures.fetch_add(1, Ordering::Relaxed);
            self.counters.wasted.fetch_add(len, Ordering::Relaxed);
            st.picker.piece_failed(piece.piece);
            st.bans
                .piece_failed(piece.piece, &piece.data, BLOCK_LEN as usize, &piece.senders)
        };
        st.pool.push(piece.data);
        let complete = st.picker.is_complete();
        let State { picker, peers, .. } = &mut *st;
        for peer in peers.values_mut() {
            if banned.contains(&peer.ban_key) {
                tracing::warn!(
                    "banning {}: it sent data that failed the hash check",
                    peer.addr
                );
                peer.cancel.cancel();
                continue;
            }
            if good {
                if !peer.bits[piece.piece as usize] {
                    peer.out.send(Message::Have(piece.piece));
                }
                if peer.am_interested {
                    self.update_interest(picker, peer);
                }
                if complete && peer.bits.all() {
                    // Two seeds have nothing to say to each other.
                    peer.cancel.cancel();
                }
            }
        }
        for key in banned {
            let ids: Vec<[u8; 20]> = st
                .peers
                .values()
                .filter(|p| p.ban_key == key)
                .map(|p| p.id)
                .collect();
            for id in ids {
                st.bans.ban(key, Some(id));
            }
        }
        if complete && good {
            self.complete.send_replace(true);
            tracing::info!("download complete");
        }
        self.refill_all(&mut st);
    }

    /// Runs the choker now and sends the resulting choke and unchoke messages.
    pub fn rechoke(&self, st: &mut State) {
        let now = self.started.elapsed();
        let seeding = st.picker.is_complete();
        let candidates: Vec<ChokerPeer> = st
            .peers
            .iter()
            .map(|(key, p)| ChokerPeer {
                key: *key,
                interested: p.peer_interested,
                download_rate: p.down.per_second() as u64,
                upload_rate: p.up.per_second() as u64,
                snubbed: p.snubbed,
                connected_at: p.connected_at.saturating_duration_since(self.started),
                unchoked: !p.am_choking,
            })
            .collect();
        let unchoke = st.choker.decide(now, seeding, &candidates);
        for (key, peer) in st.peers.iter_mut() {
            let should = unchoke.contains(key);
            if should && peer.am_choking {
                peer.am_choking = false;
                peer.out.send(Message::Unchoke);
            } else if !should && !peer.am_choking {
                peer.am_choking = true;
                lock(&peer.out.queue).serves.clear();
                peer.out.send(Message::Choke);
            }
        }
    }

    /// Once a second: rates, snubbed peers, idle peers; every tenth call, the choker.
    pub fn tick(&self, round: u64) {
        let mut st = self.lock();
        let now = Instant::now();
        let mut snubbed = Vec::new();
        for (key, peer) in st.peers.iter_mut() {
            peer.down.tick();
            peer.up.tick();
            if now.duration_since(peer.last_received) > super::IDLE_TIMEOUT {
                tracing::debug!("{}: idle for too long", peer.addr);
                peer.cancel.cancel();
            }
            if !peer.snubbed && now.duration_since(peer.last_progress) > super::REQUEST_TIMEOUT {
                snubbed.push(*key);
            }
        }
        for key in snubbed {
            if st.picker.requested_from(key) == 0 {
                continue;
            }
            let released = st.picker.release_peer(key);
            if let Some(peer) = st.peers.get_mut(&key) {
                tracing::debug!("{}: snubbed us, re-requesting its blocks", peer.addr);
                peer.snubbed = true;
                for b in released {
                    peer.out.send(Message::Cancel {
                        piece: b.piece,
                        offset: b.offset,
                        len: b.len,
                    });
                }
            }
        }
        if round % 10 == 0 {
            self.rechoke(&mut st);
        }
        self.refill_all(&mut st);
    }

    /// Counts `bytes` sent to peer `key`.
    pub fn uploaded(&self, key: PeerKey, bytes: u64) {
        self.counters.uploaded.fetch_add(bytes, Ordering::Relaxed);
        if let Some(p) = self.lock().peers.get_mut(&key) {
            p.up.add(bytes);
        }
    }

    /// Records that the session cannot go on, and stops it.
    pub fn fail(&self, reason: String) {
        tracing::error!("{reason}");
        lock(&self.fatal).get_or_insert(reason);
        self.shutdown.cancel();
    }

    /// Bytes still missing.
    pub fn left(&self) -> u64 {
        self.total_length - self.lock().verified_bytes
    }
}
