//! Removing a torrent together with its data.

use super::{Session, SessionError, TorrentId};
use crate::storage::{delete_files, Deleted};

impl Session {
    /// Removes a torrent as [`Session::remove`] does, then deletes its files and the
    /// folders they leave empty ([`crate::storage::delete_files`]: nothing outside its
    /// download folder, nothing through a symlinked folder). A magnet torrent still
    /// fetching its metadata has no files yet: nothing is deleted.
    pub async fn remove_and_delete(&self, id: TorrentId) -> Result<Deleted, SessionError> {
        let place = self.torrent(id)?.files.get().map(|f| {
            let storage = &f.storage;
            (storage.layout().clone(), storage.root().to_path_buf())
        });
        // Every handle the torrent had is closed once this returns.
        self.remove(id).await?;
        let Some((layout, root)) = place else {
            return Ok(Deleted::default());
        };
        let deleted = tokio::task::spawn_blocking(move || delete_files(&layout, &root))
            .await
            .unwrap_or_default();
        Ok(deleted)
    }
}
