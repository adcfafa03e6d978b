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
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// How often the list is sent.
pub const EVERY: Duration = Duration::from_secs(1);

struct Client<B> {
    backend: Arc<B>,
    events: broadcast::Receiver<SessionEvent>,
    tick: tokio::time::Interval,
    /// Session ids to RPC ids as of the last look (a removed torrent is gone from the
    /// daemon's table by the time its event arrives).
    ids: HashMap<TorrentId, u32>,
    done: bool,
}

impl<B: ApiBackend> Client<B> {
    fn refresh(&mut self) {
        self.ids = self
            .backend
            .id_pairs()
            .into_iter()
            .map(|(id, tid)| (tid, id))
            .collect();
    }

    /// The event for a session event, if the torrent is one of the daemon's.
    fn session_event(&mut self, event: SessionEvent) -> Option<Event> {
        let (tid, kind, extra) = match event {
            SessionEvent::State(t, state) => (t, "state", json!(state)),
            SessionEvent::Completed(t) => (t, "completed", json!(null)),
            SessionEvent::Metadata(t) => (t, "metadata", json!(null)),
            SessionEvent::Removed(t) => (t, "removed", json!(null)),
        };
        let known = self.ids.get(&tid).copied();
        let id = match known {
            Some(id) => id,
            None => {
                self.refresh();
                *self.ids.get(&tid)?
            }
        };
        let kind = if known.is_none() && kind == "state" {
            "added"
        } else {
            kind
        };
        Some(
            Event::default()
                .event(kind)
                .data(json!({"id": id, "state": extra}).to_string()),
        )
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.done {
                return None;
            }
            tokio::select! {
                _ = self.tick.tick() => {
                    self.refresh();
                    let body = list(&*self.backend);
                    return Some(Event::default().event("torrents").data(body.to_string()));
                }
                event = self.events.recv() => match event {
                    Ok(event) => {
                        if let Some(e) = self.session_event(event) {
                            return Some(e);
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        self.done = true;
                        return Some(Event::default().event("dropped").data(
                            json!({"error": "this client fell behind the daemon's events: connect again"}).to_string(),
                        ));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// The event stream of one client.
pub fn stream<B: ApiBackend>(
    backend: Arc<B>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = backend.session().subscribe();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let client = Client {
        backend,
        events,
        tick,
        ids: HashMap::new(),
        done: false,
    };
    let s = futures_util::stream::unfold(client, |mut c| async move {
        let e = c.next().await?;
        Some((Ok(e), c))
    });
    Sse::new(s).keep_alive(KeepAlive::default())
}
