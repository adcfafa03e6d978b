//! Per-torrent queries a client keeps its own records with (a daemon's saved state).

use super::{Session, TorrentId};
use crate::torrent::TorrentState;
use crate::wire::Bitfield;

/// One torrent as [`Session::snapshot`] lists it.
#[derive(Debug, Clone)]
pub struct TorrentSnapshot {
    pub id: TorrentId,
    /// A magnet torrent's name while its metadata is missing; empty once `meta` is known
    /// (see [`TorrentSnapshot::name`]).
    pub pending_name: String,
    pub state: TorrentState,
    pub error: Option<String>,
    pub stats: super::TorrentStats,
    /// Its metainfo, once known.
    pub meta: Option<std::sync::Arc<crate::metainfo::Metainfo>>,
}

impl TorrentSnapshot {
    /// Its name: the metainfo's, or the magnet link's until the metadata arrives.
    pub fn name(&self) -> &str {
        self.meta
            .as_ref()
            .map_or(&self.pending_name, |m| &m.info.name)
    }
}

impl Session {
    /// Every torrent with its figures and metainfo, in the order added: one pass, each
    /// torrent's lock taken once and briefly (what an RPC listing of thousands needs).
    pub fn snapshot(&self) -> Vec<TorrentSnapshot> {
        let mut all: Vec<_> = super::lock(&self.inner.registry)
            .by_id
            .values()
            .cloned()
            .collect();
        all.sort_unstable_by_key(|t| t.id);
        all.iter()
            .map(|t| {
                let meta = t.meta.get().cloned();
                // One copy of the name per torrent per listing of thousands: only when
                // there is no metainfo to read it from.
                let pending_name = if meta.is_some() {
                    String::new()
                } else {
                    t.name()
                };
                let d = t.lock();
                TorrentSnapshot {
                    id: t.id,
                    pending_name,
                    state: d.engine.state(),
                    error: d.engine.error().map(|e| e.to_string()),
                    stats: d.engine.stats(),
                    meta,
                }
            })
            .collect()
    }

    /// The pieces of a torrent verified so far (every one hashed right before it was
    /// written and marked), one bit per piece; `None` for an unknown torrent, empty for a
    /// magnet torrent still fetching its metadata. A piece that could not be read back
    /// since is not in it. Safe to save as resume data: pass it back as
    /// [`super::AddTorrent::have`] only while the files are as they were when it was taken
    /// (read it before noting their sizes and modification times, so any later write
    /// shows up as a change). While the torrent is checking, it holds only what the check
    /// found so far.
    pub fn have(&self, id: TorrentId) -> Option<Bitfield> {
        let torrent = self.torrent(id).ok()?;
        let d = torrent.lock();
        Some(d.engine.have().to_bitvec())
    }

    /// A torrent's lifecycle state.
    pub fn state(&self, id: TorrentId) -> Option<TorrentState> {
        let torrent = self.torrent(id).ok()?;
        let state = torrent.lock().engine.state();
        Some(state)
    }

    /// A torrent's name (a magnet link's `dn` or its info hash until the metadata arrives).
    pub fn name(&self, id: TorrentId) -> Option<String> {
        Some(self.torrent(id).ok()?.name())
    }
}
