//! The BEP 5 `port` message: peers that set the DHT bit in their handshake hear which UDP
//! port our DHT node listens on, and a peer's own `port` message makes its node worth
//! trying ([`Action::DhtNode`], once per connection). Never for private torrents.

use super::{Action, Engine};
use crate::core::PeerKey;
use crate::wire::{supports_dht, Message};
use std::net::SocketAddr;

impl Engine {
    /// After the handshake: our DHT port to a peer that runs a node too.
    pub(super) fn send_dht_port(&mut self, key: PeerKey, theirs: &[u8; 8]) {
        let Some(port) = self.config.dht_port.filter(|_| self.dht_enabled()) else {
            return;
        };
        if supports_dht(theirs) {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.send(&mut self.dirty, Message::Port(port));
            }
        }
    }

    /// A peer's `port` message: its DHT node, at its address and that port.
    pub(super) fn on_dht_port(&mut self, key: PeerKey, port: u16) {
        if !self.dht_enabled() || port == 0 {
            return;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if std::mem::replace(&mut peer.dht_port_seen, true) {
            return;
        }
        self.actions.push_back(Action::DhtNode {
            addr: SocketAddr::new(peer.addr.ip(), port),
        });
    }
}
