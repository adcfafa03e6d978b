//! Keeping the table fresh (BEP 5): which nodes to ping, which buckets to refresh, and
//! how healthy the table is.

use super::{Health, NodeState, RoutingTable};
use crate::dht::id::NodeId;
use crate::dht::krpc::NodeInfo;
use std::time::Instant;

impl RoutingTable {
    /// Nodes to ping now, at most `max`, most useful first: questionable live nodes of
    /// buckets with candidates waiting, other questionable live nodes, cached nodes that
    /// never answered (those of buckets with room first), then bad live nodes. Each is
    /// marked, and not proposed again within [`Config::ping_retry`](super::Config::ping_retry). The node pings them
    /// and reports the answer ([`RoutingTable::insert`] with [`Contact::Responded`](super::Contact::Responded)) or
    /// its absence ([`RoutingTable::failed`]).
    pub fn nodes_to_ping(&mut self, now: Instant, max: usize) -> Vec<NodeInfo> {
        let config = &self.config;
        // (priority, last seen, bucket, live, index)
        let mut candidates: Vec<(u8, Instant, usize, bool, usize)> = Vec::new();
        for (b, bucket) in self.buckets.iter().enumerate() {
            let waiting = !bucket.replacements.is_empty();
            let room = bucket.live.len() < config.bucket_size;
            for (i, node) in bucket.live.iter().enumerate() {
                if !node.ping_due(now, config) {
                    continue;
                }
                let priority = match node.state(now, config) {
                    NodeState::Good => continue,
                    NodeState::Questionable if waiting => 0,
                    NodeState::Questionable => 1,
                    NodeState::Bad => 4,
                };
                candidates.push((priority, node.last_seen(), b, true, i));
            }
            for (i, node) in bucket.replacements.iter().enumerate() {
                if !node.confirmed() && node.ping_due(now, config) {
                    let priority = if room { 2 } else { 3 };
                    candidates.push((priority, node.last_seen(), b, false, i));
                }
            }
        }
        candidates.sort_unstable_by_key(|&(priority, seen, ..)| (priority, seen));
        candidates.truncate(max);
        candidates
            .into_iter()
            .map(|(_, _, b, live, i)| {
                let bucket = &mut self.buckets[b];
                let node = if live {
                    &mut bucket.live[i]
                } else {
                    &mut bucket.replacements[i]
                };
                node.pinged(now);
                node.info()
            })
            .collect()
    }

    /// Targets for refresh lookups (BEP 5): a random id in the range of each bucket that
    /// has not changed for [`Config::refresh_after`](super::Config::refresh_after) (or ever). Those buckets count as
    /// refreshed at `now`; the lookup's answers will touch them again.
    pub fn needs_refresh(&mut self, now: Instant) -> Vec<NodeId> {
        let last = self.buckets.len() - 1;
        let mut targets = Vec::new();
        for b in 0..=last {
            let due = self.buckets[b].last_changed.map_or(true, |t| {
                now.saturating_duration_since(t) >= self.config.refresh_after
            });
            if !due {
                continue;
            }
            self.buckets[b].last_changed = Some(now);
            targets.push(if b == last {
                NodeId::random_with_prefix(&self.own, b, &mut self.rng)
            } else {
                NodeId::random_with_prefix(&self.own.with_bit_flipped(b), b + 1, &mut self.rng)
            });
        }
        targets
    }

    /// Counts of live nodes by state at `now`, and of cached ones.
    pub fn health(&self, now: Instant) -> Health {
        let mut h = Health {
            buckets: self.buckets.len(),
            ..Health::default()
        };
        for bucket in &self.buckets {
            h.replacements += bucket.replacements.len();
            for node in &bucket.live {
                match node.state(now, &self.config) {
                    NodeState::Good => h.good += 1,
                    NodeState::Questionable => h.questionable += 1,
                    NodeState::Bad => h.bad += 1,
                }
            }
        }
        h
    }
}
