//! What the JSON API needs besides the RPC's [`Backend`]: the session itself (file
//! selection, limits, reading data, events) and the mapping from RPC ids to the session's.

use crate::rpc::Backend;
use crate::session::{Session, TorrentId};

/// The daemon as the JSON API sees it.
pub trait ApiBackend: Backend {
    /// The session holding the torrents.
    fn session(&self) -> &Session;
    /// The session's id of the torrent with this RPC id.
    fn session_id(&self, id: u32) -> Option<TorrentId>;
    /// Every torrent's RPC id and session id.
    fn id_pairs(&self) -> Vec<(u32, TorrentId)>;
}
