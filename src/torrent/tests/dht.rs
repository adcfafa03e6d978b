//! The BEP 5 `port` message on a connection.

use super::harness::{self, Got};
use super::*;
use crate::core::Geometry;
use crate::wire::{Handshake, Message, DHT_RESERVED_BIT, DHT_RESERVED_BYTE};
use std::time::Instant;

/// An engine whose DHT listens on 7000 (unless `private`), and a peer at 10.0.0.9 whose
/// handshake sets the DHT bit if `peer_dht`. Returns what the engine sent it.
fn connect(private: bool, peer_dht: bool) -> (Engine, crate::core::PeerKey, Vec<Got>) {
    let now = Instant::now();
    let config = TorrentConfig {
        peer_id: [1; 20],
        seed: 1,
        private,
        dht_port: Some(7000),
        ..TorrentConfig::default()
    };
    let geometry = Geometry::new(16384, 65536);
    let mut engine = Engine::new(now, harness::HASH, geometry, vec![[0; 20]; 4], config);
    engine.handle_checked(now, &crate::wire::Bitfield::repeat(false, 4));
    let key = engine
        .handle_connected(now, harness::addr(9), Direction::Incoming)
        .unwrap();
    let mut theirs = Handshake::new(harness::HASH, [9; 20]);
    if peer_dht {
        theirs.reserved[DHT_RESERVED_BYTE] |= DHT_RESERVED_BIT;
    }
    engine.handle_bytes(now, key, &theirs.encode());
    let mut sent = Vec::new();
    while let Some(a) = engine.poll_action() {
        if let Action::Send { bytes, .. } = a {
            sent.extend(bytes);
        }
    }
    let got = harness::parse(&sent, &mut true);
    (engine, key, got)
}

fn dht_nodes(engine: &mut Engine) -> Vec<std::net::SocketAddr> {
    let mut out = Vec::new();
    while let Some(a) = engine.poll_action() {
        if let Action::DhtNode { addr } = a {
            out.push(addr);
        }
    }
    out
}

#[test]
fn a_peer_with_a_dht_node_hears_our_port_and_its_port_makes_a_node_to_try() {
    let (mut engine, key, got) = connect(false, true);
    assert!(got.contains(&Got::Port(7000)), "{got:?}");
    let now = Instant::now();
    let mut bytes = Vec::new();
    Message::Port(9000).encode(&mut bytes);
    Message::Port(9001).encode(&mut bytes);
    engine.handle_bytes(now, key, &bytes);
    assert_eq!(
        dht_nodes(&mut engine),
        vec!["10.0.0.9:9000".parse().unwrap()],
        "one node per connection"
    );
}

#[test]
fn no_port_for_a_peer_without_a_dht_node_nor_for_a_private_torrent() {
    let (_, _, got) = connect(false, false);
    assert!(!got.iter().any(|g| matches!(g, Got::Port(_))), "{got:?}");
    let (mut engine, key, got) = connect(true, true);
    assert!(!got.iter().any(|g| matches!(g, Got::Port(_))), "{got:?}");
    let mut bytes = Vec::new();
    Message::Port(9000).encode(&mut bytes);
    engine.handle_bytes(Instant::now(), key, &bytes);
    assert!(dht_nodes(&mut engine).is_empty());
}
