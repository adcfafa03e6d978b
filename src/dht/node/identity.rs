//! The node's id and external address (BEP 42): votes on where others see us come from
//! the `ip` of DHT answers and from peers' `yourip`; once an address is decided and our id
//! is not secure for it, the node takes a secure one (the top 21 bits from a CRC32-C of the
//! address, BEP 42) and rebuilds its routing table around it, keeping every node it knew.
//! Addresses BEP 42 exempts (private, loopback, link-local) keep the id as it is.

use super::{new_table, Dht, Family};
use crate::dht::id::{bep42_exempt, NodeId};
use crate::dht::routing::{Contact, RoutingTable};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Least time between two id changes: a decided address that keeps moving (or voters
/// that lie) cannot make the node churn its id and table.
pub const ID_CHANGE_EVERY: Duration = Duration::from_secs(60 * 60);

impl Dht {
    /// `voter` (a DHT node that answered us, or a peer's `yourip`) sees us at `seen`.
    pub fn external_ip_vote(&mut self, now: Instant, voter: IpAddr, seen: IpAddr) {
        if let Some(ip) = self.external.vote(voter, seen) {
            tracing::debug!("DHT: our external address is {ip}");
            self.adopt_external_ip(now);
        }
    }

    /// Our external address that the id follows, once decided: the IPv4 one when we speak
    /// IPv4 (one id serves both families; following both would make them take turns).
    pub fn external_ip(&self) -> Option<IpAddr> {
        if self.config.ipv4 {
            self.external.v4()
        } else {
            self.external.v6()
        }
    }

    /// Takes a BEP 42 id for our decided address unless ours already is one (or the
    /// address is exempt), at most once per [`ID_CHANGE_EVERY`] (the upkeep asks again).
    pub(super) fn adopt_external_ip(&mut self, now: Instant) {
        let Some(ip) = self.external_ip() else {
            return;
        };
        if bep42_exempt(ip) || self.id.is_secure_for(ip) {
            return;
        }
        if self
            .last_id_change
            .is_some_and(|t| now.saturating_duration_since(t) < ID_CHANGE_EVERY)
        {
            return;
        }
        self.last_id_change = Some(now);
        let id = NodeId::secure_for(ip, NodeId::random(&mut self.rng));
        tracing::info!("DHT: new node id {id} for our address {ip} (BEP 42)");
        self.id = id;
        self.routing = self.rebuilt(now, Family::V4);
        self.routing6 = self.rebuilt(now, Family::V6);
        // The buckets near the new id are empty: look for our neighbours at once.
        self.next_upkeep = now;
        self.next_fill = [now; 2];
    }

    /// `family`'s table around our (new) id, with every node the old one held.
    fn rebuilt(&mut self, now: Instant, family: Family) -> RoutingTable {
        let old: Vec<_> = self
            .table(family)
            .nodes()
            .map(|n| (n.id(), n.addr(), n.confirmed()))
            .collect();
        let mut table = new_table(self.id, &self.config, self.rng.fork());
        for (node_id, addr, confirmed) in old {
            let contact = if confirmed {
                Contact::Responded
            } else {
                Contact::Heard
            };
            table.insert(now, node_id, addr, contact);
        }
        table
    }
}
