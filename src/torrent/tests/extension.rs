//! The extension protocol (BEP 10) and metadata serving (BEP 9) on a connection.

use super::harness::{self, Got, Scripted};
use super::*;
use crate::torrent::extension::OUR_UT_METADATA;
use crate::wire::extension::ExtHandshake;
use crate::wire::metadata::{MetadataMessage, METADATA_PIECE};
use std::sync::Arc;

/// The info dictionary a seed serves in these tests: 40,000 bytes, three metadata pieces.
fn info() -> Arc<[u8]> {
    (0..40_000u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn seed(metadata: Option<Arc<[u8]>>) -> Scripted {
    let config = TorrentConfig {
        peer_id: [1; 20],
        seed: 1,
        metadata,
        listen: Some("10.0.0.1:6881".parse().unwrap()),
        ..TorrentConfig::default()
    };
    Scripted::with_config(64 * 1024, 32 * 1024, true, false, config)
}

/// The extension handshake the engine sent the scripted peer.
fn their_view(got: &[Got]) -> ExtHandshake {
    let payload = got
        .iter()
        .find_map(|g| match g {
            Got::Extended(0, p) => Some(p.clone()),
            _ => None,
        })
        .expect("an extension handshake was sent");
    ExtHandshake::parse(&payload).unwrap()
}

/// The scripted peer says it takes metadata messages under id 7.
fn say_hello(p: &mut Scripted) {
    let mut payload = Vec::new();
    ExtHandshake {
        ut_metadata: Some(7),
        ..ExtHandshake::default()
    }
    .encode(&mut payload);
    p.send(Message::Extended {
        id: 0,
        payload: &payload,
    });
}

fn ask(p: &mut Scripted, piece: u32) -> Vec<Got> {
    let mut payload = Vec::new();
    MetadataMessage::Request { piece }.encode(&mut payload);
    p.send(Message::Extended {
        id: OUR_UT_METADATA,
        payload: &payload,
    });
    p.received()
}

fn metadata_replies(got: &[Got]) -> Vec<(u32, Option<Vec<u8>>)> {
    got.iter()
        .filter_map(|g| match g {
            Got::Extended(7, payload) => match MetadataMessage::parse(payload).unwrap() {
                MetadataMessage::Data { piece, data, .. } => Some((piece, Some(data.to_vec()))),
                MetadataMessage::Reject { piece } => Some((piece, None)),
                MetadataMessage::Request { .. } => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_seed_announces_its_metadata_and_serves_every_piece() {
    let info = info();
    let mut p = seed(Some(info.clone()));
    let hello = their_view(&p.received());
    assert_eq!(hello.metadata_size, Some(40_000));
    assert_eq!(hello.ut_metadata, Some(OUR_UT_METADATA));
    assert_eq!(hello.port, Some(6881));
    assert_eq!(hello.yourip, Some(harness::addr(9).ip()));
    assert!(hello.upload_only, "a seed says it only uploads");
    say_hello(&mut p);
    let mut fetched = Vec::new();
    for piece in 0..3 {
        let replies = metadata_replies(&ask(&mut p, piece));
        let [(n, Some(data))] = replies.as_slice() else {
            panic!("piece {piece}: {replies:?}")
        };
        assert_eq!(*n, piece);
        fetched.extend_from_slice(data);
    }
    assert!(fetched[..] == info[..]);
    assert!(
        metadata_replies(&ask(&mut p, 0))[0]
            .1
            .as_ref()
            .unwrap()
            .len()
            == METADATA_PIECE
    );
    // A piece past the end is refused, not an error.
    assert_eq!(metadata_replies(&ask(&mut p, 3)), [(3, None)]);
    assert_eq!(p.closed(), None);
}

#[test]
fn a_private_torrent_never_hands_out_its_metadata() {
    let mut p = seed(None);
    let hello = their_view(&p.received());
    assert_eq!((hello.ut_metadata, hello.metadata_size), (None, None));
    say_hello(&mut p);
    assert_eq!(metadata_replies(&ask(&mut p, 0)), [(0, None)]);
}

#[test]
fn a_malformed_extension_handshake_ends_the_connection() {
    let mut p = seed(Some(info()));
    p.received();
    p.send(Message::Extended {
        id: 0,
        payload: b"i5e",
    });
    p.received();
    assert!(matches!(
        p.closed(),
        Some(DisconnectReason::BadExtension(_))
    ));
}

#[test]
fn a_peers_yourip_is_a_vote_on_our_external_address() {
    let mut p = seed(None);
    p.received();
    let mut payload = Vec::new();
    ExtHandshake {
        yourip: Some("203.0.113.5".parse().unwrap()),
        ..ExtHandshake::default()
    }
    .encode(&mut payload);
    p.send(Message::Extended {
        id: 0,
        payload: &payload,
    });
    p.received();
    let votes: Vec<_> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ExternalIp { voter, seen } => Some((*voter, *seen)),
            _ => None,
        })
        .collect();
    assert_eq!(
        votes,
        vec![(harness::addr(9).ip(), "203.0.113.5".parse().unwrap())]
    );
}
