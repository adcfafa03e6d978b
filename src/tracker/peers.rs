//! One swarm's peers of one address family: compact keys in parallel arrays with one
//! index over seeders and leechers, and the random circular pick of a reply's peers.
//! No sockets, no clock: time is passed in.

use super::swarm::{PeerList, Prefix};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Range;

/// One role's peers (seeders or leechers) of one address family, as parallel arrays: a
/// compact reply copies a run of `keys` and touches nothing else.
pub(super) struct PeerVec<K> {
    /// Compact address+port (BEP 23: 4+2 bytes for IPv4, 16+2 for IPv6), also the key.
    pub(super) keys: Vec<K>,
    pub(super) ids: Vec<[u8; 20]>,
    /// Tracker clock (seconds) of each peer's last announce.
    pub(super) seen: Vec<u32>,
}

impl<K> Default for PeerVec<K> {
    fn default() -> Self {
        PeerVec {
            keys: Vec::new(),
            ids: Vec::new(),
            seen: Vec::new(),
        }
    }
}

impl<K: Copy> PeerVec<K> {
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn push(&mut self, key: K, id: [u8; 20], now: u32) {
        self.keys.push(key);
        self.ids.push(id);
        self.seen.push(now);
    }

    /// Removes entry `i` by moving the last one into its place; returns the key moved, if any.
    pub(super) fn swap_remove(&mut self, i: usize) -> Option<K> {
        self.keys.swap_remove(i);
        self.ids.swap_remove(i);
        self.seen.swap_remove(i);
        self.keys.get(i).copied()
    }
}

/// Where a peer sits: its role (top bit set for a seeder) and its index in that role's
/// [`PeerVec`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot(u32);

/// Most peers one role of one family can hold (the index has 31 bits).
pub(super) const MAX_SLOT: usize = (1 << 31) - 1;

impl Slot {
    const SEEDER: u32 = 1 << 31;

    pub(super) fn new(seeder: bool, index: usize) -> Slot {
        debug_assert!(index <= MAX_SLOT);
        Slot(index as u32 | if seeder { Slot::SEEDER } else { 0 })
    }

    pub(super) fn seeder(self) -> bool {
        self.0 & Slot::SEEDER != 0
    }

    pub(super) fn index(self) -> usize {
        (self.0 & !Slot::SEEDER) as usize
    }
}

/// Seeders and leechers of one address family, with one index over both so an announce
/// costs a single hash lookup.
pub(super) struct Peers<K> {
    pub(super) index: HashMap<K, Slot>,
    pub(super) seeders: PeerVec<K>,
    pub(super) leechers: PeerVec<K>,
}

impl<K> Default for Peers<K> {
    fn default() -> Self {
        Peers {
            index: HashMap::new(),
            seeders: PeerVec::default(),
            leechers: PeerVec::default(),
        }
    }
}

/// A compact address+port key of one family, and how runs of them go into a reply.
pub(super) trait CompactKey: Hash + Eq + Copy {
    /// Appends these peers to `list` in the form the client asked for.
    fn add_to(list: &mut PeerList, keys: &[Self], ids: &[[u8; 20]]);

    /// The address prefix this peer is charged to.
    fn prefix(&self) -> Prefix;
}

impl CompactKey for [u8; 6] {
    fn add_to(list: &mut PeerList, keys: &[Self], ids: &[[u8; 20]]) {
        list.add4(keys, ids);
    }

    fn prefix(&self) -> Prefix {
        Prefix::v4([self[0], self[1], self[2], self[3]])
    }
}

impl CompactKey for [u8; 18] {
    fn add_to(list: &mut PeerList, keys: &[Self], ids: &[[u8; 20]]) {
        list.add6(keys, ids);
    }

    fn prefix(&self) -> Prefix {
        Prefix::v6(&self[..6])
    }
}

/// How one announce changed its peer: role before and after (`None` when absent,
/// `Some(true)` as a seeder), and where it now sits in its role's arrays.
pub(super) struct Change {
    pub(super) before: Option<bool>,
    pub(super) after: Option<bool>,
    pub(super) at: Option<usize>,
}

impl<K: CompactKey> Peers<K> {
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    pub(super) fn role(&mut self, seeder: bool) -> &mut PeerVec<K> {
        if seeder {
            &mut self.seeders
        } else {
            &mut self.leechers
        }
    }

    /// Takes the entry at `slot` out of its arrays and re-points the index at the entry
    /// moved into its place. The key itself must already be out of the index.
    pub(super) fn take_out(&mut self, slot: Slot) {
        let seeder = slot.seeder();
        if let Some(moved) = self.role(seeder).swap_remove(slot.index()) {
            self.index.insert(moved, Slot::new(seeder, slot.index()));
        }
    }

    /// Removes the peer; returns whether it was a seeder (`None` if unknown).
    pub(super) fn remove(&mut self, key: &K) -> Option<bool> {
        let slot = self.index.remove(key)?;
        self.take_out(slot);
        Some(slot.seeder())
    }

    /// Records an announce from `key`: refreshes it, moves it between roles, or adds it if
    /// `room()` allows (asked only for a new peer); a stopped peer is removed.
    pub(super) fn update(
        &mut self,
        key: K,
        id: [u8; 20],
        now: u32,
        seeder: bool,
        stopped: bool,
        room: impl FnOnce() -> bool,
    ) -> Change {
        if stopped {
            let before = self.remove(&key);
            return Change {
                before,
                after: None,
                at: None,
            };
        }
        let target_len = self.role(seeder).len();
        match self.index.entry(key) {
            Entry::Occupied(mut e) => {
                let old = *e.get();
                if old.seeder() == seeder {
                    let i = old.index();
                    let set = self.role(seeder);
                    set.ids[i] = id;
                    set.seen[i] = now;
                    return Change {
                        before: Some(seeder),
                        after: Some(seeder),
                        at: Some(i),
                    };
                }
                e.insert(Slot::new(seeder, target_len));
                self.role(seeder).push(key, id, now);
                self.take_out(old);
                Change {
                    before: Some(!seeder),
                    after: Some(seeder),
                    at: Some(target_len),
                }
            }
            Entry::Vacant(e) => {
                if target_len >= MAX_SLOT || !room() {
                    return Change {
                        before: None,
                        after: None,
                        at: None,
                    };
                }
                e.insert(Slot::new(seeder, target_len));
                self.role(seeder).push(key, id, now);
                Change {
                    before: None,
                    after: Some(seeder),
                    at: Some(target_len),
                }
            }
        }
    }

    /// Adds up to `want` peers to `list`, read as one circular run from a random start:
    /// seeders then leechers for a leecher; for a seeder, leechers first (the peers it can
    /// help), then seeders if room is left. (A client fetching a magnet link's metadata may
    /// announce `left=0`, as aria2 does, and needs the seeds.) `me` (its role and index) is
    /// left out.
    pub(super) fn pick(
        &self,
        me: Option<(bool, usize)>,
        seeder: bool,
        want: usize,
        rng: &mut fastrand::Rng,
        list: &mut PeerList,
    ) {
        let pools: &[(bool, &PeerVec<K>)] = if seeder {
            &[(false, &self.leechers)]
        } else {
            &[(true, &self.seeders), (false, &self.leechers)]
        };
        let before = list.len;
        self.pick_from(pools, me, want, rng, list);
        if seeder {
            let rest = want - (list.len - before);
            self.pick_from(&[(true, &self.seeders)], me, rest, rng, list);
        }
    }

    /// [`Peers::pick`] over the given pools, read as one sequence.
    fn pick_from(
        &self,
        pools: &[(bool, &PeerVec<K>)],
        me: Option<(bool, usize)>,
        want: usize,
        rng: &mut fastrand::Rng,
        list: &mut PeerList,
    ) {
        let lens = [pools[0].1.len(), pools.get(1).map_or(0, |p| p.1.len())];
        let skip = me.and_then(|(role, i)| {
            let p = pools.iter().position(|&(r, _)| r == role)?;
            Some((p, i))
        });
        circular_runs(&lens, skip, want, rng, |p, run| {
            let set = pools[p].1;
            K::add_to(list, &set.keys[run.clone()], &set.ids[run]);
        });
    }

    /// Removes the peers last seen before `oldest`, telling `gone` each one's prefix and
    /// whether it was a seeder; returns how many.
    pub(super) fn expire(&mut self, oldest: u32, gone: &mut impl FnMut(Prefix, bool)) -> usize {
        let before = self.len();
        for seeder in [true, false] {
            let mut i = 0;
            while i < self.role(seeder).len() {
                let set = self.role(seeder);
                if set.seen[i] >= oldest {
                    i += 1;
                    continue;
                }
                let key = set.keys[i];
                self.remove(&key);
                gone(key.prefix(), seeder);
            }
        }
        before - self.len()
    }

    /// The prefix of every peer.
    pub(super) fn prefixes(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.seeders
            .keys
            .iter()
            .chain(&self.leechers.keys)
            .map(CompactKey::prefix)
    }
}

/// Calls `take(pool, range)` for up to `want` entries of pools of lengths `lens`, read as
/// one sequence from a random start and wrapping around, leaving out `skip` (pool, index).
/// Each range lies within one pool.
pub(super) fn circular_runs(
    lens: &[usize],
    skip: Option<(usize, usize)>,
    want: usize,
    rng: &mut fastrand::Rng,
    mut take: impl FnMut(usize, Range<usize>),
) {
    let total: usize = lens.iter().sum();
    if total == 0 || want == 0 {
        return;
    }
    let start = rng.usize(..total);
    let mut left = want;
    for (lo, hi) in [(start, total), (0, start)] {
        let mut base = 0;
        for (p, &len) in lens.iter().enumerate() {
            let (a, b) = (lo.max(base) - base, hi.min(base + len).saturating_sub(base));
            base += len;
            if a >= b {
                continue;
            }
            let pieces = match skip {
                Some((sp, si)) if sp == p && (a..b).contains(&si) => [a..si, si + 1..b],
                _ => [a..b, b..b],
            };
            for run in pieces {
                let n = run.len().min(left);
                if n > 0 {
                    take(p, run.start..run.start + n);
                    left -= n;
                    if left == 0 {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Checks that the index and the arrays describe the same peers.
    fn consistent(peers: &Peers<[u8; 6]>) {
        assert_eq!(
            peers.index.len(),
            peers.seeders.len() + peers.leechers.len()
        );
        for (seeder, set) in [(true, &peers.seeders), (false, &peers.leechers)] {
            assert_eq!(set.keys.len(), set.ids.len());
            assert_eq!(set.keys.len(), set.seen.len());
            for (i, key) in set.keys.iter().enumerate() {
                let slot = peers.index[key];
                assert_eq!((slot.seeder(), slot.index()), (seeder, i));
            }
        }
    }

    #[test]
    fn random_updates_keep_index_and_arrays_in_step() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut peers = Peers::<[u8; 6]>::default();
        // The model: key -> (seeder, last seen).
        let mut model = HashMap::new();
        for now in 0..5_000u32 {
            let key = [0, 0, 0, 0, 0, rng.u8(..40)];
            let seeder = rng.bool();
            let stopped = rng.u8(..8) == 0;
            let change = peers.update(key, [key[5]; 20], now, seeder, stopped, || true);
            let before = model.get(&key).map(|&(s, _)| s);
            assert_eq!(change.before, before);
            if stopped {
                model.remove(&key);
                assert_eq!(change.after, None);
            } else {
                model.insert(key, (seeder, now));
                assert_eq!(change.after, Some(seeder));
                let at = change.at.expect("stored");
                assert_eq!(peers.role(seeder).keys[at], key);
            }
            if now % 500 == 499 {
                let oldest = now - 100;
                let expired = model.values().filter(|&&(_, seen)| seen < oldest).count();
                assert_eq!(peers.expire(oldest, &mut |_, _| {}), expired);
                model.retain(|_, &mut (_, seen)| seen >= oldest);
            }
            consistent(&peers);
            assert_eq!(peers.len(), model.len());
        }
    }

    #[test]
    fn a_full_swarm_answers_but_does_not_store() {
        let mut peers = Peers::<[u8; 6]>::default();
        let change = peers.update([1; 6], [1; 20], 0, false, false, || false);
        assert_eq!((change.before, change.after, change.at), (None, None, None));
        assert_eq!(peers.len(), 0);
        // A peer already stored is refreshed even without room.
        peers.update([2; 6], [2; 20], 0, false, false, || true);
        let change = peers.update([2; 6], [2; 20], 5, true, false, || false);
        assert_eq!((change.before, change.after), (Some(false), Some(true)));
        assert_eq!(peers.seeders.seen, [5]);
    }

    /// Every run `circular_runs` reports, as (pool, index) pairs.
    fn runs(
        lens: &[usize],
        skip: Option<(usize, usize)>,
        want: usize,
        seed: u64,
    ) -> Vec<(usize, usize)> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut out = Vec::new();
        circular_runs(lens, skip, want, &mut rng, |p, run| {
            assert!(run.end <= lens[p] && !run.is_empty());
            out.extend(run.map(|i| (p, i)));
        });
        out
    }

    #[test]
    fn circular_runs_take_distinct_entries_and_skip_the_requester() {
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let lens = [rng.usize(..6), rng.usize(..6)];
            let total = lens[0] + lens[1];
            let skip = (total > 0 && rng.bool()).then(|| {
                let p = if rng.usize(..total) < lens[0] { 0 } else { 1 };
                (p, rng.usize(..lens[p]))
            });
            let want = rng.usize(..12);
            let got = runs(&lens, skip, want, seed);
            let available = total - usize::from(skip.is_some());
            assert_eq!(got.len(), want.min(available), "{lens:?} {skip:?} {want}");
            let mut unique = got.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), got.len(), "repeated entries: {got:?}");
            assert!(skip.is_none_or(|s| !got.contains(&s)));
        }
    }

    #[test]
    fn circular_runs_start_at_random_places() {
        let starts: HashSet<_> = (0..50)
            .map(|seed| runs(&[10, 10], None, 1, seed)[0])
            .collect();
        assert!(starts.len() > 10, "starts: {starts:?}");
    }
}
