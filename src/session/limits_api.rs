//! Rate limits on a running session: the session's own (all torrents together) and each
//! torrent's, changed at any time.

use super::limit::Limits;
use super::{Session, SessionError, TorrentId};

impl Session {
    /// The session's rate limits (all torrents together).
    pub fn limits(&self) -> Limits {
        self.inner.shared.limits.get()
    }

    /// Sets the session's rate limits (`None`: none).
    pub fn set_limits(&self, limits: Limits) {
        self.inner.shared.limits.set(limits);
    }

    /// A torrent's own rate limits.
    pub fn torrent_limits(&self, id: TorrentId) -> Result<Limits, SessionError> {
        Ok(self.torrent(id)?.limits.get())
    }

    /// Sets a torrent's own rate limits (on top of the session's).
    pub fn set_torrent_limits(&self, id: TorrentId, limits: Limits) -> Result<(), SessionError> {
        self.torrent(id)?.limits.set(limits);
        Ok(())
    }
}
