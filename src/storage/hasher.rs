//! Parallel piece hashing over a [`Layout`].
//!
//! Workers take piece indexes in order from a shared counter, read each piece in small
//! chunks with positional reads and feed SHA-1 as they go, so the bytes are hashed while
//! still in the CPU cache. Memory is `threads × CHUNK` whatever the piece length, and the
//! reads stay nearly sequential. SHA-1 uses the CPU's SHA extensions when it has them.

use super::Layout;
use sha1::{Digest, Sha1};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use thiserror::Error;

/// Bytes read per system call.
const CHUNK: usize = 256 << 10;

/// What hashing one piece found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceHash {
    /// All bytes were read; this is their SHA-1.
    Hashed([u8; 20]),
    /// A file holding part of the piece is missing or too short.
    Incomplete,
}

/// Options for [`hash_pieces`].
#[derive(Debug, Clone, Copy)]
pub struct HashOptions {
    /// Worker threads (at least one is used).
    pub threads: usize,
    /// Treat a missing or short file as an error instead of [`PieceHash::Incomplete`]
    /// (for `create`, where every byte must be there).
    pub require_all: bool,
}

impl Default for HashOptions {
    /// One worker per core, missing data reported per piece.
    fn default() -> Self {
        HashOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            require_all: false,
        }
    }
}

/// A read that failed, with the file it concerned.
#[derive(Debug, Error)]
pub enum HashError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is shorter than expected ({expected} bytes): was it changed while hashing?", path.display())]
    Short { path: PathBuf, expected: u64 },
}

/// Hashes every piece of `layout`, calling `on_piece(index, result, piece_len)` on the
/// calling thread as pieces finish (in no particular order). Returns the results in piece order.
///
/// Errors: any read error other than a missing or short file; with
/// [`HashOptions::require_all`], missing and short files too. The first error stops the work.
pub fn hash_pieces(
    layout: &Layout,
    options: HashOptions,
    mut on_piece: impl FnMut(usize, PieceHash, u64),
) -> Result<Vec<PieceHash>, HashError> {
    let count = layout.piece_count();
    let threads = options.threads.clamp(1, count.max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut results = vec![PieceHash::Incomplete; count];
    let (tx, rx) = mpsc::sync_channel::<(usize, Result<PieceHash, HashError>)>(threads * 4);

    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                let mut worker = Worker::new(layout, options.require_all);
                while !stop.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    let result = worker.hash_piece(index);
                    if tx.send((index, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut failure = None;
        for (index, result) in rx {
            match result {
                Ok(hash) => {
                    results[index] = hash;
                    on_piece(
                        index,
                        hash,
                        layout.piece_range(index).end - layout.piece_range(index).start,
                    );
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(results), Err)
    })
}

/// One thread's state: a read buffer and the file it read last.
struct Worker<'a> {
    layout: &'a Layout,
    require_all: bool,
    buf: Vec<u8>,
    open: Option<(usize, Option<File>)>,
}

impl<'a> Worker<'a> {
    fn new(layout: &'a Layout, require_all: bool) -> Self {
        Worker {
            layout,
            require_all,
            buf: vec![0; CHUNK],
            open: None,
        }
    }

    fn hash_piece(&mut self, index: usize) -> Result<PieceHash, HashError> {
        let mut sha = Sha1::new();
        let layout = self.layout;
        for seg in layout.segments(layout.piece_range(index)) {
            let slot = &layout.files[seg.file];
            if slot.padding {
                self.buf.fill(0);
                let mut left = seg.len;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    sha.update(&self.buf[..n]);
                    left -= n as u64;
                }
                continue;
            }
            let Some(file) = open_file(&mut self.open, layout, seg.file, self.require_all)? else {
                return Ok(PieceHash::Incomplete);
            };
            let mut pos = seg.file_offset;
            let end = seg.file_offset + seg.len;
            while pos < end {
                let want = (end - pos).min(CHUNK as u64) as usize;
                let got = match file.read_at(&mut self.buf[..want], pos) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(HashError::Io {
                            path: slot.path.clone(),
                            source,
                        })
                    }
                };
                if got == 0 {
                    if self.require_all {
                        return Err(HashError::Short {
                            path: slot.path.clone(),
                            expected: slot.length,
                        });
                    }
                    return Ok(PieceHash::Incomplete);
                }
                sha.update(&self.buf[..got]);
                pos += got as u64;
            }
        }
        Ok(PieceHash::Hashed(sha.finalize().into()))
    }
}

/// The open file at `index` (reusing the one in `cache` when it matches), or `None` if it
/// does not exist and missing files are tolerated.
fn open_file<'c>(
    cache: &'c mut Option<(usize, Option<File>)>,
    layout: &Layout,
    index: usize,
    require_all: bool,
) -> Result<Option<&'c File>, HashError> {
    if cache.as_ref().map(|(i, _)| *i) != Some(index) {
        let path = &layout.files[index].path;
        let file = match File::open(path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !require_all => None,
            Err(source) => {
                return Err(HashError::Io {
                    path: path.clone(),
                    source,
                })
            }
        };
        *cache = Some((index, file));
    }
    Ok(cache.as_ref().and_then(|(_, f)| f.as_ref()))
}
