//! Nodes in one process exchanging datagrams under a fake clock.

use super::*;
use std::net::{IpAddr, Ipv4Addr};

/// `n` nodes at 10.0.x.y:6881 and a router (node 0) that the others bootstrap from.
struct Net {
    now: Instant,
    nodes: Vec<Dht>,
    addrs: Vec<SocketAddr>,
    /// The IPv6 address of a dual-stack node.
    addrs6: Vec<Option<SocketAddr>>,
    /// Nodes that drop everything.
    down: Vec<bool>,
    /// Nodes behind a NAT: queries do not reach them, answers to theirs do.
    nat: Vec<bool>,
    delivered: u64,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8)),
        6881,
    )
}

/// One /64 per node (the rate limits count an IPv6 /64 as one source).
fn addr6(i: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, i as u16, 0, 0, 0, 1)),
        6881,
    )
}

impl Net {
    fn new(n: usize) -> Net {
        Net::at((0..n).map(addr).collect())
    }

    /// Nodes at `addrs` (one family each); the first is the router.
    fn at(addrs: Vec<SocketAddr>) -> Net {
        let n = addrs.len();
        Net::build(addrs, vec![None; n])
    }

    /// `n` dual-stack nodes: 10.0.x.y and fd00:0:0:i::1.
    fn dual(n: usize) -> Net {
        Net::build(
            (0..n).map(addr).collect(),
            (0..n).map(|i| Some(addr6(i))).collect(),
        )
    }

    fn build(addrs: Vec<SocketAddr>, addrs6: Vec<Option<SocketAddr>>) -> Net {
        let now = Instant::now();
        let n = addrs.len();
        let router: Vec<SocketAddr> = std::iter::once(addrs[0]).chain(addrs6[0]).collect();
        let nodes = (0..n)
            .map(|i| {
                let config = DhtConfig {
                    bootstrap: if i == 0 { vec![] } else { router.clone() },
                    routing: Config {
                        restrict_ips: false,
                        ..Config::default()
                    },
                    ipv4: addrs[i].is_ipv4(),
                    ipv6: addrs[i].is_ipv6() || addrs6[i].is_some(),
                    seed: i as u64 + 1,
                    ..DhtConfig::default()
                };
                Dht::new(now, config)
            })
            .collect();
        Net {
            now,
            nodes,
            addrs,
            addrs6,
            down: vec![false; n],
            nat: vec![false; n],
            delivered: 0,
        }
    }

    /// Delivers datagrams until none is left.
    fn settle(&mut self) {
        let index: HashMap<SocketAddr, usize> = self
            .addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i))
            .chain(
                self.addrs6
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| a.map(|a| (a, i))),
            )
            .collect();
        for _ in 0..1_000_000 {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some((to, bytes)) = self.nodes[i].poll_transmit() {
                    moved = true;
                    if self.down[i] {
                        continue;
                    }
                    if let Some(&j) = index.get(&to) {
                        let query = bytes.windows(6).any(|w| w == b"1:y1:q");
                        let dropped = self.down[j] || (self.nat[j] && query);
                        if !dropped {
                            // Sent from the sender's address of the destination's family.
                            let from = if to.is_ipv6() && self.addrs[i].is_ipv4() {
                                self.addrs6[i]
                            } else {
                                Some(self.addrs[i])
                            };
                            if let Some(from) = from {
                                self.delivered += 1;
                                self.nodes[j].handle_datagram(self.now, from, &bytes);
                            }
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("never settled");
    }

    /// Advances the clock by `by` in 250 ms steps.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now += Duration::from_millis(250);
            let now = self.now;
            for n in &mut self.nodes {
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                }
            }
            self.settle();
        }
    }
}

#[test]
fn nodes_bootstrap_from_a_router_and_fill_their_tables() {
    let mut net = Net::new(60);
    // Everyone knows only the router; the router knows nobody until they ask it.
    net.advance(Duration::from_secs(30));
    for (i, n) in net.nodes.iter().enumerate().skip(1) {
        assert!(
            n.routing().len() >= K,
            "node {i} has {} nodes",
            n.routing().len()
        );
        assert!(
            n.routing().get(net.addrs[0]).is_none(),
            "the router never enters a table"
        );
    }
}

#[test]
fn a_lookup_finds_the_closest_nodes_and_reports_when_done() {
    let mut net = Net::new(80);
    net.advance(Duration::from_secs(30));
    let hash = InfoHash([0x5a; 20]);
    let now = net.now;
    net.nodes[7].get_peers(now, hash, None);
    net.settle();
    net.advance(Duration::from_secs(10));
    let mut done = None;
    while let Some(e) = net.nodes[7].poll_event() {
        if let DhtEvent::LookupDone {
            info_hash, stats, ..
        } = e
        {
            assert_eq!(info_hash, hash);
            done = Some(stats);
        }
    }
    let stats = done.expect("the lookup ended");
    assert!(stats.answers >= K, "{stats:?}");
    assert!(stats.queries <= crate::dht::lookup::MAX_QUERIES);
}

#[test]
fn a_peer_announced_by_one_node_is_found_by_another() {
    let mut net = Net::new(50);
    net.advance(Duration::from_secs(30));
    let hash = InfoHash([0xc3; 20]);
    let now = net.now;
    // Node 5 is a peer of the torrent on port 7777 and announces itself.
    net.nodes[5].get_peers(now, hash, Some(7777));
    net.advance(Duration::from_secs(10));
    let mut announced = 0;
    while let Some(e) = net.nodes[5].poll_event() {
        if let DhtEvent::LookupDone { announced: n, .. } = e {
            announced = n;
        }
    }
    assert!(announced >= 1, "announced to {announced} nodes");
    // Node 40 looks for peers of the torrent: it finds node 5 at port 7777.
    let now = net.now;
    net.nodes[40].get_peers(now, hash, None);
    net.advance(Duration::from_secs(10));
    let mut found = Vec::new();
    while let Some(e) = net.nodes[40].poll_event() {
        if let DhtEvent::Peers { info_hash, peers } = e {
            assert_eq!(info_hash, hash);
            found.extend(peers);
        }
    }
    let five = SocketAddr::new(net.addrs[5].ip(), 7777);
    assert!(found.contains(&five), "{found:?}");
}

#[test]
fn a_restarted_node_keeps_its_id_and_finds_its_nodes_again() {
    let mut net = Net::new(20);
    net.advance(Duration::from_secs(30));
    let saved = net.nodes[4].save();
    assert!(saved.nodes.len() >= K);
    let bytes = saved.encode();
    // Node 4 restarts with no bootstrap router, only its saved state.
    let config = DhtConfig {
        bootstrap: vec![],
        routing: Config {
            restrict_ips: false,
            ..Config::default()
        },
        saved: Some(crate::dht::persist::Saved::decode(&bytes).unwrap()),
        seed: 99,
        ..DhtConfig::default()
    };
    net.nodes[4] = Dht::new(net.now, config);
    assert_eq!(net.nodes[4].id(), saved.id);
    net.advance(Duration::from_secs(5));
    assert!(
        net.nodes[4].routing().len() >= K,
        "{}",
        net.nodes[4].routing().len()
    );
}

#[test]
fn answers_from_the_wrong_address_or_unknown_transactions_are_dropped() {
    let now = Instant::now();
    let mut a = Dht::new(now, DhtConfig::default());
    let b_addr = addr(2);
    a.add_node(now, b_addr);
    let (to, query) = a.poll_transmit().unwrap();
    assert_eq!(to, b_addr);
    let q = Message::parse(&query).unwrap();
    let reply = Message::response(q.transaction, addr(1), Response::new(NodeId([9; 20])));
    // From somewhere else: ignored, the node is not added.
    a.handle_datagram(now, addr(3), &reply.to_bytes());
    assert!(a.routing().get(addr(3)).is_none());
    assert!(a.routing().get(b_addr).is_none());
    // From the right address: added.
    a.handle_datagram(now, b_addr, &reply.to_bytes());
    assert!(a.routing().get(b_addr).is_some());
    // Again (a replay): no pending query any more, nothing changes.
    let before = a.stats(now).queries_answered;
    a.handle_datagram(now, b_addr, &reply.to_bytes());
    assert_eq!(a.stats(now).queries_answered, before);
}

#[test]
fn garbage_gets_at_most_an_error_and_queries_for_a_read_only_node_get_nothing() {
    let now = Instant::now();
    let mut a = Dht::new(now, DhtConfig::default());
    a.handle_datagram(now, addr(5), b"not bencode at all");
    a.handle_datagram(now, addr(5), &[0xff; 9000]);
    assert_eq!(a.stats(now).bad_datagrams, 2);
    while a.poll_transmit().is_some() {}
    let ping = Message::query(
        TransactionId::new(b"aa").unwrap(),
        NodeId([1; 20]),
        Method::Ping,
    );
    a.handle_datagram(now, addr(5), &ping.to_bytes());
    let (to, bytes) = a.poll_transmit().expect("a pong");
    assert_eq!(to, addr(5));
    assert!(matches!(
        Message::parse(&bytes).unwrap().body,
        Body::Response(_)
    ));
    let mut ro = Dht::new(
        now,
        DhtConfig {
            read_only: true,
            ..DhtConfig::default()
        },
    );
    ro.handle_datagram(now, addr(5), &ping.to_bytes());
    assert!(
        ro.poll_transmit().is_none(),
        "BEP 43: read-only nodes answer nothing"
    );
}

#[test]
fn unanswered_queries_time_out_and_count_against_the_node() {
    let mut net = Net::new(30);
    net.advance(Duration::from_secs(30));
    // Half the network goes down; a lookup still ends, on the nodes that answer.
    for i in 10..30 {
        net.down[i] = true;
    }
    let now = net.now;
    net.nodes[3].get_peers(now, InfoHash([0x11; 20]), None);
    net.advance(Duration::from_secs(30));
    let mut ended = false;
    while let Some(e) = net.nodes[3].poll_event() {
        ended |= matches!(e, DhtEvent::LookupDone { .. });
    }
    assert!(ended);
    assert_eq!(net.nodes[3].stats(net.now).pending, 0);
}

#[test]
fn a_lookup_wakes_the_node_when_a_query_turns_slow_and_never_asks_for_the_past() {
    let t0 = Instant::now();
    let mut a = Dht::new(t0, DhtConfig::default());
    let b = addr(2);
    a.add_node(t0, b);
    let (_, ping) = a.poll_transmit().unwrap();
    let ping = Message::parse(&ping).unwrap();
    let pong = Message::response(ping.transaction, addr(1), Response::new(NodeId([9; 20])));
    a.handle_datagram(t0, b, &pong.to_bytes());
    a.handle_timeout(t0);
    a.get_peers(t0, InfoHash([0x42; 20]), None);
    let (to, _) = a
        .poll_transmit()
        .expect("a get_peers to the one node known");
    assert_eq!(to, b);
    // Unanswered: the node wants to look again when the query turns slow.
    let slow = t0 + crate::dht::lookup::SLOW_AFTER;
    assert_eq!(a.poll_timeout(), Some(slow));
    // Past that, the next wake-up is ahead (the query's expiry), not in the past: a
    // caller sleeping until `poll_timeout` must not spin.
    let later = slow + Duration::from_millis(500);
    a.handle_timeout(later);
    let next = a.poll_timeout().unwrap();
    assert!(next > later, "woken again {:?} early", later - next);
    assert_eq!(next, t0 + QUERY_TIMEOUT);
}

#[test]
fn in_a_three_node_swarm_the_router_keeps_the_seed_announce_and_hands_it_out() {
    // A router, a seed and a downloader that start at once: when the seed looks, the router
    // knows nobody else, so only the router itself can hold the announce. It must be asked
    // the lookup's own get_peers (earning a token), announced to, and asked again by the
    // downloader, which finds the seed at once instead of at a later retry.
    let mut net = Net::new(3);
    let hash = InfoHash([0x77; 20]);
    let now = net.now;
    net.nodes[1].get_peers(now, hash, Some(7001));
    net.settle();
    let mut announced = 0;
    while let Some(e) = net.nodes[1].poll_event() {
        if let DhtEvent::LookupDone { announced: n, .. } = e {
            announced = n;
        }
    }
    assert_eq!(announced, 1, "the seed announced to the router");
    net.nodes[2].get_peers(now, hash, None);
    net.settle();
    let mut found = Vec::new();
    while let Some(e) = net.nodes[2].poll_event() {
        if let DhtEvent::Peers { peers, .. } = e {
            found.extend(peers);
        }
    }
    assert_eq!(found, vec![SocketAddr::new(net.addrs[1].ip(), 7001)]);
    assert!(
        net.nodes[2].routing().get(net.addrs[0]).is_none(),
        "the router still never enters a table"
    );
}

#[test]
fn nodes_at_public_addresses_learn_them_and_take_bep42_ids_without_losing_their_tables() {
    // 198.18.0.0/15 is not exempt from BEP 42: every node's random id is insecure there.
    // One /24 each: a network votes once on our address.
    let addrs: Vec<SocketAddr> = (0..30u8)
        .map(|i| SocketAddr::from(([198, 18, i, 1], 6881)))
        .collect();
    let mut net = Net::at(addrs.clone());
    let before: Vec<NodeId> = net.nodes.iter().map(|n| n.id()).collect();
    net.advance(Duration::from_secs(40));
    for (i, n) in net.nodes.iter().enumerate().skip(1) {
        let ip = addrs[i].ip();
        assert_eq!(n.external_ip(), Some(ip), "node {i}");
        assert!(n.id().is_secure_for(ip), "node {i} took a BEP 42 id");
        assert_ne!(n.id(), before[i]);
        assert!(n.routing().len() >= K, "node {i} has {}", n.routing().len());
        assert_eq!(n.stats(net.now).id, n.id().to_string());
    }
    // The network still works: an announce is found.
    let hash = InfoHash([0x42; 20]);
    let now = net.now;
    net.nodes[3].get_peers(now, hash, Some(5555));
    net.advance(Duration::from_secs(10));
    let now = net.now;
    net.nodes[20].get_peers(now, hash, None);
    net.advance(Duration::from_secs(10));
    let mut found = Vec::new();
    while let Some(e) = net.nodes[20].poll_event() {
        if let DhtEvent::Peers { peers, .. } = e {
            found.extend(peers);
        }
    }
    assert!(
        found.contains(&SocketAddr::new(addrs[3].ip(), 5555)),
        "{found:?}"
    );
}

#[test]
fn nodes_at_private_addresses_keep_their_ids() {
    let mut net = Net::at(
        (0..12u8)
            .map(|i| SocketAddr::from(([10, i, 0, 1], 6881)))
            .collect(),
    );
    let before: Vec<NodeId> = net.nodes.iter().map(|n| n.id()).collect();
    net.advance(Duration::from_secs(30));
    for (i, n) in net.nodes.iter().enumerate().skip(1) {
        assert_eq!(n.external_ip(), Some(net.addrs[i].ip()));
        assert_eq!(n.id(), before[i], "10/8 is exempt from BEP 42");
    }
}

#[test]
fn a_node_behind_a_nat_goes_read_only_and_leaves_the_tables() {
    let mut net = Net::new(30);
    net.nat[7] = true;
    net.advance(Duration::from_secs(60));
    assert!(!net.nodes[7].read_only(), "too early to judge");
    assert!(
        net.nodes[7].routing().len() >= K,
        "it still fills its own table"
    );
    net.advance(Duration::from_secs(31 * 60));
    let stats = net.nodes[7].stats(net.now);
    assert!(stats.read_only, "{stats:?}");
    assert_eq!(stats.queries_received, 0);
    // (A reachable node in a network this small and quiet may go read-only too: nothing
    // needs to query it for half an hour. It still answers, so it stays in the tables.)
    for (i, n) in net.nodes.iter().enumerate() {
        if i != 7 {
            assert!(
                !n.routing().is_live(net.addrs[7]),
                "node {i} keeps the unreachable node live"
            );
        }
    }
    // Its lookups still work.
    let now = net.now;
    net.nodes[7].get_peers(now, InfoHash([9; 20]), None);
    net.advance(Duration::from_secs(10));
    let mut answers = 0;
    while let Some(e) = net.nodes[7].poll_event() {
        if let DhtEvent::LookupDone { stats, .. } = e {
            answers = stats.answers;
        }
    }
    assert!(answers >= K, "{answers}");
}

#[test]
fn dual_stack_nodes_fill_both_tables_and_find_peers_in_each_family() {
    let mut net = Net::dual(40);
    net.advance(Duration::from_secs(30));
    for (i, n) in net.nodes.iter().enumerate().skip(1) {
        assert!(
            n.routing().len() >= K,
            "node {i}: {} IPv4",
            n.routing().len()
        );
        assert!(
            n.routing6().len() >= K,
            "node {i}: {} IPv6",
            n.routing6().len()
        );
        assert!(n.routing6().nodes().all(|x| x.addr().is_ipv6()));
        assert!(n.routing().nodes().all(|x| x.addr().is_ipv4()));
    }
    // Node 5 announces: it is stored at the closest nodes of each DHT, under the address
    // each family saw it at; node 30 finds both.
    let hash = InfoHash([0x66; 20]);
    let now = net.now;
    net.nodes[5].get_peers(now, hash, Some(6006));
    net.advance(Duration::from_secs(10));
    let mut done = Vec::new();
    while let Some(e) = net.nodes[5].poll_event() {
        if let DhtEvent::LookupDone {
            family, announced, ..
        } = e
        {
            done.push((family, announced));
        }
    }
    done.sort_by_key(|(f, _)| *f == Family::V6);
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done.iter().all(|(_, a)| *a >= 1), "{done:?}");
    let now = net.now;
    net.nodes[30].get_peers(now, hash, None);
    net.advance(Duration::from_secs(10));
    let mut found = Vec::new();
    while let Some(e) = net.nodes[30].poll_event() {
        if let DhtEvent::Peers { peers, .. } = e {
            found.extend(peers);
        }
    }
    let v4 = SocketAddr::new(net.addrs[5].ip(), 6006);
    let v6 = SocketAddr::new(net.addrs6[5].unwrap().ip(), 6006);
    assert!(found.contains(&v4) && found.contains(&v6), "{found:?}");
}

#[test]
fn an_ipv6_only_network_works_alone() {
    let addrs: Vec<SocketAddr> = (0..30).map(addr6).collect();
    let mut net = Net::at(addrs);
    net.advance(Duration::from_secs(30));
    for (i, n) in net.nodes.iter().enumerate().skip(1) {
        assert_eq!(n.routing().len(), 0);
        assert!(n.routing6().len() >= K, "node {i}: {}", n.routing6().len());
        assert_eq!(n.stats(net.now).nodes6, n.routing6().len());
    }
    let hash = InfoHash([0x06; 20]);
    let now = net.now;
    net.nodes[2].get_peers(now, hash, Some(7000));
    net.advance(Duration::from_secs(10));
    let now = net.now;
    net.nodes[20].get_peers(now, hash, None);
    net.advance(Duration::from_secs(10));
    let mut found = Vec::new();
    while let Some(e) = net.nodes[20].poll_event() {
        if let DhtEvent::Peers { peers, .. } = e {
            found.extend(peers);
        }
    }
    assert_eq!(found, vec![SocketAddr::new(net.addrs[2].ip(), 7000)]);
}

#[test]
fn a_tiny_network_does_not_keep_looking_for_neighbours_every_few_seconds() {
    // Three nodes: the tables never reach 8, so the own-id lookups back off to 5 minutes.
    let mut net = Net::new(3);
    net.advance(Duration::from_secs(60));
    let early: u64 = net
        .nodes
        .iter()
        .map(|n| n.stats(net.now).queries_sent)
        .sum();
    net.advance(Duration::from_secs(20 * 60));
    let late: u64 = net
        .nodes
        .iter()
        .map(|n| n.stats(net.now).queries_sent)
        .sum();
    let per_node_per_minute = (late - early) as f64 / 3.0 / 20.0;
    assert!(
        per_node_per_minute < 6.0,
        "{per_node_per_minute:.1} queries a minute per node"
    );
    // They still know each other.
    for n in &net.nodes[1..] {
        assert!(!n.routing().is_empty());
    }
}
