//! Positional reads and writes of torrent data across its files.
//!
//! Writes only create files and folders below the download folder: every folder on the way
//! is checked not to be a symlink, and files are opened with `O_NOFOLLOW`, so a pre-existing
//! symlink inside the folder can never redirect a write outside it. (A symlink swapped in
//! by another local process between the check and the open is outside this guarantee.)
//! Reads for seeding follow symlinks the user made.
//!
//! Verified pieces can be written with `O_DIRECT` ([`Storage::set_direct_writes`]): the
//! aligned part of each write goes from the caller's buffer to the disk without passing
//! through the page cache (no copy, no cache pages to allocate, and downloaded data does
//! not push out what the system had cached). Unaligned parts, and filesystems that refuse
//! `O_DIRECT`, fall back to ordinary writes.

use super::Layout;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

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
    /// One lazily opened handle per file (padding files stay `None`).
    files: Vec<Mutex<Option<Arc<Handles>>>>,
    direct: bool,
}

/// The handles of one open file.
struct Handles {
    file: File,
    /// The same file opened with `O_DIRECT` (writes only), when wanted and supported.
    direct: Mutex<Option<File>>,
}

/// Alignment of `O_DIRECT` writes: offset, length and buffer address.
pub const DIRECT_ALIGN: usize = 4096;

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
            files: layout.files.iter().map(|_| Mutex::new(None)).collect(),
            layout,
            root: root.to_path_buf(),
            access,
            direct: false,
        };
        if access == Access::ReadWrite {
            for (i, f) in storage.layout.files.iter().enumerate() {
                if f.length == 0 && !f.padding {
                    storage.file(i)?;
                }
            }
        }
        Ok(storage)
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

    fn file(&self, index: usize) -> Result<Arc<Handles>, StorageError> {
        let mut slot = self.files[index].lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let path = &self.layout.files[index].path;
        let file = match self.access {
            Access::Read => File::open(path).map_err(|error| StorageError::Io {
                action: "open",
                path: path.clone(),
                error,
            })?,
            Access::ReadWrite => self.create(path)?,
        };
        // Reopening through /proc names the inode already opened (and checked), not the
        // path, so no symlink can come in between.
        let direct = if self.direct {
            use std::os::fd::AsRawFd;
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
                .ok()
        } else {
            None
        };
        let handles = Arc::new(Handles {
            file,
            direct: Mutex::new(direct),
        });
        *slot = Some(handles.clone());
        Ok(handles)
    }

    /// Creates the folders leading to `path` and opens it for writing, refusing symlinks.
    fn create(&self, path: &Path) -> Result<File, StorageError> {
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
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|error| {
                if error.raw_os_error() == Some(libc::ELOOP) {
                    StorageError::Symlink {
                        path: path.to_path_buf(),
                        root: self.root.clone(),
                    }
                } else {
                    StorageError::Io {
                        action: "create",
                        path: path.to_path_buf(),
                        error,
                    }
                }
            })
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
            let handles = self.file(seg.file)?;
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
            let handles = self.file(seg.file)?;
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

impl Handles {
    /// Writes `data` at `offset`: the aligned part directly when possible, the rest (and
    /// everything, once the filesystem refused a direct write) through the page cache.
    fn write(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let aligned = offset % DIRECT_ALIGN as u64 == 0
            && data.as_ptr().align_offset(DIRECT_ALIGN) == 0
            && data.len() >= DIRECT_ALIGN;
        if aligned {
            let mut direct = self.direct.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(file) = direct.as_ref() {
                let head = data.len() / DIRECT_ALIGN * DIRECT_ALIGN;
                match file.write_all_at(&data[..head], offset) {
                    Ok(()) => {
                        drop(direct);
                        return self.file.write_all_at(&data[head..], offset + head as u64);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        tracing::debug!("O_DIRECT refused ({e}); writing through the cache");
                        *direct = None;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.file.write_all_at(data, offset)
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
