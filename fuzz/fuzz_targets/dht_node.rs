//! A whole DHT node (dual-stack, with a router) fed datagrams from a few senders under a
//! fake clock, while it looks for a torrent: never a panic, and its bounds hold.
//!
//! Input: frames of `[control][length][length bytes of datagram]`. Control bits 0-2 pick
//! the sender (IPv4 nodes, the router, IPv4-mapped, IPv6), bits 3-5 how far the clock moves
//! first (0 to 31 minutes), bit 6 makes the datagram answer a query the node sent to that
//! sender (its transaction id is put in, so answers reach the lookups, the routing tables
//! and the external-address vote), bit 7 starts another `get_peers`.
#![no_main]

use battorrent::core::InfoHash;
use battorrent::dht::krpc::{Message, TransactionId};
use battorrent::dht::node::{Dht, DhtConfig, MAX_LOOKUPS, MAX_PENDING};
use battorrent::dht::routing::Config;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SENDERS: [&str; 8] = [
    "198.51.100.1:6881",
    "198.51.100.2:6881",
    "203.0.113.9:1",
    "192.0.2.1:6881",
    "[::ffff:198.51.100.3]:7000",
    "[2001:db8::1]:6881",
    "[2001:db8:0:1::1]:6881",
    "[2001:db8:0:2::1]:1",
];
const ROUTERS: [usize; 2] = [3, 6];
const STEPS: [u64; 8] = [0, 0, 1, 5, 60, 300, 600, 1860];

fuzz_target!(|data: &[u8]| {
    let senders: Vec<SocketAddr> = SENDERS.iter().map(|s| s.parse().unwrap()).collect();
    let config = DhtConfig {
        bootstrap: ROUTERS.iter().map(|&i| senders[i]).collect(),
        routing: Config {
            restrict_ips: false,
            ..Config::default()
        },
        ipv4: true,
        ipv6: true,
        seed: 3,
        ..DhtConfig::default()
    };
    let mut now = Instant::now();
    let mut node = Dht::new(now, config);
    node.get_peers(now, InfoHash([0x5a; 20]), Some(6881));
    // The transaction ids of the node's queries, by destination (latest first).
    let mut sent: HashMap<SocketAddr, Vec<TransactionId>> = HashMap::new();
    let mut hashes = 0u8;
    let mut rest = data;
    while let [control, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        while let Some((to, bytes)) = node.poll_transmit() {
            assert!(bytes.len() <= 1500, "{} bytes", bytes.len());
            let m = Message::parse(&bytes).expect("the node sends what it can parse");
            sent.entry(to).or_default().push(m.transaction);
        }
        while node.poll_event().is_some() {}
        let from = senders[usize::from(control & 7)];
        let step = Duration::from_secs(STEPS[usize::from((control >> 3) & 7)]);
        if !step.is_zero() {
            now += step;
            node.handle_timeout(now);
        }
        if control & 0x80 != 0 {
            hashes = hashes.wrapping_add(1);
            node.get_peers(now, InfoHash([hashes; 20]), None);
        }
        let canonical = SocketAddr::new(from.ip().to_canonical(), from.port());
        let tid = sent.get_mut(&canonical).and_then(Vec::pop);
        match (control & 0x40 != 0, tid, Message::parse(datagram)) {
            (true, Some(tid), Ok(mut m)) => {
                m.transaction = tid;
                node.handle_datagram(now, from, &m.to_bytes());
            }
            _ => node.handle_datagram(now, from, datagram),
        }
        let stats = node.stats(now);
        assert!(stats.pending <= MAX_PENDING);
        assert!(stats.lookups <= MAX_LOOKUPS);
        assert!(node.routing().nodes().all(|n| n.addr().is_ipv4()));
        assert!(node.routing6().nodes().all(|n| n.addr().is_ipv6()));
        for r in ROUTERS {
            let router = senders[r];
            assert!(node.routing().get(router).is_none() && node.routing6().get(router).is_none());
        }
    }
});
