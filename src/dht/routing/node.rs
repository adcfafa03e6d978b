//! One routing table entry and its BEP 5 state: good, questionable or bad.

use super::Config;
use crate::dht::id::NodeId;
use crate::dht::krpc::NodeInfo;
use std::net::SocketAddr;
use std::time::Instant;

/// How we came to know of a node, or what it just did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Contact {
    /// Another node named it (`nodes`, `nodes6`): nothing is known of it yet.
    Heard,
    /// It sent us a query. Never pass a read-only (BEP 43 `ro`) querier: it answers no
    /// queries and has no place in a routing table.
    Queried,
    /// It answered one of our queries (its transaction id matched): it is alive at this
    /// address with this id.
    Responded,
}

/// A node's standing (BEP 5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NodeState {
    /// It answered us within the last 15 minutes, or it has answered us once and
    /// queried us within the last 15 minutes; and it has not failed to answer since.
    Good,
    /// Neither good nor bad: silent for 15 minutes, never heard from yet, or it failed
    /// to answer our last query.
    Questionable,
    /// It failed to answer several queries in a row ([`Config::max_failures`]).
    Bad,
}

/// A node in the routing table, live or waiting in a replacement cache.
#[derive(Clone, Debug)]
pub struct Node {
    id: NodeId,
    addr: SocketAddr,
    /// BEP 42: its id is secure for its address, or its address is exempt.
    verified: bool,
    /// When it was first entered.
    added: Instant,
    /// Its last answer to one of our queries; `None` until it has answered once.
    last_response: Option<Instant>,
    /// Its last query to us.
    last_query: Option<Instant>,
    /// When the table last proposed pinging it ([`super::RoutingTable::nodes_to_ping`]).
    last_ping: Option<Instant>,
    /// Queries it failed to answer since its last answer.
    failures: u8,
}

impl Node {
    pub(super) fn new(id: NodeId, addr: SocketAddr, now: Instant) -> Node {
        Node {
            id,
            addr,
            verified: id.is_verified_for(addr.ip()),
            added: now,
            last_response: None,
            last_query: None,
            last_ping: None,
            failures: 0,
        }
    }

    /// Its id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Its UDP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its id and address, as sent in `nodes`.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            id: self.id,
            addr: self.addr,
        }
    }

    /// Whether its id passes BEP 42 for its address (or the address is exempt).
    pub fn verified(&self) -> bool {
        self.verified
    }

    /// Whether it has ever answered one of our queries.
    pub fn confirmed(&self) -> bool {
        self.last_response.is_some()
    }

    /// Its last answer to one of our queries.
    pub fn last_response(&self) -> Option<Instant> {
        self.last_response
    }

    /// Queries it failed to answer in a row.
    pub fn failures(&self) -> u8 {
        self.failures
    }

    /// Its BEP 5 state at `now`.
    pub fn state(&self, now: Instant, config: &Config) -> NodeState {
        let recent = |t: Option<Instant>| {
            t.is_some_and(|t| now.saturating_duration_since(t) < config.good_for)
        };
        if self.failures >= config.max_failures {
            NodeState::Bad
        } else if self.failures == 0
            && (recent(self.last_response) || (self.confirmed() && recent(self.last_query)))
        {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }

    /// Records `contact` at `now`.
    pub(super) fn touch(&mut self, now: Instant, contact: Contact) {
        match contact {
            Contact::Heard => {}
            Contact::Queried => self.last_query = Some(now),
            Contact::Responded => {
                self.last_response = Some(now);
                self.failures = 0;
            }
        }
    }

    pub(super) fn fail(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// Whether a ping may be proposed at `now`: none was within [`Config::ping_retry`].
    pub(super) fn ping_due(&self, now: Instant, config: &Config) -> bool {
        self.last_ping.map_or(true, |t| {
            now.saturating_duration_since(t) >= config.ping_retry
        })
    }

    pub(super) fn pinged(&mut self, now: Instant) {
        self.last_ping = Some(now);
    }

    /// When it was last heard from: its last answer, else when it was entered.
    pub(super) fn last_seen(&self) -> Instant {
        self.last_response.unwrap_or(self.added)
    }

    /// How much a replacement cache wants to keep it, higher better: answered before,
    /// BEP 42 verified, no failures, heard from recently.
    pub(super) fn worth(&self) -> (bool, bool, bool, Instant) {
        (
            self.confirmed(),
            self.verified,
            self.failures == 0,
            self.last_seen(),
        )
    }
}
