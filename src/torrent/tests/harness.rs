//! A swarm of engines wired through in-memory pipes under a fake clock, and scripted peers
//! that speak raw wire messages to one engine. After every step the harness checks the
//! invariants: each piece in exactly one state, nothing marked had without the right bytes
//! on "disk", nothing served that was not verified.

use super::super::*;
use crate::core::{Geometry, InfoHash, PeerKey, BLOCK_LEN};
use crate::picker::Block;
use crate::wire::{decode, piece_header, Handshake, Message, HANDSHAKE_LEN};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const HASH: InfoHash = InfoHash([0x42; 20]);

/// Reproducible incompressible bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

pub fn hashes(bytes: &[u8], piece_length: usize) -> Vec<[u8; 20]> {
    bytes
        .chunks(piece_length)
        .map(|c| Sha1::digest(c).into())
        .collect()
}

pub fn addr(n: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n as u8], 6881))
}

/// Whether a piece's bytes hash to `expected` (what the session's verify pool decides).
/// What the session's pool reports for [`Action::HashOnDisk`] over `disk`.
pub fn hash_on_disk(
    disk: &[u8],
    geometry: Geometry,
    piece: u32,
    expected: &[u8; 20],
    block_hashes: bool,
) -> DiskHash {
    let at = geometry.piece_offset(piece) as usize;
    let data = &disk[at..at + geometry.piece_len(piece) as usize];
    let good = verifies(data, expected);
    let blocks = || {
        data.chunks(BLOCK_LEN as usize)
            .map(|b| Sha1::digest(b).into())
            .collect()
    };
    match (good, block_hashes) {
        (true, false) => DiskHash::Good(Vec::new()),
        (true, true) => DiskHash::Good(blocks()),
        (false, _) => DiskHash::Bad(blocks()),
    }
}

/// Carries out an [`Action::Write`] on `disk` (none if empty) and reports it done.
pub fn write_block(
    engine: &mut Engine,
    disk: &mut [u8],
    now: Instant,
    piece: u32,
    offset: u32,
    data: Vec<u8>,
) {
    if !disk.is_empty() {
        let at = (engine.geometry().piece_offset(piece) + u64::from(offset)) as usize;
        disk[at..at + data.len()].copy_from_slice(&data);
    }
    engine.handle_written(now, piece, data, Ok(()));
}

fn verifies(data: &[u8], expected: &[u8; 20]) -> bool {
    Sha1::digest(data)[..] == expected[..]
}

/// A wire message as seen by a test (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Handshake,
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request(Block),
    Piece(Block),
    Cancel(Block),
    /// An extension message: extended id and payload.
    Extended(u8, Vec<u8>),
    HaveAll,
    HaveNone,
    Reject(Block),
    Suggest(u32),
    AllowedFast(u32),
    /// A DHT port (BEP 5).
    Port(u16),
    Other,
}

/// Decodes everything in `bytes` (a handshake first if `handshake`).
pub fn parse(mut bytes: &[u8], handshake: &mut bool) -> Vec<Got> {
    let mut out = Vec::new();
    if *handshake && bytes.len() >= HANDSHAKE_LEN {
        *handshake = false;
        out.push(Got::Handshake);
        bytes = &bytes[HANDSHAKE_LEN..];
    }
    while let Ok(Some((m, n))) = decode(bytes, 1 << 20) {
        out.push(match m {
            Message::KeepAlive => Got::KeepAlive,
            Message::Choke => Got::Choke,
            Message::Unchoke => Got::Unchoke,
            Message::Extended { id, payload } => Got::Extended(id, payload.to_vec()),
            Message::Interested => Got::Interested,
            Message::NotInterested => Got::NotInterested,
            Message::Have(p) => Got::Have(p),
            Message::Bitfield(b) => Got::Bitfield(b.to_vec()),
            Message::Request { piece, offset, len } => Got::Request(Block { piece, offset, len }),
            Message::Piece {
                piece,
                offset,
                data,
            } => Got::Piece(Block {
                piece,
                offset,
                len: data.len() as u32,
            }),
            Message::Cancel { piece, offset, len } => Got::Cancel(Block { piece, offset, len }),
            Message::HaveAll => Got::HaveAll,
            Message::HaveNone => Got::HaveNone,
            Message::Reject { piece, offset, len } => Got::Reject(Block { piece, offset, len }),
            Message::Suggest(p) => Got::Suggest(p),
            Message::AllowedFast(p) => Got::AllowedFast(p),
            Message::Port(p) => Got::Port(p),
            _ => Got::Other,
        });
        bytes = &bytes[n..];
    }
    out
}

/// One engine and its "disk".
pub struct Node {
    pub engine: Engine,
    pub addr: SocketAddr,
    pub disk: Vec<u8>,
    pub announces: Vec<Event>,
    pub completed: usize,
    pub closes: Vec<(SocketAddr, DisconnectReason)>,
    /// Pieces whose bytes were checked against the hashes after being marked had.
    checked: Vec<bool>,
}

/// A swarm of engines; see the module documentation.
pub struct Swarm {
    pub now: Instant,
    pub nodes: Vec<Node>,
    pub geometry: Geometry,
    pub hashes: Vec<[u8; 20]>,
    pub original: Vec<u8>,
    /// (node, key) -> (node, key) at the other end.
    links: HashMap<(usize, PeerKey), (usize, PeerKey)>,
    /// Bytes in flight to (node, key).
    inbox: BTreeMap<(usize, PeerKey), Vec<u8>>,
    /// Bytes (node, key) received and has not used yet (a partial frame).
    rx: HashMap<(usize, PeerKey), Vec<u8>>,
    /// Connections with serves to take.
    serving: Vec<(usize, PeerKey)>,
    /// Hash results to report: (node, piece, data, good).
    verified: Vec<(usize, u32, crate::storage::AlignedBuf, bool)>,
    /// Deliver inbound bytes in pieces of at most this many bytes (tests framing).
    pub chunk: usize,
    /// Piece bytes each node sent.
    pub sent: Vec<u64>,
    /// Nodes whose uploads are corrupted (a lying peer).
    pub liars: Vec<usize>,
}

impl Swarm {
    /// `seeds` nodes with every piece and `leechers` with none, all live.
    pub fn new(size: usize, piece_length: usize, seeds: usize, leechers: usize) -> Swarm {
        let original = data(size, 7);
        let geometry = Geometry::new(piece_length as u64, size as u64);
        let hashes = hashes(&original, piece_length);
        let mut swarm = Swarm {
            now: Instant::now(),
            nodes: Vec::new(),
            geometry,
            hashes,
            original,
            links: HashMap::new(),
            inbox: BTreeMap::new(),
            rx: HashMap::new(),
            serving: Vec::new(),
            verified: Vec::new(),
            chunk: usize::MAX,
            sent: Vec::new(),
            liars: Vec::new(),
        };
        for i in 0..seeds + leechers {
            swarm.add_node(i < seeds);
        }
        swarm
    }

    /// Adds a live node (a seed, or empty); returns its index. Its address is 10.0.0.(i+1).
    pub fn add_node(&mut self, seed: bool) -> usize {
        let i = self.nodes.len();
        let config = TorrentConfig {
            peer_id: [i as u8 + 1; 20],
            listen: Some(addr(i + 1)),
            seed: i as u64,
            ..TorrentConfig::default()
        };
        let mut engine = Engine::new(self.now, HASH, self.geometry, self.hashes.clone(), config);
        let pieces = self.geometry.pieces as usize;
        let have = crate::wire::Bitfield::repeat(seed, pieces);
        engine.handle_checked(self.now, &have);
        let disk = if seed {
            self.original.clone()
        } else {
            vec![0; self.original.len()]
        };
        self.nodes.push(Node {
            engine,
            addr: addr(i + 1),
            disk,
            announces: Vec::new(),
            completed: 0,
            closes: Vec::new(),
            checked: vec![seed; pieces],
        });
        self.sent.push(0);
        i
    }

    /// Tells node `i` about node `j` (as a tracker would).
    pub fn introduce(&mut self, i: usize, j: usize) {
        let a = self.nodes[j].addr;
        self.nodes[i]
            .engine
            .handle_peers(self.now, PeerSource::Tracker, &[a]);
    }

    /// Runs actions and deliveries until nothing moves; returns false if it never settled.
    pub fn settle(&mut self) -> bool {
        for _ in 0..5_000_000 {
            if !self.step() {
                return true;
            }
        }
        false
    }

    /// Runs at most `n` rounds (a transfer part way).
    pub fn steps(&mut self, n: usize) {
        for _ in 0..n {
            if !self.step() {
                return;
            }
        }
    }

    /// Advances the clock by `by`, in one-second ticks, settling after each.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now += Duration::from_secs(1).min(end - self.now);
            let now = self.now;
            for n in &mut self.nodes {
                if n.engine.poll_timeout().is_some_and(|t| t <= now) {
                    n.engine.handle_timeout(now);
                }
            }
            assert!(self.settle(), "the swarm never settled");
        }
    }

    /// Settles, then advances a second at a time until `done` holds or `limit` passes.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Swarm) -> bool) -> bool {
        assert!(self.settle());
        let end = self.now + limit;
        while !done(self) {
            if self.now >= end {
                return false;
            }
            self.advance(Duration::from_secs(1));
        }
        true
    }

    /// One round: every node's actions, then deliveries, serves and hash results. Returns
    /// whether anything happened.
    fn step(&mut self) -> bool {
        let mut moved = false;
        for i in 0..self.nodes.len() {
            while let Some(action) = self.nodes[i].engine.poll_action() {
                moved = true;
                self.carry_out(i, action);
            }
        }
        let keys: Vec<(usize, PeerKey)> = self.inbox.keys().copied().collect();
        for (i, key) in keys {
            let pending = self.inbox.get_mut(&(i, key)).expect("listed");
            if pending.is_empty() {
                continue;
            }
            moved = true;
            let take = pending.len().min(self.chunk);
            let rx = self.rx.entry((i, key)).or_default();
            rx.extend(pending.drain(..take));
            let used = self.nodes[i].engine.handle_bytes(self.now, key, rx);
            if let Some(rx) = self.rx.get_mut(&(i, key)) {
                rx.drain(..used.min(rx.len()));
            }
        }
        for (i, key) in std::mem::take(&mut self.serving) {
            moved |= self.serve(i, key);
        }
        for (i, piece, data, good) in std::mem::take(&mut self.verified) {
            moved = true;
            self.nodes[i]
                .engine
                .handle_verified(self.now, piece, data, good);
        }
        self.check_invariants();
        moved
    }

    fn carry_out(&mut self, i: usize, action: Action) {
        match action {
            Action::Send { peer, bytes } => {
                if let Some(&to) = self.links.get(&(i, peer)) {
                    self.inbox.entry(to).or_default().extend_from_slice(&bytes);
                }
            }
            Action::Serve { peer } => self.serving.push((i, peer)),
            Action::Close { peer, addr, reason } => {
                self.nodes[i].closes.push((addr, reason));
                if let Some(other) = self.links.remove(&(i, peer)) {
                    self.links.remove(&other);
                    self.inbox.remove(&other);
                    self.rx.remove(&other);
                    self.nodes[other.0].engine.handle_closed(self.now, other.1);
                }
                self.inbox.remove(&(i, peer));
                self.rx.remove(&(i, peer));
            }
            Action::Dial { addr } => {
                let now = self.now;
                let Some(j) = self.nodes.iter().position(|n| n.addr == addr) else {
                    self.nodes[i].engine.handle_dial_failed(now, addr);
                    return;
                };
                let ours = SocketAddr::new(self.nodes[i].addr.ip(), 40_000 + j as u16);
                let Ok(b) = self.nodes[j]
                    .engine
                    .handle_connected(now, ours, Direction::Incoming)
                else {
                    self.nodes[i].engine.handle_dial_failed(now, addr);
                    return;
                };
                match self.nodes[i]
                    .engine
                    .handle_connected(now, addr, Direction::Outgoing)
                {
                    Ok(a) => {
                        self.links.insert((i, a), (j, b));
                        self.links.insert((j, b), (i, a));
                    }
                    Err(_) => self.nodes[j].engine.handle_closed(now, b),
                }
            }
            Action::Verify {
                piece,
                expected,
                data,
            } => {
                let good = verifies(&data, &expected);
                if good {
                    let at = self.geometry.piece_offset(piece) as usize;
                    self.nodes[i].disk[at..at + data.len()].copy_from_slice(&data);
                }
                self.verified.push((i, piece, data, good));
            }
            Action::Write {
                piece,
                offset,
                data,
                ..
            } => {
                let now = self.now;
                let node = &mut self.nodes[i];
                write_block(&mut node.engine, &mut node.disk, now, piece, offset, data);
            }
            Action::HashOnDisk {
                piece,
                expected,
                block_hashes,
                ..
            } => {
                let now = self.now;
                let result = hash_on_disk(
                    &self.nodes[i].disk,
                    self.geometry,
                    piece,
                    &expected,
                    block_hashes,
                );
                self.nodes[i]
                    .engine
                    .handle_hashed_on_disk(now, piece, result);
            }
            Action::Announce { event } => self.nodes[i].announces.push(event),
            Action::Completed => self.nodes[i].completed += 1,
            Action::DhtNode { .. } | Action::ExternalIp { .. } => {}
            Action::State(_) | Action::Metadata { .. } => {}
        }
    }

    /// Serves up to 16 blocks node `i` owes peer `key`; true if any.
    fn serve(&mut self, i: usize, key: PeerKey) -> bool {
        let mut blocks = Vec::new();
        self.nodes[i].engine.take_serves(key, 16, &mut blocks);
        let Some(&to) = self.links.get(&(i, key)) else {
            return false;
        };
        let mut bytes = Vec::new();
        for b in &blocks {
            let node = &self.nodes[i];
            assert!(
                node.engine.have()[b.piece as usize],
                "node {i} served piece {} it has not verified",
                b.piece
            );
            let at = (self.geometry.piece_offset(b.piece) + u64::from(b.offset)) as usize;
            let mut block = node.disk[at..at + b.len as usize].to_vec();
            if self.liars.contains(&i) {
                block[0] ^= 0xff;
            }
            bytes.extend_from_slice(&piece_header(b.piece, b.offset, b.len));
            bytes.extend_from_slice(&block);
            let len = u64::from(b.len);
            self.nodes[i].engine.handle_sent(self.now, key, len);
            self.sent[i] += len;
        }
        self.inbox.entry(to).or_default().extend_from_slice(&bytes);
        if blocks.len() == 16 {
            self.serving.push((i, key));
        }
        !blocks.is_empty()
    }

    /// The invariants, checked after every step.
    fn check_invariants(&mut self) {
        let geometry = self.geometry;
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let e = &node.engine;
            for piece in 0..geometry.pieces {
                let had = e.have()[piece as usize];
                let states = [
                    had,
                    e.partial.contains_key(&piece),
                    e.verifying.contains_key(&piece),
                ];
                assert!(
                    states.iter().filter(|s| **s).count() <= 1,
                    "node {i}: piece {piece} in more than one state {states:?}"
                );
                if had && !node.checked[piece as usize] {
                    let at = geometry.piece_offset(piece) as usize;
                    let len = geometry.piece_len(piece) as usize;
                    let got: [u8; 20] = Sha1::digest(&node.disk[at..at + len]).into();
                    assert_eq!(
                        got, self.hashes[piece as usize],
                        "node {i}: piece {piece} marked had without the right bytes"
                    );
                    node.checked[piece as usize] = true;
                }
            }
            let bytes: u64 = (0..geometry.pieces)
                .filter(|&p| e.have()[p as usize])
                .map(|p| u64::from(geometry.piece_len(p)))
                .sum();
            assert_eq!(bytes, e.verified_bytes, "node {i}: verified bytes");
        }
    }

    pub fn complete(&self, i: usize) -> bool {
        self.nodes[i].engine.stats().complete && self.nodes[i].disk == self.original
    }
}

/// One engine facing a peer the test scripts message by message.
pub struct Scripted {
    pub now: Instant,
    pub engine: Engine,
    pub key: PeerKey,
    pub original: Vec<u8>,
    /// Actions other than sends to the scripted peer, in order.
    pub actions: Vec<Action>,
    /// What [`Action::Write`] wrote.
    pub disk: Vec<u8>,
    /// Leave [`Action::Write`]s in `actions` instead of carrying them out at once.
    pub defer_writes: bool,
    handshake_pending: bool,
}

impl Scripted {
    /// An engine over `size` bytes in `piece_length` pieces (no data past 64 MiB), holding
    /// every piece if `seed`, with one peer at 10.0.0.9 already past the handshake (its
    /// handshake, which sets the BEP 10 and BEP 6 bits as ours does, is consumed; our
    /// answer is the first thing [`Scripted::received`] returns). `peer_has_all`: the peer
    /// sends a full bitfield.
    pub fn new(size: usize, piece_length: usize, seed: bool, peer_has_all: bool) -> Scripted {
        let config = TorrentConfig {
            peer_id: [1; 20],
            seed: 1,
            ..TorrentConfig::default()
        };
        Scripted::with_config(size, piece_length, seed, peer_has_all, config)
    }

    /// [`Scripted::new`] with the engine's configuration given.
    pub fn with_config(
        size: usize,
        piece_length: usize,
        seed: bool,
        peer_has_all: bool,
        config: TorrentConfig,
    ) -> Scripted {
        let reserved = Handshake::new(HASH, [9; 20]).reserved;
        Scripted::build(size, piece_length, seed, peer_has_all, config, reserved)
    }

    /// [`Scripted::new`] facing a peer whose handshake sets only the extension protocol
    /// bit (BEP 10): no fast extension (BEP 6), as aria2 and older clients.
    pub fn without_fast(
        size: usize,
        piece_length: usize,
        seed: bool,
        peer_has_all: bool,
    ) -> Scripted {
        let config = TorrentConfig {
            peer_id: [1; 20],
            seed: 1,
            ..TorrentConfig::default()
        };
        let mut reserved = [0; 8];
        reserved[crate::wire::extension::RESERVED_BYTE] = crate::wire::extension::RESERVED_BIT;
        Scripted::build(size, piece_length, seed, peer_has_all, config, reserved)
    }

    fn build(
        size: usize,
        piece_length: usize,
        seed: bool,
        peer_has_all: bool,
        config: TorrentConfig,
        reserved: [u8; 8],
    ) -> Scripted {
        let geometry = Geometry::new(piece_length as u64, size as u64);
        // Past 64 MiB only requests are scripted: no data, made-up hashes.
        let original = if size <= 64 << 20 {
            data(size, 3)
        } else {
            Vec::new()
        };
        let hashes = if original.is_empty() {
            vec![[0; 20]; geometry.pieces as usize]
        } else {
            hashes(&original, piece_length)
        };
        let now = Instant::now();
        let mut engine = Engine::new(now, HASH, geometry, hashes.clone(), config);
        let pieces = geometry.pieces as usize;
        engine.handle_checked(now, &crate::wire::Bitfield::repeat(seed, pieces));
        let key = engine
            .handle_connected(now, addr(9), Direction::Incoming)
            .expect("accepted");
        let mut s = Scripted {
            now,
            engine,
            key,
            disk: vec![0; original.len()],
            defer_writes: false,
            original,
            actions: Vec::new(),
            handshake_pending: true,
        };
        let handshake = Handshake {
            reserved,
            ..Handshake::new(HASH, [9; 20])
        };
        s.feed(&handshake.encode());
        if peer_has_all {
            let bits = full(pieces);
            s.send(Message::Bitfield(bits.as_raw_slice()));
        }
        s
    }

    /// Feeds raw bytes from the peer; returns how many the engine used.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        self.engine.handle_bytes(self.now, self.key, bytes)
    }

    /// The peer sends one message.
    pub fn send(&mut self, m: Message) {
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        assert_eq!(self.feed(&bytes), bytes.len());
    }

    /// The peer sends the data of `block` (from the original bytes, corrupted if `bad`).
    pub fn send_block(&mut self, block: Block, bad: bool) {
        let at = (u64::from(block.piece) * self.engine.geometry().piece_length
            + u64::from(block.offset)) as usize;
        let mut data = self.original[at..at + block.len as usize].to_vec();
        if bad {
            data[0] ^= 1;
        }
        self.send(Message::Piece {
            piece: block.piece,
            offset: block.offset,
            data: &data,
        });
    }

    /// What the engine sent the peer since the last call; other actions go to `actions`
    /// (hash checks are carried out at once against the real hashes).
    pub fn received(&mut self) -> Vec<Got> {
        let mut bytes = Vec::new();
        loop {
            let mut verified = Vec::new();
            while let Some(action) = self.engine.poll_action() {
                match action {
                    Action::Send { peer, bytes: b } if peer == self.key => bytes.extend(b),
                    Action::Verify {
                        piece,
                        expected,
                        data,
                    } => {
                        let good = verifies(&data, &expected);
                        verified.push((piece, data, good));
                    }
                    Action::Write {
                        piece,
                        offset,
                        data,
                        ..
                    } if !self.defer_writes => {
                        write_block(
                            &mut self.engine,
                            &mut self.disk,
                            self.now,
                            piece,
                            offset,
                            data,
                        );
                    }
                    Action::HashOnDisk {
                        piece,
                        expected,
                        block_hashes,
                        ..
                    } if !self.disk.is_empty() => {
                        let geometry = self.engine.geometry();
                        let result =
                            hash_on_disk(&self.disk, geometry, piece, &expected, block_hashes);
                        self.engine.handle_hashed_on_disk(self.now, piece, result);
                    }
                    other => self.actions.push(other),
                }
            }
            if verified.is_empty() {
                return parse(&bytes, &mut self.handshake_pending);
            }
            // What the results make the engine say comes in the next round.
            for (piece, data, good) in verified {
                self.engine.handle_verified(self.now, piece, data, good);
            }
        }
    }

    /// Advances the fake clock second by second and runs the engine's timer.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now += Duration::from_secs(1).min(end - self.now);
            if self.engine.poll_timeout().is_some_and(|t| t <= self.now) {
                self.engine.handle_timeout(self.now);
            }
        }
    }

    /// The close reason the engine gave for the scripted peer, if it closed it.
    pub fn closed(&self) -> Option<&DisconnectReason> {
        self.actions.iter().find_map(|a| match a {
            Action::Close { peer, reason, .. } if *peer == self.key => Some(reason),
            _ => None,
        })
    }

    /// Blocks requested in `got`.
    pub fn requests(got: &[Got]) -> Vec<Block> {
        got.iter()
            .filter_map(|g| match g {
                Got::Request(b) => Some(*b),
                _ => None,
            })
            .collect()
    }
}

/// A bitfield with every one of `pieces` bits set (and no spare bits).
pub fn full(pieces: usize) -> crate::wire::Bitfield {
    let mut bits = crate::wire::Bitfield::repeat(false, pieces);
    bits.fill(true);
    bits
}

/// The block size every test assumes.
pub const B: u32 = BLOCK_LEN;
