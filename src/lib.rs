//! BatTorrent: a BitTorrent protocol engine.
//!
//! The modules follow the protocol's parts: [`bencode`] (the encoding of metadata),
//! [`metainfo`] (.torrent files and magnet links), [`storage`] (mapping pieces onto files and
//! hashing them), [`wire`], [`tracker`] and [`picker`] (filled as the peer engine grows), and
//! [`dht`] (the Mainline DHT's ids, messages and routing table).

pub mod api;
pub mod bencode;
pub mod core;
pub mod daemon;
pub mod dht;
pub mod metainfo;
pub mod picker;
pub mod rpc;
pub mod session;
pub mod storage;
pub mod text;
pub mod torrent;
pub mod tracker;
pub mod wire;
