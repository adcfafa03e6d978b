//! The UDP tracker protocol's packets (BEP 15, with BEP 41 options): requests and replies,
//! both directions, so the tracker and the client share one codec. No I/O.
//!
//! Every length is checked before it is read; nothing is allocated from a length the
//! sender chose. Integers are big-endian.

use super::super::query::{Announce, Event};
use crate::core::InfoHash;
use thiserror::Error;

/// The magic number that opens a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Size of a connect request and of its reply.
pub const CONNECT_LEN: usize = 16;
/// Size of an announce request without options.
pub const ANNOUNCE_LEN: usize = 98;
/// Most info hashes answered in one scrape: what fits a reply in a 1,500-byte datagram
/// (8 bytes of header and 12 per hash, as opentracker and aquatic answer).
pub const MAX_SCRAPE: usize = 74;
/// Longest datagram read or written.
pub const MAX_PACKET: usize = 1500;
/// Longest error message sent.
const MAX_MESSAGE: usize = 256;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// Why bytes are not a packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("{got} bytes is too short for a {what} (at least {need})")]
    TooShort {
        what: &'static str,
        need: usize,
        got: usize,
    },
    #[error("not a UDP tracker connect request (wrong protocol id)")]
    NotTracker,
    #[error("unknown action {0}")]
    UnknownAction(u32),
    #[error("unknown announce event {0}")]
    UnknownEvent(u32),
    #[error("a scrape must list whole 20-byte info hashes, at least one")]
    BadScrape,
}

/// A request to the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Connect {
        transaction: u32,
    },
    Announce {
        connection: u64,
        transaction: u32,
        /// The request as the swarm takes it (`left` always given, compact peers).
        announce: Announce,
        /// The client's key (to recognise it across address changes; unused so far).
        key: u32,
        /// BEP 41 URL data (the path and query of the tracker URL), joined.
        url_data: Vec<u8>,
    },
    Scrape {
        connection: u64,
        transaction: u32,
        /// At most [`MAX_SCRAPE`] hashes (any more are not answered).
        hashes: Vec<InfoHash>,
    },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("length checked"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("length checked"))
}

fn need(what: &'static str, b: &[u8], need: usize) -> Result<(), PacketError> {
    if b.len() < need {
        return Err(PacketError::TooShort {
            what,
            need,
            got: b.len(),
        });
    }
    Ok(())
}

impl Request {
    /// Parses a request datagram.
    pub fn parse(b: &[u8]) -> Result<Request, PacketError> {
        need("request", b, CONNECT_LEN)?;
        let head = u64_at(b, 0);
        let action = u32_at(b, 8);
        let transaction = u32_at(b, 12);
        match action {
            CONNECT if head == PROTOCOL_ID => Ok(Request::Connect { transaction }),
            CONNECT => Err(PacketError::NotTracker),
            ANNOUNCE => {
                need("announce", b, ANNOUNCE_LEN)?;
                let event = match u32_at(b, 80) {
                    0 => Event::None,
                    1 => Event::Completed,
                    2 => Event::Started,
                    3 => Event::Stopped,
                    other => return Err(PacketError::UnknownEvent(other)),
                };
                let numwant = u32_at(b, 92) as i32;
                let announce = Announce {
                    info_hash: InfoHash(b[16..36].try_into().expect("length checked")),
                    peer_id: b[36..56].try_into().expect("length checked"),
                    downloaded: u64_at(b, 56),
                    left: Some(u64_at(b, 64)),
                    uploaded: u64_at(b, 72),
                    event,
                    // The IP field (84..88) is ignored: the address is the datagram's.
                    numwant: (numwant >= 0).then_some(numwant as u32),
                    port: u16::from_be_bytes([b[96], b[97]]),
                    compact: true,
                    no_peer_id: true,
                };
                Ok(Request::Announce {
                    connection: head,
                    transaction,
                    announce,
                    key: u32_at(b, 88),
                    url_data: url_data(&b[ANNOUNCE_LEN..]),
                })
            }
            SCRAPE => {
                let list = &b[CONNECT_LEN..];
                if list.is_empty() || list.len() % 20 != 0 {
                    return Err(PacketError::BadScrape);
                }
                let hashes = list
                    .chunks_exact(20)
                    .take(MAX_SCRAPE)
                    .map(|h| InfoHash(h.try_into().expect("chunks of 20")))
                    .collect();
                Ok(Request::Scrape {
                    connection: head,
                    transaction,
                    hashes,
                })
            }
            other => Err(PacketError::UnknownAction(other)),
        }
    }
}

/// The URL data of BEP 41 options (unknown options skipped; a truncated one ends them).
fn url_data(mut options: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    while let Some((&kind, rest)) = options.split_first() {
        match kind {
            0 => break,
            1 => options = rest,
            _ => {
                let Some((&len, rest)) = rest.split_first() else {
                    break;
                };
                let Some(value) = rest.get(..len as usize) else {
                    break;
                };
                if kind == 2 {
                    data.extend_from_slice(value);
                }
                options = &rest[len as usize..];
            }
        }
    }
    data
}

/// Writes a connect reply.
pub fn connect_reply(out: &mut Vec<u8>, transaction: u32, connection: u64) {
    out.extend_from_slice(&CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&connection.to_be_bytes());
}

/// Writes the head of an announce reply; the compact peers (6 bytes each over IPv4, 18
/// over IPv6) follow, written by the caller.
pub fn announce_reply_head(
    out: &mut Vec<u8>,
    transaction: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
) {
    for n in [ANNOUNCE, transaction, interval, leechers, seeders] {
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Writes one scrape entry (after [`scrape_reply_head`]).
pub fn scrape_entry(out: &mut Vec<u8>, seeders: u32, completed: u32, leechers: u32) {
    for n in [seeders, completed, leechers] {
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Writes the head of a scrape reply.
pub fn scrape_reply_head(out: &mut Vec<u8>, transaction: u32) {
    out.extend_from_slice(&SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
}

/// Writes an error reply (the message cut to 256 bytes).
pub fn error_reply(out: &mut Vec<u8>, transaction: u32, message: &str) {
    out.extend_from_slice(&ERROR.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    let bytes = message.as_bytes();
    out.extend_from_slice(&bytes[..bytes.len().min(MAX_MESSAGE)]);
}

/// Writes a connect request.
pub fn connect_request(out: &mut Vec<u8>, transaction: u32) {
    out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
    out.extend_from_slice(&CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
}

/// What an announce request carries besides the connection and transaction ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest<'a> {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    pub key: u32,
    /// Peers wanted (`None`: the tracker's default).
    pub numwant: Option<u32>,
    pub port: u16,
    /// The tracker URL's path and query, sent as BEP 41 URL data (may be empty).
    pub url_data: &'a [u8],
}

/// Writes an announce request.
pub fn announce_request(
    out: &mut Vec<u8>,
    connection: u64,
    transaction: u32,
    a: &AnnounceRequest<'_>,
) {
    out.extend_from_slice(&connection.to_be_bytes());
    out.extend_from_slice(&ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&a.info_hash.0);
    out.extend_from_slice(&a.peer_id);
    out.extend_from_slice(&a.downloaded.to_be_bytes());
    out.extend_from_slice(&a.left.to_be_bytes());
    out.extend_from_slice(&a.uploaded.to_be_bytes());
    let event: u32 = match a.event {
        Event::None => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    };
    out.extend_from_slice(&event.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&a.key.to_be_bytes());
    let numwant = a.numwant.map_or(-1, |n| n.min(i32::MAX as u32) as i32);
    out.extend_from_slice(&numwant.to_be_bytes());
    out.extend_from_slice(&a.port.to_be_bytes());
    for chunk in a.url_data.chunks(255) {
        out.push(2);
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    if !a.url_data.is_empty() {
        out.push(0);
    }
}

/// Writes a scrape request (at most [`MAX_SCRAPE`] hashes are written).
pub fn scrape_request(out: &mut Vec<u8>, connection: u64, transaction: u32, hashes: &[InfoHash]) {
    out.extend_from_slice(&connection.to_be_bytes());
    out.extend_from_slice(&SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    for h in hashes.iter().take(MAX_SCRAPE) {
        out.extend_from_slice(&h.0);
    }
}

/// A reply from a tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    Connect {
        transaction: u32,
        connection: u64,
    },
    Announce {
        transaction: u32,
        interval: u32,
        leechers: u32,
        seeders: u32,
        /// Compact peers: read with [`peers`].
        peers: &'a [u8],
    },
    Scrape {
        transaction: u32,
        /// (seeders, completed, leechers) per hash asked, in order.
        entries: Vec<(u32, u32, u32)>,
    },
    Error {
        transaction: u32,
        message: &'a [u8],
    },
}

impl Reply<'_> {
    /// The transaction id it answers.
    pub fn transaction(&self) -> u32 {
        match self {
            Reply::Connect { transaction, .. }
            | Reply::Announce { transaction, .. }
            | Reply::Scrape { transaction, .. }
            | Reply::Error { transaction, .. } => *transaction,
        }
    }

    /// Parses a reply datagram.
    pub fn parse(b: &[u8]) -> Result<Reply<'_>, PacketError> {
        need("reply", b, 8)?;
        let action = u32_at(b, 0);
        let transaction = u32_at(b, 4);
        match action {
            CONNECT => {
                need("connect reply", b, CONNECT_LEN)?;
                Ok(Reply::Connect {
                    transaction,
                    connection: u64_at(b, 8),
                })
            }
            ANNOUNCE => {
                need("announce reply", b, 20)?;
                Ok(Reply::Announce {
                    transaction,
                    interval: u32_at(b, 8),
                    leechers: u32_at(b, 12),
                    seeders: u32_at(b, 16),
                    peers: &b[20..],
                })
            }
            SCRAPE => Ok(Reply::Scrape {
                transaction,
                entries: b[8..]
                    .chunks_exact(12)
                    .map(|e| (u32_at(e, 0), u32_at(e, 4), u32_at(e, 8)))
                    .collect(),
            }),
            ERROR => Ok(Reply::Error {
                transaction,
                message: &b[8..],
            }),
            other => Err(PacketError::UnknownAction(other)),
        }
    }
}

/// The addresses in a compact peer list: 6 bytes each over IPv4, 18 over IPv6.
pub use crate::core::compact::addrs as peers;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AnnounceRequest<'static> {
        AnnounceRequest {
            info_hash: InfoHash([7; 20]),
            peer_id: *b"-BT0001-abcdefghijkl",
            downloaded: 1,
            left: 2,
            uploaded: 3,
            event: Event::Started,
            key: 99,
            numwant: Some(50),
            port: 6881,
            url_data: b"/announce?key=x",
        }
    }

    #[test]
    fn requests_round_trip() {
        let mut b = Vec::new();
        connect_request(&mut b, 5);
        assert_eq!(b.len(), CONNECT_LEN);
        assert_eq!(Request::parse(&b), Ok(Request::Connect { transaction: 5 }));

        b.clear();
        announce_request(&mut b, 0xdead, 6, &sample());
        let Ok(Request::Announce {
            connection,
            transaction,
            announce,
            key,
            url_data,
        }) = Request::parse(&b)
        else {
            panic!("not an announce")
        };
        assert_eq!((connection, transaction, key), (0xdead, 6, 99));
        assert_eq!(url_data, b"/announce?key=x");
        assert_eq!(announce.info_hash, InfoHash([7; 20]));
        assert_eq!(
            (announce.downloaded, announce.left, announce.uploaded),
            (1, Some(2), 3)
        );
        assert_eq!(
            (announce.event, announce.numwant, announce.port),
            (Event::Started, Some(50), 6881)
        );

        b.clear();
        let many: Vec<InfoHash> = (0..100u8).map(|i| InfoHash([i; 20])).collect();
        scrape_request(&mut b, 1, 2, &many);
        let Ok(Request::Scrape { hashes, .. }) = Request::parse(&b) else {
            panic!("not a scrape")
        };
        assert_eq!(hashes.len(), MAX_SCRAPE);
    }

    #[test]
    fn replies_round_trip() {
        let mut b = Vec::new();
        connect_reply(&mut b, 1, 42);
        assert_eq!(
            Reply::parse(&b),
            Ok(Reply::Connect {
                transaction: 1,
                connection: 42
            })
        );
        b.clear();
        announce_reply_head(&mut b, 2, 1800, 3, 4);
        b.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1]);
        let Ok(Reply::Announce { peers: list, .. }) = Reply::parse(&b) else {
            panic!()
        };
        assert_eq!(
            peers(list, false).collect::<Vec<_>>(),
            ["10.0.0.1:6881".parse::<std::net::SocketAddr>().unwrap()]
        );
        b.clear();
        error_reply(&mut b, 3, &"x".repeat(1000));
        let Ok(Reply::Error { message, .. }) = Reply::parse(&b) else {
            panic!()
        };
        assert_eq!(message.len(), 256);
    }

    #[test]
    fn bad_packets_are_errors_at_every_length() {
        let mut b = Vec::new();
        announce_request(&mut b, 1, 2, &sample());
        for len in 0..ANNOUNCE_LEN {
            assert!(Request::parse(&b[..len]).is_err(), "{len}");
        }
        let mut c = Vec::new();
        connect_request(&mut c, 1);
        c[0] ^= 1;
        assert_eq!(Request::parse(&c), Err(PacketError::NotTracker));
        let mut s = Vec::new();
        scrape_request(&mut s, 1, 2, &[InfoHash([1; 20])]);
        s.pop();
        assert_eq!(Request::parse(&s), Err(PacketError::BadScrape));
        b[80..84].copy_from_slice(&9u32.to_be_bytes());
        assert_eq!(Request::parse(&b), Err(PacketError::UnknownEvent(9)));
        b[8..12].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(Request::parse(&b), Err(PacketError::UnknownAction(7)));
    }

    #[test]
    fn options_unknown_and_truncated_are_skipped() {
        assert_eq!(
            url_data(&[1, 1, 9, 2, b'a', b'b', 2, 1, b'c', 0, 2, 1, b'z']),
            b"c"
        );
        assert_eq!(url_data(&[2, 2, b'a', b'b', 2, 5, b'c']), b"ab");
        assert_eq!(url_data(&[2]), b"");
    }
}
