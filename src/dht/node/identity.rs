//! The node's id and external address (BEP 42): votes on where others see us come from
//! the `ip` of DHT answers and from peers' `yourip`; once an address is decided and our id
//! is not secure for it, the node takes a secure one (the top 21 bits from a CRC32-C of the
//! address, BEP 42) and rebuilds its routing table around it, keeping every node it knew.
//! Addresses BEP 42 exempts (private, loopback, link-local) keep the id as it is.

use super::Dht;
use crate::dht::id::{bep42_exempt, NodeId};
use crate::dht::routing::{Contact, RoutingTable};
use std::net::IpAddr;
use std::time::Instant;

impl Dht {
    /// `voter` (a DHT node that answered us, or a peer's `yourip`) sees us at `seen`.
    pub fn external_ip_vote(&mut self, now: Instant, voter: IpAddr, seen: IpAddr) {
        if let Some(ip) = self.external.vote(voter, seen) {
            tracing::debug!("DHT: our external address is {ip}");
            self.adopt_external_ip(now, ip);
        }
    }

    /// Our external address, once decided.
    pub fn external_ip(&self) -> Option<IpAddr> {
        self.external.current()
    }

    /// Takes a BEP 42 id for `ip` unless ours already is one (or `ip` is exempt).
    fn adopt_external_ip(&mut self, now: Instant, ip: IpAddr) {
        if bep42_exempt(ip) || self.id.is_secure_for(ip) {
            return;
        }
        let id = NodeId::secure_for(ip, NodeId::random(&mut self.rng));
        tracing::info!("DHT: new node id {id} for our address {ip} (BEP 42)");
        let old: Vec<_> = self
            .routing
            .nodes()
            .map(|n| (n.id(), n.addr(), n.confirmed()))
            .collect();
        let mut routing = RoutingTable::with_rng(id, self.config.routing, self.rng.fork());
        for &addr in &self.config.bootstrap {
            routing.exclude(addr);
        }
        for (node_id, addr, confirmed) in old {
            let contact = if confirmed {
                Contact::Responded
            } else {
                Contact::Heard
            };
            routing.insert(now, node_id, addr, contact);
        }
        self.id = id;
        self.routing = routing;
        // The buckets near the new id are empty: look for our neighbours at once.
        self.next_upkeep = now;
    }
}
