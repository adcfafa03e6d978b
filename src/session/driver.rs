//! One torrent in a session: its engine behind one lock, the connections' send queues, and
//! the carrying out of the engine's actions.
//!
//! The engine is shared by its connection tasks, its timer task and the verify pool under
//! one mutex, held only to feed the engine and drain its actions, never across I/O or an
//! `.await`. (A lock rather than an actor task: received bytes are handed to the engine
//! straight from each connection's receive buffer, with no copy and no channel hop.)

use super::limit::Limiter;
use super::verify::{Job, VerifyPool};
use super::{SessionEvent, TorrentId};
use crate::core::{InfoHash, PeerKey};
use crate::storage::Storage;
use crate::torrent::{Action, Engine, TorrentState};
use crate::tracker::Event;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch, Notify};
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
    pub limiter: Option<Limiter>,
    pub events: broadcast::Sender<SessionEvent>,
}

/// The send side of one connection: the writer task drains it.
pub struct Link {
    pub queue: Mutex<Vec<u8>>,
    pub notify: Notify,
    pub cancel: CancellationToken,
}

impl Link {
    pub fn new(cancel: CancellationToken) -> Link {
        Link {
            queue: Mutex::new(Vec::new()),
            notify: Notify::new(),
            cancel,
        }
    }
}

/// The engine and the links of its connections, under one lock.
pub struct Driven {
    pub engine: Engine,
    pub links: HashMap<PeerKey, Arc<Link>>,
}

/// One torrent of a session.
pub struct TorrentHandle {
    pub id: TorrentId,
    pub info_hash: InfoHash,
    pub name: String,
    pub core: Mutex<Driven>,
    pub storage: Storage,
    pub shared: Arc<Shared>,
    /// Cancelled when the torrent is removed or the session shuts down; connection
    /// tokens are its children.
    pub cancel: CancellationToken,
    /// Wakes the timer task when the engine wants an earlier timeout.
    pub timer: Notify,
    /// The timer task's deadline, in nanoseconds after `epoch` (`u64::MAX`: none).
    pub timer_at: AtomicU64,
    pub epoch: Instant,
    /// Becomes true when every piece is verified.
    pub complete: watch::Sender<bool>,
    /// Why the torrent failed, once it has.
    pub failure: watch::Sender<Option<String>>,
    /// Events for the announce task.
    pub announce: mpsc::UnboundedSender<Event>,
}

impl TorrentHandle {
    pub fn lock(&self) -> MutexGuard<'_, Driven> {
        lock(&self.core)
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
                        link.notify.notify_one();
                    }
                }
                Action::Close { peer, addr, reason } => {
                    tracing::debug!("{addr}: {reason}");
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
                    data,
                }),
                Action::Announce { event } => {
                    let _ = self.announce.send(event);
                }
                Action::Completed => {
                    // The event goes out before anyone waiting on `complete` wakes.
                    let _ = self.shared.events.send(SessionEvent::Completed(self.id));
                    self.complete.send_replace(true);
                }
                Action::State(state) => {
                    if state == TorrentState::Seeding {
                        self.complete.send_replace(true);
                    }
                    if state == TorrentState::Failed {
                        let why = d.engine.error().map(|e| e.to_string());
                        tracing::error!("{}: {}", self.name, why.as_deref().unwrap_or("failed"));
                        self.failure.send_replace(why);
                    }
                    let _ = self.shared.events.send(SessionEvent::State(self.id, state));
                }
            }
        }
        if let Some(at) = d.engine.poll_timeout() {
            let at = at.saturating_duration_since(self.epoch).as_nanos() as u64;
            if at < self.timer_at.load(Ordering::Relaxed) {
                self.timer.notify_one();
            }
        }
    }
}

/// Runs the engine's clock until the torrent is cancelled: sleeps until the engine's next
/// timeout (or until woken for an earlier one) and calls `handle_timeout`.
pub async fn timer(torrent: Arc<TorrentHandle>) {
    loop {
        let next = torrent.lock().engine.poll_timeout();
        let at = next.map_or(u64::MAX, |t| {
            t.saturating_duration_since(torrent.epoch).as_nanos() as u64
        });
        torrent.timer_at.store(at, Ordering::Relaxed);
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = torrent.timer.notified() => continue,
            _ = torrent.cancel.cancelled() => return,
        }
        let mut d = torrent.lock();
        d.engine.handle_timeout(Instant::now());
        torrent.dispatch(&mut d);
    }
}
