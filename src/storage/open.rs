//! Opening torrent files safely, and the bounded cache of open handles.
//!
//! Only regular files are ever opened: a FIFO or a device at a file's path would block a
//! read for ever or hand out endless bytes, so files are opened with `O_NONBLOCK` and their
//! type is checked before use. A file opened for writing must not be a symlink
//! (`O_NOFOLLOW`) nor a regular file with more than one link: a hard link planted inside the
//! download folder would redirect our writes to a file elsewhere.
//!
//! Handles are kept in [`OpenFiles`], a cache shared by every torrent of a session and
//! bounded in entries (each is one or two descriptors), least recently used first out: a
//! torrent of thousands of files, or thousands of torrents, never runs the process out of
//! descriptors.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Default size of a session's handle cache (libtorrent keeps 40 per session).
pub const DEFAULT_OPEN_FILES: usize = 64;

/// Alignment of `O_DIRECT` writes: offset, length and buffer address.
pub const DIRECT_ALIGN: usize = 4096;

/// Why a path could not be used as a torrent file.
#[derive(Debug)]
pub enum OpenError {
    Io(io::Error),
    /// A FIFO, device, socket or folder where a file should be.
    NotRegular,
    /// A symlink where a file is written.
    Symlink,
    /// A regular file with other names: writing would change them too.
    HardLink(u64),
}

/// Opens `path` for reading if it is a regular file (following symlinks).
pub fn open_read(path: &Path) -> Result<File, OpenError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(OpenError::Io)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotRegular);
    }
    Ok(file)
}

/// Opens (creating if needed) `path` for reading and writing: never through a symlink,
/// only a regular file with no other link.
pub fn open_write(path: &Path) -> Result<File, OpenError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                OpenError::Symlink
            } else {
                OpenError::Io(e)
            }
        })?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotRegular);
    }
    if meta.nlink() > 1 {
        return Err(OpenError::HardLink(meta.nlink()));
    }
    Ok(file)
}

/// Raises the soft limit on open files to the hard limit (a process starts with 1,024 on
/// most systems). Returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    limit.rlim_cur
}

/// The handles of one open file.
pub(super) struct Handles {
    pub file: File,
    /// Opened for writing (else read-only: a write must open the file again).
    pub writable: bool,
    /// The same file opened with `O_DIRECT` (writes only), when wanted and supported.
    pub direct: Mutex<Option<File>>,
}

impl Handles {
    /// Writes `data` at `offset`: the aligned part directly when possible, the rest (and
    /// everything, once the filesystem refused a direct write) through the page cache.
    pub fn write(&self, data: &[u8], offset: u64) -> io::Result<()> {
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

/// Which file: the storage it belongs to and its index there.
pub(super) type FileKey = (u64, usize);

/// A bounded, least-recently-used cache of open files; see the module documentation.
pub struct OpenFiles {
    cap: usize,
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    clock: u64,
    open: HashMap<FileKey, (u64, Arc<Handles>)>,
}

impl OpenFiles {
    /// A cache keeping at most `cap` files open (at least one).
    pub fn new(cap: usize) -> Arc<OpenFiles> {
        Arc::new(OpenFiles {
            cap: cap.max(1),
            inner: Mutex::new(Lru::default()),
        })
    }

    /// Files open now.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Whether no file is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open handles of `key`, if cached (now the most recently used).
    pub(super) fn get(&self, key: FileKey) -> Option<Arc<Handles>> {
        let mut lru = self.lock();
        lru.clock += 1;
        let clock = lru.clock;
        let (used, handles) = lru.open.get_mut(&key)?;
        *used = clock;
        Some(handles.clone())
    }

    /// Caches freshly opened handles (or returns the ones another thread cached first,
    /// unless these are writable and those are not), closing the least recently used file
    /// beyond the cap. A file evicted or replaced while in use closes when its user is done.
    pub(super) fn insert(&self, key: FileKey, handles: Handles) -> Arc<Handles> {
        let mut lru = self.lock();
        lru.clock += 1;
        let clock = lru.clock;
        if let Some((used, existing)) = lru.open.get_mut(&key) {
            *used = clock;
            if existing.writable || !handles.writable {
                return existing.clone();
            }
            let handles = Arc::new(handles);
            *existing = handles.clone();
            return handles;
        }
        while lru.open.len() >= self.cap {
            let oldest = lru
                .open
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => lru.open.remove(&k),
                None => break,
            };
        }
        let handles = Arc::new(handles);
        lru.open.insert(key, (clock, handles.clone()));
        handles
    }

    /// Closes every file of storage `id` (it is going away).
    pub(super) fn forget(&self, id: u64) {
        self.lock().open.retain(|(owner, _), _| *owner != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{
        hash_pieces, Access, HashError, HashOptions, Layout, Storage, StorageError,
    };
    use std::path::PathBuf;
    use std::time::Duration;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bt-open-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn one_file(root: &Path, len: u64) -> Layout {
        Layout::new(4, [(root.join("t/a"), len, false)])
    }

    /// Runs `f` on a thread; panics if it takes more than 5 s (a FIFO would block for ever).
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("blocked on a FIFO")
    }

    #[test]
    fn a_hard_link_inside_the_folder_is_never_written_through() {
        let root = temp("hardlink");
        let outside = temp("hardlink-outside");
        std::fs::create_dir_all(root.join("t")).unwrap();
        std::fs::write(outside.join("victim"), b"keep").unwrap();
        std::fs::hard_link(outside.join("victim"), root.join("t/a")).unwrap();
        let s = Storage::new(one_file(&root, 4), &root, Access::ReadWrite).unwrap();
        let err = s.write(0, b"evil").unwrap_err();
        assert!(
            matches!(err, StorageError::HardLink { links: 2, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep");
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn a_hard_linked_file_is_still_read_for_seeding_from_a_download_folder() {
        let root = temp("hardlink-read");
        let outside = temp("hardlink-read-outside");
        std::fs::create_dir_all(root.join("t")).unwrap();
        std::fs::write(outside.join("shared"), b"data").unwrap();
        std::fs::hard_link(outside.join("shared"), root.join("t/a")).unwrap();
        let s = Storage::new(one_file(&root, 4), &root, Access::ReadWrite).unwrap();
        let mut back = [0u8; 4];
        s.read(0, &mut back).unwrap();
        assert_eq!(&back, b"data");
        assert!(matches!(
            s.write(0, b"evil").unwrap_err(),
            StorageError::HardLink { .. }
        ));
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn a_fifo_at_a_file_path_is_refused_not_waited_on() {
        let root = temp("fifo");
        std::fs::create_dir_all(root.join("t")).unwrap();
        let path = std::ffi::CString::new(root.join("t/a").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        for access in [Access::Read, Access::ReadWrite] {
            let r = root.clone();
            let err = within_5s(move || {
                let s = Storage::new(one_file(&r, 4), &r, access).unwrap();
                s.read(0, &mut [0; 4]).unwrap_err()
            });
            assert!(matches!(err, StorageError::NotRegular { .. }), "{err}");
        }
        // `verify` and the check before a download hash through the same open.
        let r = root.clone();
        let err = within_5s(move || {
            hash_pieces(&one_file(&r, 4), HashOptions::default(), |_| {}).unwrap_err()
        });
        assert!(matches!(err, HashError::NotRegular { .. }), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_longer_file_is_cut_to_its_length_when_a_download_starts() {
        let root = temp("longer");
        std::fs::create_dir_all(root.join("t")).unwrap();
        std::fs::write(root.join("t/a"), vec![7u8; 100]).unwrap();
        let _s = Storage::new(one_file(&root, 10), &root, Access::ReadWrite).unwrap();
        assert_eq!(std::fs::metadata(root.join("t/a")).unwrap().len(), 10);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn open_files_stay_within_the_cache_whatever_the_file_count() {
        let root = temp("many");
        let files = 300;
        let layout = Layout::new(
            16,
            (0..files).map(|i| (root.join(format!("t/{i}")), 10, false)),
        );
        let total = layout.total_length as usize;
        let cache = OpenFiles::new(8);
        let mut s = Storage::new(layout, &root, Access::ReadWrite).unwrap();
        s.set_open_files(cache.clone());
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        for (i, chunk) in data.chunks(16).enumerate() {
            s.write(i as u64 * 16, chunk).unwrap();
            assert!(cache.len() <= 8);
        }
        let mut back = vec![0u8; total];
        s.read(0, &mut back).unwrap();
        assert_eq!(back, data);
        assert!(cache.len() <= 8);
        drop(s);
        assert!(cache.is_empty(), "a dropped storage closes its files");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
