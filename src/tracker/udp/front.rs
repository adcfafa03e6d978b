//! The UDP tracker's front end (BEP 15): one datagram in, at most one datagram out. No
//! sockets and no clock (time is passed in), so it is tested and fuzzed with plain calls.
//!
//! What is answered: a connect, with a connection id bound to the sender's address (the
//! reply is 16 bytes, never more than the request); an announce or a scrape whose
//! connection id checks out. What is dropped without a word: anything that does not parse
//! and carries no valid id, announces and scrapes with a forged or expired id, and
//! datagrams over [`MAX_REQUEST`] bytes. So nothing but a 16-byte connect reply ever goes
//! to an address that has not proven it receives what is sent to it (no amplification),
//! and nothing is stored for it. The swarm store decides; this module writes the UDP
//! reply: 6-byte peers to IPv4 clients, 18-byte peers to IPv6 ones, as many as fit one
//! unfragmented datagram.

use super::connection_id::ConnectionIds;
use super::packet::{
    announce_reply_head, connect_reply, error_reply, scrape_entry, scrape_reply_head, Request,
};
use crate::tracker::swarm::{Announced, Tracker};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Longest datagram read: room for an announce with long BEP 41 options or a scrape of a
/// few hundred hashes (only the first [`super::packet::MAX_SCRAPE`] are answered). Longer
/// ones are dropped unread.
pub const MAX_REQUEST: usize = 8 << 10;

/// Most reply bytes to an IPv4 client: a 1,500-byte MTU less the IPv4 and UDP headers.
pub const MAX_REPLY_V4: usize = 1500 - 20 - 8;
/// Most reply bytes to an IPv6 client: a 1,500-byte MTU less the IPv6 and UDP headers.
pub const MAX_REPLY_V6: usize = 1500 - 40 - 8;

/// Bytes of an announce reply before its peers.
const ANNOUNCE_HEAD: usize = 20;

/// Most peers in one announce reply: 242 over IPv4 (6 bytes each), 79 over IPv6 (18).
pub fn max_peers(v6: bool) -> usize {
    if v6 {
        (MAX_REPLY_V6 - ANNOUNCE_HEAD) / 18
    } else {
        (MAX_REPLY_V4 - ANNOUNCE_HEAD) / 6
    }
}

/// What the UDP front end has seen, for `/stats` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpCounts {
    pub connects: u64,
    /// Announces and scrapes with a valid connection id (the others count in
    /// `bad_connection_ids` only).
    pub announces: u64,
    pub scrapes: u64,
    /// Datagrams that are not a request: too short, too long, unknown action or event,
    /// wrong protocol id, a scrape of partial hashes.
    pub bad_packets: u64,
    /// Announces and scrapes dropped for a forged or expired connection id.
    pub bad_connection_ids: u64,
    /// Announces answered with an error: info hash not served.
    pub refused: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connects: AtomicU64,
    announces: AtomicU64,
    scrapes: AtomicU64,
    bad_packets: AtomicU64,
    bad_connection_ids: AtomicU64,
    refused: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The UDP front end: the connection-id key and the counters. Shared by every UDP socket
/// (a `&self` API; the swarm store is locked only for the announce or scrape itself).
#[derive(Default)]
pub struct UdpFront {
    ids: ConnectionIds,
    counters: Counters,
}

impl UdpFront {
    /// The counters so far.
    pub fn counts(&self) -> UdpCounts {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        UdpCounts {
            connects: get(&c.connects),
            announces: get(&c.announces),
            scrapes: get(&c.scrapes),
            bad_packets: get(&c.bad_packets),
            bad_connection_ids: get(&c.bad_connection_ids),
            refused: get(&c.refused),
        }
    }

    /// A connection id for `from` at `now` (what a connect would answer); for tests and
    /// fuzzing.
    pub fn issue(&self, from: SocketAddr, now: u32) -> u64 {
        self.ids.issue(canonical(from), u64::from(now))
    }

    /// Whether `id` is a connection id issued to `from` within the last two to three
    /// minutes before `now`.
    pub fn is_valid(&self, id: u64, from: SocketAddr, now: u32) -> bool {
        self.ids.check(id, canonical(from), u64::from(now))
    }

    /// Answers one datagram from `from` at tracker time `now` (seconds): writes the reply
    /// into `out` (cleared first) and returns whether there is one to send. A reply is at
    /// most [`MAX_REPLY_V4`] or [`MAX_REPLY_V6`] bytes, and never longer than the request
    /// unless the request carried a valid connection id.
    pub fn handle(
        &self,
        tracker: &Mutex<Tracker>,
        datagram: &[u8],
        from: SocketAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        let from = canonical(from);
        let c = &self.counters;
        if datagram.len() > MAX_REQUEST {
            bump(&c.bad_packets);
            return false;
        }
        let valid = |id: u64| self.is_valid(id, from, now);
        let request = match Request::parse(datagram) {
            Ok(r) => r,
            Err(e) => {
                bump(&c.bad_packets);
                // A client that proved its address is told why; anyone else hears nothing.
                let Some(head) = datagram.get(..16) else {
                    return false;
                };
                let id = u64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
                let transaction = u32::from_be_bytes(head[12..].try_into().expect("4 bytes"));
                if !valid(id) {
                    return false;
                }
                error_reply(out, transaction, &e.to_string());
                return true;
            }
        };
        match request {
            Request::Connect { transaction } => {
                bump(&c.connects);
                connect_reply(out, transaction, self.ids.issue(from, u64::from(now)));
            }
            Request::Announce {
                connection,
                transaction,
                mut announce,
                ..
            } => {
                if !valid(connection) {
                    bump(&c.bad_connection_ids);
                    return false;
                }
                bump(&c.announces);
                let v6 = from.is_ipv6();
                let cap = max_peers(v6);
                let mut tracker = tracker.lock().unwrap_or_else(|e| e.into_inner());
                let wanted = announce.numwant.unwrap_or(tracker.config.default_numwant);
                announce.numwant = Some(wanted.min(cap as u32));
                // The request's IP field was never read: the datagram's source is the peer.
                match tracker.announce(&announce, from.ip(), now) {
                    Ok(answer) => answer.write_udp(out, transaction, v6, cap),
                    Err(refusal) => {
                        bump(&c.refused);
                        error_reply(out, transaction, &refusal.to_string());
                    }
                }
            }
            Request::Scrape {
                connection,
                transaction,
                hashes,
            } => {
                if !valid(connection) {
                    bump(&c.bad_connection_ids);
                    return false;
                }
                bump(&c.scrapes);
                scrape_reply_head(out, transaction);
                let tracker = tracker.lock().unwrap_or_else(|e| e.into_inner());
                for hash in &hashes {
                    let e = tracker.scrape(hash);
                    scrape_entry(
                        out,
                        saturate(e.complete as u64),
                        saturate(e.downloaded),
                        saturate(e.incomplete as u64),
                    );
                }
            }
        }
        true
    }
}

/// The address with an IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4
/// client) turned back into IPv4, so that client gets 6-byte peers and is stored as IPv4.
fn canonical(from: SocketAddr) -> SocketAddr {
    SocketAddr::new(from.ip().to_canonical(), from.port())
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Announced<'_> {
    /// Appends the UDP announce reply (BEP 15): counts, interval, and at most `max_peers`
    /// compact peers of the client's family (18 bytes each if `v6`, else 6).
    pub(crate) fn write_udp(
        &self,
        out: &mut Vec<u8>,
        transaction: u32,
        v6: bool,
        max_peers: usize,
    ) {
        let (seeders, leechers) = self.counts;
        announce_reply_head(
            out,
            transaction,
            self.config.interval,
            saturate(leechers as u64),
            saturate(seeders as u64),
        );
        let (list, size) = if v6 {
            (&self.peers.v6, 18)
        } else {
            (&self.peers.v4, 6)
        };
        out.extend_from_slice(&list[..list.len().min(max_peers * size)]);
    }
}

#[cfg(test)]
mod tests;
