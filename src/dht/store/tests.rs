//! The peer store under a fake clock: every time is `T0` plus some seconds.

use super::*;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

fn t(secs: u64) -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now) + Duration::from_secs(secs)
}

const MIN: u64 = 60;

fn hash(i: u32) -> InfoHash {
    let mut h = [0xabu8; 20];
    h[..4].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

/// IPv4 address `i` (10.0.0.0 + i), port `port`.
fn v4(i: u32, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), port)
}

fn v6(s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(s.parse().unwrap(), port)
}

fn rng() -> fastrand::Rng {
    fastrand::Rng::with_seed(5)
}

fn peers(store: &PeerStore, now: Instant, h: u32, v6: bool) -> Vec<SocketAddr> {
    let mut all = store.get_peers(now, &hash(h), usize::MAX, v6, &mut rng());
    all.sort();
    all
}

/// Checks every index against the entries, and the caps.
fn check(store: &PeerStore) {
    let c = &store.config;
    assert!(store.torrents.len() <= c.max_torrents);
    assert_eq!(store.hashes.len(), store.torrents.len());
    assert_eq!(store.ranks.len(), store.torrents.len());
    let mut entries = 0;
    let mut by_source: HashMap<SocketAddr, HashSet<InfoHash>> = HashMap::new();
    for (h, torrent) in &store.torrents {
        assert!(!torrent.peers.is_empty());
        assert!(torrent.peers.len() <= c.max_peers_per_torrent);
        assert_eq!(store.hashes[torrent.pos], *h);
        assert!(store.ranks.contains(&torrent.rank(*h)));
        assert_eq!(
            torrent.newest,
            torrent.peers.iter().map(|p| p.at).max().unwrap()
        );
        for p in &torrent.peers {
            assert!(by_source.entry(store.key(p.addr)).or_default().insert(*h));
        }
        entries += torrent.peers.len();
    }
    assert_eq!(entries, store.entries);
    assert_eq!(by_source.len(), store.sources.len());
    for (key, list) in &store.sources {
        assert!(list.len() <= c.max_torrents_per_source);
        assert_eq!(list.iter().copied().collect::<HashSet<_>>(), by_source[key]);
        assert_eq!(list.len(), by_source[key].len(), "listed once each");
    }
}

#[test]
fn an_announce_is_found_by_family() {
    let mut store = PeerStore::new(StoreConfig::default());
    assert_eq!(store.announce(t(0), hash(1), v4(1, 6881)), Stored::Added);
    let six = v6("2001:db8::1", 51413);
    assert_eq!(store.announce(t(1), hash(1), six), Stored::Added);
    assert_eq!(peers(&store, t(2), 1, false), [v4(1, 6881)]);
    assert_eq!(peers(&store, t(2), 1, true), [six]);
    assert!(peers(&store, t(2), 2, false).is_empty());
    assert_eq!((store.torrent_count(), store.peer_count()), (1, 2));
    assert_eq!(store.source_count(), 2);
    check(&store);
}

#[test]
fn a_source_has_one_entry_per_torrent_its_port_replaced() {
    let mut store = PeerStore::new(StoreConfig::default());
    store.announce(t(0), hash(1), v4(1, 6881));
    assert_eq!(store.announce(t(1), hash(1), v4(1, 7000)), Stored::Updated);
    assert_eq!(peers(&store, t(1), 1, false), [v4(1, 7000)]);
    // One IPv6 /64 is one source.
    store.announce(t(2), hash(1), v6("2001:db8:0:1::1", 1));
    assert_eq!(
        store.announce(t(3), hash(1), v6("2001:db8:0:1::2", 2)),
        Stored::Updated
    );
    assert_eq!(peers(&store, t(3), 1, true), [v6("2001:db8:0:1::2", 2)]);
    // An IPv4-mapped address is its IPv4 source.
    assert_eq!(
        store.announce(t(4), hash(1), v6("::ffff:10.0.0.1", 9)),
        Stored::Updated
    );
    assert_eq!(store.peer_count(), 2);
    check(&store);

    // Unrestricted (many nodes on one machine): each port counts apart.
    let mut open = PeerStore::new(StoreConfig {
        restrict_ips: false,
        ..StoreConfig::default()
    });
    open.announce(t(0), hash(1), v4(1, 6881));
    assert_eq!(open.announce(t(1), hash(1), v4(1, 7000)), Stored::Added);
    assert_eq!(open.announce(t(2), hash(1), v4(1, 7000)), Stored::Updated);
    assert_eq!(peers(&open, t(2), 1, false), [v4(1, 6881), v4(1, 7000)]);
    check(&open);
}

#[test]
fn entries_expire_after_30_minutes_and_empty_torrents_go() {
    let mut store = PeerStore::new(StoreConfig::default());
    store.announce(t(0), hash(1), v4(1, 1));
    store.announce(t(10 * MIN), hash(1), v4(2, 1));
    store.announce(t(10 * MIN), hash(2), v4(3, 1));
    assert_eq!(peers(&store, t(30 * MIN - 1), 1, false).len(), 2);
    // Left out of answers at once...
    assert_eq!(peers(&store, t(30 * MIN), 1, false), [v4(2, 1)]);
    assert_eq!(store.peer_count(), 3);
    // ...and swept by the next announce.
    store.announce(t(30 * MIN), hash(3), v4(4, 1));
    assert_eq!((store.torrent_count(), store.peer_count()), (3, 3));
    check(&store);
    // Re-announcing keeps an entry alive.
    store.announce(t(35 * MIN), hash(2), v4(3, 1));
    store.expire(t(40 * MIN));
    assert!(peers(&store, t(40 * MIN), 1, false).is_empty());
    assert_eq!(store.torrent_count(), 2, "hash(1) is gone");
    assert_eq!(peers(&store, t(40 * MIN), 2, false), [v4(3, 1)]);
    store.expire(t(65 * MIN));
    assert_eq!((store.torrent_count(), store.peer_count()), (0, 0));
    assert_eq!(store.source_count(), 0);
    check(&store);
}

#[test]
fn a_full_torrent_replaces_its_oldest_entry() {
    let mut store = PeerStore::new(StoreConfig::default());
    for i in 0..100 {
        store.announce(t(u64::from(i)), hash(1), v4(i, 1));
    }
    assert_eq!(store.announce(t(100), hash(1), v4(100, 1)), Stored::Added);
    let all = peers(&store, t(100), 1, false);
    assert_eq!(all.len(), 100);
    assert!(!all.contains(&v4(0, 1)) && all.contains(&v4(100, 1)));
    // The evicted peer re-announcing gets a place back (the next oldest gives way).
    store.announce(t(101), hash(1), v4(0, 1));
    let all = peers(&store, t(101), 1, false);
    assert!(all.contains(&v4(0, 1)) && !all.contains(&v4(1, 1)));
    assert_eq!(store.source_count(), 100);
    check(&store);
}

#[test]
fn answers_are_random_samples_of_at_most_max() {
    let mut store = PeerStore::new(StoreConfig::default());
    for i in 0..100 {
        store.announce(t(0), hash(1), v4(i, 1));
    }
    let all: HashSet<SocketAddr> = peers(&store, t(0), 1, false).into_iter().collect();
    let mut rng = rng();
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let some = store.get_peers(t(0), &hash(1), 10, false, &mut rng);
        assert_eq!(some.len(), 10);
        let distinct: HashSet<SocketAddr> = some.iter().copied().collect();
        assert_eq!(distinct.len(), 10);
        assert!(distinct.is_subset(&all));
        seen.extend(distinct);
    }
    // 200 draws of 10 from 100 miss a given peer with odds (9/10)^200, 1e-9: none is.
    assert_eq!(seen, all);
}

#[test]
fn one_source_holds_at_most_64_torrents_losing_its_oldest() {
    let mut store = PeerStore::new(StoreConfig::default());
    store.announce(t(0), hash(0), v4(2, 1));
    for i in 0..64 {
        store.announce(t(u64::from(i)), hash(i), v4(1, 1));
    }
    // Refreshing hash(0) makes hash(1) its least recent.
    store.announce(t(64), hash(0), v4(1, 1));
    store.announce(t(65), hash(64), v4(1, 1));
    assert_eq!(store.sources[&store.key(v4(1, 1))].len(), 64);
    assert!(store.torrents.contains_key(&hash(0)) && !store.torrents.contains_key(&hash(1)));
    // Its other entries are untouched, and so is everyone else's.
    assert_eq!(peers(&store, t(65), 0, false), [v4(1, 1), v4(2, 1)]);
    check(&store);
}

#[test]
fn a_new_torrent_replaces_a_single_peer_torrent_never_a_shared_one() {
    let config = StoreConfig {
        max_torrents: 4,
        ..StoreConfig::default()
    };
    let mut store = PeerStore::new(config);
    // hash(0) has two peers; hash(1..4) one each, hash(1) announced least recently.
    store.announce(t(0), hash(0), v4(100, 1));
    store.announce(t(0), hash(0), v4(101, 1));
    for i in 1..4 {
        store.announce(t(u64::from(i)), hash(i), v4(i, 1));
    }
    assert_eq!(store.announce(t(10), hash(4), v4(4, 1)), Stored::Added);
    assert!(!store.torrents.contains_key(&hash(1)));
    // A peer joining hash(2) makes hash(3) the least valuable.
    store.announce(t(11), hash(2), v4(102, 1));
    assert_eq!(store.announce(t(12), hash(5), v4(5, 1)), Stored::Added);
    assert!(!store.torrents.contains_key(&hash(3)));
    let kept: HashSet<InfoHash> = store.torrents.keys().copied().collect();
    assert_eq!(kept, [0, 2, 4, 5].map(hash).into());
    check(&store);
    // All torrents shared by two sources: a new one is refused...
    store.announce(t(13), hash(4), v4(104, 1));
    store.announce(t(13), hash(5), v4(105, 1));
    assert_eq!(store.announce(t(14), hash(6), v4(6, 1)), Stored::Refused);
    assert_eq!(store.torrent_count(), 4);
    // ...until entries expire.
    store.announce(t(14 + 30 * MIN), hash(6), v4(6, 1));
    assert_eq!(store.torrent_count(), 1);
    check(&store);
}

#[test]
fn samples_are_distinct_and_cover_the_store() {
    let mut store = PeerStore::new(StoreConfig::default());
    let mut rng = rng();
    assert!(store.samples(20, &mut rng).is_empty());
    for i in 0..5 {
        store.announce(t(0), hash(i), v4(i, 1));
    }
    let mut few = store.samples(20, &mut rng);
    few.sort();
    assert_eq!(few, (0..5).map(hash).collect::<Vec<_>>());
    for i in 5..200 {
        store.announce(t(0), hash(i), v4(i, 1));
    }
    let mut seen = HashSet::new();
    for _ in 0..100 {
        let s = store.samples(20, &mut rng);
        assert_eq!(s.len(), 20);
        let distinct: HashSet<InfoHash> = s.into_iter().collect();
        assert_eq!(distinct.len(), 20);
        seen.extend(distinct);
    }
    assert_eq!(seen.len(), 200);
}

#[test]
fn a_flood_of_a_million_info_hashes_from_many_addresses_stays_bounded() {
    let mut store = PeerStore::new(StoreConfig::default());
    // An honest torrent with two peers, announced before the flood and every 15 minutes.
    let honest = hash(u32::MAX);
    store.announce(t(0), honest, v4(0xff_0001, 6881));
    store.announce(t(0), honest, v4(0xff_0002, 6881));
    // A million announces, each a new info hash, from 1,000 addresses (each at its cap
    // of 64 torrents soon): 10,000 a second for 100 seconds.
    for i in 0..1_000_000u32 {
        let now = t(u64::from(i) / 10_000);
        store.announce(now, hash(i), v4(i % 1000, 1));
        if i % 100_000 == 0 {
            check(&store);
        }
        assert!(store.torrent_count() <= 2000);
        assert!(store.peer_count() <= 2001);
    }
    check(&store);
    assert!(store.source_count() <= 1002);
    assert_eq!(peers(&store, t(100), u32::MAX, false).len(), 2);
    // A new honest torrent still gets in, in place of a flooded one.
    assert_eq!(
        store.announce(t(100), hash(u32::MAX - 1), v4(0xff_0003, 6881)),
        Stored::Added
    );
    assert_eq!(
        peers(&store, t(100), u32::MAX - 1, false),
        [v4(0xff_0003, 6881)]
    );
    check(&store);
}

#[test]
fn a_flood_of_a_million_info_hashes_from_one_address_holds_64_entries() {
    let mut store = PeerStore::new(StoreConfig::default());
    for i in 0..10 {
        store.announce(t(0), hash(u32::MAX - i), v4(0xff_0000 + i, 6881));
    }
    for i in 0..1_000_000u32 {
        store.announce(t(u64::from(i) / 10_000), hash(i), v4(1, 1));
    }
    check(&store);
    assert_eq!(store.torrent_count(), 10 + 64);
    assert_eq!(store.peer_count(), 10 + 64);
    for i in 0..10 {
        assert_eq!(peers(&store, t(100), u32::MAX - i, false).len(), 1);
    }
    // The same from a /64 of IPv6 addresses, each announce from another one.
    for i in 0..100_000u32 {
        let addr = v6(&format!("2001:db8::{:x}:{:x}", i >> 16, i & 0xffff), 1);
        store.announce(t(100), hash(2_000_000 + i), addr);
    }
    check(&store);
    assert_eq!(store.torrent_count(), 10 + 64 + 64);
}
