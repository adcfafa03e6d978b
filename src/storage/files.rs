//! Positional reads and writes of torrent data across its files.
//!
//! Writes only create files and folders below the download folder: every folder on the way
//! is checked not to be a symlink, and files are opened with `O_NOFOLLOW`, so a pre-existing
//! symlink inside the folder can never redirect a write outside it. (A symlink swapped in
//! by another local process between the check and the open is outside this guarantee.)
//! Reads for seeding follow symlinks the user made.

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
    files: Vec<Mutex<Option<Arc<File>>>>,
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

    /// The geometry this storage serves.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn file(&self, index: usize) -> Result<Arc<File>, StorageError> {
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
        let file = Arc::new(file);
        *slot = Some(file.clone());
        Ok(file)
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
            let file = self.file(seg.file)?;
            file.read_exact_at(part, seg.file_offset)
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
            let file = self.file(seg.file)?;
            file.write_all_at(part, seg.file_offset)
                .map_err(|error| StorageError::Io {
                    action: "write",
                    path: self.layout.files[seg.file].path.clone(),
                    error,
                })?;
        }
        Ok(())
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
