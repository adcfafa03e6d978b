//! Positional reads and writes of torrent data across its files.
//!
//! Writes only create files and folders below the download folder: every folder on the way
//! is checked not to be a symlink, and files are opened as [`super::open`] says (no
//! symlink, no hard link, regular files only), so nothing planted inside the folder can
//! redirect a write outside it. (A link swapped in by another local process between the
//! check and the open is outside this guarantee.) Reads for seeding follow symlinks the
//! user made. A file longer than the torrent says is cut to its length when a download
//! starts. Open handles live in a bounded cache ([`OpenFiles`]).
//!
//! Verified pieces can be written with `O_DIRECT` ([`Storage::set_direct_writes`]): the
//! aligned part of each write goes from the caller's buffer to the disk without passing
//! through the page cache (no copy, no cache pages to allocate, and downloaded data does
//! not push out what the system had cached). Unaligned parts, and filesystems that refuse
//! `O_DIRECT`, fall back to ordinary writes.

use super::open::{open_read, open_write, Handles, OpenError, OpenFiles, DEFAULT_OPEN_FILES};
use super::Layout;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;

pub use super::open::DIRECT_ALIGN;

/// A storage operation that failed, with the file it concerned.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("refusing to write through {}: it is a symlink (a download never leaves {})", path.display(), root.display())]
    Symlink { path: PathBuf, root: PathBuf },
    #[error("{} is not inside the download folder {}", path.display(), root.display())]
    Outside { path: PathBuf, root: PathBuf },
    #[error("refusing to write through {}: it has {links} names (a hard link could lead outside {})", path.display(), root.display())]
    HardLink {
        path: PathBuf,
        root: PathBuf,
        links: u64,
    },
    #[error("{} is not a regular file (a FIFO, device or folder is never read or written)", path.display())]
    NotRegular { path: PathBuf },
}

/// Whether files may be created and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Seeding: files must exist; nothing is written.
    Read,
    /// Downloading: files and folders are created as needed.
    ReadWrite,
}

/// Open files of one torrent under a root folder.
pub struct Storage {
    layout: Layout,
    root: PathBuf,
    access: Access,
    /// Open handles, opened when first needed (padding files never are).
    cache: Arc<OpenFiles>,
    /// This storage's files in the cache.
    id: u64,
    direct: bool,
}

/// Tells storages apart in a shared [`OpenFiles`].
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A byte buffer whose start is aligned for `O_DIRECT` writes (safe code: a slightly
/// larger vector, used from its first aligned byte).
#[derive(Default)]
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

impl AlignedBuf {
    /// Resizes to `len` bytes (contents unspecified after growing), reallocating only when
    /// the capacity is too small.
    pub fn resize(&mut self, len: usize) {
        if self.raw.len() < len + DIRECT_ALIGN {
            self.raw = vec![0; len + DIRECT_ALIGN];
            self.start = self.raw.as_ptr().align_offset(DIRECT_ALIGN);
        }
        self.len = len;
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

impl Storage {
    /// Storage for `layout`, whose file paths must all lie under `root`. With
    /// [`Access::ReadWrite`], empty files are created now (they hold no piece).
    pub fn new(layout: Layout, root: &Path, access: Access) -> Result<Storage, StorageError> {
        for f in &layout.files {
            if !f.path.starts_with(root) {
                return Err(StorageError::Outside {
                    path: f.path.clone(),
                    root: root.to_path_buf(),
                });
            }
        }
        let storage = Storage {
            layout,
            root: root.to_path_buf(),
            access,
            cache: OpenFiles::new(DEFAULT_OPEN_FILES),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            direct: false,
        };
        if access == Access::ReadWrite {
            for (i, f) in storage.layout.files.iter().enumerate() {
                if f.padding {
                    continue;
                }
                // Empty files hold no piece: create them now. A file longer than the
                // torrent says would fail a later check: cut it to its length.
                let longer = std::fs::symlink_metadata(&f.path)
                    .is_ok_and(|m| m.is_file() && m.len() > f.length);
                if f.length == 0 || longer {
                    let handles = storage.file(i, true)?;
                    handles
                        .file
                        .set_len(f.length)
                        .map_err(|error| StorageError::Io {
                            action: "set the length of",
                            path: f.path.clone(),
                            error,
                        })?;
                }
            }
        }
        Ok(storage)
    }

    /// Keeps open files in `cache` (shared with other torrents) from now on.
    pub fn set_open_files(&mut self, cache: Arc<OpenFiles>) {
        self.cache.forget(self.id);
        self.cache = cache;
    }

    /// Writes aligned data with `O_DIRECT` where the filesystem allows (files opened from
    /// now on).
    pub fn set_direct_writes(&mut self, on: bool) {
        self.direct = on && self.access == Access::ReadWrite;
    }

    /// The geometry this storage serves.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The download folder every file lies under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The open handles of file `index`, opened for writing if `write` (only then are the
    /// folders created and the write rules applied: a file we only read, such as a
    /// hard-linked one we seed from, is read like any other).
    fn file(&self, index: usize, write: bool) -> Result<Arc<Handles>, StorageError> {
        let key = (self.id, index);
        if let Some(handles) = self.cache.get(key).filter(|h| h.writable || !write) {
            return Ok(handles);
        }
        let path = &self.layout.files[index].path;
        let writable = write && self.access == Access::ReadWrite;
        let file = if writable {
            self.create(path)?
        } else {
            open_read(path).map_err(|e| self.open_error(path, e))?
        };
        // Reopening through /proc names the inode already opened (and checked), not the
        // path, so no symlink can come in between.
        let direct = if self.direct && writable {
            use std::os::fd::AsRawFd;
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
                .ok()
        } else {
            None
        };
        Ok(self.cache.insert(
            key,
            Handles {
                file,
                writable,
                direct: Mutex::new(direct),
            },
        ))
    }

    fn open_error(&self, path: &Path, e: OpenError) -> StorageError {
        let path = path.to_path_buf();
        let root = self.root.clone();
        match e {
            OpenError::Io(error) => StorageError::Io {
                action: "open",
                path,
                error,
            },
            OpenError::NotRegular => StorageError::NotRegular { path },
            OpenError::Symlink => StorageError::Symlink { path, root },
            OpenError::HardLink(links) => StorageError::HardLink { path, root, links },
        }
    }

    /// Creates the folders leading to `path` and opens it for writing, refusing symlinks.
    fn create(&self, path: &Path) -> Result<std::fs::File, StorageError> {
        let relative = path.strip_prefix(&self.root).expect("checked in new");
        let mut dir = self.root.clone();
        let parents: Vec<_> = relative.components().collect();
        for part in &parents[..parents.len().saturating_sub(1)] {
            dir.push(part);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(StorageError::Symlink {
                        path: dir,
                        root: self.root.clone(),
                    })
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(&dir)
                        .or_else(|e| {
                            if e.kind() == io::ErrorKind::AlreadyExists {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        })
                        .map_err(|error| StorageError::Io {
                            action: "create folder",
                            path: dir.clone(),
                            error,
                        })?;
                }
                Err(error) => {
                    return Err(StorageError::Io {
                        action: "inspect",
                        path: dir,
                        error,
                    })
                }
            }
        }
        open_write(path).map_err(|e| self.open_error(path, e))
    }

    /// Reads `buf.len()` bytes starting at `offset` in the torrent's data. Padding reads as
    /// zeros. The range must lie inside the torrent.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let mut at = 0usize;
        for seg in self.layout.segments(offset..offset + buf.len() as u64) {
            let part = &mut buf[at..at + seg.len as usize];
            at += seg.len as usize;
            if self.layout.files[seg.file].padding {
                part.fill(0);
                continue;
            }
            let handles = self.file(seg.file, false)?;
            handles
                .file
                .read_exact_at(part, seg.file_offset)
                .map_err(|error| StorageError::Io {
                    action: "read",
                    path: self.layout.files[seg.file].path.clone(),
                    error,
                })?;
        }
        Ok(())
    }

    /// Writes `data` starting at `offset` in the torrent's data (padding is skipped).
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let mut at = 0usize;
        for seg in self.layout.segments(offset..offset + data.len() as u64) {
            let part = &data[at..at + seg.len as usize];
            at += seg.len as usize;
            if self.layout.files[seg.file].padding {
                continue;
            }
            let handles = self.file(seg.file, true)?;
            handles
                .write(part, seg.file_offset)
                .map_err(|error| StorageError::Io {
                    action: "write",
                    path: self.layout.files[seg.file].path.clone(),
                    error,
                })?;
        }
        Ok(())
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.cache.forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bt-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn layout(root: &Path) -> Layout {
        Layout::new(
            4,
            [("t/a", 5), ("t/empty", 0), ("t/sub/b", 10), ("t/c", 1)]
                .map(|(p, l)| (root.join(p), l, false)),
        )
    }

    #[test]
    fn writes_span_files_and_read_back() {
        let root = temp("span");
        let s = Storage::new(layout(&root), &root, Access::ReadWrite).unwrap();
        assert!(root.join("t/empty").exists());
        let data: Vec<u8> = (0..16).collect();
        s.write(4, &data[4..12]).unwrap();
        s.write(0, &data[..4]).unwrap();
        s.write(12, &data[12..]).unwrap();
        let mut back = [0u8; 16];
        s.read(0, &mut back).unwrap();
        assert_eq!(back.to_vec(), data);
        assert_eq!(std::fs::read(root.join("t/a")).unwrap(), &data[..5]);
        assert_eq!(std::fs::read(root.join("t/sub/b")).unwrap(), &data[5..15]);
        assert_eq!(std::fs::read(root.join("t/c")).unwrap(), &data[15..]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn direct_writes_of_aligned_buffers_read_back_with_unaligned_tails() {
        let root = temp("direct");
        let l = Layout::new(
            1 << 16,
            [("t/a", 3 * 4096 + 100), ("t/b", 70_000)].map(|(p, n)| (root.join(p), n, false)),
        );
        let total = l.total_length as usize;
        let mut s = Storage::new(l, &root, Access::ReadWrite).unwrap();
        s.set_direct_writes(true);
        let mut buf = AlignedBuf::default();
        buf.resize(total);
        assert_eq!(buf.as_ptr().align_offset(DIRECT_ALIGN), 0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        s.write(0, &buf).unwrap();
        let mut back = vec![0u8; total];
        s.read(0, &mut back).unwrap();
        assert!(back == *buf);
        assert_eq!(
            std::fs::metadata(root.join("t/a")).unwrap().len(),
            3 * 4096 + 100
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn symlinks_inside_the_folder_are_never_followed_for_writes() {
        let root = temp("link");
        let outside = temp("link-outside");
        std::fs::create_dir_all(root.join("t")).unwrap();
        // A folder symlink and a file symlink pointing outside.
        std::os::unix::fs::symlink(&outside, root.join("t/sub")).unwrap();
        std::os::unix::fs::symlink(outside.join("a"), root.join("t/a")).unwrap();
        let s = Storage::new(layout(&root), &root, Access::ReadWrite).unwrap();
        let err = s.write(0, &[1, 2, 3, 4]).unwrap_err();
        assert!(matches!(err, StorageError::Symlink { .. }), "{err}");
        let err = s.write(6, &[1, 2]).unwrap_err();
        assert!(matches!(err, StorageError::Symlink { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        let root = temp("outside");
        let l = Layout::new(4, [(PathBuf::from("/etc/passwd"), 4, false)]);
        assert!(matches!(
            Storage::new(l, &root, Access::ReadWrite),
            Err(StorageError::Outside { .. })
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
