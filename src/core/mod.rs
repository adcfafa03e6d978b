//! Types every layer shares: a torrent's identity, peer ids and handles, and the piece
//! geometry computed once.
//!
//! This module owns plain values (and the fixed-size compact address form, `compact`). It
//! never parses variable outside input, never touches I/O, and
//! depends on no other module of the crate, so wire, picker, tracker, storage and the torrent
//! engine can all use it without importing each other.

pub mod compact;
pub mod keyed;

use std::fmt;

/// Bytes in a block (a request's length); the last block of the last piece may be shorter.
/// Every client requests 16 KiB blocks.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// A BitTorrent peer id (20 opaque bytes; never trusted to identify anyone).
pub type PeerId = [u8; 20];

/// SHA-1 of the bencoded `info` dictionary: a torrent's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// Parses 40 hexadecimal digits (either case).
    pub fn from_hex(hex: &str) -> Option<InfoHash> {
        let bytes = hex.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(InfoHash(out))
    }

    /// Lowercase hexadecimal, 40 digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

/// A handle for one connection, assigned by the torrent engine (not the BitTorrent peer id).
/// Handles are never reused within one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub u64);

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a torrent's bytes are cut into pieces: computed once, shared by every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per piece (positive); the last piece may be shorter.
    pub piece_length: u64,
    /// Bytes in the whole torrent.
    pub total_length: u64,
    /// `ceil(total_length / piece_length)`.
    pub pieces: u32,
}

impl Geometry {
    /// The geometry of `total_length` bytes in `piece_length`-byte pieces. A zero piece
    /// length counts as 1, and piece counts past `u32::MAX` are clamped: validated metainfo
    /// never has either.
    pub fn new(piece_length: u64, total_length: u64) -> Geometry {
        let piece_length = piece_length.max(1);
        let pieces = total_length.div_ceil(piece_length).min(u64::from(u32::MAX)) as u32;
        Geometry {
            piece_length,
            total_length,
            pieces,
        }
    }

    /// Bytes in `piece`: the piece length, less for the last piece, 0 past the end.
    pub fn piece_len(&self, piece: u32) -> u32 {
        let start = u64::from(piece).saturating_mul(self.piece_length);
        self.total_length
            .saturating_sub(start)
            .min(self.piece_length)
            .min(u64::from(u32::MAX)) as u32
    }

    /// Offset of `piece`'s first byte in the torrent's data.
    pub fn piece_offset(&self, piece: u32) -> u64 {
        u64::from(piece) * self.piece_length
    }

    /// Blocks in `piece` (`ceil(piece_len / BLOCK_LEN)`), 0 past the end.
    pub fn block_count(&self, piece: u32) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_of_a_short_last_piece() {
        let g = Geometry::new(32 * 1024, 100 * 1024 + 5);
        assert_eq!(g.pieces, 4);
        assert_eq!(g.piece_len(0), 32 * 1024);
        assert_eq!(g.piece_len(3), 4 * 1024 + 5);
        assert_eq!(g.piece_len(4), 0);
        assert_eq!(g.block_count(3), 1);
        assert_eq!(g.block_count(0), 2);
        assert_eq!(g.piece_offset(3), 96 * 1024);
        assert_eq!(Geometry::new(16, 0).pieces, 0);
    }

    #[test]
    fn info_hash_hex_round_trip() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(InfoHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(InfoHash::from_hex("zz"), None);
    }
}
