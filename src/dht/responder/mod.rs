//! Answers to other nodes' queries: the serving half of a DHT node, sans-IO.
//!
//! [`Responder::handle_query`] takes a parsed query, where it came from and the time, and
//! returns the message to send back, or nothing. It owns what answering needs and nothing
//! else: the announce tokens ([`Tokens`]), the peers announced to us ([`PeerStore`]) and
//! the per-source query limits ([`RateLimiter`]). The routing tables stay the node's and
//! are lent for each query ([`Tables`]).
//!
//! - `ping`: our id.
//! - `find_node`: the [`K`] closest nodes to the target in `nodes` and/or `nodes6`, as
//!   BEP 32's `want` asks, else of the querier's family.
//! - `get_peers`: up to [`ResponderConfig::max_values`] peers of the querier's family in
//!   `values` (a quarter as many IPv6 peers, which take three times the room), the
//!   closest nodes as for `find_node` always (they keep the querier's lookup going), and
//!   a token for the querier's IP address.
//! - `announce_peer`: the token must be one we gave this IP for this info hash in the
//!   last 5 to 10 minutes, else error 203 "bad token"; the peer stored is the querier's
//!   IP with `port`, or with the query's source port for `implied_port`; port 0 is
//!   error 203 "bad port".
//! - `sample_infohashes` (BEP 51): a fresh random sample of the stored info hashes, how
//!   many are stored, the interval before asking again, and the closest nodes.
//!
//! Every reply carries the querier's address in `ip` (BEP 42), errors included. Nothing
//! is answered while we are read-only (BEP 43), nor to a source over its query limit
//! (no error either: an error is a reply). Every reply fits a 1,452-byte datagram (an
//! IPv6 packet in a 1,500-byte MTU) with the default limits.

#[cfg(test)]
mod tests;

use super::id::NodeId;
use super::krpc::{
    code, Message, Method, ParseError, Query, Response, Samples, TransactionId, Want,
};
use super::ratelimit::{RateConfig, RateLimiter};
use super::routing::{RoutingTable, K};
use super::store::{PeerStore, StoreConfig, Stored};
use super::token::Tokens;
use crate::core::InfoHash;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// How the responder answers; [`ResponderConfig::default`] gives the values below.
#[derive(Clone, Copy, Debug)]
pub struct ResponderConfig {
    /// Per-source query limits (libtorrent's: 5 a second, 50 at once, 5 minutes out).
    pub rate: RateConfig,
    /// The peer store's caps.
    pub store: StoreConfig,
    /// Most IPv4 peers in one `get_peers` answer: 100 (libtorrent's
    /// `dht_max_peers_reply`); a quarter as many IPv6 peers.
    pub max_values: usize,
    /// Most info hashes in one `sample_infohashes` answer: 20 (libtorrent's most).
    pub max_samples: usize,
    /// BEP 51's `interval`, seconds: 300. Each answer is a fresh sample, so asking again
    /// once the store has changed a little is worth it.
    pub sample_interval: u32,
}

impl Default for ResponderConfig {
    fn default() -> ResponderConfig {
        ResponderConfig {
            rate: RateConfig::default(),
            store: StoreConfig::default(),
            max_values: 100,
            max_samples: 20,
            sample_interval: 300,
        }
    }
}

/// The routing tables a reply draws nodes from, and the id we answer with. A node of one
/// family has one table; a dual-stack node lends both (BEP 32).
#[derive(Clone, Copy, Debug)]
pub struct Tables<'a> {
    /// Our id, as the querier knows it.
    pub own: NodeId,
    /// The IPv4 table, for `nodes`.
    pub v4: Option<&'a RoutingTable>,
    /// The IPv6 table, for `nodes6`.
    pub v6: Option<&'a RoutingTable>,
}

impl<'a> Tables<'a> {
    /// An IPv4 node's one table, and its id.
    pub fn v4(table: &'a RoutingTable) -> Tables<'a> {
        Tables {
            own: table.own_id(),
            v4: Some(table),
            v6: None,
        }
    }

    /// An IPv6 node's one table, and its id.
    pub fn v6(table: &'a RoutingTable) -> Tables<'a> {
        Tables {
            own: table.own_id(),
            v4: None,
            v6: Some(table),
        }
    }
}

/// Counts of what the responder did, for people and scripts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResponderStats {
    /// Queries answered with a response.
    pub answered: u64,
    /// Queries answered with an error (malformed, bad token, bad port).
    pub errors: u64,
    /// Queries ignored: their source was over its limit.
    pub rate_limited: u64,
    /// Queries ignored: we were read-only.
    pub read_only: u64,
    /// `announce_peer` queries refused for their token.
    pub bad_tokens: u64,
    /// Announces stored (new entries or refreshed ones).
    pub announces: u64,
    /// Announces with a good token that the full store refused.
    pub announces_refused: u64,
}

/// The serving half of a DHT node (see the module's documentation). Sans-IO: no socket,
/// no clock; `now` comes with every call.
#[derive(Clone, Debug)]
pub struct Responder {
    config: ResponderConfig,
    tokens: Tokens,
    store: PeerStore,
    limiter: RateLimiter,
    rng: fastrand::Rng,
    read_only: bool,
    stats: ResponderStats,
}

impl Responder {
    /// A responder at `now` with `config`, its secrets and samples drawn from `rng`
    /// (seed it from the operating system, `fastrand::Rng::new()`; tests seed it).
    pub fn new(now: Instant, config: ResponderConfig, mut rng: fastrand::Rng) -> Responder {
        let tokens = Tokens::new(now, rng.fork());
        Responder {
            config,
            tokens,
            store: PeerStore::new(config.store),
            limiter: RateLimiter::new(config.rate),
            rng,
            read_only: false,
            stats: ResponderStats::default(),
        }
    }

    /// Answer nothing (BEP 43: while we are not reachable), or answer again.
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// Whether we answer nothing.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The peers announced to us.
    pub fn store(&self) -> &PeerStore {
        &self.store
    }

    /// The per-source query limits.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// What the responder did so far.
    pub fn stats(&self) -> ResponderStats {
        self.stats
    }

    /// Whether queries from `ip` are being ignored at `now` (the node may want to ignore
    /// the rest of what that source sends too).
    pub fn is_blocked(&self, now: Instant, ip: IpAddr) -> bool {
        self.limiter.is_blocked(now, ip)
    }

    /// The reply to `query`, with `transaction`, from `from` at `now`: a response or an
    /// error, or `None` when we are read-only or `from`'s source is over its limit. The
    /// query counts against that limit.
    pub fn handle_query(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transaction: TransactionId,
        query: &Query,
        tables: Tables<'_>,
    ) -> Option<Message> {
        let from = canonical(from);
        if !self.admit(now, from) {
            return None;
        }
        let mut response = Response::new(tables.own);
        match &query.method {
            Method::Ping => {}
            Method::FindNode { target, want } => {
                closest(&mut response, tables, from, target, *want);
            }
            Method::GetPeers { info_hash, want } => {
                let v6 = from.is_ipv6();
                let max = if v6 {
                    (self.config.max_values / 4).max(1)
                } else {
                    self.config.max_values
                };
                response.values = self.store.get_peers(now, info_hash, max, v6, &mut self.rng);
                response.token = Some(self.tokens.issue(now, from.ip(), info_hash));
                closest(&mut response, tables, from, &NodeId(info_hash.0), *want);
            }
            Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.check(now, from.ip(), info_hash, token) {
                    self.stats.bad_tokens += 1;
                    return Some(self.error(transaction, from, "bad token"));
                }
                let port = if *implied_port { from.port() } else { *port };
                if port == 0 {
                    return Some(self.error(transaction, from, "bad port"));
                }
                self.announce(now, *info_hash, SocketAddr::new(from.ip(), port));
            }
            Method::SampleInfohashes { target, want } => {
                response.samples = Some(Samples {
                    interval: self.config.sample_interval,
                    num: u32::try_from(self.store.torrent_count()).unwrap_or(u32::MAX),
                    hashes: self.store.samples(self.config.max_samples, &mut self.rng),
                });
                closest(&mut response, tables, from, target, *want);
            }
        }
        self.stats.answered += 1;
        Some(Message::response(transaction, from, response))
    }

    /// The error reply to a datagram that failed to parse ([`ParseError::reply`]: only a
    /// query with a transaction id gets one), under the same rules as a query: `None`
    /// when read-only or over the limit.
    pub fn handle_malformed(
        &mut self,
        now: Instant,
        from: SocketAddr,
        error: &ParseError,
    ) -> Option<Message> {
        let mut reply = error.reply()?;
        let from = canonical(from);
        if !self.admit(now, from) {
            return None;
        }
        self.stats.errors += 1;
        reply.ip = Some(from);
        Some(reply)
    }

    /// Whether a query from `from` gets a reply: we answer, and its source is within
    /// its limit (the query is counted).
    fn admit(&mut self, now: Instant, from: SocketAddr) -> bool {
        if self.read_only {
            self.stats.read_only += 1;
            return false;
        }
        if !self.limiter.allow(now, from.ip()) {
            self.stats.rate_limited += 1;
            return false;
        }
        true
    }

    fn announce(&mut self, now: Instant, info_hash: InfoHash, peer: SocketAddr) {
        match self.store.announce(now, info_hash, peer) {
            Stored::Added | Stored::Updated => self.stats.announces += 1,
            Stored::Refused => self.stats.announces_refused += 1,
        }
    }

    fn error(&mut self, transaction: TransactionId, from: SocketAddr, text: &str) -> Message {
        self.stats.errors += 1;
        let mut reply = Message::error(transaction, code::PROTOCOL, text);
        reply.ip = Some(from);
        reply
    }
}

/// Fills `nodes` and `nodes6` with the [`K`] closest nodes to `target` of each family
/// `want` asks for (the querier's own family when it does not say), from the tables lent.
fn closest(
    response: &mut Response,
    tables: Tables<'_>,
    from: SocketAddr,
    target: &NodeId,
    want: Want,
) {
    let (v4, v6) = if want.v4 || want.v6 {
        (want.v4, want.v6)
    } else {
        (from.is_ipv4(), from.is_ipv6())
    };
    if let Some(table) = tables.v4.filter(|_| v4) {
        response.nodes = table.closest(target, K);
    }
    if let Some(table) = tables.v6.filter(|_| v6) {
        response.nodes6 = table.closest(target, K);
    }
}

/// `addr` with an IPv4-mapped IPv6 address read as IPv4 (a dual-stack socket reports
/// IPv4 senders so): the querier's family, token and `ip` field are its IPv4 ones.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
