//! Tracker state: who is in which swarm. No sockets, no clock: time is passed in.
//!
//! Memory policy: see `swarm/budget.rs` (an overall budget, one per address prefix, and eviction
//! of swarms of little value, never a refusal of newcomers). At most
//! [`TrackerConfig::max_peers_per_torrent`] peers per swarm; past that a new peer still gets
//! a peer list but is not stored. Peers silent for longer than [`TrackerConfig::peer_ttl`]
//! are dropped a bounded number of swarms at a time (see `swarm/expiry.rs`), and empty swarms with
//! them.

mod budget;
mod expiry;
mod peer_list;

use super::peers::{Change, CompactKey, Peers};
use super::query::{Announce, Event};
use crate::core::InfoHash;
pub(crate) use budget::Prefix;
use budget::{default_per_prefix, Usage};
pub use budget::{PEER_BYTES, TORRENT_BYTES};
pub use expiry::Expired;
pub(super) use peer_list::PeerList;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Tunables of the tracker.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Seconds clients should wait between announces.
    pub interval: u32,
    /// Seconds clients must wait at least.
    pub min_interval: u32,
    /// Seconds after its last announce that a peer is forgotten (about twice `interval`).
    pub peer_ttl: u32,
    /// Peers returned when the client does not say.
    pub default_numwant: u32,
    /// Most peers returned, whatever the client asks.
    pub max_numwant: u32,
    /// Bytes all peers and torrents may take, as [`PEER_BYTES`] and [`TORRENT_BYTES`]
    /// count them.
    pub max_memory: usize,
    /// Bytes the peers and new torrents of one address prefix (/24, /48) may take.
    pub max_memory_per_prefix: usize,
    pub max_peers_per_torrent: usize,
    /// Most info hashes in one scrape.
    pub max_scrape_hashes: usize,
}

impl Default for TrackerConfig {
    /// 30-minute interval, 50 peers by default and at most 200, 1 GiB of peers and torrents
    /// (a 64th of it per address prefix), up to 100,000 peers per torrent.
    fn default() -> Self {
        TrackerConfig {
            interval: 1800,
            min_interval: 300,
            peer_ttl: 3600 + 300,
            default_numwant: 50,
            max_numwant: 200,
            max_memory: 1 << 30,
            max_memory_per_prefix: default_per_prefix(1 << 30),
            max_peers_per_torrent: 100_000,
            max_scrape_hashes: 64,
        }
    }
}

/// Which info hashes the tracker serves.
#[derive(Debug, Clone, Default)]
pub enum AccessList {
    /// Every torrent.
    #[default]
    Open,
    /// Only these.
    Allow(HashSet<InfoHash>),
    /// All but these.
    Deny(HashSet<InfoHash>),
}

impl AccessList {
    /// Reads info hashes from a file: 40 hex digits a line; blank lines and lines starting
    /// with '#' are skipped. Errors name the file and line.
    pub fn read_hashes(path: &std::path::Path) -> Result<HashSet<InfoHash>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut hashes = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let hash = InfoHash::from_hex(line).ok_or_else(|| {
                format!(
                    "{}:{}: expected 40 hexadecimal digits, found {line:?}",
                    path.display(),
                    n + 1
                )
            })?;
            hashes.insert(hash);
        }
        Ok(hashes)
    }

    /// Whether `hash` may be tracked.
    pub fn permits(&self, hash: &InfoHash) -> bool {
        match self {
            AccessList::Open => true,
            AccessList::Allow(set) => set.contains(hash),
            AccessList::Deny(set) => !set.contains(hash),
        }
    }
}

/// One torrent's swarm.
struct Swarm {
    v4: Peers<[u8; 6]>,
    v6: Peers<[u8; 18]>,
    /// Completed downloads seen (`event=completed` from a peer that was not a seeder).
    downloaded: u64,
    /// Where this torrent sits in [`Tracker::order`].
    pos: u32,
    /// The prefix charged for the torrent: its first peer's.
    creator: Prefix,
}

impl Swarm {
    fn new(pos: u32, creator: Prefix) -> Swarm {
        Swarm {
            v4: Peers::default(),
            v6: Peers::default(),
            downloaded: 0,
            pos,
            creator,
        }
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.v4.seeders.len() + self.v6.seeders.len(),
            self.v4.leechers.len() + self.v6.leechers.len(),
        )
    }
}

/// The answer to one announce: swarm counts and the peers picked, borrowed from the tracker
/// until the reply is written.
pub struct Announced<'a> {
    /// Intervals and limits.
    pub(super) config: &'a TrackerConfig,
    /// Seeders and leechers in the swarm after the announce.
    pub(super) counts: (usize, usize),
    /// The peers handed to the requester.
    pub(super) peers: &'a PeerList,
}

/// Scrape figures for one torrent (BEP 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeEntry {
    pub complete: usize,
    pub incomplete: usize,
    pub downloaded: u64,
}

/// Why an announce was refused (sent as `failure reason`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this tracker does not serve that info_hash")]
    NotAllowed,
}

/// Totals for /stats and /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub torrents: usize,
    pub peers: usize,
    pub seeders: usize,
}

/// All swarms, with the rules for joining and leaving them.
pub struct Tracker {
    pub config: TrackerConfig,
    /// Which info hashes may be tracked; every swarm held is permitted by it.
    access: AccessList,
    /// Boxed: the table doubles as it grows, and buckets of whole swarms (about 400 bytes
    /// each) made half-empty tables cost most of a torrent's memory.
    torrents: HashMap<InfoHash, Box<Swarm>>,
    /// Every torrent once, in no particular order: the expiry cursor walks it and
    /// eviction samples it.
    order: Vec<InfoHash>,
    /// The next swarm expiry visits (see `swarm/expiry.rs`).
    cursor: usize,
    /// Memory charged to each address prefix.
    usage: Usage,
    /// Swarms evicted to make room.
    evicted: u64,
    peers: usize,
    seeders: usize,
    rng: fastrand::Rng,
    /// Reused between announces so a reply allocates nothing once warmed up.
    scratch: PeerList,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig, access: AccessList) -> Tracker {
        Tracker {
            config,
            access,
            torrents: HashMap::new(),
            order: Vec::new(),
            cursor: 0,
            usage: Usage::default(),
            evicted: 0,
            peers: 0,
            seeders: 0,
            rng: fastrand::Rng::new(),
            scratch: PeerList::new(true),
        }
    }

    /// Replaces the access list (a SIGHUP reload) and forgets the swarms it no longer
    /// permits, so their peers stop being served and counted at once.
    pub fn set_access(&mut self, access: AccessList) {
        self.access = access;
        let (mut peers, mut seeders) = (0, 0);
        self.torrents.retain(|hash, swarm| {
            let keep = self.access.permits(hash);
            if keep {
                let (complete, _) = swarm.counts();
                peers += swarm.len();
                seeders += complete;
            }
            keep
        });
        (self.peers, self.seeders) = (peers, seeders);
        self.reindex();
    }

    /// Rebuilds the torrent list and the prefix charges from the swarms.
    fn reindex(&mut self) {
        self.order.clear();
        self.usage.clear();
        self.cursor = 0;
        for (hash, swarm) in &mut self.torrents {
            swarm.pos = self.order.len() as u32;
            self.order.push(*hash);
            self.usage.charge(swarm.creator, TORRENT_BYTES);
            for prefix in swarm.v4.prefixes().chain(swarm.v6.prefixes()) {
                self.usage.charge(prefix, PEER_BYTES);
            }
        }
    }

    /// Adds a swarm for `hash`, charged to `creator`.
    fn add_swarm(&mut self, hash: InfoHash, creator: Prefix) {
        let pos = self.order.len() as u32;
        self.order.push(hash);
        self.torrents
            .insert(hash, Box::new(Swarm::new(pos, creator)));
        self.usage.charge(creator, TORRENT_BYTES);
    }

    /// Forgets a swarm and its peers, releasing what they were charged. Keeps the expiry
    /// cursor's promise: the swarms before it stay the visited ones.
    fn remove_swarm(&mut self, hash: &InfoHash) {
        let Some(swarm) = self.torrents.remove(hash) else {
            return;
        };
        self.peers -= swarm.len();
        self.seeders -= swarm.counts().0;
        self.usage.release(swarm.creator, TORRENT_BYTES);
        for prefix in swarm.v4.prefixes().chain(swarm.v6.prefixes()) {
            self.usage.release(prefix, PEER_BYTES);
        }
        let mut pos = swarm.pos as usize;
        if pos < self.cursor {
            // Swap it with the last visited swarm, which stays before the cursor.
            self.cursor -= 1;
            self.order.swap(pos, self.cursor);
            self.set_pos(pos);
            pos = self.cursor;
        }
        self.order.swap_remove(pos);
        self.set_pos(pos);
    }

    /// Points the swarm now at `order[pos]` (if any) back at `pos`.
    fn set_pos(&mut self, pos: usize) {
        if let Some(hash) = self.order.get(pos) {
            if let Some(swarm) = self.torrents.get_mut(hash) {
                swarm.pos = pos as u32;
            }
        }
    }

    /// Swarms evicted to make room so far, and prefixes charged for something now.
    pub fn evictions(&self) -> (u64, usize) {
        (self.evicted, self.usage.prefixes())
    }

    /// Whether a new torrent from `prefix` may be stored, evicting to make room if needed.
    fn admit_torrent(&mut self, prefix: Prefix, hash: &InfoHash) -> bool {
        let cost = TORRENT_BYTES + PEER_BYTES;
        self.usage.of(prefix) + cost <= self.config.max_memory_per_prefix
            && self.make_room(cost, hash)
    }

    /// Whether `key` is a stored peer of the swarm of `hash`.
    fn knows(&self, hash: &InfoHash, ip: IpAddr, port: u16) -> bool {
        self.torrents.get(hash).is_some_and(|s| match ip {
            IpAddr::V4(v4) => s.v4.index.contains_key(&crate::core::compact::v4(v4, port)),
            IpAddr::V6(v6) => s.v6.index.contains_key(&crate::core::compact::v6(v6, port)),
        })
    }

    /// An answer with no peers, for an announce that stored nothing.
    fn empty_answer(&mut self, req: &Announce) -> Announced<'_> {
        self.scratch.reset(req.compact, req.no_peer_id);
        Announced {
            config: &self.config,
            counts: (0, 0),
            peers: &self.scratch,
        }
    }

    /// Torrent, peer and seeder counts.
    pub fn totals(&self) -> Totals {
        Totals {
            torrents: self.torrents.len(),
            peers: self.peers,
            seeders: self.seeders,
        }
    }

    /// Handles an announce from `ip` at tracker time `now` (seconds) and returns what was
    /// decided, for the front end to write in its own format ([`Announced::write`] for HTTP).
    /// The requester never appears in its own peer list, and seeders are sent leechers only.
    /// Peers of the requester's address family come first.
    pub fn announce(
        &mut self,
        req: &Announce,
        ip: IpAddr,
        now: u32,
    ) -> Result<Announced<'_>, Refusal> {
        let stopped = req.event == Event::Stopped;
        let hash = req.info_hash;
        let prefix = Prefix::of(ip);
        // A swarm held is permitted (set_access drops the others), so only a new
        // torrent costs an access-list lookup.
        if !self.torrents.contains_key(&hash) {
            if !self.access.permits(&hash) {
                return Err(Refusal::NotAllowed);
            }
            if stopped || !self.admit_torrent(prefix, &hash) {
                // Nothing to store, or no room: answered, not stored.
                return Ok(self.empty_answer(req));
            }
            self.add_swarm(hash, prefix);
        } else if !stopped && !self.fits(PEER_BYTES) && !self.knows(&hash, ip, req.port) {
            self.make_room(PEER_BYTES, &hash);
        }
        let global_room = self.fits(PEER_BYTES);
        let Tracker {
            config,
            torrents,
            usage,
            rng,
            scratch: list,
            ..
        } = self;
        let Some(swarm) = torrents.get_mut(&hash) else {
            return Ok(self.empty_answer(req)); // never: it was there or just added
        };
        let want = req
            .numwant
            .unwrap_or(config.default_numwant)
            .min(config.max_numwant) as usize;
        let seeder = req.left == Some(0);
        list.reset(req.compact, req.no_peer_id);
        let join = Join {
            id: req.peer_id,
            now,
            seeder,
            stopped,
            want,
        };
        // Asked only for a peer not stored yet; charges its prefix when it says yes.
        let swarm_room = swarm.len() < config.max_peers_per_torrent;
        let per_prefix = config.max_memory_per_prefix;
        let room = || global_room && swarm_room && usage.try_charge(prefix, PEER_BYTES, per_prefix);
        let change = match ip {
            IpAddr::V4(v4) => join.run(
                &mut swarm.v4,
                &swarm.v6,
                crate::core::compact::v4(v4, req.port),
                room,
                rng,
                list,
            ),
            IpAddr::V6(v6) => join.run(
                &mut swarm.v6,
                &swarm.v4,
                crate::core::compact::v6(v6, req.port),
                room,
                rng,
                list,
            ),
        };
        let (before, after) = (change.before, change.after);
        if before.is_some() && after.is_none() {
            usage.release(prefix, PEER_BYTES);
        }
        if req.event == Event::Completed && seeder && before != Some(true) {
            swarm.downloaded += 1;
        }
        self.peers = self.peers + usize::from(after.is_some()) - usize::from(before.is_some());
        self.seeders =
            self.seeders + usize::from(after == Some(true)) - usize::from(before == Some(true));
        let counts = swarm.counts();
        if swarm.len() == 0 && swarm.downloaded == 0 {
            self.remove_swarm(&hash);
        }
        Ok(Announced {
            config: &self.config,
            counts,
            peers: &self.scratch,
        })
    }

    /// Scrape figures for `hash` (zeros for an unknown torrent).
    pub fn scrape(&self, hash: &InfoHash) -> ScrapeEntry {
        self.torrents
            .get(hash)
            .map_or_else(ScrapeEntry::default, |s| {
                let (complete, incomplete) = s.counts();
                ScrapeEntry {
                    complete,
                    incomplete,
                    downloaded: s.downloaded,
                }
            })
    }
}

/// One announce's change to a swarm: who the requester is now, and how many peers it wants.
struct Join {
    id: [u8; 20],
    now: u32,
    seeder: bool,
    stopped: bool,
    want: usize,
}

impl Join {
    /// Updates the requester `me` among `own` (its address family), then fills `list` from
    /// its own family first and `other` after.
    fn run<K: CompactKey, O: CompactKey>(
        &self,
        own: &mut Peers<K>,
        other: &Peers<O>,
        me: K,
        room: impl FnOnce() -> bool,
        rng: &mut fastrand::Rng,
        list: &mut PeerList,
    ) -> Change {
        let change = own.update(me, self.id, self.now, self.seeder, self.stopped, room);
        if !self.stopped {
            let at = change.at.map(|i| (self.seeder, i));
            own.pick(at, self.seeder, self.want, rng, list);
            let rest = self.want - list.len;
            other.pick(None, self.seeder, rest, rng, list);
        }
        change
    }
}
