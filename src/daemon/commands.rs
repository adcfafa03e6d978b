//! What RPC clients ask of the daemon: add, start, stop, remove, check again, labels,
//! settings.

use super::state::{self, Record};
use super::table::Entry;
use super::{checked_folder, lock, Daemon};
use crate::metainfo::{Magnet, Metainfo, MAX_TORRENT_FILE_SIZE};
use crate::rpc::backend::{Added, BackendError, NewTorrent, SettingsChange, Source};
use crate::rpc::http::unix_now;
use crate::session::{AddMagnet, AddTorrent, SessionError, TorrentId};
use std::sync::Arc;
use std::time::Instant;

impl From<super::DaemonError> for BackendError {
    fn from(e: super::DaemonError) -> BackendError {
        BackendError::Refused(e.to_string())
    }
}

impl From<state::StateError> for BackendError {
    fn from(e: state::StateError) -> BackendError {
        BackendError::State(e.to_string())
    }
}

/// A torrent being added, once its source is read.
enum Parsed {
    Torrent(Metainfo, Vec<u8>),
    Magnet(Magnet, String),
}

impl Daemon {
    pub(super) async fn add(self: &Arc<Self>, new: NewTorrent) -> Result<Added, BackendError> {
        let live = lock(&self.live).clone();
        let dir = new.dir.unwrap_or(live.download_dir);
        checked_folder(&dir)?;
        let paused = new.paused.unwrap_or(!live.start_added);
        let parsed = match new.source {
            Source::Torrent(bytes) => Parsed::Torrent(Metainfo::from_bytes(&bytes)?, bytes),
            Source::File(path) => {
                // Read once, bounded, and parse those bytes: what is saved is what was read.
                let read = tokio::task::spawn_blocking(move || {
                    let io = |error| crate::metainfo::MetainfoError::Io {
                        path: path.clone(),
                        error,
                    };
                    let file = std::fs::File::open(&path).map_err(io)?;
                    let size = file.metadata().map_err(io)?.len();
                    if size > MAX_TORRENT_FILE_SIZE {
                        return Err(crate::metainfo::MetainfoError::TooLarge {
                            size,
                            max: MAX_TORRENT_FILE_SIZE,
                        });
                    }
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(
                        &mut std::io::Read::take(file, MAX_TORRENT_FILE_SIZE),
                        &mut bytes,
                    )
                    .map_err(io)?;
                    Ok((Metainfo::from_bytes(&bytes)?, bytes))
                })
                .await
                .map_err(|e| BackendError::Refused(e.to_string()))??;
                Parsed::Torrent(read.0, read.1)
            }
            Source::Magnet(link) => Parsed::Magnet(link.parse::<Magnet>()?, link),
        };
        let (hash, name) = match &parsed {
            Parsed::Torrent(meta, _) => (meta.info_hash, meta.info.name.clone()),
            Parsed::Magnet(m, _) => (
                m.info_hash,
                m.display_name
                    .clone()
                    .unwrap_or_else(|| m.info_hash.to_hex()),
            ),
        };
        if let Some(id) = lock(&self.table).by_hash(&hash) {
            return Ok(Added::Duplicate {
                id,
                name,
                info_hash: hash,
            });
        }
        let now = unix_now();
        let mut entry = Entry {
            session: TorrentId(u64::MAX),
            info_hash: hash,
            dir: dir.as_path().into(),
            paused,
            added: now,
            done: None,
            started: now,
            changed: now,
            labels: new.labels,
            magnet: None,
            earlier_down: 0,
            earlier_up: 0,
            saved: None,
            stamps: None,
            busy: false,
            options: Default::default(),
            queued: false,
            queue_position: u64::MAX,
        };
        // The .torrent first: a record is never saved without its source.
        let added = match parsed {
            Parsed::Torrent(meta, bytes) => {
                let me = self.clone();
                tokio::task::spawn_blocking(move || me.state.write_torrent(&hash, &bytes))
                    .await
                    .map_err(|e| BackendError::State(e.to_string()))??;
                self.session.add(AddTorrent {
                    meta,
                    dir,
                    have: None,
                    peers: Vec::new(),
                    paused,
                })
            }
            Parsed::Magnet(magnet, link) => {
                entry.magnet = Some(link);
                self.session.add_magnet(AddMagnet {
                    magnet,
                    dir,
                    peers: Vec::new(),
                    paused,
                })
            }
        };
        let session_id = match added {
            Ok(id) => id,
            Err(SessionError::Duplicate(_)) => {
                // Added by another request a moment ago.
                let id = lock(&self.table).by_hash(&hash).unwrap_or(0);
                return Ok(Added::Duplicate {
                    id,
                    name,
                    info_hash: hash,
                });
            }
            Err(e) => {
                if lock(&self.table).by_hash(&hash).is_none() {
                    let _ = self.state.remove(&hash);
                }
                return Err(e.into());
            }
        };
        entry.session = session_id;
        let record = self.first_record(&entry, &name);
        let id = {
            let mut table = lock(&self.table);
            table.added += 1;
            table.insert(entry)
        };
        // Saved at once (a crash in the next seconds must not lose it).
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let _writing = lock(&me.save_lock);
            if lock(&me.table).by_hash(&hash) == Some(id) {
                me.state.write_record(&hash, &record)
            } else {
                Ok(())
            }
        })
        .await
        .map_err(|e| BackendError::State(e.to_string()))??;
        Ok(Added::New {
            id,
            name,
            info_hash: hash,
        })
    }

    /// A new torrent's record: no resume data (its data is being checked).
    fn first_record(&self, e: &Entry, name: &str) -> Record {
        let mark = super::table::Mark {
            pieces_have: 0,
            checking: true,
            paused: e.paused,
            down: 0,
            up: 0,
            done: None,
            labels: e.labels.clone(),
            has_torrent: e.magnet.is_none(),
            options: e.options.clone(),
            queue_position: e.queue_position,
        };
        self.record_of(e, &mark, name.to_string())
    }

    /// Starts (`run`) or pauses torrents.
    pub(super) fn set_running(&self, ids: &[u32], run: bool) -> Result<(), BackendError> {
        let now = unix_now();
        let mut table = lock(&self.table);
        for id in ids {
            let Some(e) = table.entries.get_mut(id) else {
                continue;
            };
            let done = if run && e.queued {
                // Waits for its place in the queue.
                Ok(())
            } else if run {
                self.session.resume(e.session)
            } else {
                e.queued = false;
                self.session.pause(e.session)
            };
            match done {
                Ok(()) | Err(SessionError::Unknown(_)) => {}
                Err(e) => return Err(e.into()),
            }
            e.paused = !run;
            e.changed = now;
        }
        Ok(())
    }

    pub(super) async fn remove(
        self: &Arc<Self>,
        ids: &[u32],
        delete_data: bool,
    ) -> Result<(), BackendError> {
        for id in ids {
            let entry = {
                let mut table = lock(&self.table);
                match table.entries.get(id) {
                    None => continue,
                    Some(e) if e.busy => {
                        return Err(BackendError::Refused(format!(
                            "torrent {id} is being checked again; remove it in a moment"
                        )))
                    }
                    Some(e) => {
                        let stats = self.session.stats(e.session).unwrap_or_default();
                        table.take(*id, Instant::now(), stats.downloaded, stats.uploaded)
                    }
                }
            };
            let Some(entry) = entry else { continue };
            let me = self.clone();
            let hash = entry.info_hash;
            tokio::task::spawn_blocking(move || {
                let _writing = lock(&me.save_lock);
                me.state.remove(&hash)
            })
            .await
            .map_err(|e| BackendError::State(e.to_string()))??;
            let removed = if delete_data {
                self.session
                    .remove_and_delete(entry.session)
                    .await
                    .map(|deleted| {
                        for (path, why) in deleted.kept {
                            tracing::warn!("kept {}: {why}", path.display());
                        }
                    })
            } else {
                self.session.remove(entry.session).await
            };
            match removed {
                Ok(()) | Err(SessionError::Unknown(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub(super) fn set_labels(&self, ids: &[u32], labels: &[String]) {
        let mut table = lock(&self.table);
        for id in ids {
            if let Some(e) = table.entries.get_mut(id) {
                e.labels = labels.to_vec();
            }
        }
    }

    pub(super) fn change_settings(&self, change: SettingsChange) -> Result<(), BackendError> {
        if let Some(dir) = &change.download_dir {
            checked_folder(dir)?;
        }
        {
            let mut live = lock(&self.live);
            if let Some(dir) = change.download_dir {
                live.download_dir = dir;
            }
            if let Some(start) = change.start_added {
                live.start_added = start;
            }
            let speed = &mut live.speed;
            speed.down = change.speed_down.unwrap_or(speed.down);
            speed.up = change.speed_up.unwrap_or(speed.up);
            speed.down_enabled = change.speed_down_enabled.unwrap_or(speed.down_enabled);
            speed.up_enabled = change.speed_up_enabled.unwrap_or(speed.up_enabled);
            let queue = &mut live.queue;
            queue.size = change.queue_size.unwrap_or(queue.size);
            queue.enabled = change.queue_enabled.unwrap_or(queue.enabled);
            self.session
                .set_limits(super::options::session_limits(&live.speed));
        }
        self.run_queue();
        self.save_session_record(true);
        Ok(())
    }
}
