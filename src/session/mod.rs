//! A running torrent: listens for and makes peer connections, announces to trackers,
//! runs the choker, and checks, stores and serves pieces.
//!
//! This module owns the I/O around the protocol logic of [`crate::wire`] (framing and
//! rules), [`crate::picker`] (what to request, whom to unchoke) and [`crate::storage`]. It
//! never marks, announces or serves a piece whose SHA-1 did not match.
//!
//! Resume design: on start, the data already on disk is fully re-checked with the shared
//! hashing pipeline ([`check`]); only pieces that verify count as had. Pieces are written
//! only after they verify, so an interrupted download keeps everything it had verified.

mod limit;
mod peer;

mod torrent;

use crate::metainfo::Metainfo;
use crate::storage::{hash_pieces, Access, HashError, HashOptions, PieceHash, Storage};
use crate::tracker::client::{AnnounceParams, TrackerClient};
use crate::tracker::Event;
use crate::wire::Bitfield;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use torrent::Torrent;

/// A connection attempt gives up after this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The peer must complete its handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that sends nothing (not even keep-alives) for this long is dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// We send a keep-alive after this long without sending anything.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// A peer that answers none of our requests for this long is snubbed: its blocks are
/// requested from others.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// A write that makes no progress for this long ends the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Address to listen on (port 0 picks a free port). When the address is specific,
    /// outgoing connections are made from it too.
    pub bind: SocketAddr,
    /// Most peers connected at once (in and out).
    pub max_peers: usize,
    /// Regular unchoke slots (one optimistic slot comes on top).
    pub upload_slots: usize,
    /// Peers to connect to besides those trackers give.
    pub peers: Vec<SocketAddr>,
    /// Our BitTorrent peer id.
    pub peer_id: [u8; 20],
    /// Ask trackers (false: only `peers` and incoming connections).
    pub use_trackers: bool,
    /// Most bytes per second uploaded, all peers together (None: no limit).
    pub upload_limit: Option<u64>,
    /// Write verified pieces with `O_DIRECT` where possible (see [`crate::storage::Storage`]).
    pub direct_writes: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 6881)),
            max_peers: 50,
            upload_slots: 4,
            peers: Vec::new(),
            peer_id: new_peer_id(),
            use_trackers: true,
            upload_limit: None,
            direct_writes: true,
        }
    }
}

/// A fresh peer id: `-BT0001-` (Azureus style) and 12 random alphanumerics.
pub fn new_peer_id() -> [u8; 20] {
    let mut id = *b"-BT0001-............";
    for b in &mut id[8..] {
        *b = fastrand::alphanumeric() as u8;
    }
    id
}

/// Why a session could not start.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error("cannot listen on {addr}: {error} (pick another --port, or 0 for any free port)")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// A snapshot of a session's progress.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub pieces: usize,
    pub pieces_have: usize,
    pub total_bytes: u64,
    pub verified_bytes: u64,
    /// Piece bytes received from peers (good or not).
    pub downloaded: u64,
    pub uploaded: u64,
    /// Bytes received that were duplicates or failed the hash check.
    pub wasted: u64,
    pub hash_failures: u64,
    /// Bytes per second, smoothed over a few seconds.
    pub download_rate: f64,
    pub upload_rate: f64,
    pub peers: usize,
    pub seeds: usize,
    pub banned: usize,
    pub complete: bool,
}

/// Checks the data under `dir` against the torrent: the pieces that verify.
/// `on_progress(bytes)` reports hashing progress as in [`hash_pieces`].
pub fn check(
    meta: &Metainfo,
    dir: &Path,
    on_progress: impl FnMut(u64),
) -> Result<Bitfield, HashError> {
    let layout = meta.info.layout(dir);
    let found = hash_pieces(&layout, HashOptions::default(), on_progress)?;
    Ok(found
        .iter()
        .zip(&meta.info.pieces)
        .map(|(found, want)| matches!(found, PieceHash::Hashed(h) if h == want))
        .collect())
}

/// A torrent being downloaded or seeded.
pub struct Session {
    torrent: Arc<Torrent>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Session {
    /// Starts sharing `meta` with data under `dir`, of which the pieces in `have` are
    /// verified (see [`check`]). Must run inside a multi-threaded tokio runtime.
    pub async fn start(
        meta: &Metainfo,
        dir: &Path,
        have: Bitfield,
        config: SessionConfig,
    ) -> Result<Session, SessionError> {
        let layout = meta.info.layout(dir);
        let access = if have.all() {
            Access::Read
        } else {
            Access::ReadWrite
        };
        let mut storage = Storage::new(layout, dir, access)?;
        storage.set_direct_writes(config.direct_writes);
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|error| SessionError::Listen {
                    addr: config.bind,
                    error,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|error| SessionError::Listen {
                addr: config.bind,
                error,
            })?;
        let torrent = Torrent::new(
            meta.info_hash,
            meta.info.pieces.clone(),
            storage,
            &have,
            config,
        );
        let mut tasks = vec![
            tokio::spawn(listen(torrent.clone(), listener)),
            tokio::spawn(ticker(torrent.clone(), local_addr.port())),
        ];
        if torrent.config.use_trackers && !meta.trackers.is_empty() {
            tasks.push(tokio::spawn(announce_loop(
                torrent.clone(),
                TrackerClient::new(&meta.trackers),
                local_addr.port(),
            )));
        }
        let peers = torrent.config.peers.clone();
        connect(&torrent, &peers, local_addr);
        Ok(Session {
            torrent,
            local_addr,
            tasks,
        })
    }

    /// The address we listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connects to more peers (skipping known, banned and connecting ones).
    pub fn add_peers(&self, peers: &[SocketAddr]) {
        connect(&self.torrent, peers, self.local_addr);
    }

    /// Progress figures now.
    pub fn stats(&self) -> Stats {
        let t = &self.torrent;
        let st = t.lock();
        let c = &t.counters;
        Stats {
            pieces: st.picker.piece_count(),
            pieces_have: st.picker.have_count(),
            total_bytes: t.total_length,
            verified_bytes: st.verified_bytes,
            downloaded: c.downloaded.load(Ordering::Relaxed),
            uploaded: c.uploaded.load(Ordering::Relaxed),
            wasted: c.wasted.load(Ordering::Relaxed),
            hash_failures: c.hash_failures.load(Ordering::Relaxed),
            download_rate: st
                .peers
                .values()
                .fold(0.0, |sum, p| sum + p.down.per_second()),
            upload_rate: st
                .peers
                .values()
                .fold(0.0, |sum, p| sum + p.up.per_second()),
            peers: st.peers.len(),
            seeds: st.peers.values().filter(|p| p.bits.all()).count(),
            banned: st.bans.banned_count(),
            complete: st.picker.is_complete(),
        }
    }

    /// Waits until every piece is verified (at once for a seed).
    pub async fn completed(&self) {
        let mut rx = self.torrent.complete.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Waits until the session stops by itself (a fatal error).
    pub async fn stopped(&self) {
        self.torrent.shutdown.cancelled().await;
    }

    /// Why the session stopped by itself, if it did.
    pub fn error(&self) -> Option<String> {
        torrent::lock(&self.torrent.fatal).clone()
    }

    /// Stops: closes every connection and tells trackers we left (waiting at most a few
    /// seconds for them).
    pub async fn shutdown(self) {
        self.torrent.shutdown.cancel();
        self.torrent.stop_hashing();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(6), task).await;
        }
    }
}

/// Starts connections to `addrs` within the peer limit.
fn connect(torrent: &Arc<Torrent>, addrs: &[SocketAddr], ours: SocketAddr) {
    let mut st = torrent.lock();
    for &addr in addrs {
        if st.peers.len() + st.connecting.len() >= torrent.config.max_peers {
            break;
        }
        let is_us = addr.port() == ours.port()
            && (addr.ip() == ours.ip() || ours.ip().is_unspecified() && addr.ip().is_loopback());
        if is_us
            || st.bans.is_banned(addr, None)
            || st.connecting.contains(&addr)
            || st.peers.values().any(|p| p.addr == addr)
        {
            continue;
        }
        st.connecting.insert(addr);
        tokio::spawn(peer::outgoing(torrent.clone(), addr));
    }
}

async fn listen(torrent: Arc<Torrent>, listener: TcpListener) {
    // Incoming connections alive at once, handshaking or not: beyond the peer limit plus
    // some slack, new ones are closed at once (silent sockets cannot pile up).
    let slots = Arc::new(tokio::sync::Semaphore::new(torrent.config.max_peers + 32));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        continue;
                    };
                    let torrent = torrent.clone();
                    tokio::spawn(async move {
                        peer::incoming(torrent, stream, addr).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = torrent.shutdown.cancelled() => return,
        }
    }
}

async fn ticker(torrent: Arc<Torrent>, port: u16) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut round = 0u64;
    loop {
        tokio::select! {
            _ = every.tick() => {
                round += 1;
                torrent.tick(round);
                if round % 10 == 0 && !torrent.config.peers.is_empty() {
                    // Peers given by the user are retried (they may not have been up yet).
                    let ours = SocketAddr::new(torrent.config.bind.ip(), port);
                    connect(&torrent, &torrent.config.peers, ours);
                }
            }
            _ = torrent.shutdown.cancelled() => return,
        }
    }
}

/// Announces `started`, then at the tracker's interval, `completed` when the download
/// finishes, and `stopped` on shutdown. Failures are retried with growing delays.
async fn announce_loop(torrent: Arc<Torrent>, mut client: TrackerClient, port: u16) {
    let key = fastrand::u32(..);
    let mut complete = torrent.complete.subscribe();
    let was_complete = *complete.borrow_and_update();
    let mut event = Event::Started;
    let mut retry = Duration::from_secs(5);
    let params = |event| AnnounceParams {
        info_hash: torrent.info_hash,
        peer_id: torrent.peer_id,
        port,
        uploaded: torrent.counters.uploaded.load(Ordering::Relaxed),
        downloaded: torrent.counters.downloaded.load(Ordering::Relaxed),
        left: torrent.left(),
        event,
        numwant: Some(50),
        key,
    };
    let ours = SocketAddr::new(torrent.config.bind.ip(), port);
    loop {
        let wait = match client.announce(&params(event)).await {
            Ok((url, response)) => {
                tracing::info!("{url}: {} peers", response.peers.len());
                if let Some(w) = &response.warning {
                    tracing::warn!("{url} warns: {w}");
                }
                connect(&torrent, &response.peers, ours);
                retry = Duration::from_secs(5);
                Duration::from_secs(u64::from(response.interval.clamp(10, 3600)))
            }
            Err(e) => {
                tracing::warn!("announce failed: {e}");
                retry = (retry * 2).min(Duration::from_secs(300));
                retry
            }
        };
        event = Event::None;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Ok(()) = complete.changed(), if !was_complete && !*complete.borrow() => {
                event = Event::Completed;
            }
            _ = torrent.shutdown.cancelled() => break,
        }
    }
    let stopped = params(Event::Stopped);
    if tokio::time::timeout(Duration::from_secs(5), client.announce(&stopped))
        .await
        .is_err()
    {
        tracing::debug!("stopped announce timed out");
    }
}
