//! The node's lookups: starting them in a family's DHT (from its table's closest nodes,
//! or from the routers when the table is small), feeding them queries, reporting their
//! peers, and ending them with the announce.

use super::{
    Dht, DhtEvent, Family, Kind, Lookup, Method, Purpose, Want, BOOTSTRAP_EVERY, BOOTSTRAP_ROUNDS,
    K, MAX_LOOKUPS, MAX_PENDING,
};
use crate::core::InfoHash;
use crate::dht::id::NodeId;
use std::net::SocketAddr;
use std::time::Instant;

/// A lookup running, with what the node does at its end.
pub(super) struct Running {
    pub(super) lookup: Lookup,
    pub(super) family: Family,
    /// The info hash of a `get_peers` lookup (none for a table refresh).
    pub(super) info_hash: Option<InfoHash>,
    /// Where we listen for peers, to announce once done.
    pub(super) announce: Option<u16>,
    /// Peers already reported.
    pub(super) reported: usize,
}

impl Running {
    /// What this lookup asks each node.
    fn method(&self) -> Method {
        match self.info_hash {
            Some(info_hash) => Method::GetPeers {
                info_hash,
                want: Want::default(),
            },
            None => Method::FindNode {
                target: self.lookup.target(),
                want: Want::default(),
            },
        }
    }
}

impl Dht {
    /// Sends what the lookups want, reports peers, finishes lookups that are done.
    pub(super) fn drive(&mut self, now: Instant) {
        let ids: Vec<u64> = self.lookups.keys().copied().collect();
        for id in ids {
            loop {
                if self.pending.len() >= MAX_PENDING {
                    break;
                }
                let Some(run) = self.lookups.get_mut(&id) else {
                    break;
                };
                let Some(node) = run.lookup.next_query(now) else {
                    break;
                };
                let method = run.method();
                self.send_query(now, node.addr, method, Purpose::Lookup(id));
            }
            let Some(run) = self.lookups.get_mut(&id) else {
                continue;
            };
            if let Some(info_hash) = run.info_hash {
                let found = run.lookup.peers();
                if found.len() > run.reported {
                    let peers = found[run.reported..].to_vec();
                    run.reported = found.len();
                    self.events.push_back(DhtEvent::Peers { info_hash, peers });
                }
            }
            // A lookup waits for the routers' answers before it may end with nothing.
            let (done, family) = (run.lookup.is_done(now), run.family);
            if done && !self.bootstrapping(family) {
                self.finish(now, id);
            }
        }
        while self.lookups.len() < MAX_LOOKUPS {
            let Some((info_hash, port, family)) = self.queued.pop_front() else {
                break;
            };
            self.start_lookup(now, NodeId::from(info_hash), Some(info_hash), port, family);
        }
    }

    /// Whether a router's answer is awaited in `family`.
    pub(super) fn bootstrapping(&self, family: Family) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p.purpose, Purpose::Bootstrap(_)) && Family::of(&p.addr) == family)
    }

    fn finish(&mut self, now: Instant, id: u64) {
        let Some(run) = self.lookups.remove(&id) else {
            return;
        };
        let Some(info_hash) = run.info_hash else {
            return;
        };
        let mut announced = 0;
        if let Some(port) = run.announce {
            for target in run.lookup.announce_targets() {
                if self.pending.len() >= MAX_PENDING {
                    break;
                }
                let method = Method::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port: false,
                    token: target.token,
                };
                self.send_query(now, target.node.addr, method, Purpose::Announce);
                announced += 1;
            }
        }
        self.events.push_back(DhtEvent::LookupDone {
            info_hash,
            family: run.family,
            stats: run.lookup.stats(),
            peers: run.lookup.peers().len(),
            announced,
        });
    }

    /// Starts a lookup of `target` in `family`'s DHT: `get_peers` for `info_hash` (and an
    /// announce of `announce` at the end), else `find_node`.
    pub(super) fn start_lookup(
        &mut self,
        now: Instant,
        target: NodeId,
        info_hash: Option<InfoHash>,
        announce: Option<u16>,
        family: Family,
    ) {
        let seeds = self.table(family).closest(&target, K);
        let kind = if info_hash.is_some() {
            Kind::GetPeers
        } else {
            Kind::FindNode
        };
        let id = self.next_lookup;
        self.next_lookup += 1;
        self.lookups.insert(
            id,
            Running {
                lookup: Lookup::new(target, kind, &seeds),
                family,
                info_hash,
                announce,
                reported: 0,
            },
        );
        if seeds.len() < K {
            self.bootstrap(now, id);
        }
        self.drive(now);
    }

    /// Asks the routers lookup `id`'s query (at most [`BOOTSTRAP_ROUNDS`] rounds per
    /// [`BOOTSTRAP_EVERY`]): a `get_peers` to a router that keeps peers finds them, and
    /// earns its token.
    fn bootstrap(&mut self, now: Instant, id: u64) {
        let Some(run) = self.lookups.get(&id) else {
            return;
        };
        let (method, family) = (run.method(), run.family);
        let routers: Vec<SocketAddr> = self
            .config
            .bootstrap
            .iter()
            .copied()
            .filter(|a| Family::of(a) == family)
            .collect();
        if routers.is_empty() {
            return;
        }
        // Each family has its own budget, spent only when a router is asked.
        let rounds = &mut self.bootstraps[family as usize];
        while rounds
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= BOOTSTRAP_EVERY)
        {
            rounds.pop_front();
        }
        if rounds.len() >= BOOTSTRAP_ROUNDS {
            return;
        }
        rounds.push_back(now);
        for addr in routers {
            self.send_query(now, addr, method.clone(), Purpose::Bootstrap(id));
        }
    }
}
