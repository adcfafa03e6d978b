//! The UDP front end with scripted datagrams and a hand-driven clock.

use super::*;
use crate::core::InfoHash;
use crate::tracker::query::Event;
use crate::tracker::swarm::{AccessList, TrackerConfig};
use crate::tracker::udp::packet::{
    announce_request, connect_request, peers, scrape_request, AnnounceRequest, Reply, ANNOUNCE_LEN,
    MAX_SCRAPE,
};
use std::collections::HashSet;

const HASH: InfoHash = InfoHash([7; 20]);

struct Fixture {
    front: UdpFront,
    tracker: Mutex<Tracker>,
    now: u32,
}

fn fixture(config: TrackerConfig, access: AccessList) -> Fixture {
    Fixture {
        front: UdpFront::default(),
        tracker: Mutex::new(Tracker::new(config, access)),
        now: 1_000,
    }
}

fn open() -> Fixture {
    fixture(TrackerConfig::default(), AccessList::Open)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn announce_of(hash: InfoHash, port: u16, numwant: Option<u32>) -> AnnounceRequest<'static> {
    let mut peer_id = [b'p'; 20];
    peer_id[..2].copy_from_slice(&port.to_be_bytes());
    AnnounceRequest {
        info_hash: hash,
        peer_id,
        downloaded: 0,
        left: 100,
        uploaded: 0,
        event: Event::Started,
        key: 1,
        numwant,
        port,
        url_data: b"",
    }
}

impl Fixture {
    /// The reply to `datagram` from `from`, if any.
    fn send(&self, datagram: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let sent = self
            .front
            .handle(&self.tracker, datagram, from, self.now, &mut out);
        assert!(sent || out.is_empty(), "bytes written but not sent");
        sent.then_some(out)
    }

    fn connect(&self, from: SocketAddr) -> u64 {
        let mut b = Vec::new();
        connect_request(&mut b, 77);
        let reply = self.send(&b, from).expect("connect answered");
        assert_eq!(reply.len(), 16, "a connect reply is as long as its request");
        match Reply::parse(&reply) {
            Ok(Reply::Connect {
                transaction: 77,
                connection,
            }) => connection,
            other => panic!("not a connect reply: {other:?}"),
        }
    }

    fn announce(&self, id: u64, from: SocketAddr, a: &AnnounceRequest<'_>) -> Option<Vec<u8>> {
        let mut b = Vec::new();
        announce_request(&mut b, id, 5, a);
        self.send(&b, from)
    }
}

/// (leechers, seeders, peers) of an announce reply.
fn announced(reply: &[u8], v6: bool) -> (u32, u32, Vec<SocketAddr>) {
    match Reply::parse(reply) {
        Ok(Reply::Announce {
            transaction: 5,
            leechers,
            seeders,
            peers: list,
            ..
        }) => {
            assert_eq!(list.len() % if v6 { 18 } else { 6 }, 0);
            (leechers, seeders, peers(list, v6).collect())
        }
        other => panic!("not an announce reply: {other:?}"),
    }
}

#[test]
fn connect_then_announce_returns_the_other_peers() {
    let f = open();
    let a = addr("10.0.0.1:1000");
    let b = addr("10.0.0.2:2000");
    let id_a = f.connect(a);
    let (_, _, first) = announced(
        &f.announce(id_a, a, &announce_of(HASH, 6881, None)).unwrap(),
        false,
    );
    assert!(first.is_empty());
    let id_b = f.connect(b);
    let reply = f.announce(id_b, b, &announce_of(HASH, 6882, None)).unwrap();
    let (leechers, seeders, list) = announced(&reply, false);
    assert_eq!((leechers, seeders), (2, 0));
    // The announced port with the datagram's address.
    assert_eq!(list, [addr("10.0.0.1:6881")]);
    let counts = f.front.counts();
    assert_eq!((counts.connects, counts.announces), (2, 2));
}

#[test]
fn the_ip_field_is_ignored() {
    let f = open();
    let a = addr("10.0.0.1:1000");
    let id = f.connect(a);
    let mut b = Vec::new();
    announce_request(&mut b, id, 5, &announce_of(HASH, 6881, None));
    b[84..88].copy_from_slice(&[192, 0, 2, 1]);
    f.send(&b, a).unwrap();
    let other = addr("10.0.0.9:9");
    let id = f.connect(other);
    let reply = f.announce(id, other, &announce_of(HASH, 1, None)).unwrap();
    assert_eq!(announced(&reply, false).2, [addr("10.0.0.1:6881")]);
}

#[test]
fn ipv6_clients_get_18_byte_peers_and_mapped_ipv4_clients_6_byte_ones() {
    let f = open();
    let v6 = addr("[2001:db8::1]:1000");
    let mapped = addr("[::ffff:10.0.0.1]:1000");
    let id = f.connect(v6);
    f.announce(id, v6, &announce_of(HASH, 6881, None)).unwrap();
    let other = addr("[2001:db8::2]:1000");
    let id = f.connect(other);
    let reply = f.announce(id, other, &announce_of(HASH, 2, None)).unwrap();
    assert_eq!(announced(&reply, true).2, [addr("[2001:db8::1]:6881")]);

    // A dual-stack socket's IPv4 client is an IPv4 peer: its id is good either way.
    let id = f.connect(mapped);
    let plain = addr("10.0.0.1:1000");
    f.announce(id, plain, &announce_of(HASH, 6883, None))
        .unwrap();
    let id = f.connect(addr("10.0.0.2:1"));
    let reply = f
        .announce(id, addr("10.0.0.2:1"), &announce_of(HASH, 4, None))
        .unwrap();
    assert_eq!(announced(&reply, false).2, [addr("10.0.0.1:6883")]);
}

#[test]
fn ids_expire_and_forged_ones_get_no_reply() {
    let mut f = open();
    let a = addr("10.0.0.1:1000");
    let id = f.connect(a);
    let req = announce_of(HASH, 6881, None);
    assert!(f.announce(id ^ 1, a, &req).is_none(), "forged");
    assert!(
        f.announce(id, addr("10.0.0.1:1001"), &req).is_none(),
        "another port"
    );
    f.now += 120;
    assert!(f.announce(id, a, &req).is_some(), "two minutes on");
    f.now += 60;
    assert!(f.announce(id, a, &req).is_none(), "three minutes on");
    let mut s = Vec::new();
    scrape_request(&mut s, id, 5, &[HASH]);
    assert!(f.send(&s, a).is_none(), "an expired scrape");
    let counts = f.front.counts();
    assert_eq!(counts.bad_connection_ids, 4);
    assert_eq!(counts.announces, 1);
    assert_eq!(counts.bad_packets, 0);
    // The expired client connects again and is served.
    let id = f.connect(a);
    assert!(f.announce(id, a, &req).is_some());
}

#[test]
fn garbage_gets_no_reply_unless_the_sender_is_connected() {
    let f = open();
    let a = addr("10.0.0.1:1000");
    let mut b = Vec::new();
    announce_request(&mut b, 0, 5, &announce_of(HASH, 6881, None));
    for len in 0..=b.len() {
        assert!(f.send(&b[..len], a).is_none(), "unconnected, {len} bytes");
    }
    assert!(f.send(&vec![0; MAX_REQUEST + 1], a).is_none());
    assert_eq!(f.front.counts().bad_packets, ANNOUNCE_LEN as u64 + 1);

    let id = f.connect(a);
    let mut unknown = b.clone();
    unknown[..8].copy_from_slice(&id.to_be_bytes());
    unknown[8..12].copy_from_slice(&9u32.to_be_bytes());
    let reply = f.send(&unknown, a).expect("a connected client is told");
    assert!(
        matches!(Reply::parse(&reply), Ok(Reply::Error { transaction: 5, message }) if message == b"unknown action 9")
    );
    // Too long, even from a connected client: dropped unread.
    let mut long = unknown.clone();
    long.resize(MAX_REQUEST + 1, 0);
    assert!(f.send(&long, a).is_none());
}

#[test]
fn a_scrape_answers_74_hashes_in_order() {
    let f = open();
    let a = addr("10.0.0.1:1000");
    let id = f.connect(a);
    f.announce(id, a, &announce_of(InfoHash([3; 20]), 6881, None))
        .unwrap();
    let hashes: Vec<InfoHash> = (0..100u8).map(|i| InfoHash([i; 20])).collect();
    let mut b = Vec::new();
    scrape_request(&mut b, id, 5, &hashes);
    // scrape_request writes 74 at most; append the rest by hand.
    for h in &hashes[MAX_SCRAPE..] {
        b.extend_from_slice(&h.0);
    }
    assert_eq!(b.len(), 16 + 100 * 20);
    let reply = f.send(&b, a).unwrap();
    assert!(reply.len() < b.len());
    let Ok(Reply::Scrape { entries, .. }) = Reply::parse(&reply) else {
        panic!("not a scrape reply")
    };
    assert_eq!(entries.len(), MAX_SCRAPE);
    assert_eq!(entries[3], (0, 0, 1));
    assert!(entries
        .iter()
        .enumerate()
        .all(|(i, e)| i == 3 || *e == (0, 0, 0)));
}

#[test]
fn replies_fit_one_datagram() {
    let config = TrackerConfig {
        max_numwant: 1000,
        default_numwant: 1000,
        ..TrackerConfig::default()
    };
    let f = fixture(config, AccessList::Open);
    for i in 0..300u16 {
        for from in [
            addr(&format!("10.0.{}.{}:1", i / 200, i % 200)),
            addr(&format!("[2001:db8::{i:x}]:1")),
        ] {
            let id = f.connect(from);
            f.announce(id, from, &announce_of(HASH, 1000 + i, None))
                .unwrap();
        }
    }
    let v4 = addr("10.9.9.9:1");
    let id = f.connect(v4);
    let reply = f.announce(id, v4, &announce_of(HASH, 1, None)).unwrap();
    assert_eq!(announced(&reply, false).2.len(), max_peers(false));
    assert!(reply.len() <= MAX_REPLY_V4);
    let v6 = addr("[2001:db8::ffff:1]:1");
    let id = f.connect(v6);
    let reply = f
        .announce(id, v6, &announce_of(HASH, 1, Some(u32::MAX >> 1)))
        .unwrap();
    let (_, _, list) = announced(&reply, true);
    assert_eq!(list.len(), max_peers(true));
    assert_eq!(list.iter().collect::<HashSet<_>>().len(), list.len());
    assert!(reply.len() <= MAX_REPLY_V6);
}

#[test]
fn refused_info_hashes_get_an_error_once_connected() {
    let allowed = InfoHash([1; 20]);
    let f = fixture(
        TrackerConfig::default(),
        AccessList::Allow([allowed].into_iter().collect()),
    );
    let a = addr("10.0.0.1:1000");
    let id = f.connect(a);
    let reply = f.announce(id, a, &announce_of(HASH, 6881, None)).unwrap();
    let Ok(Reply::Error { message, .. }) = Reply::parse(&reply) else {
        panic!("not an error reply")
    };
    assert_eq!(message, b"this tracker does not serve that info_hash");
    assert!(f
        .announce(id ^ 1, a, &announce_of(HASH, 6881, None))
        .is_none());
    assert!(f
        .announce(id, a, &announce_of(allowed, 6881, None))
        .is_some());
    assert_eq!(f.front.counts().refused, 1);
}
