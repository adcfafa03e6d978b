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

const SIZE: usize = 16 * 2 * B as usize;
const PIECE: usize = 2 * B as usize;

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

/// Takes the engine's pending actions, failing the write of every verified piece.
/// Returns how many failed and the requests the scripted peer got meanwhile.
fn fail_writes(p: &mut Scripted) -> (usize, Vec<Block>) {
    let mut failed = 0;
    let mut bytes = Vec::new();
    while let Some(action) = p.engine.poll_action() {
        match action {
            Action::Verify { piece, data, .. } => {
                p.engine
                    .handle_write_failed(p.now, piece, data, "No space left on device".into());
                failed += 1;
            }
            Action::Send { peer, bytes: b } if peer == p.key => bytes.extend(b),
            _ => {}
        }
    }
    (
        failed,
        Scripted::requests(&harness::parse(&bytes, &mut false)),
    )
}

#[test]
fn a_failed_write_costs_the_piece_and_only_many_in_a_row_the_torrent() {
    let mut p = Scripted::new(SIZE, PIECE, false, true);
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    for piece in 0..disk::MAX_WRITE_ERRORS {
        for b in asked.iter().filter(|b| b.piece == piece) {
            p.send_block(*b, false);
        }
        assert_eq!(fail_writes(&mut p).0, 1);
        let stats = p.engine.stats();
        assert_eq!(stats.disk_errors, u64::from(piece) + 1);
        assert_eq!(stats.pieces_have, 0);
        if piece + 1 < disk::MAX_WRITE_ERRORS {
            assert_eq!(p.engine.state(), TorrentState::Downloading);
        }
    }
    assert_eq!(p.engine.state(), TorrentState::Failed);
}

#[test]
fn a_written_piece_is_asked_for_again_after_its_write_failed() {
    let mut p = Scripted::new(SIZE, PIECE, false, true);
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    for b in asked.iter().filter(|b| b.piece == 0) {
        p.send_block(*b, false);
    }
    let (failed, again) = fail_writes(&mut p);
    assert_eq!(failed, 1);
    assert!(
        again.iter().any(|b| b.piece == 0),
        "piece 0 is asked for again"
    );
    for b in asked.iter().filter(|b| b.piece != 0).chain(&again) {
        p.send_block(*b, false);
    }
    p.received();
    let stats = p.engine.stats();
    assert!(stats.complete, "{stats:?} asked first {}", asked.len());
}

#[test]
fn a_failed_read_stops_serving_the_piece_and_checks_it_again() {
    let mut p = Scripted::new(SIZE, PIECE, true, false);
    p.send(Message::Interested);
    p.received();
    p.engine.handle_read_failed(3, "Input/output error");
    let rechecks: Vec<u32> = std::iter::from_fn(|| p.engine.poll_action())
        .filter_map(|a| match a {
            Action::HashOnDisk { piece, .. } => Some(piece),
            _ => None,
        })
        .collect();
    assert_eq!(rechecks, [3]);
    // Not served while being checked.
    p.send(Message::Request {
        piece: 3,
        offset: 0,
        len: B,
    });
    let mut out = Vec::new();
    p.engine.take_serves(p.key, 10, &mut out);
    assert!(out.is_empty());
    // The disk no longer holds it: the seed becomes a downloader of that piece.
    p.engine
        .handle_hashed_on_disk(p.now, 3, DiskHash::Unreadable("gone".into()));
    assert_eq!(p.engine.state(), TorrentState::Downloading);
    assert!(!p.engine.have()[3]);
    assert_eq!(p.engine.stats().disk_errors, 1);
    // A piece whose check passes is served again.
    p.engine.handle_read_failed(5, "Too many open files");
    p.engine
        .handle_hashed_on_disk(p.now, 5, DiskHash::Good(Vec::new()));
    assert!(p.engine.have()[5]);
}

/// Runs `s` until node `i` completes, returning the most piece memory it held meanwhile.
fn peak_piece_memory(s: &mut harness::Swarm, i: usize) -> u64 {
    let peak = std::cell::Cell::new(0u64);
    let done = s.run_until(600 * Duration::from_secs(1), |s| {
        peak.set(peak.get().max(s.nodes[i].engine.piece_memory()));
        s.complete(i)
    });
    assert!(done, "node {i} did not complete");
    peak.get()
}

#[test]
fn large_pieces_are_written_block_by_block_so_memory_does_not_grow_with_them() {
    // 8 MiB pieces: held whole, four of them in progress took 32 MiB.
    let piece = 8 << 20;
    let mut s = harness::Swarm::new(4 * piece, piece, 1, 1);
    s.introduce(1, 0);
    let peak = peak_piece_memory(&mut s, 1);
    assert!(
        peak <= spill::WRITE_BACKLOG + (2 << 20),
        "held {peak} bytes of 8 MiB pieces"
    );
    assert_eq!(s.nodes[1].engine.stats().hash_failures, 0);
}

#[test]
fn small_pieces_stay_in_memory_within_the_partial_budget() {
    let piece = 256 << 10;
    let mut s = harness::Swarm::new(64 * piece, piece, 1, 1);
    s.introduce(1, 0);
    let peak = peak_piece_memory(&mut s, 1);
    assert!(peak <= 2 * PARTIAL_BYTES + 4 * piece as u64, "held {peak}");
}

#[test]
fn a_liar_among_large_pieces_is_proven_by_block_hashes_read_from_disk() {
    let piece = 4 << 20;
    let mut s = harness::Swarm::new(4 * piece, piece, 2, 1);
    s.liars.push(1);
    s.introduce(2, 0);
    s.introduce(2, 1);
    assert!(s.run_until(600 * Duration::from_secs(1), |s| s.complete(2)));
    let stats = s.nodes[2].engine.stats();
    assert!(stats.hash_failures >= 1);
    assert_eq!(stats.banned, 1);
    assert!(s.nodes[2]
        .closes
        .iter()
        .any(|(a, r)| *a == addr(2) && *r == DisconnectReason::SentBadData));
}

/// A scripted downloader of 4 MiB pieces (spilled) whose writes wait until released.
fn spilling() -> Scripted {
    let mut p = Scripted::new(16 << 20, 4 << 20, false, true);
    p.defer_writes = true;
    p.send(Message::Unchoke);
    p
}

/// Carries out `writes` on the scripted disk and reports them done.
fn land(p: &mut Scripted, writes: Vec<(u32, u32, Vec<u8>)>) {
    for (piece, offset, data) in writes {
        if !p.disk.is_empty() {
            let at = (p.engine.geometry().piece_offset(piece) + u64::from(offset)) as usize;
            p.disk[at..at + data.len()].copy_from_slice(&data);
        }
        p.engine.handle_written(p.now, piece, data, Ok(()));
    }
}

/// Takes the writes waiting in `p.actions`.
fn waiting_writes(p: &mut Scripted) -> Vec<(u32, u32, Vec<u8>)> {
    let mut writes = Vec::new();
    p.actions.retain_mut(|a| match a {
        Action::Write {
            piece,
            offset,
            data,
            ..
        } => {
            writes.push((*piece, *offset, std::mem::take(data)));
            false
        }
        _ => true,
    });
    writes
}

#[test]
fn blocks_requested_and_waiting_for_the_disk_stay_within_the_backlog() {
    let mut p = spilling();
    let budget = spill::WRITE_BACKLOG / u64::from(B);
    // The disk is slow: every block asked for arrives, no write lands.
    let mut waiting = 0u64;
    let mut rounds = 0;
    loop {
        let asked = Scripted::requests(&p.received());
        if asked.is_empty() {
            break;
        }
        rounds += 1;
        assert!(rounds < 100, "requests never stop");
        for b in asked {
            p.send_block(b, false);
        }
        waiting = waiting_writes_count(&p);
        assert!(waiting <= budget, "{waiting} blocks waiting for the disk");
    }
    assert!(waiting > budget / 2, "only {waiting} blocks asked for");
    assert!(p.engine.piece_memory() <= spill::WRITE_BACKLOG + (1 << 20));
    // Once the writes land, requests resume.
    let writes = waiting_writes(&mut p);
    land(&mut p, writes);
    assert!(!Scripted::requests(&p.received()).is_empty());
}

fn waiting_writes_count(p: &Scripted) -> u64 {
    p.actions
        .iter()
        .filter(|a| matches!(a, Action::Write { .. }))
        .count() as u64
}

#[test]
fn a_failed_block_write_restarts_its_piece_once_the_old_writes_landed() {
    let mut p = spilling();
    let asked = Scripted::requests(&p.received());
    let first: Vec<Block> = asked
        .iter()
        .filter(|b| b.piece == asked[0].piece)
        .copied()
        .collect();
    let piece = first[0].piece;
    for b in &first[..4] {
        p.send_block(*b, false);
    }
    p.received();
    let mut writes = waiting_writes(&mut p);
    assert_eq!(writes.len(), 4);
    // Two writes fail: one disk error for the attempt, not two.
    for (n, (pc, _, data)) in writes.drain(..2).enumerate() {
        p.engine
            .handle_written(p.now, pc, data, Err(format!("EIO {n}")));
    }
    assert_eq!(p.engine.stats().disk_errors, 1);
    // Two writes of the old attempt are still on the way: the piece is not asked for.
    let again = Scripted::requests(&p.received());
    assert!(again.iter().all(|b| b.piece != piece), "{again:?}");
    land(&mut p, writes);
    // Now it may start again.
    let mut retried = false;
    for _ in 0..40 {
        let asked = Scripted::requests(&p.received());
        retried |= asked.iter().any(|b| b.piece == piece);
        for b in asked {
            p.send_block(b, false);
        }
        let writes = waiting_writes(&mut p);
        land(&mut p, writes);
        if p.engine.stats().complete {
            break;
        }
    }
    assert!(retried);
    let stats = p.engine.stats();
    assert!(stats.complete, "{stats:?}");
    assert_eq!(stats.hash_failures, 0);
    assert!(p.disk == p.original);
}

#[test]
fn a_piece_that_cannot_be_read_back_blames_nobody() {
    let mut p = spilling();
    // The pool's side is played here: writes land, hashes are asked of us.
    p.disk = Vec::new();
    let mut hashed = Vec::new();
    for _ in 0..100 {
        for b in Scripted::requests(&p.received()) {
            p.send_block(b, false);
        }
        let writes = waiting_writes(&mut p);
        land(&mut p, writes);
        p.actions.retain(|a| match a {
            Action::HashOnDisk { piece, .. } => {
                hashed.push(*piece);
                false
            }
            _ => true,
        });
        if !hashed.is_empty() {
            break;
        }
    }
    let piece = hashed[0];
    p.engine
        .handle_hashed_on_disk(p.now, piece, DiskHash::Unreadable("EIO".into()));
    let stats = p.engine.stats();
    assert_eq!((stats.hash_failures, stats.disk_errors), (0, 1));
    assert!(!p.engine.bans.on_parole(bans::BanKey::of(addr(9))));
    // A late result for it is ignored.
    p.engine
        .handle_hashed_on_disk(p.now, piece, DiskHash::Good(Vec::new()));
    assert!(!p.engine.have()[piece as usize]);
}
