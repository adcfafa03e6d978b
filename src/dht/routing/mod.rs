//! The routing table (BEP 5): the nodes we know, more of them the closer their ids are to
//! ours, in buckets of K = 8 that split around our own id.
//!
//! Bucket `i` holds the nodes whose ids share exactly `i` leading bits with ours; the last
//! bucket holds all the nodes sharing at least as many. When the last bucket is full and a
//! node that answered us wants in, it splits in two (standard Kademlia: only the bucket
//! holding our own id ever splits), so there are at most 160 buckets.
//!
//! Only nodes that answered one of our queries are live; nodes we only heard of (in
//! `nodes` lists, or because they queried us) wait in the bucket's bounded replacement
//! cache until a ping confirms them ([`RoutingTable::nodes_to_ping`]). A full bucket takes
//! a newcomer only in place of a bad node; a bad node stays until a confirmed replacement
//! exists, so the table does not empty itself while we are offline.
//!
//! One table serves one address family (BEP 32): the node keeps one for IPv4 and one for
//! IPv6. Memory is bounded: at most 160 buckets of [`Config::bucket_size`] live nodes and
//! [`Config::replacements`] cached ones, whatever arrives.

mod node;
#[cfg(test)]
mod tests;
mod upkeep;

pub use node::{Contact, Node, NodeState};

use super::id::{NodeId, ID_BITS};
use super::krpc::NodeInfo;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Nodes per bucket (BEP 5's K).
pub const K: usize = 8;

/// The table's rules; [`Config::default`] is BEP 5's.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Live nodes per bucket: K = 8.
    pub bucket_size: usize,
    /// Nodes waiting in each bucket's replacement cache: 8.
    pub replacements: usize,
    /// Queries a node may fail to answer in a row before it is bad: 3.
    pub max_failures: u8,
    /// How long an answer keeps a node good: 15 minutes.
    pub good_for: Duration,
    /// A bucket with no change for this long is refreshed: 15 minutes.
    pub refresh_after: Duration,
    /// Least time between two pings proposed to one node: 1 minute.
    pub ping_retry: Duration,
    /// libtorrent's restriction against one host filling the table: at most one node per
    /// IP address in the whole table, and per /24 (IPv4) or /64 (IPv6) in one bucket. On
    /// by default; tests whose nodes share one /24 turn it off.
    pub restrict_ips: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bucket_size: K,
            replacements: K,
            max_failures: 3,
            good_for: Duration::from_secs(15 * 60),
            refresh_after: Duration::from_secs(15 * 60),
            ping_retry: Duration::from_secs(60),
            restrict_ips: true,
        }
    }
}

/// What [`RoutingTable::insert`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Insert {
    /// The node is live now (new, promoted from the cache, or in place of a bad node).
    Added,
    /// The node was known; its times are updated.
    Updated,
    /// The node waits in its bucket's replacement cache.
    Cached,
    /// The node was not entered.
    Refused(Refusal),
}

/// Why a node was not entered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// It has our own id.
    OwnId,
    /// Its address is excluded (a bootstrap router).
    Excluded,
    /// Port 0, or an unspecified, multicast or broadcast address.
    InvalidAddress,
    /// Another id is at this address; only that address answering with the new id
    /// replaces it.
    AddressTaken,
    /// This id is at another address.
    IdTaken,
    /// Another node has this IP address ([`Config::restrict_ips`]).
    SameIp,
    /// A node of the same /24 or /64 is in this bucket ([`Config::restrict_ips`]).
    SameSubnet,
    /// The bucket is full of nodes that are not bad and its cache of better candidates.
    Full,
}

/// Counts for a health report.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Health {
    pub buckets: usize,
    pub good: usize,
    pub questionable: usize,
    pub bad: usize,
    /// Nodes waiting in replacement caches.
    pub replacements: usize,
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    live: Vec<Node>,
    replacements: Vec<Node>,
    /// BEP 5's "last changed": a node added, replaced, or answering. `None`: never.
    last_changed: Option<Instant>,
}

/// The routing table of one address family. Sans-IO: the node tells it what happened
/// ([`RoutingTable::insert`], [`RoutingTable::failed`]) and asks what to do
/// ([`RoutingTable::nodes_to_ping`], [`RoutingTable::needs_refresh`]).
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own: NodeId,
    config: Config,
    buckets: Vec<Bucket>,
    /// Addresses never entered: the bootstrap routers.
    excluded: HashSet<SocketAddr>,
    /// Every node, live or cached, by address.
    by_addr: HashMap<SocketAddr, NodeId>,
    /// Nodes per IP address, live or cached.
    ips: HashMap<IpAddr, u32>,
    rng: fastrand::Rng,
}

impl RoutingTable {
    /// An empty table around our id `own`.
    pub fn new(own: NodeId, config: Config) -> RoutingTable {
        RoutingTable::with_rng(own, config, fastrand::Rng::new())
    }

    /// An empty table drawing refresh targets from `rng` (seeded in tests).
    pub fn with_rng(own: NodeId, config: Config, rng: fastrand::Rng) -> RoutingTable {
        RoutingTable {
            own,
            config,
            buckets: vec![Bucket::default()],
            excluded: HashSet::new(),
            by_addr: HashMap::new(),
            ips: HashMap::new(),
            rng,
        }
    }

    /// Our id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    /// The rules in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Never enter a node at `addr` (a bootstrap router: it answers, but serves everyone
    /// and must not crowd our buckets); one already there is dropped.
    pub fn exclude(&mut self, addr: SocketAddr) {
        self.excluded.insert(addr);
        if let Some((b, live, i)) = self.find(addr) {
            self.take(b, live, i);
            if live {
                self.promote(b);
            }
        }
    }

    /// Live nodes.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.live.len()).sum()
    }

    /// Whether there is no live node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buckets (1 to 160).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The live nodes, bucket by bucket (what to save for a restart).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.buckets.iter().flat_map(|b| b.live.iter())
    }

    /// The node at `addr`, live or cached.
    pub fn get(&self, addr: SocketAddr) -> Option<&Node> {
        let (b, live, i) = self.find(addr)?;
        let bucket = &self.buckets[b];
        Some(if live {
            &bucket.live[i]
        } else {
            &bucket.replacements[i]
        })
    }

    /// Whether the node at `addr` is live (not just cached).
    pub fn is_live(&self, addr: SocketAddr) -> bool {
        self.find(addr).is_some_and(|(_, live, _)| live)
    }

    /// Enters or updates the node `id` at `addr` after `contact` at `now`. A node that
    /// answered us goes live if its bucket has room (splitting the last bucket if need
    /// be) or a bad node to replace, else waits in the cache; a node only heard of, or
    /// only querying us, waits in the cache until it answers a ping.
    pub fn insert(
        &mut self,
        now: Instant,
        id: NodeId,
        addr: SocketAddr,
        contact: Contact,
    ) -> Insert {
        if id == self.own {
            return Insert::Refused(Refusal::OwnId);
        }
        if self.excluded.contains(&addr) {
            return Insert::Refused(Refusal::Excluded);
        }
        if !valid(addr) {
            return Insert::Refused(Refusal::InvalidAddress);
        }
        if let Some(&known) = self.by_addr.get(&addr) {
            if known == id {
                return self.update(now, addr, contact);
            }
            if contact != Contact::Responded {
                return Insert::Refused(Refusal::AddressTaken);
            }
            // The address answered with a new id: the node restarted; forget the old one.
            if let Some((b, live, i)) = self.find(addr) {
                self.take(b, live, i);
                if live {
                    self.promote(b);
                }
            }
        }
        let b = self.bucket_index(&id);
        if let Some(other) = self.buckets[b]
            .live
            .iter()
            .chain(&self.buckets[b].replacements)
            .find(|n| n.id() == id)
        {
            // A heard-of address may be stale; one that answered is not given up.
            if other.confirmed() || contact != Contact::Responded {
                return Insert::Refused(Refusal::IdTaken);
            }
            let other = other.addr();
            if let Some((b, live, i)) = self.find(other) {
                self.take(b, live, i);
            }
        }
        if self.config.restrict_ips {
            if self.ips.contains_key(&addr.ip()) {
                return Insert::Refused(Refusal::SameIp);
            }
            let bucket = &self.buckets[b];
            if bucket
                .live
                .iter()
                .chain(&bucket.replacements)
                .any(|n| same_subnet(n.addr().ip(), addr.ip()))
            {
                return Insert::Refused(Refusal::SameSubnet);
            }
        }
        let mut node = Node::new(id, addr, now);
        node.touch(now, contact);
        if contact == Contact::Responded {
            match self.place(now, node) {
                Ok(()) => {
                    self.index(id, addr);
                    return Insert::Added;
                }
                Err(back) => node = back,
            }
        }
        self.cache(node)
    }

    /// A query to `addr` went unanswered. A live node that turns bad gives its place to
    /// the best confirmed replacement, if there is one; a cached node that never
    /// answered is dropped at once. Returns the node's state after the failure (`Bad`
    /// if it was dropped), or `None` if no node is at `addr`.
    pub fn failed(&mut self, now: Instant, addr: SocketAddr) -> Option<NodeState> {
        let (b, live, i) = self.find(addr)?;
        let config = self.config;
        let bucket = &mut self.buckets[b];
        if live {
            let node = &mut bucket.live[i];
            node.fail();
            let state = node.state(now, &config);
            if state == NodeState::Bad && bucket.replacements.iter().any(Node::confirmed) {
                self.take(b, true, i);
                self.promote(b);
            }
            Some(state)
        } else {
            let node = &mut bucket.replacements[i];
            node.fail();
            let state = node.state(now, &config);
            if !node.confirmed() || state == NodeState::Bad {
                self.take(b, false, i);
                return Some(NodeState::Bad);
            }
            Some(state)
        }
    }

    /// The `n` live nodes closest to `target` by XOR distance, closest first; bad nodes
    /// are left out.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<NodeInfo> {
        // Bucket c (c = target's bucket) holds the closest nodes; all buckets after it
        // come next (they differ from the target first at bit c); then buckets c-1, c-2,
        // ... each farther than the one before. So whole groups are taken in that order
        // until n nodes are found, and only those are sorted.
        let c = self.bucket_index(target);
        let groups = std::iter::once(c..c + 1)
            .chain(std::iter::once(c + 1..self.buckets.len()))
            .chain((0..c).rev().map(|b| b..b + 1));
        let not_bad = |node: &&Node| node.failures() < self.config.max_failures;
        let mut found: Vec<&Node> = Vec::new();
        for group in groups {
            if found.len() >= n {
                break;
            }
            found.extend(
                self.buckets[group]
                    .iter()
                    .flat_map(|b| b.live.iter())
                    .filter(not_bad),
            );
        }
        found.sort_by_key(|node| node.id().distance(target));
        found.truncate(n);
        found.into_iter().map(Node::info).collect()
    }

    /// The bucket `id` belongs in.
    fn bucket_index(&self, id: &NodeId) -> usize {
        self.own.common_prefix_len(id).min(self.buckets.len() - 1)
    }

    /// Where the node at `addr` is: bucket, live or cached, index.
    fn find(&self, addr: SocketAddr) -> Option<(usize, bool, usize)> {
        let id = self.by_addr.get(&addr)?;
        let b = self.bucket_index(id);
        let bucket = &self.buckets[b];
        if let Some(i) = bucket.live.iter().position(|n| n.addr() == addr) {
            return Some((b, true, i));
        }
        let i = bucket.replacements.iter().position(|n| n.addr() == addr)?;
        Some((b, false, i))
    }

    /// Updates a known node after `contact`; a cached node that answered is placed live
    /// if there is room (or a bad node to replace).
    fn update(&mut self, now: Instant, addr: SocketAddr, contact: Contact) -> Insert {
        let Some((b, live, i)) = self.find(addr) else {
            return Insert::Refused(Refusal::AddressTaken);
        };
        let bucket = &mut self.buckets[b];
        if live {
            bucket.live[i].touch(now, contact);
            if contact == Contact::Responded {
                bucket.last_changed = Some(now);
            }
            return Insert::Updated;
        }
        bucket.replacements[i].touch(now, contact);
        if contact != Contact::Responded {
            return Insert::Updated;
        }
        let node = bucket.replacements.remove(i);
        match self.place(now, node) {
            Ok(()) => Insert::Added,
            Err(node) => {
                // Back to the cache, where its place is still free (a split in between
                // only divided the cache).
                let b = self.bucket_index(&node.id());
                self.buckets[b].replacements.push(node);
                Insert::Updated
            }
        }
    }

    /// Makes a confirmed node live: in a bucket with room (splitting the last bucket
    /// while it is full), or in place of the worst bad node (which is forgotten). Gives
    /// the node back if its bucket has neither. Indexing the node is the caller's.
    fn place(&mut self, now: Instant, node: Node) -> Result<(), Node> {
        loop {
            let b = self.bucket_index(&node.id());
            let can_split = b + 1 == self.buckets.len() && b + 1 < ID_BITS;
            let bucket = &mut self.buckets[b];
            if bucket.live.len() < self.config.bucket_size {
                bucket.live.push(node);
                bucket.last_changed = Some(now);
                return Ok(());
            }
            if can_split {
                self.split_last();
                continue;
            }
            let worst_bad = bucket
                .live
                .iter()
                .enumerate()
                .filter(|(_, n)| n.state(now, &self.config) == NodeState::Bad)
                .max_by_key(|(_, n)| (n.failures(), std::cmp::Reverse(n.last_seen())))
                .map(|(i, _)| i);
            if let Some(i) = worst_bad {
                bucket.last_changed = Some(now);
                let old = std::mem::replace(&mut bucket.live[i], node);
                self.unindex(&old);
                return Ok(());
            }
            return Err(node);
        }
    }

    /// Enters a node in its bucket's replacement cache, in place of the least worthy
    /// one when the cache is full, unless the newcomer is worth no more.
    fn cache(&mut self, node: Node) -> Insert {
        let b = self.bucket_index(&node.id());
        let (id, addr) = (node.id(), node.addr());
        let cache = &mut self.buckets[b].replacements;
        if cache.len() < self.config.replacements {
            cache.push(node);
            self.index(id, addr);
            return Insert::Cached;
        }
        let least = cache
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| n.worth())
            .filter(|(_, least)| least.worth() < node.worth())
            .map(|(i, _)| i);
        let Some(i) = least else {
            return Insert::Refused(Refusal::Full);
        };
        let old = std::mem::replace(&mut cache[i], node);
        self.unindex(&old);
        self.index(id, addr);
        Insert::Cached
    }

    /// Moves the best confirmed replacement of bucket `b` to a free live place.
    fn promote(&mut self, b: usize) {
        let bucket = &mut self.buckets[b];
        if bucket.live.len() >= self.config.bucket_size {
            return;
        }
        let best = bucket
            .replacements
            .iter()
            .enumerate()
            .filter(|(_, n)| n.confirmed())
            .max_by_key(|(_, n)| n.worth())
            .map(|(i, _)| i);
        if let Some(i) = best {
            let node = bucket.replacements.remove(i);
            bucket.live.push(node);
        }
    }

    /// Removes a node, live or cached, and forgets its address.
    fn take(&mut self, b: usize, live: bool, i: usize) -> Node {
        let bucket = &mut self.buckets[b];
        let node = if live {
            bucket.live.remove(i)
        } else {
            bucket.replacements.remove(i)
        };
        self.unindex(&node);
        node
    }

    /// Splits the last bucket: the nodes sharing more bits with our id than its index
    /// move to a new last bucket.
    fn split_last(&mut self) {
        let b = self.buckets.len() - 1;
        let own = self.own;
        let deeper = |n: &Node| own.common_prefix_len(&n.id()) > b;
        let old = &mut self.buckets[b];
        let (moved, kept): (Vec<Node>, Vec<Node>) = old.live.drain(..).partition(deeper);
        old.live = kept;
        let (moved_cache, kept_cache): (Vec<Node>, Vec<Node>) =
            old.replacements.drain(..).partition(deeper);
        old.replacements = kept_cache;
        let last_changed = old.last_changed;
        self.buckets.push(Bucket {
            live: moved,
            replacements: moved_cache,
            last_changed,
        });
    }

    fn index(&mut self, id: NodeId, addr: SocketAddr) {
        if self.by_addr.insert(addr, id).is_none() {
            *self.ips.entry(addr.ip()).or_insert(0) += 1;
        }
    }

    fn unindex(&mut self, node: &Node) {
        if self.by_addr.remove(&node.addr()).is_some() {
            let ip = node.addr().ip();
            if let Some(count) = self.ips.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    self.ips.remove(&ip);
                }
            }
        }
    }
}

/// Whether a node could be reached at `addr`.
fn valid(addr: SocketAddr) -> bool {
    let ip = addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}

/// Whether two addresses are in the same /24 (IPv4) or /64 (IPv6).
fn same_subnet(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..8] == b.octets()[..8],
        _ => false,
    }
}
