//! The DHT node: one routing table, the queries we sent and await, the lookups running,
//! and the answers to others' queries, over one UDP socket the session owns.
//!
//! Sans-IO, like the torrent engine: datagrams in ([`Dht::handle_datagram`]), datagrams
//! out ([`Dht::poll_transmit`]), events out ([`Dht::poll_event`]), time passed in
//! ([`Dht::handle_timeout`] when [`Dht::poll_timeout`] is due). The caller never needs to
//! know KRPC.
//!
//! - Our queries carry a 2-byte transaction id; an answer must come from the address the
//!   query went to, within [`QUERY_TIMEOUT`], or it is dropped. At most
//!   [`MAX_PENDING`] queries are outstanding (a lookup waits for room).
//! - Bootstrap: while the table holds fewer than [`K`] nodes, the configured routers are
//!   asked for nodes near our id (they never enter the table), and a lookup of our own id
//!   fills the table with nodes that answer.
//! - Upkeep: questionable nodes are pinged, quiet buckets refreshed by a lookup of a
//!   random id in their range.
//! - [`Dht::get_peers`] runs a lookup of an info hash; peers found come out as
//!   [`DhtEvent::Peers`] as they arrive; with an announce port, the 8 closest nodes that
//!   gave a token are then told we are a peer (`announce_peer`).

mod identity;
mod lookups;
mod reachability;

use lookups::Running;

#[cfg(test)]
mod tests;

use super::id::NodeId;
use super::krpc::{Body, Message, Method, NodeInfo, Query, Response, TransactionId, Want};
use super::lookup::{Kind, Lookup, LookupStats, SLOW_AFTER};
use super::responder::{Responder, ResponderConfig, Tables};
use super::routing::{Config, Contact, Health, RoutingTable, K};
use crate::core::InfoHash;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long an answer may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(4);
/// Queries outstanding at most.
pub const MAX_PENDING: usize = 256;
/// Lookups running at most (more wait in a queue of the same size, then are refused).
pub const MAX_LOOKUPS: usize = 16;
/// The window in which at most [`BOOTSTRAP_ROUNDS`] bootstrap rounds go out.
const BOOTSTRAP_EVERY: Duration = Duration::from_secs(10);
/// Bootstrap rounds per [`BOOTSTRAP_EVERY`]: enough for the table's own lookup and the first
/// torrents' lookups at start (each asks the routers its own question), few enough that a
/// thousand torrents starting on an empty table do not flood the public routers.
const BOOTSTRAP_ROUNDS: usize = 4;
/// The upkeep tick: pings and refreshes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// Longest wait between two lookups of our own id while the table stays small.
const MAX_FILL_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// How long a query of ours makes the node asked "recent" (its queries then prove
/// nothing about our reachability).
const RECENT_FOR: Duration = Duration::from_secs(5 * 60);
/// Recent destinations remembered at most.
const MAX_RECENT: usize = 4096;
/// Pings sent per upkeep tick at most.
const PINGS_PER_TICK: usize = 8;

/// How the node behaves.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// Routers asked for nodes while the table is small (never added to it).
    pub bootstrap: Vec<SocketAddr>,
    /// The routing table's rules (tests on one /24 turn `restrict_ips` off).
    pub routing: Config,
    /// BEP 43: answer no queries and say so in ours.
    pub read_only: bool,
    /// The families we can send to (a socket for each): lookups run in these.
    pub ipv4: bool,
    pub ipv6: bool,
    /// The families our peer port takes connections in: we announce ourselves only in
    /// those families' DHTs (and still look for peers in every one).
    pub peers_ipv4: bool,
    pub peers_ipv6: bool,
    /// Answers to others: rate limits, the peer store's caps.
    pub responder: ResponderConfig,
    /// A state saved by an earlier run ([`Dht::save`]): its id is kept and its nodes are
    /// pinged at start.
    pub saved: Option<super::persist::Saved>,
    /// Seed for ids, transaction ids and samples.
    pub seed: u64,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            bootstrap: Vec::new(),
            routing: Config::default(),
            read_only: false,
            ipv4: true,
            ipv6: false,
            peers_ipv4: true,
            peers_ipv6: true,
            responder: ResponderConfig::default(),
            saved: None,
            seed: fastrand::u64(..),
        }
    }
}

/// What the node tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtEvent {
    /// Peers of `info_hash` found by a lookup (new ones only).
    Peers {
        info_hash: InfoHash,
        peers: Vec<SocketAddr>,
    },
    /// A `get_peers` lookup ended: how it went, and to how many nodes we announced.
    LookupDone {
        info_hash: InfoHash,
        /// The DHT it ran in (a torrent looks in each family's).
        family: Family,
        stats: LookupStats,
        peers: usize,
        announced: usize,
    },
}

/// An address family. The node keeps one routing table per family and runs one lookup
/// per family (BEP 32): the IPv4 and IPv6 DHTs are separate networks, each with its own
/// closest nodes for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.ip().to_canonical().is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Why a query went out, to know what to do with the answer.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Ping,
    /// A router asked the query of lookup `id` (its nodes seed every lookup running).
    Bootstrap(u64),
    /// A query of lookup `id`.
    Lookup(u64),
    Announce,
}

#[derive(Debug)]
struct Pending {
    addr: SocketAddr,
    sent: Instant,
    purpose: Purpose,
}

/// Figures for people and scripts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DhtStats {
    pub id: String,
    /// Where others see us, once they agree (BEP 42).
    pub external_ip: Option<String>,
    /// Whether our id is derived from that address (BEP 42; exempt addresses keep theirs).
    pub id_secure: bool,
    /// Whether our queries say read-only (BEP 43): configured, or no query reached us.
    pub read_only: bool,
    /// Queries from other nodes that reached us (a sign we are reachable).
    pub queries_received: u64,
    /// Nodes in both tables.
    pub nodes: usize,
    /// Of which IPv6 (BEP 32).
    pub nodes6: usize,
    pub good: usize,
    pub questionable: usize,
    pub bad: usize,
    pub buckets: usize,
    pub pending: usize,
    pub lookups: usize,
    pub queries_sent: u64,
    pub queries_answered: u64,
    pub datagrams_in: u64,
    pub bad_datagrams: u64,
}

/// A DHT node; see the module documentation.
pub struct Dht {
    id: NodeId,
    config: DhtConfig,
    routing: RoutingTable,
    /// The IPv6 table (BEP 32).
    routing6: RoutingTable,
    pending: HashMap<u16, Pending>,
    next_tid: u16,
    lookups: HashMap<u64, Running>,
    next_lookup: u64,
    /// Lookups asked for while [`MAX_LOOKUPS`] ran.
    queued: VecDeque<(InfoHash, Option<u16>, Family)>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<DhtEvent>,
    /// Per family, when the last bootstrap rounds went out (at most [`BOOTSTRAP_ROUNDS`]).
    bootstraps: [VecDeque<Instant>; 2],
    next_upkeep: Instant,
    /// Per family: when a small table may look for our neighbours again, and the wait
    /// after that.
    next_fill: [Instant; 2],
    fill_backoff: [Duration; 2],
    /// The table's size when the last such lookup started.
    fill_len: [usize; 2],
    rng: fastrand::Rng,
    responder: Responder,
    counters: Counters,
    /// Where others see us (BEP 42 ids), and when the id last changed for it.
    external: crate::dht::external::ExternalIp,
    last_id_change: Option<Instant>,
    /// Whether others reach us, else BEP 43 read-only.
    reach: reachability::Reachability,
    /// Where we sent queries lately (at most [`MAX_RECENT`]), to tell unsolicited queries.
    recent: HashMap<SocketAddr, Instant>,
    /// The latest time we were given: [`Dht::poll_timeout`] never asks to be woken
    /// before it for what is already past.
    now: Instant,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    queries_sent: u64,
    queries_answered: u64,
    datagrams_in: u64,
    bad_datagrams: u64,
}

impl Dht {
    /// A node with the saved id, or a random one (BEP 42 ids come once we know our
    /// external address); the saved nodes are pinged.
    pub fn new(now: Instant, config: DhtConfig) -> Dht {
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let saved = config.saved.clone();
        let id = saved
            .as_ref()
            .map_or_else(|| NodeId::random(&mut rng), |s| s.id);
        let mut dht = Dht::with_id(now, id, config);
        for node in saved.map(|s| s.nodes).unwrap_or_default() {
            dht.add_node(now, node.addr);
        }
        dht
    }

    /// What to save for the next run: our id and the table's nodes.
    pub fn save(&self) -> super::persist::Saved {
        super::persist::Saved {
            id: self.id,
            nodes: self.nodes_to_save(),
        }
    }

    /// A node with the given id (a saved one, or a test's).
    pub fn with_id(now: Instant, id: NodeId, config: DhtConfig) -> Dht {
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let routing = new_table(id, &config, rng.fork());
        let routing6 = new_table(id, &config, rng.fork());
        Dht {
            id,
            responder: {
                let mut r = Responder::new(now, config.responder, rng.fork());
                r.set_read_only(config.read_only);
                r
            },
            config,
            routing,
            routing6,
            pending: HashMap::new(),
            next_tid: rng.u16(..),
            lookups: HashMap::new(),
            next_lookup: 0,
            queued: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            bootstraps: [VecDeque::new(), VecDeque::new()],
            next_upkeep: now,
            next_fill: [now; 2],
            fill_backoff: [UPKEEP_EVERY; 2],
            fill_len: [0; 2],
            rng,
            counters: Counters::default(),
            external: Default::default(),
            last_id_change: None,
            reach: reachability::Reachability::new(now),
            recent: HashMap::new(),
            now,
        }
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The IPv4 routing table (read only).
    pub fn routing(&self) -> &RoutingTable {
        &self.routing
    }

    /// The IPv6 routing table (read only).
    pub fn routing6(&self) -> &RoutingTable {
        &self.routing6
    }

    fn table(&self, family: Family) -> &RoutingTable {
        match family {
            Family::V4 => &self.routing,
            Family::V6 => &self.routing6,
        }
    }

    fn table_mut(&mut self, family: Family) -> &mut RoutingTable {
        match family {
            Family::V4 => &mut self.routing,
            Family::V6 => &mut self.routing6,
        }
    }

    /// The families we can send to.
    fn families(&self) -> impl Iterator<Item = Family> {
        let (v4, v6) = (self.config.ipv4, self.config.ipv6);
        [(Family::V4, v4), (Family::V6, v6)]
            .into_iter()
            .filter_map(|(f, on)| on.then_some(f))
    }

    /// The table's health and the node's counters.
    pub fn stats(&self, now: Instant) -> DhtStats {
        let (h4, h6): (Health, Health) = (self.routing.health(now), self.routing6.health(now));
        let external = self.external_ip();
        DhtStats {
            id: self.id.to_string(),
            external_ip: external.map(|ip| ip.to_string()),
            id_secure: external.is_some_and(|ip| self.id.is_secure_for(ip)),
            read_only: self.read_only(),
            queries_received: self.reach.queries(),
            nodes: self.routing.len() + self.routing6.len(),
            nodes6: self.routing6.len(),
            good: h4.good + h6.good,
            questionable: h4.questionable + h6.questionable,
            bad: h4.bad + h6.bad,
            buckets: self.routing.bucket_count(),
            pending: self.pending.len(),
            lookups: self.lookups.len(),
            queries_sent: self.counters.queries_sent,
            queries_answered: self.counters.queries_answered,
            datagrams_in: self.counters.datagrams_in,
            bad_datagrams: self.counters.bad_datagrams,
        }
    }

    /// A node to try (from a peer's BEP 5 `port` message, or a saved table): pinged, and
    /// added once it answers.
    pub fn add_node(&mut self, now: Instant, addr: SocketAddr) {
        self.now = self.now.max(now);
        let addr = canonical(addr);
        let family = Family::of(&addr);
        if self.families().any(|f| f == family)
            && self.table(family).get(addr).is_none()
            && self.pending.len() < MAX_PENDING
        {
            self.send_query(now, addr, Method::Ping, Purpose::Ping);
        }
    }

    /// Looks for peers of `info_hash`; with `announce_port`, announces us once done.
    /// Peers other nodes announced to us come out at once.
    pub fn get_peers(&mut self, now: Instant, info_hash: InfoHash, announce_port: Option<u16>) {
        self.now = self.now.max(now);
        let families: Vec<Family> = self.families().collect();
        for &family in &families {
            let local = self.responder.store().get_peers(
                now,
                &info_hash,
                100,
                family == Family::V6,
                &mut self.rng,
            );
            if !local.is_empty() {
                self.events.push_back(DhtEvent::Peers {
                    info_hash,
                    peers: local,
                });
            }
        }
        for family in families {
            let takes_peers = match family {
                Family::V4 => self.config.peers_ipv4,
                Family::V6 => self.config.peers_ipv6,
            };
            let announce_port = announce_port.filter(|_| takes_peers);
            if self.lookups.len() >= MAX_LOOKUPS {
                if self.queued.len() < MAX_LOOKUPS * 4
                    && !self
                        .queued
                        .iter()
                        .any(|(h, _, f)| *h == info_hash && *f == family)
                {
                    self.queued.push_back((info_hash, announce_port, family));
                }
                continue;
            }
            self.start_lookup(
                now,
                NodeId::from(info_hash),
                Some(info_hash),
                announce_port,
                family,
            );
        }
    }

    /// A datagram from `from`: a query to answer, or an answer to one of ours.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.now = self.now.max(now);
        // A dual-stack socket reports IPv4 senders as IPv4-mapped IPv6 addresses.
        let from = canonical(from);
        self.counters.datagrams_in += 1;
        let message = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.counters.bad_datagrams += 1;
                if let Some(reply) = self.responder.handle_malformed(now, from, &e) {
                    self.out.push_back((from, reply.to_bytes()));
                }
                return;
            }
        };
        match message.body {
            Body::Query(ref q) => self.on_query(now, from, &message, q),
            Body::Response(ref r) => {
                if self.on_answer(now, from, &message.transaction, Ok(r)) {
                    if let Some(seen) = message.ip {
                        self.external_ip_vote(now, from.ip(), seen.ip());
                    }
                }
            }
            Body::Error(_) => {
                self.on_answer(now, from, &message.transaction, Err(()));
            }
        }
        self.drive(now);
    }

    /// Time passed: expired queries fail, lookups move on, the table is kept up.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let expired: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent) >= QUERY_TIMEOUT)
            .map(|(t, _)| *t)
            .collect();
        for tid in expired {
            if let Some(p) = self.pending.remove(&tid) {
                self.table_mut(Family::of(&p.addr)).failed(now, p.addr);
                if let Purpose::Lookup(id) = p.purpose {
                    if let Some(r) = self.lookups.get_mut(&id) {
                        r.lookup.on_failure(p.addr);
                    }
                }
            }
        }
        if now >= self.next_upkeep {
            self.next_upkeep = now + UPKEEP_EVERY;
            let nodes = self.routing.len() + self.routing6.len();
            self.reach.tick(now, nodes);
            self.adopt_external_ip(now);
            self.recent
                .retain(|_, &mut t| now.saturating_duration_since(t) < RECENT_FOR);
            self.upkeep(now);
        }
        self.drive(now);
    }

    /// When [`Dht::handle_timeout`] is next due: the next upkeep, the next query to
    /// expire, or the next lookup query to turn slow (which frees its lookup a slot).
    /// After a `handle_*` call at `now`, never before `now` unless something is due then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut at = self.next_upkeep;
        if let Some(expiry) = self.pending.values().map(|p| p.sent + QUERY_TIMEOUT).min() {
            at = at.min(expiry);
        }
        if !self.lookups.is_empty() {
            // Only a query still to turn slow counts: one already slow changes nothing
            // more until it expires (counting it would ask to be woken in the past,
            // again and again).
            let slow = self
                .pending
                .values()
                .filter(|p| matches!(p.purpose, Purpose::Lookup(_)))
                .map(|p| p.sent + SLOW_AFTER)
                .filter(|&t| t > self.now)
                .min();
            if let Some(slow) = slow {
                at = at.min(slow);
            }
        }
        Some(at)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DhtEvent> {
        self.events.pop_front()
    }

    /// Whether our queries say `ro=1` (BEP 43): configured so, or nobody reaches us.
    pub fn read_only(&self) -> bool {
        self.config.read_only || self.reach.read_only()
    }

    /// Nodes worth saving for the next start (the live ones).
    pub fn nodes_to_save(&self) -> Vec<NodeInfo> {
        self.routing
            .nodes()
            .chain(self.routing6.nodes())
            .map(|n| n.info())
            .collect()
    }

    fn on_query(&mut self, now: Instant, from: SocketAddr, message: &Message, q: &Query) {
        if !q.read_only {
            self.table_mut(Family::of(&from))
                .insert(now, q.id, from, Contact::Queried);
            // A query from a node we just wrote to may come through the hole our own
            // datagram opened in a NAT: only an unsolicited one shows we are reachable.
            let solicited = self
                .recent
                .get(&from)
                .is_some_and(|&t| now.saturating_duration_since(t) < RECENT_FOR);
            if !solicited {
                self.reach.on_query(now);
            }
        }
        let tables = Tables {
            own: self.id,
            v4: Some(&self.routing),
            v6: Some(&self.routing6),
        };
        if let Some(reply) = self
            .responder
            .handle_query(now, from, message.transaction, q, tables)
        {
            self.out.push_back((from, reply.to_bytes()));
        }
    }

    /// An answer (or error) to one of our queries; whether it was a valid answer to one.
    fn on_answer(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: &TransactionId,
        answer: Result<&Response, ()>,
    ) -> bool {
        let Some(key) = <[u8; 2]>::try_from(tid.as_bytes())
            .ok()
            .map(u16::from_be_bytes)
        else {
            return false;
        };
        match self.pending.get(&key) {
            Some(p) if p.addr == from => {}
            // Not ours, or from another address than we asked: dropped.
            _ => return false,
        }
        let Some(p) = self.pending.remove(&key) else {
            return false;
        };
        let r = match answer {
            Ok(r) => r,
            Err(()) => {
                if let Purpose::Lookup(id) = p.purpose {
                    if let Some(run) = self.lookups.get_mut(&id) {
                        run.lookup.on_failure(from);
                    }
                }
                return false;
            }
        };
        self.counters.queries_answered += 1;
        let bootstrap = matches!(p.purpose, Purpose::Bootstrap(_));
        if !bootstrap {
            self.table_mut(Family::of(&from))
                .insert(now, r.id, from, Contact::Responded);
        }
        let nodes: Vec<NodeInfo> = if from.is_ipv4() {
            r.nodes.clone()
        } else {
            r.nodes6.clone()
        };
        match p.purpose {
            Purpose::Lookup(id) => {
                if let Some(run) = self.lookups.get_mut(&id) {
                    run.lookup
                        .on_response(from, r.id, &nodes, &r.values, r.token);
                }
            }
            Purpose::Bootstrap(asker) => {
                // The lookup that asked takes the whole answer (peers and token too); the
                // router's nodes seed every other lookup running in that family.
                let family = Family::of(&from);
                for (&id, run) in self.lookups.iter_mut() {
                    if id == asker {
                        run.lookup
                            .on_router_response(from, r.id, &nodes, &r.values, r.token);
                    } else if run.family == family {
                        run.lookup.add_candidates(&nodes);
                    }
                }
            }
            Purpose::Ping | Purpose::Announce => {}
        }
        true
    }

    /// Pings questionable nodes, refreshes quiet buckets, bootstraps a small table.
    fn upkeep(&mut self, now: Instant) {
        let families: Vec<Family> = self.families().collect();
        for family in families {
            let running = self.lookups.values().any(|r| r.family == family);
            let slot = family as usize;
            let len = self.table(family).len();
            if len >= K || len > self.fill_len[slot] {
                // Full, or growing: look again at the next tick if need be.
                self.fill_backoff[slot] = UPKEEP_EVERY;
                self.next_fill[slot] = self.next_fill[slot].min(now);
            }
            if len < K && !running && now >= self.next_fill[slot] {
                // A small table looks for our neighbours; while it stops growing (a
                // private swarm of a few nodes), less and less often.
                self.fill_len[slot] = len;
                self.next_fill[slot] = now + self.fill_backoff[slot];
                self.fill_backoff[slot] = (self.fill_backoff[slot] * 2).min(MAX_FILL_BACKOFF);
                let own = self.id;
                self.start_lookup(now, own, None, None, family);
            }
            for node in self.table_mut(family).nodes_to_ping(now, PINGS_PER_TICK) {
                if self.pending.len() >= MAX_PENDING {
                    break;
                }
                self.send_query(now, node.addr, Method::Ping, Purpose::Ping);
            }
            if self.lookups.len() < MAX_LOOKUPS / 2 {
                if let Some(target) = self.table_mut(family).needs_refresh(now).into_iter().next() {
                    self.start_lookup(now, target, None, None, family);
                }
            }
        }
    }

    fn send_query(&mut self, now: Instant, addr: SocketAddr, method: Method, purpose: Purpose) {
        let mut tid = self.next_tid;
        while self.pending.contains_key(&tid) {
            tid = tid.wrapping_add(1);
        }
        self.next_tid = tid.wrapping_add(1).wrapping_add(self.rng.u16(..16));
        let transaction = TransactionId::new(&tid.to_be_bytes()).expect("2 bytes fit");
        let mut message = Message::query(transaction, self.id, method);
        if let Body::Query(q) = &mut message.body {
            q.read_only = self.read_only();
        }
        if self.recent.len() < MAX_RECENT || self.recent.contains_key(&addr) {
            self.recent.insert(addr, now);
        }
        self.out.push_back((addr, message.to_bytes()));
        self.pending.insert(
            tid,
            Pending {
                addr,
                sent: now,
                purpose,
            },
        );
        self.counters.queries_sent += 1;
    }
}

/// A routing table for `id` that never takes the routers.
fn new_table(id: NodeId, config: &DhtConfig, rng: fastrand::Rng) -> RoutingTable {
    let mut table = RoutingTable::with_rng(id, config.routing, rng);
    for &addr in &config.bootstrap {
        table.exclude(addr);
    }
    table
}

/// `addr` with an IPv4-mapped IPv6 address as plain IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
