//! The routing table under a fake clock: every time is `T0` plus some seconds.

use super::*;
use std::sync::OnceLock;

fn t(secs: u64) -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now) + Duration::from_secs(secs)
}

const MIN: u64 = 60;

/// Our id in these tests: all zeros, so a node's bucket is the position of its first set bit.
const OWN: NodeId = NodeId([0; 20]);

/// An id sharing exactly `cpl` leading bits with [`OWN`], told apart by `tail` in its last
/// bytes (for `cpl` < 144).
fn id(cpl: usize, tail: u16) -> NodeId {
    let mut id = OWN.with_bit_flipped(cpl);
    id.0[18..].copy_from_slice(&tail.to_be_bytes());
    id
}

/// Address `i`, each in a /24 of its own.
fn addr(i: u32) -> SocketAddr {
    let [_, a, b, c] = i.to_be_bytes();
    SocketAddr::from(([10 + a, b, c, 1], 6881))
}

fn table() -> RoutingTable {
    RoutingTable::with_rng(OWN, Config::default(), fastrand::Rng::with_seed(1))
}

fn open_table() -> RoutingTable {
    let config = Config {
        restrict_ips: false,
        ..Config::default()
    };
    RoutingTable::with_rng(OWN, config, fastrand::Rng::with_seed(2))
}

/// Checks the table's structure: every node in its bucket, bounds, indexes in step.
fn check(table: &RoutingTable) {
    let config = &table.config;
    assert!((1..=ID_BITS).contains(&table.buckets.len()));
    let mut count = 0;
    let mut ips: HashMap<IpAddr, u32> = HashMap::new();
    for (b, bucket) in table.buckets.iter().enumerate() {
        assert!(bucket.live.len() <= config.bucket_size, "bucket {b}");
        assert!(
            bucket.replacements.len() <= config.replacements,
            "bucket {b}"
        );
        assert!(
            bucket.live.iter().all(Node::confirmed),
            "live nodes answered"
        );
        let all: Vec<&Node> = bucket.live.iter().chain(&bucket.replacements).collect();
        for n in &all {
            assert_ne!(n.id(), table.own);
            assert_eq!(table.bucket_index(&n.id()), b);
            assert_eq!(table.by_addr.get(&n.addr()), Some(&n.id()));
            assert!(!table.excluded.contains(&n.addr()));
            *ips.entry(n.addr().ip()).or_insert(0) += 1;
            count += 1;
        }
        if config.restrict_ips {
            for (i, a) in all.iter().enumerate() {
                for other in &all[i + 1..] {
                    assert!(!same_subnet(a.addr().ip(), other.addr().ip()), "bucket {b}");
                }
            }
        }
    }
    assert_eq!(count, table.by_addr.len());
    assert_eq!(ips, table.ips);
    if config.restrict_ips {
        assert!(ips.values().all(|&n| n == 1));
    }
}

#[test]
fn a_node_goes_live_once_it_answers_and_waits_in_the_cache_until_then() {
    let mut rt = table();
    assert_eq!(
        rt.insert(t(0), id(3, 1), addr(1), Contact::Heard),
        Insert::Cached
    );
    assert_eq!(
        rt.insert(t(0), id(3, 2), addr(2), Contact::Queried),
        Insert::Cached
    );
    assert!(rt.is_empty() && !rt.is_live(addr(1)));
    assert_eq!(rt.closest(&OWN, 8), []);
    // Heard again: nothing changes.
    assert_eq!(
        rt.insert(t(1), id(3, 1), addr(1), Contact::Heard),
        Insert::Updated
    );
    // It answers our ping: live.
    assert_eq!(
        rt.insert(t(2), id(3, 1), addr(1), Contact::Responded),
        Insert::Added
    );
    assert!(rt.is_live(addr(1)));
    assert_eq!(
        rt.insert(t(3), id(3, 1), addr(1), Contact::Responded),
        Insert::Updated
    );
    // A node answering at once is live at once.
    assert_eq!(
        rt.insert(t(3), id(4, 1), addr(3), Contact::Responded),
        Insert::Added
    );
    assert_eq!(rt.len(), 2);
    assert_eq!(
        rt.health(t(3)),
        Health {
            buckets: 1,
            good: 2,
            questionable: 0,
            bad: 0,
            replacements: 1
        }
    );
    check(&rt);
}

#[test]
fn never_our_own_id_an_excluded_router_or_an_unusable_address() {
    let mut rt = table();
    assert_eq!(
        rt.insert(t(0), OWN, addr(1), Contact::Responded),
        Insert::Refused(Refusal::OwnId)
    );
    let router: SocketAddr = "67.215.246.10:6881".parse().unwrap();
    rt.exclude(router);
    assert_eq!(
        rt.insert(t(0), id(1, 1), router, Contact::Responded),
        Insert::Refused(Refusal::Excluded)
    );
    for bad in [
        "10.0.0.1:0",
        "0.0.0.0:6881",
        "224.0.0.1:6881",
        "255.255.255.255:1",
        "[::]:1",
    ] {
        assert_eq!(
            rt.insert(t(0), id(1, 2), bad.parse().unwrap(), Contact::Responded),
            Insert::Refused(Refusal::InvalidAddress),
            "{bad}"
        );
    }
    // Excluding an address already in the table drops its node.
    assert_eq!(
        rt.insert(t(0), id(1, 3), addr(3), Contact::Responded),
        Insert::Added
    );
    rt.exclude(addr(3));
    assert!(rt.get(addr(3)).is_none() && rt.is_empty());
    check(&rt);
}

#[test]
fn only_the_bucket_holding_our_id_splits() {
    let mut rt = table();
    // Eight nodes of the far half (first bit differs from ours) fill the only bucket.
    for i in 0..8 {
        assert_eq!(
            rt.insert(t(0), id(0, i), addr(i.into()), Contact::Responded),
            Insert::Added
        );
    }
    assert_eq!(rt.bucket_count(), 1);
    // A ninth of the far half: the bucket splits (it holds our id), but the far half
    // is still full, so it waits.
    assert_eq!(
        rt.insert(t(0), id(0, 8), addr(8), Contact::Responded),
        Insert::Cached
    );
    assert_eq!(rt.bucket_count(), 2);
    // The far bucket never splits again, however many come.
    for i in 9..100 {
        rt.insert(t(0), id(0, i), addr(i.into()), Contact::Responded);
    }
    assert_eq!(rt.bucket_count(), 2);
    assert_eq!(rt.len(), 8);
    // The near half fills, then splits around our id.
    for i in 0..8 {
        let n = 100 + u32::from(i);
        assert_eq!(
            rt.insert(t(0), id(1, i), addr(n), Contact::Responded),
            Insert::Added
        );
    }
    assert_eq!(
        rt.insert(t(0), id(5, 0), addr(200), Contact::Responded),
        Insert::Added
    );
    assert_eq!(rt.bucket_count(), 3);
    assert_eq!(rt.buckets[1].live.len(), 8);
    assert_eq!(rt.buckets[2].live.len(), 1);
    // Nodes deeper still go to the last bucket until it fills.
    assert_eq!(
        rt.insert(t(0), id(9, 0), addr(201), Contact::Responded),
        Insert::Added
    );
    assert_eq!(rt.bucket_count(), 3);
    assert_eq!(rt.len(), 18);
    check(&rt);
}

#[test]
fn a_split_carries_the_cache_along() {
    let mut rt = open_table();
    for i in 0..8 {
        rt.insert(t(0), id(1, i), addr(i.into()), Contact::Responded);
    }
    // Heard of, near our id: cached in the one bucket.
    assert_eq!(
        rt.insert(t(0), id(7, 0), addr(50), Contact::Heard),
        Insert::Cached
    );
    assert_eq!(
        rt.insert(t(0), id(0, 0), addr(51), Contact::Heard),
        Insert::Cached
    );
    // A far node answering splits the bucket: the cached ones follow their ids.
    assert_eq!(
        rt.insert(t(0), id(0, 1), addr(52), Contact::Responded),
        Insert::Added
    );
    assert_eq!(rt.bucket_count(), 2);
    check(&rt);
    // The near cached node answers its ping: it splits the near bucket to get in.
    assert_eq!(
        rt.insert(t(1), id(7, 0), addr(50), Contact::Responded),
        Insert::Added
    );
    assert_eq!(rt.bucket_count(), 3);
    check(&rt);
}

#[test]
fn questionable_after_15_minutes_of_silence_good_again_when_heard_from() {
    let mut rt = table();
    rt.insert(t(0), id(2, 1), addr(1), Contact::Responded);
    let state = |rt: &RoutingTable, at| rt.get(addr(1)).unwrap().state(at, rt.config());
    assert_eq!(state(&rt, t(15 * MIN - 1)), NodeState::Good);
    assert_eq!(state(&rt, t(15 * MIN)), NodeState::Questionable);
    // It queries us: good again, since it has answered before.
    rt.insert(t(20 * MIN), id(2, 1), addr(1), Contact::Queried);
    assert_eq!(state(&rt, t(20 * MIN)), NodeState::Good);
    assert_eq!(state(&rt, t(35 * MIN)), NodeState::Questionable);
    rt.insert(t(40 * MIN), id(2, 1), addr(1), Contact::Responded);
    assert_eq!(state(&rt, t(54 * MIN)), NodeState::Good);
    // A node that only ever queried us is not good.
    rt.insert(t(0), id(3, 1), addr(2), Contact::Queried);
    let querier = rt.get(addr(2)).unwrap();
    assert_eq!(querier.state(t(0), rt.config()), NodeState::Questionable);
}

#[test]
fn bad_nodes_give_way_to_confirmed_replacements() {
    let mut rt = table();
    for i in 0..8 {
        rt.insert(t(0), id(0, i), addr(i.into()), Contact::Responded);
    }
    // Two candidates wait: one heard of, one that answered.
    assert_eq!(
        rt.insert(t(1), id(0, 8), addr(8), Contact::Heard),
        Insert::Cached
    );
    assert_eq!(
        rt.insert(t(1), id(0, 9), addr(9), Contact::Responded),
        Insert::Cached
    );
    assert_eq!(rt.failed(t(2), addr(0)), Some(NodeState::Questionable));
    assert_eq!(rt.failed(t(3), addr(0)), Some(NodeState::Questionable));
    assert!(rt.is_live(addr(0)), "not bad yet");
    assert_eq!(rt.failed(t(4), addr(0)), Some(NodeState::Bad));
    // Gone, and the candidate that answered took its place.
    assert!(rt.get(addr(0)).is_none());
    assert!(rt.is_live(addr(9)) && !rt.is_live(addr(8)));
    assert_eq!(rt.len(), 8);
    check(&rt);

    // With only an unconfirmed candidate, a bad node stays (the table does not empty
    // itself while we are offline) but is no longer offered.
    for _ in 0..3 {
        rt.failed(t(5), addr(1));
    }
    assert!(rt.is_live(addr(1)));
    assert_eq!(
        rt.get(addr(1)).unwrap().state(t(5), rt.config()),
        NodeState::Bad
    );
    assert!(!rt.closest(&id(0, 1), 8).iter().any(|n| n.addr == addr(1)));
    assert_eq!(rt.health(t(5)).bad, 1);
    // An answer from it clears its failures.
    assert_eq!(
        rt.insert(t(6), id(0, 1), addr(1), Contact::Responded),
        Insert::Updated
    );
    assert_eq!(
        rt.get(addr(1)).unwrap().state(t(6), rt.config()),
        NodeState::Good
    );

    // A newcomer that answers takes a bad node's place directly.
    for _ in 0..3 {
        rt.failed(t(7), addr(2));
    }
    assert_eq!(
        rt.insert(t(8), id(0, 50), addr(50), Contact::Responded),
        Insert::Added
    );
    assert!(rt.get(addr(2)).is_none() && rt.is_live(addr(50)));
    // A full bucket of nodes that are not bad takes no one.
    assert_eq!(
        rt.insert(t(9), id(0, 51), addr(51), Contact::Responded),
        Insert::Cached
    );
    check(&rt);
}

#[test]
fn a_cached_node_that_never_answered_goes_at_its_first_failure() {
    let mut rt = table();
    rt.insert(t(0), id(4, 1), addr(1), Contact::Heard);
    assert_eq!(rt.failed(t(1), addr(1)), Some(NodeState::Bad));
    assert!(rt.get(addr(1)).is_none());
    assert_eq!(rt.failed(t(1), addr(1)), None);
    check(&rt);
}

#[test]
fn the_replacement_cache_is_bounded_and_keeps_the_best() {
    let mut rt = table();
    for i in 0..8 {
        rt.insert(t(0), id(0, i), addr(i.into()), Contact::Responded);
    }
    // Eight confirmed candidates fill the cache.
    for i in 8..16 {
        assert_eq!(
            rt.insert(t(1), id(0, i), addr(i.into()), Contact::Responded),
            Insert::Cached
        );
    }
    // One only heard of is worth less than all of them.
    assert_eq!(
        rt.insert(t(2), id(0, 16), addr(16), Contact::Heard),
        Insert::Refused(Refusal::Full)
    );
    // One that answered later replaces the stalest.
    assert_eq!(
        rt.insert(t(3), id(0, 17), addr(17), Contact::Responded),
        Insert::Cached
    );
    assert_eq!(rt.buckets[0].replacements.len(), 8);
    assert_eq!(rt.health(t(3)).replacements, 8);
    check(&rt);
    // Among nodes only heard of, the newest is kept.
    let mut rt = table();
    for i in 0..8 {
        rt.insert(t(0), id(0, i), addr(i.into()), Contact::Responded);
    }
    for i in 8..100 {
        assert_eq!(
            rt.insert(t(i.into()), id(0, i), addr(i.into()), Contact::Heard),
            Insert::Cached
        );
    }
    assert!(rt.get(addr(99)).is_some() && rt.get(addr(8)).is_none());
    check(&rt);
}

#[test]
fn closest_orders_by_xor_distance() {
    let mut rng = fastrand::Rng::with_seed(3);
    let own = NodeId::random(&mut rng);
    let config = Config {
        restrict_ips: false,
        ..Config::default()
    };
    let mut rt = RoutingTable::with_rng(own, config, fastrand::Rng::with_seed(4));
    for i in 0..3000 {
        // Many near our id, so that the table is deep.
        let bits = rng.usize(0..24);
        let id = NodeId::random_with_prefix(&own, bits, &mut rng);
        rt.insert(t(0), id, addr(i), Contact::Responded);
    }
    // A few bad ones, to be left out.
    let victims: Vec<SocketAddr> = rt.nodes().step_by(7).map(Node::addr).collect();
    for a in &victims {
        for _ in 0..3 {
            rt.failed(t(1), *a);
        }
    }
    check(&rt);
    assert!(rt.bucket_count() > 10, "{}", rt.bucket_count());
    let mut targets = vec![own, own.with_bit_flipped(0), own.with_bit_flipped(159)];
    targets.extend((0..50).map(|_| NodeId::random(&mut rng)));
    targets.extend((0..50).map(|i| NodeId::random_with_prefix(&own, i % 30, &mut rng)));
    for target in targets {
        for n in [1, 8, 20, 5000] {
            let mut all: Vec<NodeInfo> = rt
                .nodes()
                .filter(|node| !victims.contains(&node.addr()))
                .map(Node::info)
                .collect();
            all.sort_by_key(|node| node.id.distance(&target));
            all.truncate(n);
            assert_eq!(rt.closest(&target, n), all, "{target} {n}");
        }
    }
}

#[test]
fn one_node_per_ip_in_the_table_and_per_subnet_in_a_bucket() {
    let mut rt = table();
    let at = |s: &str| -> SocketAddr { s.parse().unwrap() };
    // Two buckets: the far half (full), and the near half.
    for i in 0..8 {
        rt.insert(t(0), id(0, i), addr(i.into()), Contact::Responded);
    }
    rt.insert(t(0), id(1, 0), addr(100), Contact::Responded);
    assert_eq!(rt.bucket_count(), 2);
    assert_eq!(
        rt.insert(t(0), id(3, 1), at("203.0.113.5:6881"), Contact::Responded),
        Insert::Added
    );
    // The same IP on another port, even in another bucket: refused.
    assert_eq!(
        rt.insert(t(0), id(0, 50), at("203.0.113.5:6882"), Contact::Responded),
        Insert::Refused(Refusal::SameIp)
    );
    // The same /24 in the same bucket: refused; in another bucket: taken.
    assert_eq!(
        rt.insert(t(0), id(3, 2), at("203.0.113.6:6881"), Contact::Heard),
        Insert::Refused(Refusal::SameSubnet)
    );
    assert_eq!(
        rt.insert(t(0), id(0, 51), at("203.0.113.6:6881"), Contact::Heard),
        Insert::Cached
    );
    // IPv6: the same /64 in one bucket is refused.
    assert_eq!(
        rt.insert(t(0), id(5, 1), at("[2001:db8::1]:1"), Contact::Responded),
        Insert::Added
    );
    assert_eq!(
        rt.insert(t(0), id(5, 2), at("[2001:db8::2]:1"), Contact::Responded),
        Insert::Refused(Refusal::SameSubnet)
    );
    assert_eq!(
        rt.insert(
            t(0),
            id(5, 3),
            at("[2001:db8:0:1::2]:1"),
            Contact::Responded
        ),
        Insert::Added
    );
    check(&rt);
    // Without the restriction (a test network on one /24), all of them go in.
    let mut rt = open_table();
    for port in 1..=20 {
        let a = SocketAddr::from(([10, 0, 0, 1], port));
        assert_eq!(
            rt.insert(t(0), id(port.into(), 0), a, Contact::Responded),
            Insert::Added,
            "{port}"
        );
    }
    assert_eq!(rt.len(), 20);
    check(&rt);
}

#[test]
fn an_address_keeps_its_id_and_an_id_its_address() {
    let mut rt = table();
    rt.insert(t(0), id(2, 1), addr(1), Contact::Responded);
    // Someone names another id at that address: ignored.
    assert_eq!(
        rt.insert(t(1), id(2, 2), addr(1), Contact::Heard),
        Insert::Refused(Refusal::AddressTaken)
    );
    // Or the same id at another address.
    assert_eq!(
        rt.insert(t(1), id(2, 1), addr(2), Contact::Responded),
        Insert::Refused(Refusal::IdTaken)
    );
    // The address itself answers with a new id: the node restarted.
    assert_eq!(
        rt.insert(t(2), id(2, 2), addr(1), Contact::Responded),
        Insert::Added
    );
    assert_eq!(rt.get(addr(1)).unwrap().id(), id(2, 2));
    assert_eq!(rt.len(), 1);
    // A heard-of address of an id gives way to the address that answers with it.
    rt.insert(t(3), id(2, 7), addr(7), Contact::Heard);
    assert_eq!(
        rt.insert(t(4), id(2, 7), addr(8), Contact::Responded),
        Insert::Added
    );
    assert!(rt.get(addr(7)).is_none() && rt.is_live(addr(8)));
    check(&rt);
}

#[test]
fn a_flood_of_distinct_ids_keeps_the_table_bounded() {
    let mut rng = fastrand::Rng::with_seed(5);
    for restrict_ips in [false, true] {
        let config = Config {
            restrict_ips,
            ..Config::default()
        };
        let mut rt = RoutingTable::with_rng(OWN, config, fastrand::Rng::with_seed(6));
        // Random ids, then ids crafted ever closer to ours to force every split.
        for i in 0..50_000 {
            let contact = if i % 3 == 0 {
                Contact::Heard
            } else {
                Contact::Responded
            };
            rt.insert(t(i.into()), NodeId::random(&mut rng), addr(i), contact);
        }
        for depth in 0..ID_BITS {
            for j in 0..20 {
                let i = 50_000 + (depth * 20 + j) as u32;
                let id =
                    NodeId::random_with_prefix(&OWN.with_bit_flipped(depth), depth + 1, &mut rng);
                rt.insert(t(i.into()), id, addr(i), Contact::Responded);
            }
        }
        check(&rt);
        // The deepest bucket that can fill (and split) holds ids sharing at least 156
        // bits with ours: 15 of them. Past that, 7 ids at most share 157 bits, too few to
        // fill a bucket: so 158 buckets, the most K = 8 allows.
        assert_eq!(rt.bucket_count(), 158);
        assert!(rt.len() <= ID_BITS * K);
        let h = rt.health(t(100_000));
        assert!(h.replacements <= ID_BITS * K);
        assert_eq!(rt.by_addr.len(), rt.len() + h.replacements);
        assert!(rt.buckets[157].live.len() <= 7);
    }
}

#[test]
fn questionable_nodes_are_pinged_before_candidates_and_not_twice_a_minute() {
    let mut rt = table();
    for i in 0..8 {
        rt.insert(t(0), id(0, i), addr(i.into()), Contact::Responded);
    }
    rt.insert(t(0), id(2, 0), addr(20), Contact::Responded);
    rt.insert(t(0), id(0, 30), addr(30), Contact::Heard);
    rt.insert(t(0), id(3, 0), addr(31), Contact::Heard);
    check(&rt);
    // All good: only the candidates that never answered are proposed, the one of a
    // bucket with room first.
    assert_eq!(rt.bucket_count(), 2);
    let first = rt.nodes_to_ping(t(1), 10);
    assert_eq!(
        first.iter().map(|n| n.addr).collect::<Vec<_>>(),
        [addr(31), addr(30)]
    );
    // Not again within a minute.
    assert_eq!(rt.nodes_to_ping(t(2), 10), []);
    // 16 minutes on: the far bucket's questionable nodes, which a candidate is waiting
    // for, come first, then the other bucket's, then the candidates again; `max` holds.
    let later = rt.nodes_to_ping(t(16 * MIN), 9);
    assert_eq!(later.len(), 9);
    let far: Vec<_> = (0..8).map(addr).collect();
    assert!(later[..8].iter().all(|n| far.contains(&n.addr)));
    assert_eq!(later[8].addr, addr(20));
    let rest = rt.nodes_to_ping(t(16 * MIN), 10);
    assert_eq!(
        rest.iter().map(|n| n.addr).collect::<Vec<_>>(),
        [addr(31), addr(30)]
    );
    assert_eq!(rt.nodes_to_ping(t(16 * MIN + 30), 10), []);
}

#[test]
fn stale_buckets_are_refreshed_with_a_target_in_their_range() {
    let mut rt = table();
    // A new table: its one bucket was never refreshed.
    assert_eq!(rt.needs_refresh(t(0)).len(), 1);
    assert_eq!(rt.needs_refresh(t(1)), []);
    for i in 0..8 {
        rt.insert(t(10), id(0, i), addr(i.into()), Contact::Responded);
    }
    for i in 0..8 {
        rt.insert(
            t(10),
            id(1, i),
            addr(100 + u32::from(i)),
            Contact::Responded,
        );
    }
    rt.insert(t(10), id(4, 0), addr(200), Contact::Responded);
    assert_eq!(rt.bucket_count(), 3);
    assert_eq!(rt.needs_refresh(t(10 + 15 * MIN - 1)), []);
    // An answer keeps bucket 1 fresh.
    rt.insert(t(10 * MIN), id(1, 0), addr(100), Contact::Responded);
    let targets = rt.needs_refresh(t(10 + 15 * MIN));
    let buckets: Vec<usize> = targets.iter().map(|t| rt.bucket_index(t)).collect();
    assert_eq!(buckets, [0, 2]);
    // Bucket i's target shares exactly i bits with our id; the last bucket's at least i.
    assert_eq!(OWN.common_prefix_len(&targets[0]), 0);
    assert!(OWN.common_prefix_len(&targets[1]) >= 2);
    assert_eq!(rt.needs_refresh(t(11 + 15 * MIN)), []);
    assert_eq!(rt.needs_refresh(t(10 * MIN + 15 * MIN)).len(), 1);
}

#[test]
fn a_cached_node_that_answers_into_a_full_bucket_stays_cached_even_across_a_split() {
    let mut rt = table();
    for i in 0..8 {
        rt.insert(t(0), id(0, i), addr(i.into()), Contact::Responded);
    }
    assert_eq!(
        rt.insert(t(0), id(0, 50), addr(50), Contact::Heard),
        Insert::Cached
    );
    // It answers: the last bucket splits for it, but its half is still full of good nodes.
    assert_eq!(
        rt.insert(t(1), id(0, 50), addr(50), Contact::Responded),
        Insert::Updated
    );
    assert_eq!(rt.bucket_count(), 2);
    assert!(!rt.is_live(addr(50)) && rt.get(addr(50)).unwrap().confirmed());
    check(&rt);
}
