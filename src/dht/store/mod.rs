//! The peers announced to us (BEP 5 `announce_peer`), by info hash, for `get_peers`
//! answers; and a sample of the info hashes for BEP 51's `sample_infohashes`.
//!
//! An entry is a peer's address and when it was announced; it expires after
//! [`StoreConfig::peer_ttl`] (30 minutes: clients re-announce about every 15; libtorrent
//! keeps peers 45 minutes). Memory is bounded whatever arrives, by caps that each say
//! what gives way:
//!
//! - one entry per source and torrent ([`StoreConfig::restrict_ips`]): a source (an IPv4
//!   address or an IPv6 /64, see [`Source`]) announcing again replaces its entry, port and
//!   all;
//! - [`StoreConfig::max_torrents_per_source`] torrents per source: a source announcing
//!   one more loses its least recently announced entry, so one address cannot hold more
//!   of the store however many info hashes it announces;
//! - [`StoreConfig::max_peers_per_torrent`] entries per torrent: the oldest gives way to
//!   a newcomer (an honest peer re-announcing gets its place back; refusing newcomers
//!   would let a hundred addresses lock a torrent);
//! - [`StoreConfig::max_torrents`] torrents: a new torrent takes the place of the least
//!   valuable one, the one with the fewest peers and among those the one announced least
//!   recently, unless that one has more than one peer. So a flood of distinct info hashes
//!   only ever replaces torrents of a single peer, its own first; a new torrent is refused
//!   only when every torrent stored has entries from at least two sources.
//!
//! In the worst case the store holds `max_torrents * max_peers_per_torrent` entries: with
//! the defaults 200,000, about 100 bytes each with the indexes (20 MB); a flood from one
//! source holds at most `max_torrents_per_source` of them.
//!
//! Expired entries are swept at most once a minute, when an announce comes; answers
//! leave out expired entries that are still waiting for the sweep.

#[cfg(test)]
mod tests;

use super::ratelimit::Source;
use crate::core::InfoHash;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Least time between two sweeps of expired entries.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The store's caps; [`StoreConfig::default`] gives the values below.
#[derive(Clone, Copy, Debug)]
pub struct StoreConfig {
    /// How long an announce is kept: 30 minutes.
    pub peer_ttl: Duration,
    /// Entries per torrent, both families together: 100.
    pub max_peers_per_torrent: usize,
    /// Torrents in all: 2,000 (libtorrent's `dht_max_torrents`).
    pub max_torrents: usize,
    /// Torrents one source may have entries in: 64. A node near many popular torrents'
    /// ids in a small DHT, or a seedbox, may announce more; tests raise it.
    pub max_torrents_per_source: usize,
    /// One entry per source ([`Source`]) and torrent, and the per-source cap counted by
    /// source: on. Off, both count by address and port, for tests whose nodes share one
    /// IP address.
    pub restrict_ips: bool,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            peer_ttl: Duration::from_secs(30 * 60),
            max_peers_per_torrent: 100,
            max_torrents: 2000,
            max_torrents_per_source: 64,
            restrict_ips: true,
        }
    }
}

/// What [`PeerStore::announce`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stored {
    /// A new entry.
    Added,
    /// The source's entry for this torrent now has this address and time.
    Updated,
    /// The store is full of torrents with at least two peers each.
    Refused,
}

/// One announce.
#[derive(Clone, Copy, Debug)]
struct Peer {
    addr: SocketAddr,
    at: Instant,
}

#[derive(Clone, Debug)]
struct Torrent {
    peers: Vec<Peer>,
    /// The latest `at` of its peers.
    newest: Instant,
    /// Its place in [`PeerStore::hashes`].
    pos: usize,
}

impl Torrent {
    fn rank(&self, hash: InfoHash) -> Rank {
        (self.peers.len(), self.newest, hash)
    }
}

/// A torrent's worth, lowest first: peers, latest announce, and the hash to tell apart.
type Rank = (usize, Instant, InfoHash);

/// Peers by info hash, bounded (see the module's documentation). Sans-IO: the time of
/// every announce and question is passed in.
#[derive(Clone, Debug)]
pub struct PeerStore {
    config: StoreConfig,
    torrents: HashMap<InfoHash, Torrent>,
    /// Every stored info hash once, for sampling.
    hashes: Vec<InfoHash>,
    /// Every torrent's rank: the first is the next to give way.
    ranks: BTreeSet<Rank>,
    /// The torrents each source has an entry in, least recently announced first.
    sources: HashMap<SocketAddr, Vec<InfoHash>>,
    /// Entries in all.
    entries: usize,
    last_sweep: Option<Instant>,
}

impl PeerStore {
    /// An empty store with the caps of `config` (each at least 1).
    pub fn new(config: StoreConfig) -> PeerStore {
        let config = StoreConfig {
            max_peers_per_torrent: config.max_peers_per_torrent.max(1),
            max_torrents: config.max_torrents.max(1),
            max_torrents_per_source: config.max_torrents_per_source.max(1),
            ..config
        };
        PeerStore {
            config,
            torrents: HashMap::new(),
            hashes: Vec::new(),
            ranks: BTreeSet::new(),
            sources: HashMap::new(),
            entries: 0,
            last_sweep: None,
        }
    }

    /// The caps in force.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Torrents stored.
    pub fn torrent_count(&self) -> usize {
        self.torrents.len()
    }

    /// Entries stored, all torrents together.
    pub fn peer_count(&self) -> usize {
        self.entries
    }

    /// Sources with at least one entry.
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Records that `peer` announced `info_hash` at `now`. The address is the one to hand
    /// out: the announcing node's IP with the port it gave (or its source port, for
    /// `implied_port`); the caller checked the token and that the port is not 0.
    pub fn announce(&mut self, now: Instant, info_hash: InfoHash, peer: SocketAddr) -> Stored {
        if self
            .last_sweep
            .map_or(true, |t| now.saturating_duration_since(t) >= SWEEP_EVERY)
        {
            self.expire(now);
        }
        let key = self.key(peer);
        let entry = Peer {
            addr: peer,
            at: now,
        };
        match self.torrents.get(&info_hash) {
            Some(torrent) => {
                if let Some(i) = torrent.peers.iter().position(|p| self.key(p.addr) == key) {
                    self.update(info_hash, |t| {
                        t.peers[i] = entry;
                        t.newest = now.max(t.newest);
                    });
                    let list = self
                        .sources
                        .get_mut(&key)
                        .expect("an entry's source is indexed");
                    list.retain(|h| *h != info_hash);
                    list.push(info_hash);
                    return Stored::Updated;
                }
            }
            None => {
                let full = self.torrents.len() >= self.config.max_torrents;
                if full && self.ranks.first().is_some_and(|&(peers, ..)| peers > 1) {
                    return Stored::Refused;
                }
            }
        }
        // The source gives up its least recently announced entry first (never one of
        // this torrent: it has none there); that may free the place it needs.
        if let Some(list) = self.sources.get(&key) {
            if list.len() >= self.config.max_torrents_per_source {
                let oldest = list[0];
                self.remove_entry(oldest, key);
            }
        }
        let restrict = self.config.restrict_ips;
        if let Some(torrent) = self.torrents.get_mut(&info_hash) {
            self.ranks.remove(&torrent.rank(info_hash));
            if torrent.peers.len() < self.config.max_peers_per_torrent {
                torrent.peers.push(entry);
                self.entries += 1;
            } else {
                // The oldest entry gives its place to the newcomer.
                let (i, _) = torrent
                    .peers
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, p)| p.at)
                    .expect("a full torrent has peers");
                let old = std::mem::replace(&mut torrent.peers[i], entry);
                unlink(&mut self.sources, key_of(restrict, old.addr), info_hash);
            }
            torrent.newest = now.max(torrent.newest);
            self.ranks.insert(torrent.rank(info_hash));
        } else {
            if self.torrents.len() >= self.config.max_torrents {
                if let Some(&(.., victim)) = self.ranks.first() {
                    self.remove_torrent(victim);
                }
            }
            let torrent = Torrent {
                peers: vec![entry],
                newest: now,
                pos: self.hashes.len(),
            };
            self.ranks.insert(torrent.rank(info_hash));
            self.torrents.insert(info_hash, torrent);
            self.hashes.push(info_hash);
            self.entries += 1;
        }
        self.sources.entry(key).or_default().push(info_hash);
        Stored::Added
    }

    /// Up to `max` live peers of `info_hash` of one family (IPv6 if `v6`), a random
    /// sample when there are more.
    pub fn get_peers(
        &self,
        now: Instant,
        info_hash: &InfoHash,
        max: usize,
        v6: bool,
        rng: &mut fastrand::Rng,
    ) -> Vec<SocketAddr> {
        let Some(torrent) = self.torrents.get(info_hash) else {
            return Vec::new();
        };
        let mut peers: Vec<SocketAddr> = torrent
            .peers
            .iter()
            .filter(|p| p.addr.is_ipv6() == v6 && self.live(now, p))
            .map(|p| p.addr)
            .collect();
        partial_shuffle(&mut peers, max, rng);
        peers
    }

    /// Up to `max` stored info hashes, a random sample when there are more (BEP 51).
    pub fn samples(&self, max: usize, rng: &mut fastrand::Rng) -> Vec<InfoHash> {
        let n = self.hashes.len();
        if max >= n {
            return self.hashes.clone();
        }
        // Floyd's algorithm: `max` distinct indices, each subset equally likely.
        let mut picked: Vec<usize> = Vec::with_capacity(max);
        for j in n - max..n {
            let t = rng.usize(..=j);
            picked.push(if picked.contains(&t) { j } else { t });
        }
        picked.into_iter().map(|i| self.hashes[i]).collect()
    }

    /// Removes the entries older than [`StoreConfig::peer_ttl`] at `now`, and the
    /// torrents left without any. [`PeerStore::announce`] calls it at most once a minute.
    pub fn expire(&mut self, now: Instant) {
        self.last_sweep = Some(now);
        let mut gone: Vec<(InfoHash, SocketAddr)> = Vec::new();
        for (hash, torrent) in &self.torrents {
            for p in &torrent.peers {
                if !self.live(now, p) {
                    gone.push((*hash, self.key(p.addr)));
                }
            }
        }
        for (hash, key) in gone {
            self.remove_entry(hash, key);
        }
    }

    fn live(&self, now: Instant, peer: &Peer) -> bool {
        now.saturating_duration_since(peer.at) < self.config.peer_ttl
    }

    /// What entries are counted by: the source, or the address with its port when
    /// [`StoreConfig::restrict_ips`] is off.
    fn key(&self, addr: SocketAddr) -> SocketAddr {
        key_of(self.config.restrict_ips, addr)
    }

    /// Changes a stored torrent, keeping its rank in step.
    fn update(&mut self, hash: InfoHash, change: impl FnOnce(&mut Torrent)) {
        let torrent = self.torrents.get_mut(&hash).expect("the torrent is stored");
        self.ranks.remove(&torrent.rank(hash));
        change(torrent);
        self.ranks.insert(torrent.rank(hash));
    }

    /// Removes `key`'s entry for `hash`, and the torrent if it was the last.
    fn remove_entry(&mut self, hash: InfoHash, key: SocketAddr) {
        let Some(torrent) = self.torrents.get(&hash) else {
            return;
        };
        let Some(i) = torrent.peers.iter().position(|p| self.key(p.addr) == key) else {
            return;
        };
        if torrent.peers.len() == 1 {
            self.remove_torrent(hash);
            return;
        }
        self.update(hash, |t| {
            t.peers.swap_remove(i);
            t.newest = t.peers.iter().map(|p| p.at).max().unwrap_or(t.newest);
        });
        self.unlink(key, hash);
        self.entries -= 1;
    }

    /// Removes a torrent and all its entries.
    fn remove_torrent(&mut self, hash: InfoHash) {
        let Some(torrent) = self.torrents.remove(&hash) else {
            return;
        };
        self.ranks.remove(&torrent.rank(hash));
        self.hashes.swap_remove(torrent.pos);
        if let Some(moved) = self.hashes.get(torrent.pos) {
            self.torrents
                .get_mut(moved)
                .expect("every listed hash is stored")
                .pos = torrent.pos;
        }
        for p in &torrent.peers {
            self.unlink(self.key(p.addr), hash);
        }
        self.entries -= torrent.peers.len();
    }

    /// Forgets that `key` has an entry for `hash`.
    fn unlink(&mut self, key: SocketAddr, hash: InfoHash) {
        unlink(&mut self.sources, key, hash);
    }
}

/// The source of `addr` when `restrict` ([`StoreConfig::restrict_ips`]), else the address
/// itself (IPv4-mapped addresses read as IPv4).
fn key_of(restrict: bool, addr: SocketAddr) -> SocketAddr {
    if restrict {
        SocketAddr::new(Source::of(addr.ip()).ip(), 0)
    } else {
        SocketAddr::new(addr.ip().to_canonical(), addr.port())
    }
}

/// Forgets that `key` has an entry for `hash` in `sources`.
fn unlink(sources: &mut HashMap<SocketAddr, Vec<InfoHash>>, key: SocketAddr, hash: InfoHash) {
    if let Some(list) = sources.get_mut(&key) {
        list.retain(|h| *h != hash);
        if list.is_empty() {
            sources.remove(&key);
        }
    }
}

/// Leaves a uniformly random selection of at most `max` of `items` in it, in random order.
fn partial_shuffle<T>(items: &mut Vec<T>, max: usize, rng: &mut fastrand::Rng) {
    if items.len() <= max {
        return;
    }
    for i in 0..max {
        let j = rng.usize(i..items.len());
        items.swap(i, j);
    }
    items.truncate(max);
}
