//! The engine's behaviour, as specifications: no sockets, a fake clock.

mod dht;
mod disk;
mod extension;
mod fast;
mod hardening;
mod harness;
mod magnet;
mod pex;
mod selection;

use super::*;
use crate::picker::Block;
use crate::wire::Message;
use harness::{addr, Got, Scripted, Swarm, B};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

// --- whole swarms ----------------------------------------------------------------------

#[test]
fn a_leecher_downloads_everything_from_a_seed_and_says_so() {
    let mut s = Swarm::new(300_000, 32 * 1024, 1, 1);
    s.introduce(1, 0);
    assert!(s.run_until(30 * SECOND, |s| s.complete(1)));
    let leecher = &s.nodes[1];
    assert_eq!(leecher.completed, 1);
    assert_eq!(leecher.announces, vec![Event::Started, Event::Completed]);
    assert_eq!(leecher.engine.state(), TorrentState::Seeding);
    // The seed said only "started": it never downloaded anything.
    assert_eq!(s.nodes[0].announces, vec![Event::Started]);
    // Once both are seeds the connection has no purpose.
    assert!(s.nodes[1]
        .closes
        .iter()
        .any(|(_, r)| *r == DisconnectReason::BothSeeds));
}

#[test]
fn a_flash_crowd_completes_and_leechers_trade_among_themselves() {
    let size = 2 << 20;
    let mut s = Swarm::new(size, 64 * 1024, 1, 6);
    for i in 1..7 {
        s.introduce(i, 0);
        for j in 1..i {
            s.introduce(i, j);
        }
    }
    assert!(s.run_until(120 * SECOND, |s| (1..7).all(|i| s.complete(i))));
    let leechers: u64 = s.sent[1..].iter().sum();
    assert!(leechers > 0, "leechers uploaded nothing to each other");
}

#[test]
fn framing_holds_when_bytes_arrive_one_at_a_time() {
    let mut s = Swarm::new(100_000, 16 * 1024, 1, 1);
    s.chunk = 1;
    s.introduce(1, 0);
    assert!(s.run_until(60 * SECOND, |s| s.complete(1)));
}

#[test]
fn framing_holds_at_odd_chunk_sizes() {
    for chunk in [7, 13, 4099] {
        let mut s = Swarm::new(90_000, 16 * 1024, 1, 1);
        s.chunk = chunk;
        s.introduce(1, 0);
        assert!(s.run_until(60 * SECOND, |s| s.complete(1)), "chunk {chunk}");
    }
}

#[test]
fn a_liar_is_banned_on_proof_and_the_download_still_completes() {
    // One seed lies about every block it sends; the honest seed's data proves it.
    let mut s = Swarm::new(512 * 1024, 32 * 1024, 2, 1);
    s.liars.push(1);
    s.introduce(2, 0);
    s.introduce(2, 1);
    assert!(s.run_until(120 * SECOND, |s| s.complete(2)));
    let leecher = &s.nodes[2];
    let stats = leecher.engine.stats();
    assert!(stats.hash_failures >= 1);
    assert_eq!(stats.banned, 1);
    assert!(leecher
        .closes
        .iter()
        .any(|(a, r)| *a == addr(2) && *r == DisconnectReason::SentBadData));
    // Banned means never again: not dialled, not accepted.
    let now = s.now;
    let e = &mut s.nodes[2].engine;
    e.handle_peers(now, PeerSource::Tracker, &[addr(2)]);
    assert!(!std::iter::from_fn(|| e.poll_action())
        .any(|a| matches!(a, Action::Dial { addr: a } if a == addr(2))));
    assert_eq!(
        e.handle_connected(now, addr(2), Direction::Incoming),
        Err(DisconnectReason::Banned)
    );
}

#[test]
fn pause_closes_everyone_and_resume_reconnects() {
    let mut s = Swarm::new(4 << 20, 64 * 1024, 1, 1);
    s.introduce(1, 0);
    s.steps(20);
    assert_eq!(s.nodes[1].engine.stats().peers, 1);
    let now = s.now;
    s.nodes[1].engine.pause(now);
    s.settle();
    let e = &s.nodes[1].engine;
    assert_eq!(e.state(), TorrentState::Paused);
    assert_eq!(e.stats().peers, 0);
    assert_eq!(e.poll_timeout(), None, "a paused torrent needs no timer");
    assert_eq!(s.nodes[1].announces.last(), Some(&Event::Stopped));
    s.nodes[1].engine.resume(now);
    assert!(s.run_until(60 * SECOND, |s| s.complete(1)));
    assert_eq!(
        s.nodes[1].announces,
        vec![
            Event::Started,
            Event::Stopped,
            Event::Started,
            Event::Completed
        ]
    );
}

#[test]
fn an_idle_torrent_has_no_timer() {
    let s = Swarm::new(100_000, 16 * 1024, 1, 0);
    assert_eq!(s.nodes[0].engine.poll_timeout(), None);
}

// --- one scripted peer -----------------------------------------------------------------

#[test]
fn handshake_then_bitfield_and_interest() {
    // The harness consumed the handshakes; a seed peer's bitfield makes us interested.
    let mut p = Scripted::new(200_000, 16 * 1024, false, false);
    let got = p.received();
    assert_eq!(
        got.first(),
        Some(&Got::Handshake),
        "we answer an incoming handshake"
    );
    assert!(!got.contains(&Got::Interested));
    let bits = harness::full(13);
    p.send(Message::Bitfield(bits.as_raw_slice()));
    assert_eq!(p.received(), vec![Got::Interested]);
}

#[test]
fn a_seed_sends_its_bitfield_after_the_handshake() {
    // (A peer with the fast extension hears "have all" instead: see `fast.rs`.)
    let mut p = Scripted::without_fast(100_000, 16 * 1024, true, false);
    let got = p.received();
    assert_eq!(got[0], Got::Handshake);
    assert!(matches!(got[1], Got::Bitfield(_)));
}

#[test]
fn a_handshake_for_another_torrent_is_refused() {
    let mut p = Scripted::new(100_000, 16 * 1024, true, false);
    let key = p
        .engine
        .handle_connected(p.now, addr(10), Direction::Incoming)
        .unwrap();
    let wrong = crate::wire::Handshake::new(crate::core::InfoHash([1; 20]), [3; 20]).encode();
    p.engine.handle_bytes(p.now, key, &wrong);
    p.received();
    assert!(p.actions.iter().any(|a| matches!(a,
        Action::Close { peer, reason: DisconnectReason::Handshake(_), .. } if *peer == key)));
}

#[test]
fn a_silent_connection_times_out_in_the_handshake() {
    let mut p = Scripted::new(100_000, 16 * 1024, true, false);
    let key = p
        .engine
        .handle_connected(p.now, addr(10), Direction::Incoming)
        .unwrap();
    p.advance(12 * SECOND);
    p.received();
    assert!(p.actions.iter().any(|a| matches!(a,
        Action::Close { peer, reason: DisconnectReason::HandshakeTimeout, .. } if *peer == key)));
}

#[test]
fn request_depth_starts_at_32_and_grows_with_the_rate() {
    // 64 pieces of 256 KiB: plenty of blocks.
    let mut p = Scripted::new(32 << 20, 256 * 1024, false, true);
    p.received();
    p.send(Message::Unchoke);
    let first = Scripted::requests(&p.received());
    assert_eq!(first.len(), 32);
    // Deliver 4 MiB/s for a few seconds: the depth follows (1 s worth of data).
    // Answer every request at once, 8 round trips a second: 4 MiB/s.
    let mut outstanding = first;
    for _ in 0..6 {
        for _ in 0..8 {
            for b in std::mem::take(&mut outstanding) {
                p.send_block(b, false);
            }
            outstanding.extend(Scripted::requests(&p.received()));
        }
        p.advance(SECOND);
        outstanding.extend(Scripted::requests(&p.received()));
        if p.engine.picker.requested_from(p.key) > 100 {
            break;
        }
    }
    let in_flight = p.engine.picker.requested_from(p.key);
    assert!(in_flight > 100, "depth stayed at {in_flight}");
    assert!(in_flight <= 256);
}

#[test]
fn started_pieces_are_finished_before_new_ones_are_begun() {
    let mut p = Scripted::new(1 << 20, 64 * 1024, false, true);
    p.received();
    p.send(Message::Unchoke);
    let first = Scripted::requests(&p.received());
    // 32 requests cover pieces 0..8 of 4 blocks: choke, then unchoke again: the same
    // pieces are asked for first.
    let pieces: std::collections::BTreeSet<u32> = first.iter().map(|b| b.piece).collect();
    p.send(Message::Choke);
    p.received();
    p.send(Message::Unchoke);
    let again = Scripted::requests(&p.received());
    let again: std::collections::BTreeSet<u32> = again.iter().map(|b| b.piece).collect();
    assert_eq!(pieces, again);
}

#[test]
fn a_peer_that_answers_nothing_is_snubbed_after_20_seconds() {
    let mut p = Scripted::new(1 << 20, 64 * 1024, false, true);
    p.received();
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    assert!(!asked.is_empty());
    // It keeps the connection alive but sends no data.
    for _ in 0..19 {
        p.advance(SECOND);
        p.send(Message::KeepAlive);
    }
    assert!(p.received().iter().all(|g| !matches!(g, Got::Cancel(_))));
    p.advance(2 * SECOND);
    let got = p.received();
    let cancels = got.iter().filter(|g| matches!(g, Got::Cancel(_))).count();
    assert_eq!(cancels, asked.len(), "every request is cancelled");
    assert!(p.engine.peers[&p.key].snubbed);
    // It keeps one request, a probe: answered, it lifts the snub and the full depth comes
    // back.
    let probe = Scripted::requests(&got);
    assert_eq!(probe.len(), 1, "{got:?}");
    assert_eq!(p.engine.picker.requested_from(p.key), 1);
    p.send_block(probe[0], false);
    assert!(!p.engine.peers[&p.key].snubbed);
    assert!(p.engine.picker.requested_from(p.key) >= 31);
}

#[test]
fn a_request_cancelled_then_asked_again_is_served_once() {
    let mut p = Scripted::new(1 << 20, 64 * 1024, true, false);
    p.received();
    p.send(Message::Interested);
    p.received();
    let block = Block {
        piece: 2,
        offset: B,
        len: B,
    };
    let request = Message::Request {
        piece: 2,
        offset: B,
        len: B,
    };
    p.send(request);
    p.send(request);
    p.send(Message::Cancel {
        piece: 2,
        offset: B,
        len: B,
    });
    p.send(request);
    let mut served = Vec::new();
    p.engine.take_serves(p.key, 16, &mut served);
    assert_eq!(served, vec![block]);
}

#[test]
fn a_peer_silent_for_three_minutes_is_dropped_and_keep_alives_go_out() {
    let mut p = Scripted::new(100_000, 16 * 1024, true, false);
    p.received();
    p.advance(61 * SECOND);
    assert!(p.received().contains(&Got::KeepAlive));
    p.advance(120 * SECOND);
    p.received();
    assert_eq!(p.closed(), Some(&DisconnectReason::Idle));
}

#[test]
fn an_interested_peer_is_unchoked_at_once_while_slots_are_free() {
    let mut p = Scripted::new(100_000, 16 * 1024, true, false);
    p.received();
    p.send(Message::Interested);
    assert_eq!(p.received(), vec![Got::Unchoke]);
}

#[test]
fn two_seeds_part() {
    let mut p = Scripted::new(100_000, 16 * 1024, true, true);
    p.received();
    assert_eq!(p.closed(), Some(&DisconnectReason::BothSeeds));
}

#[test]
fn requests_are_queued_not_dropped_and_served_in_order() {
    // Transmission queues thousands of requests at once: every one is served.
    let mut p = Scripted::new(64 << 20, 256 * 1024, true, false);
    p.received();
    p.send(Message::Interested);
    p.received();
    let count = 4096u32;
    for i in 0..count {
        p.send(Message::Request {
            piece: i / 16,
            offset: (i % 16) * B,
            len: B,
        });
    }
    p.received();
    let serve = p
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Serve { .. }))
        .count();
    assert_eq!(serve, 1, "one wake-up for a queue, not one per request");
    let mut served = Vec::new();
    loop {
        let before = served.len();
        p.engine.take_serves(p.key, 16, &mut served);
        if served.len() == before {
            break;
        }
    }
    assert_eq!(served.len(), count as usize);
    assert_eq!(
        served[4095],
        Block {
            piece: 255,
            offset: 15 * B,
            len: B
        }
    );
}

#[test]
fn a_request_flood_ends_the_connection_with_a_reason() {
    // 512 MiB in 4 MiB pieces: 32,768 distinct blocks to ask for.
    let mut p = Scripted::new(512 << 20, 4 << 20, true, false);
    p.received();
    p.send(Message::Interested);
    p.received();
    let mut bytes = Vec::new();
    for i in 0..=MAX_QUEUED_REQUESTS as u32 {
        Message::Request {
            piece: i / 256,
            offset: (i % 256) * B,
            len: B,
        }
        .encode(&mut bytes);
    }
    p.feed(&bytes);
    p.received();
    assert_eq!(
        p.closed(),
        Some(&DisconnectReason::RequestFlood(MAX_QUEUED_REQUESTS))
    );
}

#[test]
fn a_choke_discards_queued_requests_and_cancel_removes_one() {
    let mut p = Scripted::new(1 << 20, 64 * 1024, true, false);
    p.received();
    p.send(Message::Interested);
    p.received();
    let block = |i: u32| Block {
        piece: 0,
        offset: i * B,
        len: B,
    };
    for i in 0..4 {
        p.send(Message::Request {
            piece: 0,
            offset: i * B,
            len: B,
        });
    }
    p.send(Message::Cancel {
        piece: 0,
        offset: B,
        len: B,
    });
    let mut served = Vec::new();
    p.engine.take_serves(p.key, 16, &mut served);
    assert_eq!(served, vec![block(0), block(2), block(3)]);
}

#[test]
fn a_peer_on_parole_gets_whole_pieces_only() {
    let mut p = Scripted::new(1 << 20, 64 * 1024, false, true);
    p.received();
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    // It sends a bad piece 0 alone: one strike, parole.
    let bad = asked[0].piece;
    let piece0: Vec<Block> = asked.iter().copied().filter(|b| b.piece == bad).collect();
    assert_eq!(piece0.len(), 4);
    for (i, b) in piece0.iter().enumerate() {
        p.send_block(*b, i == 0);
    }
    let got = p.received();
    assert_eq!(p.engine.stats().hash_failures, 1);
    assert!(p.engine.bans.on_parole(BanKey::of(addr(9))));
    // The rest it owes; once they arrive it is asked for one whole piece at a time.
    for b in asked.iter().filter(|b| b.piece != bad) {
        p.send_block(*b, false);
    }
    let mut again = Scripted::requests(&got);
    again.extend(Scripted::requests(&p.received()));
    let pieces: std::collections::BTreeSet<u32> = again.iter().map(|b| b.piece).collect();
    assert_eq!(pieces.len(), 1, "one piece at a time on parole: {again:?}");
    assert_eq!(again.len(), 4);
}

#[test]
fn endgame_asks_twice_and_cancels_the_duplicate() {
    // Two seeds, one tiny piece of 2 blocks: both are asked, the first answer cancels.
    let mut p = Scripted::new(2 * B as usize, 2 * B as usize, false, true);
    p.received();
    let other = p
        .engine
        .handle_connected(p.now, addr(11), Direction::Incoming)
        .unwrap();
    let mut hs = crate::wire::Handshake::new(harness::HASH, [11; 20])
        .encode()
        .to_vec();
    let bits = harness::full(1);
    Message::Bitfield(bits.as_raw_slice()).encode(&mut hs);
    Message::Unchoke.encode(&mut hs);
    p.engine.handle_bytes(p.now, other, &hs);
    p.send(Message::Unchoke);
    let mine = Scripted::requests(&p.received());
    assert_eq!(mine.len(), 2, "endgame: the same blocks asked of both");
    p.send_block(mine[0], false);
    p.received();
    let mut to_other = Vec::new();
    for a in &p.actions {
        if let Action::Send { peer, bytes } = a {
            if *peer == other {
                to_other.extend_from_slice(bytes);
            }
        }
    }
    let got = harness::parse(&to_other, &mut true);
    assert!(got.contains(&Got::Cancel(mine[0])), "{got:?}");
}

#[test]
fn garbage_ends_the_connection_with_a_violation() {
    let mut p = Scripted::new(100_000, 16 * 1024, false, false);
    p.received();
    // A have for a piece that does not exist.
    p.feed(&[0, 0, 0, 5, 4, 0, 0, 1, 0]);
    p.received();
    assert!(matches!(p.closed(), Some(DisconnectReason::Violation(_))));
    // Bytes for a forgotten connection are swallowed.
    assert_eq!(p.feed(&[1, 2, 3]), 3);
}

#[test]
fn nothing_is_served_from_a_piece_we_do_not_have() {
    let mut p = Scripted::new(100_000, 16 * 1024, false, false);
    p.received();
    p.send(Message::Interested);
    p.send(Message::Request {
        piece: 0,
        offset: 0,
        len: B,
    });
    let mut served = Vec::new();
    p.engine.take_serves(p.key, 16, &mut served);
    assert!(served.is_empty());
}

#[test]
fn a_checking_torrent_refuses_peers_and_a_failed_one_drops_them() {
    let now = std::time::Instant::now();
    let mut e = Engine::new(
        now,
        harness::HASH,
        crate::core::Geometry::new(16384, 100_000),
        vec![[0; 20]; 7],
        TorrentConfig::default(),
    );
    assert_eq!(e.state(), TorrentState::Checking);
    assert_eq!(
        e.handle_connected(now, addr(3), Direction::Incoming),
        Err(DisconnectReason::NotReady)
    );
    e.handle_checked(now, &crate::wire::Bitfield::repeat(false, 7));
    assert_eq!(e.state(), TorrentState::Downloading);
    let key = e
        .handle_connected(now, addr(3), Direction::Incoming)
        .unwrap();
    e.handle_failed(
        now,
        TorrentError::Write {
            piece: 1,
            message: "disk full".into(),
        },
    );
    let actions: Vec<Action> = std::iter::from_fn(|| e.poll_action()).collect();
    assert!(actions.iter().any(|a| matches!(a,
        Action::Close { peer, reason: DisconnectReason::TorrentFailed, .. } if *peer == key)));
    assert_eq!(e.state(), TorrentState::Failed);
    assert!(e.error().is_some());
}

/// Bytes the engine sent to `peer`, from the actions the scripted harness set aside.
fn sent_to(p: &Scripted, peer: crate::core::PeerKey) -> Vec<Got> {
    let mut bytes = Vec::new();
    for a in &p.actions {
        if let Action::Send { peer: k, bytes: b } = a {
            if *k == peer {
                bytes.extend_from_slice(b);
            }
        }
    }
    harness::parse(&bytes, &mut true)
}

/// Connects another scripted peer holding `bits`, which unchokes us if `unchoke`.
fn connect(
    p: &mut Scripted,
    n: usize,
    bits: &crate::wire::Bitfield,
    unchoke: bool,
) -> crate::core::PeerKey {
    let key = p
        .engine
        .handle_connected(p.now, addr(n), Direction::Incoming)
        .unwrap();
    let mut bytes = crate::wire::Handshake::new(harness::HASH, [n as u8; 20])
        .encode()
        .to_vec();
    Message::Bitfield(bits.as_raw_slice()).encode(&mut bytes);
    if unchoke {
        Message::Unchoke.encode(&mut bytes);
    }
    assert_eq!(p.engine.handle_bytes(p.now, key, &bytes), bytes.len());
    key
}

/// Connects another scripted peer that holds every piece and unchokes us.
fn connect_seed(p: &mut Scripted, n: usize) -> crate::core::PeerKey {
    let pieces = p.engine.geometry().pieces as usize;
    connect(p, n, &harness::full(pieces), true)
}

#[test]
fn a_seed_is_asked_only_for_what_the_busy_leechers_lack() {
    // 64 pieces. A leecher holding the even pieces unchokes us and keeps us busy; a seed
    // arrives: it is asked only for odd pieces, which no unchoking peer can give, although
    // rarest-first alone would pick even ones (two choking peers hold the odd pieces).
    let mut p = Scripted::new(4 << 20, 64 * 1024, false, false);
    p.received();
    let mut even = crate::wire::Bitfield::repeat(false, 64);
    for i in (0..64).step_by(2) {
        even.set(i, true);
    }
    let odd = !even.clone();
    connect(&mut p, 20, &odd, false);
    connect(&mut p, 21, &odd, false);
    p.send(Message::Bitfield(even.as_raw_slice()));
    p.send(Message::Unchoke);
    let from_leecher = Scripted::requests(&p.received());
    assert_eq!(from_leecher.len(), 32);
    assert!(from_leecher.iter().all(|b| b.piece % 2 == 0));
    let seed = connect_seed(&mut p, 12);
    p.received();
    let from_seed = Scripted::requests(&sent_to(&p, seed));
    assert!(!from_seed.is_empty(), "the seed is asked for something");
    assert!(
        from_seed.iter().all(|b| b.piece % 2 == 1),
        "the seed was asked for pieces the leecher has: {from_seed:?}"
    );
}

#[test]
fn a_seed_is_asked_for_anything_when_the_others_cannot_keep_us_busy() {
    // The same, but the leecher has nothing we need in flight: the seed gets any piece.
    let mut p = Scripted::new(4 << 20, 64 * 1024, false, false);
    p.received();
    let seed = connect_seed(&mut p, 12);
    p.received();
    let from_seed = Scripted::requests(&sent_to(&p, seed));
    assert_eq!(from_seed.len(), 32);
}

#[test]
fn pausing_dials_nobody_and_a_pause_during_the_check_holds_after_it() {
    let now = std::time::Instant::now();
    let geometry = crate::core::Geometry::new(16384, 100_000);
    let mut e = Engine::new(
        now,
        harness::HASH,
        geometry,
        vec![[0; 20]; 7],
        TorrentConfig::default(),
    );
    e.pause(now);
    e.handle_checked(now, &crate::wire::Bitfield::repeat(false, 7));
    assert_eq!(e.state(), TorrentState::Paused);
    let actions: Vec<Action> = std::iter::from_fn(|| e.poll_action()).collect();
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Announce { .. })),
        "a torrent paused from the start never announces: {actions:?}"
    );
    e.resume(now);
    e.handle_peers(now, PeerSource::Tracker, &[addr(5)]);
    let _ = std::iter::from_fn(|| e.poll_action()).count();
    e.handle_connected(now, addr(5), Direction::Outgoing)
        .unwrap();
    e.pause(now);
    let actions: Vec<Action> = std::iter::from_fn(|| e.poll_action()).collect();
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Dial { .. })),
        "closing for a pause redials: {actions:?}"
    );
    // On resume the address is dialled at once.
    e.resume(now);
    let actions: Vec<Action> = std::iter::from_fn(|| e.poll_action()).collect();
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Dial { addr: a } if *a == addr(5))));
}

#[test]
fn completion_during_a_pause_is_reported_on_resume() {
    let mut p = Scripted::new(64 * 1024, 64 * 1024, false, true);
    p.received();
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    assert_eq!(asked.len(), 4);
    for b in &asked {
        p.send_block(*b, false);
    }
    // The piece is complete and being verified when the user pauses.
    let verify: Vec<Action> = std::iter::from_fn(|| p.engine.poll_action()).collect();
    let now = p.now;
    p.engine.pause(now);
    for a in verify {
        if let Action::Verify { piece, data, .. } = a {
            p.engine.handle_verified(now, piece, data, true);
        }
    }
    let during: Vec<Action> = std::iter::from_fn(|| p.engine.poll_action()).collect();
    assert!(!during.iter().any(|a| matches!(a, Action::Completed)));
    p.engine.resume(now);
    let after: Vec<Action> = std::iter::from_fn(|| p.engine.poll_action()).collect();
    assert!(after.iter().any(|a| matches!(a, Action::Completed)));
    assert!(after.iter().any(|a| matches!(
        a,
        Action::Announce {
            event: Event::Completed
        }
    )));
    assert_eq!(p.engine.state(), TorrentState::Seeding);
}

#[test]
fn a_snubbed_peer_probes_only_for_what_no_healthy_peer_has() {
    // A stalls; B, which holds everything too, unchoked us: A's blocks go to B, and A gets
    // no probe (it would take a block back and hold it for another 20 s).
    let mut p = Scripted::new(1 << 20, 64 * 1024, false, true);
    p.received();
    p.send(Message::Unchoke);
    let asked = Scripted::requests(&p.received());
    assert!(!asked.is_empty());
    let b = connect_seed(&mut p, 13);
    for _ in 0..21 {
        p.advance(SECOND);
        p.send(Message::KeepAlive);
        // B answers everything it is asked.
        p.received();
        for block in Scripted::requests(&sent_to(&p, b)) {
            let at = (u64::from(block.piece) * 64 * 1024 + u64::from(block.offset)) as usize;
            let data = p.original[at..at + block.len as usize].to_vec();
            let mut bytes = Vec::new();
            Message::Piece {
                piece: block.piece,
                offset: block.offset,
                data: &data,
            }
            .encode(&mut bytes);
            p.engine.handle_bytes(p.now, b, &bytes);
        }
        p.actions.clear();
    }
    assert!(p.engine.peers[&p.key].snubbed);
    assert_eq!(
        p.engine.picker.requested_from(p.key),
        0,
        "no probe while B serves"
    );
}

#[test]
fn request_cancel_churn_cannot_grow_the_serve_queue() {
    let mut p = Scripted::new(1 << 20, 64 * 1024, true, false);
    p.received();
    p.send(Message::Interested);
    p.received();
    let mut bytes = Vec::new();
    for _ in 0..3 * MAX_QUEUED_REQUESTS {
        Message::Request {
            piece: 1,
            offset: 0,
            len: B,
        }
        .encode(&mut bytes);
        Message::Cancel {
            piece: 1,
            offset: 0,
            len: B,
        }
        .encode(&mut bytes);
    }
    Message::Request {
        piece: 1,
        offset: 0,
        len: B,
    }
    .encode(&mut bytes);
    p.feed(&bytes);
    let peer = &p.engine.peers[&p.key];
    assert!(
        peer.serves.len() <= 2 * MAX_QUEUED_REQUESTS + 1,
        "{}",
        peer.serves.len()
    );
    let mut served = Vec::new();
    p.engine.take_serves(p.key, usize::MAX, &mut served);
    assert_eq!(served.len(), 1);
}
