//! One iterative lookup (BEP 5): `find_node` or `get_peers` toward a target, closest
//! first, [`ALPHA`] queries in flight, stopping once the [`K`] closest nodes known have
//! all answered.
//!
//! Sans-IO: the node asks [`Lookup::next_query`] whom to query, sends it, and reports the
//! answer ([`Lookup::on_response`]) or its absence ([`Lookup::on_failure`]). A query
//! unanswered for [`SLOW_AFTER`] no longer counts against [`ALPHA`] (a slow node does not
//! hold the lookup back; its late answer still counts), as libtorrent does. Everything is
//! bounded: at most [`MAX_CANDIDATES`] nodes are kept (the closest), at most
//! [`MAX_QUERIES`] queries are sent, at most [`MAX_PEERS`] peers collected.

use super::id::{Distance, NodeId};
use super::krpc::{NodeInfo, Token};
use super::routing::K;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Queries in flight at once.
pub const ALPHA: usize = 3;
/// Nodes kept as candidates (the closest ones).
pub const MAX_CANDIDATES: usize = 64;
/// Queries one lookup may send.
pub const MAX_QUERIES: usize = 96;
/// Peers one `get_peers` lookup collects.
pub const MAX_PEERS: usize = 500;
/// A query unanswered this long stops holding a slot (it may still answer).
pub const SLOW_AFTER: Duration = Duration::from_millis(1500);

/// What the lookup asks each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    FindNode,
    GetPeers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not asked yet.
    Fresh,
    /// Asked at this time.
    Asked(Instant),
    /// Answered (with its token, for a later announce).
    Answered(Option<Token>),
    /// Did not answer, or answered garbage.
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    info: NodeInfo,
    state: State,
}

/// A node that answered a `get_peers`, with the token to announce to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announceable {
    pub node: NodeInfo,
    pub token: Token,
}

/// Figures of one lookup (for the simulation and the logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    pub queries: usize,
    pub answers: usize,
    pub failures: usize,
    /// The longest chain of answers that led to the nodes found (hops).
    pub rounds: usize,
}

/// One lookup; see the module documentation.
#[derive(Debug)]
pub struct Lookup {
    target: NodeId,
    kind: Kind,
    /// Candidates by distance to the target.
    candidates: BTreeMap<Distance, Candidate>,
    /// Addresses ever seen in this lookup (one candidate per address).
    seen: HashSet<SocketAddr>,
    peers: Vec<SocketAddr>,
    peer_set: HashSet<SocketAddr>,
    /// The round in which each candidate was learned (0: a seed).
    depth: BTreeMap<Distance, usize>,
    stats: LookupStats,
}

impl Lookup {
    /// A lookup of `target` starting from `seeds` (the routing table's closest nodes).
    pub fn new(target: NodeId, kind: Kind, seeds: &[NodeInfo]) -> Lookup {
        let mut lookup = Lookup {
            target,
            kind,
            candidates: BTreeMap::new(),
            seen: HashSet::new(),
            peers: Vec::new(),
            peer_set: HashSet::new(),
            depth: BTreeMap::new(),
            stats: LookupStats::default(),
        };
        for s in seeds {
            lookup.add(*s, 0);
        }
        lookup
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn stats(&self) -> LookupStats {
        self.stats
    }

    /// Peers collected so far (`get_peers`).
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// The next node to query now, if the lookup wants one: the closest not yet asked,
    /// while fewer than [`ALPHA`] queries are pending (slow ones not counted) and it is
    /// not done. Marks it asked.
    pub fn next_query(&mut self, now: Instant) -> Option<NodeInfo> {
        if self.is_done(now) || self.stats.queries >= MAX_QUERIES {
            return None;
        }
        let pending = self
            .candidates
            .values()
            .filter(|c| matches!(c.state, State::Asked(at) if now.saturating_duration_since(at) < SLOW_AFTER))
            .count();
        if pending >= ALPHA {
            return None;
        }
        // Only the K closest that may still answer are worth asking: beyond them, a node
        // cannot improve the result unless closer ones fail.
        let mut live = 0;
        for c in self.candidates.values_mut() {
            if c.state == State::Failed {
                continue;
            }
            live += 1;
            if live > K {
                return None;
            }
            if c.state == State::Fresh {
                c.state = State::Asked(now);
                self.stats.queries += 1;
                return Some(c.info);
            }
        }
        None
    }

    /// `from` answered: the nodes it named join the candidates, the peers it gave are
    /// collected, its token is kept. An answer from a node not asked is ignored.
    pub fn on_response(
        &mut self,
        from: SocketAddr,
        id: NodeId,
        nodes: &[NodeInfo],
        values: &[SocketAddr],
        token: Option<Token>,
    ) {
        let Some((dist, c)) = self
            .candidates
            .iter_mut()
            .find(|(_, c)| c.info.addr == from)
        else {
            return;
        };
        if !matches!(c.state, State::Asked(_)) {
            return;
        }
        let dist = *dist;
        if c.info.id != id {
            // It answered with another id than the one we were told: the id it gives is
            // what it is, but its place in the order was wrong; keep it as failed.
            c.state = State::Failed;
            self.stats.failures += 1;
            return;
        }
        c.state = State::Answered(token);
        self.stats.answers += 1;
        let round = self.depth.get(&dist).copied().unwrap_or(0) + 1;
        self.stats.rounds = self.stats.rounds.max(round);
        for n in nodes {
            self.add(*n, round);
        }
        self.collect(values);
    }

    /// Keeps the peers of a `get_peers` answer, up to [`MAX_PEERS`].
    fn collect(&mut self, values: &[SocketAddr]) {
        if self.kind != Kind::GetPeers {
            return;
        }
        for &p in values {
            if self.peers.len() >= MAX_PEERS {
                break;
            }
            if p.port() != 0 && self.peer_set.insert(p) {
                self.peers.push(p);
            }
        }
    }

    /// `from` did not answer (timed out) or answered with an error.
    pub fn on_failure(&mut self, from: SocketAddr) {
        if let Some(c) = self.candidates.values_mut().find(|c| c.info.addr == from) {
            if matches!(c.state, State::Asked(_)) {
                c.state = State::Failed;
                self.stats.failures += 1;
            }
        }
    }

    /// Whether the lookup is over: the [`K`] closest candidates that did not fail have
    /// all answered (or nothing is left to ask and nothing is pending), or the query
    /// budget is spent with nothing pending. A query silent for [`SLOW_AFTER`] is not
    /// waited for (a lost datagram among the closest would hold the end for the whole
    /// query timeout: in the 10,000-node simulation that was the entire p95 tail).
    pub fn is_done(&self, now: Instant) -> bool {
        let mut considered = 0;
        let mut waiting = false;
        for c in self.candidates.values() {
            match c.state {
                State::Failed => continue,
                State::Fresh if self.stats.queries < MAX_QUERIES => return false,
                State::Fresh => {}
                State::Asked(at) => {
                    if now.saturating_duration_since(at) < SLOW_AFTER {
                        waiting = true;
                    }
                }
                State::Answered(_) => {}
            }
            considered += 1;
            if considered >= K {
                break;
            }
        }
        !waiting
    }

    /// Whether a query to `addr` is pending in this lookup.
    pub fn is_asked(&self, addr: SocketAddr) -> bool {
        self.candidates
            .values()
            .any(|c| c.info.addr == addr && matches!(c.state, State::Asked(_)))
    }

    /// The closest nodes that answered, at most [`K`].
    pub fn closest_answered(&self) -> Vec<NodeInfo> {
        self.candidates
            .values()
            .filter(|c| matches!(c.state, State::Answered(_)))
            .take(K)
            .map(|c| c.info)
            .collect()
    }

    /// The closest nodes that answered a `get_peers` with a token: where to announce.
    pub fn announce_targets(&self) -> Vec<Announceable> {
        self.candidates
            .values()
            .filter_map(|c| match &c.state {
                State::Answered(Some(token)) => Some(Announceable {
                    node: c.info,
                    token: *token,
                }),
                _ => None,
            })
            .take(K)
            .collect()
    }

    /// A bootstrap router, asked outside the lookup's order (its id was not known), answered
    /// this lookup's query: it joins as an answered node (so a router that keeps peers, such
    /// as a private swarm's own node, gets the announce), and its nodes and peers count as
    /// any answer's do.
    pub fn on_router_response(
        &mut self,
        from: SocketAddr,
        id: NodeId,
        nodes: &[NodeInfo],
        values: &[SocketAddr],
        token: Option<Token>,
    ) {
        if self.candidates.values().any(|c| c.info.addr == from) {
            return self.on_response(from, id, nodes, values, token);
        }
        let dist = self.target.distance(&id);
        if from.port() != 0 && !self.candidates.contains_key(&dist) && self.seen.insert(from) {
            self.candidates.insert(
                dist,
                Candidate {
                    info: NodeInfo { id, addr: from },
                    state: State::Answered(token),
                },
            );
            self.depth.insert(dist, 0);
            self.stats.answers += 1;
        }
        for n in nodes {
            self.add(*n, 1);
        }
        self.collect(values);
    }

    /// Nodes from elsewhere (a bootstrap router's answer) join the candidates.
    pub fn add_candidates(&mut self, nodes: &[NodeInfo]) {
        for n in nodes {
            self.add(*n, 0);
        }
    }

    /// Adds a candidate learned in round `round`, keeping the closest [`MAX_CANDIDATES`].
    fn add(&mut self, info: NodeInfo, round: usize) {
        if info.addr.port() == 0 || !self.seen.insert(info.addr) {
            return;
        }
        let dist = self.target.distance(&info.id);
        if self.candidates.contains_key(&dist) {
            return;
        }
        if self.candidates.len() >= MAX_CANDIDATES {
            // Make room by dropping the farthest one not asked and not answered (those
            // are kept: their answers still count), if it is farther than this one.
            let Some(far) = self
                .candidates
                .iter()
                .rev()
                .find(|(_, c)| matches!(c.state, State::Fresh | State::Failed))
                .map(|(d, _)| *d)
            else {
                return;
            };
            if dist > far {
                return;
            }
            self.candidates.remove(&far);
            self.depth.remove(&far);
        }
        self.candidates.insert(
            dist,
            Candidate {
                info,
                state: State::Fresh,
            },
        );
        self.depth.insert(dist, round);
    }
}

#[cfg(test)]
mod tests;
