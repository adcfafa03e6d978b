//! Picker behaviour with scripted peers.

use super::*;
use std::collections::{HashSet, VecDeque};

const A: PeerKey = PeerKey(1);
const B: PeerKey = PeerKey(2);
const C: PeerKey = PeerKey(3);
const D: PeerKey = PeerKey(4);

/// A bitfield of `n` pieces holding `ones`.
fn bits(n: usize, ones: &[usize]) -> Bitfield {
    let mut b = Bitfield::repeat(false, n);
    for &i in ones {
        b.set(i, true);
    }
    b
}

fn all(n: usize) -> Bitfield {
    Bitfield::repeat(true, n)
}

fn pick(p: &mut Picker, peer: PeerKey, has: &Bitfield, max: usize) -> Vec<Block> {
    let mut out = Vec::new();
    p.pick(peer, has, max, &mut out);
    out
}

/// A torrent of `pieces` pieces of `blocks` full blocks each.
fn picker(pieces: u64, blocks: u32, seed: u64) -> Picker {
    let len = blocks * BLOCK_LEN;
    Picker::with_seed(len, pieces * u64::from(len), seed)
}

fn new(piece_complete: bool, cancel: Vec<PeerKey>) -> Received {
    Received::New {
        piece_complete,
        cancel,
    }
}

#[test]
fn short_last_piece_and_short_last_block() {
    let p = Picker::with_seed(40_000, 2 * 40_000 + 20_000, 0);
    assert_eq!(p.piece_count(), 3);
    assert_eq!(
        (p.piece_len(0), p.piece_len(2), p.piece_len(3)),
        (40_000, 20_000, 0)
    );
    assert_eq!(
        (p.block_count(0), p.block_count(2), p.block_count(9)),
        (3, 2, 0)
    );

    let mut p = p;
    p.set_have(0);
    p.set_have(1);
    let got = pick(&mut p, A, &all(3), 10);
    let lens: Vec<(u32, u32)> = got.iter().map(|b| (b.offset, b.len)).collect();
    assert_eq!(lens, [(0, BLOCK_LEN), (BLOCK_LEN, 20_000 - BLOCK_LEN)]);
    assert_eq!(p.block_received(A, got[1]), new(false, vec![]));
    assert_eq!(p.block_received(A, got[0]), new(true, vec![]));
}

#[test]
fn rarest_piece_is_started_first() {
    let mut p = picker(3, 1, 7);
    p.peer_bitfield(&all(3));
    p.peer_bitfield(&bits(3, &[0, 1]));
    p.peer_bitfield(&bits(3, &[0, 1]));
    assert_eq!(pick(&mut p, A, &all(3), 1)[0].piece, 2);
    // A later `have` can make another piece the rarest.
    let mut p = picker(3, 1, 7);
    p.peer_bitfield(&all(3));
    p.peer_have(0);
    p.peer_have(2);
    assert_eq!(pick(&mut p, A, &all(3), 1)[0].piece, 1);
}

#[test]
fn equally_rare_pieces_are_drawn_at_random() {
    let firsts: HashSet<u32> = (0..40)
        .map(|seed| {
            let mut p = picker(8, 1, seed);
            p.peer_bitfield(&all(8));
            pick(&mut p, A, &all(8), 1)[0].piece
        })
        .collect();
    assert!(firsts.len() >= 5, "only {firsts:?}");
}

#[test]
fn started_pieces_are_finished_before_new_ones() {
    let mut p = picker(4, 4, 1);
    p.peer_bitfield(&all(4));
    let first = pick(&mut p, A, &all(4), 2);
    let started = first[0].piece;
    assert!(first.iter().all(|b| b.piece == started));
    // Another piece is rarer now, yet B gets the started piece's other blocks first.
    p.peer_bitfield(&all(4));
    p.peer_bitfield(&all(4));
    let rare = (started + 1) % 4;
    p.peer_gone(&bits(4, &[rare as usize]));
    let next = pick(&mut p, B, &all(4), 3);
    let pieces: Vec<u32> = next.iter().map(|b| b.piece).collect();
    assert_eq!(pieces, [started, started, rare]);
    assert_eq!(
        (next[0].offset, next[1].offset),
        (2 * BLOCK_LEN, 3 * BLOCK_LEN)
    );
}

#[test]
fn pieces_in_progress_with_fewest_blocks_left_come_first() {
    let mut p = picker(2, 4, 3);
    p.peer_bitfield(&all(2));
    let a = pick(&mut p, A, &bits(2, &[0]), 1);
    let b = pick(&mut p, B, &bits(2, &[1]), 3);
    assert_eq!((a[0].piece, b[0].piece), (0, 1));
    // Piece 1 has one unasked block left, piece 0 three.
    assert_eq!(pick(&mut p, C, &all(2), 1)[0].piece, 1);
}

#[test]
fn max_partial_bounds_pieces_in_progress() {
    let mut p = picker(10, 2, 0);
    p.set_max_partial(2);
    p.peer_bitfield(&all(10));
    let got = pick(&mut p, A, &all(10), 100);
    assert_eq!(got.len(), 4);
    assert!(pick(&mut p, B, &all(10), 100).is_empty());
    assert!(!p.in_endgame());

    let done = got[0].piece;
    for b in got.iter().filter(|b| b.piece == done) {
        p.block_received(A, *b);
    }
    // Complete but unverified still holds its place.
    assert!(pick(&mut p, B, &all(10), 100).is_empty());
    p.piece_verified(done);
    let more = pick(&mut p, B, &all(10), 100);
    assert_eq!(more.len(), 2);
    assert!(more.iter().all(|b| b.piece != done));
}

#[test]
fn pieces_stranded_by_a_departed_peer_do_not_block_the_others() {
    // Limit 2. A starts pieces 0 and 1 (only A has them) and leaves; B and C hold only
    // pieces 2..8. They may start pieces up to twice the limit, and no further.
    let mut p = picker(8, 2, 0);
    p.set_max_partial(2);
    let a_has = bits(8, &[0, 1]);
    p.peer_bitfield(&a_has);
    assert_eq!(pick(&mut p, A, &a_has, 4).len(), 4);
    p.peer_gone(&a_has);
    p.release_peer(A);
    let rest = bits(8, &[2, 3, 4, 5, 6, 7]);
    p.peer_bitfield(&rest);
    let got = pick(&mut p, B, &rest, 100);
    assert_eq!(got.len(), 4, "two more pieces, two blocks each");
    assert!(got.iter().all(|b| b.piece >= 2));
    // C holds B's pieces in progress: the plain limit applies, and it helps with them only
    // once B's requests are released.
    assert!(pick(&mut p, C, &rest, 100).is_empty());
    // D holds none of the four pieces in progress: still no more than twice the limit.
    let unstarted = (2..8)
        .find(|&i| !got.iter().any(|b| b.piece == i as u32))
        .unwrap();
    assert!(pick(&mut p, D, &bits(8, &[unstarted]), 100).is_empty());
    assert_eq!(p.partial.len(), 4);
}

#[test]
fn a_spared_seed_is_held_to_the_plain_limit() {
    // Limit 2, pieces 0 and 1 in progress from a leecher. A seed asked only for pieces 2..8
    // (spared) still holds 0 and 1: it gets no room beyond the limit.
    let mut p = picker(8, 2, 0);
    p.set_max_partial(2);
    let leecher = bits(8, &[0, 1]);
    p.peer_bitfield(&leecher);
    p.peer_bitfield(&all(8));
    assert_eq!(pick(&mut p, A, &leecher, 4).len(), 4);
    let spared = bits(8, &[2, 3, 4, 5, 6, 7]);
    let mut out = Vec::new();
    p.pick_within(B, &spared, &all(8), 100, &mut out);
    assert!(out.is_empty(), "{out:?}");
    // Picking from the spared set as if it were all the seed holds would start more.
    p.pick(B, &spared, 100, &mut out);
    assert!(!out.is_empty());
}

#[test]
fn endgame_hands_out_duplicates_and_cancels() {
    let mut p = picker(1, 2, 0);
    let has = all(1);
    let asked = pick(&mut p, A, &has, 10);
    assert_eq!(asked.len(), 2);
    assert!(p.in_endgame());
    assert!(pick(&mut p, A, &has, 10).is_empty(), "never twice to A");
    assert_eq!(pick(&mut p, B, &has, 10), asked);
    assert_eq!(pick(&mut p, C, &has, 1), asked[..1]);
    // C's next duplicate is the block asked of fewest peers.
    assert_eq!(pick(&mut p, C, &has, 10), asked[1..]);
    assert!(
        pick(&mut p, D, &has, 10).is_empty(),
        "at most 3 peers per block"
    );

    assert_eq!(p.block_received(B, asked[0]), new(false, vec![A, C]));
    assert_eq!((p.requested_from(A), p.requested_from(B)), (1, 1));
    assert_eq!(p.block_received(A, asked[0]), Received::Duplicate);
    p.release(C, asked[1]);
    assert_eq!(pick(&mut p, D, &has, 10), asked[1..]);
    assert_eq!(p.block_received(D, asked[1]), new(true, vec![A, B]));
    assert_eq!(p.requested_from(C), 0);
    p.piece_verified(0);
    assert!(p.is_complete() && !p.in_endgame());
    assert!(pick(&mut p, D, &has, 10).is_empty());
}

#[test]
fn released_blocks_become_pickable_again() {
    let mut p = picker(1, 4, 0);
    let has = all(1);
    let got = pick(&mut p, A, &has, 3);
    p.release(A, got[1]);
    p.release(B, got[2]); // Not B's: ignored.
    assert_eq!(p.requested_from(A), 2);
    assert!(!p.in_endgame());
    assert_eq!(pick(&mut p, B, &has, 2), [got[1], block_of(&p, 0, 3)]);

    let released = p.release_peer(A);
    assert_eq!(released, [got[0], got[2]]);
    assert_eq!(p.requested_from(A), 0);
    assert!(p.release_peer(A).is_empty());
    assert!(!p.in_endgame());
    assert_eq!(pick(&mut p, C, &has, 2), released);
}

fn block_of(p: &Picker, piece: u32, index: u32) -> Block {
    block_at(piece, p.piece_len(piece), index)
}

#[test]
fn release_peer_except_keeps_the_blocks_of_the_pieces_named() {
    // Three pieces of two blocks, all asked of A; A keeps piece 1's.
    let mut p = picker(3, 2, 0);
    let has = all(3);
    let got = pick(&mut p, A, &has, 6);
    assert_eq!(got.len(), 6);
    let released = p.release_peer_except(A, &[1]);
    assert_eq!(released.len(), 4);
    assert!(released.iter().all(|b| b.piece != 1));
    assert_eq!(p.requested_from(A), 2);
    // The released blocks go to B (before endgame would ask for piece 1's again).
    let mut to_b = pick(&mut p, B, &has, 4);
    to_b.sort_by_key(|b| (b.piece, b.offset));
    assert_eq!(to_b, released);
    assert_eq!(p.release_peer(A).len(), 2);
}

#[test]
fn late_data_after_release_is_accepted() {
    let mut p = picker(1, 2, 0);
    let has = all(1);
    let got = pick(&mut p, A, &has, 2);
    p.release_peer(A);
    assert_eq!(pick(&mut p, B, &has, 1), got[..1]);
    assert_eq!(p.block_received(A, got[0]), new(false, vec![B]));
    assert_eq!(p.requested_from(B), 0);
    assert_eq!(p.block_received(A, got[1]), new(true, vec![]));
}

#[test]
fn unrequested_and_duplicate_blocks() {
    let mut p = picker(3, 2, 0);
    let got = pick(&mut p, A, &bits(3, &[0]), 2);
    let b0 = got[0];
    assert_eq!(p.block_received(B, b0), Received::Unrequested);
    assert_eq!(
        p.block_received(A, block_of(&p, 1, 0)),
        Received::Unrequested
    );
    let wrong = [
        Block { len: 1, ..b0 },
        Block { offset: 1, ..b0 },
        Block {
            offset: 2 * BLOCK_LEN,
            ..b0
        },
        Block {
            offset: u32::MAX,
            ..b0
        },
        Block { piece: 3, ..b0 },
        Block {
            piece: u32::MAX,
            ..b0
        },
    ];
    for block in wrong {
        assert_eq!(
            p.block_received(A, block),
            Received::Unrequested,
            "{block:?}"
        );
    }
    assert_eq!(p.block_received(A, b0), new(false, vec![]));
    assert_eq!(p.block_received(A, b0), Received::Duplicate);
    assert_eq!(p.block_received(A, got[1]), new(true, vec![]));
    assert_eq!(p.block_received(A, got[1]), Received::Duplicate);
    p.piece_verified(0);
    assert_eq!(p.block_received(B, b0), Received::Duplicate);
}

#[test]
fn failed_piece_starts_over() {
    let mut p = picker(1, 3, 0);
    let has = all(1);
    let got = pick(&mut p, A, &has, 3);
    for b in &got {
        p.block_received(A, *b);
    }
    assert!(pick(&mut p, B, &has, 10).is_empty(), "awaiting its hash");
    p.piece_failed(0);
    assert_eq!(p.have_count(), 0);
    assert_eq!(pick(&mut p, B, &has, 10), got);
    // A's old data no longer belongs to any request of A's.
    assert_eq!(p.block_received(A, got[0]), Received::Unrequested);
    p.piece_failed(0);
    assert_eq!(p.requested_from(B), 0);
    p.set_have(0);
    p.piece_failed(0);
    assert_eq!((p.have_count(), p.is_complete()), (0, false));
}

#[test]
fn out_of_range_input_is_harmless() {
    let mut p = picker(3, 1, 0);
    p.peer_have(3);
    p.peer_have(u32::MAX);
    p.peer_bitfield(&all(20));
    p.peer_gone(&all(40));
    p.peer_gone(&all(2));
    p.set_have(3);
    p.piece_verified(u32::MAX);
    p.piece_failed(7);
    p.release(
        A,
        Block {
            piece: 9,
            offset: 0,
            len: 0,
        },
    );
    assert_eq!(p.have_count(), 0);
    assert!(!p.wants_any(&bits(20, &[5, 19])));
    assert!(pick(&mut p, A, &bits(20, &[5, 19]), 10).is_empty());
    assert_eq!(pick(&mut p, A, &bits(1, &[0]), 10).len(), 1);
    assert!(pick(&mut p, A, &Bitfield::new(), 10).is_empty());

    let mut empty = Picker::with_seed(1, 0, 0);
    assert_eq!(empty.piece_count(), 0);
    assert!(empty.is_complete() && !empty.in_endgame());
    assert!(pick(&mut empty, A, &all(8), 10).is_empty());
    empty.peer_bitfield(&all(8));
}

#[test]
fn interest_follows_what_we_lack() {
    let mut p = picker(3, 1, 0);
    assert!(p.wants_any(&bits(3, &[1])));
    assert!(!p.wants_any(&bits(3, &[])));
    p.set_have(1);
    assert!(!p.wants_any(&bits(3, &[1])));
    assert!(p.have()[1] && !p.have()[0]);
    p.set_have(1);
    assert_eq!(p.have_count(), 1);
}

/// A peer of the simulated swarm: what it holds and its requests in order of arrival.
struct SimPeer {
    key: PeerKey,
    has: Bitfield,
    queue: VecDeque<Block>,
}

fn simulate(seed: u64) {
    let piece_length = 3 * BLOCK_LEN + 1000;
    let total = 20 * u64::from(piece_length) - 5000;
    let mut p = Picker::with_seed(piece_length, total, seed);
    p.set_max_partial(4);
    let n = p.piece_count();
    let evens: Vec<usize> = (0..n).step_by(2).collect();
    let odds: Vec<usize> = (1..n).step_by(2).collect();
    let mut peers = vec![
        SimPeer {
            key: A,
            has: all(n),
            queue: VecDeque::new(),
        },
        SimPeer {
            key: B,
            has: bits(n, &evens),
            queue: VecDeque::new(),
        },
        SimPeer {
            key: C,
            has: bits(n, &odds),
            queue: VecDeque::new(),
        },
    ];
    for peer in &peers {
        p.peer_bitfield(&peer.has);
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut got: HashSet<(u32, u32)> = HashSet::new();
    let mut endgame_seen = false;
    for _ in 0..10_000 {
        if p.is_complete() {
            break;
        }
        endgame_seen |= p.in_endgame();
        let i = rng.usize(..peers.len());
        let peer = &mut peers[i];
        let mut out = Vec::new();
        p.pick(peer.key, &peer.has, 5 - peer.queue.len(), &mut out);
        peer.queue.extend(out);
        if rng.u8(..10) == 0 {
            // Choked: the peer drops its queue.
            let released = p.release_peer(peer.key);
            assert_eq!(released.len(), peer.queue.len());
            peer.queue.clear();
            continue;
        }
        let Some(block) = peer.queue.pop_front() else {
            continue;
        };
        match p.block_received(peer.key, block) {
            Received::New {
                piece_complete,
                cancel,
            } => {
                assert!(got.insert((block.piece, block.offset)), "{block:?} twice");
                for other in peers.iter_mut().filter(|o| cancel.contains(&o.key)) {
                    other.queue.retain(|b| *b != block);
                }
                if piece_complete {
                    p.piece_verified(block.piece);
                }
            }
            other => panic!("{block:?} from {:?}: {other:?}", peers[i].key),
        }
    }
    assert!(
        p.is_complete(),
        "seed {seed}: stuck at {}/{n}",
        p.have_count()
    );
    let blocks: u32 = (0..n as u32).map(|i| p.block_count(i)).sum();
    assert_eq!(got.len(), blocks as usize);
    assert!(endgame_seen);
    assert!(peers
        .iter()
        .all(|peer| p.requested_from(peer.key) == peer.queue.len()));
}

#[test]
fn simulated_download_receives_every_block_once() {
    for seed in 0..20 {
        simulate(seed);
    }
}

#[test]
fn pick_whole_assigns_one_entire_new_piece() {
    let mut p = picker(3, 3, 0);
    p.peer_bitfield(&all(3));
    p.peer_have(0);
    let started = pick(&mut p, A, &all(3), 1);
    let whole = {
        let mut out = Vec::new();
        p.pick_whole(B, &all(3), &mut out);
        out
    };
    assert_eq!(whole.len(), 3);
    assert!(whole
        .iter()
        .all(|b| b.piece != started[0].piece && b.piece != 0));
    assert_eq!(p.requested_from(B), 3);
    p.set_max_partial(2);
    let mut out = Vec::new();
    p.pick_whole(C, &all(3), &mut out);
    assert!(out.is_empty(), "partial limit reached");
}

/// Receives and verifies every block handed out, as a fast peer would.
fn complete_all(p: &mut Picker, peer: PeerKey, blocks: &[Block]) {
    for b in blocks {
        if let Received::New {
            piece_complete: true,
            ..
        } = p.block_received(peer, *b)
        {
            p.piece_verified(b.piece);
        }
    }
}

#[test]
fn skipped_pieces_are_never_picked_and_done_means_every_wanted_piece() {
    let mut p = picker(8, 1, 1);
    p.set_priorities(&[NORMAL, SKIP, SKIP, NORMAL, SKIP, SKIP, SKIP, NORMAL]);
    assert!(!p.wants_any(&bits(8, &[1, 2, 4])), "only unwanted pieces");
    assert!(p.wants_any(&bits(8, &[1, 3])));
    let got = pick(&mut p, A, &all(8), 100);
    let mut pieces: Vec<u32> = got.iter().map(|b| b.piece).collect();
    pieces.sort_unstable();
    assert_eq!(pieces, vec![0, 3, 7]);
    assert!(!p.is_done());
    complete_all(&mut p, A, &got);
    assert!(p.is_done() && !p.is_complete());
    assert!(!p.in_endgame(), "nothing left to want");
    assert!(pick(&mut p, A, &all(8), 100).is_empty());
    // Wanting one more piece makes the torrent not done again.
    p.set_priorities(&[NORMAL, SKIP, NORMAL, NORMAL, SKIP, SKIP, SKIP, NORMAL]);
    assert!(!p.is_done());
    assert_eq!(pick(&mut p, A, &all(8), 100)[0].piece, 2);
}

#[test]
fn higher_priority_pieces_start_first_and_sequential_goes_in_order() {
    let mut p = picker(10, 1, 7);
    let mut prio = vec![NORMAL; 10];
    prio[6] = URGENT;
    prio[8] = URGENT;
    p.set_priorities(&prio);
    p.set_sequential(true);
    let order: Vec<u32> = pick(&mut p, A, &all(10), 10)
        .iter()
        .map(|b| b.piece)
        .collect();
    assert_eq!(order, vec![6, 8, 0, 1, 2, 3, 4, 5, 7, 9]);
    // Rarest first otherwise: the rare piece before the common ones.
    let mut p = picker(4, 1, 7);
    p.peer_bitfield(&all(4));
    p.peer_bitfield(&bits(4, &[0, 1, 3]));
    let first = pick(&mut p, A, &all(4), 1);
    assert_eq!(first[0].piece, 2);
}
