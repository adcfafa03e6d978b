//! What a client saves to resume a torrent later without checking its data again.

use super::{Session, TorrentId};
use crate::wire::Bitfield;

impl Session {
    /// The pieces of a torrent verified so far (every one hashed right before it was
    /// written and marked), one bit per piece; `None` for an unknown torrent, empty for a
    /// magnet torrent still fetching its metadata. A piece that could not be read back
    /// since is not in it. Safe to save as resume data: pass it back as
    /// [`super::AddTorrent::have`] only while the files are as they were when it was taken
    /// (read it before noting their sizes and modification times, so any later write
    /// shows up as a change).
    pub fn have(&self, id: TorrentId) -> Option<Bitfield> {
        let torrent = self.torrent(id).ok()?;
        let d = torrent.lock();
        Some(d.engine.have().to_bitvec())
    }
}
