//! KRPC, the DHT's messages (BEP 5): one bencoded dictionary per UDP datagram, a query
//! (`y` = `q`), a response (`r`) or an error (`e`), matched by the transaction id `t`.
//!
//! Queries: `ping`, `find_node`, `get_peers`, `announce_peer` (with `implied_port`) and
//! BEP 51's `sample_infohashes`; BEP 32's `want` and `nodes6`, BEP 42's `ip` and BEP 43's
//! `ro` flag. [`Message::parse`] checks every length against the limits below before it
//! allocates and names the first problem in a [`ParseError`]; a query that fails to parse
//! can still be answered ([`ParseError::reply`]). [`Message::encode`] writes canonical
//! bencode (keys sorted) and never writes what the parser would refuse: lists are cut to
//! the same limits.
//!
//! A response does not say which query it answers, so [`Response`] has every field a
//! response may carry; the caller knows from the transaction what to expect.
//!
//! What the node acts on must be well formed or the message is refused; what is only
//! informative (`v`, `ip`, `ro` given as something other than an integer) is dropped
//! when malformed, as BEP 10 asks for its handshake.

mod encode;
mod parse;
#[cfg(test)]
mod tests;

pub use parse::{ParseError, ParseErrorKind};

use super::id::NodeId;
use crate::bencode::Limits;
use crate::core::{compact, InfoHash};
use std::fmt;
use std::net::SocketAddr;

/// Largest datagram parsed; anything longer is refused before it is decoded. An Ethernet
/// MTU carries 1,472 bytes of UDP payload; the slack is for fragmented datagrams, and the
/// largest message [`Message::encode`] can write fits.
pub const MAX_DATAGRAM: usize = 8192;
/// Longest transaction id (`t`) accepted; clients use 2 to 4 bytes.
pub const MAX_TRANSACTION: usize = 16;
/// Longest token accepted (libtorrent's are 4 bytes, others' up to 20).
pub const MAX_TOKEN: usize = 64;
/// Longest client version (`v`) kept; a longer one is dropped (clients send 4 bytes).
pub const MAX_VERSION: usize = 16;
/// Most nodes accepted in `nodes`, and as many in `nodes6`. Clients send K = 8.
pub const MAX_NODES: usize = 32;
/// Most peers accepted in `values` (libtorrent sends at most 100; 184 IPv4 peers fill a
/// 1,500-byte datagram).
pub const MAX_VALUES: usize = 200;
/// Most info hashes accepted in `samples` (BEP 51: as many as fit a datagram, about 70).
pub const MAX_SAMPLES: usize = 80;
/// Largest `interval` of a `sample_infohashes` response, in seconds (BEP 51: 6 hours).
pub const MAX_INTERVAL: u32 = 21_600;
/// Most items read from a `want` list.
pub const MAX_WANT: usize = 8;
/// Longest error message kept, in bytes of UTF-8; a longer one is cut.
pub const MAX_ERROR_MESSAGE: usize = 256;
/// Bytes of a compact IPv4 node (BEP 5: id, address, port).
pub const COMPACT_NODE_V4: usize = 26;
/// Bytes of a compact IPv6 node (BEP 32).
pub const COMPACT_NODE_V6: usize = 38;
/// Bencode limits for one KRPC message: shallow and small (libtorrent uses depth 10 and
/// 500 items).
pub const LIMITS: Limits = Limits {
    max_depth: 8,
    max_values: 1024,
};

/// KRPC error codes (BEP 5).
pub mod code {
    /// Generic error.
    pub const GENERIC: i64 = 201;
    /// Server error.
    pub const SERVER: i64 = 202;
    /// Protocol error: a malformed packet, invalid arguments or a bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// A byte string of at most `N` bytes (`N` < 256), stored inline: transaction ids, tokens,
/// client versions. Copying it allocates nothing.
#[derive(Clone, Copy)]
pub struct ShortBytes<const N: usize> {
    len: u8,
    buf: [u8; N],
}

/// A transaction id: chosen by the querier, echoed by the response.
pub type TransactionId = ShortBytes<MAX_TRANSACTION>;
/// A `get_peers` token, presented again in `announce_peer`.
pub type Token = ShortBytes<MAX_TOKEN>;
/// A client version (`v`): two letters naming the client and two of version, usually.
pub type Version = ShortBytes<MAX_VERSION>;

impl<const N: usize> ShortBytes<N> {
    /// `bytes`, if they are at most `N` (and at most 255).
    pub fn new(bytes: &[u8]) -> Option<ShortBytes<N>> {
        let len = u8::try_from(bytes.len())
            .ok()
            .filter(|&l| usize::from(l) <= N)?;
        let mut buf = [0u8; N];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(ShortBytes { len, buf })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl<const N: usize> PartialEq for ShortBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for ShortBytes<N> {}

impl<const N: usize> std::hash::Hash for ShortBytes<N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl<const N: usize> fmt::Debug for ShortBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A node's id and UDP address: one entry of `nodes` (26 bytes) or `nodes6` (38 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: SocketAddr,
}

impl NodeInfo {
    /// Appends the compact form: the id, then the address and port (BEP 5, BEP 32).
    pub fn write_compact(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        compact::push(out, self.addr);
    }

    /// The nodes of a compact list of one family. A trailing partial entry is ignored
    /// ([`Message::parse`] refuses lists that have one).
    pub fn read_compact(list: &[u8], v6: bool) -> impl Iterator<Item = NodeInfo> + '_ {
        let size = if v6 { COMPACT_NODE_V6 } else { COMPACT_NODE_V4 };
        list.chunks_exact(size).filter_map(move |entry| {
            let id = NodeId::from_bytes(&entry[..20])?;
            let addr = compact::addrs(&entry[20..], v6).next()?;
            Some(NodeInfo { id, addr })
        })
    }
}

/// Which address families a querier wants nodes of (BEP 32 `want`: `n4`, `n6`). Neither
/// set means the querier did not say: answer with the family the query came over.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Want {
    pub v4: bool,
    pub v6: bool,
}

/// One KRPC message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    /// `t`: the querier's transaction id, echoed in the response or error.
    pub transaction: TransactionId,
    /// `v`: the sender's client version, if it gave a short one.
    pub version: Option<Version>,
    /// `ip` (BEP 42): the querier's address as the responder sees it. Responses and
    /// errors carry it; it tells us our external address. Never trusted alone.
    pub ip: Option<SocketAddr>,
    /// What the message says.
    pub body: Body,
}

/// A query, a response or an error.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
    Query(Query),
    Response(Response),
    Error(RemoteError),
}

/// A query (`y` = `q`): the querier's id, its read-only flag and the method called.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Query {
    /// The querier's node id (`a.id`).
    pub id: NodeId,
    /// `ro` (BEP 43): the querier answers no queries; never add it to a routing table.
    pub read_only: bool,
    /// The method and its arguments.
    pub method: Method,
}

/// The query methods we speak, with their arguments (besides `id`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Method {
    /// `ping`.
    Ping,
    /// `find_node`: the nodes closest to `target`.
    FindNode { target: NodeId, want: Want },
    /// `get_peers`: peers of `info_hash`, or else the nodes closest to it; and a token.
    GetPeers { info_hash: InfoHash, want: Want },
    /// `announce_peer`: the querier is a peer of `info_hash` on `port`, or on the port the
    /// query came from when `implied_port` is set (then `port` may be 0). The token is one
    /// we gave it in a `get_peers` response. Port 0 is the node's to refuse.
    AnnouncePeer {
        info_hash: InfoHash,
        port: u16,
        implied_port: bool,
        token: Token,
    },
    /// `sample_infohashes` (BEP 51): a sample of the info hashes we store, and the nodes
    /// closest to `target`.
    SampleInfohashes { target: NodeId, want: Want },
}

impl Method {
    /// The method's name on the wire (`q`).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Ping => "ping",
            Method::FindNode { .. } => "find_node",
            Method::GetPeers { .. } => "get_peers",
            Method::AnnouncePeer { .. } => "announce_peer",
            Method::SampleInfohashes { .. } => "sample_infohashes",
        }
    }
}

/// A response (`y` = `r`): every field any of our queries' responses may carry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Response {
    /// The responder's node id (`r.id`).
    pub id: NodeId,
    /// `nodes`: IPv4 nodes, at most [`MAX_NODES`] (others are skipped when encoding).
    pub nodes: Vec<NodeInfo>,
    /// `nodes6` (BEP 32): IPv6 nodes, at most [`MAX_NODES`].
    pub nodes6: Vec<NodeInfo>,
    /// `values`: peers of the info hash asked for, either family, at most [`MAX_VALUES`].
    pub values: Vec<SocketAddr>,
    /// `token`, to present in an `announce_peer` to this node.
    pub token: Option<Token>,
    /// `samples`, `interval`, `num` (BEP 51).
    pub samples: Option<Samples>,
}

impl Response {
    /// A response carrying only the responder's id (the answer to `ping` and
    /// `announce_peer`); fill the other fields for the other methods.
    pub fn new(id: NodeId) -> Response {
        Response {
            id,
            nodes: Vec::new(),
            nodes6: Vec::new(),
            values: Vec::new(),
            token: None,
            samples: None,
        }
    }
}

/// A `sample_infohashes` answer (BEP 51).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Samples {
    /// Seconds before asking this node again, at most [`MAX_INTERVAL`].
    pub interval: u32,
    /// How many info hashes the node stores in all.
    pub num: u32,
    /// A sample of them, at most [`MAX_SAMPLES`].
    pub hashes: Vec<InfoHash>,
}

/// An error (`y` = `e`): a code (see [`code`]) and a message, at most
/// [`MAX_ERROR_MESSAGE`] bytes. The message is the sender's text: escape it
/// ([`crate::text::escape`]) before it reaches a terminal or a log.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RemoteError {
    pub code: i64,
    pub message: String,
}

impl Message {
    /// A query from node `id`.
    pub fn query(transaction: TransactionId, id: NodeId, method: Method) -> Message {
        Message {
            transaction,
            version: None,
            ip: None,
            body: Body::Query(Query {
                id,
                read_only: false,
                method,
            }),
        }
    }

    /// A response to the query with `transaction`, telling the querier it is at `ip`.
    pub fn response(transaction: TransactionId, ip: SocketAddr, response: Response) -> Message {
        Message {
            transaction,
            version: None,
            ip: Some(ip),
            body: Body::Response(response),
        }
    }

    /// An error answering the query with `transaction`.
    pub fn error(transaction: TransactionId, code: i64, message: &str) -> Message {
        Message {
            transaction,
            version: None,
            ip: None,
            body: Body::Error(RemoteError {
                code,
                message: message.to_owned(),
            }),
        }
    }
}
