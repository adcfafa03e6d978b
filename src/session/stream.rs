//! Reading a torrent's data while it downloads (streaming): a reader asks for a byte range;
//! the pieces it needs are raised to the top priority and waited for, and only verified
//! pieces are ever read.

use super::{Session, SessionError, TorrentId};
use crate::picker::URGENT;
use crate::torrent::TorrentState;
use std::time::Instant;

/// Why a range could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("bytes {offset}..{end} are outside the torrent ({total} bytes)")]
    Range { offset: u64, end: u64, total: u64 },
    #[error("the torrent stopped before the bytes arrived ({0})")]
    Stopped(String),
    #[error("cannot read the torrent's data: {0}")]
    Read(String),
}

impl Session {
    /// Reads `len` bytes at `offset` of the torrent's data (files concatenated in torrent
    /// order), waiting until the pieces holding them are verified; they are fetched first.
    pub async fn read_at(
        &self,
        id: TorrentId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, StreamError> {
        let torrent = self.torrent(id)?;
        let files = loop {
            // A magnet torrent has no files until its metadata arrives.
            let waiting = torrent.changed.notified();
            tokio::pin!(waiting);
            waiting.as_mut().enable();
            if let Ok(files) = torrent.files() {
                break files;
            }
            if let Some(why) = torrent.lock().engine.error() {
                return Err(StreamError::Stopped(why.to_string()));
            }
            waiting.await;
        };
        let geometry = files.geometry;
        let end = offset.saturating_add(len as u64);
        if end > geometry.total_length {
            return Err(StreamError::Range {
                offset,
                end,
                total: geometry.total_length,
            });
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let first = (offset / geometry.piece_length) as u32;
        let last = ((end - 1) / geometry.piece_length) as u32;
        let mut raised = false;
        loop {
            let waiting = torrent.pieces_changed.notified();
            tokio::pin!(waiting);
            waiting.as_mut().enable();
            // A failure or a pause changes no piece: the state's notification wakes us.
            let changed = torrent.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut d = torrent.lock();
                let have = d.engine.have();
                if (first..=last).all(|p| have.get(p as usize).is_some_and(|b| *b)) {
                    break;
                }
                if let Some(why) = d.engine.error() {
                    return Err(StreamError::Stopped(why.to_string()));
                }
                let state = d.engine.state();
                if matches!(state, TorrentState::Paused | TorrentState::Stopped) {
                    return Err(StreamError::Stopped(format!("{state:?}").to_lowercase()));
                }
                if !raised {
                    raised = true;
                    d.engine
                        .raise_priority(Instant::now(), first..last + 1, URGENT);
                    torrent.dispatch(&mut d);
                }
            }
            tokio::select! {
                _ = &mut waiting => {}
                _ = &mut changed => {}
                _ = torrent.cancel.cancelled() => {
                    return Err(StreamError::Stopped("removed".into()));
                }
            }
        }
        let t = torrent.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; len];
            let files = t.files().map_err(StreamError::Read)?;
            files
                .storage
                .read(offset, &mut buf)
                .map_err(|e| StreamError::Read(e.to_string()))?;
            Ok(buf)
        });
        read.await.map_err(|e| StreamError::Read(e.to_string()))?
    }
}
