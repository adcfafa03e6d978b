//! The UDP tracker protocol (BEP 15, BEP 41): the packet codec both the tracker and the
//! client use; for the tracker, its stateless connection ids and its front end (one
//! datagram in, at most one out); for the client, the announce exchange. None of these
//! do I/O: the tracker's socket loop lives in `listener`, and the client's shared socket
//! in `endpoint`.

pub(super) mod batch;
pub mod connection_id;
pub mod endpoint;
pub mod exchange;
pub mod front;
pub(super) mod listener;
pub mod packet;

pub use connection_id::ConnectionIds;
pub use front::{UdpCounts, UdpFront};
pub use packet::{PacketError, Reply, Request};
