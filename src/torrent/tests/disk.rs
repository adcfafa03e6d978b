//! The disk as the engine sees it (issue 11): failed writes and reads cost a piece, not the
//! torrent; large pieces go to disk block by block within a bounded backlog.

use super::hardening::{PIECE, SIZE};
use super::harness::{self, addr, Scripted, B};
use super::*;

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
    for piece in 0..crate::torrent::disk::MAX_WRITE_ERRORS {
        for b in asked.iter().filter(|b| b.piece == piece) {
            p.send_block(*b, false);
        }
        assert_eq!(fail_writes(&mut p).0, 1);
        let stats = p.engine.stats();
        assert_eq!(stats.disk_errors, u64::from(piece) + 1);
        assert_eq!(stats.pieces_have, 0);
        if piece + 1 < crate::torrent::disk::MAX_WRITE_ERRORS {
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
        harness::write_block(&mut p.engine, &mut p.disk, p.now, piece, offset, data);
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
