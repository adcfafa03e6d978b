use super::*;
use std::net::{IpAddr, Ipv4Addr};

/// A network of `n` nodes with random ids; node i listens at 10.x.y.z:6881.
fn network(n: usize, seed: u64) -> Vec<NodeInfo> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| NodeInfo {
            id: NodeId::random(&mut rng),
            addr: SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
                6881,
            ),
        })
        .collect()
}

/// The `k` nodes of `all` closest to `target` (brute force).
fn truly_closest(all: &[NodeInfo], target: &NodeId, k: usize) -> Vec<NodeInfo> {
    let mut sorted = all.to_vec();
    sorted.sort_by_key(|n| target.distance(&n.id));
    sorted.truncate(k);
    sorted
}

/// What each node knows, as a Kademlia routing table would: for each length of common
/// prefix with its own id, up to K of the nodes that share exactly that much.
fn tables(all: &[NodeInfo]) -> std::collections::HashMap<SocketAddr, Vec<NodeInfo>> {
    all.iter()
        .map(|me| {
            let mut buckets: std::collections::HashMap<usize, Vec<NodeInfo>> = Default::default();
            for o in all.iter().filter(|o| o.addr != me.addr) {
                let b = buckets.entry(me.id.common_prefix_len(&o.id)).or_default();
                if b.len() < K {
                    b.push(*o);
                }
            }
            (me.addr, buckets.into_values().flatten().collect())
        })
        .collect()
}

/// Runs a lookup where each node answers with the K nodes closest to the target in its
/// table, until it is done. `dead` nodes never answer.
fn run(
    lookup: &mut Lookup,
    all: &[NodeInfo],
    tables: &std::collections::HashMap<SocketAddr, Vec<NodeInfo>>,
    dead: &HashSet<SocketAddr>,
    now: &mut Instant,
) {
    let by_addr: std::collections::HashMap<SocketAddr, NodeInfo> =
        all.iter().map(|n| (n.addr, *n)).collect();
    for _ in 0..10_000 {
        let mut asked = Vec::new();
        while let Some(n) = lookup.next_query(*now) {
            asked.push(n);
        }
        if asked.is_empty() {
            if lookup.is_done(*now) {
                return;
            }
            *now += SLOW_AFTER;
            for n in all.iter().filter(|n| dead.contains(&n.addr)) {
                if lookup.is_asked(n.addr) {
                    lookup.on_failure(n.addr);
                }
            }
            continue;
        }
        for n in asked {
            if dead.contains(&n.addr) {
                continue;
            }
            let me = by_addr[&n.addr];
            let reply = truly_closest(&tables[&me.addr], &lookup.target(), K);
            let token = Token::new(&me.id.0[..4]);
            let values = [SocketAddr::from(([192, 168, 0, me.id.0[1]], 7000))];
            lookup.on_response(n.addr, me.id, &reply, &values, token);
        }
    }
    panic!("the lookup never finished");
}

#[test]
fn converges_on_the_k_closest_nodes_of_a_thousand() {
    let all = network(1000, 1);
    let tables = tables(&all);
    let mut rng = fastrand::Rng::with_seed(2);
    for _ in 0..20 {
        let target = NodeId::random(&mut rng);
        // Seeds: 8 random nodes, as a fresh routing table might give.
        let seeds: Vec<NodeInfo> = (0..8).map(|_| all[rng.usize(..all.len())]).collect();
        let mut lookup = Lookup::new(target, Kind::GetPeers, &seeds);
        let mut now = Instant::now();
        run(&mut lookup, &all, &tables, &HashSet::new(), &mut now);
        let found: Vec<NodeId> = lookup.closest_answered().iter().map(|n| n.id).collect();
        let want: Vec<NodeId> = truly_closest(&all, &target, K)
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(found, want, "target {target}");
        let stats = lookup.stats();
        assert!(stats.queries <= MAX_QUERIES);
        assert!(stats.rounds <= 6, "{stats:?}");
        assert_eq!(lookup.announce_targets().len(), K);
        assert!(!lookup.peers().is_empty());
    }
}

#[test]
fn keeps_at_most_alpha_queries_pending_and_slow_ones_free_their_slot() {
    let all = network(200, 3);
    let target = NodeId::random(&mut fastrand::Rng::with_seed(4));
    let mut lookup = Lookup::new(target, Kind::FindNode, &all[..20]);
    let now = Instant::now();
    let mut first = Vec::new();
    while let Some(n) = lookup.next_query(now) {
        first.push(n);
    }
    assert_eq!(first.len(), ALPHA);
    // The closest of the seeds are asked first.
    let mut seeds = all[..20].to_vec();
    seeds.sort_by_key(|n| target.distance(&n.id));
    assert_eq!(first, seeds[..ALPHA].to_vec());
    // Nobody answers: after SLOW_AFTER, three more go out.
    let later = now + SLOW_AFTER;
    let mut second = Vec::new();
    while let Some(n) = lookup.next_query(later) {
        second.push(n);
    }
    assert_eq!(second.len(), ALPHA);
    assert!(!lookup.is_done(later));
}

#[test]
fn dead_nodes_do_not_stop_it_and_the_result_skips_them() {
    let all = network(500, 5);
    let tables = tables(&all);
    let target = NodeId::random(&mut fastrand::Rng::with_seed(6));
    let closest = truly_closest(&all, &target, 3);
    let dead: HashSet<SocketAddr> = closest.iter().map(|n| n.addr).collect();
    let mut lookup = Lookup::new(target, Kind::FindNode, &all[..8]);
    let mut now = Instant::now();
    run(&mut lookup, &all, &tables, &dead, &mut now);
    let found = lookup.closest_answered();
    assert_eq!(found.len(), K);
    assert!(found.iter().all(|n| !dead.contains(&n.addr)));
    let alive: Vec<NodeInfo> = all
        .iter()
        .filter(|n| !dead.contains(&n.addr))
        .copied()
        .collect();
    assert_eq!(found, truly_closest(&alive, &target, K));
}

#[test]
fn answers_from_strangers_or_with_another_id_do_not_count() {
    let all = network(50, 7);
    let target = NodeId::random(&mut fastrand::Rng::with_seed(8));
    let mut lookup = Lookup::new(target, Kind::GetPeers, &all[..4]);
    let now = Instant::now();
    let asked = lookup.next_query(now).unwrap();
    // A node never asked: ignored, its peers too.
    let stranger = all[40];
    let fake_peer = SocketAddr::from(([6, 6, 6, 6], 6666));
    lookup.on_response(stranger.addr, stranger.id, &all[10..20], &[fake_peer], None);
    assert!(lookup.peers().is_empty());
    // The node asked, answering under another id: a failure.
    lookup.on_response(asked.addr, stranger.id, &[], &[fake_peer], None);
    assert!(lookup.peers().is_empty());
    assert_eq!(lookup.stats().failures, 1);
}

#[test]
fn a_flood_of_nodes_and_peers_stays_bounded() {
    let all = network(5000, 9);
    let target = NodeId::random(&mut fastrand::Rng::with_seed(10));
    let mut lookup = Lookup::new(target, Kind::GetPeers, &all[..3]);
    let now = Instant::now();
    let asked = lookup.next_query(now).unwrap();
    let me = all.iter().find(|n| n.addr == asked.addr).unwrap();
    let peers: Vec<SocketAddr> = (0..5000u32)
        .map(|i| SocketAddr::from((i.to_be_bytes(), 1)))
        .collect();
    lookup.on_response(me.addr, me.id, &all, &peers, None);
    assert!(lookup.candidates.len() <= MAX_CANDIDATES);
    assert_eq!(lookup.peers().len(), MAX_PEERS);
    // The closest of the flood were kept.
    let kept: Vec<NodeId> = lookup
        .candidates
        .values()
        .map(|c| c.info.id)
        .take(K)
        .collect();
    let want: Vec<NodeId> = truly_closest(&all, &target, K)
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(kept, want);
}
