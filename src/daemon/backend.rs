//! The daemon as the RPC's [`Backend`].

use super::{lock, Daemon};
use crate::core::InfoHash;
use crate::metainfo::Magnet;
use crate::rpc::backend::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

impl Daemon {
    /// Bytes moved and torrents added during this run, all torrents together.
    pub(super) fn current_counters(&self) -> Counters {
        let totals = self.session.totals();
        let table = lock(&self.table);
        Counters {
            uploaded: totals.uploaded + table.removed_up,
            downloaded: totals.downloaded + table.removed_down,
            files_added: table.added,
            seconds_active: self.started.elapsed().as_secs(),
            session_count: 1,
        }
    }
}

/// Free and total bytes of the filesystem holding `path`.
fn statvfs(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a zeroed statvfs is a valid out-parameter; `c` is a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let unit = st.f_frsize as u64;
    Some((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}

impl Backend for Arc<Daemon> {
    fn torrents(&self, detail: Detail) -> Vec<TorrentView> {
        // In session id order: found by binary search, each taken once (moved out field
        // by field: the list is megabytes at 10,000 torrents, and copies of it cost).
        let mut summaries = self.session.snapshot();
        let mut taken = vec![false; summaries.len()];
        let table = lock(&self.table);
        let mut views = Vec::with_capacity(table.entries.len());
        for (id, e) in &table.entries {
            let found = summaries.binary_search_by_key(&e.session, |s| s.id);
            // A torrent leaving for a check shows again once it is back.
            let Some(i) = found.ok().filter(|&i| !taken[i]) else {
                continue;
            };
            taken[i] = true;
            let s = &mut summaries[i];
            let meta = s.meta.take();
            // Made from the metainfo only when asked for (a magnet link costs a string).
            let (magnet, trackers) = match (&meta, &e.magnet) {
                (None, Some(link)) => {
                    let trackers = link
                        .parse::<Magnet>()
                        .map(|m| m.trackers.into_iter().map(|t| vec![t]).collect())
                        .unwrap_or_default();
                    (Some(link.clone()), trackers)
                }
                _ => (None, Vec::new()),
            };
            let have = match detail {
                Detail::Pieces => self.session.have(e.session),
                Detail::Brief => None,
            };
            views.push(TorrentView {
                id: *id,
                info_hash: e.info_hash,
                pending_name: std::mem::take(&mut s.pending_name),
                state: s.state,
                error: s.error.take(),
                dir: e.dir.clone(),
                added: e.added,
                done: e.done,
                started: e.started,
                changed: e.changed,
                downloaded_ever: e.earlier_down + s.stats.downloaded,
                uploaded_ever: e.earlier_up + s.stats.uploaded,
                stats: std::mem::take(&mut s.stats),
                meta,
                magnet,
                trackers,
                have,
                labels: e.labels.clone(),
                max_peers: self.config.max_peers,
                options: e.options.clone(),
                queued: e.queued,
                queue_position: e.queue_position,
            });
        }
        views
    }

    fn ids(&self) -> Vec<(u32, InfoHash)> {
        lock(&self.table)
            .entries
            .iter()
            .map(|(id, e)| (*id, e.info_hash))
            .collect()
    }

    fn removed_recently(&self) -> Vec<u32> {
        lock(&self.table).removed_recently(Instant::now())
    }

    async fn add(&self, new: NewTorrent) -> Result<Added, BackendError> {
        let added = Daemon::add(self, new).await;
        self.run_queue();
        added
    }

    fn start(&self, ids: &[u32]) -> Result<(), BackendError> {
        self.set_running(ids, true)?;
        self.run_queue();
        Ok(())
    }

    fn stop(&self, ids: &[u32]) -> Result<(), BackendError> {
        self.set_running(ids, false)?;
        self.run_queue();
        Ok(())
    }

    async fn remove(&self, ids: &[u32], delete_data: bool) -> Result<(), BackendError> {
        Daemon::remove(self, ids, delete_data).await
    }

    async fn verify(&self, ids: &[u32]) -> Result<(), BackendError> {
        Daemon::verify(self, ids).await
    }

    async fn set_location(
        &self,
        ids: &[u32],
        location: std::path::PathBuf,
        move_data: bool,
    ) -> Result<(), BackendError> {
        Daemon::set_location(self, ids, location, move_data).await
    }

    fn set_labels(&self, ids: &[u32], labels: &[String]) -> Result<(), BackendError> {
        Daemon::set_labels(self, ids, labels);
        Ok(())
    }

    fn set_options(&self, ids: &[u32], change: &OptionsChange) -> Result<(), BackendError> {
        Daemon::set_options(self, ids, change);
        Ok(())
    }

    fn settings(&self) -> Settings {
        let live = lock(&self.live).clone();
        let download_dir = live.download_dir;
        Settings {
            free_space: statvfs(&download_dir).map(|(free, _)| free),
            download_dir,
            config_dir: self.state.root().to_path_buf(),
            peer_port: self.session.local_addr().port(),
            dht: self.config.dht.is_some(),
            speed: live.speed,
            queue: live.queue,
            max_peers_per_torrent: self.config.max_peers,
            start_added: live.start_added,
        }
    }

    fn change_settings(&self, change: SettingsChange) -> Result<(), BackendError> {
        Daemon::change_settings(self, change)
    }

    fn totals(&self) -> Totals {
        let current = self.current_counters();
        let mut cumulative = self.session_record();
        cumulative.seconds_active = self.before.seconds_active + current.seconds_active;
        Totals {
            current,
            cumulative: Counters {
                uploaded: cumulative.uploaded,
                downloaded: cumulative.downloaded,
                files_added: cumulative.files_added,
                seconds_active: cumulative.seconds_active,
                session_count: cumulative.session_count,
            },
        }
    }

    fn free_space(&self, path: &Path) -> Option<(u64, u64)> {
        statvfs(path)
    }

    fn close(&self) {
        self.shutdown.cancel();
    }

    fn queue_move(&self, ids: &[u32], to: QueueMove) -> Result<(), BackendError> {
        lock(&self.table).queue_move(ids, to);
        // The new order decides who downloads now.
        self.run_queue();
        Ok(())
    }
}
