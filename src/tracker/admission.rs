//! Who may hold one of the server's connection slots. No sockets, no clock: time (tracker
//! seconds) is passed in.
//!
//! Policy: at most `max` connections, and at most `per_address` from one address. A
//! connection that has not sent a complete request yet goes first when slots run short: a
//! newcomer finding every slot taken evicts the oldest such connection instead of being
//! turned away. TCP_DEFER_ACCEPT waits only a few seconds and SYN-cookie connections skip
//! it, so silent connections do reach us. Their age does not matter: honest clients send
//! their request with the connection, and a flood that keeps opening silent connections
//! would otherwise keep every slot held by young ones. Only connections that have sent a
//! complete request can make a newcomer wait.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refused {
    #[error("every connection slot is held by a client that has sent a request")]
    Full,
    #[error("this address holds its share of connection slots already")]
    AddressFull,
}

/// The source a connection is counted against: its IPv4 address, or the /64 of its IPv6
/// address (one host usually holds a whole /64). IPv4-mapped addresses count as IPv4.
pub(super) fn source(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// An admitted connection; give it back with [`Admission::leave`].
#[derive(Debug)]
pub(super) struct Ticket {
    id: u64,
    ip: IpAddr,
}

/// The slot table. `H` is what the caller needs to end an evicted connection (a
/// cancellation token in the server, anything in tests).
pub(super) struct Admission<H> {
    max: usize,
    /// `None`: no cap per address (behind a proxy every client has the proxy's address).
    per_address: Option<usize>,
    open: usize,
    by_address: HashMap<IpAddr, u32>,
    /// Connections without a complete request yet, by id (so oldest first), with their
    /// handles.
    waiting: BTreeMap<u64, H>,
    /// Evicted connections whose tasks have not ended yet: their slots count as free.
    evicted: HashSet<u64>,
    next_id: u64,
}

impl<H> Admission<H> {
    pub(super) fn new(max: usize, per_address: Option<usize>) -> Admission<H> {
        Admission {
            max,
            per_address,
            open: 0,
            by_address: HashMap::new(),
            waiting: BTreeMap::new(),
            evicted: HashSet::new(),
            next_id: 0,
        }
    }

    /// Connections holding a slot (evicted ones still ending are not counted).
    pub(super) fn open(&self) -> usize {
        self.open - self.evicted.len()
    }

    /// Admits a connection from `ip`, evicting the oldest connection without a complete
    /// request if every slot is taken. Returns the ticket and the evicted connection's
    /// handle, for the caller to end it.
    pub(super) fn admit(&mut self, ip: IpAddr) -> Result<(Ticket, Option<H>), Refused> {
        let from_ip = self.by_address.get(&ip).copied().unwrap_or(0);
        if self.per_address.is_some_and(|cap| from_ip as usize >= cap) {
            return Err(Refused::AddressFull);
        }
        let mut victim = None;
        if self.open() >= self.max {
            let (id, handle) = self.waiting.pop_first().ok_or(Refused::Full)?;
            self.evicted.insert(id);
            victim = Some(handle);
        }
        self.open += 1;
        *self.by_address.entry(ip).or_insert(0) += 1;
        let id = self.next_id;
        self.next_id += 1;
        Ok((Ticket { id, ip }, victim))
    }

    /// Marks the connection as not having sent a complete request yet: it may be evicted
    /// for a newcomer.
    pub(super) fn waiting(&mut self, ticket: &Ticket, handle: H) {
        self.waiting.insert(ticket.id, handle);
    }

    /// The connection has sent a complete request: it is no longer evicted for silence.
    pub(super) fn answered(&mut self, ticket: &Ticket) {
        self.waiting.remove(&ticket.id);
    }

    /// The connection has ended: its slot is free.
    pub(super) fn leave(&mut self, ticket: Ticket) {
        self.waiting.remove(&ticket.id);
        self.evicted.remove(&ticket.id);
        self.open -= 1;
        if let Some(n) = self.by_address.get_mut(&ticket.ip) {
            *n -= 1;
            if *n == 0 {
                self.by_address.remove(&ticket.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn silent_connections_give_way_oldest_first() {
        let mut slots = Admission::<&str>::new(3, None);
        let (a, _) = slots.admit(ip(1)).unwrap();
        slots.waiting(&a, "a");
        let (b, _) = slots.admit(ip(2)).unwrap();
        slots.waiting(&b, "b");
        let (c, _) = slots.admit(ip(3)).unwrap();
        // c has sent a request.
        let (d, victim) = slots.admit(ip(4)).unwrap();
        assert_eq!(victim, Some("a"));
        assert_eq!(slots.open(), 3);
        // b sends a request in time: it keeps its slot, and nobody is left to evict.
        slots.answered(&b);
        assert_eq!(slots.admit(ip(5)).unwrap_err(), Refused::Full);
        // The evicted task ends; its slot was already reused.
        slots.leave(a);
        assert_eq!(slots.open(), 3);
        slots.leave(c);
        assert!(slots.admit(ip(5)).is_ok());
        slots.leave(d);
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source(a), source(b));
        assert_ne!(source(a), source(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source(mapped), ip(1));
    }

    #[test]
    fn one_address_gets_its_share_only() {
        let mut slots = Admission::<()>::new(100, Some(2));
        let (a, _) = slots.admit(ip(1)).unwrap();
        let (_b, _) = slots.admit(ip(1)).unwrap();
        assert_eq!(slots.admit(ip(1)).unwrap_err(), Refused::AddressFull);
        assert!(slots.admit(ip(2)).is_ok());
        slots.leave(a);
        assert!(slots.admit(ip(1)).is_ok());
        // Without a cap (behind a proxy) one address may take every slot.
        let mut slots = Admission::<()>::new(3, None);
        for _ in 0..3 {
            slots.admit(ip(1)).unwrap();
        }
        assert_eq!(slots.admit(ip(1)).unwrap_err(), Refused::Full);
    }

    #[test]
    fn a_flood_of_silent_connections_never_locks_out_a_newcomer() {
        let mut slots = Admission::<u64>::new(100, None);
        let mut ended = Vec::new();
        for n in 0..10_000u64 {
            let flood = IpAddr::from([192, 0, 2, (n % 200) as u8]);
            let (t, victim) = slots
                .admit(flood)
                .expect("a flood connection evicts another");
            slots.waiting(&t, n);
            ended.extend(victim);
            assert!(slots.open() <= 100);
        }
        assert_eq!(ended.len(), 10_000 - 100);
        // Whenever it comes, an honest client gets a slot, and once it has sent its
        // request the flood cannot take it back.
        let (honest, victim) = slots.admit(ip(9)).expect("admitted");
        assert!(victim.is_some());
        slots.answered(&honest);
        for _ in 0..1_000 {
            let (t, _) = slots.admit(ip(7)).unwrap();
            slots.waiting(&t, 0);
        }
        assert!(!slots.waiting.contains_key(&honest.id));
        assert!(slots.open() <= 100);
    }
}
