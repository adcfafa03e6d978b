//! Our external IP address, by vote: DHT nodes say where they see us (`ip` in their
//! answers, BEP 42) and peers do too (`yourip` in the extension handshake, BEP 10). Once
//! [`VOTERS_NEEDED`] distinct addresses agree, and more of them than on any other address,
//! that address is ours; the node then takes a BEP 42 id derived from it.
//!
//! Each voter (an IP address, not a port: one host with many nodes votes once) holds one
//! vote, its latest. Memory is bounded: at most [`MAX_VOTERS`] voters are remembered, the
//! oldest forgotten first.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Distinct voters that must agree before an address is taken as ours.
pub const VOTERS_NEEDED: usize = 3;
/// Voters remembered at once.
pub const MAX_VOTERS: usize = 64;

/// The running tally; see the module documentation.
#[derive(Debug, Default)]
pub struct ExternalIp {
    /// Each voter's latest vote.
    votes: HashMap<IpAddr, IpAddr>,
    /// Voters, oldest first (for forgetting).
    order: VecDeque<IpAddr>,
    /// The address decided on, if any.
    current: Option<IpAddr>,
}

impl ExternalIp {
    /// The address decided on, if any.
    pub fn current(&self) -> Option<IpAddr> {
        self.current
    }

    /// `voter` sees us at `seen`. Returns the address when this vote changes the decision.
    pub fn vote(&mut self, voter: IpAddr, seen: IpAddr) -> Option<IpAddr> {
        let (voter, seen) = (voter.to_canonical(), seen.to_canonical());
        if seen.is_unspecified() || seen.is_multicast() || voter == seen {
            return None;
        }
        if self.votes.insert(voter, seen).is_none() {
            self.order.push_back(voter);
            if self.order.len() > MAX_VOTERS {
                if let Some(old) = self.order.pop_front() {
                    self.votes.remove(&old);
                }
            }
        }
        let mut tally: HashMap<IpAddr, usize> = HashMap::new();
        for ip in self.votes.values() {
            *tally.entry(*ip).or_default() += 1;
        }
        let (&leader, &count) = tally.iter().max_by_key(|(_, &n)| n)?;
        let ties = tally.values().filter(|&&n| n == count).count();
        if count < VOTERS_NEEDED || ties > 1 || self.current == Some(leader) {
            return None;
        }
        self.current = Some(leader);
        Some(leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn three_distinct_voters_decide_and_one_host_votes_once() {
        let mut e = ExternalIp::default();
        let us = ip("203.0.113.7");
        assert_eq!(e.vote(ip("198.51.100.1"), us), None);
        // The same voter again (another node on the same host): still one vote.
        assert_eq!(e.vote(ip("198.51.100.1"), us), None);
        assert_eq!(e.vote(ip("198.51.100.2"), us), None);
        assert_eq!(e.vote(ip("198.51.100.3"), us), Some(us));
        assert_eq!(e.current(), Some(us));
        // Already decided: no change to report.
        assert_eq!(e.vote(ip("198.51.100.4"), us), None);
    }

    #[test]
    fn a_minority_of_liars_changes_nothing_and_a_tie_decides_nothing() {
        let mut e = ExternalIp::default();
        let us = ip("203.0.113.7");
        let lie = ip("192.0.2.66");
        for i in 1..=3 {
            e.vote(IpAddr::from([198, 51, 100, i]), us);
        }
        for i in 1..=2 {
            assert_eq!(e.vote(IpAddr::from([192, 0, 2, i]), lie), None);
        }
        assert_eq!(e.current(), Some(us));
        // A tie (3 to 3) keeps the decision.
        assert_eq!(e.vote(ip("192.0.2.3"), lie), None);
        assert_eq!(e.current(), Some(us));
        // A majority moves it (a new network, after a reconnect).
        assert_eq!(e.vote(ip("192.0.2.4"), lie), Some(lie));
    }

    #[test]
    fn a_voter_changes_its_vote_and_memory_stays_bounded() {
        let mut e = ExternalIp::default();
        for i in 0..10_000u32 {
            e.vote(
                IpAddr::from((0x0a00_0000 + i).to_be_bytes()),
                ip("203.0.113.9"),
            );
        }
        assert!(e.votes.len() <= MAX_VOTERS && e.order.len() <= MAX_VOTERS);
        assert_eq!(e.current(), Some(ip("203.0.113.9")));
        // IPv4-mapped IPv6 addresses count as the IPv4 address.
        let mut e = ExternalIp::default();
        for v in ["198.51.100.1", "::ffff:198.51.100.2", "198.51.100.3"] {
            e.vote(ip(v), ip("::ffff:203.0.113.7"));
        }
        assert_eq!(e.current(), Some(ip("203.0.113.7")));
    }
}
