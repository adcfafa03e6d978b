//! Parallel piece hashing over a [`Layout`].
//!
//! Workers take piece indexes in order from a shared counter and hash each piece where it
//! lies: files of at least [`MAP_THRESHOLD`] bytes are memory-mapped read-only and hashed in
//! place (on this class of machine the kernel's copy into a read buffer costs as much as
//! SHA-1 itself); smaller files are read with positional reads into a small buffer.
//! Memory stays at `threads × (CHUNK + WINDOW)` of mapped or buffered bytes, whatever the piece length.
//! SHA-1 uses the CPU's SHA extensions when it has them.
//!
//! Caveat of mapping: if another program truncates a file while it is being hashed, the
//! process gets SIGBUS (libtorrent 2 makes the same trade). Lengths are checked before
//! mapping, so files that are merely short or missing are reported normally.

use super::open::OpenError;
use super::Layout;
use memmap2::{Mmap, MmapOptions};
use sha1::{Digest, Sha1};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use thiserror::Error;

/// Bytes read per system call for files that are not mapped.
const CHUNK: usize = 256 << 10;
/// Files at least this large are memory-mapped.
const MAP_THRESHOLD: u64 = 1 << 20;
/// Size of each worker's sliding mapping (a multiple of the page size).
const WINDOW: u64 = 16 << 20;
/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What hashing one piece found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceHash {
    /// All bytes were read; this is their SHA-1.
    Hashed([u8; 20]),
    /// A file holding part of the piece is missing or too short.
    Incomplete,
}

/// Options for [`hash_pieces`].
#[derive(Debug, Clone)]
pub struct HashOptions {
    /// Worker threads (at least one is used).
    pub threads: usize,
    /// Treat a missing or short file as an error instead of [`PieceHash::Incomplete`]
    /// (for `create`, where every byte must be there).
    pub require_all: bool,
    /// Set from another thread to stop early with [`HashError::Cancelled`] (a torrent
    /// removed while its data is checked).
    pub cancel: Option<std::sync::Arc<AtomicBool>>,
    /// Hash only these pieces (the others stay [`PieceHash::Incomplete`]): a restart
    /// checks again only the pieces of files that changed. `None`: every piece.
    pub only: Option<std::sync::Arc<[u32]>>,
}

impl Default for HashOptions {
    /// One worker per core, missing data reported per piece.
    fn default() -> Self {
        HashOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            require_all: false,
            cancel: None,
            only: None,
        }
    }
}

/// A read that failed, with the file it concerned.
#[derive(Debug, Error)]
pub enum HashError {
    #[error("cannot read {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{} is shorter than expected ({expected} bytes): was it changed while hashing?", path.display())]
    Short { path: PathBuf, expected: u64 },
    #[error("{} is not a regular file (a FIFO, device or folder is never read)", path.display())]
    NotRegular { path: PathBuf },
    #[error("hashing was cancelled")]
    Cancelled,
}

/// Hashes every piece of `layout` and returns the results in piece order.
/// `on_progress(bytes)` is called on the calling thread with the bytes hashed since its
/// previous call, about every 100 ms and once at the end.
///
/// Errors: any read error other than a missing or short file; with
/// [`HashOptions::require_all`], missing and short files too. The first error stops the work.
pub fn hash_pieces(
    layout: &Layout,
    options: HashOptions,
    mut on_progress: impl FnMut(u64),
) -> Result<Vec<PieceHash>, HashError> {
    let count = layout.piece_count();
    let only = options.only.as_deref();
    let todo = only.map_or(count, <[u32]>::len);
    let threads = options.threads.clamp(1, todo.max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let hashed_bytes = AtomicU64::new(0);
    let finished = AtomicUsize::new(0);
    let mut results = vec![PieceHash::Incomplete; count];
    let require_all = options.require_all;
    let cancel = options.cancel.as_deref();
    let cancelled = || cancel.is_some_and(|c| c.load(Ordering::Relaxed));

    std::thread::scope(|scope| {
        let caller = std::thread::current();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (next, stop, hashed_bytes, finished) = (&next, &stop, &hashed_bytes, &finished);
                let caller = caller.clone();
                scope.spawn(move || {
                    let mut worker = Worker::new(layout, require_all);
                    let mut done = Vec::new();
                    let mut outcome = Ok(());
                    while !stop.load(Ordering::Relaxed) {
                        if cancelled() {
                            stop.store(true, Ordering::Relaxed);
                            outcome = Err(HashError::Cancelled);
                            break;
                        }
                        let nth = next.fetch_add(1, Ordering::Relaxed);
                        let index = match only {
                            Some(list) => match list.get(nth) {
                                Some(&p) if (p as usize) < count => p as usize,
                                Some(_) => continue,
                                None => break,
                            },
                            None if nth < count => nth,
                            None => break,
                        };
                        match worker.hash_piece(index) {
                            Ok(hash) => done.push((index, hash)),
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                outcome = Err(e);
                                break;
                            }
                        }
                        let range = layout.piece_range(index);
                        hashed_bytes.fetch_add(range.end - range.start, Ordering::Relaxed);
                    }
                    finished.fetch_add(1, Ordering::Release);
                    caller.unpark();
                    outcome.map(|()| done)
                })
            })
            .collect();

        let mut reported = 0;
        loop {
            let all_done = finished.load(Ordering::Acquire) == threads;
            let now = hashed_bytes.load(Ordering::Relaxed);
            if now > reported {
                on_progress(now - reported);
                reported = now;
            }
            if all_done {
                break;
            }
            std::thread::park_timeout(PROGRESS_EVERY);
        }

        let mut failure = None;
        for handle in handles {
            match handle.join().expect("hash worker panicked") {
                Ok(done) => {
                    for (index, hash) in done {
                        results[index] = hash;
                    }
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(results), Err)
    })
}

/// How a worker reads the file it has open.
enum Source {
    Missing,
    Read(File),
    Mapped(Windowed),
}

/// A file read through a sliding read-only mapping of [`WINDOW`] bytes, so the process maps
/// at most one window per worker (resident size stays small) and unmaps rarely.
struct Windowed {
    file: File,
    len: u64,
    map: Option<(u64, Mmap)>,
}

impl Windowed {
    /// The mapped bytes from `pos` to the end of the window holding it.
    fn window(&mut self, pos: u64) -> io::Result<&[u8]> {
        let base = pos / WINDOW * WINDOW;
        if self.map.as_ref().map(|(b, _)| *b) != Some(base) {
            self.map = None; // unmap the old window first
            let len = (self.len - base).min(WINDOW) as usize;
            // SAFETY: read-only mapping inside the file's length (checked by the caller);
            // see the module note on concurrent truncation.
            let map = unsafe { MmapOptions::new().offset(base).len(len).map(&self.file)? };
            let _ = map.advise(memmap2::Advice::Sequential);
            self.map = Some((base, map));
        }
        let (_, map) = self.map.as_ref().expect("just mapped");
        Ok(&map[(pos - base) as usize..])
    }
}

/// One thread's state: a read buffer and the file it used last.
struct Worker<'a> {
    layout: &'a Layout,
    require_all: bool,
    buf: Vec<u8>,
    open: Option<(usize, Source)>,
}

impl<'a> Worker<'a> {
    fn new(layout: &'a Layout, require_all: bool) -> Self {
        Worker {
            layout,
            require_all,
            buf: Vec::new(),
            open: None,
        }
    }

    fn short(&self, file: usize) -> Result<PieceHash, HashError> {
        let slot = &self.layout.files[file];
        if self.require_all {
            return Err(HashError::Short {
                path: slot.path.clone(),
                expected: slot.length,
            });
        }
        Ok(PieceHash::Incomplete)
    }

    fn hash_piece(&mut self, index: usize) -> Result<PieceHash, HashError> {
        let mut sha = Sha1::new();
        let layout = self.layout;
        if self.buf.is_empty() {
            self.buf = vec![0; CHUNK];
        }
        for seg in layout.segments(layout.piece_range(index)) {
            let slot = &layout.files[seg.file];
            let (start, end) = (seg.file_offset, seg.file_offset + seg.len);
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
            match open_source(&mut self.open, layout, seg.file, self.require_all)? {
                Source::Missing => return Ok(PieceHash::Incomplete),
                Source::Mapped(mapped) => {
                    if end > mapped.len {
                        return self.short(seg.file);
                    }
                    let mut pos = start;
                    while pos < end {
                        let window = mapped.window(pos).map_err(|source| HashError::Io {
                            path: slot.path.clone(),
                            error: source,
                        })?;
                        let n = (end - pos).min(window.len() as u64);
                        sha.update(&window[..n as usize]);
                        pos += n;
                    }
                }
                Source::Read(file) => {
                    let mut pos = start;
                    while pos < end {
                        let want = (end - pos).min(CHUNK as u64) as usize;
                        let got = match file.read_at(&mut self.buf[..want], pos) {
                            Ok(0) => return self.short(seg.file),
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(source) => {
                                return Err(HashError::Io {
                                    path: slot.path.clone(),
                                    error: source,
                                })
                            }
                        };
                        sha.update(&self.buf[..got]);
                        pos += got as u64;
                    }
                }
            }
        }
        Ok(PieceHash::Hashed(sha.finalize().into()))
    }
}

/// The source for file `index`, reusing the one in `cache` when it matches. A missing file
/// is [`Source::Missing`] unless `require_all`, where it is an error.
fn open_source<'c>(
    cache: &'c mut Option<(usize, Source)>,
    layout: &Layout,
    index: usize,
    require_all: bool,
) -> Result<&'c mut Source, HashError> {
    if cache.as_ref().map(|(i, _)| *i) != Some(index) {
        let path = &layout.files[index].path;
        let io_err = |source| HashError::Io {
            path: path.clone(),
            error: source,
        };
        let source = match super::open::open_read(path) {
            Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound && !require_all => {
                Source::Missing
            }
            Err(OpenError::Io(e)) => return Err(io_err(e)),
            Err(_) => return Err(HashError::NotRegular { path: path.clone() }),
            Ok(file) => {
                let len = file.metadata().map_err(io_err)?.len();
                if len >= MAP_THRESHOLD {
                    Source::Mapped(Windowed {
                        file,
                        len,
                        map: None,
                    })
                } else {
                    Source::Read(file)
                }
            }
        };
        *cache = Some((index, source));
    }
    Ok(&mut cache.as_mut().expect("just filled").1)
}
