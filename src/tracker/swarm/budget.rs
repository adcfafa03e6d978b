//! The tracker's memory policy: what peers and torrents cost, who is charged for them, and
//! what goes when memory runs short.
//!
//! Every stored peer costs [`PEER_BYTES`] and every torrent [`TORRENT_BYTES`] (measured:
//! `cargo run --release --example tracker_memory`). Both are charged to an address prefix
//! (a /24 for IPv4, a /48 for IPv6: what one customer usually holds): a peer to its own,
//! a torrent to the prefix of the peer that created it. A prefix past
//! [`TrackerConfig::max_memory_per_prefix`] stores nothing new: its announces are answered
//! but its new peers and torrents are not kept. Past [`TrackerConfig::max_memory`]
//! overall, a newcomer takes the place of the least valuable of a few randomly sampled
//! swarms: a small swarm whose peers all share one prefix (no one there can find anyone
//! new), the smallest first and, among equals, the one whose creator's prefix holds the
//! most. Swarms with peers from several prefixes are never evicted; if no sample can go,
//! the newcomer is answered but not stored. So a flood of invented info hashes costs the
//! flooder its own entries, never an honest user's swarm, and never locks newcomers out.

use super::{Swarm, Tracker};
use crate::core::InfoHash;
use std::collections::HashMap;
use std::net::IpAddr;

/// Memory charged for one stored peer (its key, id and last-seen time in the arrays, and
/// its index entry, with the tables' spare room).
pub const PEER_BYTES: usize = 64;

/// Memory charged for one torrent besides its peers: its entry in the torrent table and
/// the first allocations of its peer arrays.
pub const TORRENT_BYTES: usize = 768;

/// How many swarms are sampled at a time for one eviction, and how many times before
/// giving up.
const SAMPLES: usize = 8;
const TRIES: usize = 4;

/// Swarms with more peers than this are not evicted.
const EVICTABLE_PEERS: usize = 4;

/// An address prefix: a /24 of IPv4 or a /48 of IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Prefix(u64);

impl Prefix {
    /// The prefix holding `ip`.
    pub(crate) fn of(ip: IpAddr) -> Prefix {
        match ip {
            IpAddr::V4(v4) => Prefix::v4(v4.octets()),
            IpAddr::V6(v6) => Prefix::v6(&v6.octets()),
        }
    }

    /// The /24 of an IPv4 address.
    pub(crate) fn v4(octets: [u8; 4]) -> Prefix {
        Prefix(1 << 63 | u64::from(u32::from_be_bytes(octets) >> 8))
    }

    /// The /48 of an IPv6 address (its first 6 of 16 octets).
    pub(crate) fn v6(octets: &[u8]) -> Prefix {
        let mut wide = [0u8; 8];
        wide[2..].copy_from_slice(&octets[..6]);
        Prefix(u64::from_be_bytes(wide))
    }
}

/// Bytes charged to each prefix.
#[derive(Default)]
pub(super) struct Usage {
    by_prefix: HashMap<Prefix, usize>,
}

impl Usage {
    /// Bytes charged to `prefix`.
    pub(super) fn of(&self, prefix: Prefix) -> usize {
        self.by_prefix.get(&prefix).copied().unwrap_or(0)
    }

    /// Charges `bytes` to `prefix` if that keeps it within `cap`; returns whether it did.
    pub(super) fn try_charge(&mut self, prefix: Prefix, bytes: usize, cap: usize) -> bool {
        let used = self.by_prefix.entry(prefix).or_insert(0);
        if *used + bytes > cap {
            if *used == 0 {
                self.by_prefix.remove(&prefix);
            }
            return false;
        }
        *used += bytes;
        true
    }

    pub(super) fn charge(&mut self, prefix: Prefix, bytes: usize) {
        *self.by_prefix.entry(prefix).or_insert(0) += bytes;
    }

    pub(super) fn release(&mut self, prefix: Prefix, bytes: usize) {
        if let Some(used) = self.by_prefix.get_mut(&prefix) {
            *used = used.saturating_sub(bytes);
            if *used == 0 {
                self.by_prefix.remove(&prefix);
            }
        }
    }

    /// Prefixes charged for anything.
    pub(super) fn prefixes(&self) -> usize {
        self.by_prefix.len()
    }

    pub(super) fn clear(&mut self) {
        self.by_prefix.clear();
    }
}

impl Swarm {
    /// Whether every peer of this swarm is in one prefix (true when it has none).
    fn one_prefix(&self) -> bool {
        let mut prefixes = self.v4.prefixes().chain(self.v6.prefixes());
        match prefixes.next() {
            None => true,
            Some(first) => prefixes.all(|p| p == first),
        }
    }
}

impl Tracker {
    /// Memory charged for all peers and torrents.
    pub fn memory_used(&self) -> usize {
        self.peers * PEER_BYTES + self.torrents.len() * TORRENT_BYTES
    }

    /// Whether `bytes` more fit in the overall budget.
    pub(super) fn fits(&self, bytes: usize) -> bool {
        self.memory_used() + bytes <= self.config.max_memory
    }

    /// Makes room for `bytes` more by evicting sampled swarms of little value (never
    /// `keep`); returns whether they now fit.
    pub(super) fn make_room(&mut self, bytes: usize, keep: &InfoHash) -> bool {
        while !self.fits(bytes) {
            let Some(victim) = self.least_valuable_sample(keep) else {
                return false;
            };
            self.remove_swarm(&victim);
            self.evicted += 1;
        }
        true
    }

    /// The least valuable evictable swarm among a few sampled at random, if any: the
    /// first batch of samples with a candidate decides.
    fn least_valuable_sample(&mut self, keep: &InfoHash) -> Option<InfoHash> {
        if self.order.is_empty() {
            return None;
        }
        let mut best: Option<((usize, std::cmp::Reverse<usize>), InfoHash)> = None;
        for sample in 0..SAMPLES * TRIES {
            if sample % SAMPLES == 0 && best.is_some() {
                break;
            }
            let hash = self.order[self.rng.usize(..self.order.len())];
            let Some(swarm) = self.torrents.get(&hash) else {
                continue;
            };
            if hash == *keep || swarm.len() > EVICTABLE_PEERS || !swarm.one_prefix() {
                continue;
            }
            let value = (swarm.len(), std::cmp::Reverse(self.usage.of(swarm.creator)));
            if !best.as_ref().is_some_and(|(v, _)| *v <= value) {
                best = Some((value, hash));
            }
        }
        best.map(|(_, hash)| hash)
    }
}

/// Bytes allowed to one prefix by default: a 64th of the overall budget.
pub(super) fn default_per_prefix(max_memory: usize) -> usize {
    max_memory / 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_a_24_or_a_48() {
        let p = |s: &str| Prefix::of(s.parse().unwrap());
        assert_eq!(p("10.1.2.3"), p("10.1.2.250"));
        assert_ne!(p("10.1.2.3"), p("10.1.3.3"));
        assert_eq!(p("2001:db8:1::1"), p("2001:db8:1:ffff::2"));
        assert_ne!(p("2001:db8:1::1"), p("2001:db8:2::1"));
        // The families never share a prefix.
        assert_ne!(p("0.0.0.1"), p("::1"));
    }

    #[test]
    fn usage_stays_within_the_cap() {
        let mut usage = Usage::default();
        let a = Prefix::of("10.0.0.1".parse().unwrap());
        assert!(usage.try_charge(a, 60, 100));
        assert!(!usage.try_charge(a, 60, 100));
        assert_eq!(usage.of(a), 60);
        usage.release(a, 60);
        assert_eq!(usage.prefixes(), 0);
    }
}
