//! The Mainline DHT (BEP 5, with BEP 32, 42, 43 and 51): node ids, KRPC messages and the
//! routing table.
//!
//! This module owns the DHT's protocol logic, sans-IO: bytes and events in, bytes and
//! decisions out. It never opens a socket, never reads the clock (every function that
//! needs the time takes an `Instant`) and never spawns a task; the session moves the
//! datagrams. Everything it keeps from the network is bounded.

pub mod id;
pub mod krpc;
pub mod routing;

pub use id::{bep42_exempt, Distance, NodeId, ID_BITS};
pub use krpc::{
    Body, Message, Method, NodeInfo, ParseError, ParseErrorKind, Query, RemoteError, Response,
    Samples, Token, TransactionId, Want,
};
pub use routing::{Contact, Insert, Node, NodeState, Refusal, RoutingTable};
