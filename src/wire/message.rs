//! Length-prefixed messages: framing, decoding without copies, encoding.

use thiserror::Error;

pub use crate::core::BLOCK_LEN;

/// One peer message. Payloads borrow from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    /// Raw bitfield bytes (checked by [`super::Rules`]).
    Bitfield(&'a [u8]),
    Request {
        piece: u32,
        offset: u32,
        len: u32,
    },
    Piece {
        piece: u32,
        offset: u32,
        data: &'a [u8],
    },
    Cancel {
        piece: u32,
        offset: u32,
        len: u32,
    },
    /// DHT port (BEP 5); accepted and ignored until we speak DHT.
    Port(u16),
    /// Fast extension (BEP 6), id 13: "you might like to download this piece".
    Suggest(u32),
    /// BEP 6, id 14: the sender has every piece (in place of a bitfield).
    HaveAll,
    /// BEP 6, id 15: the sender has no piece (in place of a bitfield).
    HaveNone,
    /// BEP 6, id 16: the sender will not serve this request.
    Reject {
        piece: u32,
        offset: u32,
        len: u32,
    },
    /// BEP 6, id 17: the sender serves requests for this piece even while it chokes us.
    AllowedFast(u32),
    /// An extension message (BEP 10, id 20): the extended id and its payload.
    Extended {
        id: u8,
        payload: &'a [u8],
    },
    /// A message id we do not implement (extensions we did not advertise): skipped.
    Unknown {
        id: u8,
        len: usize,
    },
}

/// A frame that cannot be a valid message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("message id {id} with a payload of {len} bytes (expected {expected})")]
    BadLength { id: u8, len: usize, expected: usize },
}

/// Room beyond a block for an extension message carrying a 16 KiB metadata piece (BEP 9)
/// and its bencoded header.
pub const EXTENSION_SLACK: usize = 1024;

/// The largest frame (after the 4-byte length) worth accepting for a torrent of
/// `piece_count` pieces: a bitfield, a piece message carrying one block, or an extension
/// message carrying one metadata piece.
pub fn max_message_len(piece_count: usize) -> usize {
    (1 + piece_count.div_ceil(8)).max(9 + BLOCK_LEN as usize + EXTENSION_SLACK)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes the first message in `buf`. Returns `Ok(None)` when more bytes are needed, or
/// the message and the bytes it used. The length is checked against `max_len` before any
/// payload is looked at, so a hostile length never causes an allocation.
pub fn decode(buf: &[u8], max_len: usize) -> Result<Option<(Message<'_>, usize)>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32_at(buf, 0) as usize;
    if len > max_len {
        return Err(WireError::TooLong { len, max: max_len });
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let used = 4 + len;
    if len == 0 {
        return Ok(Some((Message::KeepAlive, used)));
    }
    let id = buf[4];
    let body = &buf[5..used];
    let exact = |expected: usize| {
        if body.len() == expected {
            Ok(())
        } else {
            Err(WireError::BadLength {
                id,
                len: body.len(),
                expected,
            })
        }
    };
    let triple = |body: &[u8]| (u32_at(body, 0), u32_at(body, 4), u32_at(body, 8));
    let message = match id {
        0 => exact(0).map(|_| Message::Choke)?,
        1 => exact(0).map(|_| Message::Unchoke)?,
        2 => exact(0).map(|_| Message::Interested)?,
        3 => exact(0).map(|_| Message::NotInterested)?,
        4 => exact(4).map(|_| Message::Have(u32_at(body, 0)))?,
        5 => Message::Bitfield(body),
        6 => {
            exact(12)?;
            let (piece, offset, len) = triple(body);
            Message::Request { piece, offset, len }
        }
        7 => {
            if body.len() < 8 {
                return Err(WireError::BadLength {
                    id,
                    len: body.len(),
                    expected: 8,
                });
            }
            Message::Piece {
                piece: u32_at(body, 0),
                offset: u32_at(body, 4),
                data: &body[8..],
            }
        }
        8 => {
            exact(12)?;
            let (piece, offset, len) = triple(body);
            Message::Cancel { piece, offset, len }
        }
        9 => exact(2).map(|_| Message::Port(u16::from_be_bytes([body[0], body[1]])))?,
        13 => exact(4).map(|_| Message::Suggest(u32_at(body, 0)))?,
        14 => exact(0).map(|_| Message::HaveAll)?,
        15 => exact(0).map(|_| Message::HaveNone)?,
        16 => {
            exact(12)?;
            let (piece, offset, len) = triple(body);
            Message::Reject { piece, offset, len }
        }
        17 => exact(4).map(|_| Message::AllowedFast(u32_at(body, 0)))?,
        20 => match body.split_first() {
            Some((&id, payload)) => Message::Extended { id, payload },
            None => {
                return Err(WireError::BadLength {
                    id,
                    len: 0,
                    expected: 1,
                })
            }
        },
        _ => Message::Unknown {
            id,
            len: body.len(),
        },
    };
    Ok(Some((message, used)))
}

impl Message<'_> {
    /// Whether this is one of the fast extension's messages (BEP 6), which only a peer
    /// that negotiated it may send.
    pub fn is_fast(&self) -> bool {
        matches!(
            self,
            Message::Suggest(_)
                | Message::HaveAll
                | Message::HaveNone
                | Message::Reject { .. }
                | Message::AllowedFast(_)
        )
    }

    /// Appends the message's wire bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let simple = |out: &mut Vec<u8>, id: u8| {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.push(id);
        };
        let index = |out: &mut Vec<u8>, id: u8, piece: u32| {
            out.extend_from_slice(&5u32.to_be_bytes());
            out.push(id);
            out.extend_from_slice(&piece.to_be_bytes());
        };
        let triple = |out: &mut Vec<u8>, id: u8, a: u32, b: u32, c: u32| {
            out.extend_from_slice(&13u32.to_be_bytes());
            out.push(id);
            for v in [a, b, c] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        };
        match *self {
            Message::KeepAlive => out.extend_from_slice(&0u32.to_be_bytes()),
            Message::Choke => simple(out, 0),
            Message::Unchoke => simple(out, 1),
            Message::Interested => simple(out, 2),
            Message::NotInterested => simple(out, 3),
            Message::Have(piece) => index(out, 4, piece),
            Message::Bitfield(bits) => {
                out.extend_from_slice(&(1 + bits.len() as u32).to_be_bytes());
                out.push(5);
                out.extend_from_slice(bits);
            }
            Message::Request { piece, offset, len } => triple(out, 6, piece, offset, len),
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                out.extend_from_slice(&piece_header(piece, offset, data.len() as u32));
                out.extend_from_slice(data);
            }
            Message::Cancel { piece, offset, len } => triple(out, 8, piece, offset, len),
            Message::Port(port) => {
                out.extend_from_slice(&3u32.to_be_bytes());
                out.push(9);
                out.extend_from_slice(&port.to_be_bytes());
            }
            Message::Suggest(piece) => index(out, 13, piece),
            Message::HaveAll => simple(out, 14),
            Message::HaveNone => simple(out, 15),
            Message::Reject { piece, offset, len } => triple(out, 16, piece, offset, len),
            Message::AllowedFast(piece) => index(out, 17, piece),
            Message::Extended { id, payload } => {
                out.extend_from_slice(&(2 + payload.len() as u32).to_be_bytes());
                out.push(20);
                out.push(id);
                out.extend_from_slice(payload);
            }
            // Never sent: we only skip these.
            Message::Unknown { .. } => {}
        }
    }
}

/// The 13 bytes before a block's data in a piece message (lets senders read the block
/// straight into the send buffer after it).
pub fn piece_header(piece: u32, offset: u32, data_len: u32) -> [u8; 13] {
    let mut h = [0u8; 13];
    h[..4].copy_from_slice(&(9 + data_len).to_be_bytes());
    h[4] = 7;
    h[5..9].copy_from_slice(&piece.to_be_bytes());
    h[9..13].copy_from_slice(&offset.to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message<'static>> {
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(0x01020304),
            Message::Bitfield(&[0b1010_0000, 0xff]),
            Message::Request {
                piece: 1,
                offset: 16384,
                len: 16384,
            },
            Message::Piece {
                piece: 2,
                offset: 0,
                data: b"hello",
            },
            Message::Cancel {
                piece: 3,
                offset: 32768,
                len: 100,
            },
            Message::Port(6881),
            Message::Suggest(7),
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject {
                piece: 4,
                offset: 16384,
                len: 1000,
            },
            Message::AllowedFast(0xfffffffe),
        ]
    }

    #[test]
    fn every_message_round_trips_even_when_split_at_every_byte() {
        let mut stream = Vec::new();
        for m in samples() {
            m.encode(&mut stream);
        }
        // Feed the stream in two parts split at every position; the decoder must ask
        // for more bytes, never misparse.
        for split in 0..=stream.len() {
            let mut buf = stream[..split].to_vec();
            let mut got = Vec::new();
            let mut pos = 0;
            let mut fed_rest = false;
            loop {
                match decode(&buf[pos..], 100_000).unwrap() {
                    Some((m, used)) => {
                        got.push(format!("{m:?}"));
                        pos += used;
                    }
                    None if !fed_rest => {
                        buf.extend_from_slice(&stream[split..]);
                        fed_rest = true;
                    }
                    None => break,
                }
            }
            let want: Vec<String> = samples().iter().map(|m| format!("{m:?}")).collect();
            assert_eq!(got, want, "split at {split}");
            assert_eq!(pos, stream.len());
        }
    }

    #[test]
    fn hostile_lengths_are_refused_before_reading_the_payload() {
        let huge = [0xff, 0xff, 0xff, 0xff, 7];
        assert_eq!(
            decode(&huge, 16393),
            Err(WireError::TooLong {
                len: u32::MAX as usize,
                max: 16393
            })
        );
        // Have with 3 bytes, request with 11.
        assert!(matches!(
            decode(&[0, 0, 0, 4, 4, 0, 0, 1], 100),
            Err(WireError::BadLength { id: 4, .. })
        ));
        let mut req = vec![0, 0, 0, 12, 6];
        req.extend_from_slice(&[0; 11]);
        assert!(matches!(
            decode(&req, 100),
            Err(WireError::BadLength { id: 6, .. })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 5, 7, 0, 0, 0, 0], 100),
            Err(WireError::BadLength { id: 7, .. })
        ));
        // Choke with a payload.
        assert!(decode(&[0, 0, 0, 2, 0, 9], 100).is_err());
    }

    #[test]
    fn fast_extension_messages_have_their_bep6_bytes_and_exact_lengths() {
        let bytes = |m: Message| {
            let mut out = Vec::new();
            m.encode(&mut out);
            out
        };
        assert_eq!(bytes(Message::HaveAll), [0, 0, 0, 1, 0x0e]);
        assert_eq!(bytes(Message::HaveNone), [0, 0, 0, 1, 0x0f]);
        assert_eq!(bytes(Message::Suggest(258)), [0, 0, 0, 5, 0x0d, 0, 0, 1, 2]);
        assert_eq!(
            bytes(Message::AllowedFast(3)),
            [0, 0, 0, 5, 0x11, 0, 0, 0, 3]
        );
        let reject = Message::Reject {
            piece: 1,
            offset: 2,
            len: 3,
        };
        assert_eq!(
            bytes(reject),
            [0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
        assert!(reject.is_fast() && Message::HaveAll.is_fast());
        assert!(!Message::Have(1).is_fast() && !Message::Port(1).is_fast());
        // Each with one byte too many and one too few.
        for (id, len) in [(13u8, 4usize), (14, 0), (15, 0), (16, 12), (17, 4)] {
            for wrong in [len + 1, len.wrapping_sub(1)] {
                if wrong > 64 {
                    continue;
                }
                let mut frame = ((1 + wrong) as u32).to_be_bytes().to_vec();
                frame.push(id);
                frame.extend(std::iter::repeat(0).take(wrong));
                assert_eq!(
                    decode(&frame, 100),
                    Err(WireError::BadLength {
                        id,
                        len: wrong,
                        expected: len
                    }),
                    "id {id} with {wrong} bytes"
                );
            }
        }
    }

    #[test]
    fn unknown_ids_are_skipped_and_limit_follows_piece_count() {
        assert_eq!(
            decode(&[0, 0, 0, 3, 20, 1, 2], 100),
            Ok(Some((
                Message::Extended {
                    id: 1,
                    payload: &[2]
                },
                7
            )))
        );
        // Past the fast extension's ids: skipped.
        assert_eq!(
            decode(&[0, 0, 0, 3, 18, 1, 2], 100),
            Ok(Some((Message::Unknown { id: 18, len: 2 }, 7)))
        );
        assert_eq!(max_message_len(10), 9 + 16384 + 1024);
        assert_eq!(max_message_len(8 * 20_000), 20_001);
    }
}
