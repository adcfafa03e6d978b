//! Our external IP addresses, by vote: DHT nodes say where they see us (`ip` in their
//! answers, BEP 42) and peers do too (`yourip` in the extension handshake, BEP 10). Each
//! address family has its own tally (an IPv4 voter can only speak of our IPv4 address).
//! Once [`VOTERS_NEEDED`] distinct voters agree, and more of them than on any other
//! address, that address is ours; the node then takes a BEP 42 id derived from it.
//!
//! A voter is a network, not an address: an IPv4 /24 or an IPv6 /64 (one host or home
//! network with many addresses votes once). Each holds one vote, its latest. Memory is
//! bounded: at most [`MAX_VOTERS`] voters per family are remembered, the one silent
//! longest forgotten first.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Distinct voters that must agree before an address is taken as ours.
pub const VOTERS_NEEDED: usize = 3;
/// Voters remembered at once, per family.
pub const MAX_VOTERS: usize = 64;

/// One family's tally.
#[derive(Debug, Default)]
struct Tally {
    /// Each voter's latest vote.
    votes: HashMap<IpAddr, IpAddr>,
    /// Voters, the one silent longest first.
    order: VecDeque<IpAddr>,
    /// The address decided on, if any.
    current: Option<IpAddr>,
}

impl Tally {
    fn vote(&mut self, voter: IpAddr, seen: IpAddr) -> Option<IpAddr> {
        if self.votes.insert(voter, seen).is_some() {
            self.order.retain(|v| *v != voter);
        }
        self.order.push_back(voter);
        if self.order.len() > MAX_VOTERS {
            if let Some(old) = self.order.pop_front() {
                self.votes.remove(&old);
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

/// The running tallies; see the module documentation.
#[derive(Debug, Default)]
pub struct ExternalIp {
    v4: Tally,
    v6: Tally,
}

impl ExternalIp {
    /// The IPv4 address decided on, if any.
    pub fn v4(&self) -> Option<IpAddr> {
        self.v4.current
    }

    /// The IPv6 address decided on, if any.
    pub fn v6(&self) -> Option<IpAddr> {
        self.v6.current
    }

    /// `voter` sees us at `seen`. Returns the address when this vote changes its family's
    /// decision. A vote across families, or for an address we cannot be, is ignored.
    pub fn vote(&mut self, voter: IpAddr, seen: IpAddr) -> Option<IpAddr> {
        let (voter, seen) = (voter.to_canonical(), seen.to_canonical());
        if seen.is_unspecified() || seen.is_multicast() || voter == seen {
            return None;
        }
        match (voter, seen) {
            (IpAddr::V4(v), IpAddr::V4(_)) => {
                let [a, b, c, _] = v.octets();
                self.v4.vote(IpAddr::V4(Ipv4Addr::new(a, b, c, 0)), seen)
            }
            (IpAddr::V6(v), IpAddr::V6(_)) => {
                let net = u128::from(v) & !u128::from(u64::MAX);
                self.v6.vote(IpAddr::V6(Ipv6Addr::from(net)), seen)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn three_distinct_networks_decide_and_one_network_votes_once() {
        let mut e = ExternalIp::default();
        let us = ip("203.0.113.7");
        assert_eq!(e.vote(ip("198.51.100.1"), us), None);
        // The same /24 again (another host of that network): still one vote.
        assert_eq!(e.vote(ip("198.51.100.2"), us), None);
        assert_eq!(e.vote(ip("198.51.101.1"), us), None);
        assert_eq!(e.vote(ip("198.51.102.1"), us), Some(us));
        assert_eq!(e.v4(), Some(us));
        // Already decided: no change to report.
        assert_eq!(e.vote(ip("198.51.103.1"), us), None);
    }

    #[test]
    fn a_minority_of_liars_changes_nothing_and_a_tie_decides_nothing() {
        let mut e = ExternalIp::default();
        let us = ip("203.0.113.7");
        let lie = ip("192.0.2.66");
        for i in 1..=3 {
            e.vote(IpAddr::from([198, 51, i, 1]), us);
        }
        for i in 1..=2 {
            assert_eq!(e.vote(IpAddr::from([192, 0, i, 1]), lie), None);
        }
        assert_eq!(e.v4(), Some(us));
        // A tie (3 to 3) keeps the decision.
        assert_eq!(e.vote(ip("192.0.3.1"), lie), None);
        assert_eq!(e.v4(), Some(us));
        // A majority moves it (a new network, after a reconnect).
        assert_eq!(e.vote(ip("192.0.4.1"), lie), Some(lie));
    }

    #[test]
    fn one_ipv6_network_cannot_outvote_everyone_and_families_stay_apart() {
        let mut e = ExternalIp::default();
        let us = ip("203.0.113.7");
        for i in 0..40u8 {
            e.vote(IpAddr::from([198, 51, i, 1]), us);
        }
        // Thousands of addresses of one /64 claim another IPv4 address: not counted (a
        // vote across families), and as IPv6 voters they count once.
        for i in 0..5000u16 {
            let voter = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]);
            assert_eq!(e.vote(voter, ip("192.0.2.66")), None);
            assert_eq!(e.vote(voter, ip("2001:db8:ffff::1")), None);
        }
        assert_eq!(e.v4(), Some(us));
        assert_eq!(e.v6(), None, "one /64 is one voter");
        // IPv6 voters decide our IPv6 address, apart from the IPv4 one.
        let us6 = ip("2001:db8:aaaa::7");
        for i in 1..=3u16 {
            e.vote(IpAddr::from([0x2001, 0xdb8, i, 0, 0, 0, 0, 1]), us6);
        }
        assert_eq!((e.v4(), e.v6()), (Some(us), Some(us6)));
    }

    #[test]
    fn voters_are_bounded_and_the_longest_silent_is_forgotten() {
        let mut e = ExternalIp::default();
        let us = ip("203.0.113.9");
        for i in 0..10_000u32 {
            e.vote(IpAddr::from((0x0a00_0000 + (i << 8)).to_be_bytes()), us);
        }
        assert!(e.v4.votes.len() <= MAX_VOTERS && e.v4.order.len() <= MAX_VOTERS);
        assert_eq!(e.v4(), Some(us));
        // A voter that votes again is the newest, not the next forgotten.
        let mut e = ExternalIp::default();
        let first = ip("198.51.100.1");
        e.vote(first, us);
        for i in 0..MAX_VOTERS as u32 - 1 {
            e.vote(IpAddr::from((0x0b00_0000 + (i << 8)).to_be_bytes()), us);
        }
        e.vote(first, us);
        e.vote(ip("192.0.2.1"), us);
        assert!(e.v4.votes.contains_key(&ip("198.51.100.0")));
        // IPv4-mapped IPv6 addresses count as IPv4.
        let mut e = ExternalIp::default();
        for v in ["198.51.100.1", "::ffff:198.51.101.2", "198.51.102.3"] {
            e.vote(ip(v), ip("::ffff:203.0.113.7"));
        }
        assert_eq!(e.v4(), Some(ip("203.0.113.7")));
    }
}
