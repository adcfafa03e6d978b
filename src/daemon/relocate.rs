//! A torrent leaving the session and coming back under the same RPC id: to be checked
//! again (`torrent-verify`), or in another folder (`torrent-set-location`, with its files
//! moved there or looked for there).

use super::{checked_folder, lock, Daemon};
use crate::rpc::backend::BackendError;
use crate::rpc::http::unix_now;
use crate::session::AddTorrent;
use crate::storage::Layout;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a torrent comes back, and with what.
enum Return {
    /// Same folder, every piece checked again.
    Check,
    /// Another folder, checked there (its data is looked for there).
    Find(PathBuf),
    /// Another folder, its files moved there first; its verified pieces kept.
    Move(PathBuf),
}

impl Daemon {
    /// Checks torrents' data again: each leaves the session and comes back checking, under
    /// the same RPC id, paused or not as it was.
    pub(super) async fn verify(self: &Arc<Self>, ids: &[u32]) -> Result<(), BackendError> {
        for id in ids {
            self.come_back(*id, Return::Check).await?;
        }
        Ok(())
    }

    /// Points torrents at another folder (`location`, absolute): their files are moved
    /// there when `move_data` (what is verified stays verified), otherwise their data is
    /// looked for there (checked). A move that fails is undone and the torrent stays where
    /// it was.
    pub(super) async fn set_location(
        self: &Arc<Self>,
        ids: &[u32],
        location: PathBuf,
        move_data: bool,
    ) -> Result<(), BackendError> {
        checked_folder(&location).map_err(|e| BackendError::Refused(e.to_string()))?;
        for id in ids {
            let to = location.clone();
            let how = if move_data {
                Return::Move(to)
            } else {
                Return::Find(to)
            };
            self.come_back(*id, how).await?;
        }
        Ok(())
    }

    async fn come_back(self: &Arc<Self>, id: u32, how: Return) -> Result<(), BackendError> {
        let (old, dir, paused) = {
            let mut table = lock(&self.table);
            let Some(e) = table.entries.get_mut(&id) else {
                return Ok(());
            };
            if e.busy {
                return Ok(());
            }
            e.busy = true;
            (e.session, e.dir.clone(), e.paused)
        };
        let release = |me: &Self| {
            if let Some(e) = lock(&me.table).entries.get_mut(&id) {
                e.busy = false;
            }
        };
        let Some(meta) = self.session.metainfo(old) else {
            // A magnet link without its metadata has no data to check or move.
            release(self);
            return match how {
                Return::Check => Ok(()),
                _ => Err(BackendError::Refused(format!(
                    "torrent {id} has no metadata yet: its files are not known"
                ))),
            };
        };
        // A move's two layouts: checked for clashes now, used for the move below.
        let layouts = match &how {
            Return::Move(to) => {
                let (from, into) = (meta.info.layout(&dir), meta.info.layout(to));
                if let Err(e) = clashes(&from, &into) {
                    release(self);
                    return Err(BackendError::Refused(e));
                }
                Some((from, into))
            }
            _ => None,
        };
        let stats = self.session.stats(old).unwrap_or_default();
        // Taken before the files move: only pieces verified in these files.
        let had = self.session.have(old);
        let _ = self.session.remove(old).await;
        let (to, have, failure) = match (how, layouts) {
            (Return::Check, _) => (dir.to_path_buf(), None, None),
            (Return::Find(to), _) => (to, None, None),
            // (Not reached: a move always has its layouts.) Checked there, as a find.
            (Return::Move(to), None) => (to, None, None),
            (Return::Move(to), Some((from, into))) => {
                let moved = tokio::task::spawn_blocking(move || move_files(&from, &into)).await;
                match moved {
                    Ok(Ok(())) => (to, had, None),
                    Ok(Err(e)) => (dir.to_path_buf(), had, Some(e)),
                    Err(e) => (dir.to_path_buf(), None, Some(e.to_string())),
                }
            }
        };
        let added = self.session.add(AddTorrent {
            meta: (*meta).clone(),
            dir: to.clone(),
            have,
            peers: Vec::new(),
            paused,
        });
        let mut table = lock(&self.table);
        table.set_dir(id, &to);
        let Some(e) = table.entries.get_mut(&id) else {
            return Ok(());
        };
        e.busy = false;
        e.earlier_down += stats.downloaded;
        e.earlier_up += stats.uploaded;
        e.changed = unix_now();
        e.saved = None;
        e.stamps = None;
        match added {
            Ok(new) => {
                e.session = new;
                self.apply_options(new, &e.options, true, !e.options.default_files());
            }
            Err(err) => {
                return Err(BackendError::Refused(format!(
                    "torrent {id} could not be added back: {err}"
                )))
            }
        }
        match failure {
            None => Ok(()),
            Some(why) => Err(BackendError::Refused(format!(
                "torrent {id} stays in {}: {why}",
                dir.display()
            ))),
        }
    }
}

/// Refuses a move onto files that exist already (they would be overwritten).
fn clashes(from: &Layout, into: &Layout) -> Result<(), String> {
    for (a, b) in from.files.iter().zip(&into.files) {
        if a.path != b.path && a.path.exists() && b.path.exists() {
            return Err(format!(
                "{} exists already; move it away first",
                crate::text::escape(&b.path.display().to_string())
            ));
        }
    }
    Ok(())
}

/// Moves each file of `from` that exists to its place in `into` (a rename, or a copy and
/// a removal across filesystems). On a failure the files moved so far are moved back.
fn move_files(from: &Layout, into: &Layout) -> Result<(), String> {
    let mut moved: Vec<(&Path, &Path)> = Vec::new();
    for (a, b) in from.files.iter().zip(&into.files) {
        if a.padding || a.path == b.path || !a.path.exists() {
            continue;
        }
        if let Err(e) = move_one(&a.path, &b.path) {
            for (a, b) in moved.into_iter().rev() {
                let _ = move_one(b, a);
            }
            return Err(format!(
                "cannot move {}: {e}",
                crate::text::escape(&a.path.display().to_string())
            ));
        }
        moved.push((&a.path, &b.path));
    }
    Ok(())
}

fn move_one(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            std::fs::copy(from, to)?;
            std::fs::remove_file(from)
        }
        other => other,
    }
}
