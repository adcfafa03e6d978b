//! The session's verify-and-write pool: a few threads shared by every torrent that hash
//! completed pieces, write the good ones, and report back to the torrent's engine.
//!
//! A piece reaches the disk only after its SHA-1 matched, and the engine marks it had only
//! after the write succeeded.

use super::driver::{lock, TorrentHandle};
use crate::storage::AlignedBuf;
use crate::torrent::TorrentError;
use sha1::{Digest, Sha1};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// One complete piece to check.
pub struct Job {
    pub torrent: Arc<TorrentHandle>,
    pub piece: u32,
    pub expected: [u8; 20],
    pub data: AlignedBuf,
}

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
                    .spawn(move || loop {
                        let job = lock(&rx).recv();
                        match job {
                            Ok(job) => run(job),
                            Err(_) => return,
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

fn run(job: Job) {
    let Job {
        torrent,
        piece,
        expected,
        data,
    } = job;
    let good = Sha1::digest(&data[..])[..] == expected[..];
    let written = if good {
        let offset = torrent.geometry.piece_offset(piece);
        torrent.storage.write(offset, &data)
    } else {
        Ok(())
    };
    let mut d = torrent.lock();
    let now = Instant::now();
    match written {
        Ok(()) => d.engine.handle_verified(now, piece, data, good),
        Err(e) => d.engine.handle_failed(
            now,
            TorrentError::Write {
                piece,
                message: e.to_string(),
            },
        ),
    }
    torrent.dispatch(&mut d);
}
