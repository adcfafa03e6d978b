//! Torrents' own settings (files wanted and their priorities, speed limits, sequential)
//! and the session's speed limits, handed to the session when set and on every start.

use super::{lock, Daemon};
use crate::rpc::backend::{OptionsChange, SpeedLimits, TorrentOptions};
use crate::rpc::options::kb_limit;
use crate::session::{Limits, TorrentId};

/// The session's limits in bytes per second.
pub fn session_limits(speed: &SpeedLimits) -> Limits {
    Limits {
        download: kb_limit(speed.down_enabled, speed.down),
        upload: kb_limit(speed.up_enabled, speed.up),
    }
}

impl Daemon {
    /// Changes torrents' settings and tells the session.
    pub(super) fn set_options(&self, ids: &[u32], change: &OptionsChange) {
        let mut table = lock(&self.table);
        for id in ids {
            let Some(e) = table.entries.get_mut(id) else {
                continue;
            };
            let files = self
                .session
                .metainfo(e.session)
                .map_or(0, |m| m.info.files.iter().filter(|f| !f.padding).count());
            e.options.apply(change, files);
            let options = e.options.clone();
            let session = e.session;
            self.apply_options(
                session,
                &options,
                change.sequential.is_some(),
                change.touches_files(),
            );
        }
    }

    /// Hands a torrent's settings to the session: its limits always, whether it goes in
    /// order when `sequential`, its files' priorities when `files`.
    pub(super) fn apply_options(
        &self,
        id: TorrentId,
        o: &TorrentOptions,
        sequential: bool,
        files: bool,
    ) {
        let _ = self.session.set_torrent_limits(id, o.limits());
        if sequential {
            let _ = self.session.set_sequential(id, o.sequential);
        }
        if !files {
            return;
        }
        let Some(meta) = self.session.metainfo(id) else {
            // A magnet link's files are chosen once its metadata is here (on a restart).
            return;
        };
        let files = &meta.info.files;
        let listed = files.iter().filter(|f| !f.padding).count();
        let mut chosen = o.session_priorities(listed).into_iter();
        let all: Vec<u8> = files
            .iter()
            .map(|f| {
                if f.padding {
                    crate::picker::SKIP
                } else {
                    chosen.next().unwrap_or(crate::picker::NORMAL)
                }
            })
            .collect();
        if let Err(e) = self.session.set_file_priorities(id, &all) {
            tracing::warn!("cannot choose the files of a torrent: {e}");
        }
    }
}
