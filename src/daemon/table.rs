//! The daemon's torrents: RPC ids (small, never reused in a run), what the session does
//! not keep (folder, dates, labels, byte counts of earlier runs) and what was last saved.

use super::state::Stamp;
use crate::core::InfoHash;
use crate::rpc::backend::QueueMove;
use crate::rpc::options::TorrentOptions;
use crate::session::TorrentId;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a removed torrent's id is reported by `recently-active` queries.
const REMEMBER_REMOVED: Duration = Duration::from_secs(60);
/// Removed ids remembered at most.
const MAX_REMOVED: usize = 10_000;

/// One torrent of the daemon.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its id in the session (a verify adds it anew under another).
    pub session: TorrentId,
    pub info_hash: InfoHash,
    /// Shared by every torrent in the same folder ([`Table::insert`]).
    pub dir: Arc<Path>,
    /// Paused by a person (kept across restarts).
    pub paused: bool,
    /// Unix seconds.
    pub added: i64,
    pub done: Option<i64>,
    pub started: i64,
    pub changed: i64,
    pub labels: Vec<String>,
    /// Its magnet link while no .torrent is saved for it.
    pub magnet: Option<String>,
    /// Bytes received and sent before the session's current engine for it (earlier runs,
    /// earlier checks).
    pub earlier_down: u64,
    pub earlier_up: u64,
    /// A digest of what the last saved record said ([`Mark::digest`]); `None`: save at
    /// the next round.
    pub saved: Option<u64>,
    /// The files' stamps in the last saved resume data.
    pub stamps: Option<Vec<Option<Stamp>>>,
    /// Being checked again (out of the session for a moment): not saved, not removed.
    pub busy: bool,
    /// Its own settings (files, limits, sequential).
    pub options: TorrentOptions,
    /// Paused by the download queue (not by a person), waiting for a place.
    pub queued: bool,
    /// Its place in the download queue, from 0 (see [`Table::renumber`]); `u64::MAX`
    /// before [`Table::insert`]: last.
    pub queue_position: u64,
}

/// The parts of a torrent's record that change while it runs; a new one means a save.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mark {
    pub pieces_have: usize,
    pub checking: bool,
    pub paused: bool,
    pub down: u64,
    pub up: u64,
    pub done: Option<i64>,
    pub labels: Vec<String>,
    pub has_torrent: bool,
    pub options: TorrentOptions,
    pub queue_position: u64,
}

impl Mark {
    /// What an entry keeps of its last saved mark: 8 bytes instead of the mark (the save
    /// round compares every torrent's every few seconds). Two marks with one digest would
    /// skip one save until the next change: a chance of 2^-64.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// Every torrent by RPC id.
#[derive(Debug, Default)]
pub struct Table {
    pub entries: BTreeMap<u32, Entry>,
    by_hash: HashMap<InfoHash, u32>,
    last_id: u32,
    /// The torrents' folders, one copy each.
    dirs: HashSet<Arc<Path>>,
    removed: VecDeque<(u32, Instant)>,
    /// Bytes of torrents removed during this run.
    pub removed_down: u64,
    pub removed_up: u64,
    /// Torrents added during this run.
    pub added: u64,
}

impl Table {
    /// Adds a torrent under the next id (from 1, as Transmission's).
    pub fn insert(&mut self, mut entry: Entry) -> u32 {
        entry.dir = self.intern(entry.dir);
        if entry.queue_position == u64::MAX {
            entry.queue_position = self.entries.len() as u64;
        }
        self.last_id += 1;
        self.by_hash.insert(entry.info_hash, self.last_id);
        self.entries.insert(self.last_id, entry);
        self.last_id
    }

    pub fn by_hash(&self, hash: &InfoHash) -> Option<u32> {
        self.by_hash.get(hash).copied()
    }

    /// Takes a torrent out, remembering its id as removed with the bytes it moved this run
    /// (`down`, `up`).
    pub fn take(&mut self, id: u32, now: Instant, down: u64, up: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.by_hash.remove(&entry.info_hash);
        self.release(&entry.dir);
        self.removed_down += down;
        self.removed_up += up;
        self.removed.push_back((id, now));
        while self.removed.len() > MAX_REMOVED {
            self.removed.pop_front();
        }
        // The queue closes the gap (positions stay 0..n).
        for e in self.entries.values_mut() {
            if e.queue_position > entry.queue_position {
                e.queue_position -= 1;
            }
        }
        Some(entry)
    }

    /// The one shared copy of a folder.
    fn intern(&mut self, dir: Arc<Path>) -> Arc<Path> {
        if let Some(shared) = self.dirs.get(&dir) {
            return shared.clone();
        }
        self.dirs.insert(dir.clone());
        dir
    }

    /// Forgets a folder a torrent leaves, if no other torrent is in it (the set's copy and
    /// the leaving torrent's are the only ones).
    fn release(&mut self, dir: &Arc<Path>) {
        if Arc::strong_count(dir) == 2 {
            self.dirs.remove(dir);
        }
    }

    /// Points a torrent at another folder (one copy of each folder, as [`Table::insert`]).
    pub fn set_dir(&mut self, id: u32, dir: &Path) {
        let Some(e) = self.entries.get(&id) else {
            return;
        };
        if *e.dir == *dir {
            return;
        }
        let old = e.dir.clone();
        let shared = self.intern(dir.into());
        if let Some(e) = self.entries.get_mut(&id) {
            e.dir = shared;
        }
        // Now held by the set and `old` only if no torrent is left there.
        if Arc::strong_count(&old) == 2 {
            self.dirs.remove(&old);
        }
    }

    /// Ids in queue order.
    pub fn queue_order(&self) -> Vec<u32> {
        let mut order: Vec<(u64, u32)> = self
            .entries
            .iter()
            .map(|(id, e)| (e.queue_position, *id))
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(_, id)| id).collect()
    }

    /// Numbers the queue 0, 1, 2... in its order (ties: the order added).
    pub fn renumber(&mut self) {
        let order = self.queue_order();
        self.place(&order);
    }

    fn place(&mut self, order: &[u32]) {
        for (position, id) in order.iter().enumerate() {
            if let Some(e) = self.entries.get_mut(id) {
                e.queue_position = position as u64;
            }
        }
    }

    /// Moves torrents in the queue as Transmission's `queue-move-*` do: to the top or the
    /// bottom keeping their order, or one place up or down each.
    pub fn queue_move(&mut self, ids: &[u32], to: QueueMove) {
        let moving: HashSet<u32> = ids.iter().copied().collect();
        let mut order = self.queue_order();
        let (chosen, rest): (Vec<u32>, Vec<u32>) = order.iter().partition(|id| moving.contains(id));
        match to {
            QueueMove::Top => order = chosen.into_iter().chain(rest).collect(),
            QueueMove::Bottom => order = rest.into_iter().chain(chosen).collect(),
            QueueMove::Up => {
                for i in 1..order.len() {
                    if moving.contains(&order[i]) && !moving.contains(&order[i - 1]) {
                        order.swap(i - 1, i);
                    }
                }
            }
            QueueMove::Down => {
                for i in (0..order.len().saturating_sub(1)).rev() {
                    if moving.contains(&order[i]) && !moving.contains(&order[i + 1]) {
                        order.swap(i, i + 1);
                    }
                }
            }
        }
        self.place(&order);
    }

    /// Ids removed in the last minute.
    pub fn removed_recently(&mut self, now: Instant) -> Vec<u32> {
        while self
            .removed
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > REMEMBER_REMOVED)
        {
            self.removed.pop_front();
        }
        self.removed.iter().map(|(id, _)| *id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: u8) -> Entry {
        Entry {
            session: TorrentId(u64::from(hash)),
            info_hash: InfoHash([hash; 20]),
            dir: Path::new("/d").into(),
            queue_position: u64::MAX,
            paused: false,
            added: 0,
            done: None,
            started: 0,
            changed: 0,
            labels: vec![],
            magnet: None,
            earlier_down: 0,
            earlier_up: 0,
            saved: None,
            stamps: None,
            busy: false,
            options: TorrentOptions::default(),
            queued: false,
        }
    }

    #[test]
    fn ids_start_at_one_and_are_never_reused() {
        let mut t = Table::default();
        let now = Instant::now();
        assert_eq!(t.insert(entry(1)), 1);
        assert_eq!(t.insert(entry(2)), 2);
        assert!(t.take(1, now, 10, 5).is_some());
        assert_eq!(t.by_hash(&InfoHash([1; 20])), None);
        assert_eq!(t.insert(entry(1)), 3);
        assert_eq!(t.by_hash(&InfoHash([1; 20])), Some(3));
        assert_eq!(t.removed_recently(now), [1]);
        assert_eq!(t.removed_recently(now + Duration::from_secs(61)), [0u32; 0]);
        assert_eq!((t.removed_down, t.removed_up), (10, 5));
    }

    #[test]
    fn the_queue_moves_as_transmissions_does() {
        let mut t = Table::default();
        for hash in 1..=5 {
            t.insert(entry(hash));
        }
        assert_eq!(t.queue_order(), vec![1, 2, 3, 4, 5]);
        t.queue_move(&[4, 5], QueueMove::Top);
        assert_eq!(t.queue_order(), vec![4, 5, 1, 2, 3]);
        t.queue_move(&[4, 1], QueueMove::Bottom);
        assert_eq!(t.queue_order(), vec![5, 2, 3, 4, 1]);
        t.queue_move(&[3, 4], QueueMove::Up);
        assert_eq!(t.queue_order(), vec![5, 3, 4, 2, 1]);
        t.queue_move(&[5, 4], QueueMove::Down);
        assert_eq!(t.queue_order(), vec![3, 5, 2, 4, 1]);
        // At the edge already: stays. Unknown ids: ignored.
        t.queue_move(&[3, 99], QueueMove::Up);
        assert_eq!(t.queue_order(), vec![3, 5, 2, 4, 1]);
        // A removal closes the gap; positions stay 0..n.
        t.take(2, Instant::now(), 0, 0);
        let positions: Vec<u64> = t
            .queue_order()
            .iter()
            .map(|id| t.entries[id].queue_position)
            .collect();
        assert_eq!(positions, vec![0, 1, 2, 3]);
        assert_eq!(t.queue_order(), vec![3, 5, 4, 1]);
    }
}
