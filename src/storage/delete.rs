//! Deleting a torrent's data: the files its layout names, then the folders they leave empty.
//!
//! Only what the torrent names is touched, and only under the download folder: a file is
//! unlinked (never followed: a symlink in its place goes, not what it points to), nothing is
//! deleted below a folder that is a symlink (it could lead outside the download folder), and
//! folders are removed only once empty, from the deepest up, never the download folder
//! itself.

use super::Layout;
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// What [`delete_files`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// Files removed.
    pub files: usize,
    /// Folders removed (they were empty once the files went).
    pub folders: usize,
    /// Files kept, each with the reason (a symlinked folder on the way, a folder where a
    /// file should be, a removal that failed).
    pub kept: Vec<(PathBuf, String)>,
}

/// Deletes the files of `layout` (padding files have none) under `root`, then every folder
/// between them and `root` that is left empty. Missing files are not an error.
pub fn delete_files(layout: &Layout, root: &Path) -> Deleted {
    let mut done = Deleted::default();
    let mut folders = BTreeSet::new();
    for f in layout.files.iter().filter(|f| !f.padding) {
        let Ok(relative) = f.path.strip_prefix(root) else {
            done.kept
                .push((f.path.clone(), "not under the download folder".into()));
            continue;
        };
        if let Some(link) = symlinked_folder(root, relative) {
            done.kept
                .push((f.path.clone(), format!("{} is a symlink", link.display())));
            continue;
        }
        match std::fs::symlink_metadata(&f.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => done.kept.push((f.path.clone(), e.to_string())),
            Ok(m) if m.is_dir() => done
                .kept
                .push((f.path.clone(), "a folder stands where the file was".into())),
            Ok(_) => match std::fs::remove_file(&f.path) {
                Ok(()) => done.files += 1,
                Err(e) => done.kept.push((f.path.clone(), e.to_string())),
            },
        }
        let mut parent = f.path.parent();
        while let Some(p) = parent.filter(|p| *p != root && p.starts_with(root)) {
            folders.insert(p.to_path_buf());
            parent = p.parent();
        }
    }
    // Deepest first: a path sorts after its ancestors.
    for folder in folders.iter().rev() {
        if std::fs::remove_dir(folder).is_ok() {
            done.folders += 1;
        }
    }
    done
}

/// The first folder on the way from `root` to `relative`'s parent that is a symlink.
fn symlinked_folder(root: &Path, relative: &Path) -> Option<PathBuf> {
    let mut at = root.to_path_buf();
    let parent = relative.parent()?;
    for part in parent.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Some(at),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bt-delete-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn layout(root: &Path, files: &[&str]) -> Layout {
        Layout::new(4, files.iter().map(|f| (root.join(f), 4, false)))
    }

    #[test]
    fn removes_the_files_and_the_folders_they_leave_empty_but_nothing_else() {
        let root = scratch("tree");
        for f in [
            "album/a.bin",
            "album/cd2/b.bin",
            "album/keep.txt",
            "other.bin",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"data").unwrap();
        }
        let l = layout(
            &root,
            &["album/a.bin", "album/cd2/b.bin", "album/missing.bin"],
        );
        let done = delete_files(&l, &root);
        assert_eq!((done.files, done.folders), (2, 1), "{done:?}");
        assert!(done.kept.is_empty());
        assert!(!root.join("album/cd2").exists());
        // A file the torrent does not name keeps its folder.
        assert!(root.join("album/keep.txt").exists());
        assert!(root.join("other.bin").exists());
        assert!(root.exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn never_deletes_through_a_symlinked_folder() {
        let root = scratch("link");
        let outside = scratch("link-outside");
        std::fs::write(outside.join("a.bin"), b"data").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("album")).unwrap();
        let done = delete_files(&layout(&root, &["album/a.bin"]), &root);
        assert_eq!(done.files, 0);
        assert_eq!(done.kept.len(), 1);
        assert!(outside.join("a.bin").exists());
        let _ = std::fs::remove_dir_all(&root);
        let _ = std::fs::remove_dir_all(&outside);
    }
}
