//! A magnet torrent in the session: when its engine reports the metadata
//! ([`crate::torrent::Action::Metadata`]), the torrent gets its name, its files and its
//! metainfo, then checks its folder and goes live like any torrent, under the same id.

use super::driver::TorrentHandle;
use super::{check_then_start, open_files, SessionEvent};
use crate::metainfo::Metainfo;
use crate::storage::Access;
use crate::torrent::TorrentError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What a magnet torrent will do once its metadata arrives.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The folder its data goes under.
    pub dir: PathBuf,
    /// The link's trackers, written into its metainfo.
    pub trackers: Vec<Vec<String>>,
}

/// Opens the torrent's files (creating its folder), publishes its metainfo, then checks
/// the folder and lets the engine go live.
pub async fn metadata_arrived(torrent: Arc<TorrentHandle>, mut meta: Metainfo) {
    let Some(plan) = &torrent.magnet else {
        return;
    };
    meta.trackers = plan.trackers.clone();
    let meta = Arc::new(meta);
    let dir = plan.dir.clone();
    let opened = {
        let (shared, meta, dir) = (torrent.shared.clone(), meta.clone(), dir.clone());
        tokio::task::spawn_blocking(move || open_files(&shared, &meta, &dir, Access::ReadWrite))
            .await
    };
    let files = match opened {
        Ok(Ok(files)) => files,
        Ok(Err(e)) => return fail(&torrent, e.to_string()),
        Err(e) => return fail(&torrent, e.to_string()),
    };
    let _ = torrent.files.set(files);
    let _ = torrent.meta.set(meta.clone());
    // The metainfo names it now.
    *super::driver::lock(&torrent.name) = String::new();
    let _ = torrent
        .shared
        .events
        .send(SessionEvent::Metadata(torrent.id));
    check_then_start(torrent, meta, dir, None, None).await;
}

fn fail(torrent: &Arc<TorrentHandle>, message: String) {
    let mut d = torrent.lock();
    d.engine
        .handle_check_failed(Instant::now(), TorrentError::Check { message });
    torrent.dispatch(&mut d);
}
