//! Tit-for-tat choker: which peers we upload to.
//!
//! Pure decisions from rates the session measures; time is passed in, never read.

use super::PeerKey;
use std::time::Duration;

/// How long the optimistic unchoke stays with one peer.
const OPTIMISTIC_PERIOD: Duration = Duration::from_secs(30);

/// Peers connected for less than this are new: 3x as likely to get the optimistic slot.
const NEW_PEER_AGE: Duration = Duration::from_secs(60);

/// Weight of a new peer in the optimistic draw (others weigh 1).
const NEW_PEER_WEIGHT: u64 = 3;

/// What the choker knows about one connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChokerPeer {
    /// The session's handle for the peer.
    pub key: PeerKey,
    /// The peer wants data from us.
    pub interested: bool,
    /// Bytes/s it sent us lately (used while we download).
    pub download_rate: u64,
    /// Bytes/s we sent it lately (used while we seed).
    pub upload_rate: u64,
    /// No block from it for a long time despite requests: never a regular slot.
    pub snubbed: bool,
    /// When it connected, as time since session start (new peers are 3x as likely to get the
    /// optimistic slot).
    pub connected_at: Duration,
    /// Whether it is unchoked now.
    pub unchoked: bool,
}

/// Decides whom to unchoke: `slots` regular slots by rate plus one rotating optimistic slot.
#[derive(Debug)]
pub struct Choker {
    slots: usize,
    rng: fastrand::Rng,
    optimistic: Option<PeerKey>,
    /// When the optimistic slot was last given to a peer.
    rotated_at: Duration,
}

impl Choker {
    /// A choker with `slots` regular unchoke slots (plus one optimistic); `seed` drives the
    /// optimistic draw, so equal inputs give equal decisions.
    pub fn new(slots: usize, seed: u64) -> Choker {
        Choker {
            slots,
            rng: fastrand::Rng::with_seed(seed),
            optimistic: None,
            rotated_at: Duration::ZERO,
        }
    }

    /// Decides who is unchoked; returns those peers (everyone else is choked), regular ones
    /// first, best rate first, then the optimistic one.
    ///
    /// Call every 10 s, and whenever an interested peer arrives while slots are free. `now`
    /// is time since session start. Regular slots go to the interested, non-snubbed peers
    /// with the highest rate (`upload_rate` when `seeding`, else `download_rate`), equal
    /// rates ranked by lower key; with fewer such peers than slots, all of them are unchoked.
    /// The optimistic slot goes to an interested peer outside the regular slots (snubbed ones
    /// included), drawn at random among those choked now (any, if none is), new peers (connected
    /// under 60 s ago) weighing 3x. It is kept until 30 s after it was drawn, unless its peer
    /// leaves, stops being interested or wins a regular slot. Peers not interested are never
    /// unchoked. Keys are expected to be unique in `peers`.
    pub fn decide(&mut self, now: Duration, seeding: bool, peers: &[ChokerPeer]) -> Vec<PeerKey> {
        let rate = |p: &ChokerPeer| {
            if seeding {
                p.upload_rate
            } else {
                p.download_rate
            }
        };
        let mut ranked: Vec<&ChokerPeer> = peers
            .iter()
            .filter(|p| p.interested && !p.snubbed)
            .collect();
        ranked.sort_by(|a, b| rate(b).cmp(&rate(a)).then(a.key.cmp(&b.key)));
        ranked.truncate(self.slots);
        let mut unchoke: Vec<PeerKey> = ranked.iter().map(|p| p.key).collect();

        let eligible = |p: &&ChokerPeer| p.interested && !unchoke.contains(&p.key);
        let keep = self.optimistic.filter(|&key| {
            now.saturating_sub(self.rotated_at) < OPTIMISTIC_PERIOD
                && peers.iter().filter(eligible).any(|p| p.key == key)
        });
        self.optimistic = match keep {
            Some(key) => Some(key),
            None => {
                let mut pool: Vec<&ChokerPeer> = peers
                    .iter()
                    .filter(eligible)
                    .filter(|p| !p.unchoked)
                    .collect();
                if pool.is_empty() {
                    pool = peers.iter().filter(eligible).collect();
                }
                let drawn = self.draw(now, &pool);
                if drawn.is_some() {
                    self.rotated_at = now;
                }
                drawn
            }
        };
        unchoke.extend(self.optimistic);
        unchoke
    }

    /// The peer holding the optimistic slot after the last [`Choker::decide`], if any.
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    /// Draws one peer, new ones weighing [`NEW_PEER_WEIGHT`].
    fn draw(&mut self, now: Duration, pool: &[&ChokerPeer]) -> Option<PeerKey> {
        let weight = |p: &ChokerPeer| {
            if now.saturating_sub(p.connected_at) < NEW_PEER_AGE {
                NEW_PEER_WEIGHT
            } else {
                1
            }
        };
        let total: u64 = pool.iter().map(|p| weight(p)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = self.rng.u64(..total);
        for p in pool {
            let w = weight(p);
            if ticket < w {
                return Some(p.key);
            }
            ticket -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interested, long-connected, choked peer with the given rates.
    fn peer(key: u64, download_rate: u64, upload_rate: u64) -> ChokerPeer {
        ChokerPeer {
            key: PeerKey(key),
            interested: true,
            download_rate,
            upload_rate,
            snubbed: false,
            connected_at: Duration::ZERO,
            unchoked: false,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn keys(ks: &[u64]) -> Vec<PeerKey> {
        ks.iter().map(|&k| PeerKey(k)).collect()
    }

    /// Marks the peers in `unchoked` as unchoked, the others as choked.
    fn apply(peers: &mut [ChokerPeer], unchoked: &[PeerKey]) {
        for p in peers {
            p.unchoked = unchoked.contains(&p.key);
        }
    }

    #[test]
    fn leeching_ranks_by_download_rate() {
        let peers: Vec<ChokerPeer> = (1..=6).map(|k| peer(k, k * 100, 1000 - k)).collect();
        let mut choker = Choker::new(3, 0);
        let got = choker.decide(secs(100), false, &peers);
        assert_eq!(got[..3], keys(&[6, 5, 4]));
        assert_eq!(got.len(), 4);
        assert!(keys(&[1, 2, 3]).contains(&got[3]));
        assert_eq!(choker.optimistic(), Some(got[3]));
    }

    #[test]
    fn seeding_ranks_by_upload_rate() {
        let peers: Vec<ChokerPeer> = (1..=6).map(|k| peer(k, k * 100, 1000 - k)).collect();
        let got = Choker::new(2, 0).decide(secs(100), true, &peers);
        assert_eq!(got[..2], keys(&[1, 2]));
    }

    #[test]
    fn equal_rates_rank_by_key() {
        let peers: Vec<ChokerPeer> = [9, 4, 7].iter().map(|&k| peer(k, 50, 0)).collect();
        let got = Choker::new(2, 0).decide(secs(100), false, &peers);
        assert_eq!(got, keys(&[4, 7, 9]));
    }

    #[test]
    fn snubbed_peers_get_no_regular_slot() {
        let mut peers: Vec<ChokerPeer> = (1..=4).map(|k| peer(k, k * 100, 0)).collect();
        peers[3].snubbed = true;
        peers[2].snubbed = true;
        let mut choker = Choker::new(2, 0);
        let got = choker.decide(secs(100), false, &peers);
        assert_eq!(got[..2], keys(&[2, 1]));
        assert!(
            keys(&[3, 4]).contains(&got[2]),
            "only the optimistic slot is left"
        );
    }

    #[test]
    fn peers_not_interested_are_never_unchoked() {
        for seed in 0..50 {
            let mut peers: Vec<ChokerPeer> = (1..=5).map(|k| peer(k, k * 100, 0)).collect();
            for p in &mut peers[2..] {
                p.interested = false;
            }
            let mut choker = Choker::new(4, seed);
            let got = choker.decide(secs(10), false, &peers);
            // Fewer interested peers than slots: all of them, no one else.
            assert_eq!(got, keys(&[2, 1]));
            assert_eq!(choker.optimistic(), None);
        }
    }

    #[test]
    fn optimistic_is_never_a_regular_peer() {
        for seed in 0..100 {
            let peers: Vec<ChokerPeer> = (1..=5).map(|k| peer(k, k * 100, 0)).collect();
            let mut choker = Choker::new(3, seed);
            let got = choker.decide(secs(0), false, &peers);
            assert_eq!(got.len(), 4);
            assert!(keys(&[1, 2]).contains(&got[3]));
        }
    }

    #[test]
    fn optimistic_rotates_only_after_30_seconds() {
        let mut peers: Vec<ChokerPeer> = (1..=8).map(|k| peer(k, 0, 0)).collect();
        let mut choker = Choker::new(0, 5);
        let mut run = |now: u64, peers: &mut Vec<ChokerPeer>| {
            let got = choker.decide(secs(now), false, peers);
            apply(peers, &got);
            assert_eq!(got.len(), 1);
            got[0]
        };
        let first = run(1000, &mut peers);
        for now in [1010, 1020, 1029] {
            assert_eq!(run(now, &mut peers), first, "at {now} s");
        }
        let second = run(1031, &mut peers);
        assert_ne!(second, first, "the slot moves to a choked peer");
        assert_eq!(run(1060, &mut peers), second);
    }

    #[test]
    fn optimistic_moves_when_its_peer_leaves_or_loses_interest() {
        let mut peers: Vec<ChokerPeer> = (1..=4).map(|k| peer(k, 0, 0)).collect();
        let mut choker = Choker::new(0, 1);
        let first = choker.decide(secs(0), false, &peers)[0];
        peers.retain(|p| p.key != first);
        let second = choker.decide(secs(1), false, &peers)[0];
        assert_ne!(second, first);
        peers
            .iter_mut()
            .find(|p| p.key == second)
            .unwrap()
            .interested = false;
        let third = choker.decide(secs(2), false, &peers)[0];
        assert!(third != first && third != second);
        // Winning a regular slot frees the optimistic one for someone else.
        let mut choker = Choker::new(1, 1);
        let mut peers: Vec<ChokerPeer> = (1..=4).map(|k| peer(k, 10, 0)).collect();
        let got = choker.decide(secs(0), false, &peers);
        peers
            .iter_mut()
            .find(|p| p.key == got[1])
            .unwrap()
            .download_rate = 1000;
        let again = choker.decide(secs(1), false, &peers);
        assert_eq!(again[0], got[1]);
        assert!(again[1] != got[1]);
    }

    #[test]
    fn new_peers_are_three_times_as_likely_to_be_optimistic() {
        let mut peers = vec![peer(1, 0, 0), peer(2, 0, 0)];
        peers[1].connected_at = secs(950);
        let new_wins = (0..2000)
            .filter(|&seed| Choker::new(0, seed).decide(secs(1000), false, &peers)[0] == PeerKey(2))
            .count();
        // Expected 1500 of 2000.
        assert!((1380..1620).contains(&new_wins), "{new_wins}");
    }
}
