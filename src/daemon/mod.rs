//! The always-on client: a [`Session`] whose torrents, folders, settings and resume data
//! survive restarts, driven over RPC ([`crate::rpc`]).
//!
//! The daemon owns the state folder ([`state`]) and the table of its torrents (RPC ids,
//! folders, dates, labels); the session owns everything else about a torrent. It saves
//! each torrent's record every few seconds while something about it changed, and at
//! shutdown, taking resume data only from the session's verified pieces ([`Session::have`])
//! and only while no check is running. It never marks a piece as had: a restart hands the
//! saved pieces back only when every file is as it was, and otherwise has the session check
//! the data.

mod api_backend;
mod backend;
mod commands;
pub mod config;
mod options;
mod queue;
mod relocate;
pub mod resume;
mod save;
pub mod state;
mod table;

use crate::core::InfoHash;
use crate::metainfo::{Magnet, Metainfo};
use crate::rpc::http::unix_now;
use crate::session::{AddMagnet, AddTorrent, Session, SessionConfig, SessionError};
use state::{SessionRecord, StateDir, StateError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use table::{Entry, Table};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// How often changed records are saved.
pub const SAVE_EVERY: Duration = Duration::from_secs(3);

/// How a daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Where its state lives (created if missing; one daemon at a time).
    pub state_dir: PathBuf,
    /// Where new torrents go unless an RPC client says otherwise; `None`: the folder last
    /// set over RPC, else `default_download_dir`.
    pub download_dir: Option<PathBuf>,
    pub default_download_dir: PathBuf,
    pub session: SessionConfig,
    /// How often changed records are saved ([`SAVE_EVERY`]).
    pub save_every: Duration,
    /// Most torrents downloading at once (wins over the queue set over RPC).
    pub max_active: Option<usize>,
}

/// Why the daemon could not start.
#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("the folder {0} is not valid UTF-8 (RPC carries folders as text): choose another")]
    NotUtf8(PathBuf),
    #[error("the folder {0} is not an absolute path")]
    Relative(PathBuf),
}

/// What the daemon found in its state folder on start.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Torrents added back with their saved pieces (no hashing).
    pub resumed: usize,
    /// Torrents whose data is checked again (a file changed, or no resume data).
    pub checking: usize,
    /// Magnet links still fetching their metadata.
    pub magnets: usize,
    /// Records that could not be used, one sentence each.
    pub notes: Vec<String>,
}

/// Settings RPC clients may change.
#[derive(Debug, Clone)]
struct Live {
    download_dir: PathBuf,
    start_added: bool,
    speed: crate::rpc::backend::SpeedLimits,
    queue: crate::rpc::backend::QueueLimit,
}

/// A running daemon; see the module documentation.
pub struct Daemon {
    session: Session,
    state: StateDir,
    table: Mutex<Table>,
    live: Mutex<Live>,
    /// Held while records are written or deleted, so a removed torrent's record is never
    /// written again after it was deleted.
    save_lock: Mutex<()>,
    /// Totals of earlier runs (this run's count included).
    before: SessionRecord,
    /// What was last written of the session's record.
    session_saved: Mutex<Option<(u64, u64, u64)>>,
    config: SessionConfig,
    save_every: Duration,
    started: Instant,
    shutdown: CancellationToken,
}

/// Locks a mutex, ignoring poisoning (no code here panics while holding a lock on purpose).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A folder as the daemon keeps it: absolute and UTF-8.
fn checked_folder(dir: &Path) -> Result<&str, DaemonError> {
    if !dir.is_absolute() {
        return Err(DaemonError::Relative(dir.to_path_buf()));
    }
    dir.to_str()
        .ok_or_else(|| DaemonError::NotUtf8(dir.to_path_buf()))
}

impl Daemon {
    /// Opens the state folder (refused while another daemon holds it), starts the session
    /// and adds every saved torrent back: with its saved pieces when its files are
    /// unchanged, checked again otherwise. Saving starts at once. Must run inside a
    /// multi-threaded tokio runtime.
    pub async fn start(config: DaemonConfig) -> Result<(Arc<Daemon>, LoadReport), DaemonError> {
        let state = StateDir::open(&config.state_dir)?;
        let mut report = LoadReport::default();
        let mut before = state.read_session(&mut report.notes);
        before.version = state::VERSION;
        before.session_count += 1;
        state.write_session(&before)?;
        let download_dir = config
            .download_dir
            .clone()
            .or_else(|| before.download_dir.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| config.default_download_dir.clone());
        checked_folder(&download_dir)?;
        let saved = state.load(&mut report.notes)?;
        let mut speed = before.speed.unwrap_or_default();
        if let Some(up) = config.session.upload_limit {
            // The command line wins over what was set over RPC.
            speed.up = up.div_ceil(1000);
            speed.up_enabled = true;
        }
        let mut queue = before.queue.unwrap_or_default();
        if let Some(n) = config.max_active {
            queue = crate::rpc::backend::QueueLimit {
                size: n,
                enabled: true,
            };
        }
        let session = Session::start(config.session.clone()).await?;
        session.set_limits(options::session_limits(&speed));
        let daemon = Arc::new(Daemon {
            session,
            state,
            table: Mutex::new(Table::default()),
            live: Mutex::new(Live {
                download_dir,
                start_added: before.start_added.unwrap_or(true),
                speed,
                queue,
            }),
            save_lock: Mutex::new(()),
            session_saved: Mutex::new(None),
            before,
            config: config.session,
            save_every: config.save_every,
            started: Instant::now(),
            shutdown: CancellationToken::new(),
        });
        for s in saved {
            daemon.add_saved(s, &mut report);
        }
        lock(&daemon.table).renumber();
        tokio::spawn(daemon.clone().save_loop());
        tokio::spawn(daemon.clone().queue_loop());
        Ok((daemon, report))
    }

    /// Adds one saved torrent back to the session.
    fn add_saved(&self, saved: state::Saved, report: &mut LoadReport) {
        let r = saved.record;
        let Some(hash) = InfoHash::from_hex(&r.info_hash) else {
            return;
        };
        let dir = PathBuf::from(&r.dir);
        let now = unix_now();
        let mut entry = Entry {
            session: crate::session::TorrentId(u64::MAX),
            info_hash: hash,
            dir: dir.as_path().into(),
            paused: r.paused,
            added: r.added,
            done: r.done,
            started: now,
            changed: now,
            labels: r.labels.clone(),
            magnet: None,
            earlier_down: r.downloaded,
            earlier_up: r.uploaded,
            saved: None,
            stamps: None,
            busy: false,
            options: r.options.clone(),
            queued: false,
            // Placed after every torrent is loaded (see `Table::renumber`).
            queue_position: r.queue_position.unwrap_or(u64::MAX - 1),
        };
        let added = match (&saved.torrent, &r.magnet) {
            (Some(bytes), _) => match Metainfo::from_bytes(bytes) {
                Ok(meta) if meta.info_hash == hash => {
                    let layout = meta.info.layout(&dir);
                    let stamps = resume::stamps(&layout);
                    let plan = r
                        .resume
                        .as_ref()
                        .and_then(|resume| resume.plan_for(&layout, &stamps));
                    let (have, recheck) = match plan {
                        Some(plan) if plan.recheck.is_empty() => {
                            report.resumed += 1;
                            entry.stamps = Some(stamps);
                            (Some(plan.have), Vec::new())
                        }
                        Some(plan) => {
                            report.checking += 1;
                            (Some(plan.have), plan.recheck)
                        }
                        None => {
                            report.checking += 1;
                            (None, Vec::new())
                        }
                    };
                    let add = AddTorrent {
                        meta,
                        dir,
                        have,
                        peers: Vec::new(),
                        paused: r.paused,
                    };
                    self.session.add_rechecking(add, recheck)
                }
                Ok(_) => {
                    report.notes.push(format!(
                        "ignoring the saved torrent {hash}: its .torrent has another info hash"
                    ));
                    return;
                }
                Err(e) => {
                    report
                        .notes
                        .push(format!("ignoring the saved torrent {hash}: {e}"));
                    return;
                }
            },
            (None, Some(link)) => match link.parse::<Magnet>() {
                Ok(magnet) if magnet.info_hash == hash => {
                    report.magnets += 1;
                    entry.magnet = Some(link.clone());
                    self.session.add_magnet(AddMagnet {
                        magnet,
                        dir,
                        peers: Vec::new(),
                        paused: r.paused,
                    })
                }
                _ => {
                    report.notes.push(format!(
                        "ignoring the saved torrent {hash}: its magnet link does not name it"
                    ));
                    return;
                }
            },
            (None, None) => return,
        };
        match added {
            Ok(id) => {
                entry.session = id;
                let o = &entry.options;
                self.apply_options(id, o, o.sequential, !o.default_files());
                if entry.stamps.is_some() {
                    // Saved as it is now: nothing to write until something changes.
                    entry.saved = self.mark(&entry).map(|m| m.digest());
                }
                lock(&self.table).insert(entry);
            }
            Err(e) => report
                .notes
                .push(format!("cannot add the saved torrent {hash}: {e}")),
        }
    }

    /// Cancelled when the daemon should stop (a signal, or RPC `session-close`).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The session's peer address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.session.local_addr()
    }

    /// Saves every changed record, then stops the session (trackers hear `stopped`).
    /// Returns the DHT node's state to keep, if the session ran one.
    pub async fn shutdown(self: &Arc<Self>) -> Option<Vec<u8>> {
        self.shutdown.cancel();
        self.save().await;
        self.save_session_record(true);
        let dht = self.session.dht_state();
        self.session.close().await;
        dht
    }
}
