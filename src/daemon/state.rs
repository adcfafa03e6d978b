//! The daemon's saved state: a folder holding, per torrent, its .torrent (or, until the
//! metadata arrives, its magnet link) and a small JSON record (folder, paused, dates,
//! labels, byte counts, resume data), plus one record for the session's settings and
//! totals. Every file is written whole and atomically (temporary file, fsync, rename,
//! fsync of the folder), so a crash leaves the old version or the new one.
//! Reading never trusts a record: one that does not parse or does not fit its torrent is
//! set aside with a note. Resume data is in [`super::resume`].

pub use super::resume::{Resume, Stamp};
use crate::core::InfoHash;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The record format's version (a newer one is refused, not misread).
pub const VERSION: u32 = 1;
/// Largest record read (a torrent of millions of pieces has a bitfield of a few hundred
/// KiB in base64).
const MAX_RECORD: u64 = 16 << 20;

/// A state operation that failed, with the file it concerned.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("another battorrent daemon is using {} (stop it, or give this one another --state-dir)", path.display())]
    Locked { path: PathBuf },
    #[error("cannot save {what}: {error}")]
    Encode {
        what: &'static str,
        error: serde_json::Error,
    },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |error| StateError::Io {
        action,
        path: path.to_path_buf(),
        error,
    }
}

/// One torrent's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub version: u32,
    pub info_hash: String,
    pub name: String,
    /// The folder its files go under (UTF-8: the daemon refuses other folders).
    pub dir: String,
    pub paused: bool,
    /// Unix seconds.
    pub added: i64,
    pub done: Option<i64>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Its magnet link, while no .torrent is saved (metadata not fetched yet).
    pub magnet: Option<String>,
    /// Bytes received and sent over every run before the one that wrote this.
    pub downloaded: u64,
    pub uploaded: u64,
    pub resume: Option<Resume>,
    /// Its own settings: files wanted and their priorities, limits, sequential.
    #[serde(default)]
    pub options: crate::rpc::options::TorrentOptions,
    /// Its place in the download queue (older records have none: the order added).
    #[serde(default)]
    pub queue_position: Option<u64>,
}

/// The session's own record: settings changed over RPC, and totals over every run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRecord {
    pub version: u32,
    pub download_dir: Option<String>,
    pub start_added: Option<bool>,
    /// Speed limits and the download queue as last set over RPC.
    pub speed: Option<crate::rpc::backend::SpeedLimits>,
    pub queue: Option<crate::rpc::backend::QueueLimit>,
    pub uploaded: u64,
    pub downloaded: u64,
    pub files_added: u64,
    pub seconds_active: u64,
    pub session_count: u64,
}

/// A torrent read back from the state folder.
#[derive(Debug, Clone)]
pub struct Saved {
    pub record: Record,
    /// The .torrent's bytes, if saved.
    pub torrent: Option<Vec<u8>>,
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename over,
/// fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error("write", &tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(io_error("replace", path))?;
    if let Some(parent) = path.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_error("sync", parent))?;
    }
    Ok(())
}

/// Reads a file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes, over the limit of {max}"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The state folder, locked for this process while it is open.
pub struct StateDir {
    root: PathBuf,
    torrents: PathBuf,
    /// Holds the `flock` that keeps a second daemon out.
    _lock: File,
}

impl StateDir {
    /// Opens (creating) the state folder and takes its lock.
    pub fn open(root: &Path) -> Result<StateDir, StateError> {
        let torrents = root.join("torrents");
        std::fs::create_dir_all(&torrents).map_err(io_error("create", &torrents))?;
        let lock_path = root.join("lock");
        let lock = File::create(&lock_path).map_err(io_error("create", &lock_path))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(StateError::Locked {
                path: root.to_path_buf(),
            });
        }
        Ok(StateDir {
            root: root.to_path_buf(),
            torrents,
            _lock: lock,
        })
    }

    /// The state folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn record_path(&self, hash: &InfoHash) -> PathBuf {
        self.torrents.join(format!("{hash}.json"))
    }

    fn torrent_path(&self, hash: &InfoHash) -> PathBuf {
        self.torrents.join(format!("{hash}.torrent"))
    }

    pub fn write_record(&self, hash: &InfoHash, record: &Record) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(record).map_err(|error| StateError::Encode {
            what: "a torrent's record",
            error,
        })?;
        write_atomic(&self.record_path(hash), &bytes)
    }

    pub fn write_torrent(&self, hash: &InfoHash, bytes: &[u8]) -> Result<(), StateError> {
        write_atomic(&self.torrent_path(hash), bytes)
    }

    /// Forgets a torrent: its record first (without it the .torrent is ignored).
    pub fn remove(&self, hash: &InfoHash) -> Result<(), StateError> {
        for path in [self.record_path(hash), self.torrent_path(hash)] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_error("remove", &path)(e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn session_path(&self) -> PathBuf {
        self.root.join("session.json")
    }

    pub fn write_session(&self, record: &SessionRecord) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(record).map_err(|error| StateError::Encode {
            what: "the session's record",
            error,
        })?;
        write_atomic(&self.session_path(), &bytes)
    }

    /// The session's record; a missing one is the default, an unreadable one too, with a
    /// note.
    pub fn read_session(&self, notes: &mut Vec<String>) -> SessionRecord {
        let path = self.session_path();
        let bytes = match read_bounded(&path, MAX_RECORD) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return SessionRecord::default(),
            Err(e) => {
                notes.push(format!("ignoring {}: {e}", path.display()));
                return SessionRecord::default();
            }
        };
        match serde_json::from_slice::<SessionRecord>(&bytes) {
            Ok(r) if r.version <= VERSION => r,
            Ok(r) => {
                notes.push(format!(
                    "ignoring {}: written by a newer battorrent (format {})",
                    path.display(),
                    r.version
                ));
                SessionRecord::default()
            }
            Err(e) => {
                notes.push(format!("ignoring {}: {e}", path.display()));
                SessionRecord::default()
            }
        }
    }

    /// Every saved torrent, oldest first. Records that cannot be used are renamed
    /// `*.json.bad` (kept for a person to look at) and named in `notes`; leftover
    /// temporary files are removed.
    pub fn load(&self, notes: &mut Vec<String>) -> Result<Vec<Saved>, StateError> {
        let entries =
            std::fs::read_dir(&self.torrents).map_err(io_error("read", &self.torrents))?;
        let mut saved = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(hash) = name.strip_suffix(".json").and_then(InfoHash::from_hex) else {
                continue;
            };
            match self.load_one(&path, &hash) {
                Ok(s) => saved.push(s),
                Err(why) => {
                    let mut bad = path.as_os_str().to_owned();
                    bad.push(".bad");
                    let _ = std::fs::rename(&path, &bad);
                    notes.push(format!(
                        "ignoring the saved torrent {hash}: {why} (set aside as {})",
                        Path::new(&bad).display()
                    ));
                }
            }
        }
        saved.sort_by(|a, b| {
            (a.record.added, &a.record.info_hash).cmp(&(b.record.added, &b.record.info_hash))
        });
        Ok(saved)
    }

    fn load_one(&self, path: &Path, hash: &InfoHash) -> Result<Saved, String> {
        let bytes = read_bounded(path, MAX_RECORD).map_err(|e| e.to_string())?;
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if record.version > VERSION {
            return Err(format!(
                "written by a newer battorrent (format {})",
                record.version
            ));
        }
        if InfoHash::from_hex(&record.info_hash) != Some(*hash) {
            return Err("its info hash is not the one its file is named after".into());
        }
        let torrent_path = self.torrent_path(hash);
        let torrent = match read_bounded(&torrent_path, crate::metainfo::MAX_TORRENT_FILE_SIZE) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", torrent_path.display())),
        };
        if torrent.is_none() && record.magnet.is_none() {
            return Err("neither its .torrent nor its magnet link is saved".into());
        }
        Ok(Saved { record, torrent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bt-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn record(hash: &InfoHash) -> Record {
        Record {
            version: VERSION,
            info_hash: hash.to_hex(),
            name: "x".into(),
            dir: "/data".into(),
            paused: false,
            added: 10,
            done: None,
            labels: vec![],
            magnet: Some(format!("magnet:?xt=urn:btih:{hash}")),
            downloaded: 0,
            uploaded: 0,
            resume: None,
            options: Default::default(),
            queue_position: Some(3),
        }
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_set_aside_with_a_note() {
        let dir = scratch("load");
        let state = StateDir::open(&dir).unwrap();
        // A second daemon on the same folder is refused.
        assert!(matches!(
            StateDir::open(&dir),
            Err(StateError::Locked { .. })
        ));
        let (a, b) = (InfoHash([1; 20]), InfoHash([2; 20]));
        let mut older = record(&b);
        older.added = 5;
        state.write_record(&a, &record(&a)).unwrap();
        state.write_record(&b, &older).unwrap();
        let c = InfoHash([3; 20]);
        std::fs::write(state.record_path(&c), b"{\"version\": 1, \"junk").unwrap();
        let d = InfoHash([4; 20]);
        std::fs::write(
            state.record_path(&d),
            serde_json::to_vec(&record(&a)).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("torrents/x.json.tmp"), b"half").unwrap();
        let mut notes = Vec::new();
        let saved = state.load(&mut notes).unwrap();
        let hashes: Vec<&str> = saved.iter().map(|s| s.record.info_hash.as_str()).collect();
        assert_eq!(hashes, [b.to_hex(), a.to_hex()]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains(&c.to_hex())));
        assert!(notes.iter().any(|n| n.contains("named after")));
        assert!(dir.join(format!("torrents/{c}.json.bad")).exists());
        assert!(!dir.join("torrents/x.json.tmp").exists());
        state.remove(&a).unwrap();
        assert_eq!(state.load(&mut notes).unwrap().len(), 1);
        drop(state);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_session_record_defaults_when_missing_or_bad() {
        let dir = scratch("session");
        let state = StateDir::open(&dir).unwrap();
        let mut notes = Vec::new();
        assert_eq!(state.read_session(&mut notes), SessionRecord::default());
        let r = SessionRecord {
            version: VERSION,
            uploaded: 7,
            ..SessionRecord::default()
        };
        state.write_session(&r).unwrap();
        assert_eq!(state.read_session(&mut notes), r);
        std::fs::write(dir.join("session.json"), b"[").unwrap();
        assert_eq!(state.read_session(&mut notes), SessionRecord::default());
        assert_eq!(notes.len(), 1);
        drop(state);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
