//! BatTorrent: a BitTorrent protocol engine.
//!
//! The modules follow the protocol's parts: [`bencode`] (the wire format of metadata),
//! [`metainfo`] (.torrent files and magnet links), [`storage`] (mapping pieces onto files and
//! hashing them), and, as they grow, `wire`, `tracker` and `picker`.

pub mod bencode;
pub mod metainfo;
pub mod storage;
