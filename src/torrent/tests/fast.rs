//! The fast extension (BEP 6): negotiated only when both handshakes set its bit; have-all
//! and have-none both ways; a reject for every request we will not serve; a reject from
//! the peer hands the block to another peer.

use super::harness::{self, addr, Got, Scripted, B};
use super::*;
use crate::core::PeerKey;
use crate::wire::{Handshake, Violation};

/// What the engine sent to `key` among the actions collected so far (and forgets them),
/// starting with our handshake if `first`.
fn sent_to(p: &mut Scripted, key: PeerKey, first: bool) -> Vec<Got> {
    let mut bytes = Vec::new();
    p.actions.retain(|a| match a {
        Action::Send { peer, bytes: b } if *peer == key => {
            bytes.extend_from_slice(b);
            false
        }
        _ => true,
    });
    harness::parse(&bytes, &mut { first })
}

/// Connects another peer, number `n`, speaking the fast extension, that sends `first`
/// after its handshake.
fn connect_fast(p: &mut Scripted, n: usize, first: &[Message]) -> PeerKey {
    let key = p
        .engine
        .handle_connected(p.now, addr(n), Direction::Incoming)
        .unwrap();
    let mut bytes = Handshake::new(harness::HASH, [n as u8; 20])
        .encode()
        .to_vec();
    for m in first {
        m.encode(&mut bytes);
    }
    assert_eq!(p.engine.handle_bytes(p.now, key, &bytes), bytes.len());
    key
}

fn request(piece: u32, offset: u32, len: u32) -> Message<'static> {
    Message::Request { piece, offset, len }
}

/// A seed engine whose scripted (fast) peer said it is interested and was unchoked.
fn unchoked_by_a_seed() -> Scripted {
    let mut p = Scripted::new(8 * B as usize, B as usize, true, false);
    p.received();
    p.send(Message::Interested);
    assert_eq!(p.received(), vec![Got::Unchoke]);
    p
}

#[test]
fn negotiated_only_when_both_handshakes_set_the_bit() {
    let p = Scripted::new(100_000, 16 * 1024, false, false);
    assert!(p.engine.peers[&p.key].fast);
    assert_eq!(p.engine.stats().fast.fast_peers, 1);
    let p = Scripted::without_fast(100_000, 16 * 1024, false, false);
    assert!(!p.engine.peers[&p.key].fast);
    assert_eq!(p.engine.stats().fast.fast_peers, 0);
    // Our own handshake always sets it (the answer to the incoming one).
    let mut p = Scripted::without_fast(100_000, 16 * 1024, false, false);
    let mut ours = None;
    while let Some(a) = p.engine.poll_action() {
        if let Action::Send { bytes, .. } = a {
            ours.get_or_insert(bytes);
        }
    }
    let ours = ours.expect("our handshake");
    let ours: &[u8; 68] = ours[..68].try_into().unwrap();
    assert!(crate::wire::supports_fast(
        &Handshake::decode(ours).unwrap().reserved
    ));
}

#[test]
fn a_seed_says_have_all_an_empty_peer_have_none_others_their_bitfield() {
    // (The extension handshake, BEP 10, follows.)
    let mut seed = Scripted::new(100_000, 16 * 1024, true, false);
    assert_eq!(seed.received()[..2], [Got::Handshake, Got::HaveAll]);
    let mut empty = Scripted::new(100_000, 16 * 1024, false, false);
    assert_eq!(empty.received()[..2], [Got::Handshake, Got::HaveNone]);
    // Without the extension: the bitfield, or nothing at all.
    let mut seed = Scripted::without_fast(100_000, 16 * 1024, true, false);
    assert!(matches!(
        &seed.received()[..2],
        [Got::Handshake, Got::Bitfield(_)]
    ));
    let mut empty = Scripted::without_fast(100_000, 16 * 1024, false, false);
    assert!(matches!(
        &empty.received()[..],
        [Got::Handshake, Got::Extended(0, _)]
    ));
    // Holding one piece of seven: a bitfield for a fast peer too.
    let mut p = Scripted::new(100_000, 16 * 1024, false, true);
    p.received();
    p.send(Message::Unchoke);
    let first = Scripted::requests(&p.received())[0];
    p.send_block(first, false);
    p.received();
    assert_eq!(p.engine.stats().pieces_have, 1);
    let other = connect_fast(&mut p, 12, &[]);
    p.received();
    let got = sent_to(&mut p, other, true);
    assert_eq!(got[0], Got::Handshake);
    let mut want = crate::wire::Bitfield::repeat(false, 7);
    want.set(first.piece as usize, true);
    assert_eq!(got[1], Got::Bitfield(want.into_vec()));
}

#[test]
fn have_all_makes_us_interested_and_lets_us_request_have_none_takes_it_back() {
    let mut p = Scripted::new(200_000, 16 * 1024, false, false);
    p.received();
    p.send(Message::HaveAll);
    assert_eq!(p.received(), vec![Got::Interested]);
    assert_eq!(p.engine.stats().fast.have_all_received, 1);
    assert!(p.engine.peers[&p.key].bits.all());
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    assert_eq!(asked.len(), 13, "one block of each of the 13 pieces");
    // A later have-none replaces it, as a later bitfield does.
    p.send(Message::HaveNone);
    assert_eq!(p.received(), vec![Got::NotInterested]);
    assert!(p.engine.peers[&p.key].bits.not_any());
}

#[test]
fn a_seed_meeting_have_all_closes_as_for_a_full_bitfield() {
    let mut p = Scripted::new(100_000, 16 * 1024, true, false);
    p.received();
    p.send(Message::HaveAll);
    p.received();
    assert_eq!(p.closed(), Some(&DisconnectReason::BothSeeds));
}

#[test]
fn requests_while_we_choke_are_rejected_and_so_is_a_flood_of_them() {
    let mut p = Scripted::new(8 * B as usize, B as usize, true, false);
    p.received();
    p.send(request(1, 0, B));
    p.send(request(2, 0, B));
    assert_eq!(
        p.received(),
        vec![
            Got::Reject(Block {
                piece: 1,
                offset: 0,
                len: B
            }),
            Got::Reject(Block {
                piece: 2,
                offset: 0,
                len: B
            })
        ]
    );
    assert_eq!(p.engine.stats().fast.rejects_sent, 2);
    // A peer that keeps asking while choked is cut off once a queue's worth is refused.
    let mut bytes = Vec::new();
    for _ in 2..MAX_QUEUED_REQUESTS {
        request(3, 0, B).encode(&mut bytes);
    }
    assert_eq!(p.feed(&bytes), bytes.len());
    let got = p.received();
    assert_eq!(got.len(), MAX_QUEUED_REQUESTS - 2);
    assert!(p.closed().is_none());
    p.send(request(3, 0, B));
    p.received();
    assert_eq!(
        p.closed(),
        Some(&DisconnectReason::RequestFlood(MAX_QUEUED_REQUESTS))
    );
    // Without the extension they are dropped in silence (BEP 3).
    let mut p = Scripted::without_fast(8 * B as usize, B as usize, true, false);
    p.received();
    p.send(request(1, 0, B));
    assert_eq!(p.received(), vec![]);
    assert_eq!(p.engine.stats().fast.rejects_sent, 0);
}

#[test]
fn a_request_for_a_piece_we_lack_is_rejected_while_unchoked() {
    // We hold one piece of seven, got from the scripted peer, and unchoke peer 12.
    let mut p = Scripted::new(7 * B as usize, B as usize, false, true);
    p.received();
    p.send(Message::Unchoke);
    let first = Scripted::requests(&p.received())[0];
    p.send_block(first, false);
    p.received();
    let other = connect_fast(&mut p, 12, &[Message::HaveNone, Message::Interested]);
    p.received();
    assert!(sent_to(&mut p, other, true).contains(&Got::Unchoke));
    let lacking = (first.piece + 1) % 7;
    let mut bytes = Vec::new();
    request(lacking, 0, B).encode(&mut bytes);
    request(first.piece, 0, B).encode(&mut bytes);
    p.engine.handle_bytes(p.now, other, &bytes);
    p.received();
    let got = sent_to(&mut p, other, false);
    assert_eq!(
        got,
        vec![Got::Reject(Block {
            piece: lacking,
            offset: 0,
            len: B
        })],
        "only the piece we lack is rejected"
    );
    let mut served = Vec::new();
    p.engine.take_serves(other, 10, &mut served);
    assert_eq!(served, vec![first]);
}

#[test]
fn queued_requests_are_rejected_after_our_choke() {
    let mut p = unchoked_by_a_seed();
    let asked = [(3, 0), (1, 0), (5, 0)].map(|(piece, offset)| Block {
        piece,
        offset,
        len: B,
    });
    for b in asked {
        p.send(request(b.piece, b.offset, b.len));
    }
    // It cancels one; asks one twice (answered once).
    p.send(Message::Cancel {
        piece: 1,
        offset: 0,
        len: B,
    });
    p.send(request(5, 0, B));
    assert_eq!(p.received(), vec![Got::Reject(asked[1])]);
    // No longer interested: the next round chokes it, then rejects what is left, in order.
    p.send(Message::NotInterested);
    p.advance(10 * SECOND);
    assert_eq!(
        p.received(),
        vec![Got::Choke, Got::Reject(asked[0]), Got::Reject(asked[2])]
    );
    let mut served = Vec::new();
    p.engine.take_serves(p.key, 10, &mut served);
    assert_eq!(served, vec![]);
    assert_eq!(p.engine.stats().fast.rejects_sent, 3);
}

#[test]
fn without_the_extension_a_choke_drops_the_queue_in_silence() {
    let mut p = Scripted::without_fast(8 * B as usize, B as usize, true, false);
    p.received();
    p.send(Message::Interested);
    assert_eq!(p.received(), vec![Got::Unchoke]);
    p.send(request(3, 0, B));
    p.send(Message::Cancel {
        piece: 3,
        offset: 0,
        len: B,
    });
    p.send(request(4, 0, B));
    p.send(Message::NotInterested);
    p.advance(10 * SECOND);
    assert_eq!(p.received(), vec![Got::Choke]);
}

#[test]
fn a_cancel_of_a_request_already_served_gets_no_answer() {
    let mut p = unchoked_by_a_seed();
    p.send(request(2, 0, B));
    let mut served = Vec::new();
    p.engine.take_serves(p.key, 10, &mut served);
    assert_eq!(served.len(), 1);
    p.send(Message::Cancel {
        piece: 2,
        offset: 0,
        len: B,
    });
    assert_eq!(p.received(), vec![]);
}

#[test]
fn a_reject_hands_the_block_to_another_peer_not_back_to_the_same() {
    // 4 pieces of 16 blocks. Peer A (scripted) has everything and unchokes us; peer B has
    // everything and chokes us for now.
    let mut p = Scripted::new(64 * B as usize, 16 * B as usize, false, false);
    p.received();
    p.send(Message::HaveAll);
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    assert_eq!(asked.len(), 32);
    let b = connect_fast(&mut p, 12, &[Message::HaveAll]);
    p.received();
    sent_to(&mut p, b, true);
    let x = asked[5];
    p.send(Message::Reject {
        piece: x.piece,
        offset: x.offset,
        len: x.len,
    });
    let again = Scripted::requests(&p.received());
    assert_eq!(again.len(), 1, "A's queue is topped up");
    assert!(
        again.iter().all(|r| r.piece != x.piece),
        "the rejected piece is not asked of A again: {again:?}"
    );
    assert_eq!(p.engine.stats().fast.rejects_received, 1);
    // B unchokes us: the rejected block is the first it is asked for (its piece lacks
    // only it).
    p.engine.handle_bytes(p.now, b, &{
        let mut v = Vec::new();
        Message::Unchoke.encode(&mut v);
        v
    });
    p.received();
    let to_b = Scripted::requests(&sent_to(&mut p, b, false));
    assert!(to_b.contains(&x), "{x:?} not asked of B: {to_b:?}");
    // A reject for something never asked (or no longer) is counted and ignored.
    p.send(Message::Reject {
        piece: 0,
        offset: 0,
        len: 7,
    });
    assert_eq!(Scripted::requests(&p.received()), vec![]);
    assert!(p.closed().is_none());
    assert_eq!(p.engine.stats().fast.rejects_received, 2);
    // A new unchoke from A: its rejected piece may be asked of it again.
    p.send(Message::Choke);
    p.send(Message::Unchoke);
    assert!(p.engine.peers[&p.key].fast_state.rejected.is_empty());
}

#[test]
fn fast_messages_from_a_peer_without_the_extension_end_the_connection() {
    for m in [
        Message::HaveAll,
        Message::HaveNone,
        Message::Suggest(0),
        Message::AllowedFast(0),
        Message::Reject {
            piece: 0,
            offset: 0,
            len: B,
        },
    ] {
        let mut p = Scripted::without_fast(100_000, 16 * 1024, false, false);
        p.received();
        p.send(m);
        p.received();
        assert!(
            matches!(
                p.closed(),
                Some(DisconnectReason::Violation(Violation::FastNotNegotiated(_)))
            ),
            "{m:?}: {:?}",
            p.closed()
        );
    }
}

#[test]
fn suggest_and_allowed_fast_are_accepted_allowed_fast_is_capped() {
    let mut p = Scripted::new(200 * B as usize, B as usize, false, false);
    p.received();
    p.send(Message::Suggest(3));
    for piece in 0..100 {
        p.send(Message::AllowedFast(piece));
        p.send(Message::AllowedFast(piece));
    }
    p.received();
    assert!(p.closed().is_none());
    let allowed = &p.engine.peers[&p.key].fast_state.allowed;
    assert_eq!(allowed.len(), super::super::fast::MAX_ALLOWED_FAST);
    assert_eq!(allowed[..3], [0, 1, 2]);
    // Out of range: a violation, as for a have.
    p.send(Message::AllowedFast(200));
    p.received();
    assert!(matches!(
        p.closed(),
        Some(DisconnectReason::Violation(
            Violation::PieceOutOfRange { .. }
        ))
    ));
}

#[test]
fn a_swarm_of_engines_negotiates_fast_and_completes() {
    let mut s = harness::Swarm::new(300_000, 32 * 1024, 1, 2);
    s.introduce(1, 0);
    s.introduce(2, 0);
    s.introduce(2, 1);
    assert!(s.run_until(30 * SECOND, |s| s.complete(1) && s.complete(2)));
    for n in &s.nodes[1..] {
        let fast = n.engine.stats().fast;
        assert!(fast.fast_peers >= 2, "{fast:?}");
        assert!(fast.have_all_received >= 1, "{fast:?}");
    }
}

#[test]
fn a_queued_request_for_a_piece_we_stopped_serving_is_rejected() {
    let mut p = unchoked_by_a_seed();
    p.send(request(3, 0, B));
    p.send(request(4, 0, B));
    p.engine.handle_read_failed(3, "Input/output error");
    let mut served = Vec::new();
    p.engine.take_serves(p.key, 10, &mut served);
    assert_eq!(
        served,
        [Block {
            piece: 4,
            offset: 0,
            len: B
        }]
    );
    let rejects: Vec<Got> = p
        .received()
        .into_iter()
        .filter(|g| matches!(g, Got::Reject(_)))
        .collect();
    assert_eq!(
        rejects,
        [Got::Reject(Block {
            piece: 3,
            offset: 0,
            len: B
        })]
    );
}

#[test]
fn allowed_fast_pieces_are_asked_for_while_choked_and_kept_through_a_choke() {
    // 8 pieces of 4 blocks; the peer has everything, allows pieces 2 and 6, chokes us.
    let mut p = Scripted::new(32 * B as usize, 4 * B as usize, false, false);
    p.received();
    p.send(Message::HaveAll);
    assert_eq!(
        p.received(),
        vec![Got::Interested],
        "nothing asked while choked"
    );
    p.send(Message::AllowedFast(2));
    p.send(Message::AllowedFast(6));
    let asked = Scripted::requests(&p.received());
    assert_eq!(asked.len(), 8, "every block of the two pieces: {asked:?}");
    assert!(asked.iter().all(|b| b.piece == 2 || b.piece == 6));
    // Unchoked: the rest too.
    p.send(Message::Unchoke);
    assert_eq!(Scripted::requests(&p.received()).len(), 24);
    // Choked again: the allowed pieces' requests stand, the others go back.
    p.send(Message::Choke);
    assert_eq!(Scripted::requests(&p.received()), vec![]);
    assert_eq!(p.engine.picker.requested_from(p.key), 8);
    // It withdraws piece 6 with a reject while choking us: not asked again.
    let b6 = *asked.iter().find(|b| b.piece == 6).unwrap();
    p.send(Message::Reject {
        piece: b6.piece,
        offset: b6.offset,
        len: b6.len,
    });
    assert_eq!(Scripted::requests(&p.received()), vec![]);
    assert_eq!(p.engine.peers[&p.key].fast_state.allowed, [2]);
    assert_eq!(p.engine.picker.requested_from(p.key), 7);
}
