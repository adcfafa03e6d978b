//! The daemon's torrents: RPC ids (small, never reused in a run), what the session does
//! not keep (folder, dates, labels, byte counts of earlier runs) and what was last saved.

use super::state::Stamp;
use crate::core::InfoHash;
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
        entry.dir = match self.dirs.get(&entry.dir) {
            Some(dir) => dir.clone(),
            None => {
                self.dirs.insert(entry.dir.clone());
                entry.dir
            }
        };
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
        // The set's copy and this entry's: no other torrent is in that folder.
        if Arc::strong_count(&entry.dir) == 2 {
            self.dirs.remove(&entry.dir);
        }
        self.removed_down += down;
        self.removed_up += up;
        self.removed.push_back((id, now));
        while self.removed.len() > MAX_REMOVED {
            self.removed.pop_front();
        }
        Some(entry)
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
}
