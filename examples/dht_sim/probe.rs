//! The measured lookups: when each started and ended, what its node reported
//! ([`LookupStats`]), whether it found the peer announced, and its critical path in round
//! trips, computed here from the datagrams.
//!
//! The critical path: each `get_peers` query the lookup sends gets a depth. The first
//! queries have depth 1; a query sent on an answer (or error) to a query of depth d has
//! depth d + 1; a query sent for any other reason (a query turned slow or expired, which
//! freed a slot) has the depth of the oldest query still awaited, plus one: that wait was
//! a round trip's worth of time spent. The lookup's chain is the greatest depth completed
//! (answered, or expired) when it ends: round trips in sequence, waits counted as one
//! each. `LookupStats::rounds` counts something else: hops of knowledge (a node learned
//! from a seed's answer is one hop away, however long it waited for one of the
//! [`ALPHA`](battorrent::dht::lookup::ALPHA) slots), so it can be less.

use battorrent::core::InfoHash;
use battorrent::dht::lookup::LookupStats;
use battorrent::dht::node::QUERY_TIMEOUT;
use battorrent::dht::{Body, DhtEvent, Message, Method};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Why the lookup ran.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A peer announcing itself (get_peers, then announce_peer).
    Announce,
    /// A lookup measured: get_peers for a hash someone announced.
    Lookup,
}

/// How a lookup ended.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    pub elapsed: Duration,
    pub stats: LookupStats,
    pub announced: usize,
    /// Round trips in sequence (see the module documentation).
    pub chain: u32,
}

/// One lookup.
#[derive(Debug)]
pub struct Probe {
    pub kind: Kind,
    pub hash: InfoHash,
    /// The peer it should find.
    pub expect: Option<SocketAddr>,
    pub started: Duration,
    /// When `expect` came in a `Peers` event, after the start.
    pub first_peer: Option<Duration>,
    /// The critical path's round trips up to that event.
    pub peer_chain: Option<u32>,
    pub done: Option<Done>,
    /// Its node left before the lookup ended.
    pub aborted: bool,
    /// get_peers queries seen leaving its node.
    pub sent: u32,
    /// Queries awaiting an answer: (to, transaction) → (sent, depth).
    waiting: HashMap<(SocketAddr, Vec<u8>), (Duration, u32)>,
    deepest: u32,
}

/// What the node being called is reacting to.
#[derive(Clone, Copy, Debug, Default)]
enum Cause {
    /// Not a datagram to a running lookup's node, or a call from the script.
    #[default]
    Other,
    /// The answer to a lookup query of this depth.
    Answer(u32),
}

/// All lookups; at most one running per node.
#[derive(Default)]
pub struct Probes {
    pub list: Vec<Probe>,
    running: HashMap<usize, usize>,
    cause: Cause,
}

impl Probes {
    /// Starts measuring a lookup of `hash` by node `origin` (call just before its
    /// `get_peers`).
    pub fn start(
        &mut self,
        kind: Kind,
        origin: usize,
        hash: InfoHash,
        expect: Option<SocketAddr>,
        now: Duration,
    ) {
        assert!(!self.running.contains_key(&origin), "one lookup per node");
        self.running.insert(origin, self.list.len());
        self.list.push(Probe {
            kind,
            hash,
            expect,
            started: now,
            first_peer: None,
            peer_chain: None,
            done: None,
            aborted: false,
            sent: 0,
            waiting: HashMap::new(),
            deepest: 0,
        });
    }

    pub fn is_running(&self, node: usize) -> bool {
        self.running.contains_key(&node)
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Node `node` leaves: its lookup never ends.
    pub fn abort(&mut self, node: usize) {
        if let Some(p) = self.running.remove(&node) {
            self.list[p].aborted = true;
        }
    }

    /// Node `node` is about to be given `bytes` from `from`.
    pub fn before(&mut self, node: usize, from: SocketAddr, bytes: &[u8]) {
        self.cause = Cause::Other;
        let Some(&p) = self.running.get(&node) else {
            return;
        };
        let Ok(message) = Message::parse(bytes) else {
            return;
        };
        if matches!(message.body, Body::Query(_)) {
            return;
        }
        let key = (from, message.transaction.as_bytes().to_vec());
        let probe = &mut self.list[p];
        if let Some((_, depth)) = probe.waiting.remove(&key) {
            probe.deepest = probe.deepest.max(depth);
            self.cause = Cause::Answer(depth);
        }
    }

    /// Node `node` is about to be given `handle_timeout`.
    pub fn before_timeout(&mut self, _node: usize) {
        self.cause = Cause::Other;
    }

    /// Node `node` sent `bytes` to `to` at `now`.
    pub fn on_send(&mut self, node: usize, to: SocketAddr, bytes: &[u8], now: Duration) {
        let Some(&p) = self.running.get(&node) else {
            return;
        };
        let probe = &mut self.list[p];
        let Ok(message) = Message::parse(bytes) else {
            return;
        };
        let Body::Query(query) = &message.body else {
            return;
        };
        match query.method {
            Method::GetPeers { info_hash, .. } if info_hash == probe.hash => {}
            _ => return,
        }
        let depth = match self.cause {
            Cause::Answer(d) => d + 1,
            Cause::Other => probe.waited_on(now) + 1,
        };
        probe.sent += 1;
        probe
            .waiting
            .insert((to, message.transaction.as_bytes().to_vec()), (now, depth));
    }

    /// Node `node` reported `event` at `now`.
    pub fn on_event(&mut self, node: usize, event: &DhtEvent, now: Duration) {
        let Some(&p) = self.running.get(&node) else {
            return;
        };
        let probe = &mut self.list[p];
        match event {
            DhtEvent::Peers { info_hash, peers } if *info_hash == probe.hash => {
                let wanted = probe.expect.is_some_and(|e| peers.contains(&e));
                if wanted && probe.first_peer.is_none() {
                    probe.first_peer = Some(now - probe.started);
                    // 0: the node had it in its own store.
                    probe.peer_chain = Some(match self.cause {
                        Cause::Answer(d) => d,
                        Cause::Other => 0,
                    });
                }
            }
            DhtEvent::LookupDone {
                info_hash,
                stats,
                announced,
                ..
            } if *info_hash == probe.hash => {
                let chain = match self.cause {
                    Cause::Answer(d) => d,
                    Cause::Other => probe.waited_on(now),
                };
                let chain = chain.max(probe.deepest);
                probe.done = Some(Done {
                    elapsed: now - probe.started,
                    stats: *stats,
                    announced: *announced,
                    chain,
                });
                probe.waiting.clear();
                self.running.remove(&node);
            }
            _ => {}
        }
    }

    /// The call on node `node` is over.
    pub fn after(&mut self, _node: usize) {
        self.cause = Cause::Other;
    }
}

impl Probe {
    /// The depth of the oldest query still awaited at `now` (one expiring now counts:
    /// its expiry is what the node is reacting to; one sent now does not: it is a sibling
    /// of the query being sent); 0 if none.
    fn waited_on(&self, now: Duration) -> u32 {
        self.waiting
            .values()
            .filter(|(sent, _)| *sent < now && *sent + QUERY_TIMEOUT >= now)
            .min_by_key(|(sent, _)| *sent)
            .map_or(0, |&(_, depth)| depth)
    }
}
