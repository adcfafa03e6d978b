//! Stateless connection ids (BEP 15): a keyed hash of the client's address and a coarse
//! clock, so the tracker stores nothing for a client before it has proven its address by
//! echoing the id back. An id is accepted for two to three minutes after it was issued.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;

/// Seconds per epoch of the coarse clock: an id is good in its epoch and the two after.
const EPOCH_SECONDS: u64 = 60;

/// Issues and checks connection ids with a secret key chosen at start.
pub struct ConnectionIds {
    key: RandomState,
}

impl Default for ConnectionIds {
    fn default() -> Self {
        ConnectionIds {
            key: RandomState::new(),
        }
    }
}

impl ConnectionIds {
    fn at(&self, addr: SocketAddr, epoch: u64) -> u64 {
        self.key
            .hash_one((addr.ip().to_canonical(), addr.port(), epoch))
    }

    /// The id for a client at `addr`, `now` seconds into any fixed clock.
    pub fn issue(&self, addr: SocketAddr, now: u64) -> u64 {
        self.at(addr, now / EPOCH_SECONDS)
    }

    /// Whether `id` was issued to `addr` within the last two to three minutes.
    pub fn check(&self, id: u64, addr: SocketAddr, now: u64) -> bool {
        let epoch = now / EPOCH_SECONDS;
        (0..3).any(|back| epoch >= back && self.at(addr, epoch - back) == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_good_for_its_address_for_two_minutes_at_least() {
        let ids = ConnectionIds::default();
        let a: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:6881".parse().unwrap();
        let id = ids.issue(a, 1_000);
        assert!(ids.check(id, a, 1_000));
        assert!(ids.check(id, a, 1_000 + 120));
        assert!(!ids.check(id, a, 1_000 + 180));
        assert!(!ids.check(id, b, 1_000), "another address");
        assert!(!ids.check(id ^ 1, a, 1_000), "forged");
        let other = ConnectionIds::default();
        assert!(!other.check(id, a, 1_000), "another key");
    }
}
