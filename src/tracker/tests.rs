//! Scripted announces against the tracker logic: no sockets, a hand-driven clock.

use super::swarm::{PEER_BYTES, TORRENT_BYTES};
use super::*;
use crate::bencode::{decode, Limits, Value};
use crate::core::InfoHash;
use std::net::IpAddr;

const T1: InfoHash = InfoHash([1; 20]);
const T2: InfoHash = InfoHash([2; 20]);

fn req(hash: InfoHash, port: u16, left: u64, event: Event) -> Announce {
    let mut peer_id = [b'p'; 20];
    peer_id[..2].copy_from_slice(&port.to_be_bytes());
    Announce {
        info_hash: hash,
        peer_id,
        port,
        uploaded: 0,
        downloaded: 0,
        left: Some(left),
        event,
        numwant: None,
        compact: true,
        no_peer_id: false,
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Announces and returns the decoded response (checked canonical: no warnings).
fn announce(t: &mut Tracker, r: &Announce, from: &str, now: u32) -> Vec<u8> {
    let mut out = Vec::new();
    t.announce(r, ip(from), now)
        .map(|a| a.write(&mut out))
        .expect("announce accepted");
    let doc = decode(&out, Limits::default()).expect("valid bencode");
    assert!(
        doc.warnings.is_empty(),
        "keys out of order: {:?}",
        doc.warnings
    );
    out
}

fn field<'a>(root: &'a Value<'a>, key: &str) -> &'a Value<'a> {
    root.get(key).unwrap_or_else(|| panic!("no {key}"))
}

/// Ports of the compact IPv4 peers in a response.
fn ports(response: &[u8]) -> Vec<u16> {
    let doc = decode(response, Limits::default()).unwrap();
    let peers = field(&doc.root, "peers").as_bytes().unwrap();
    let mut ports: Vec<u16> = peers
        .chunks(6)
        .map(|c| u16::from_be_bytes([c[4], c[5]]))
        .collect();
    ports.sort();
    ports
}

fn counts(response: &[u8]) -> (i64, i64) {
    let doc = decode(response, Limits::default()).unwrap();
    (
        field(&doc.root, "complete").as_int().unwrap(),
        field(&doc.root, "incomplete").as_int().unwrap(),
    )
}

#[test]
fn peers_see_each_other_but_never_themselves() {
    let mut t = Tracker::new(TrackerConfig::default(), AccessList::Open);
    let r1 = announce(&mut t, &req(T1, 1001, 10, Event::Started), "10.0.0.1", 0);
    assert_eq!(ports(&r1), Vec::<u16>::new());
    assert_eq!(counts(&r1), (0, 1));
    let r2 = announce(&mut t, &req(T1, 1002, 10, Event::Started), "10.0.0.1", 1);
    assert_eq!(ports(&r2), [1001]);
    let r3 = announce(&mut t, &req(T1, 1003, 0, Event::Started), "10.0.0.2", 2);
    assert_eq!(ports(&r3), [1001, 1002]);
    assert_eq!(counts(&r3), (1, 2));
    // Same address, other port: a different peer; same address and port: the same peer.
    let again = announce(&mut t, &req(T1, 1001, 10, Event::None), "10.0.0.1", 3);
    assert_eq!(ports(&again), [1002, 1003]);
    assert_eq!(
        t.totals(),
        Totals {
            torrents: 1,
            peers: 3,
            seeders: 1
        }
    );
}

#[test]
fn seeders_get_leechers_first_and_seeds_only_in_the_room_left() {
    let mut t = Tracker::new(TrackerConfig::default(), AccessList::Open);
    for port in 1..=3 {
        announce(&mut t, &req(T1, port, 0, Event::Started), "10.0.0.1", 0);
    }
    announce(&mut t, &req(T1, 9, 5, Event::Started), "10.0.0.9", 0);
    let mut one = req(T1, 1, 0, Event::None);
    one.numwant = Some(1);
    let seeder = announce(&mut t, &one, "10.0.0.1", 1);
    assert_eq!(ports(&seeder), [9], "the leecher first");
    // With room to spare, the other seeds too: aria2 fetching a magnet link's metadata
    // announces left=0 and would otherwise never hear of a seed.
    let seeder = announce(&mut t, &req(T1, 1, 0, Event::None), "10.0.0.1", 1);
    assert_eq!(ports(&seeder), [2, 3, 9], "never the requester itself");
    let leecher = announce(&mut t, &req(T1, 9, 5, Event::None), "10.0.0.9", 1);
    assert_eq!(ports(&leecher), [1, 2, 3]);
}

#[test]
fn numwant_is_honoured_and_capped() {
    let config = TrackerConfig {
        default_numwant: 3,
        max_numwant: 5,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config, AccessList::Open);
    for port in 1..=20 {
        announce(&mut t, &req(T1, port, 1, Event::Started), "10.0.0.1", 0);
    }
    let mut r = req(T1, 100, 1, Event::Started);
    assert_eq!(ports(&announce(&mut t, &r, "10.0.0.2", 0)).len(), 3);
    r.numwant = Some(1000);
    assert_eq!(ports(&announce(&mut t, &r, "10.0.0.2", 0)).len(), 5);
    r.numwant = Some(0);
    assert_eq!(ports(&announce(&mut t, &r, "10.0.0.2", 0)).len(), 0);
}

#[test]
fn stopped_leaves_and_completed_counts_once() {
    let mut t = Tracker::new(TrackerConfig::default(), AccessList::Open);
    announce(&mut t, &req(T1, 1, 5, Event::Started), "10.0.0.1", 0);
    announce(&mut t, &req(T1, 2, 5, Event::Started), "10.0.0.2", 0);
    announce(&mut t, &req(T1, 1, 0, Event::Completed), "10.0.0.1", 1);
    announce(&mut t, &req(T1, 1, 0, Event::Completed), "10.0.0.1", 2);
    assert_eq!(
        t.scrape(&T1),
        ScrapeEntry {
            complete: 1,
            incomplete: 1,
            downloaded: 1
        }
    );
    assert_eq!(
        t.totals(),
        Totals {
            torrents: 1,
            peers: 2,
            seeders: 1
        }
    );
    let bye = announce(&mut t, &req(T1, 2, 5, Event::Stopped), "10.0.0.2", 3);
    assert_eq!(ports(&bye), Vec::<u16>::new());
    assert_eq!(
        t.scrape(&T1),
        ScrapeEntry {
            complete: 1,
            incomplete: 0,
            downloaded: 1
        }
    );
    assert_eq!(
        t.totals(),
        Totals {
            torrents: 1,
            peers: 1,
            seeders: 1
        }
    );
    // A stop for an unknown torrent creates nothing.
    announce(&mut t, &req(T2, 1, 5, Event::Stopped), "10.0.0.1", 3);
    assert_eq!(t.totals().torrents, 1);
}

#[test]
fn silent_peers_expire_and_empty_swarms_go() {
    let config = TrackerConfig {
        peer_ttl: 100,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config, AccessList::Open);
    announce(&mut t, &req(T1, 1, 0, Event::Started), "10.0.0.1", 0);
    announce(&mut t, &req(T2, 2, 5, Event::Started), "10.0.0.2", 50);
    assert_eq!(t.expire(100), 0);
    assert_eq!(t.expire(101), 1);
    assert_eq!(
        t.totals(),
        Totals {
            torrents: 1,
            peers: 1,
            seeders: 0
        }
    );
    assert_eq!(t.expire(151), 1);
    assert_eq!(t.totals(), Totals::default());
}

#[test]
fn a_full_swarm_answers_but_does_not_store() {
    let config = TrackerConfig {
        max_peers_per_torrent: 2,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config, AccessList::Open);
    announce(&mut t, &req(T1, 1, 5, Event::Started), "10.0.0.1", 0);
    announce(&mut t, &req(T1, 2, 5, Event::Started), "10.0.0.2", 0);
    // The third peer is answered but not stored.
    let third = announce(&mut t, &req(T1, 3, 5, Event::Started), "10.0.0.3", 0);
    assert_eq!(ports(&third), [1, 2]);
    assert_eq!(t.totals().peers, 2);
    let first = announce(&mut t, &req(T1, 1, 5, Event::None), "10.0.0.1", 1);
    assert_eq!(ports(&first), [2]);
}

/// A made-up info hash: `n` in its first bytes, `tag` in the last.
fn fake_hash(n: u32, tag: u8) -> InfoHash {
    let mut hash = [tag; 20];
    hash[..4].copy_from_slice(&n.to_be_bytes());
    InfoHash(hash)
}

/// The tracker's charges add up to what it holds, and stay within its budget.
fn within_budget(t: &Tracker) {
    let totals = t.totals();
    let used = totals.peers * PEER_BYTES + totals.torrents * TORRENT_BYTES;
    assert_eq!(t.memory_used(), used);
    assert!(
        used <= t.config.max_memory,
        "{used} > {}",
        t.config.max_memory
    );
}

/// 1 MiB overall, 64 KiB per prefix: room for about 1,200 single-peer torrents overall and
/// about 80 per prefix.
fn small_budget() -> TrackerConfig {
    TrackerConfig {
        max_memory: 1 << 20,
        max_memory_per_prefix: 64 << 10,
        ..TrackerConfig::default()
    }
}

#[test]
fn a_flood_from_one_prefix_is_held_to_its_share() {
    let mut t = Tracker::new(small_budget(), AccessList::Open);
    // An honest swarm of two, before the flood.
    announce(&mut t, &req(T1, 1, 5, Event::Started), "192.0.2.1", 0);
    announce(&mut t, &req(T1, 2, 5, Event::Started), "198.51.100.2", 0);
    // 100,000 invented info hashes from one /24, every one answered.
    for n in 0..100_000 {
        let host = format!("203.0.113.{}", n % 250);
        announce(
            &mut t,
            &req(fake_hash(n, 9), 6881, 5, Event::Started),
            &host,
            1,
        );
    }
    within_budget(&t);
    let flood = t.totals().torrents - 1;
    let share = (64 << 10) / (TORRENT_BYTES + PEER_BYTES);
    assert!(
        flood <= share && flood + 2 >= share,
        "{flood} flood torrents kept"
    );
    // Newcomers from elsewhere still get a swarm, and find each other.
    announce(&mut t, &req(T2, 3, 5, Event::Started), "192.0.2.7", 2);
    let second = announce(&mut t, &req(T2, 4, 5, Event::Started), "198.51.100.9", 2);
    assert_eq!(ports(&second), [3]);
    assert_eq!(t.scrape(&T1).incomplete, 2);
}

#[test]
fn a_flood_from_many_prefixes_evicts_its_own_swarms_not_honest_ones() {
    let mut t = Tracker::new(small_budget(), AccessList::Open);
    announce(&mut t, &req(T1, 1, 5, Event::Started), "192.0.2.1", 0);
    announce(&mut t, &req(T1, 2, 5, Event::Started), "198.51.100.2", 0);
    // 100,000 invented info hashes from 10.0.0.0/8, each /24 within its share, two peers
    // of one address each: together far over the overall budget.
    for n in 0..100_000u32 {
        let host = format!("10.{}.{}.1", (n >> 8) & 0xff, n & 0xff);
        for port in [6881, 6882] {
            announce(
                &mut t,
                &req(fake_hash(n, 7), port, 5, Event::Started),
                &host,
                1,
            );
        }
        if n % 1000 == 0 {
            within_budget(&t);
        }
        // Honest newcomers keep arriving during the flood, and are stored.
        if n % 10_000 == 5_000 {
            let hash = fake_hash(n, 1);
            announce(&mut t, &req(hash, 7, 5, Event::Started), "192.0.2.50", 1);
            assert_eq!(
                t.scrape(&hash).incomplete,
                1,
                "honest newcomer {n} not stored"
            );
        }
    }
    within_budget(&t);
    let (evicted, _) = t.evictions();
    assert!(evicted > 90_000, "{evicted} evicted");
    // The honest swarm of two addresses survived the whole flood.
    assert_eq!(t.scrape(&T1).incomplete, 2);
    let third = announce(&mut t, &req(T1, 3, 5, Event::Started), "203.0.113.3", 2);
    assert_eq!(ports(&third), [1, 2]);
}

#[test]
fn expiry_visits_a_bounded_number_of_swarms_and_eventually_all() {
    let config = TrackerConfig {
        peer_ttl: 100,
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(config, AccessList::Open);
    for n in 0..20_000u32 {
        let host = format!("10.{}.{}.1", n >> 8 & 0xff, n & 0xff);
        // Every third torrent also has a peer that keeps announcing.
        announce(
            &mut t,
            &req(fake_hash(n, 3), 1, 5, Event::Started),
            &host,
            0,
        );
        if n % 3 == 0 {
            announce(
                &mut t,
                &req(fake_hash(n, 3), 2, 5, Event::Started),
                &host,
                150,
            );
        }
    }
    assert_eq!(t.totals().peers, 20_000 + 6_667);
    // At time 200, the peers last seen at 0 are stale. Steps of 500 swarms, while
    // honest announces keep coming between them (adding and removing swarms).
    let (mut dropped, mut steps, mut rounds) = (0, 0, 0);
    while rounds < 2 {
        let done = t.expire_step(200, 500);
        assert!(done.visited <= 500);
        dropped += done.peers;
        steps += 1;
        rounds += usize::from(done.round_done);
        let extra = fake_hash(steps, 4);
        announce(&mut t, &req(extra, 9, 5, Event::Started), "192.0.2.9", 200);
        if steps % 2 == 0 {
            announce(&mut t, &req(extra, 9, 5, Event::Stopped), "192.0.2.9", 200);
        }
    }
    assert_eq!(dropped, 20_000);
    assert!(steps >= 20_000 / 500 / 3, "{steps} steps");
    // What is left: the torrents with a fresh peer, and the extra ones still announced.
    let extras = steps.div_ceil(2) as usize;
    assert_eq!(t.totals().torrents, 6_667 + extras);
    assert_eq!(t.totals().peers, 6_667 + extras);
    within_budget(&t);
    // Much later, one full pass of steps empties the tracker.
    while !t.expire_step(10_000, 500).round_done {}
    assert_eq!(t.totals(), Totals::default());
    assert_eq!(t.memory_used(), 0);
    assert_eq!(t.evictions().1, 0, "no prefix is charged for anything");
}

#[test]
fn access_lists() {
    let allow = AccessList::Allow([T1].into_iter().collect());
    let mut t = Tracker::new(TrackerConfig::default(), allow);
    announce(&mut t, &req(T1, 1, 5, Event::Started), "10.0.0.1", 0);
    let mut out = Vec::new();
    let refused = t
        .announce(&req(T2, 1, 5, Event::Started), ip("10.0.0.1"), 0)
        .map(|a| a.write(&mut out));
    assert_eq!(refused, Err(Refusal::NotAllowed));
    let deny = AccessList::Deny([T1].into_iter().collect());
    assert!(!deny.permits(&T1) && deny.permits(&T2));
    // A stopped announce for a refused hash is refused too, not answered empty.
    let stop = t
        .announce(&req(T2, 1, 5, Event::Stopped), ip("10.0.0.1"), 0)
        .map(|a| a.write(&mut out));
    assert_eq!(stop, Err(Refusal::NotAllowed));
}

#[test]
fn reloaded_access_list_drops_swarms_it_no_longer_permits() {
    let mut t = Tracker::new(TrackerConfig::default(), AccessList::Open);
    announce(&mut t, &req(T1, 1, 0, Event::Started), "10.0.0.1", 0);
    announce(&mut t, &req(T1, 2, 5, Event::Started), "10.0.0.2", 0);
    announce(&mut t, &req(T2, 3, 0, Event::Started), "10.0.0.3", 0);
    let before = t.totals();
    assert_eq!((before.torrents, before.peers, before.seeders), (2, 3, 2));

    t.set_access(AccessList::Deny([T1].into_iter().collect()));
    let after = t.totals();
    assert_eq!((after.torrents, after.peers, after.seeders), (1, 1, 1));
    assert_eq!(t.scrape(&T1), ScrapeEntry::default());
    let mut out = Vec::new();
    let refused = t
        .announce(&req(T1, 1, 0, Event::None), ip("10.0.0.1"), 1)
        .map(|a| a.write(&mut out));
    assert_eq!(refused, Err(Refusal::NotAllowed));
    // T2's swarm is kept whole: its seeder is still there for a new leecher.
    let reply = announce(&mut t, &req(T2, 4, 5, Event::Started), "10.0.0.4", 1);
    assert_eq!(ports(&reply), [3]);
}

#[test]
fn dictionary_form_and_ipv6() {
    let mut t = Tracker::new(TrackerConfig::default(), AccessList::Open);
    announce(&mut t, &req(T1, 1, 5, Event::Started), "10.0.0.1", 0);
    announce(&mut t, &req(T1, 2, 5, Event::Started), "fd00::2", 0);
    let mut r = req(T1, 3, 5, Event::Started);
    let compact = announce(&mut t, &r, "fd00::3", 0);
    let doc = decode(&compact, Limits::default()).unwrap();
    let peers6 = field(&doc.root, "peers6").as_bytes().unwrap();
    assert_eq!(peers6.len(), 18);
    assert_eq!(
        &peers6[..16],
        &"fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(
        field(&doc.root, "peers").as_bytes().unwrap(),
        [10, 0, 0, 1, 0, 1]
    );

    r.compact = false;
    let dict = announce(&mut t, &r, "fd00::3", 1);
    let doc = decode(&dict, Limits::default()).unwrap();
    let list = field(&doc.root, "peers").as_list().unwrap();
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(field(first, "ip").as_str(), Some("fd00::2"));
    assert_eq!(field(first, "port").as_int(), Some(2));
    assert_eq!(field(first, "peer id").as_bytes().unwrap().len(), 20);
    r.no_peer_id = true;
    let no_id = announce(&mut t, &r, "fd00::3", 2);
    let doc = decode(&no_id, Limits::default()).unwrap();
    assert!(field(&doc.root, "peers").as_list().unwrap()[0]
        .get("peer id")
        .is_none());
}

#[test]
fn scrape_and_failure_responses_are_canonical() {
    let mut t = Tracker::new(TrackerConfig::default(), AccessList::Open);
    announce(&mut t, &req(T2, 1, 0, Event::Started), "10.0.0.1", 0);
    let mut out = Vec::new();
    response::write_scrape(&mut out, &[(T1, t.scrape(&T1)), (T2, t.scrape(&T2))]);
    let doc = decode(&out, Limits::default()).unwrap();
    assert!(doc.warnings.is_empty());
    let files = field(&doc.root, "files");
    let t2 = files.get(std::str::from_utf8(&[2; 20]).unwrap()).unwrap();
    assert_eq!(field(t2, "complete").as_int(), Some(1));
    assert_eq!(field(t2, "incomplete").as_int(), Some(0));
    let mut out = Vec::new();
    response::write_failure(&mut out, "missing info_hash");
    assert_eq!(out, b"d14:failure reason17:missing info_hashe");
}
