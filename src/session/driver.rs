//! One torrent in a session: its engine behind one lock, the connections' send queues, and
//! the carrying out of the engine's actions.
//!
//! The engine is shared by its connection tasks, its timer task and the verify pool under
//! one mutex, held only to feed the engine and drain its actions, never across I/O or an
//! `.await`. (A lock rather than an actor task: received bytes are handed to the engine
//! straight from each connection's receive buffer, with no copy and no channel hop.)

use super::announce::TrackerSlot;
use super::verify::{Job, VerifyPool, Work};
use super::{SessionEvent, TorrentId};
use crate::core::{InfoHash, PeerKey};
use crate::storage::Storage;
use crate::torrent::{Action, Engine, TorrentState};
use crate::tracker::Event;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

/// Unsent bytes queued for one peer past which it is dropped (it does not read).
const MAX_UNSENT_BYTES: usize = 1 << 20;

/// Locks a mutex, ignoring poisoning (no code here panics while holding a lock on purpose,
/// and a crashed task must not take the session down).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every torrent of a session shares.
pub struct Shared {
    /// Where outgoing connections come from (unspecified: any).
    pub bind: SocketAddr,
    /// Spawns connection tasks from any thread (the verify pool's too).
    pub runtime: tokio::runtime::Handle,
    pub pool: VerifyPool,
    /// The session's rate limits (every torrent's connections wait on them).
    pub limits: super::limit::Limiters,
    /// Open files of every torrent, bounded.
    pub open_files: Arc<crate::storage::OpenFiles>,
    /// Write verified pieces with `O_DIRECT` where possible.
    pub direct_writes: bool,
    pub events: broadcast::Sender<SessionEvent>,
    /// Every torrent's next timeout, served by one timer task ([`timers`]).
    pub timers: Mutex<BinaryHeap<Due>>,
    /// Wakes the timer task when a deadline earlier than all others is queued.
    pub timer_wake: Notify,
    /// Origin of the deadlines kept in [`TorrentHandle::timer_at`].
    pub epoch: Instant,
    /// Regular announces by due time, for the announce service.
    pub announces: Mutex<BinaryHeap<Due>>,
    /// Torrents with events to announce now.
    pub announce_ready: Mutex<Vec<Weak<TorrentHandle>>>,
    /// Wakes the announce service.
    pub announce_wake: Notify,
    /// The DHT task, if the session runs one.
    pub dht: Option<super::dht::DhtHandle>,
}

/// A torrent's deadline waiting in one of the session's queues (earliest first).
pub struct Due {
    pub at: Instant,
    pub torrent: Weak<TorrentHandle>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

/// The send side of one connection: the writer task drains it.
pub struct Link {
    pub queue: Mutex<Vec<u8>>,
    /// The peer may have requests to serve: the writer looks at the engine only then (a
    /// downloader's writer, which mostly sends requests, never takes the engine's lock).
    /// Set and cleared under the engine's lock.
    pub serve: std::sync::atomic::AtomicBool,
    pub notify: Notify,
    pub cancel: CancellationToken,
}

impl Link {
    pub fn new(cancel: CancellationToken) -> Link {
        Link {
            queue: Mutex::new(Vec::new()),
            serve: std::sync::atomic::AtomicBool::new(false),
            notify: Notify::new(),
            cancel,
        }
    }
}

/// The engine and the links of its connections, under one lock.
pub struct Driven {
    pub engine: Engine,
    pub links: crate::core::keyed::Map<PeerKey, Arc<Link>>,
}

/// Where a torrent's data lives and how it is cut into pieces: fixed once known (at once
/// for a .torrent, when the metadata arrives for a magnet link), read without the engine's
/// lock.
pub struct Files {
    pub geometry: crate::core::Geometry,
    pub storage: Storage,
}

/// One torrent of a session.
pub struct TorrentHandle {
    pub id: TorrentId,
    pub info_hash: InfoHash,
    /// A magnet torrent's name until its metadata arrives (the link's `dn` or its info
    /// hash); then empty, as the metainfo names it ([`TorrentHandle::name`]).
    pub name: Mutex<String>,
    pub core: Mutex<Driven>,
    /// Set once, before any piece can be received or served.
    pub files: std::sync::OnceLock<Files>,
    /// The torrent's metainfo: from the start for a .torrent, once fetched for a magnet.
    pub meta: std::sync::OnceLock<Arc<crate::metainfo::Metainfo>>,
    /// A magnet torrent's plan for when its metadata arrives.
    pub magnet: Option<Box<super::magnet::Pending>>,
    pub shared: Arc<Shared>,
    /// Cancelled when the torrent is removed or the session shuts down; connection
    /// tokens are its children.
    pub cancel: CancellationToken,
    /// The deadline queued for it in the session's timer, in nanoseconds after the
    /// session's epoch (`u64::MAX`: none). Queue entries at other times are stale.
    pub timer_at: AtomicU64,
    /// Stops the data check early (set when the torrent is removed while checking).
    pub check_cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Woken (all waiters) when the torrent completes, fails or stops.
    pub changed: Notify,
    /// Woken (all waiters) when the count of verified pieces changes (readers streaming a
    /// file wait on it); the count last seen.
    pub pieces_changed: Notify,
    pub pieces_seen: std::sync::atomic::AtomicUsize,
    /// Its trackers' state, served by the session's announce service (`None`: no
    /// trackers, or trackers turned off).
    pub tracker: Option<Box<Mutex<TrackerSlot>>>,
    /// Woken (all waiters) when an announce of this torrent finishes.
    pub announce_idle: Notify,
    /// The engine's count of pieces it stopped serving ([`Engine::revocations`]), copied
    /// after each call: a writer that read blocks while it changed sends none of them.
    pub revoked: AtomicU64,
    /// The file priorities last set (`None`: every file at the default).
    pub file_priority: Mutex<Option<Vec<u8>>>,
    /// This torrent's own rate limits (on top of the session's).
    pub limits: super::limit::TorrentLimiters,
    /// Spilled pieces hashed as their blocks are written.
    pub written: super::inorder::WrittenHashes,
}

impl TorrentHandle {
    pub fn lock(&self) -> MutexGuard<'_, Driven> {
        lock(&self.core)
    }

    /// The torrent's files. The engine asks for no disk work before they are set, so the
    /// error is for a broken promise, reported as a disk error rather than a crash.
    pub fn files(&self) -> Result<&Files, String> {
        self.files
            .get()
            .ok_or_else(|| "the torrent's files are not known yet".to_string())
    }

    /// Its name now (escape it before it reaches a terminal).
    pub fn name(&self) -> String {
        match self.meta.get() {
            Some(meta) => meta.info.name.clone(),
            None => lock(&self.name).clone(),
        }
    }

    /// Carries out every action the engine has, with its lock held (nothing here blocks).
    pub fn dispatch(self: &Arc<Self>, d: &mut Driven) {
        while let Some(action) = d.engine.poll_action() {
            match action {
                Action::Send { peer, bytes } => {
                    let Some(link) = d.links.get(&peer) else {
                        continue;
                    };
                    let mut q = lock(&link.queue);
                    if q.len() > MAX_UNSENT_BYTES {
                        // It does not read what we send (yet keeps talking): drop it.
                        tracing::debug!("{peer}: not reading, disconnecting");
                        link.cancel.cancel();
                        continue;
                    }
                    if q.is_empty() {
                        *q = bytes;
                    } else {
                        q.extend_from_slice(&bytes);
                    }
                    drop(q);
                    link.notify.notify_one();
                }
                Action::Serve { peer } => {
                    if let Some(link) = d.links.get(&peer) {
                        link.serve.store(true, Ordering::Relaxed);
                        link.notify.notify_one();
                    }
                }
                Action::Close { peer, addr, reason } => {
                    // Reasons can quote what the peer sent.
                    let reason = reason.to_string();
                    tracing::debug!("{addr}: {}", crate::text::escape(&reason));
                    if let Some(link) = d.links.remove(&peer) {
                        link.cancel.cancel();
                    }
                }
                Action::Dial { addr } => {
                    let torrent = self.clone();
                    self.shared
                        .runtime
                        .spawn(super::conn::outgoing(torrent, addr));
                }
                Action::Verify {
                    piece,
                    expected,
                    data,
                } => self.shared.pool.submit(Job {
                    torrent: self.clone(),
                    piece,
                    expected,
                    work: Work::Received(data),
                }),
                Action::Write {
                    piece,
                    offset,
                    data,
                    attempt,
                } => self.shared.pool.submit(Job {
                    torrent: self.clone(),
                    piece,
                    expected: [0; 20],
                    work: Work::Write {
                        offset,
                        data,
                        attempt,
                    },
                }),
                Action::HashOnDisk {
                    piece,
                    expected,
                    block_hashes,
                    attempt,
                } => self.shared.pool.submit(Job {
                    torrent: self.clone(),
                    piece,
                    expected,
                    work: Work::OnDisk {
                        block_hashes,
                        attempt,
                    },
                }),
                Action::Announce { event } => {
                    if let Some(dht) = &self.shared.dht {
                        // Private torrents (BEP 27) never use the DHT.
                        match event {
                            Event::Started if !d.engine.is_private() => {
                                dht.send(super::dht::Command::Start {
                                    info_hash: self.info_hash,
                                    torrent: Arc::downgrade(self),
                                })
                            }
                            Event::Stopped => dht.send(super::dht::Command::Stop {
                                info_hash: self.info_hash,
                            }),
                            _ => {}
                        }
                    }
                    if let Some(slot) = &self.tracker {
                        lock(slot).events.push_back(event);
                        lock(&self.shared.announce_ready).push(Arc::downgrade(self));
                        self.shared.announce_wake.notify_one();
                    }
                }
                Action::Metadata { meta } => {
                    if let (Some(dht), true) = (&self.shared.dht, meta.info.private) {
                        dht.send(super::dht::Command::Stop {
                            info_hash: self.info_hash,
                        });
                    }
                    let torrent = self.clone();
                    self.shared
                        .runtime
                        .spawn(super::magnet::metadata_arrived(torrent, *meta));
                }
                Action::DhtNode { addr } => {
                    if let Some(dht) = &self.shared.dht {
                        dht.send(super::dht::Command::AddNode(addr));
                    }
                }
                Action::ExternalIp { voter, seen } => {
                    if let Some(dht) = &self.shared.dht {
                        dht.send(super::dht::Command::ExternalIp { voter, seen });
                    }
                }
                Action::Completed => {
                    let _ = self.shared.events.send(SessionEvent::Completed(self.id));
                }
                Action::State(state) => {
                    if state == TorrentState::Failed {
                        let why = d.engine.error().map(|e| e.to_string());
                        tracing::error!(
                            "{}: {}",
                            crate::text::escape(&self.name()),
                            crate::text::escape(why.as_deref().unwrap_or("failed"))
                        );
                    }
                    let _ = self.shared.events.send(SessionEvent::State(self.id, state));
                    // After the event: whoever waits on `changed` sees it sent.
                    self.changed.notify_waiters();
                }
            }
        }
        self.revoked
            .store(d.engine.revocations(), Ordering::Relaxed);
        // The verified count and the revocations together: a piece lost and another
        // verified in one go still changes the sum.
        let seen = d.engine.pieces_have() + d.engine.revocations() as usize;
        if self.pieces_seen.swap(seen, Ordering::Relaxed) != seen {
            self.pieces_changed.notify_waiters();
        }
        if let Some(at) = d.engine.poll_timeout() {
            let nanos = at.saturating_duration_since(self.shared.epoch).as_nanos() as u64;
            if nanos < self.timer_at.load(Ordering::Relaxed) {
                self.timer_at.store(nanos, Ordering::Relaxed);
                let mut heap = lock(&self.shared.timers);
                let earliest = heap.peek().map_or(true, |d| at < d.at);
                heap.push(Due {
                    at,
                    torrent: Arc::downgrade(self),
                });
                drop(heap);
                if earliest {
                    self.shared.timer_wake.notify_one();
                }
            }
        }
    }
}

/// Runs every torrent's clock until `stop`: sleeps until the earliest queued timeout (or
/// until woken for an earlier one), then calls each due engine's `handle_timeout`. One
/// task for the whole session: an idle torrent has no timeout queued and costs nothing.
pub async fn timers(shared: Arc<Shared>, stop: CancellationToken) {
    let mut due = Vec::new();
    loop {
        let next = lock(&shared.timers).peek().map(|d| d.at);
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = shared.timer_wake.notified() => continue,
            _ = stop.cancelled() => return,
        }
        let now = Instant::now();
        {
            let mut heap = lock(&shared.timers);
            while heap.peek().is_some_and(|d| d.at <= now) {
                due.extend(heap.pop());
            }
        }
        for d in due.drain(..) {
            let Some(torrent) = d.torrent.upgrade() else {
                continue;
            };
            let nanos = d.at.saturating_duration_since(shared.epoch).as_nanos() as u64;
            if torrent.timer_at.load(Ordering::Relaxed) != nanos {
                continue;
            }
            torrent.timer_at.store(u64::MAX, Ordering::Relaxed);
            let mut t = torrent.lock();
            t.engine.handle_timeout(now);
            torrent.dispatch(&mut t);
        }
    }
}
