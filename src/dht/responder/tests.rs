//! The responder under a fake clock: every time is `T0` plus some seconds. Every reply is
//! checked to encode and parse back to itself.

use super::*;
use crate::dht::krpc::{Body, RemoteError, Token};
use crate::dht::routing::{Config, Contact};
use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

fn t(secs: u64) -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now) + Duration::from_secs(secs)
}

const MIN: u64 = 60;
const OWN: NodeId = NodeId([0x11; 20]);
const QUERIER: NodeId = NodeId([0x22; 20]);

fn v4(i: u32, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4((0x0a00_0000 + i).into()), port)
}

fn v6(i: u32, port: u16) -> SocketAddr {
    // Each in a /64 of its own.
    let ip = (0x2001_0db8_u128 << 96) | (u128::from(i) << 64) | 1;
    SocketAddr::new(IpAddr::V6(ip.into()), port)
}

fn hash(byte: u8) -> InfoHash {
    InfoHash([byte; 20])
}

/// A table of `n` nodes of one family that answered us, at random ids.
fn table(v6_nodes: bool, n: u32) -> RoutingTable {
    let config = Config {
        restrict_ips: false,
        ..Config::default()
    };
    let mut table = RoutingTable::with_rng(OWN, config, fastrand::Rng::with_seed(1));
    let mut rng = fastrand::Rng::with_seed(2);
    for i in 0..n {
        let addr = if v6_nodes { v6(i, 6881) } else { v4(i, 6881) };
        table.insert(t(0), NodeId::random(&mut rng), addr, Contact::Responded);
    }
    table
}

fn responder(config: ResponderConfig) -> Responder {
    Responder::new(t(0), config, fastrand::Rng::with_seed(9))
}

fn tid() -> TransactionId {
    TransactionId::new(b"aa").unwrap()
}

/// Asks `method` of `r` from `from` at `now`; the reply, checked to round trip and to
/// answer the transaction.
fn ask(
    r: &mut Responder,
    now: Instant,
    from: SocketAddr,
    method: Method,
    tables: Tables<'_>,
) -> Option<Message> {
    let query = Query {
        id: QUERIER,
        read_only: false,
        method,
    };
    let reply = r.handle_query(now, from, tid(), &query, tables)?;
    round_trip(&reply);
    Some(reply)
}

fn round_trip(reply: &Message) {
    let bytes = reply.to_bytes();
    assert!(bytes.len() <= 1452, "{} bytes", bytes.len());
    assert_eq!(Message::parse(&bytes).as_ref(), Ok(reply));
    assert_eq!(reply.transaction, tid());
}

fn response(reply: Option<Message>) -> Response {
    match reply.expect("a reply").body {
        Body::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

fn error(reply: Option<Message>) -> RemoteError {
    match reply.expect("a reply").body {
        Body::Error(e) => e,
        other => panic!("not an error: {other:?}"),
    }
}

fn get_peers(info_hash: InfoHash) -> Method {
    Method::GetPeers {
        info_hash,
        want: Want::default(),
    }
}

fn announce(info_hash: InfoHash, port: u16, implied_port: bool, token: Token) -> Method {
    Method::AnnouncePeer {
        info_hash,
        port,
        implied_port,
        token,
    }
}

/// A token for `from` and `info_hash`, from a `get_peers` at `now`.
fn token(r: &mut Responder, now: Instant, from: SocketAddr, info_hash: InfoHash) -> Token {
    let t4 = table(false, 0);
    let reply = response(ask(r, now, from, get_peers(info_hash), Tables::v4(&t4)));
    reply.token.expect("get_peers gives a token")
}

#[test]
fn ping_answers_our_id_and_the_queriers_address() {
    let mut r = responder(ResponderConfig::default());
    let t4 = table(false, 20);
    let reply = ask(&mut r, t(0), v4(1, 7000), Method::Ping, Tables::v4(&t4)).unwrap();
    assert_eq!(reply.ip, Some(v4(1, 7000)));
    assert_eq!(response(Some(reply)), Response::new(OWN));
    // An IPv4-mapped sender (a dual-stack socket) is told its IPv4 address.
    let mapped: SocketAddr = "[::ffff:10.0.0.1]:7000".parse().unwrap();
    let reply = ask(&mut r, t(0), mapped, Method::Ping, Tables::v4(&t4)).unwrap();
    assert_eq!(reply.ip, Some(v4(1, 7000)));
    assert_eq!(r.stats().answered, 2);
}

#[test]
fn find_node_answers_the_8_closest_of_the_family_wanted() {
    let mut r = responder(ResponderConfig::default());
    let (t4, t6) = (table(false, 200), table(true, 200));
    let both = Tables {
        own: OWN,
        v4: Some(&t4),
        v6: Some(&t6),
    };
    let target = NodeId([0x5a; 20]);
    let find = |v4, v6| Method::FindNode {
        target,
        want: Want { v4, v6 },
    };
    let closest4 = t4.closest(&target, K);
    let closest6 = t6.closest(&target, K);
    assert_eq!(closest4.len(), K);
    assert_eq!(closest6.len(), K);

    // No `want`: the querier's family.
    let r4 = response(ask(&mut r, t(0), v4(1, 1), find(false, false), both));
    assert_eq!((r4.nodes, r4.nodes6.len()), (closest4.clone(), 0));
    let r6 = response(ask(&mut r, t(0), v6(1, 1), find(false, false), both));
    assert_eq!((r6.nodes.len(), r6.nodes6), (0, closest6.clone()));
    // want=n6 over IPv4, and both.
    let r46 = response(ask(&mut r, t(0), v4(1, 1), find(false, true), both));
    assert_eq!((r46.nodes.len(), r46.nodes6), (0, closest6.clone()));
    let rboth = response(ask(&mut r, t(0), v6(1, 1), find(true, true), both));
    assert_eq!((rboth.nodes, rboth.nodes6), (closest4, closest6));
    // A family we have no table for: nothing of it.
    let none = response(ask(
        &mut r,
        t(0),
        v4(1, 1),
        find(false, true),
        Tables::v4(&t4),
    ));
    assert!(none.nodes.is_empty() && none.nodes6.is_empty());
    assert_eq!(none.id, OWN);
}

#[test]
fn get_peers_gives_nodes_and_a_token_then_values_once_announced() {
    let mut r = responder(ResponderConfig::default());
    let t4 = table(false, 50);
    let h = hash(1);
    let first = response(ask(
        &mut r,
        t(0),
        v4(1, 7000),
        get_peers(h),
        Tables::v4(&t4),
    ));
    assert!(first.values.is_empty());
    assert_eq!(first.nodes, t4.closest(&NodeId(h.0), K));
    let token = first.token.unwrap();

    let ok = response(ask(
        &mut r,
        t(1),
        v4(1, 7000),
        announce(h, 6881, false, token),
        Tables::v4(&t4),
    ));
    assert_eq!(ok, Response::new(OWN));
    assert_eq!(r.stats().announces, 1);

    let again = response(ask(
        &mut r,
        t(2),
        v4(2, 7000),
        get_peers(h),
        Tables::v4(&t4),
    ));
    assert_eq!(again.values, [v4(1, 6881)]);
    assert_eq!(again.nodes.len(), K, "nodes come with values");
    // Values are of the querier's family.
    let six = response(ask(
        &mut r,
        t(2),
        v6(2, 7000),
        get_peers(h),
        Tables::v4(&t4),
    ));
    assert!(six.values.is_empty());
}

#[test]
fn announce_needs_our_token_for_that_ip_and_torrent() {
    let mut r = responder(ResponderConfig::default());
    let t4 = table(false, 10);
    let h = hash(1);
    let good = token(&mut r, t(0), v4(1, 7000), h);
    let bad = |r: &mut Responder, from, info_hash, token| {
        let e = error(ask(
            r,
            t(1),
            from,
            announce(info_hash, 6881, false, token),
            Tables::v4(&t4),
        ));
        assert_eq!((e.code, e.message.as_str()), (code::PROTOCOL, "bad token"));
    };
    // Another IP, another torrent, a forged token.
    bad(&mut r, v4(2, 7000), h, good);
    bad(&mut r, v4(1, 7000), hash(2), good);
    bad(&mut r, v4(1, 7000), h, Token::new(b"forged!!").unwrap());
    // The same IP from another port is the same querier.
    let e = ask(
        &mut r,
        t(1),
        v4(1, 7001),
        announce(h, 6881, false, good),
        Tables::v4(&t4),
    );
    assert!(matches!(e.unwrap().body, Body::Response(_)));
    assert_eq!(r.stats().bad_tokens, 3);
    assert_eq!(r.store().peer_count(), 1);
    // Errors say where the querier is too.
    let reply = ask(
        &mut r,
        t(2),
        v4(2, 1),
        announce(h, 1, false, good),
        Tables::v4(&t4),
    );
    assert_eq!(reply.unwrap().ip, Some(v4(2, 1)));
}

#[test]
fn a_token_is_good_for_5_to_10_minutes() {
    let mut r = responder(ResponderConfig::default());
    let t4 = table(false, 10);
    let h = hash(1);
    let from = v4(1, 7000);
    let token = token(&mut r, t(0), from, h);
    let at = |r: &mut Responder, secs| {
        let reply = ask(
            r,
            t(secs),
            from,
            announce(h, 6881, false, token),
            Tables::v4(&t4),
        );
        matches!(reply.unwrap().body, Body::Response(_))
    };
    assert!(at(&mut r, 9 * MIN + 59));
    assert!(!at(&mut r, 10 * MIN));
}

#[test]
fn implied_port_stores_the_source_port_and_port_0_is_refused() {
    let mut r = responder(ResponderConfig::default());
    let t4 = table(false, 10);
    let h = hash(1);
    let from = v4(1, 51413);
    let tok = token(&mut r, t(0), from, h);
    response(ask(
        &mut r,
        t(1),
        from,
        announce(h, 0, true, tok),
        Tables::v4(&t4),
    ));
    let found = response(ask(&mut r, t(2), v4(9, 1), get_peers(h), Tables::v4(&t4)));
    assert_eq!(found.values, [from]);
    // Without implied_port, port 0 is no peer.
    let from2 = v4(2, 51413);
    let tok2 = token(&mut r, t(3), from2, h);
    let e = error(ask(
        &mut r,
        t(3),
        from2,
        announce(h, 0, false, tok2),
        Tables::v4(&t4),
    ));
    assert_eq!((e.code, e.message.as_str()), (code::PROTOCOL, "bad port"));
    assert_eq!(r.store().peer_count(), 1);
}

#[test]
fn sample_infohashes_answers_a_sample_the_count_and_nodes() {
    let mut r = responder(ResponderConfig::default());
    let t4 = table(false, 50);
    let target = NodeId([0x77; 20]);
    let sample = |r: &mut Responder| {
        let method = Method::SampleInfohashes {
            target,
            want: Want::default(),
        };
        response(ask(r, t(5), v4(200, 1), method, Tables::v4(&t4)))
    };
    let empty = sample(&mut r);
    let samples = empty.samples.unwrap();
    assert_eq!((samples.num, samples.interval), (0, 300));
    assert!(samples.hashes.is_empty());
    assert_eq!(empty.nodes, t4.closest(&target, K));

    let mut stored = HashSet::new();
    for i in 0..30u8 {
        let from = v4(u32::from(i), 6881);
        let tok = token(&mut r, t(1), from, hash(i));
        response(ask(
            &mut r,
            t(1),
            from,
            announce(hash(i), 1, false, tok),
            Tables::v4(&t4),
        ));
        stored.insert(hash(i));
    }
    let full = sample(&mut r).samples.unwrap();
    assert_eq!(full.num, 30);
    assert_eq!(full.hashes.len(), 20);
    let distinct: HashSet<InfoHash> = full.hashes.iter().copied().collect();
    assert_eq!(distinct.len(), 20);
    assert!(distinct.is_subset(&stored));
}

#[test]
fn a_source_over_its_limit_gets_nothing_for_5_minutes_others_are_answered() {
    let mut r = responder(ResponderConfig::default());
    let t4 = table(false, 10);
    let flooder = v4(1, 1);
    for _ in 0..50 {
        assert!(ask(&mut r, t(0), flooder, Method::Ping, Tables::v4(&t4)).is_some());
    }
    assert!(ask(&mut r, t(0), flooder, Method::Ping, Tables::v4(&t4)).is_none());
    assert!(r.is_blocked(t(0), flooder.ip()));
    // Malformed queries count and are silenced too.
    let garbage = Message::parse(b"d1:ade1:q4:ping1:t2:aa1:y1:qe").unwrap_err();
    assert!(r.handle_malformed(t(1), flooder, &garbage).is_none());
    assert!(ask(&mut r, t(4 * MIN), flooder, Method::Ping, Tables::v4(&t4)).is_none());
    assert!(ask(&mut r, t(0), v4(2, 1), Method::Ping, Tables::v4(&t4)).is_some());
    assert!(ask(&mut r, t(5 * MIN), flooder, Method::Ping, Tables::v4(&t4)).is_some());
    let stats = r.stats();
    assert_eq!((stats.answered, stats.rate_limited), (52, 3));

    // Raised limits, for many nodes on one machine.
    let config = ResponderConfig {
        rate: RateConfig {
            rate: 10_000,
            burst: 10_000,
            ..RateConfig::default()
        },
        ..ResponderConfig::default()
    };
    let mut open = responder(config);
    for _ in 0..5_000 {
        assert!(ask(&mut open, t(0), flooder, Method::Ping, Tables::v4(&t4)).is_some());
    }
}

#[test]
fn malformed_queries_get_an_error_with_the_queriers_address() {
    let mut r = responder(ResponderConfig::default());
    let garbage = Message::parse(b"d1:ade1:q4:ping1:t2:aa1:y1:qe").unwrap_err();
    let reply = r.handle_malformed(t(0), v4(1, 1), &garbage).unwrap();
    round_trip(&reply);
    assert_eq!(reply.ip, Some(v4(1, 1)));
    assert_eq!(error(Some(reply)).code, code::PROTOCOL);
    let unknown =
        Message::parse(b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q3:foo1:t2:aa1:y1:qe").unwrap_err();
    assert_eq!(
        error(r.handle_malformed(t(0), v4(1, 1), &unknown)).code,
        code::METHOD_UNKNOWN
    );
    // A malformed response gets nothing.
    let response = Message::parse(b"d1:t2:aa1:y1:r1:rdee").unwrap_err();
    assert!(r.handle_malformed(t(0), v4(1, 1), &response).is_none());
    assert_eq!(r.stats().errors, 2);
}

#[test]
fn a_read_only_node_answers_nothing() {
    let mut r = responder(ResponderConfig::default());
    let t4 = table(false, 10);
    let h = hash(1);
    let tok = token(&mut r, t(0), v4(1, 1), h);
    r.set_read_only(true);
    assert!(r.read_only());
    let target = NodeId([1; 20]);
    let want = Want::default();
    let methods = [
        Method::Ping,
        Method::FindNode { target, want },
        get_peers(h),
        announce(h, 6881, false, tok),
        Method::SampleInfohashes { target, want },
    ];
    for method in methods.clone() {
        assert!(ask(&mut r, t(1), v4(1, 1), method, Tables::v4(&t4)).is_none());
    }
    let garbage = Message::parse(b"d1:ade1:q4:ping1:t2:aa1:y1:qe").unwrap_err();
    assert!(r.handle_malformed(t(1), v4(1, 1), &garbage).is_none());
    assert_eq!(r.store().peer_count(), 0);
    assert_eq!(r.stats().read_only, 6);
    assert_eq!(r.limiter().len(), 1, "only the get_peers before counted");
    r.set_read_only(false);
    for method in methods {
        assert!(ask(&mut r, t(2), v4(1, 1), method, Tables::v4(&t4)).is_some());
    }
    assert_eq!(r.store().peer_count(), 1);
}

#[test]
fn the_largest_answers_fit_a_1452_byte_datagram() {
    let mut r = responder(ResponderConfig::default());
    let (t4, t6) = (table(false, 300), table(true, 300));
    let both = Tables {
        own: OWN,
        v4: Some(&t4),
        v6: Some(&t6),
    };
    // 100 IPv4 peers of one torrent, 100 IPv6 peers of another, all at port 65535.
    let (h4, h6) = (hash(4), hash(6));
    for i in 0..100 {
        for (from, h) in [(v4(i, 65535), h4), (v6(i, 65535), h6)] {
            let tok = token(&mut r, t(0), from, h);
            response(ask(
                &mut r,
                t(0),
                from,
                announce(h, 65535, false, tok),
                both,
            ));
        }
    }
    assert_eq!(r.store().peer_count(), 200);
    let want = Want { v4: true, v6: true };
    for (from, h, values) in [(v4(1000, 1), h4, 100), (v6(1000, 1), h6, 25)] {
        // `ask` checks the size.
        let method = Method::GetPeers { info_hash: h, want };
        let reply = response(ask(&mut r, t(1), from, method, both));
        assert_eq!((reply.nodes.len(), reply.nodes6.len()), (K, K));
        assert_eq!(reply.values.len(), values);
        let target = NodeId([3; 20]);
        let method = Method::SampleInfohashes { target, want };
        ask(&mut r, t(1), from, method, both).unwrap();
    }
}
