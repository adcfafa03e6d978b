//! Answers to other nodes' queries. For now: `ping`, `find_node`, and `get_peers` with
//! the closest nodes (no peers, no token: announces are refused with error 203) until the
//! token and peer store land.

use crate::dht::id::NodeId;
use crate::dht::krpc::{code, Message, Method, Query, Response};
use crate::dht::routing::{RoutingTable, K};
use std::net::SocketAddr;
use std::time::Instant;

/// What answers queries.
pub(super) struct Server {}

impl Server {
    pub fn new(_seed: u64) -> Server {
        Server {}
    }

    /// The reply to `query` (from `from`, in `message`), if any.
    pub fn answer(
        &mut self,
        _now: Instant,
        from: SocketAddr,
        message: &Message,
        query: &Query,
        routing: &RoutingTable,
        own: NodeId,
    ) -> Option<Message> {
        let mut response = Response::new(own);
        let mut nodes_near = |target: &NodeId| {
            let nodes = routing.closest(target, K);
            if from.is_ipv4() {
                response.nodes = nodes;
            } else {
                response.nodes6 = nodes;
            }
        };
        match &query.method {
            Method::Ping => {}
            Method::FindNode { target, .. } | Method::SampleInfohashes { target, .. } => {
                nodes_near(target)
            }
            Method::GetPeers { info_hash, .. } => nodes_near(&NodeId::from(*info_hash)),
            Method::AnnouncePeer { .. } => {
                return Some(Message::error(
                    message.transaction,
                    code::PROTOCOL,
                    "bad token",
                ))
            }
        }
        Some(Message::response(message.transaction, from, response))
    }
}
