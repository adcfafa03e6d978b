//! Saving the daemon's records: every few seconds the torrents whose record would change
//! are written, with resume data taken from the session's verified pieces.

use super::state::{self, Record, Resume, SessionRecord};
use super::table::{Entry, Mark};
use super::{lock, Daemon};
use crate::core::InfoHash;
use crate::metainfo::Metainfo;
use crate::rpc::http::unix_now;
use crate::session::TorrentState;
use crate::wire::Bitfield;
use std::sync::Arc;

/// One record to write.
struct Job {
    id: u32,
    hash: InfoHash,
    record: Record,
    mark: Mark,
    meta: Option<Arc<Metainfo>>,
    dir: Arc<std::path::Path>,
    /// Verified pieces, taken before the files' stamps; `None` while checking.
    have: Option<Bitfield>,
    /// The .torrent to save (a magnet link's metadata just arrived).
    torrent: Option<Vec<u8>>,
    old_stamps: Option<Vec<Option<state::Stamp>>>,
}

impl Daemon {
    pub(super) async fn save_loop(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.save_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = self.shutdown.cancelled() => return,
            }
            self.save().await;
            self.save_session_record(false);
        }
    }

    /// What a torrent's record would say now; `None` if the session no longer has it.
    pub(super) fn mark(&self, e: &Entry) -> Option<Mark> {
        let stats = self.session.stats(e.session)?;
        let state = self.session.state(e.session);
        Some(Mark {
            pieces_have: stats.pieces_have,
            checking: matches!(
                state,
                Some(TorrentState::Checking | TorrentState::FetchingMetadata)
            ),
            paused: e.paused,
            down: e.earlier_down + stats.downloaded,
            up: e.earlier_up + stats.uploaded,
            done: e.done,
            labels: e.labels.clone(),
            has_torrent: e.magnet.is_none(),
            options: e.options.clone(),
            queue_position: e.queue_position,
        })
    }

    /// A torrent's record (without resume data).
    pub(super) fn record_of(&self, e: &Entry, mark: &Mark, name: String) -> Record {
        Record {
            version: state::VERSION,
            info_hash: e.info_hash.to_hex(),
            name,
            dir: e.dir.to_string_lossy().into_owned(),
            paused: e.paused,
            added: e.added,
            done: e.done,
            labels: e.labels.clone(),
            magnet: e.magnet.clone(),
            downloaded: mark.down,
            uploaded: mark.up,
            resume: None,
            options: e.options.clone(),
            queue_position: (e.queue_position != u64::MAX).then_some(e.queue_position),
        }
    }

    /// Writes the records that changed since they were last written.
    pub(super) async fn save(self: &Arc<Self>) {
        let now = unix_now();
        let mut jobs = Vec::new();
        {
            let mut table = lock(&self.table);
            for (id, e) in table.entries.iter_mut() {
                if e.busy {
                    continue;
                }
                let complete = self.session.stats(e.session).is_some_and(|s| s.complete);
                if complete && e.done.is_none() {
                    e.done = Some(now);
                }
                let Some(mark) = self.mark(e) else { continue };
                if e.saved == Some(mark.digest()) {
                    continue;
                }
                let meta = self.session.metainfo(e.session);
                let torrent = match (&e.magnet, &meta) {
                    (Some(_), Some(m)) => Some(m.to_torrent_bytes()),
                    _ => None,
                };
                let name = meta.as_ref().map_or_else(
                    || self.session.name(e.session).unwrap_or_default(),
                    |m| m.info.name.clone(),
                );
                let mut mark = mark;
                mark.has_torrent |= torrent.is_some();
                let record = self.record_of(e, &mark, name);
                jobs.push(Job {
                    id: *id,
                    hash: e.info_hash,
                    record,
                    mark,
                    meta,
                    dir: e.dir.clone(),
                    have: None,
                    torrent,
                    old_stamps: e.stamps.clone(),
                });
            }
        }
        if jobs.is_empty() {
            return;
        }
        // The pieces first, the files' stamps after (in write_jobs): a piece written in
        // between changes a stamp, which only costs a check on the next start.
        for job in &mut jobs {
            if job.meta.is_some() && !job.mark.checking {
                let session_id = lock(&self.table).entries.get(&job.id).map(|e| e.session);
                job.have = session_id.and_then(|id| self.session.have(id));
            }
        }
        let me = self.clone();
        let written = tokio::task::spawn_blocking(move || me.write_jobs(jobs)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!("cannot save the daemon's state: {e}");
        }
    }

    fn write_jobs(&self, jobs: Vec<Job>) -> Result<(), state::StateError> {
        let _writing = lock(&self.save_lock);
        for mut job in jobs {
            // Removed meanwhile: its record is gone and stays gone.
            if lock(&self.table).by_hash(&job.hash) != Some(job.id) {
                continue;
            }
            let mut stamps = None;
            if let (Some(meta), Some(have)) = (&job.meta, &job.have) {
                let layout = meta.info.layout(&job.dir);
                let now = super::resume::stamps(&layout);
                super::resume::sync_changed(&layout, job.old_stamps.as_deref(), &now);
                job.record.resume = Some(Resume::new(have, now.clone()));
                stamps = Some(now);
            }
            if let Some(bytes) = &job.torrent {
                self.state.write_torrent(&job.hash, bytes)?;
                job.record.magnet = None;
            }
            self.state.write_record(&job.hash, &job.record)?;
            let mut table = lock(&self.table);
            if let Some(e) = table.entries.get_mut(&job.id) {
                if job.torrent.is_some() {
                    e.magnet = None;
                }
                if stamps.is_some() {
                    e.stamps = stamps;
                }
                e.saved = Some(job.mark.digest());
            }
        }
        Ok(())
    }

    /// This run's totals added to earlier runs'.
    pub(super) fn session_record(&self) -> SessionRecord {
        let current = self.current_counters();
        let live = lock(&self.live).clone();
        let b = &self.before;
        SessionRecord {
            version: state::VERSION,
            download_dir: live.download_dir.to_str().map(str::to_owned),
            start_added: Some(live.start_added),
            speed: Some(live.speed),
            queue: Some(live.queue),
            uploaded: b.uploaded + current.uploaded,
            downloaded: b.downloaded + current.downloaded,
            files_added: b.files_added + current.files_added,
            seconds_active: b.seconds_active + current.seconds_active,
            session_count: b.session_count,
        }
    }

    /// Writes the session's record if its byte counts changed (or `force`).
    pub(super) fn save_session_record(&self, force: bool) {
        let record = self.session_record();
        let key = (record.uploaded, record.downloaded, record.files_added);
        let mut saved = lock(&self.session_saved);
        if !force && *saved == Some(key) {
            return;
        }
        match self.state.write_session(&record) {
            Ok(()) => *saved = Some(key),
            Err(e) => tracing::warn!("cannot save the daemon's state: {e}"),
        }
    }
}
