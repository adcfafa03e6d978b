//! What the RPC layers need from the client behind them: [`Backend`], and the plain values
//! it hands over. The daemon implements it over a [`crate::session::Session`]; tests use a
//! fake, so every RPC method is tested as JSON in, JSON out, with no socket.

use crate::core::InfoHash;
use crate::metainfo::Metainfo;
pub use crate::rpc::options::{OptionsChange, TorrentOptions};
use crate::session::{TorrentState, TorrentStats};
use crate::wire::Bitfield;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// A torrent as the RPC layers show it.
#[derive(Debug, Clone)]
pub struct TorrentView {
    /// The RPC id: small, never reused while the daemon runs (not across restarts).
    pub id: u32,
    pub info_hash: InfoHash,
    /// A magnet torrent's name while `meta` is not known (see [`TorrentView::name`]).
    pub pending_name: String,
    pub state: TorrentState,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// This run's figures.
    pub stats: TorrentStats,
    /// The folder its files go under.
    pub dir: std::sync::Arc<std::path::Path>,
    /// Unix seconds: added to the daemon, completed (first seen complete), started (this
    /// run), last changed by a command (add, start, stop, verify).
    pub added: i64,
    pub done: Option<i64>,
    pub started: i64,
    pub changed: i64,
    /// Bytes received and sent, all runs together.
    pub downloaded_ever: u64,
    pub uploaded_ever: u64,
    /// The metainfo, once known (at once for a .torrent, later for a magnet link).
    pub meta: Option<Arc<Metainfo>>,
    /// Its magnet link while the metainfo is not known (then it comes from `meta`).
    pub magnet: Option<String>,
    /// Its trackers by tier while the metainfo is not known (then they are `meta`'s).
    pub trackers: Vec<Vec<String>>,
    /// Verified pieces: only when asked for ([`Detail::Pieces`]).
    pub have: Option<Bitfield>,
    pub labels: Vec<String>,
    /// Most peers it connects to.
    pub max_peers: usize,
    /// Its own settings (files, limits, sequential).
    pub options: TorrentOptions,
    /// Waiting for a place in the download queue.
    pub queued: bool,
    /// Its place in the download queue, from 0.
    pub queue_position: u64,
}

impl TorrentView {
    /// Its name: the metainfo's, or the magnet link's until the metadata arrives.
    pub fn name(&self) -> &str {
        self.meta
            .as_ref()
            .map_or(&self.pending_name, |m| &m.info.name)
    }
}

/// How much [`Backend::torrents`] gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything but the verified pieces.
    Brief,
    /// With [`TorrentView::have`] (per-file progress, the piece map).
    Pieces,
}

/// Where a torrent to add comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A .torrent file's bytes.
    Torrent(Vec<u8>),
    /// A .torrent file on the daemon's machine.
    File(PathBuf),
    /// A magnet link.
    Magnet(String),
}

/// A torrent to add.
#[derive(Debug, Clone)]
pub struct NewTorrent {
    pub source: Source,
    /// Its folder (default: the session's download folder). Absolute.
    pub dir: Option<PathBuf>,
    /// Start paused (default: the session's setting).
    pub paused: Option<bool>,
    pub labels: Vec<String>,
}

/// What adding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    New {
        id: u32,
        name: String,
        info_hash: InfoHash,
    },
    /// The torrent was already there (nothing changed).
    Duplicate {
        id: u32,
        name: String,
        info_hash: InfoHash,
    },
}

/// The session's settings, as RPC clients read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub download_dir: PathBuf,
    /// Where the daemon keeps its state.
    pub config_dir: PathBuf,
    pub peer_port: u16,
    pub dht: bool,
    /// Speed limits, all torrents together.
    pub speed: SpeedLimits,
    /// Most torrents downloading at once.
    pub queue: QueueLimit,
    pub max_peers_per_torrent: usize,
    /// New torrents start at once unless asked otherwise.
    pub start_added: bool,
    /// Free bytes in the download folder's filesystem, if known.
    pub free_space: Option<u64>,
}

/// Settings an RPC client may change (the others are fixed while the daemon runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub download_dir: Option<PathBuf>,
    pub start_added: Option<bool>,
    pub speed_down: Option<u64>,
    pub speed_down_enabled: Option<bool>,
    pub speed_up: Option<u64>,
    pub speed_up_enabled: Option<bool>,
    pub queue_size: Option<usize>,
    pub queue_enabled: Option<bool>,
}

/// The session's speed limits in kB/s (1000 bytes), each kept while off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeedLimits {
    pub down: u64,
    pub down_enabled: bool,
    pub up: u64,
    pub up_enabled: bool,
}

/// The download queue: at most `size` torrents downloading at once while `enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueLimit {
    pub size: usize,
    pub enabled: bool,
}

impl Default for QueueLimit {
    /// Transmission's default: 5, off.
    fn default() -> QueueLimit {
        QueueLimit {
            size: 5,
            enabled: false,
        }
    }
}

/// Byte counters over some span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub uploaded: u64,
    pub downloaded: u64,
    pub files_added: u64,
    pub seconds_active: u64,
    pub session_count: u64,
}

/// This run's figures and every run's together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub current: Counters,
    pub cumulative: Counters,
}

/// Why a command could not be carried out: one sentence for the RPC client.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("not a valid torrent: {0}")]
    Torrent(#[from] crate::metainfo::MetainfoError),
    #[error("not a valid magnet link: {0}")]
    Magnet(#[from] crate::metainfo::MagnetError),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error("cannot save the daemon's state: {0}")]
    State(String),
    #[error("{0}")]
    Refused(String),
}

/// The client behind the RPC. Torrents are named by their RPC id; ids that name no torrent
/// are ignored, as Transmission does.
pub trait Backend: Send + Sync + 'static {
    /// Every torrent, in the order added.
    fn torrents(&self, detail: Detail) -> Vec<TorrentView>;
    /// Every torrent's RPC id and info hash (cheap: no figures).
    fn ids(&self) -> Vec<(u32, InfoHash)>;
    /// Torrents removed in the last minute.
    fn removed_recently(&self) -> Vec<u32>;
    fn add(&self, new: NewTorrent) -> impl Future<Output = Result<Added, BackendError>> + Send;
    fn start(&self, ids: &[u32]) -> Result<(), BackendError>;
    fn stop(&self, ids: &[u32]) -> Result<(), BackendError>;
    /// Removes torrents, and their data too if `delete_data`; returns once they are gone.
    fn remove(
        &self,
        ids: &[u32],
        delete_data: bool,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Checks the torrents' data again (they show as checking meanwhile).
    fn verify(&self, ids: &[u32]) -> impl Future<Output = Result<(), BackendError>> + Send;
    fn set_labels(&self, ids: &[u32], labels: &[String]) -> Result<(), BackendError>;
    /// Changes torrents' own settings (files, limits, sequential).
    fn set_options(&self, ids: &[u32], change: &OptionsChange) -> Result<(), BackendError>;
    fn settings(&self) -> Settings;
    fn change_settings(&self, change: SettingsChange) -> Result<(), BackendError>;
    fn totals(&self) -> Totals;
    /// Free and total bytes of the filesystem holding `path`, if it can be asked.
    fn free_space(&self, path: &std::path::Path) -> Option<(u64, u64)>;
    /// Asks the daemon to shut down (it saves its state first).
    fn close(&self);
    /// Points torrents at another folder (absolute): their files moved there when
    /// `move_data`, otherwise looked for (checked) there.
    fn set_location(
        &self,
        ids: &[u32],
        location: PathBuf,
        move_data: bool,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Moves torrents in the download queue.
    fn queue_move(&self, ids: &[u32], to: QueueMove) -> Result<(), BackendError>;
}

/// Where `queue-move-*` sends torrents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    Top,
    Up,
    Down,
    Bottom,
}
