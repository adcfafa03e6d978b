//! The session's verify-and-write pool: a few threads shared by every torrent that hash
//! completed pieces, write the good ones, check pieces again from disk, and report back to
//! the torrent's engine.
//!
//! A piece reaches the disk only after its SHA-1 matched, and the engine marks it had only
//! after the write succeeded. A failed write costs that piece (the engine fetches it
//! again), not the torrent.

use super::driver::{lock, TorrentHandle};
use crate::storage::AlignedBuf;
use crate::torrent::DiskHash;
use sha1::{Digest, Sha1};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// One piece to check.
pub struct Job {
    pub torrent: Arc<TorrentHandle>,
    pub piece: u32,
    pub expected: [u8; 20],
    pub work: Work,
}

/// What to do.
pub enum Work {
    /// A piece received from peers: hash it, write it if good.
    Received(AlignedBuf),
    /// A block of a large piece, written before its piece is hashed (and hashed now if
    /// it continues its attempt's blocks in order).
    Write {
        offset: u32,
        data: Vec<u8>,
        attempt: u64,
    },
    /// A piece on disk: hash it, reading back what was not hashed as written (with each
    /// block's hash if asked for or if it fails).
    OnDisk {
        block_hashes: bool,
        attempt: Option<u64>,
    },
}

/// Bytes read at a time when checking a piece on disk (pieces may be up to 256 MiB).
const READ_CHUNK: usize = 1 << 20;

/// Hashing threads and their queue; see the module documentation.
pub struct VerifyPool {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl VerifyPool {
    /// Starts `threads` hashing threads (SHA-1 runs at about 2 GB/s per core, faster than
    /// the network delivers, so one or two keep up with every torrent).
    pub fn new(threads: usize) -> std::io::Result<VerifyPool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("verify-{i}"))
                    .spawn(move || {
                        let mut chunk = Vec::new();
                        loop {
                            let job = lock(&rx).recv();
                            match job {
                                Ok(job) => run(job, &mut chunk),
                                Err(_) => return,
                            }
                        }
                    })?,
            );
        }
        Ok(VerifyPool {
            queue: Mutex::new(Some(tx)),
            threads: Mutex::new(handles),
        })
    }

    /// Queues a piece (dropped once the pool is stopping: its torrent is going away).
    pub fn submit(&self, job: Job) {
        if let Some(tx) = lock(&self.queue).as_ref() {
            let _ = tx.send(job);
        }
    }

    /// Lets the threads finish the queued pieces and exit, without waiting for them.
    pub fn close(&self) {
        lock(&self.queue).take();
    }

    /// Lets the threads finish the queued pieces, then waits for them to exit.
    pub fn stop(&self) {
        self.close();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn run(job: Job, chunk: &mut Vec<u8>) {
    let Job {
        torrent,
        piece,
        expected,
        work,
    } = job;
    match work {
        Work::Received(data) => verify_and_write(&torrent, piece, &expected, data),
        Work::Write {
            offset,
            data,
            attempt,
        } => {
            let result = torrent.files().and_then(|f| {
                let at = f.geometry.piece_offset(piece) + u64::from(offset);
                f.storage.write(at, &data).map_err(|e| e.to_string())
            });
            if result.is_ok() {
                torrent
                    .written
                    .written(piece, attempt, u64::from(offset), &data);
            }
            let mut d = torrent.lock();
            d.engine.handle_written(Instant::now(), piece, data, result);
            torrent.dispatch(&mut d);
        }
        Work::OnDisk {
            block_hashes,
            attempt,
        } => {
            let result = match hash_on_disk(&torrent, piece, attempt, &expected, chunk) {
                Ok(true) if !block_hashes => DiskHash::Good(Vec::new()),
                Ok(true) => DiskHash::Good(hash_blocks_on_disk(&torrent, piece, chunk)),
                Ok(false) => DiskHash::Bad(hash_blocks_on_disk(&torrent, piece, chunk)),
                Err(message) => DiskHash::Unreadable(message),
            };
            let mut d = torrent.lock();
            d.engine
                .handle_hashed_on_disk(Instant::now(), piece, result);
            torrent.dispatch(&mut d);
        }
    }
}

fn verify_and_write(
    torrent: &Arc<TorrentHandle>,
    piece: u32,
    expected: &[u8; 20],
    data: AlignedBuf,
) {
    let good = Sha1::digest(&data[..])[..] == expected[..];
    let written = if good {
        torrent.files().and_then(|f| {
            let offset = f.geometry.piece_offset(piece);
            f.storage.write(offset, &data).map_err(|e| e.to_string())
        })
    } else {
        Ok(())
    };
    let mut d = torrent.lock();
    let now = Instant::now();
    match written {
        Ok(()) => d.engine.handle_verified(now, piece, data, good),
        Err(e) => d.engine.handle_write_failed(now, piece, data, e),
    }
    torrent.dispatch(&mut d);
}

/// Whether piece `piece` on disk hashes to `expected`: what `attempt`'s writes hashed in
/// order is taken as is, the rest is read a chunk at a time.
fn hash_on_disk(
    torrent: &TorrentHandle,
    piece: u32,
    attempt: Option<u64>,
    expected: &[u8; 20],
    chunk: &mut Vec<u8>,
) -> Result<bool, String> {
    let files = torrent.files()?;
    let start = files.geometry.piece_offset(piece);
    let len = u64::from(files.geometry.piece_len(piece));
    let (mut at, mut sha) = torrent.written.take(piece, attempt);
    while at < len {
        let n = (len - at).min(READ_CHUNK as u64) as usize;
        chunk.resize(n, 0);
        files
            .storage
            .read(start + at, &mut chunk[..n])
            .map_err(|e| e.to_string())?;
        sha.update(&chunk[..n]);
        at += n as u64;
    }
    Ok(sha.finalize()[..] == expected[..])
}

/// Each block's SHA-1 of piece `piece` as the disk holds it (empty if it cannot be read).
fn hash_blocks_on_disk(torrent: &TorrentHandle, piece: u32, chunk: &mut Vec<u8>) -> Vec<[u8; 20]> {
    let Ok(files) = torrent.files() else {
        return Vec::new();
    };
    let start = files.geometry.piece_offset(piece);
    let len = u64::from(files.geometry.piece_len(piece));
    let block = u64::from(crate::core::BLOCK_LEN);
    let mut hashes = Vec::with_capacity(len.div_ceil(block) as usize);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(READ_CHUNK as u64) as usize;
        chunk.resize(n, 0);
        if files.storage.read(start + at, &mut chunk[..n]).is_err() {
            return Vec::new();
        }
        for b in chunk[..n].chunks(block as usize) {
            hashes.push(Sha1::digest(b).into());
        }
        at += n as u64;
    }
    hashes
}
