//! Why a connection ended and why a torrent cannot go on: typed, so callers can tell
//! them apart and people get one clear sentence.

use crate::wire::{HandshakeError, Violation};
use thiserror::Error;

/// Why the engine closed a connection (or refused one).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DisconnectReason {
    /// The peer broke the wire protocol.
    #[error("protocol violation: {0}")]
    Violation(#[from] Violation),
    /// Its handshake was not for us (another torrent, not BitTorrent, ourselves).
    #[error("bad handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer did not complete its handshake in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// Already connected to this peer (the same peer id from the same address).
    #[error("already connected to this peer")]
    DuplicatePeerId,
    /// The address is banned.
    #[error("banned")]
    Banned,
    /// The peer was just proven to have sent data that failed the hash check.
    #[error("banned: it sent data that failed the hash check")]
    SentBadData,
    /// No room for another peer.
    #[error("connection limit reached")]
    TooManyPeers,
    /// A malformed extension message (BEP 10 handshake, BEP 9 metadata).
    #[error("bad extension message: {0}")]
    BadExtension(String),
    /// Every slot was taken and this peer was the least useful (see `slots.rs`).
    #[error("dropped to make room for another peer")]
    MadeRoom,
    /// Nothing received (not even a keep-alive) for too long.
    #[error("idle for too long")]
    Idle,
    /// Both sides are seeds: nothing to exchange.
    #[error("both sides are seeds")]
    BothSeeds,
    /// The peer queued more requests than we keep (a flood, not a download).
    #[error("more than {0} requests queued")]
    RequestFlood(usize),
    /// The torrent is checking its data and takes no peers yet.
    #[error("the torrent is not ready (checking its data)")]
    NotReady,
    /// The torrent was paused.
    #[error("the torrent was paused")]
    Paused,
    /// The torrent was stopped or removed.
    #[error("the torrent was stopped")]
    Stopped,
    /// The torrent failed (a disk error) and dropped every peer.
    #[error("the torrent failed")]
    TorrentFailed,
    /// The metadata arrived: fetching connections close and their peers are dialled
    /// again once the torrent is ready.
    #[error("metadata received; reconnecting for the data")]
    MetadataReceived,
}

/// Why a torrent cannot go on (it moves to the failed state).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TorrentError {
    /// Verified pieces could not be written, many times in a row (the last one named).
    #[error("cannot save piece {piece}: {message}")]
    Write { piece: u32, message: String },
    /// The data on disk could not be checked.
    #[error("cannot check the data on disk: {message}")]
    Check { message: String },
    /// The fetched metadata hashes to the info hash but is not a valid info dictionary.
    #[error("the torrent's metadata is invalid: {message}")]
    Metadata { message: String },
}
