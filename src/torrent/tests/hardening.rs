//! Attacks on the engine from issue 11: borrowed peer ids, liars whose blocks are still in
//! flight when they are banned, and idle peers that would hold every slot.

use super::harness::{self, addr, full, Got, Scripted, B};
use super::*;
use crate::core::PeerKey;
use crate::wire::{Bitfield, Handshake};

/// Connects a scripted peer at `addr(n)` with peer id `id`, holding `bits`. Returns its
/// key, or the reason the engine closed it.
fn connect_as(
    p: &mut Scripted,
    n: usize,
    id: [u8; 20],
    bits: Option<&Bitfield>,
) -> Result<PeerKey, DisconnectReason> {
    let key = p
        .engine
        .handle_connected(p.now, addr(n), Direction::Incoming)?;
    let mut bytes = Handshake::new(harness::HASH, id).encode().to_vec();
    if let Some(bits) = bits {
        Message::Bitfield(bits.as_raw_slice()).encode(&mut bytes);
    }
    p.engine.handle_bytes(p.now, key, &bytes);
    p.received();
    match closed(p, key) {
        Some(reason) => Err(reason),
        None => Ok(key),
    }
}

/// The reason the engine closed `key`, if it did.
fn closed(p: &Scripted, key: PeerKey) -> Option<DisconnectReason> {
    p.actions.iter().find_map(|a| match a {
        Action::Close { peer, reason, .. } if *peer == key => Some(reason.clone()),
        _ => None,
    })
}

/// Feeds one message from `key`.
fn send_from(p: &mut Scripted, key: PeerKey, m: Message) {
    let mut bytes = Vec::new();
    m.encode(&mut bytes);
    p.engine.handle_bytes(p.now, key, &bytes);
}

/// Sends `block`'s data from `key`, corrupted if `bad`.
fn block_from(p: &mut Scripted, key: PeerKey, block: Block, bad: bool) {
    let at = (u64::from(block.piece) * p.engine.geometry().piece_length + u64::from(block.offset))
        as usize;
    let mut data = p.original[at..at + block.len as usize].to_vec();
    if bad {
        data[0] ^= 1;
    }
    send_from(
        p,
        key,
        Message::Piece {
            piece: block.piece,
            offset: block.offset,
            data: &data,
        },
    );
}

/// `key` answers every request the engine sends it, honestly, until the torrent is
/// complete (or `rounds` pass).
fn serve_until_complete(p: &mut Scripted, key: PeerKey, rounds: usize) {
    for _ in 0..rounds {
        p.received();
        let mut bytes = Vec::new();
        p.actions.retain(|a| match a {
            Action::Send { peer, bytes: b } if *peer == key => {
                bytes.extend_from_slice(b);
                false
            }
            _ => true,
        });
        let asked = Scripted::requests(&harness::parse(&bytes, &mut true));
        for b in asked {
            block_from(p, key, b, false);
        }
        if p.engine.picker.is_complete() {
            return;
        }
        p.advance(Duration::from_secs(1));
    }
}

/// A torrent of 16 pieces of 2 blocks.
pub(super) const SIZE: usize = 16 * 2 * B as usize;
pub(super) const PIECE: usize = 2 * B as usize;

#[test]
fn a_borrowed_peer_id_gets_the_honest_peer_neither_refused_nor_banned() {
    // The scripted peer at 10.0.0.9 (id [9; 20]) holds everything and lies; an honest seed
    // at another address shows up with the same id.
    let mut p = Scripted::new(SIZE, PIECE, false, true);
    let pieces = p.engine.geometry().pieces as usize;
    let honest = connect_as(&mut p, 5, [9; 20], Some(&full(pieces)))
        .expect("the same id from another address is another peer");
    // Three pieces, each sent wrong and alone by the impostor: it is banned.
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    for b in asked.iter().filter(|b| b.piece < 3) {
        p.send_block(*b, true);
    }
    p.received();
    assert_eq!(p.closed(), Some(&DisconnectReason::SentBadData));
    assert_eq!(closed(&p, honest), None, "the honest peer stays");
    assert!(!p.engine.bans.is_banned(addr(5)));
    send_from(&mut p, honest, Message::Unchoke);
    serve_until_complete(&mut p, honest, 60);
    assert!(p.engine.picker.is_complete());
    assert_eq!(p.engine.stats().banned, 1);
    // A later connection with that id, from the honest address, is welcome.
    assert!(connect_as(&mut p, 6, [9; 20], None).is_ok());
}

#[test]
fn a_second_connection_from_the_same_address_and_id_is_a_duplicate() {
    let mut p = Scripted::new(SIZE, PIECE, false, true);
    let other_port = SocketAddr::new(addr(9).ip(), 7777);
    let key = p
        .engine
        .handle_connected(p.now, other_port, Direction::Incoming)
        .unwrap();
    p.engine
        .handle_bytes(p.now, key, &Handshake::new(harness::HASH, [9; 20]).encode());
    p.received();
    assert_eq!(closed(&p, key), Some(DisconnectReason::DuplicatePeerId));
}

#[test]
fn blocks_from_a_peer_are_dropped_once_it_is_banned() {
    // The liar sends the first block of eight pieces, then completes six of them; three
    // fail and ban it while the other three wait for their hash check. None of its other
    // blocks may be used: no more hash failures, and the honest peers never shared a piece
    // with it (so nobody honest is put on parole).
    let mut p = Scripted::new(SIZE, PIECE, false, true);
    let pieces = p.engine.geometry().pieces as usize;
    let honest = connect_as(&mut p, 5, [5; 20], Some(&full(pieces))).unwrap();
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    let started: Vec<u32> = {
        let mut v: Vec<u32> = asked.iter().map(|b| b.piece).collect();
        v.dedup();
        v.truncate(8);
        v
    };
    assert_eq!(started.len(), 8, "the liar was asked for {asked:?}");
    for b in asked
        .iter()
        .filter(|b| b.offset == 0 && started.contains(&b.piece))
    {
        p.send_block(*b, true);
    }
    for b in asked
        .iter()
        .filter(|b| b.offset != 0 && started[..6].contains(&b.piece))
    {
        p.send_block(*b, true);
    }
    p.received();
    assert_eq!(p.closed(), Some(&DisconnectReason::SentBadData));
    send_from(&mut p, honest, Message::Unchoke);
    serve_until_complete(&mut p, honest, 60);
    let stats = p.engine.stats();
    assert!(stats.complete);
    assert_eq!(stats.hash_failures, u64::from(bans::MAX_STRIKES));
    assert!(!p.engine.bans.on_parole(bans::BanKey::of(addr(5))));
}

fn small(max_peers: usize) -> TorrentConfig {
    TorrentConfig {
        peer_id: [1; 20],
        seed: 1,
        max_peers,
        ..TorrentConfig::default()
    }
}

#[test]
fn idle_peers_make_room_for_a_newcomer() {
    // A seed with 4 slots, all taken by peers that only send keep-alives.
    let mut p = Scripted::with_config(SIZE, PIECE, true, false, small(4));
    let mut idle = vec![p.key];
    for n in 1..4 {
        idle.push(connect_as(&mut p, n, [n as u8 + 100; 20], None).unwrap());
    }
    p.advance(Duration::from_secs(30));
    for &k in &idle {
        send_from(&mut p, k, Message::KeepAlive);
    }
    let honest = connect_as(&mut p, 20, [20; 20], None).expect("room is made");
    let dropped: Vec<_> = idle.iter().filter_map(|k| closed(&p, *k)).collect();
    assert_eq!(dropped, [DisconnectReason::MadeRoom]);
    send_from(&mut p, honest, Message::Interested);
    p.received();
    let told: Vec<Got> = {
        let mut bytes = Vec::new();
        for a in &p.actions {
            if let Action::Send { peer, bytes: b } = a {
                if *peer == honest {
                    bytes.extend_from_slice(b);
                }
            }
        }
        harness::parse(&bytes, &mut true)
    };
    assert!(told.contains(&Got::Unchoke), "{told:?}");
}

#[test]
fn peers_that_exchange_data_keep_their_slots() {
    let mut p = Scripted::with_config(SIZE, PIECE, true, false, small(4));
    let mut busy = vec![p.key];
    for n in 1..4 {
        busy.push(connect_as(&mut p, n, [n as u8 + 100; 20], None).unwrap());
    }
    p.advance(Duration::from_secs(30));
    for &k in &busy {
        send_from(&mut p, k, Message::Interested);
        p.engine.handle_sent(p.now, k, u64::from(B));
    }
    // A newcomer in its first seconds is not dropped either.
    assert_eq!(
        connect_as(&mut p, 20, [20; 20], None),
        Err(DisconnectReason::TooManyPeers)
    );
}

#[test]
fn a_downloader_drops_an_idle_peer_to_dial_a_new_address() {
    // A hostile tracker's four addresses take every slot and say nothing useful.
    let mut p = Scripted::with_config(SIZE, PIECE, false, false, small(4));
    for n in 1..4 {
        connect_as(&mut p, n, [n as u8 + 100; 20], None).unwrap();
    }
    p.engine
        .handle_peers(p.now, PeerSource::Tracker, &[addr(30)]);
    p.received();
    let dialled = |p: &Scripted| {
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Dial { addr: a } if *a == addr(30)))
    };
    assert!(!dialled(&p), "no slot is free yet");
    p.advance(Duration::from_secs(5));
    p.received();
    assert!(
        !dialled(&p),
        "new peers get a few seconds to show what they have"
    );
    p.advance(Duration::from_secs(10));
    p.received();
    assert!(dialled(&p), "an idle peer made room");
    let made_room = p
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Close {
                    reason: DisconnectReason::MadeRoom,
                    ..
                }
            )
        })
        .count();
    assert_eq!(made_room, 1);
}
