//! The session's public types: configuration, torrent handles, events, errors, summaries.

use crate::core::{InfoHash, PeerId};
use crate::metainfo::Metainfo;
use crate::torrent::{TorrentState, TorrentStats};
use crate::wire::Bitfield;
use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Address to listen on (port 0 picks a free port). When the address is specific,
    /// outgoing connections are made from it too.
    pub bind: SocketAddr,
    /// Most peers connected at once, per torrent (in and out).
    pub max_peers: usize,
    /// Regular unchoke slots per torrent (one optimistic slot comes on top).
    pub upload_slots: usize,
    /// Our BitTorrent peer id.
    pub peer_id: PeerId,
    /// Ask trackers (false: only given peers and incoming connections).
    pub use_trackers: bool,
    /// Most bytes per second uploaded, all peers of all torrents together (None: no limit).
    pub upload_limit: Option<u64>,
    /// Write verified pieces with `O_DIRECT` where possible (see [`crate::storage::Storage`]).
    pub direct_writes: bool,
    /// Hashing threads shared by every torrent (0: half the cores, 1 to 4: SHA-1 runs at
    /// about 2 GB/s per core, and a second thread on two cores slowed a 1 GiB download
    /// by 10% by taking the network tasks' core).
    pub verify_threads: usize,
    /// Files kept open at once, all torrents together (least recently used closed first).
    pub open_files: usize,
    /// The DHT (BEP 5) on the session's UDP socket; `None`: off.
    pub dht: Option<crate::dht::DhtConfig>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 6881)),
            max_peers: 50,
            upload_slots: 4,
            peer_id: new_peer_id(),
            use_trackers: true,
            upload_limit: None,
            direct_writes: true,
            verify_threads: 0,
            open_files: crate::storage::DEFAULT_OPEN_FILES,
            dht: None,
        }
    }
}

/// A fresh peer id: `-BT0001-` (Azureus style) and 12 random alphanumerics.
pub fn new_peer_id() -> PeerId {
    let mut id = *b"-BT0001-............";
    for b in &mut id[8..] {
        *b = fastrand::alphanumeric() as u8;
    }
    id
}

/// A torrent's handle in its session (never reused within one session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TorrentId(pub u64);

/// What happened to a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Its lifecycle state changed.
    State(TorrentId, TorrentState),
    /// Every piece is verified.
    Completed(TorrentId),
    /// A magnet torrent's metadata arrived (see [`super::Session::metainfo`]).
    Metadata(TorrentId),
    /// It was removed.
    Removed(TorrentId),
}

/// Why a session or a torrent could not start.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error("cannot listen on {addr}: {error} (pick another --port, or 0 for any free port)")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot start the hashing threads: {0}")]
    Threads(std::io::Error),
    #[error("torrent {0} is already in the session")]
    Duplicate(InfoHash),
    #[error("no torrent {0:?} in the session")]
    Unknown(TorrentId),
    #[error("torrent {0:?} has no metadata yet (a magnet link still fetching it): try again once it has")]
    NoMetadata(TorrentId),
    #[error("torrent {id:?} has {files} files, but {given} file priorities were given")]
    FileCount {
        id: TorrentId,
        files: usize,
        given: usize,
    },
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// A torrent to add.
#[derive(Debug, Clone)]
pub struct AddTorrent {
    pub meta: Metainfo,
    /// The folder its data goes under (files as the torrent names them).
    pub dir: PathBuf,
    /// Pieces already verified (see [`super::check`]); `None`: the session checks the data itself
    /// (state [`TorrentState::Checking`]) before the torrent goes live.
    pub have: Option<Bitfield>,
    /// Peers to connect to besides those trackers give (retried while the torrent runs).
    pub peers: Vec<SocketAddr>,
    /// Start paused.
    pub paused: bool,
}

/// A magnet link to add.
#[derive(Debug, Clone)]
pub struct AddMagnet {
    pub magnet: crate::metainfo::Magnet,
    /// The folder its data goes under, once its metadata names the files.
    pub dir: PathBuf,
    /// Peers to connect to besides the link's `x.pe` and those trackers give.
    pub peers: Vec<SocketAddr>,
    /// Start paused.
    pub paused: bool,
}

/// One torrent as listed by [`super::Session::torrents`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct TorrentSummary {
    pub id: TorrentId,
    pub name: String,
    pub info_hash: String,
    pub state: TorrentState,
    pub error: Option<String>,
    pub stats: TorrentStats,
}

/// The whole session's figures: every torrent together.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SessionStats {
    pub torrents: usize,
    /// Torrents with every piece verified.
    pub complete: usize,
    /// Torrents that failed.
    pub failed: usize,
    pub total_bytes: u64,
    pub verified_bytes: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub download_rate: f64,
    pub upload_rate: f64,
    pub peers: usize,
    pub seeds: usize,
}
