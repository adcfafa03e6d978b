//! Reading a KRPC datagram: the bencode is checked once ([`decode_lazy`]) and read in
//! place; every list is counted and every length checked before anything is allocated.

use super::{
    code, Body, Message, Method, NodeInfo, Query, RemoteError, Response, Samples, Token,
    TransactionId, Version, Want, COMPACT_NODE_V4, COMPACT_NODE_V6, LIMITS, MAX_DATAGRAM,
    MAX_ERROR_MESSAGE, MAX_INTERVAL, MAX_NODES, MAX_SAMPLES, MAX_TOKEN, MAX_TRANSACTION,
    MAX_VALUES, MAX_WANT,
};
use crate::bencode::{decode_lazy, DecodeError, Lazy};
use crate::core::{compact, InfoHash};
use crate::dht::id::NodeId;
use std::net::SocketAddr;
use thiserror::Error;

/// Why a datagram is not a KRPC message we accept, with what is known of it: a query that
/// fails to parse is answered with an error ([`ParseError::reply`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct ParseError {
    /// The first problem found.
    pub kind: ParseErrorKind,
    /// The transaction id, when the datagram had a valid one.
    pub transaction: Option<TransactionId>,
    /// Whether the datagram said it was a query (`y` = `q`).
    pub query: bool,
}

/// The ways a datagram can fail to be a KRPC message. Keys are named as on the wire;
/// text from the datagram is escaped and cut short.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("datagram of {0} bytes is over the {MAX_DATAGRAM}-byte limit")]
    TooLarge(usize),
    #[error("not bencode: {0}")]
    Bencode(DecodeError),
    #[error("not a bencoded dictionary")]
    NotDict,
    #[error("no `{0}` key")]
    Missing(&'static str),
    #[error("`{key}` is not {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("`{key}` is {len} bytes long, not {expected}")]
    BadLength {
        key: &'static str,
        len: usize,
        expected: &'static str,
    },
    #[error("`{key}` lists {count} entries, more than {max}")]
    TooMany {
        key: &'static str,
        count: usize,
        max: usize,
    },
    #[error("`{key}` is {value}, out of range")]
    OutOfRange { key: &'static str, value: i64 },
    #[error("message type (`y`) {0:?} is not q, r or e")]
    UnknownType(String),
    #[error("unknown query method {0:?}")]
    UnknownMethod(String),
}

use ParseErrorKind as K;

impl ParseError {
    /// The error message to send back, when the datagram was a query with a transaction
    /// id: 204 for an unknown method, 203 (protocol error) otherwise. Never for a
    /// response or an error, so two nodes cannot answer each other's errors forever.
    pub fn reply(&self) -> Option<Message> {
        let transaction = self.transaction.filter(|_| self.query)?;
        Some(match &self.kind {
            K::UnknownMethod(_) => {
                Message::error(transaction, code::METHOD_UNKNOWN, "unknown method")
            }
            kind => Message::error(transaction, code::PROTOCOL, &kind.to_string()),
        })
    }
}

impl Message {
    /// Parses one datagram. Unknown keys are ignored; a duplicated key counts once (the
    /// first); unsorted keys are accepted.
    pub fn parse(datagram: &[u8]) -> Result<Message, ParseError> {
        let fail = |kind, transaction, query| ParseError {
            kind,
            transaction,
            query,
        };
        if datagram.len() > MAX_DATAGRAM {
            return Err(fail(K::TooLarge(datagram.len()), None, false));
        }
        let doc = decode_lazy(datagram, LIMITS).map_err(|e| fail(K::Bencode(e), None, false))?;
        let entries = doc.root.dict().ok_or(fail(K::NotDict, None, false))?;
        let mut top = Slots::<9>::new(&["t", "y", "q", "a", "r", "e", "v", "ip", "ro"]);
        for (key, value) in entries {
            top.offer(key, value);
        }
        let [t, y, q, a, r, e, v, ip, ro] = top.values;
        let transaction = t
            .ok_or(K::Missing("t"))
            .and_then(|t| {
                let t = bytes(&t, "t")?;
                TransactionId::new(t).ok_or(K::BadLength {
                    key: "t",
                    len: t.len(),
                    expected: TRANSACTION_EXPECTED,
                })
            })
            .map_err(|kind| fail(kind, None, false))?;
        let y = y
            .ok_or(K::Missing("y"))
            .and_then(|y| bytes(&y, "y"))
            .map_err(|kind| fail(kind, Some(transaction), false))?;
        let body = match y {
            b"q" => query(q, a, ro).map(Body::Query),
            b"r" => r
                .ok_or(K::Missing("r"))
                .and_then(|r| response(&r))
                .map(Body::Response),
            b"e" => e
                .ok_or(K::Missing("e"))
                .and_then(|e| remote_error(&e))
                .map(Body::Error),
            other => Err(K::UnknownType(outside_text(other))),
        }
        .map_err(|kind| fail(kind, Some(transaction), y == b"q"))?;
        Ok(Message {
            transaction,
            // Informative fields: dropped when malformed.
            version: v.and_then(|v| v.as_bytes()).and_then(Version::new),
            ip: ip.and_then(|ip| ip.as_bytes()).and_then(compact_addr),
            body,
        })
    }
}

const TRANSACTION_EXPECTED: &str = "at most 16 bytes";
const TOKEN_EXPECTED: &str = "at most 64 bytes";
const _: () = assert!(MAX_TRANSACTION == 16 && MAX_TOKEN == 64);

/// Dictionary values by key, the first occurrence of each kept.
struct Slots<'a, const N: usize> {
    keys: &'static [&'static str; N],
    values: [Option<Lazy<'a>>; N],
}

impl<'a, const N: usize> Slots<'a, N> {
    fn new(keys: &'static [&'static str; N]) -> Self {
        Slots {
            keys,
            values: std::array::from_fn(|_| None),
        }
    }

    fn offer(&mut self, key: &[u8], value: Lazy<'a>) {
        if let Some(i) = self.keys.iter().position(|k| k.as_bytes() == key) {
            if self.values[i].is_none() {
                self.values[i] = Some(value);
            }
        }
    }

    fn read(
        keys: &'static [&'static str; N],
        dict: &Lazy<'a>,
        key: &'static str,
    ) -> Result<Self, K> {
        let entries = dict.dict().ok_or(K::WrongType {
            key,
            expected: "a dictionary",
        })?;
        let mut slots = Slots::new(keys);
        for (k, v) in entries {
            slots.offer(k, v);
        }
        Ok(slots)
    }
}

fn query(q: Option<Lazy<'_>>, a: Option<Lazy<'_>>, ro: Option<Lazy<'_>>) -> Result<Query, K> {
    let q = bytes(&q.ok_or(K::Missing("q"))?, "q")?;
    if !matches!(
        q,
        b"ping" | b"find_node" | b"get_peers" | b"announce_peer" | b"sample_infohashes"
    ) {
        return Err(K::UnknownMethod(outside_text(q)));
    }
    let a = a.ok_or(K::Missing("a"))?;
    let args = Slots::<7>::read(
        &[
            "id",
            "target",
            "info_hash",
            "port",
            "implied_port",
            "token",
            "want",
        ],
        &a,
        "a",
    )?;
    let [id, target, info_hash, port, implied_port, token, want] = args.values;
    let id = node_id(&id.ok_or(K::Missing("id"))?, "id")?;
    let target = || node_id(&target.clone().ok_or(K::Missing("target"))?, "target");
    let info_hash = || {
        node_id(
            &info_hash.clone().ok_or(K::Missing("info_hash"))?,
            "info_hash",
        )
        .map(|id| InfoHash(id.0))
    };
    let want = || want.as_ref().map_or(Ok(Want::default()), read_want);
    let method = match q {
        b"ping" => Method::Ping,
        b"find_node" => Method::FindNode {
            target: target()?,
            want: want()?,
        },
        b"get_peers" => Method::GetPeers {
            info_hash: info_hash()?,
            want: want()?,
        },
        b"sample_infohashes" => Method::SampleInfohashes {
            target: target()?,
            want: want()?,
        },
        _ => {
            let implied_port = match &implied_port {
                Some(v) => int(v, "implied_port")? != 0,
                None => false,
            };
            let port = match (&port, implied_port) {
                (Some(p), _) => {
                    let p = int(p, "port")?;
                    u16::try_from(p).map_err(|_| K::OutOfRange {
                        key: "port",
                        value: p,
                    })?
                }
                (None, true) => 0,
                (None, false) => return Err(K::Missing("port")),
            };
            let token = bytes(&token.ok_or(K::Missing("token"))?, "token")?;
            Method::AnnouncePeer {
                info_hash: info_hash()?,
                port,
                implied_port,
                token: read_token(token)?,
            }
        }
    };
    Ok(Query {
        id,
        // BEP 43 says `ro` is 1; any non-zero integer counts.
        read_only: ro.and_then(|ro| ro.as_int()).is_some_and(|ro| ro != 0),
        method,
    })
}

fn response(r: &Lazy<'_>) -> Result<Response, K> {
    let slots = Slots::<8>::read(
        &[
            "id", "nodes", "nodes6", "values", "token", "samples", "interval", "num",
        ],
        r,
        "r",
    )?;
    let [id, nodes, nodes6, values, token, samples, interval, num] = slots.values;
    let mut out = Response::new(node_id(&id.ok_or(K::Missing("id"))?, "id")?);
    if let Some(nodes) = nodes {
        out.nodes = read_nodes(bytes(&nodes, "nodes")?, false)?;
    }
    if let Some(nodes6) = nodes6 {
        out.nodes6 = read_nodes(bytes(&nodes6, "nodes6")?, true)?;
    }
    if let Some(values) = values {
        out.values = read_values(&values)?;
    }
    if let Some(token) = token {
        out.token = Some(read_token(bytes(&token, "token")?)?);
    }
    if let Some(samples) = samples {
        let list = bytes(&samples, "samples")?;
        if list.len() % 20 != 0 {
            return Err(K::BadLength {
                key: "samples",
                len: list.len(),
                expected: "a multiple of 20",
            });
        }
        check_count("samples", list.len() / 20, MAX_SAMPLES)?;
        let interval = int(&interval.ok_or(K::Missing("interval"))?, "interval")?;
        let num = int(&num.ok_or(K::Missing("num"))?, "num")?;
        out.samples = Some(Samples {
            interval: in_range(interval, "interval", MAX_INTERVAL)?,
            num: in_range(num, "num", u32::MAX)?,
            hashes: list
                .chunks_exact(20)
                .filter_map(|h| NodeId::from_bytes(h).map(|id| InfoHash(id.0)))
                .collect(),
        });
    }
    Ok(out)
}

fn remote_error(e: &Lazy<'_>) -> Result<RemoteError, K> {
    const EXPECTED: &str = "a list of an error code and a message";
    let mut items = e.list().ok_or(K::WrongType {
        key: "e",
        expected: EXPECTED,
    })?;
    let code = items.next().and_then(|c| c.as_int()).ok_or(K::WrongType {
        key: "e",
        expected: EXPECTED,
    })?;
    let message = match items.next() {
        Some(m) => m.as_bytes().ok_or(K::WrongType {
            key: "e",
            expected: EXPECTED,
        })?,
        None => b"",
    };
    Ok(RemoteError {
        code,
        message: cut_message(&String::from_utf8_lossy(message)),
    })
}

/// `text` cut to at most [`MAX_ERROR_MESSAGE`] bytes at a character boundary.
pub(super) fn cut_message(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

fn bytes<'a>(v: &Lazy<'a>, key: &'static str) -> Result<&'a [u8], K> {
    v.as_bytes().ok_or(K::WrongType {
        key,
        expected: "a string",
    })
}

fn int(v: &Lazy<'_>, key: &'static str) -> Result<i64, K> {
    v.as_int().ok_or(K::WrongType {
        key,
        expected: "an integer",
    })
}

fn in_range(value: i64, key: &'static str, max: u32) -> Result<u32, K> {
    u32::try_from(value)
        .ok()
        .filter(|&v| v <= max)
        .ok_or(K::OutOfRange { key, value })
}

fn node_id(v: &Lazy<'_>, key: &'static str) -> Result<NodeId, K> {
    let b = bytes(v, key)?;
    NodeId::from_bytes(b).ok_or(K::BadLength {
        key,
        len: b.len(),
        expected: "20 bytes",
    })
}

fn read_token(b: &[u8]) -> Result<Token, K> {
    Token::new(b).ok_or(K::BadLength {
        key: "token",
        len: b.len(),
        expected: TOKEN_EXPECTED,
    })
}

fn check_count(key: &'static str, count: usize, max: usize) -> Result<(), K> {
    if count > max {
        return Err(K::TooMany { key, count, max });
    }
    Ok(())
}

fn read_nodes(list: &[u8], v6: bool) -> Result<Vec<NodeInfo>, K> {
    let (key, size, expected) = if v6 {
        ("nodes6", COMPACT_NODE_V6, "a multiple of 38")
    } else {
        ("nodes", COMPACT_NODE_V4, "a multiple of 26")
    };
    if list.len() % size != 0 {
        return Err(K::BadLength {
            key,
            len: list.len(),
            expected,
        });
    }
    check_count(key, list.len() / size, MAX_NODES)?;
    Ok(NodeInfo::read_compact(list, v6).collect())
}

fn read_values(values: &Lazy<'_>) -> Result<Vec<SocketAddr>, K> {
    let items = values.list().ok_or(K::WrongType {
        key: "values",
        expected: "a list",
    })?;
    let count = items.clone().count();
    check_count("values", count, MAX_VALUES)?;
    let mut out = Vec::with_capacity(count);
    for item in items {
        let b = bytes(&item, "values")?;
        out.push(compact_addr(b).ok_or(K::BadLength {
            key: "values",
            len: b.len(),
            expected: "6 or 18 bytes",
        })?);
    }
    Ok(out)
}

fn read_want(want: &Lazy<'_>) -> Result<Want, K> {
    let items = want.list().ok_or(K::WrongType {
        key: "want",
        expected: "a list",
    })?;
    check_count("want", items.clone().count(), MAX_WANT)?;
    let mut out = Want::default();
    for item in items {
        match item.as_bytes() {
            Some(b"n4") => out.v4 = true,
            Some(b"n6") => out.v6 = true,
            // Other families or names may come: ignore them.
            _ => {}
        }
    }
    Ok(out)
}

/// A compact address of either family (6 or 18 bytes).
fn compact_addr(b: &[u8]) -> Option<SocketAddr> {
    match b.len() {
        6 => compact::addrs(b, false).next(),
        18 => compact::addrs(b, true).next(),
        _ => None,
    }
}

/// Outside text for an error: at most 32 bytes, lossy UTF-8, escaped.
fn outside_text(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(&b[..b.len().min(32)]);
    crate::text::escape(&text).into_owned()
}
