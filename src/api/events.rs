//! `GET /api/v1/events`: server-sent events. Every second a `torrents` event carries the
//! list (as `GET /api/v1/torrents`); the session's events come as they happen: `added`,
//! `state`, `completed`, `metadata`, `removed`, each `{"id": RPC id, ...}`.
//!
//! Nothing is queued per client but the session's bounded event channel: events are made
//! only when the connection takes them. A client too slow to keep up with that channel is
//! dropped (a browser's `EventSource` connects again and gets the list at once).

use super::handlers::list;
use super::ApiBackend;
use crate::session::{SessionEvent, TorrentId};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// An event's name and its JSON.
pub(super) type Message = (&'static str, String);

/// How often the list is sent.
pub const EVERY: Duration = Duration::from_secs(1);

/// One client's stream state.
pub(super) struct Client<B> {
    backend: Arc<B>,
    events: broadcast::Receiver<SessionEvent>,
    tick: tokio::time::Interval,
    /// Session ids to RPC ids of the torrents seen so far (a removed torrent is gone from
    /// the daemon's table by the time its event arrives; it leaves this map then).
    ids: HashMap<TorrentId, u32>,
    /// `added` events to send before anything else (at most one per torrent).
    pending: VecDeque<Message>,
    done: bool,
}

impl<B: ApiBackend> Client<B> {
    /// Learns the daemon's torrents; those not seen before are announced as `added`.
    fn refresh(&mut self, announce: bool) {
        for (id, tid) in self.backend.id_pairs() {
            if self.ids.insert(tid, id).is_none() && announce {
                self.pending
                    .push_back(("added", json!({"id": id, "state": null}).to_string()));
            }
        }
    }

    /// The event for a session event, if the torrent is one of the daemon's.
    fn session_event(&mut self, event: SessionEvent) -> Option<Message> {
        let (tid, kind, extra) = match event {
            SessionEvent::State(t, state) => (t, "state", json!(state)),
            SessionEvent::Completed(t) => (t, "completed", json!(null)),
            SessionEvent::Metadata(t) => (t, "metadata", json!(null)),
            SessionEvent::Removed(t) => (t, "removed", json!(null)),
        };
        if !self.ids.contains_key(&tid) {
            self.refresh(true);
        }
        let id = if kind == "removed" {
            self.ids.remove(&tid)?
        } else {
            *self.ids.get(&tid)?
        };
        Some((kind, json!({"id": id, "state": extra}).to_string()))
    }

    /// The next event to send; `None`: the stream ends.
    pub(super) async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            tokio::select! {
                _ = self.tick.tick() => {
                    self.refresh(true);
                    let body = list(&*self.backend);
                    self.pending.push_back(("torrents", body.to_string()));
                }
                event = self.events.recv() => match event {
                    Ok(event) => {
                        if let Some(e) = self.session_event(event) {
                            self.pending.push_back(e);
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        self.done = true;
                        self.pending.push_back((
                            "dropped",
                            json!({"error": "this client fell behind the daemon's events: connect again"}).to_string(),
                        ));
                    }
                    Err(RecvError::Closed) => self.done = true,
                },
            }
        }
    }
}

/// A client's stream state, knowing the torrents there are now.
pub(super) fn client<B: ApiBackend>(backend: Arc<B>) -> Client<B> {
    let events = backend.session().subscribe();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut client = Client {
        backend,
        events,
        tick,
        ids: HashMap::new(),
        pending: VecDeque::new(),
        done: false,
    };
    client.refresh(false);
    client
}

/// The event stream of one client.
pub fn stream<B: ApiBackend>(
    backend: Arc<B>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let s = futures_util::stream::unfold(client(backend), |mut c| async move {
        let (kind, data) = c.next().await?;
        Some((Ok(Event::default().event(kind).data(data)), c))
    });
    Sse::new(s).keep_alive(KeepAlive::default())
}
