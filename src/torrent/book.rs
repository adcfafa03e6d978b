//! The peer book: addresses we could connect to, by where we learned them, with retry
//! backoff. It never dials by itself; the engine asks it whom to dial next.

use crate::core::keyed::Map as HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where a peer address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerSource {
    /// Given by the user (`--peer`): retried for as long as the torrent runs.
    Manual,
    /// From a tracker's announce reply.
    Tracker,
    /// It connected to us (its address is not a listening port: never dialled).
    Incoming,
    /// From peer exchange (BEP 11).
    Pex,
    /// From the DHT (BEP 5).
    Dht,
}

/// Most addresses kept per torrent; beyond it the least promising one is forgotten.
pub const MAX_CANDIDATES: usize = 2000;
/// Failed attempts after which an address (not a manual one) is forgotten.
const MAX_FAILURES: u32 = 6;
/// First retry delay after a failed dial; doubles with each failure.
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Longest retry delay.
const MAX_RETRY: Duration = Duration::from_secs(600);
/// Longest retry delay for manual peers (the user named them: they are probably coming).
const MANUAL_RETRY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Candidate {
    source: PeerSource,
    failures: u32,
    next_try: Instant,
    /// Dialling or connected: not a candidate now.
    busy: bool,
}

/// Candidate addresses with backoff; see the module documentation.
#[derive(Debug, Default)]
pub struct PeerBook {
    entries: HashMap<SocketAddr, Candidate>,
}

impl PeerBook {
    /// Records an address learned from `source` (a known one keeps its state; a manual
    /// source upgrades it). Returns false when refused: the book is full of better ones.
    pub fn add(&mut self, now: Instant, source: PeerSource, addr: SocketAddr) -> bool {
        if let Some(c) = self.entries.get_mut(&addr) {
            if source == PeerSource::Manual {
                c.source = PeerSource::Manual;
            }
            return true;
        }
        if self.entries.len() >= MAX_CANDIDATES && !self.evict_one() {
            return false;
        }
        self.entries.insert(
            addr,
            Candidate {
                source,
                failures: 0,
                next_try: now,
                busy: false,
            },
        );
        true
    }

    /// Forgets the idle, non-manual address that failed most; false if there is none.
    fn evict_one(&mut self) -> bool {
        let worst = self
            .entries
            .iter()
            .filter(|(_, c)| !c.busy && c.source != PeerSource::Manual)
            .max_by_key(|(_, c)| c.failures)
            .map(|(a, _)| *a);
        worst.is_some_and(|a| self.entries.remove(&a).is_some())
    }

    /// The next address worth dialling now (marked busy), skipping those `skip` refuses.
    /// Manual peers first.
    pub fn next_to_dial(
        &mut self,
        now: Instant,
        skip: impl Fn(SocketAddr) -> bool,
    ) -> Option<SocketAddr> {
        let (addr, c) = self
            .entries
            .iter_mut()
            .filter(|(a, c)| {
                !c.busy && c.source != PeerSource::Incoming && c.next_try <= now && !skip(**a)
            })
            .min_by_key(|(_, c)| (c.source, c.failures))?;
        c.busy = true;
        Some(*addr)
    }

    /// A connection to or from `addr` is up (an incoming one is recorded as such).
    pub fn connected(&mut self, now: Instant, addr: SocketAddr, source: PeerSource) {
        self.add(now, source, addr);
        if let Some(c) = self.entries.get_mut(&addr) {
            c.busy = true;
            c.failures = 0;
        }
    }

    /// Dialling `addr` failed: retry later, with a longer delay each time.
    pub fn dial_failed(&mut self, now: Instant, addr: SocketAddr) {
        let Some(c) = self.entries.get_mut(&addr) else {
            return;
        };
        c.busy = false;
        c.failures += 1;
        if c.source != PeerSource::Manual && c.failures >= MAX_FAILURES {
            self.entries.remove(&addr);
            return;
        }
        let cap = if c.source == PeerSource::Manual {
            MANUAL_RETRY
        } else {
            MAX_RETRY
        };
        c.next_try = now + (FIRST_RETRY * 2u32.saturating_pow(c.failures - 1)).min(cap);
    }

    /// The connection with `addr` ended: it may be dialled again after `retry_after`, or
    /// never (`None`: forgotten). Addresses of incoming connections are always forgotten.
    pub fn disconnected(&mut self, now: Instant, addr: SocketAddr, retry_after: Option<Duration>) {
        let Some(c) = self.entries.get_mut(&addr) else {
            return;
        };
        match retry_after {
            Some(after) if c.source != PeerSource::Incoming => {
                c.busy = false;
                c.next_try = now
                    + if c.source == PeerSource::Manual {
                        after.min(MANUAL_RETRY)
                    } else {
                        after
                    };
            }
            _ => {
                self.entries.remove(&addr);
            }
        }
    }

    /// Every address not busy may be dialled now (a magnet torrent's metadata arrived:
    /// the peers it dropped are wanted back at once).
    pub fn retry_all_now(&mut self, now: Instant) {
        for c in self.entries.values_mut() {
            if !c.busy {
                c.next_try = now;
            }
        }
    }

    /// Whether some address could be dialled now or later.
    pub fn has_candidates(&self) -> bool {
        self.entries
            .values()
            .any(|c| !c.busy && c.source != PeerSource::Incoming)
    }

    /// Whether some address could be dialled now.
    pub fn ready(&self, now: Instant) -> bool {
        self.entries
            .values()
            .any(|c| !c.busy && c.source != PeerSource::Incoming && c.next_try <= now)
    }

    /// Addresses known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 6881))
    }

    #[test]
    fn failed_dials_back_off_and_are_forgotten_manual_ones_are_not() {
        let t0 = Instant::now();
        let mut book = PeerBook::default();
        book.add(t0, PeerSource::Tracker, addr(1));
        book.add(t0, PeerSource::Manual, addr(2));
        assert_eq!(
            book.next_to_dial(t0, |_| false),
            Some(addr(2)),
            "manual first"
        );
        assert_eq!(book.next_to_dial(t0, |_| false), Some(addr(1)));
        assert_eq!(book.next_to_dial(t0, |_| false), None, "both busy");
        book.dial_failed(t0, addr(1));
        book.dial_failed(t0, addr(2));
        assert_eq!(
            book.next_to_dial(t0 + Duration::from_secs(9), |_| false),
            None
        );
        let t1 = t0 + Duration::from_secs(10);
        assert!(book.next_to_dial(t1, |_| false).is_some());
        assert!(book.next_to_dial(t1, |_| false).is_some());
        let mut t = t1;
        for _ in 1..MAX_FAILURES {
            book.dial_failed(t, addr(1));
            book.dial_failed(t, addr(2));
            t += MAX_RETRY;
            while book.next_to_dial(t, |_| false).is_some() {}
        }
        assert_eq!(
            book.len(),
            1,
            "the tracker address is forgotten, the manual one kept"
        );
    }

    #[test]
    fn incoming_addresses_are_never_dialled_and_seeds_can_be_forgotten() {
        let t0 = Instant::now();
        let mut book = PeerBook::default();
        book.connected(t0, addr(3), PeerSource::Incoming);
        book.disconnected(t0, addr(3), Some(Duration::ZERO));
        assert!(book.is_empty());
        book.add(t0, PeerSource::Tracker, addr(4));
        assert_eq!(book.next_to_dial(t0, |_| false), Some(addr(4)));
        book.disconnected(t0, addr(4), None);
        assert!(book.is_empty());
    }

    #[test]
    fn a_full_book_evicts_the_worst_not_the_manual() {
        let t0 = Instant::now();
        let mut book = PeerBook::default();
        for i in 0..MAX_CANDIDATES {
            let a = SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 1));
            assert!(book.add(t0, PeerSource::Tracker, a));
        }
        assert!(book.add(t0, PeerSource::Manual, addr(9)));
        assert_eq!(book.len(), MAX_CANDIDATES);
        assert_eq!(book.next_to_dial(t0, |_| false), Some(addr(9)));
    }
}
