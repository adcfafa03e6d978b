//! A torrent started from a magnet link: fetching the info dictionary from several peers
//! (BEP 9), what hostile peers cannot do to that fetch, and the hand-over to the data
//! phase.

use super::harness::{self, Got};
use super::*;
use crate::core::InfoHash;
use crate::tracker::Event;
use crate::wire::extension::{ExtHandshake, HANDSHAKE_ID};
use crate::wire::metadata::{MetadataMessage, METADATA_PIECE};
use crate::wire::{Handshake, Message};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The peers' id for `ut_metadata` in these tests.
const THEIR_ID: u8 = 3;

/// A valid info dictionary of `pieces` 16 KiB pieces: 20 bytes each, so 1,000 pieces
/// span two metadata pieces.
fn info_dict(pieces: usize) -> Vec<u8> {
    let hashes: Vec<u8> = (0..pieces * 20).map(|i| i as u8).collect();
    let mut out = format!(
        "d6:lengthi{}e4:name4:test12:piece lengthi16384e6:pieces{}:",
        pieces * 16384,
        hashes.len()
    )
    .into_bytes();
    out.extend_from_slice(&hashes);
    out.push(b'e');
    out
}

/// An engine fetching metadata, with scripted peers.
struct Rig {
    now: Instant,
    engine: Engine,
    info: Vec<u8>,
    /// Bytes each peer was sent and has not parsed yet, and whether its handshake is due.
    inbox: HashMap<PeerKey, (Vec<u8>, bool)>,
    /// Actions other than sends.
    actions: Vec<Action>,
}

impl Rig {
    fn new(info: Vec<u8>) -> Rig {
        let hash = InfoHash(Sha1::digest(&info).into());
        let now = Instant::now();
        let config = TorrentConfig {
            peer_id: [1; 20],
            seed: 1,
            listen: Some("10.0.0.1:6881".parse().unwrap()),
            ..TorrentConfig::default()
        };
        Rig {
            now,
            engine: Engine::new_magnet(now, hash, config),
            info,
            inbox: HashMap::new(),
            actions: Vec::new(),
        }
    }

    /// Peer `n` connects and offers metadata of `size` bytes (listening on port 7000+n).
    fn connect(&mut self, n: usize, size: u64) -> PeerKey {
        let key = self
            .engine
            .handle_connected(self.now, harness::addr(n), Direction::Incoming)
            .expect("accepted while fetching");
        self.inbox.insert(key, (Vec::new(), true));
        let hash = self.engine.info_hash();
        self.feed(key, &Handshake::new(hash, [n as u8; 20]).encode());
        let theirs = ExtHandshake {
            ut_metadata: Some(THEIR_ID),
            metadata_size: Some(size),
            port: Some(7000 + n as u16),
            ..ExtHandshake::default()
        };
        let mut payload = Vec::new();
        theirs.encode(&mut payload);
        self.send(
            key,
            Message::Extended {
                id: HANDSHAKE_ID,
                payload: &payload,
            },
        );
        key
    }

    fn feed(&mut self, key: PeerKey, bytes: &[u8]) {
        self.engine.handle_bytes(self.now, key, bytes);
    }

    fn send(&mut self, key: PeerKey, m: Message) {
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        self.feed(key, &bytes);
    }

    /// Collects what the engine sent; returns the metadata pieces each peer was asked.
    fn asked(&mut self) -> Vec<(PeerKey, u32)> {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Send { peer, bytes } => {
                    if let Some(inbox) = self.inbox.get_mut(&peer) {
                        inbox.0.extend(bytes);
                    }
                }
                other => self.actions.push(other),
            }
        }
        let mut asked = Vec::new();
        for (key, (bytes, handshake)) in &mut self.inbox {
            for got in harness::parse(bytes, handshake) {
                if let Got::Extended(THEIR_ID, payload) = got {
                    if let Ok(MetadataMessage::Request { piece }) = MetadataMessage::parse(&payload)
                    {
                        asked.push((*key, piece));
                    }
                }
            }
            bytes.clear();
        }
        asked.sort();
        asked
    }

    /// Peer `key` answers a request for `piece` with `data` claiming `total`.
    fn answer(&mut self, key: PeerKey, piece: u32, total: u64, data: &[u8]) {
        let mut payload = Vec::new();
        MetadataMessage::Data {
            piece,
            total_size: total,
            data,
        }
        .encode(&mut payload);
        self.send(
            key,
            Message::Extended {
                id: crate::torrent::extension::OUR_UT_METADATA,
                payload: &payload,
            },
        );
    }

    fn piece(&self, piece: u32) -> Vec<u8> {
        let start = piece as usize * METADATA_PIECE;
        self.info[start..(start + METADATA_PIECE).min(self.info.len())].to_vec()
    }

    /// Honest peers answer every request until nothing more is asked.
    fn serve_honestly(&mut self, honest: &[PeerKey]) {
        for _ in 0..100 {
            let asked = self.asked();
            if asked.is_empty() {
                return;
            }
            for (key, piece) in asked {
                if honest.contains(&key) {
                    let data = self.piece(piece);
                    self.answer(key, piece, self.info.len() as u64, &data);
                }
            }
        }
    }

    fn closed(&self, key: PeerKey) -> Option<&DisconnectReason> {
        self.actions.iter().find_map(|a| match a {
            Action::Close { peer, reason, .. } if *peer == key => Some(reason),
            _ => None,
        })
    }

    fn metadata(&self) -> Option<&crate::metainfo::Metainfo> {
        self.actions.iter().find_map(|a| match a {
            Action::Metadata { meta } => Some(&**meta),
            _ => None,
        })
    }
}

#[test]
fn a_magnet_torrent_announces_and_counts_nothing_as_had_while_fetching() {
    let mut rig = Rig::new(info_dict(4));
    let key = rig.connect(2, info_dict(4).len() as u64);
    // What the (fast) peer hears: have none, never have all; its requests are rejected.
    let mut sent = Vec::new();
    rig.send(
        key,
        Message::Request {
            piece: 0,
            offset: 0,
            len: 16384,
        },
    );
    while let Some(a) = rig.engine.poll_action() {
        match a {
            Action::Send { peer, bytes } if peer == key => sent.extend(bytes),
            other => rig.actions.push(other),
        }
    }
    let got = harness::parse(&sent, &mut true);
    assert!(got.contains(&Got::HaveNone), "{got:?}");
    assert!(!got.contains(&Got::HaveAll), "{got:?}");
    assert!(got.iter().any(|g| matches!(g, Got::Reject(_))), "{got:?}");
    assert_eq!(rig.engine.state(), TorrentState::FetchingMetadata);
    assert!(rig.actions.iter().any(|a| matches!(
        a,
        Action::Announce {
            event: Event::Started
        }
    )));
    let stats = rig.engine.stats();
    assert!(!stats.complete, "nothing is complete before the metadata");
    assert_eq!(
        rig.engine.left(),
        LEFT_UNKNOWN,
        "not a seed in a tracker's eyes"
    );
}

#[test]
fn metadata_comes_from_several_peers_then_the_torrent_checks_and_downloads_over_the_same_connections(
) {
    // 200 KB: 13 metadata pieces, more than one peer may have in flight.
    let info = info_dict(10_000);
    let size = info.len() as u64;
    let mut rig = Rig::new(info.clone());
    let peers: Vec<PeerKey> = (2..5).map(|n| rig.connect(n, size)).collect();
    // What they have, said before we know the piece count: kept for later.
    rig.send(peers[0], Message::HaveAll);
    rig.send(peers[0], Message::Unchoke);
    let mut bits = vec![0u8; 10_000usize.div_ceil(8)];
    bits[0] = 0b1010_0000;
    rig.send(peers[1], Message::Bitfield(&bits));
    rig.send(peers[1], Message::Have(7));
    let asked = rig.asked();
    assert_eq!(
        asked.len(),
        12,
        "as many as the peers may have in flight: {asked:?}"
    );
    let askers: std::collections::HashSet<PeerKey> = asked.iter().map(|a| a.0).collect();
    assert_eq!(askers.len(), 3, "spread over the peers");
    for (key, piece) in asked {
        let data = rig.piece(piece);
        rig.answer(key, piece, size, &data);
    }
    rig.serve_honestly(&peers);
    let meta = rig.metadata().expect("metadata handed to the session");
    assert!(*meta.info_bytes == *info, "byte for byte");
    assert_eq!(meta.info_hash, rig.engine.info_hash());
    assert_eq!(rig.engine.state(), TorrentState::Checking);
    assert_eq!(rig.engine.geometry().pieces, 10_000);
    for key in &peers {
        assert_eq!(rig.closed(*key), None, "connections are kept");
    }
    assert_eq!(rig.engine.stats().peers, 3);
    // The check found nothing: the torrent goes live and asks the peer that has all and
    // unchoked us for blocks, over the connection it already has.
    let have = crate::wire::Bitfield::repeat(false, 10_000);
    rig.engine.handle_checked(rig.now, &have);
    assert_eq!(rig.engine.state(), TorrentState::Downloading);
    let mut sent: HashMap<PeerKey, Vec<u8>> = HashMap::new();
    while let Some(a) = rig.engine.poll_action() {
        match a {
            Action::Send { peer, bytes } => sent.entry(peer).or_default().extend(bytes),
            other => rig.actions.push(other),
        }
    }
    let got = |k: PeerKey| harness::parse(sent.get(&k).map_or(&[][..], |v| v), &mut false);
    // (Interested went out when the metadata arrived and their bitfields were applied.)
    let to_seed = got(peers[0]);
    assert!(
        to_seed.iter().any(|g| matches!(g, Got::Request(_))),
        "requests go out at once: {to_seed:?}"
    );
    // The second peer's early bitfield and have count (pieces 0, 2 and 7): not a seed.
    assert_eq!(rig.engine.stats().seeds, 1);
    assert!(
        !rig.actions.iter().any(|a| matches!(a, Action::Dial { .. })),
        "nobody to dial again"
    );
    // Now it serves the metadata it fetched (the torrent is not private).
    let key = rig
        .engine
        .handle_connected(rig.now, harness::addr(9), Direction::Incoming)
        .unwrap();
    rig.inbox.insert(key, (Vec::new(), true));
    let hash = rig.engine.info_hash();
    rig.feed(key, &Handshake::new(hash, [9; 20]).encode());
    let mut sent = Vec::new();
    while let Some(a) = rig.engine.poll_action() {
        if let Action::Send { peer, bytes } = a {
            if peer == key {
                sent.extend(bytes);
            }
        }
    }
    let got = harness::parse(&sent, &mut true);
    let theirs = got
        .iter()
        .find_map(|g| match g {
            Got::Extended(0, p) => ExtHandshake::parse(p).ok(),
            _ => None,
        })
        .expect("extension handshake");
    assert_eq!(theirs.metadata_size, Some(size));
}

#[test]
fn an_early_bitfield_that_does_not_fit_the_torrent_ends_that_connection_only() {
    let info = info_dict(10_000);
    let size = info.len() as u64;
    let mut rig = Rig::new(info.clone());
    let wrong = rig.connect(2, size);
    let past_end = rig.connect(3, size);
    let good = rig.connect(4, size);
    rig.send(wrong, Message::Bitfield(&[0xff; 3]));
    rig.send(past_end, Message::Have(10_000));
    rig.serve_honestly(&[wrong, past_end, good]);
    assert!(rig.metadata().is_some());
    assert!(
        matches!(rig.closed(wrong), Some(DisconnectReason::Violation(_))),
        "{:?}",
        rig.closed(wrong)
    );
    assert!(
        matches!(rig.closed(past_end), Some(DisconnectReason::Violation(_))),
        "{:?}",
        rig.closed(past_end)
    );
    assert_eq!(rig.closed(good), None);
}

#[test]
fn a_huge_metadata_size_is_refused_before_allocating_and_an_honest_peer_completes() {
    let info = info_dict(1_000);
    let size = info.len() as u64;
    let mut rig = Rig::new(info.clone());
    let liar = rig.connect(2, 1 << 31);
    let honest = rig.connect(3, size);
    rig.serve_honestly(&[honest]);
    assert!(
        matches!(rig.closed(liar), Some(DisconnectReason::BadExtension(m)) if m.contains("2147483648")),
        "{:?}",
        rig.closed(liar)
    );
    assert!(
        rig.metadata().is_some_and(|m| *m.info_bytes == *info),
        "no metadata"
    );
}

#[test]
fn a_wrong_total_size_or_a_short_piece_ends_the_connection() {
    let info = info_dict(2_000);
    let size = info.len() as u64;
    let mut rig = Rig::new(info.clone());
    let wrong_total = rig.connect(2, size);
    let short = rig.connect(3, size);
    let honest = rig.connect(4, size);
    for _ in 0..20 {
        let asked = rig.asked();
        if asked.is_empty() {
            break;
        }
        for (key, piece) in asked {
            let data = rig.piece(piece);
            if key == wrong_total {
                rig.answer(key, piece, size + 1, &data);
            } else if key == short {
                let last = piece as u64 == size.div_ceil(METADATA_PIECE as u64) - 1;
                // A non-last piece cut short (a last piece cut short breaks the total).
                let cut = if last { &data[..] } else { &data[..100] };
                rig.answer(key, piece, size, cut);
            } else if key == honest {
                rig.answer(key, piece, size, &data);
            }
        }
    }
    assert!(
        matches!(rig.closed(wrong_total), Some(DisconnectReason::BadExtension(m)) if m.contains("total")),
        "{:?}",
        rig.closed(wrong_total)
    );
    let short_closed = rig.closed(short);
    assert!(
        short_closed.is_none()
            || matches!(short_closed, Some(DisconnectReason::BadExtension(m)) if m.contains("bytes, not")),
        "{short_closed:?}"
    );
    assert!(
        rig.metadata().is_some_and(|m| *m.info_bytes == *info),
        "no metadata"
    );
}

#[test]
fn a_short_non_last_piece_is_refused_by_the_codec() {
    let info = info_dict(2_000);
    let size = info.len() as u64;
    let mut rig = Rig::new(info);
    let short = rig.connect(2, size);
    let asked = rig.asked();
    let (_, piece) = asked.iter().copied().find(|(_, p)| *p == 0).unwrap();
    rig.answer(short, piece, size, &[0; 100]);
    rig.asked();
    assert!(
        matches!(rig.closed(short), Some(DisconnectReason::BadExtension(m)) if m.contains("bytes, not")),
        "{:?}",
        rig.closed(short)
    );
}

#[test]
fn a_peer_whose_metadata_fails_the_hash_is_banned_and_an_honest_one_completes() {
    let info = info_dict(2_000);
    let size = info.len() as u64;
    let mut rig = Rig::new(info.clone());
    let liar = rig.connect(2, size);
    rig.connect(3, size);
    for _ in 0..50 {
        let asked = rig.asked();
        if asked.is_empty() {
            break;
        }
        for (key, piece) in asked {
            let mut data = rig.piece(piece);
            if key == liar {
                data[0] ^= 0xff;
            }
            rig.answer(key, piece, size, &data);
        }
    }
    assert!(
        rig.metadata().is_some_and(|m| *m.info_bytes == *info),
        "no metadata"
    );
    // The liar was caught when it was asked alone, or never needed again: either way it
    // cannot have poisoned the result, and if it was proven it is banned.
    if let Some(reason) = rig.closed(liar) {
        assert!(
            matches!(
                reason,
                DisconnectReason::SentBadData | DisconnectReason::MetadataReceived
            ),
            "{reason:?}"
        );
    }
}

#[test]
fn a_lone_liar_is_banned_and_the_fetch_waits_for_another_peer() {
    let info = info_dict(2_000);
    let size = info.len() as u64;
    let mut rig = Rig::new(info.clone());
    let liar = rig.connect(2, size);
    for (key, piece) in rig.asked() {
        rig.answer(key, piece, size, &vec![7; rig.piece(piece).len()]);
    }
    rig.asked();
    assert_eq!(rig.closed(liar), Some(&DisconnectReason::SentBadData));
    assert_eq!(rig.engine.stats().banned, 1);
    assert_eq!(rig.engine.state(), TorrentState::FetchingMetadata);
    let honest = rig.connect(3, size);
    rig.serve_honestly(&[honest]);
    assert!(
        rig.metadata().is_some_and(|m| *m.info_bytes == *info),
        "no metadata"
    );
}

#[test]
fn unanswered_requests_go_to_another_peer_after_the_timeout() {
    let info = info_dict(1_000);
    let size = info.len() as u64;
    let mut rig = Rig::new(info.clone());
    let silent = rig.connect(2, size);
    let asked = rig.asked();
    assert!(asked.iter().all(|(k, _)| *k == silent));
    let honest = rig.connect(3, size);
    assert!(
        rig.asked().iter().all(|(k, _)| *k != honest),
        "nothing left to ask yet"
    );
    let end = rig.now + crate::torrent::fetch::REQUEST_TIMEOUT + Duration::from_secs(1);
    while rig.now < end {
        rig.now += Duration::from_secs(1);
        if rig.engine.poll_timeout().is_some_and(|t| t <= rig.now) {
            rig.engine.handle_timeout(rig.now);
        }
    }
    rig.serve_honestly(&[honest]);
    assert!(
        rig.metadata().is_some_and(|m| *m.info_bytes == *info),
        "no metadata"
    );
}

#[test]
fn a_million_entry_pex_message_costs_a_bounded_frame_and_the_connection() {
    let info = info_dict(4);
    let mut rig = Rig::new(info.clone());
    let flooder = rig.connect(2, info.len() as u64);
    // A ut_pex message listing a million IPv4 peers: 6 MB, over the frame limit.
    let mut frame = Vec::new();
    let payload_len = 1_000_000 * 6 + 20;
    frame.extend_from_slice(&(payload_len as u32 + 2).to_be_bytes());
    frame.push(20);
    frame.push(crate::torrent::pex::OUR_UT_PEX);
    frame.extend_from_slice(b"d5:added6000000:");
    rig.feed(flooder, &frame);
    rig.asked();
    assert!(
        matches!(rig.closed(flooder), Some(DisconnectReason::Violation(_))),
        "{:?}",
        rig.closed(flooder)
    );
}

#[test]
fn an_invalid_dictionary_that_hashes_right_fails_the_torrent_with_a_reason() {
    // A path that leaves the download folder: the hash matches (it is what the link
    // names), the metainfo checks refuse it.
    let bad =
        b"d6:lengthi5e4:name2:..12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae".to_vec();
    let size = bad.len() as u64;
    let mut rig = Rig::new(bad);
    let peer = rig.connect(2, size);
    rig.serve_honestly(&[peer]);
    assert_eq!(rig.engine.state(), TorrentState::Failed);
    assert!(
        matches!(rig.engine.error(), Some(TorrentError::Metadata { .. })),
        "{:?}",
        rig.engine.error()
    );
}

#[test]
fn pausing_while_fetching_closes_peers_and_resuming_fetches_again() {
    let info = info_dict(4);
    let size = info.len() as u64;
    let mut rig = Rig::new(info.clone());
    let peer = rig.connect(2, size);
    rig.engine.pause(rig.now);
    rig.asked();
    assert_eq!(rig.engine.state(), TorrentState::Paused);
    assert_eq!(rig.closed(peer), Some(&DisconnectReason::Paused));
    rig.engine.resume(rig.now);
    rig.asked();
    assert_eq!(rig.engine.state(), TorrentState::FetchingMetadata);
    let again = rig.connect(3, size);
    rig.serve_honestly(&[again]);
    assert!(
        rig.metadata().is_some_and(|m| *m.info_bytes == *info),
        "no metadata"
    );
}
