//! A torrent's own settings as RPC clients set them (Transmission's `torrent-set`): which
//! files to fetch and how urgently, its speed limits, sequential download. Kept by the
//! daemon in each torrent's record; the session gets them as file priorities and limits.
//!
//! File indexes are those of the RPC's file list (padding files left out). Transmission's
//! three priorities map onto the session's scale: low 1, normal 4 ([`NORMAL`]), high 7
//! ([`URGENT`]); a file not wanted is [`SKIP`] whatever its priority.

use crate::picker::{NORMAL, SKIP, URGENT};
use serde::{Deserialize, Serialize};

/// Most files a torrent's options name (a torrent has at most this many files to choose).
pub const MAX_FILES: usize = 1 << 20;

/// Transmission's file priorities.
pub const PRIORITY_LOW: i8 = -1;
pub const PRIORITY_NORMAL: i8 = 0;
pub const PRIORITY_HIGH: i8 = 1;

/// One torrent's settings. Speed limits are in kB/s (1000 bytes, Transmission's unit);
/// a limit keeps its value while it is off, as in Transmission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TorrentOptions {
    pub download_limit: u64,
    pub download_limited: bool,
    pub upload_limit: u64,
    pub upload_limited: bool,
    pub sequential: bool,
    /// Files not to fetch (sorted, each once).
    pub unwanted: Vec<u32>,
    /// Each file's priority (-1, 0, 1); empty while every file is normal.
    pub priorities: Vec<i8>,
}

/// A change to torrents' settings: each part only when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionsChange {
    pub download_limit: Option<u64>,
    pub download_limited: Option<bool>,
    pub upload_limit: Option<u64>,
    pub upload_limited: Option<bool>,
    pub sequential: Option<bool>,
    /// File indexes; an empty list names every file (as in Transmission).
    pub wanted: Option<Vec<u32>>,
    pub unwanted: Option<Vec<u32>>,
    pub high: Option<Vec<u32>>,
    pub normal: Option<Vec<u32>>,
    pub low: Option<Vec<u32>>,
}

impl OptionsChange {
    /// Whether it changes which files are fetched or their priorities.
    pub fn touches_files(&self) -> bool {
        self.wanted.is_some()
            || self.unwanted.is_some()
            || self.high.is_some()
            || self.normal.is_some()
            || self.low.is_some()
    }
}

/// `list`, or every index below `files` when it is empty; indexes out of range dropped.
fn indexes(list: &[u32], files: usize) -> Vec<usize> {
    if list.is_empty() {
        (0..files).collect()
    } else {
        list.iter()
            .map(|&i| i as usize)
            .filter(|&i| i < files)
            .collect()
    }
}

impl TorrentOptions {
    /// Applies a change, for a torrent of `files` files (0 while its metadata is unknown:
    /// file choices are then ignored).
    pub fn apply(&mut self, change: &OptionsChange, files: usize) {
        let files = files.min(MAX_FILES);
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = change.$field {
                    self.$field = v;
                }
            };
        }
        set!(download_limit);
        set!(download_limited);
        set!(upload_limit);
        set!(upload_limited);
        set!(sequential);
        if files == 0 || !change.touches_files() {
            return;
        }
        let mut wanted = self.wanted(files);
        for (list, value) in [(&change.wanted, true), (&change.unwanted, false)] {
            for i in indexes(list.as_deref().unwrap_or(&[]), files) {
                if list.is_some() {
                    wanted[i] = value;
                }
            }
        }
        self.unwanted = (0..files as u32).filter(|&i| !wanted[i as usize]).collect();
        let mut priorities = self.priorities(files);
        for (list, value) in [
            (&change.high, PRIORITY_HIGH),
            (&change.normal, PRIORITY_NORMAL),
            (&change.low, PRIORITY_LOW),
        ] {
            if let Some(list) = list {
                for i in indexes(list, files) {
                    priorities[i] = value;
                }
            }
        }
        self.priorities = if priorities.iter().all(|&p| p == PRIORITY_NORMAL) {
            Vec::new()
        } else {
            priorities
        };
    }

    /// Whether each of `files` files is wanted.
    pub fn wanted(&self, files: usize) -> Vec<bool> {
        let mut wanted = vec![true; files];
        for &i in &self.unwanted {
            if let Some(w) = wanted.get_mut(i as usize) {
                *w = false;
            }
        }
        wanted
    }

    /// Each of `files` files' priority (-1, 0, 1).
    pub fn priorities(&self, files: usize) -> Vec<i8> {
        let mut out = vec![PRIORITY_NORMAL; files];
        for (slot, p) in out.iter_mut().zip(&self.priorities) {
            *slot = (*p).clamp(PRIORITY_LOW, PRIORITY_HIGH);
        }
        out
    }

    /// Whether every file is wanted at normal priority (nothing to tell the session).
    pub fn default_files(&self) -> bool {
        self.unwanted.is_empty() && self.priorities.is_empty()
    }

    /// The session's priority for each of `files` files.
    pub fn session_priorities(&self, files: usize) -> Vec<u8> {
        self.wanted(files)
            .into_iter()
            .zip(self.priorities(files))
            .map(|(wanted, p)| match (wanted, p) {
                (false, _) => SKIP,
                (true, PRIORITY_HIGH) => URGENT,
                (true, PRIORITY_LOW) => 1,
                (true, _) => NORMAL,
            })
            .collect()
    }

    /// The torrent's own limits in bytes per second.
    pub fn limits(&self) -> crate::session::Limits {
        crate::session::Limits {
            download: kb_limit(self.download_limited, self.download_limit),
            upload: kb_limit(self.upload_limited, self.upload_limit),
        }
    }
}

/// A limit in bytes per second from kB/s and whether it is on (0 kB/s on: 1 byte/s, as
/// near to stopped as a limiter goes).
pub fn kb_limit(on: bool, kb: u64) -> Option<u64> {
    on.then(|| kb.saturating_mul(1000).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_chosen_and_ranked_and_an_empty_list_names_them_all() {
        let mut o = TorrentOptions::default();
        o.apply(
            &OptionsChange {
                unwanted: Some(vec![1, 9]),
                high: Some(vec![2]),
                low: Some(vec![0]),
                ..Default::default()
            },
            3,
        );
        assert_eq!(o.unwanted, [1]);
        assert_eq!(o.session_priorities(3), [1, SKIP, URGENT]);
        o.apply(
            &OptionsChange {
                wanted: Some(vec![]),
                normal: Some(vec![]),
                ..Default::default()
            },
            3,
        );
        assert!(o.default_files());
        assert_eq!(o.session_priorities(3), [NORMAL; 3]);
    }

    #[test]
    fn limits_keep_their_value_while_off() {
        let mut o = TorrentOptions::default();
        o.apply(
            &OptionsChange {
                download_limit: Some(100),
                download_limited: Some(true),
                ..Default::default()
            },
            0,
        );
        assert_eq!(o.limits().download, Some(100_000));
        o.apply(
            &OptionsChange {
                download_limited: Some(false),
                ..Default::default()
            },
            0,
        );
        assert_eq!((o.limits().download, o.download_limit), (None, 100));
    }
}
