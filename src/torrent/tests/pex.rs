//! Peer exchange (BEP 11) on an engine's connections.

use super::harness::{self, addr, Got, Scripted};
use super::*;
use crate::torrent::pex::OUR_UT_PEX;
use crate::wire::extension::ExtHandshake;
use crate::wire::pex::{Pex, MAX_PEX_PEERS};
use crate::wire::Handshake;
use std::net::SocketAddr;

fn engine(private: bool) -> Scripted {
    let config = TorrentConfig {
        peer_id: [1; 20],
        seed: 1,
        private,
        ..TorrentConfig::default()
    };
    Scripted::with_config(64 * 1024, 32 * 1024, false, true, config)
}

/// The extension handshake of a peer that speaks ut_pex (as id 3), listening on `port`.
fn hello(port: u16) -> Vec<u8> {
    let mut payload = Vec::new();
    ExtHandshake {
        ut_pex: Some(3),
        port: Some(port),
        ..ExtHandshake::default()
    }
    .encode(&mut payload);
    payload
}

/// Connects another peer at `addr(n)` (`direction`), which sends its extension handshake.
fn join(p: &mut Scripted, n: usize, direction: Direction, port: u16) -> crate::core::PeerKey {
    let key = p
        .engine
        .handle_connected(p.now, addr(n), direction)
        .unwrap();
    let mut bytes = Handshake::new(harness::HASH, [n as u8 + 100; 20])
        .encode()
        .to_vec();
    Message::Extended {
        id: 0,
        payload: &hello(port),
    }
    .encode(&mut bytes);
    assert_eq!(p.engine.handle_bytes(p.now, key, &bytes), bytes.len());
    key
}

/// PEX messages the scripted peer received since the last call.
fn pex_received(p: &mut Scripted) -> Vec<Pex> {
    p.received()
        .into_iter()
        .filter_map(|g| match g {
            Got::Extended(3, payload) => Some(Pex::parse(&payload).unwrap()),
            _ => None,
        })
        .collect()
}

fn send_pex(p: &mut Scripted, pex: &Pex) {
    let mut payload = Vec::new();
    pex.encode(&mut payload);
    p.send(Message::Extended {
        id: OUR_UT_PEX,
        payload: &payload,
    });
}

#[test]
fn peers_that_joined_and_left_are_told_once_a_minute() {
    let mut p = engine(false);
    p.send(Message::Extended {
        id: 0,
        payload: &hello(7000),
    });
    // One incoming peer that gave its port, one we dialled, one incoming that did not.
    let a = join(&mut p, 5, Direction::Incoming, 6000);
    p.engine
        .handle_peers(p.now, PeerSource::Tracker, &[addr(6)]);
    join(&mut p, 6, Direction::Outgoing, 0);
    join(&mut p, 7, Direction::Incoming, 0);
    assert!(pex_received(&mut p).is_empty());
    p.advance(Duration::from_secs(2));
    let first = pex_received(&mut p);
    assert_eq!(first.len(), 1, "{first:?}");
    let added: Vec<SocketAddr> = first[0].added.iter().map(|(a, _)| *a).collect();
    let five: SocketAddr = "10.0.0.5:6000".parse().unwrap();
    assert!(
        added.contains(&five) && added.contains(&addr(6)),
        "{added:?}"
    );
    assert_eq!(
        added.len(),
        2,
        "an address without a known port is not passed on"
    );
    // Nothing new: nothing sent. Then peer 5 leaves: dropped, a minute after the last.
    p.advance(Duration::from_secs(61));
    assert!(pex_received(&mut p).is_empty());
    p.engine.handle_closed(p.now, a);
    p.advance(Duration::from_secs(30));
    assert!(pex_received(&mut p).is_empty(), "at most one a minute");
    p.advance(Duration::from_secs(31));
    let second = pex_received(&mut p);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].dropped, [five]);
    assert!(second[0].added.is_empty());
}

#[test]
fn peers_learned_through_pex_are_dialled() {
    let mut p = engine(false);
    p.send(Message::Extended {
        id: 0,
        payload: &hello(7000),
    });
    p.received();
    let learned: SocketAddr = "10.0.0.40:6881".parse().unwrap();
    send_pex(
        &mut p,
        &Pex {
            added: vec![(learned, 0)],
            dropped: vec![],
        },
    );
    p.received();
    assert!(p
        .actions
        .iter()
        .any(|a| matches!(a, Action::Dial { addr } if *addr == learned)));
}

#[test]
fn a_peer_connected_to_us_is_not_dialled_at_the_address_pex_gives_for_it() {
    let mut p = engine(false);
    p.send(Message::Extended {
        id: 0,
        payload: &hello(7000),
    });
    // Peer 5 connected to us from an ephemeral port and said it listens on 6000.
    let five = join(&mut p, 5, Direction::Incoming, 6000);
    p.received();
    let listen: SocketAddr = "10.0.0.5:6000".parse().unwrap();
    send_pex(
        &mut p,
        &Pex {
            added: vec![(listen, 0)],
            dropped: vec![],
        },
    );
    p.received();
    let dials = |p: &Scripted| {
        p.actions
            .iter()
            .filter(|a| matches!(a, Action::Dial { addr } if *addr == listen))
            .count()
    };
    assert_eq!(dials(&p), 0, "already connected");
    // Once it leaves, its listen address may be dialled again (after the usual wait).
    p.engine.handle_closed(p.now, five);
    p.advance(Duration::from_secs(61));
    p.received();
    assert_eq!(dials(&p), 1);
}

#[test]
fn a_pex_flood_ends_the_connection() {
    let mut p = engine(false);
    p.send(Message::Extended {
        id: 0,
        payload: &hello(7000),
    });
    let one = Pex {
        added: vec![("10.0.0.41:6881".parse().unwrap(), 0)],
        dropped: vec![],
    };
    send_pex(&mut p, &one);
    p.advance(Duration::from_secs(5));
    send_pex(&mut p, &one);
    p.received();
    assert!(matches!(
        p.closed(),
        Some(DisconnectReason::BadExtension(_))
    ));

    // Too many addresses in one message.
    let mut p = engine(false);
    p.send(Message::Extended {
        id: 0,
        payload: &hello(7000),
    });
    let list = vec![1u8; 6 * (MAX_PEX_PEERS + 1)];
    let mut payload = format!("d5:added{}:", list.len()).into_bytes();
    payload.extend_from_slice(&list);
    payload.push(b'e');
    p.send(Message::Extended {
        id: OUR_UT_PEX,
        payload: &payload,
    });
    p.received();
    assert!(matches!(
        p.closed(),
        Some(DisconnectReason::BadExtension(_))
    ));
}

#[test]
fn a_private_torrent_never_exchanges_peers() {
    let mut p = engine(true);
    let hello_from_us = p
        .received()
        .into_iter()
        .find_map(|g| match g {
            Got::Extended(0, payload) => Some(ExtHandshake::parse(&payload).unwrap()),
            _ => None,
        })
        .unwrap();
    assert_eq!(hello_from_us.ut_pex, None);
    p.send(Message::Extended {
        id: 0,
        payload: &hello(7000),
    });
    join(&mut p, 5, Direction::Incoming, 6000);
    send_pex(
        &mut p,
        &Pex {
            added: vec![("10.0.0.42:6881".parse().unwrap(), 0)],
            dropped: vec![],
        },
    );
    p.advance(Duration::from_secs(61));
    assert!(pex_received(&mut p).is_empty());
    assert!(!p.actions.iter().any(|a| matches!(a, Action::Dial { .. })));
}
