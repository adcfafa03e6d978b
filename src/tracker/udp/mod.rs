//! The UDP tracker protocol (BEP 15, BEP 41): the packet codec both the tracker and the
//! client use, and the tracker's stateless connection ids. No I/O here.

pub mod connection_id;
pub mod endpoint;
pub mod exchange;
pub mod packet;

pub use connection_id::ConnectionIds;
pub use packet::{PacketError, Reply, Request};
