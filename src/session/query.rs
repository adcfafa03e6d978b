//! Per-torrent queries a client keeps its own records with (a daemon's saved state).

use super::{Session, TorrentId};
use crate::torrent::TorrentState;
use crate::wire::Bitfield;

impl Session {
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
