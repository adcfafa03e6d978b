//! A node's state across restarts: its id and the nodes of its routing table, as a small
//! bencoded dictionary (`id`: 20 bytes, `nodes`: compact IPv4 nodes, `nodes6`: compact
//! IPv6 nodes). Loading checks every length and keeps at most [`MAX_SAVED`] nodes; they are
//! pinged at start and join the table when they answer (nothing loaded is trusted).

use super::id::NodeId;
use super::krpc::NodeInfo;
use crate::bencode::{decode_lazy, Limits, Writer};
use thiserror::Error;

/// Nodes kept in a saved state at most (a full table is 160 × 8).
pub const MAX_SAVED: usize = 2048;

/// What a saved state holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub id: NodeId,
    pub nodes: Vec<NodeInfo>,
}

/// Why a saved state could not be read.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("not a bencoded dictionary: {0}")]
    Bencode(String),
    #[error("no 20-byte `id`")]
    Id,
}

impl Saved {
    /// The bytes to write.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.nodes.len() * 38);
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for n in self.nodes.iter().take(MAX_SAVED) {
            n.write_compact(if n.addr.is_ipv4() { &mut v4 } else { &mut v6 });
        }
        let mut w = Writer(&mut out);
        w.begin_dict();
        w.key_bytes("id", &self.id.0);
        w.key_bytes("nodes", &v4);
        w.key_bytes("nodes6", &v6);
        w.end();
        out
    }

    /// Reads saved bytes; unusable entries are skipped.
    pub fn decode(bytes: &[u8]) -> Result<Saved, LoadError> {
        let limits = Limits {
            max_depth: 4,
            max_values: 16,
        };
        let doc = decode_lazy(bytes, limits).map_err(|e| LoadError::Bencode(e.to_string()))?;
        let root = doc.root;
        let id = root
            .get("id")
            .and_then(|v| v.as_bytes())
            .and_then(NodeId::from_bytes)
            .ok_or(LoadError::Id)?;
        let mut nodes = Vec::new();
        for (key, v6) in [("nodes", false), ("nodes6", true)] {
            if let Some(list) = root.get(key).and_then(|v| v.as_bytes()) {
                nodes.extend(NodeInfo::read_compact(list, v6));
            }
        }
        nodes.retain(|n| n.addr.port() != 0);
        nodes.truncate(MAX_SAVED);
        Ok(Saved { id, nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn a_saved_state_reads_back_and_garbage_is_refused() {
        let saved = Saved {
            id: NodeId([7; 20]),
            nodes: vec![
                NodeInfo {
                    id: NodeId([1; 20]),
                    addr: "10.0.0.1:6881".parse::<SocketAddr>().unwrap(),
                },
                NodeInfo {
                    id: NodeId([2; 20]),
                    addr: "[2001:db8::1]:6881".parse::<SocketAddr>().unwrap(),
                },
            ],
        };
        assert_eq!(Saved::decode(&saved.encode()).unwrap(), saved);
        assert!(Saved::decode(b"garbage").is_err());
        assert!(matches!(Saved::decode(b"d2:id3:abce"), Err(LoadError::Id)));
        // A truncated node list keeps the whole entries.
        let mut bytes = saved.encode();
        let cut = bytes.len() - 50;
        bytes.truncate(cut);
        assert!(Saved::decode(&bytes).is_err());
    }
}
