//! The daemon as the JSON API's [`ApiBackend`].

use super::{lock, Daemon};
use crate::api::ApiBackend;
use crate::session::{Session, TorrentId};
use std::sync::Arc;

impl ApiBackend for Arc<Daemon> {
    fn session(&self) -> &Session {
        &self.session
    }

    fn session_id(&self, id: u32) -> Option<TorrentId> {
        lock(&self.table).entries.get(&id).map(|e| e.session)
    }

    fn id_pairs(&self) -> Vec<(u32, TorrentId)> {
        lock(&self.table)
            .entries
            .iter()
            .map(|(id, e)| (*id, e.session))
            .collect()
    }
}
