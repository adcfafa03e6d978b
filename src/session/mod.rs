//! The client: one [`Session`] runs many torrents in one process.
//!
//! A session owns one listening socket that routes incoming connections by the info hash of
//! their handshake, one verify-and-write pool shared by every torrent, one HTTP client for
//! every tracker, and per torrent a [`crate::torrent::Engine`] with the tasks that move its
//! bytes (connections); one timer and one announce service serve every torrent. Torrents are added, paused, resumed and
//! removed by [`TorrentId`]; [`Session::subscribe`] streams what happens to them. A removed
//! torrent leaves no task, socket or file handle behind.
//!
//! The protocol decisions are the engine's; this module only moves bytes and carries out
//! the engine's actions. It never marks, announces or serves a piece whose SHA-1 did not
//! match: pieces are written by the verify pool only after they hash right.
//!
//! Resume design: data already on disk is re-checked ([`check`]) before a torrent goes
//! live; only pieces that verify count as had.

mod announce;
mod close;
mod conn;
mod dht;
mod driver;
mod inorder;
mod limit;
mod limits_api;
mod listener;
mod magnet;
mod query;
mod remove;
mod selection;
mod stream;
mod types;
mod verify;

pub use crate::torrent::{TorrentState, TorrentStats};
pub use conn::{Transport, CONNECT_TIMEOUT, WRITE_TIMEOUT};
pub use limit::Limits;
pub use query::TorrentSnapshot;
pub use selection::{piece_priorities, FileStat};
pub use stream::StreamError;
pub use types::{
    new_peer_id, AddMagnet, AddTorrent, SessionConfig, SessionError, SessionEvent, SessionStats,
    TorrentId, TorrentSummary,
};

use crate::core::InfoHash;
use crate::metainfo::Metainfo;
use crate::storage::{hash_pieces, Access, HashError, HashOptions, OpenFiles, PieceHash, Storage};
use crate::torrent::{Engine, PeerSource, TorrentConfig, TorrentError};
use crate::tracker::client::{http_client, TrackerClient};
use crate::tracker::udp::endpoint::UdpEndpoint;
use crate::wire::Bitfield;
use driver::{lock, Driven, Files, Shared, TorrentHandle};
use limit::Limiters;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Checks the data under `dir` against the torrent: the pieces that verify.
/// `on_progress(bytes)` reports hashing progress as in [`hash_pieces`].
pub fn check(
    meta: &Metainfo,
    dir: &Path,
    on_progress: impl FnMut(u64),
) -> Result<Bitfield, HashError> {
    check_until(meta, dir, None, None, on_progress)
}

/// Pieces known verified, and pieces to hash again before trusting the rest (those of
/// files changed since the others were verified).
struct Partial {
    have: Bitfield,
    recheck: Arc<[u32]>,
}

/// [`check`], stopping early with [`HashError::Cancelled`] once `cancel` is set; with
/// `partial`, only its pieces are hashed and the result is its `have` plus those that
/// verify.
fn check_until(
    meta: &Metainfo,
    dir: &Path,
    cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    partial: Option<&Partial>,
    on_progress: impl FnMut(u64),
) -> Result<Bitfield, HashError> {
    let layout = meta.info.layout(dir);
    let options = HashOptions {
        cancel,
        only: partial.map(|p| p.recheck.clone()),
        ..HashOptions::default()
    };
    let found = hash_pieces(&layout, options, on_progress)?;
    let mut have: Bitfield = found
        .iter()
        .zip(meta.info.pieces.iter())
        .map(|(found, want)| matches!(found, PieceHash::Hashed(h) if h == want))
        .collect();
    if let Some(p) = partial.filter(|p| p.have.len() == have.len()) {
        let rechecked: std::collections::HashSet<u32> = p.recheck.iter().copied().collect();
        for i in p.have.iter_ones() {
            if !rechecked.contains(&(i as u32)) {
                have.set(i, true);
            }
        }
    }
    Ok(have)
}

/// The torrents of a session, by id and by info hash.
#[derive(Default)]
struct Registry {
    by_id: HashMap<TorrentId, Arc<TorrentHandle>>,
    by_hash: HashMap<InfoHash, TorrentId>,
    next_id: u64,
    /// A torrent's running tasks (its data check), awaited on removal; no entry while
    /// it has none.
    tasks: HashMap<TorrentId, Vec<JoinHandle<()>>>,
}

/// State the listener and the session share.
pub(crate) struct Inner {
    config: SessionConfig,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    registry: Mutex<Registry>,
    shutdown: CancellationToken,
    http: reqwest::Client,
    /// The session's UDP socket (UDP trackers), if it could be bound.
    udp: Option<Arc<UdpEndpoint>>,
    /// Connections accepted and not yet closed, all torrents together.
    max_connections: usize,
}

impl Inner {
    fn find(&self, info_hash: &InfoHash) -> Option<Arc<TorrentHandle>> {
        let reg = lock(&self.registry);
        let id = reg.by_hash.get(info_hash)?;
        reg.by_id.get(id).cloned()
    }
}

/// A running client; see the module documentation.
pub struct Session {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Session {
    /// Listens on `config.bind` and starts the shared services. Must run inside a
    /// multi-threaded tokio runtime.
    pub async fn start(config: SessionConfig) -> Result<Session, SessionError> {
        let listen_error = |error| SessionError::Listen {
            addr: config.bind,
            error,
        };
        // Sockets count against the open-file limit too; the soft limit (often 1,024) is
        // raised to the hard one.
        crate::storage::raise_open_file_limit();
        let listener = TcpListener::bind(config.bind).await.map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        // One UDP socket on the same port, for UDP trackers and the DHT (and uTP later).
        // Without it, udp:// trackers are skipped.
        let udp = if config.use_trackers || config.dht.is_some() {
            match UdpEndpoint::bind(SocketAddr::new(config.bind.ip(), local_addr.port())).await {
                Ok(endpoint) => Some(endpoint),
                Err(e) => {
                    tracing::warn!(
                        "no UDP socket on port {}: {e}; UDP trackers and the DHT will be skipped",
                        local_addr.port()
                    );
                    None
                }
            }
        } else {
            None
        };
        let shutdown = CancellationToken::new();
        let mut dht_task = None;
        let dht_sockets = match (&config.dht, &udp) {
            (Some(_), Some(endpoint)) => dht_sockets(endpoint, config.bind, local_addr),
            _ => dht::Sockets::default(),
        };
        let dht = match &config.dht {
            Some(settings) if dht_sockets.v4.is_some() || dht_sockets.v6.is_some() => {
                let (handle, task) = dht::start(
                    dht_sockets.clone(),
                    settings.clone(),
                    local_addr.port(),
                    shutdown.clone(),
                );
                dht_task = Some(task);
                Some(handle)
            }
            _ => None,
        };
        let threads = match config.verify_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).clamp(1, 4)),
            n => n,
        };
        let shared = Arc::new(Shared {
            bind: config.bind,
            runtime: tokio::runtime::Handle::current(),
            pool: verify::VerifyPool::new(threads).map_err(SessionError::Threads)?,
            limits: Limiters::new(Limits {
                download: None,
                upload: config.upload_limit,
            }),
            open_files: OpenFiles::new(config.open_files),
            direct_writes: config.direct_writes,
            events: broadcast::channel(1024).0,
            timers: Mutex::new(std::collections::BinaryHeap::new()),
            timer_wake: tokio::sync::Notify::new(),
            epoch: Instant::now(),
            announces: Mutex::new(std::collections::BinaryHeap::new()),
            announce_ready: Mutex::new(Vec::new()),
            announce_wake: tokio::sync::Notify::new(),
            dht,
        });
        let inner = Arc::new(Inner {
            max_connections: config.max_peers.saturating_mul(4).max(64) + 32,
            udp: udp.clone(),
            config,
            local_addr,
            shared,
            registry: Mutex::new(Registry::default()),
            shutdown,
            http: http_client(),
        });
        let mut tasks = vec![
            tokio::spawn(listener::listen(inner.clone(), listener)),
            tokio::spawn(driver::timers(inner.shared.clone(), inner.shutdown.clone())),
            tokio::spawn(announce::service(
                inner.shared.clone(),
                inner.shutdown.clone(),
                inner.config.peer_id,
                local_addr.port(),
            )),
        ];
        if let Some(udp) = udp {
            tasks.push(tokio::spawn(udp.run(inner.shutdown.clone())));
        }
        if let Some(v6) = dht_sockets.v6.filter(|_| local_addr.is_ipv4()) {
            tasks.push(tokio::spawn(v6.run(inner.shutdown.clone())));
        }
        tasks.extend(dht_task);
        Ok(Session { inner, tasks })
    }

    /// The address we listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// A DHT node to try (it joins the routing table if it answers a ping), as
    /// libtorrent's `add_dht_node`. Ignored without a DHT.
    pub fn add_dht_node(&self, addr: SocketAddr) {
        if let Some(dht) = &self.inner.shared.dht {
            dht.send(dht::Command::AddNode(addr));
        }
    }

    /// The DHT node's state to save (its id and nodes, [`crate::dht::persist`]), as of
    /// the last minute; [`Session::shutdown`] returns the final one.
    pub fn dht_state(&self) -> Option<Vec<u8>> {
        self.inner.shared.dht.as_ref().and_then(|d| d.saved())
    }

    /// The DHT node's figures (`None` without a DHT).
    pub fn dht_stats(&self) -> Option<crate::dht::DhtStats> {
        self.inner.shared.dht.as_ref().map(|d| d.stats())
    }

    /// Adds a torrent. It starts at once (checking first when `have` is `None`) unless
    /// `paused`.
    pub fn add(&self, add: AddTorrent) -> Result<TorrentId, SessionError> {
        self.add_rechecking(add, Vec::new())
    }

    /// [`Session::add`] with `have` given, hashing the `recheck` pieces again first (those
    /// of files changed since `have` was taken; their bits in `have` are not trusted).
    /// The torrent is in the checking state until they are hashed; the other pieces of
    /// `have` are taken as they are.
    pub fn add_rechecking(
        &self,
        mut add: AddTorrent,
        recheck: Vec<u32>,
    ) -> Result<TorrentId, SessionError> {
        let partial = match add.have.take() {
            Some(have) if !recheck.is_empty() => Some(Partial {
                have,
                recheck: recheck.into(),
            }),
            have => {
                add.have = have;
                None
            }
        };
        let inner = &self.inner;
        // Shared as it came (a copy would leave the original's many small allocations as
        // holes among long-lived ones: thousands of torrents add up).
        let shared_meta = Arc::new(add.meta);
        let meta = &*shared_meta;
        if lock(&inner.registry).by_hash.contains_key(&meta.info_hash) {
            return Err(SessionError::Duplicate(meta.info_hash));
        }
        let access = match &add.have {
            Some(have) if have.all() => Access::Read,
            _ => Access::ReadWrite,
        };
        let files = open_files(&inner.shared, meta, &add.dir, access)?;
        let now = Instant::now();
        let engine = Engine::new(
            now,
            meta.info_hash,
            files.geometry,
            meta.info.pieces.clone(),
            torrent_config(inner, meta.info.private, Some(&meta.info_bytes)),
        );
        let id = self.register(
            now,
            Registration {
                info_hash: meta.info_hash,
                name: meta.info.name.clone(),
                engine,
                files: Some(files),
                meta: Some(shared_meta.clone()),
                magnet: None,
                trackers: &meta.trackers,
                peers: &add.peers,
                paused: add.paused,
                have: add.have.as_ref(),
            },
        )?;
        if add.have.is_none() {
            let torrent = self.torrent(id)?;
            // Spawned under the registry's lock, so the task finds its handle there when
            // it takes it out at its end (see `TaskDone`).
            let mut reg = lock(&inner.registry);
            let done = TaskDone {
                inner: self.inner.clone(),
                torrent: id,
            };
            let task = tokio::spawn(check_then_start(
                torrent,
                shared_meta,
                add.dir.clone(),
                Some(done),
                partial,
            ));
            if reg.by_id.contains_key(&id) {
                reg.tasks.entry(id).or_default().push(task);
            }
        }
        Ok(id)
    }

    /// Adds a torrent known by its magnet link. It returns at once with the torrent
    /// fetching its metadata (state [`TorrentState::FetchingMetadata`]) from the peers
    /// given, the link's `x.pe` peers and those its trackers return, retrying until it has
    /// it; then the torrent checks `dir` and downloads as any other, under the same id.
    /// [`SessionEvent::Metadata`] says when the metadata arrived ([`Session::metainfo`]).
    pub fn add_magnet(&self, add: AddMagnet) -> Result<TorrentId, SessionError> {
        let inner = &self.inner;
        let magnet = &add.magnet;
        if lock(&inner.registry)
            .by_hash
            .contains_key(&magnet.info_hash)
        {
            return Err(SessionError::Duplicate(magnet.info_hash));
        }
        let now = Instant::now();
        let engine = Engine::new_magnet(now, magnet.info_hash, torrent_config(inner, false, None));
        // Each `tr` in a tier of its own, tried in the link's order.
        let trackers: Vec<Vec<String>> = magnet.trackers.iter().map(|t| vec![t.clone()]).collect();
        let mut peers = add.peers.clone();
        peers.extend(magnet.peer_addrs());
        self.register(
            now,
            Registration {
                info_hash: magnet.info_hash,
                name: magnet
                    .display_name
                    .clone()
                    .unwrap_or_else(|| magnet.info_hash.to_hex()),
                engine,
                files: None,
                meta: None,
                magnet: Some(magnet::Pending {
                    dir: add.dir.clone(),
                    trackers: trackers.clone(),
                }),
                trackers: &trackers,
                peers: &peers,
                paused: add.paused,
                have: None,
            },
        )
    }

    /// The torrent's metainfo: at once for a .torrent, once fetched for a magnet link.
    pub fn metainfo(&self, id: TorrentId) -> Option<Arc<Metainfo>> {
        self.torrent(id).ok()?.meta.get().cloned()
    }

    /// Puts a torrent in the registry with its handle and starts its engine.
    fn register(&self, now: Instant, r: Registration<'_>) -> Result<TorrentId, SessionError> {
        let inner = &self.inner;
        let mut engine = r.engine;
        engine.handle_peers(now, PeerSource::Manual, r.peers);
        let client = TrackerClient::with_sockets(r.trackers, inner.http.clone(), inner.udp.clone());
        let mut reg = lock(&inner.registry);
        if reg.by_hash.contains_key(&r.info_hash) {
            return Err(SessionError::Duplicate(r.info_hash));
        }
        let id = TorrentId(reg.next_id);
        reg.next_id += 1;
        let files = std::sync::OnceLock::new();
        if let Some(f) = r.files {
            let _ = files.set(f);
        }
        let meta = std::sync::OnceLock::new();
        // With its metainfo, the name is the metainfo's (one copy per torrent).
        let name = if r.meta.is_some() {
            String::new()
        } else {
            r.name
        };
        if let Some(m) = r.meta {
            let _ = meta.set(m);
        }
        let torrent = Arc::new(TorrentHandle {
            id,
            info_hash: r.info_hash,
            name: Mutex::new(name),
            core: Mutex::new(Driven {
                engine,
                links: Default::default(),
            }),
            files,
            meta,
            magnet: r.magnet.map(Box::new),
            shared: inner.shared.clone(),
            cancel: inner.shutdown.child_token(),
            timer_at: AtomicU64::new(u64::MAX),
            revoked: AtomicU64::new(0),
            file_priority: Mutex::new(None),
            pieces_changed: tokio::sync::Notify::new(),
            pieces_seen: std::sync::atomic::AtomicUsize::new(0),
            limits: Default::default(),
            written: Default::default(),
            check_cancel: r
                .have
                .is_none()
                .then(|| Arc::new(std::sync::atomic::AtomicBool::new(false))),
            changed: tokio::sync::Notify::new(),
            tracker: (inner.config.use_trackers && !client.is_empty())
                .then(|| Box::new(Mutex::new(announce::TrackerSlot::new(client)))),
            announce_idle: tokio::sync::Notify::new(),
        });
        {
            let mut d = torrent.lock();
            if r.paused {
                // Paused while checking: it goes straight to paused when the check ends.
                d.engine.pause(now);
            }
            if let Some(have) = r.have {
                d.engine.handle_checked(now, have);
            }
            torrent.dispatch(&mut d);
        }
        reg.by_hash.insert(r.info_hash, id);
        reg.by_id.insert(id, torrent);
        Ok(id)
    }

    pub(super) fn torrent(&self, id: TorrentId) -> Result<Arc<TorrentHandle>, SessionError> {
        lock(&self.inner.registry)
            .by_id
            .get(&id)
            .cloned()
            .ok_or(SessionError::Unknown(id))
    }

    /// Runs `f` on a torrent's engine with `now`, then carries out its actions.
    pub(super) fn drive(
        &self,
        id: TorrentId,
        f: impl FnOnce(&mut Engine, Instant),
    ) -> Result<(), SessionError> {
        let torrent = self.torrent(id)?;
        let mut d = torrent.lock();
        f(&mut d.engine, Instant::now());
        torrent.dispatch(&mut d);
        Ok(())
    }

    /// Pauses a torrent: its connections close and its trackers are told.
    pub fn pause(&self, id: TorrentId) -> Result<(), SessionError> {
        self.drive(id, |e, now| e.pause(now))
    }

    /// Resumes a paused torrent.
    pub fn resume(&self, id: TorrentId) -> Result<(), SessionError> {
        self.drive(id, |e, now| e.resume(now))
    }

    /// Connects a torrent to more peers (kept in its peer book and retried).
    pub fn add_peers(&self, id: TorrentId, peers: &[SocketAddr]) -> Result<(), SessionError> {
        self.drive(id, |e, now| e.handle_peers(now, PeerSource::Manual, peers))
    }

    /// Removes a torrent: its connections close, its trackers are told we left (waiting a
    /// few seconds at most), and every task, socket and file handle it had is gone when
    /// this returns. The data stays on disk.
    pub async fn remove(&self, id: TorrentId) -> Result<(), SessionError> {
        let (torrent, tasks) = {
            let mut reg = lock(&self.inner.registry);
            let torrent = reg.by_id.remove(&id).ok_or(SessionError::Unknown(id))?;
            reg.by_hash.remove(&torrent.info_hash);
            (torrent, reg.tasks.remove(&id).unwrap_or_default())
        };
        stop_torrent(&torrent, tasks).await;
        let _ = self.inner.shared.events.send(SessionEvent::Removed(id));
        Ok(())
    }

    /// One torrent's progress.
    pub fn stats(&self, id: TorrentId) -> Option<TorrentStats> {
        let torrent = self.torrent(id).ok()?;
        let stats = torrent.lock().engine.stats();
        Some(stats)
    }

    /// Every torrent, in the order added.
    pub fn torrents(&self) -> Vec<TorrentSummary> {
        let mut all: Vec<Arc<TorrentHandle>> =
            lock(&self.inner.registry).by_id.values().cloned().collect();
        all.sort_by_key(|t| t.id);
        all.iter()
            .map(|t| {
                let d = t.lock();
                TorrentSummary {
                    id: t.id,
                    name: t.name(),
                    info_hash: t.info_hash.to_hex(),
                    state: d.engine.state(),
                    error: d.engine.error().map(|e| e.to_string()),
                    stats: d.engine.stats(),
                }
            })
            .collect()
    }

    /// Every torrent's figures added up (no per-torrent allocation: cheap to poll with
    /// thousands of torrents).
    pub fn totals(&self) -> SessionStats {
        let all: Vec<Arc<TorrentHandle>> =
            lock(&self.inner.registry).by_id.values().cloned().collect();
        let mut sum = SessionStats {
            torrents: all.len(),
            ..SessionStats::default()
        };
        for t in &all {
            let d = t.lock();
            let s = d.engine.stats();
            sum.complete += usize::from(s.complete);
            sum.failed += usize::from(d.engine.state() == TorrentState::Failed);
            sum.total_bytes += s.total_bytes;
            sum.verified_bytes += s.verified_bytes;
            sum.downloaded += s.downloaded;
            sum.uploaded += s.uploaded;
            sum.download_rate += s.download_rate;
            sum.upload_rate += s.upload_rate;
            sum.peers += s.peers;
            sum.seeds += s.seeds;
        }
        sum
    }

    /// Waits until every piece of the torrent is verified (at once for a seed). Returns
    /// at once for a torrent that is not in the session; never returns for one that fails
    /// or stops before completing.
    pub async fn completed(&self, id: TorrentId) {
        let Ok(torrent) = self.torrent(id) else {
            return;
        };
        loop {
            let changed = torrent.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if torrent.lock().engine.stats().complete {
                return;
            }
            changed.await;
        }
    }

    /// Why the torrent failed, if it has.
    pub fn error(&self, id: TorrentId) -> Option<String> {
        let torrent = self.torrent(id).ok()?;
        let why = torrent.lock().engine.error().map(|e| e.to_string());
        why
    }

    /// A stream of what happens to the torrents (lagging receivers lose old events).
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Stops everything: every torrent says `stopped` to its trackers (a few seconds at
    /// most), every connection closes, the hashing threads finish their queue and exit.
    ///
    /// Returns the DHT node's final state to save, if the session ran one.
    pub async fn shutdown(mut self) -> Option<Vec<u8>> {
        self.stop_all_torrents().await;
        self.inner.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
        }
        let shared = self.inner.shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.pool.stop()).await;
        self.dht_state()
    }
}

impl Drop for Session {
    /// A session dropped without [`Session::shutdown`] still ends everything it started:
    /// its tasks stop at their next wake-up (no `stopped` announces are waited for) and the
    /// hashing threads exit once their queue is empty.
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
        self.inner.shared.pool.close();
    }
}

/// Stops a torrent's engine and waits for its tasks (the announcer's `stopped` included).
async fn stop_torrent(torrent: &Arc<TorrentHandle>, tasks: Vec<JoinHandle<()>>) {
    if let Some(cancel) = &torrent.check_cancel {
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    {
        let mut d = torrent.lock();
        d.engine.stop(Instant::now());
        torrent.dispatch(&mut d);
    }
    torrent.cancel.cancel();
    // The announce service says `stopped` (a few seconds at most); nothing waits longer.
    if let Some(slot) = &torrent.tracker {
        let deadline =
            tokio::time::Instant::now() + announce::STOPPED_TIMEOUT + Duration::from_secs(1);
        loop {
            let idle = torrent.announce_idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if lock(slot).idle() {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
    }
    for mut task in tasks {
        if tokio::time::timeout(Duration::from_secs(6), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
    let links: Vec<_> = torrent.lock().links.drain().collect();
    for (_, link) in links {
        link.cancel.cancel();
    }
}

/// A torrent to put in the registry (see [`Session::register`]).
struct Registration<'a> {
    info_hash: InfoHash,
    name: String,
    engine: Engine,
    files: Option<Files>,
    meta: Option<Arc<Metainfo>>,
    magnet: Option<magnet::Pending>,
    trackers: &'a [Vec<String>],
    peers: &'a [SocketAddr],
    paused: bool,
    have: Option<&'a Bitfield>,
}

/// How the session's torrents behave, from its configuration: `info` is the info
/// dictionary to serve to peers (none for a private torrent or before it is known).
fn torrent_config(inner: &Inner, private: bool, info: Option<&Arc<[u8]>>) -> TorrentConfig {
    TorrentConfig {
        peer_id: inner.config.peer_id,
        max_peers: inner.config.max_peers,
        upload_slots: inner.config.upload_slots,
        listen: Some(inner.local_addr),
        metadata: info.filter(|_| !private).cloned(),
        private,
        dht_port: inner.shared.dht.as_ref().map(|_| inner.local_addr.port()),
        ..TorrentConfig::default()
    }
}

/// Creates the download folder (when writing) and the storage of a torrent's files.
pub(crate) fn open_files(
    shared: &Shared,
    meta: &Metainfo,
    dir: &Path,
    access: Access,
) -> Result<Files, SessionError> {
    if access == Access::ReadWrite {
        std::fs::create_dir_all(dir).map_err(|error| crate::storage::StorageError::Io {
            action: "create",
            path: dir.to_path_buf(),
            error,
        })?;
    }
    let mut storage = Storage::new(meta.info.layout(dir), dir, access)?;
    storage.set_direct_writes(shared.direct_writes);
    storage.set_open_files(shared.open_files.clone());
    Ok(Files {
        geometry: meta.info.geometry(),
        storage,
    })
}

/// Awaits every future (a tiny `join_all`: the futures crate is not worth a dependency).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) {
    let handles: Vec<JoinHandle<()>> = futures.into_iter().map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
}

/// Checks the data on disk on a blocking thread, then lets the torrent go live.
/// Held by a torrent's task: when the task ends, its handle leaves the registry. A
/// finished task's memory stays allocated while its handle lives, and a daemon keeps
/// thousands of torrents that were checked once.
struct TaskDone {
    inner: Arc<Inner>,
    torrent: TorrentId,
}

impl Drop for TaskDone {
    fn drop(&mut self) {
        let Some(me) = tokio::task::try_id() else {
            return;
        };
        let mut reg = lock(&self.inner.registry);
        if let Some(tasks) = reg.tasks.get_mut(&self.torrent) {
            tasks.retain(|t| t.id() != me);
            if tasks.is_empty() {
                reg.tasks.remove(&self.torrent);
            }
        }
    }
}

async fn check_then_start(
    torrent: Arc<TorrentHandle>,
    meta: Arc<Metainfo>,
    dir: PathBuf,
    _done: Option<TaskDone>,
    partial: Option<Partial>,
) {
    let cancel = torrent.check_cancel.clone();
    let checked = tokio::task::spawn_blocking(move || {
        check_until(&meta, &dir, cancel, partial.as_ref(), |_| {})
    })
    .await;
    let mut d = torrent.lock();
    let now = Instant::now();
    match checked {
        Ok(Ok(have)) => d.engine.handle_checked(now, &have),
        Ok(Err(HashError::Cancelled)) | Err(_) => return,
        Ok(Err(e)) => d.engine.handle_check_failed(
            now,
            TorrentError::Check {
                message: e.to_string(),
            },
        ),
    }
    torrent.dispatch(&mut d);
}

/// The DHT's sockets: the session's UDP socket for its family and, when the session listens
/// on every IPv4 address, an IPv6-only socket on the same port where the host has IPv6.
/// A session on every IPv6 address (`[::]`) has one dual-stack socket for both. We
/// announce ourselves only in the families our TCP listener at `listen` takes.
fn dht_sockets(udp: &Arc<UdpEndpoint>, bind: SocketAddr, listen: SocketAddr) -> dht::Sockets {
    let port = listen.port();
    if bind.is_ipv6() {
        let dual = bind.ip().is_unspecified();
        return dht::Sockets {
            v4: dual.then(|| udp.clone()),
            v6: Some(udp.clone()),
            v4_mapped: dual,
            peers_ipv4: dual,
            peers_ipv6: true,
        };
    }
    let v6 = if bind.ip().is_unspecified() {
        let any6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
        UdpEndpoint::bind_v6_only(any6)
            .map_err(|e| tracing::info!("no IPv6 DHT (port {port}): {e}"))
            .ok()
    } else {
        None
    };
    dht::Sockets {
        v4: Some(udp.clone()),
        v6,
        v4_mapped: false,
        peers_ipv4: true,
        // The TCP listener is IPv4 only: IPv6 peers could not connect to what we announce.
        peers_ipv6: false,
    }
}
