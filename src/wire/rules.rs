//! What a peer may send us, checked message by message without I/O.

use super::{Bitfield, Message, WireError, BLOCK_LEN};
use thiserror::Error;

/// A protocol violation: the connection is closed with this as the logged reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("bitfield of {got} bytes for {pieces} pieces (expected {expected})")]
    BitfieldLength {
        got: usize,
        expected: usize,
        pieces: u32,
    },
    #[error("bitfield has spare bits set after the last piece")]
    SpareBits,
    #[error("piece index {piece} out of range (the torrent has {pieces})")]
    PieceOutOfRange { piece: u32, pieces: u32 },
    #[error("request for {len} bytes (must be 1 to 16384)")]
    BadRequestLength { len: u32 },
    #[error("block {offset}+{len} runs past the end of piece {piece} ({piece_len} bytes)")]
    PastPieceEnd {
        piece: u32,
        offset: u32,
        len: u32,
        piece_len: u32,
    },
    #[error("{0} message, but the fast extension (BEP 6) was not negotiated")]
    FastNotNegotiated(&'static str),
}

/// Per-connection checks on incoming messages for one torrent's geometry.
#[derive(Debug, Clone)]
pub struct Rules {
    pieces: u32,
    piece_length: u64,
    total_length: u64,
    /// Both handshakes set the fast extension bit (BEP 6).
    fast: bool,
}

impl Rules {
    /// Rules for a torrent of `total_length` bytes cut into `piece_length`-byte pieces.
    pub fn new(piece_length: u64, total_length: u64) -> Rules {
        Rules {
            pieces: total_length.div_ceil(piece_length.max(1)) as u32,
            piece_length: piece_length.max(1),
            total_length,
            fast: false,
        }
    }

    /// Says whether the fast extension (BEP 6) is in force on this connection (both
    /// handshakes set its bit); until then its messages are violations.
    pub fn set_fast(&mut self, fast: bool) {
        self.fast = fast;
    }

    /// Number of pieces.
    pub fn pieces(&self) -> u32 {
        self.pieces
    }

    /// Bytes in piece `piece` (0 when out of range).
    pub fn piece_len(&self, piece: u32) -> u32 {
        let start = u64::from(piece) * self.piece_length;
        (self.total_length.saturating_sub(start)).min(self.piece_length) as u32
    }

    /// Checks one incoming message. A bitfield must be exactly sized (see
    /// [`Rules::bitfield`]) but may come at any time: BEP 3 sends it only first, yet aria2
    /// sends one mid-connection in place of several `have`s, and libtorrent and
    /// Transmission accept that (a later bitfield replaces the earlier one). Indexes must
    /// exist; requests must be 1..=16 KiB and inside their piece; so must piece data.
    ///
    /// The fast extension's messages (BEP 6) come only from a peer that negotiated it
    /// ([`Rules::set_fast`]); the BEP says to close the connection otherwise. Their indexes
    /// must exist and a reject is checked as a request. Have-all and have-none stand for a
    /// bitfield and, like one, may come at any time (a later one replaces what was known).
    pub fn check(&mut self, message: &Message) -> Result<(), Violation> {
        if message.is_fast() && !self.fast {
            return Err(Violation::FastNotNegotiated(fast_name(message)));
        }
        match *message {
            Message::Bitfield(bytes) => self.bitfield(bytes).map(|_| ()),
            Message::Have(piece) | Message::Suggest(piece) | Message::AllowedFast(piece) => {
                self.index(piece)
            }
            Message::Request { piece, offset, len }
            | Message::Cancel { piece, offset, len }
            | Message::Reject { piece, offset, len } => {
                if len == 0 || len > BLOCK_LEN {
                    return Err(Violation::BadRequestLength { len });
                }
                self.block(piece, offset, len)
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => self.block(piece, offset, data.len() as u32),
            _ => Ok(()),
        }
    }

    /// Turns bitfield bytes into a [`Bitfield`] of exactly [`Rules::pieces`] bits.
    /// Wrong length or spare bits set: a violation (BEP 3 says to drop such peers).
    pub fn bitfield(&self, bytes: &[u8]) -> Result<Bitfield, Violation> {
        let expected = (self.pieces as usize).div_ceil(8);
        if bytes.len() != expected {
            return Err(Violation::BitfieldLength {
                got: bytes.len(),
                expected,
                pieces: self.pieces,
            });
        }
        let mut bits = Bitfield::from_slice(bytes);
        if bits[self.pieces as usize..].any() {
            return Err(Violation::SpareBits);
        }
        bits.truncate(self.pieces as usize);
        Ok(bits)
    }

    fn index(&self, piece: u32) -> Result<(), Violation> {
        if piece < self.pieces {
            Ok(())
        } else {
            Err(Violation::PieceOutOfRange {
                piece,
                pieces: self.pieces,
            })
        }
    }

    fn block(&self, piece: u32, offset: u32, len: u32) -> Result<(), Violation> {
        self.index(piece)?;
        let piece_len = self.piece_len(piece);
        if u64::from(offset) + u64::from(len) > u64::from(piece_len) {
            return Err(Violation::PastPieceEnd {
                piece,
                offset,
                len,
                piece_len,
            });
        }
        Ok(())
    }
}

/// The fast extension message's name, for the close reason.
fn fast_name(message: &Message) -> &'static str {
    match message {
        Message::Suggest(_) => "suggest piece",
        Message::HaveAll => "have all",
        Message::HaveNone => "have none",
        Message::Reject { .. } => "reject request",
        _ => "allowed fast",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10 pieces of 32 KiB, the last one 1000 bytes.
    fn rules() -> Rules {
        Rules::new(32768, 9 * 32768 + 1000)
    }

    #[test]
    fn bitfield_exactly_sized_at_any_time() {
        let mut r = rules();
        assert_eq!(r.check(&Message::KeepAlive), Ok(()));
        assert_eq!(r.check(&Message::Bitfield(&[0x00, 0x00])), Ok(()));
        // aria2 sends a bitfield instead of `have`s mid-connection.
        r.check(&Message::Interested).unwrap();
        assert_eq!(r.check(&Message::Bitfield(&[0xff, 0xc0])), Ok(()));
        assert!(matches!(
            r.check(&Message::Bitfield(&[0xff])),
            Err(Violation::BitfieldLength { expected: 2, .. })
        ));
        let r = rules();
        assert!(matches!(
            r.bitfield(&[0xff]),
            Err(Violation::BitfieldLength { expected: 2, .. })
        ));
        assert_eq!(r.bitfield(&[0xff, 0xe0]), Err(Violation::SpareBits));
        let bits = r.bitfield(&[0x80, 0x40]).unwrap();
        assert_eq!(bits.len(), 10);
        assert_eq!(bits.iter_ones().collect::<Vec<_>>(), vec![0, 9]);
    }

    #[test]
    fn indexes_and_block_bounds() {
        let mut r = rules();
        assert_eq!(r.check(&Message::Have(9)), Ok(()));
        assert_eq!(
            r.check(&Message::Have(10)),
            Err(Violation::PieceOutOfRange {
                piece: 10,
                pieces: 10
            })
        );
        let req = |piece, offset, len| Message::Request { piece, offset, len };
        assert_eq!(r.check(&req(0, 16384, 16384)), Ok(()));
        assert_eq!(
            r.check(&req(0, 0, 16385)),
            Err(Violation::BadRequestLength { len: 16385 })
        );
        assert_eq!(
            r.check(&req(0, 0, 0)),
            Err(Violation::BadRequestLength { len: 0 })
        );
        assert!(matches!(
            r.check(&req(0, 16385, 16384)),
            Err(Violation::PastPieceEnd { .. })
        ));
        // The short last piece: 1000 bytes.
        assert_eq!(r.check(&req(9, 0, 1000)), Ok(()));
        assert!(matches!(
            r.check(&req(9, 0, 1001)),
            Err(Violation::PastPieceEnd {
                piece_len: 1000,
                ..
            })
        ));
        // Offsets near u32::MAX do not overflow.
        assert!(r.check(&req(0, u32::MAX, 16384)).is_err());
        let piece = Message::Piece {
            piece: 9,
            offset: 512,
            data: &[0; 600],
        };
        assert!(matches!(
            r.check(&piece),
            Err(Violation::PastPieceEnd { .. })
        ));
    }

    #[test]
    fn fast_messages_only_once_negotiated_and_checked_like_their_bep3_kin() {
        let mut r = rules();
        let reject = |piece, offset, len| Message::Reject { piece, offset, len };
        for m in [
            Message::HaveAll,
            Message::HaveNone,
            Message::Suggest(0),
            Message::AllowedFast(0),
            reject(0, 0, 16384),
        ] {
            assert!(
                matches!(r.check(&m), Err(Violation::FastNotNegotiated(_))),
                "{m:?} without fast"
            );
        }
        assert_eq!(
            r.check(&Message::HaveAll).unwrap_err().to_string(),
            "have all message, but the fast extension (BEP 6) was not negotiated"
        );
        r.set_fast(true);
        assert_eq!(r.check(&Message::HaveAll), Ok(()));
        assert_eq!(r.check(&Message::HaveNone), Ok(()));
        assert_eq!(r.check(&Message::Suggest(9)), Ok(()));
        assert_eq!(r.check(&Message::AllowedFast(9)), Ok(()));
        assert!(matches!(
            r.check(&Message::Suggest(10)),
            Err(Violation::PieceOutOfRange { piece: 10, .. })
        ));
        assert!(matches!(
            r.check(&Message::AllowedFast(u32::MAX)),
            Err(Violation::PieceOutOfRange { .. })
        ));
        assert_eq!(r.check(&reject(9, 0, 1000)), Ok(()));
        assert!(matches!(
            r.check(&reject(9, 0, 1001)),
            Err(Violation::PastPieceEnd { .. })
        ));
        assert_eq!(
            r.check(&reject(0, 0, 0)),
            Err(Violation::BadRequestLength { len: 0 })
        );
        assert!(matches!(
            r.check(&reject(10, 0, 1)),
            Err(Violation::PieceOutOfRange { .. })
        ));
        // BEP 3 messages are unaffected by the flag.
        assert_eq!(r.check(&Message::Have(9)), Ok(()));
    }
}
