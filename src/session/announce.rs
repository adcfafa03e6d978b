//! The session's one announce service: it tells every torrent's trackers about it.
//!
//! Each torrent with trackers holds a [`TrackerSlot`]: its client, the events its engine
//! asked for (started, completed, stopped) and when it is next due. One task serves them
//! all: it sends the events in order, announces again at each tracker's interval, retries
//! failures with growing delays (re-sending a `started` or `completed` that did not get
//! through), and hands the peers returned to the engine's peer book. An idle torrent costs
//! its slot and a queue entry, not a task.

use super::driver::{lock, Due, Shared, TorrentHandle};
use crate::core::PeerId;
use crate::text::escape;
use crate::torrent::PeerSource;
use crate::tracker::client::{AnnounceParams, AnnounceResponse, ClientError, TrackerClient};
use crate::tracker::Event;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// First retry delay after a failed announce (doubles up to [`MAX_RETRY`]).
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// A `stopped` announce waits at most this long.
pub const STOPPED_TIMEOUT: Duration = Duration::from_secs(5);
/// Announces in flight at once; the others wait their turn (a thousand torrents starting
/// together must not open a thousand connections at once).
const MAX_IN_FLIGHT: usize = 32;

/// One torrent's tracker state; see the module documentation.
pub struct TrackerSlot {
    /// Its trackers in BEP 12 order (a clone goes out with each announce and comes back
    /// with the working tracker moved to the front of its tier).
    pub client: TrackerClient,
    /// Events the engine asked for, in order.
    pub events: VecDeque<Event>,
    /// An announce is in flight.
    pub busy: bool,
    /// `started` went out and `stopped` did not.
    pub active: bool,
    /// When the next regular announce (or retry) is due.
    pub next: Option<Instant>,
    /// An event whose announce failed, sent with the retry.
    pub unsent: Event,
    pub retry: Duration,
    /// Random per-torrent key (lets trackers recognise us across address changes).
    pub key: u32,
}

impl TrackerSlot {
    pub fn new(client: TrackerClient) -> TrackerSlot {
        TrackerSlot {
            client,
            events: VecDeque::new(),
            busy: false,
            active: false,
            next: None,
            unsent: Event::None,
            retry: FIRST_RETRY,
            key: fastrand::u32(..),
        }
    }

    /// Nothing in flight and nothing waiting to be said.
    pub fn idle(&self) -> bool {
        !self.busy && self.events.is_empty()
    }
}

/// What a finished announce hands back.
struct Done {
    torrent: Weak<TorrentHandle>,
    client: TrackerClient,
    event: Event,
    result: Option<Result<AnnounceResponse, ClientError>>,
}

/// Runs until `stop`: see the module documentation.
pub async fn service(shared: Arc<Shared>, stop: CancellationToken, peer_id: PeerId, port: u16) {
    let mut inflight: JoinSet<Done> = JoinSet::new();
    // Which torrent each announce in flight is for (to free its slot if the task dies).
    let mut owners: HashMap<tokio::task::Id, Weak<TorrentHandle>> = HashMap::new();
    let mut due: VecDeque<Weak<TorrentHandle>> = VecDeque::new();
    loop {
        let next = lock(&shared.announces).peek().map(|d| d.at);
        let sleep = async move {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = shared.announce_wake.notified() => {}
            Some(joined) = inflight.join_next_with_id(), if !inflight.is_empty() => {
                let next = match joined {
                    Ok((id, done)) => {
                        owners.remove(&id);
                        finished(&shared, done)
                    }
                    // The task died (a panic): free its torrent's slot all the same.
                    Err(e) => owners.remove(&e.id()).and_then(|t| abandoned(&t)),
                };
                due.extend(next);
            }
            _ = stop.cancelled() => return,
        }
        let now = Instant::now();
        {
            let mut queue = lock(&shared.announces);
            while queue.peek().is_some_and(|d| d.at <= now) {
                due.extend(queue.pop().map(|d| d.torrent));
            }
        }
        due.extend(lock(&shared.announce_ready).drain(..));
        // A torrent going away says `stopped` now, whatever waits: its removal waits for
        // that, a few seconds at most.
        due.retain(|t| {
            let Some(torrent) = t.upgrade() else {
                return false;
            };
            if !stopping(&torrent) {
                return true;
            }
            start(&mut inflight, &mut owners, &torrent, now, peer_id, port);
            false
        });
        while inflight.len() < MAX_IN_FLIGHT {
            let Some(torrent) = due.pop_front() else {
                break;
            };
            if let Some(torrent) = torrent.upgrade() {
                start(&mut inflight, &mut owners, &torrent, now, peer_id, port);
            }
        }
    }
}

/// Whether the torrent has a `stopped` waiting.
fn stopping(torrent: &TorrentHandle) -> bool {
    torrent
        .tracker
        .as_ref()
        .is_some_and(|slot| lock(slot).events.contains(&Event::Stopped))
}

/// Frees the slot of a torrent whose announce task died; returns it if it has more to say.
fn abandoned(torrent: &Weak<TorrentHandle>) -> Option<Weak<TorrentHandle>> {
    let t = torrent.upgrade()?;
    let slot = t.tracker.as_ref()?;
    let mut s = lock(slot);
    s.busy = false;
    let more = !s.events.is_empty();
    drop(s);
    t.announce_idle.notify_waiters();
    more.then(|| torrent.clone())
}

/// Sends the torrent's next event, or its regular announce if due, unless one is in flight.
fn start(
    inflight: &mut JoinSet<Done>,
    owners: &mut HashMap<tokio::task::Id, Weak<TorrentHandle>>,
    torrent: &Arc<TorrentHandle>,
    now: Instant,
    peer_id: PeerId,
    port: u16,
) {
    let Some(slot) = &torrent.tracker else {
        return;
    };
    let mut s = lock(slot);
    if s.busy {
        return;
    }
    let event = loop {
        match s.events.pop_front() {
            // Nothing to stop: never started (or stopped already).
            Some(Event::Stopped) if !s.active => continue,
            Some(e) => break e,
            None if s.active && s.next.is_some_and(|t| t <= now) => {
                break std::mem::replace(&mut s.unsent, Event::None)
            }
            None => return,
        }
    };
    s.busy = true;
    s.next = None;
    let mut client = s.client.clone();
    let key = s.key;
    drop(s);
    let (stats, left) = {
        let d = torrent.lock();
        (d.engine.stats(), d.engine.left())
    };
    let params = AnnounceParams {
        info_hash: torrent.info_hash,
        peer_id,
        port,
        uploaded: stats.uploaded,
        downloaded: stats.downloaded,
        left,
        event,
        numwant: Some(50),
        key,
    };
    let weak = Arc::downgrade(torrent);
    let owner = weak.clone();
    let cancel = torrent.cancel.clone();
    let task = inflight.spawn(async move {
        let result = if event == Event::Stopped {
            tokio::time::timeout(STOPPED_TIMEOUT, client.announce(&params))
                .await
                .ok()
        } else {
            // A torrent going away does not wait for its other announces.
            tokio::select! {
                r = client.announce(&params) => Some(r),
                _ = cancel.cancelled() => None,
            }
        };
        Done {
            torrent: weak,
            client,
            event,
            result: result.map(|r| r.map(|(_, response)| response)),
        }
    });
    owners.insert(task.id(), owner);
}

/// Records a finished announce; returns the torrent if it has more to say now.
fn finished(shared: &Shared, done: Done) -> Option<Weak<TorrentHandle>> {
    let torrent = done.torrent.upgrade()?;
    let slot = torrent.tracker.as_ref()?;
    let now = Instant::now();
    let mut s = lock(slot);
    s.busy = false;
    s.client = done.client;
    let mut peers = Vec::new();
    if done.event == Event::Stopped {
        s.active = false;
        s.next = None;
    } else {
        s.active = true;
        let wait = match done.result {
            Some(Ok(response)) => {
                if let Some(w) = &response.warning {
                    tracing::warn!("{}: tracker warns: {}", escape(&torrent.name()), escape(w));
                }
                tracing::info!(
                    "{}: tracker gave {} peers",
                    escape(&torrent.name()),
                    response.peers.len()
                );
                peers = response.peers;
                s.retry = FIRST_RETRY;
                Duration::from_secs(u64::from(response.interval.clamp(10, 3600)))
            }
            other => {
                if let Some(Err(e)) = other {
                    let e = e.to_string();
                    tracing::warn!(
                        "{}: announce failed: {}",
                        escape(&torrent.name()),
                        escape(&e)
                    );
                }
                if done.event != Event::None {
                    s.unsent = done.event;
                }
                let wait = s.retry;
                s.retry = (s.retry * 2).min(MAX_RETRY);
                wait
            }
        };
        let at = now + wait;
        s.next = Some(at);
        lock(&shared.announces).push(Due {
            at,
            torrent: Arc::downgrade(&torrent),
        });
    }
    let more = !s.events.is_empty();
    drop(s);
    if !peers.is_empty() {
        let mut d = torrent.lock();
        d.engine.handle_peers(now, PeerSource::Tracker, &peers);
        torrent.dispatch(&mut d);
    }
    torrent.announce_idle.notify_waiters();
    more.then(|| Arc::downgrade(&torrent))
}
