//! BEP 43 read-only mode while we are not reachable. A node behind a NAT or firewall that
//! drops unsolicited datagrams is useless in others' routing tables: they would query it
//! in vain. Such a node says `ro=1` in its queries, so nobody adds it.
//!
//! We cannot ask the network whether we are reachable, but we can notice: a node that is
//! in others' tables gets queries from nodes it never contacted first. The rule:
//! - Start as a full node. Once the table holds [`K`] nodes, a node that has heard no
//!   query for [`QUIET_FOR`] goes read-only. Its answers do not change: a node wrongly
//!   judged (in a small, quiet swarm) stays in the tables that hold it, and newcomers still
//!   add it when it answers their pings.
//! - Any query that reaches us (from a node that is not itself read-only) makes us a full
//!   node again at once.
//! - Read-only, every [`PROBE_EVERY`] we act as a full node for [`QUIET_FOR`] again (our
//!   queries then let nodes add us): if the network has found a way to us, a query
//!   arrives and we stay a full node; if not, we go back to read-only.
//!
//! Sans-IO: the node reports queries and passes the time; the mode is read back.

use crate::dht::routing::K;
use std::time::{Duration, Instant};

/// Silence after which a node with a full enough table is taken as unreachable: twice the
/// 15 minutes after which a node in others' tables is pinged (BEP 5), so a reachable node
/// in any table hears from it within the window; in the Mainline DHT a reachable node
/// hears queries every few seconds.
pub const QUIET_FOR: Duration = Duration::from_secs(30 * 60);
/// How often a read-only node tries being a full node again.
pub const PROBE_EVERY: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A full node; judged from `since` (start, a query, or a probe's start).
    Full { since: Instant },
    /// Read-only since then.
    ReadOnly { since: Instant },
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Reachability {
    mode: Mode,
    /// Queries that reached us.
    queries: u64,
}

impl Reachability {
    pub fn new(now: Instant) -> Reachability {
        Reachability {
            mode: Mode::Full { since: now },
            queries: 0,
        }
    }

    /// A query from a full node reached us: we are reachable.
    pub fn on_query(&mut self, now: Instant) {
        self.queries += 1;
        self.mode = Mode::Full { since: now };
    }

    /// Time passed; `table` is how many nodes the routing table holds.
    pub fn tick(&mut self, now: Instant, table: usize) {
        match self.mode {
            Mode::Full { since } => {
                if table >= K && now.saturating_duration_since(since) >= QUIET_FOR {
                    tracing::info!(
                        "DHT: no query reached us in {} minutes: read-only (BEP 43)",
                        QUIET_FOR.as_secs() / 60
                    );
                    self.mode = Mode::ReadOnly { since: now };
                }
            }
            Mode::ReadOnly { since } => {
                if now.saturating_duration_since(since) >= PROBE_EVERY {
                    self.mode = Mode::Full { since: now };
                }
            }
        }
    }

    /// Whether our queries say `ro=1` now.
    pub fn read_only(&self) -> bool {
        matches!(self.mode, Mode::ReadOnly { .. })
    }

    /// Queries that reached us so far.
    pub fn queries(&self) -> u64 {
        self.queries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_nobody_queries_goes_read_only_and_probes_every_hour() {
        let t0 = Instant::now();
        let mut r = Reachability::new(t0);
        // A small table: too early to judge, however long the silence.
        r.tick(t0 + QUIET_FOR * 3, K - 1);
        assert!(!r.read_only());
        let t1 = t0 + QUIET_FOR * 3;
        r.tick(t1, K);
        assert!(r.read_only(), "full table, no query for QUIET_FOR");
        r.tick(t1 + PROBE_EVERY - Duration::from_secs(1), K);
        assert!(r.read_only());
        let probe = t1 + PROBE_EVERY;
        r.tick(probe, K);
        assert!(!r.read_only(), "a probe: a full node again for a while");
        r.tick(probe + QUIET_FOR, K);
        assert!(r.read_only(), "nobody came: read-only again");
    }

    #[test]
    fn a_query_makes_a_node_full_at_once_and_keeps_it_so() {
        let t0 = Instant::now();
        let mut r = Reachability::new(t0);
        r.tick(t0 + QUIET_FOR, K);
        assert!(r.read_only());
        r.on_query(t0 + QUIET_FOR + Duration::from_secs(1));
        assert!(!r.read_only());
        // Queries every few minutes keep it a full node.
        for m in 1..20u64 {
            let now = t0 + QUIET_FOR + Duration::from_secs(m * 300);
            r.on_query(now);
            r.tick(now + Duration::from_secs(1), K);
            assert!(!r.read_only(), "minute {}", m * 5);
        }
        assert_eq!(r.queries(), 20);
    }
}
