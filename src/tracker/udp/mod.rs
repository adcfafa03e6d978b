//! The UDP tracker protocol (BEP 15): the packet codec both the tracker and the client
//! use, the tracker's stateless connection ids and its front end (one datagram in, at most
//! one out). No I/O here: the server's socket loop lives in `listener`.

pub mod connection_id;
pub mod front;
pub(super) mod listener;
pub mod packet;

pub use connection_id::ConnectionIds;
pub use front::{UdpCounts, UdpFront};
pub use packet::{PacketError, Reply, Request};
