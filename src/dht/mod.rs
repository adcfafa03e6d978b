//! The Mainline DHT (BEP 5, with BEP 32, 42, 43 and 51), sans-IO.
//!
//! This module owns the DHT's protocol logic: node ids and BEP 42 ([`id`]), the KRPC
//! messages and their limits ([`krpc`]), and the routing table ([`routing`]). Bytes and
//! events go in, bytes and decisions come out.
//!
//! Answering other nodes is [`responder`]'s: announce tokens ([`token`]), the peers
//! announced to us ([`store`]) and per-source query limits ([`ratelimit`]).
//!
//! It must never do I/O: no socket, no DNS, no file, no task, and no clock read (every
//! function that needs the time takes an `Instant`, so tests run on a fake clock). The
//! session owns the UDP socket and moves the datagrams. Everything kept from the network
//! is bounded, whatever arrives; nothing from outside is trusted alone (a node id, an
//! `ip` field): addresses are what counts.

pub mod external;
pub mod id;
pub mod krpc;
pub mod lookup;
pub mod node;
pub mod persist;
pub mod ratelimit;
pub mod responder;
pub mod routing;
pub mod store;
pub mod token;

pub use id::{bep42_exempt, Distance, NodeId, ID_BITS};
pub use krpc::{
    Body, Message, Method, NodeInfo, ParseError, ParseErrorKind, Query, RemoteError, Response,
    Samples, Token, TransactionId, Want,
};
pub use node::{Dht, DhtConfig, DhtEvent, DhtStats};
pub use routing::{Config, Contact, Health, Insert, Node, NodeState, Refusal, RoutingTable, K};
