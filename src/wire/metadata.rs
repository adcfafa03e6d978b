//! Metadata exchange messages (BEP 9, `ut_metadata`): the info dictionary travels in
//! pieces of 16 KiB, each asked for, sent (a bencoded header followed by the raw bytes) or
//! refused.
//!
//! The limits are checked here, before anything is allocated: a `total_size` over
//! [`MAX_METADATA_SIZE`], a piece index past the end, or a piece of the wrong length (every
//! piece but the last is exactly 16 KiB) makes the message an error.

use super::extension::LIMITS;
use crate::bencode::{decode_lazy_prefix, Writer};
use thiserror::Error;

/// Bytes per metadata piece.
pub const METADATA_PIECE: usize = 16 * 1024;
/// Largest info dictionary fetched: 32 MiB (rqbit's figure; libtorrent takes 30 MiB,
/// anacrolix 16, aria2 8). A .torrent of a million files has one of about 30 MiB.
pub const MAX_METADATA_SIZE: u64 = 32 << 20;

/// One `ut_metadata` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataMessage<'a> {
    Request {
        piece: u32,
    },
    Data {
        piece: u32,
        total_size: u64,
        data: &'a [u8],
    },
    Reject {
        piece: u32,
    },
}

/// Why a `ut_metadata` message was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    #[error("ut_metadata header is not a bencoded dictionary: {0}")]
    Header(String),
    #[error("ut_metadata message without a valid msg_type and piece")]
    Fields,
    #[error("unknown ut_metadata msg_type {0}")]
    UnknownType(i64),
    #[error("metadata of {0} bytes is over the {MAX_METADATA_SIZE}-byte limit")]
    TooLarge(u64),
    #[error("metadata piece {piece} is past the end of {total_size} bytes")]
    PastEnd { piece: u32, total_size: u64 },
    #[error("metadata piece {piece} has {got} bytes, not {expected}")]
    WrongLength {
        piece: u32,
        got: usize,
        expected: usize,
    },
}

/// Number of pieces of metadata of `size` bytes.
pub fn piece_count(size: u64) -> u32 {
    size.div_ceil(METADATA_PIECE as u64) as u32
}

/// Length of piece `piece` of metadata of `size` bytes (0 past the end).
pub fn piece_len(size: u64, piece: u32) -> usize {
    let start = u64::from(piece) * METADATA_PIECE as u64;
    size.saturating_sub(start).min(METADATA_PIECE as u64) as usize
}

impl<'a> MetadataMessage<'a> {
    /// Parses the payload of a `ut_metadata` message (after ids 20 and ours).
    pub fn parse(payload: &'a [u8]) -> Result<MetadataMessage<'a>, MetadataError> {
        let (doc, header) = decode_lazy_prefix(payload, LIMITS)
            .map_err(|e| MetadataError::Header(e.to_string()))?;
        let root = doc.root;
        let int = |key: &str| root.get(key).and_then(|v| v.as_int());
        let kind = int("msg_type").ok_or(MetadataError::Fields)?;
        let piece = int("piece")
            .and_then(|p| u32::try_from(p).ok())
            .ok_or(MetadataError::Fields)?;
        let rest = &payload[header..];
        match kind {
            0 => Ok(MetadataMessage::Request { piece }),
            2 => Ok(MetadataMessage::Reject { piece }),
            1 => {
                let total_size = int("total_size")
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or(MetadataError::Fields)?;
                if total_size > MAX_METADATA_SIZE {
                    return Err(MetadataError::TooLarge(total_size));
                }
                let expected = piece_len(total_size, piece);
                if expected == 0 {
                    return Err(MetadataError::PastEnd { piece, total_size });
                }
                if rest.len() != expected {
                    return Err(MetadataError::WrongLength {
                        piece,
                        got: rest.len(),
                        expected,
                    });
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: rest,
                })
            }
            other => Err(MetadataError::UnknownType(other)),
        }
    }

    /// Writes the payload (to follow ids 20 and the peer's `ut_metadata` id).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.begin_dict();
        match *self {
            MetadataMessage::Request { piece } => {
                w.key_int("msg_type", 0);
                w.key_int("piece", i64::from(piece));
                w.end();
            }
            MetadataMessage::Reject { piece } => {
                w.key_int("msg_type", 2);
                w.key_int("piece", i64::from(piece));
                w.end();
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                w.key_int("msg_type", 1);
                w.key_int("piece", i64::from(piece));
                w.key_int("total_size", total_size as i64);
                w.end();
                out.extend_from_slice(data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let data = vec![7u8; 100];
        let total = METADATA_PIECE as u64 * 2 + 100;
        for m in [
            MetadataMessage::Request { piece: 3 },
            MetadataMessage::Reject { piece: 0 },
            MetadataMessage::Data {
                piece: 2,
                total_size: total,
                data: &data,
            },
        ] {
            let mut out = Vec::new();
            m.encode(&mut out);
            assert_eq!(MetadataMessage::parse(&out), Ok(m));
        }
    }

    #[test]
    fn sizes_and_lengths_are_checked_before_use() {
        let full = vec![0u8; METADATA_PIECE];
        let encode = |piece, total_size, data: &[u8]| {
            let mut out = Vec::new();
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            }
            .encode(&mut out);
            out
        };
        assert_eq!(
            MetadataMessage::parse(&encode(0, 1 << 31, &full)),
            Err(MetadataError::TooLarge(1 << 31))
        );
        // A non-last piece must be exactly 16 KiB; the last one exactly what is left.
        assert!(matches!(
            MetadataMessage::parse(&encode(0, 40_000, &full[..1000])),
            Err(MetadataError::WrongLength {
                expected: 16384,
                ..
            })
        ));
        assert!(MetadataMessage::parse(&encode(2, 40_000, &full[..40_000 - 32_768])).is_ok());
        assert!(matches!(
            MetadataMessage::parse(&encode(3, 40_000, &full[..1])),
            Err(MetadataError::PastEnd { .. })
        ));
        assert_eq!(
            MetadataMessage::parse(b"d8:msg_typei9e5:piecei0ee"),
            Err(MetadataError::UnknownType(9))
        );
        assert_eq!(
            MetadataMessage::parse(b"d5:piecei0ee"),
            Err(MetadataError::Fields)
        );
        assert_eq!(
            MetadataMessage::parse(b"d8:msg_typei0e5:piecei-1ee"),
            Err(MetadataError::Fields)
        );
        assert!(matches!(
            MetadataMessage::parse(b"d8:msg_type"),
            Err(MetadataError::Header(_))
        ));
        assert_eq!(
            (
                piece_count(0),
                piece_count(1),
                piece_count(16384),
                piece_count(16385)
            ),
            (0, 1, 1, 2)
        );
    }
}
