//! Tracker state: who is in which swarm. No sockets, no clock: time is passed in.
//!
//! Memory policy: at most [`TrackerConfig::max_torrents`] swarms; a new torrent past that is
//! refused. At most [`TrackerConfig::max_peers_per_torrent`] peers per swarm; past that a
//! new peer still gets a peer list but is not stored. Peers silent for longer than
//! [`TrackerConfig::peer_ttl`] are dropped by [`Tracker::expire`], and empty swarms with them.

use super::query::{Announce, Event};
use super::response;
use crate::metainfo::InfoHash;
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
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
    pub max_torrents: usize,
    pub max_peers_per_torrent: usize,
    /// Most info hashes in one scrape.
    pub max_scrape_hashes: usize,
}

impl Default for TrackerConfig {
    /// 30-minute interval, 50 peers by default and at most 200, one million torrents of up to
    /// 100,000 peers each (bounded overall by `max_peers`-style deployment limits).
    fn default() -> Self {
        TrackerConfig {
            interval: 1800,
            min_interval: 300,
            peer_ttl: 3600 + 300,
            default_numwant: 50,
            max_numwant: 200,
            max_torrents: 1_000_000,
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

/// What the tracker remembers about one peer.
#[derive(Debug, Clone, Copy)]
struct PeerInfo {
    peer_id: [u8; 20],
    /// Tracker clock (seconds) of the last announce.
    last_seen: u32,
}

/// Seeders and leechers of one address family, keyed by the compact address+port bytes
/// (BEP 23: 4+2 bytes for IPv4, 16+2 for IPv6), which is also what responses send.
struct Peers<K> {
    seeders: IndexMap<K, PeerInfo>,
    leechers: IndexMap<K, PeerInfo>,
}

impl<K> Default for Peers<K> {
    fn default() -> Self {
        Peers {
            seeders: IndexMap::new(),
            leechers: IndexMap::new(),
        }
    }
}

/// A compact address+port key of one family, and how it goes into a reply.
trait CompactKey: Hash + Eq + Copy {
    /// Appends this peer to `list` in the form the client asked for.
    fn add_to(&self, list: &mut PeerList, peer: &PeerInfo);
}

impl CompactKey for [u8; 6] {
    fn add_to(&self, list: &mut PeerList, peer: &PeerInfo) {
        list.add4(self, peer);
    }
}

impl CompactKey for [u8; 18] {
    fn add_to(&self, list: &mut PeerList, peer: &PeerInfo) {
        list.add6(self, peer);
    }
}

impl<K: CompactKey> Peers<K> {
    fn len(&self) -> usize {
        self.seeders.len() + self.leechers.len()
    }

    /// Removes the peer; returns whether it was a seeder (`None` if unknown).
    fn remove(&mut self, key: &K) -> Option<bool> {
        if self.seeders.swap_remove(key).is_some() {
            Some(true)
        } else if self.leechers.swap_remove(key).is_some() {
            Some(false)
        } else {
            None
        }
    }

    /// Visits up to `want` peers other than `me`, starting at a random place: leechers only
    /// for a seeder, everyone for a leecher.
    fn pick(
        &self,
        me: Option<&K>,
        seeder: bool,
        want: usize,
        rng: &mut fastrand::Rng,
        mut visit: impl FnMut(&K, &PeerInfo),
    ) {
        let pools: &[&IndexMap<K, PeerInfo>] = if seeder {
            &[&self.leechers]
        } else {
            &[&self.seeders, &self.leechers]
        };
        let total: usize = pools.iter().map(|p| p.len()).sum();
        if total == 0 || want == 0 {
            return;
        }
        let start = rng.usize(..total);
        let mut taken = 0;
        for step in 0..total {
            let mut i = (start + step) % total;
            let pool = pools.iter().find(|p| {
                if i < p.len() {
                    true
                } else {
                    i -= p.len();
                    false
                }
            });
            let (key, info) = pool
                .and_then(|p| p.get_index(i))
                .expect("index within total");
            if Some(key) == me {
                continue;
            }
            visit(key, info);
            taken += 1;
            if taken == want {
                break;
            }
        }
    }

    fn expire(&mut self, oldest: u32) -> usize {
        let before = self.len();
        self.seeders.retain(|_, p| p.last_seen >= oldest);
        self.leechers.retain(|_, p| p.last_seen >= oldest);
        before - self.len()
    }
}

/// One torrent's swarm.
#[derive(Default)]
struct Swarm {
    v4: Peers<[u8; 6]>,
    v6: Peers<[u8; 18]>,
    /// Completed downloads seen (`event=completed` from a peer that was not a seeder).
    downloaded: u64,
}

impl Swarm {
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
    #[error("this tracker is full: it tracks {0} torrents already")]
    Full(usize),
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
    pub access: AccessList,
    torrents: HashMap<InfoHash, Swarm>,
    peers: usize,
    seeders: usize,
    rng: fastrand::Rng,
    /// Reused between announces so a reply allocates nothing once warmed up.
    scratch: PeerList,
}

/// Compact form of an address and port (BEP 23 / BEP 7).
fn compact4(ip: std::net::Ipv4Addr, port: u16) -> [u8; 6] {
    let mut k = [0; 6];
    k[..4].copy_from_slice(&ip.octets());
    k[4..].copy_from_slice(&port.to_be_bytes());
    k
}

fn compact6(ip: std::net::Ipv6Addr, port: u16) -> [u8; 18] {
    let mut k = [0; 18];
    k[..16].copy_from_slice(&ip.octets());
    k[16..].copy_from_slice(&port.to_be_bytes());
    k
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig, access: AccessList) -> Tracker {
        Tracker {
            config,
            access,
            torrents: HashMap::new(),
            peers: 0,
            seeders: 0,
            rng: fastrand::Rng::new(),
            scratch: PeerList::new(true),
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

    /// Handles an announce from `ip` at tracker time `now` (seconds) and appends the
    /// bencoded response to `out`. The requester never appears in its own peer list, and
    /// seeders are sent leechers only. Peers of the requester's address family come first.
    pub fn announce(
        &mut self,
        req: &Announce,
        ip: IpAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), Refusal> {
        if !self.access.permits(&req.info_hash) {
            return Err(Refusal::NotAllowed);
        }
        let stopped = req.event == Event::Stopped;
        if !self.torrents.contains_key(&req.info_hash) {
            if stopped {
                response::write_announce(out, &self.config, (0, 0), &PeerList::new(true));
                return Ok(());
            }
            if self.torrents.len() >= self.config.max_torrents {
                return Err(Refusal::Full(self.torrents.len()));
            }
        }
        let want = req
            .numwant
            .unwrap_or(self.config.default_numwant)
            .min(self.config.max_numwant) as usize;
        let seeder = req.left == Some(0);
        let max_peers = self.config.max_peers_per_torrent;
        let info = PeerInfo {
            peer_id: req.peer_id,
            last_seen: now,
        };
        let swarm = self.torrents.entry(req.info_hash).or_default();
        let mut list = std::mem::replace(&mut self.scratch, PeerList::new(true));
        list.reset(req.compact, req.no_peer_id);
        let rng = &mut self.rng;
        let join = Join {
            info,
            seeder,
            stopped,
            max_peers,
            want,
        };
        let (before, after) = match ip {
            IpAddr::V4(v4) => join.run(
                &mut swarm.v4,
                &swarm.v6,
                compact4(v4, req.port),
                rng,
                &mut list,
            ),
            IpAddr::V6(v6) => join.run(
                &mut swarm.v6,
                &swarm.v4,
                compact6(v6, req.port),
                rng,
                &mut list,
            ),
        };
        if req.event == Event::Completed && seeder && before != Some(true) {
            swarm.downloaded += 1;
        }
        self.peers = self.peers + usize::from(after.is_some()) - usize::from(before.is_some());
        self.seeders =
            self.seeders + usize::from(after == Some(true)) - usize::from(before == Some(true));
        let counts = swarm.counts();
        if swarm.len() == 0 && swarm.downloaded == 0 {
            self.torrents.remove(&req.info_hash);
        }
        response::write_announce(out, &self.config, counts, &list);
        self.scratch = list;
        Ok(())
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

    /// Forgets peers not seen since `now - peer_ttl`, and swarms left empty.
    /// Returns how many peers were dropped.
    pub fn expire(&mut self, now: u32) -> usize {
        let oldest = now.saturating_sub(self.config.peer_ttl);
        let mut dropped = 0;
        self.torrents.retain(|_, swarm| {
            dropped += swarm.v4.expire(oldest) + swarm.v6.expire(oldest);
            swarm.len() > 0
        });
        self.peers -= dropped;
        self.seeders = self.torrents.values().map(|s| s.counts().0).sum();
        dropped
    }
}

/// One announce's change to a swarm: who the requester is now, and how many peers it wants.
struct Join {
    info: PeerInfo,
    seeder: bool,
    stopped: bool,
    max_peers: usize,
    want: usize,
}

impl Join {
    /// Updates the requester `me` among `own` (its address family), then fills `list` from
    /// its own family first and `other` after. Returns its state before and after, as
    /// [`update`] does.
    fn run<K: CompactKey, O: CompactKey>(
        &self,
        own: &mut Peers<K>,
        other: &Peers<O>,
        me: K,
        rng: &mut fastrand::Rng,
        list: &mut PeerList,
    ) -> (Option<bool>, Option<bool>) {
        let change = update(
            own,
            me,
            self.info,
            self.seeder,
            self.stopped,
            self.max_peers,
            other.len(),
        );
        if !self.stopped {
            own.pick(Some(&me), self.seeder, self.want, rng, |k, p| {
                k.add_to(list, p)
            });
            let rest = self.want - list.len;
            other.pick(None, self.seeder, rest, rng, |k, p| k.add_to(list, p));
        }
        change
    }
}

/// Moves the peer `key` into the right set, or out when stopped. Returns its state before
/// and after: `None` when absent, `Some(true)` as a seeder, `Some(false)` as a leecher.
/// A new peer is not stored when the swarm already holds `max_peers` (counting the
/// `other_family` peers too).
fn update<K: CompactKey>(
    peers: &mut Peers<K>,
    key: K,
    info: PeerInfo,
    seeder: bool,
    stopped: bool,
    max_peers: usize,
    other_family: usize,
) -> (Option<bool>, Option<bool>) {
    let before = peers.remove(&key);
    if stopped || (before.is_none() && peers.len() + other_family >= max_peers) {
        return (before, None);
    }
    let set = if seeder {
        &mut peers.seeders
    } else {
        &mut peers.leechers
    };
    set.insert(key, info);
    (before, Some(seeder))
}

/// The peers chosen for one response, in the form the client asked for.
pub(super) struct PeerList {
    pub compact: bool,
    /// Leave peer ids out of the dictionary form (`no_peer_id=1`).
    pub no_peer_id: bool,
    /// Compact IPv4 entries (6 bytes each) for `peers`.
    pub v4: Vec<u8>,
    /// Compact IPv6 entries (18 bytes each) for `peers6`.
    pub v6: Vec<u8>,
    /// Dictionary-form entries when not compact.
    pub dicts: Vec<(IpAddr, u16, [u8; 20])>,
    pub len: usize,
}

impl PeerList {
    fn new(compact: bool) -> PeerList {
        PeerList {
            compact,
            no_peer_id: false,
            v4: Vec::new(),
            v6: Vec::new(),
            dicts: Vec::new(),
            len: 0,
        }
    }

    fn reset(&mut self, compact: bool, no_peer_id: bool) {
        self.compact = compact;
        self.no_peer_id = no_peer_id;
        self.v4.clear();
        self.v6.clear();
        self.dicts.clear();
        self.len = 0;
    }

    fn add4(&mut self, k: &[u8; 6], p: &PeerInfo) {
        self.len += 1;
        if self.compact {
            self.v4.extend_from_slice(k);
        } else {
            let ip = std::net::Ipv4Addr::new(k[0], k[1], k[2], k[3]);
            self.dicts
                .push((ip.into(), u16::from_be_bytes([k[4], k[5]]), p.peer_id));
        }
    }

    fn add6(&mut self, k: &[u8; 18], p: &PeerInfo) {
        self.len += 1;
        if self.compact {
            self.v6.extend_from_slice(k);
        } else {
            let octets: [u8; 16] = k[..16].try_into().expect("16 bytes");
            let ip = std::net::Ipv6Addr::from(octets);
            self.dicts
                .push((ip.into(), u16::from_be_bytes([k[16], k[17]]), p.peer_id));
        }
    }
}
