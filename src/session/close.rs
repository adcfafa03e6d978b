//! Stopping a session that others still hold a reference to (a daemon's RPC handlers).

use super::{driver::lock, futures_join_all, stop_torrent, Session};
use std::time::Duration;

impl Session {
    /// Stops everything as [`Session::shutdown`] does (each torrent says `stopped` to its
    /// trackers, a few seconds at most; every connection closes; the hashing threads
    /// finish their queue), through a shared reference. The session holds no torrent
    /// afterwards and every call on it finds none; drop it to release the rest.
    pub async fn close(&self) {
        self.stop_all_torrents().await;
        self.inner.shutdown.cancel();
        let shared = self.inner.shared.clone();
        let stop = tokio::task::spawn_blocking(move || shared.pool.stop());
        let _ = tokio::time::timeout(Duration::from_secs(10), stop).await;
    }

    /// Takes every torrent out of the session and stops them all at once (each says
    /// `stopped` to its trackers; its tasks end).
    pub(super) async fn stop_all_torrents(&self) {
        let all: Vec<_> = {
            let mut reg = lock(&self.inner.registry);
            let ids: Vec<_> = reg.by_id.keys().copied().collect();
            ids.into_iter()
                .filter_map(|id| {
                    let t = reg.by_id.remove(&id)?;
                    reg.by_hash.remove(&t.info_hash);
                    Some((t, reg.tasks.remove(&id).unwrap_or_default()))
                })
                .collect()
        };
        futures_join_all(
            all.into_iter()
                .map(|(t, tasks)| async move { stop_torrent(&t, tasks).await }),
        )
        .await;
    }
}
