//! The DHT responder facing a run of datagrams from a few sources, under a fake clock:
//! never a panic, and:
//!
//! - a reply answers the query's transaction, carries the sender's address (IPv4-mapped
//!   read as IPv4) in `ip`, fits 1,452 bytes, and parses back to itself;
//! - a read-only responder answers nothing; a source found blocked gets nothing;
//! - the store and the rate limiter stay within their (small, so that they fill) caps.
//!
//! Input: frames of `[control][length][length bytes of datagram]`. Control bits 0-2 pick
//! the sender (IPv4, IPv4-mapped, IPv6 sharing a /64 or not), bits 3-5 how far the clock
//! moves first (0 to 31 minutes), bit 6 fixes an `announce_peer`'s token (a `get_peers`
//! from the same sender first, its token used: the fuzzer cannot forge SHA-1), bit 7
//! flips read-only mode.
#![no_main]

use battorrent::dht::krpc::{Body, Message, Method, Query};
use battorrent::dht::ratelimit::RateConfig;
use battorrent::dht::responder::{Responder, ResponderConfig, Tables};
use battorrent::dht::routing::{Config, Contact, RoutingTable};
use battorrent::dht::store::StoreConfig;
use battorrent::dht::NodeId;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SENDERS: [&str; 8] = [
    "10.0.0.1:6881",
    "10.0.0.2:1",
    "10.0.0.3:65535",
    "[::ffff:10.0.0.1]:7000",
    "[2001:db8::1]:6881",
    "[2001:db8::2]:6882",
    "[2001:db8:0:1::1]:1",
    "[fe80::1]:0",
];

const STEPS: [u64; 8] = [0, 0, 1, 10, 60, 300, 600, 1860];

fn tables() -> &'static (RoutingTable, RoutingTable) {
    static TABLES: OnceLock<(RoutingTable, RoutingTable)> = OnceLock::new();
    TABLES.get_or_init(|| {
        let own = NodeId([0x11; 20]);
        let config = Config {
            restrict_ips: false,
            ..Config::default()
        };
        let mut rng = fastrand::Rng::with_seed(1);
        let now = Instant::now();
        let mut t4 = RoutingTable::with_rng(own, config, rng.fork());
        let mut t6 = RoutingTable::with_rng(own, config, rng.fork());
        for i in 0..40u8 {
            let a4: SocketAddr = format!("192.0.2.{i}:6881").parse().unwrap();
            let a6: SocketAddr = format!("[2001:db8:1::{i:x}]:6881").parse().unwrap();
            t4.insert(now, NodeId::random(&mut rng), a4, Contact::Responded);
            t6.insert(now, NodeId::random(&mut rng), a6, Contact::Responded);
        }
        (t4, t6)
    })
}

fn config() -> ResponderConfig {
    ResponderConfig {
        rate: RateConfig {
            rate: 1,
            burst: 6,
            block_for: Duration::from_secs(300),
            max_sources: 3,
        },
        store: StoreConfig {
            max_torrents: 4,
            max_peers_per_torrent: 3,
            max_torrents_per_source: 2,
            ..StoreConfig::default()
        },
        ..ResponderConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let (t4, t6) = tables();
    let tables = Tables {
        own: t4.own_id(),
        v4: Some(t4),
        v6: Some(t6),
    };
    let config = config();
    let start = Instant::now();
    let mut now = start;
    let mut r = Responder::new(now, config, fastrand::Rng::with_seed(7));
    let mut rest = data;
    while let [control, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        let from: SocketAddr = SENDERS[usize::from(control & 7)].parse().unwrap();
        let canonical = SocketAddr::new(from.ip().to_canonical(), from.port());
        now += Duration::from_secs(STEPS[usize::from((control >> 3) & 7)]);
        if control & 0x80 != 0 {
            r.set_read_only(!r.read_only());
        }
        let message = match Message::parse(datagram) {
            Ok(m) => m,
            Err(e) => {
                let blocked = r.is_blocked(now, from.ip());
                if let Some(reply) = r.handle_malformed(now, from, &e) {
                    assert!(!r.read_only() && !blocked);
                    check_reply(&reply, &e.transaction.unwrap(), canonical);
                }
                continue;
            }
        };
        let Body::Query(mut query) = message.body else {
            continue;
        };
        if control & 0x40 != 0 {
            fix_token(&mut r, now, from, &mut query, tables);
        }
        let blocked = r.is_blocked(now, from.ip());
        if let Some(reply) = r.handle_query(now, from, message.transaction, &query, tables) {
            assert!(!r.read_only() && !blocked);
            check_reply(&reply, &message.transaction, canonical);
            if let Body::Response(response) = &reply.body {
                assert!(response.values.len() <= config.max_values);
                assert!(response
                    .values
                    .iter()
                    .all(|v| v.is_ipv6() == canonical.is_ipv6()));
            }
        }
        let store = r.store();
        let caps = store.config();
        assert!(store.torrent_count() <= caps.max_torrents);
        assert!(store.peer_count() <= caps.max_torrents * caps.max_peers_per_torrent);
        assert!(store.peer_count() >= store.torrent_count());
        assert!(store.source_count() <= store.peer_count());
        assert!(r.limiter().len() <= config.rate.max_sources);
    }
});

/// Replaces an `announce_peer`'s token with one a `get_peers` from `from` just got.
fn fix_token(r: &mut Responder, now: Instant, from: SocketAddr, query: &mut Query, tables: Tables) {
    let Method::AnnouncePeer {
        info_hash, token, ..
    } = &mut query.method
    else {
        return;
    };
    let ask = Query {
        id: query.id,
        read_only: false,
        method: Method::GetPeers {
            info_hash: *info_hash,
            want: Default::default(),
        },
    };
    let transaction = battorrent::dht::TransactionId::new(b"fx").unwrap();
    if let Some(Message {
        body: Body::Response(response),
        ..
    }) = r.handle_query(now, from, transaction, &ask, tables)
    {
        *token = response.token.expect("get_peers answers a token");
    }
}

fn check_reply(reply: &Message, transaction: &battorrent::dht::TransactionId, from: SocketAddr) {
    assert_eq!(reply.transaction, *transaction);
    assert_eq!(reply.ip, Some(from));
    assert!(!matches!(reply.body, Body::Query(_)));
    let bytes = reply.to_bytes();
    assert!(bytes.len() <= 1452, "{} bytes", bytes.len());
    let back = Message::parse(&bytes).expect("our reply parses");
    assert_eq!(back, *reply);
}
