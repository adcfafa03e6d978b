//! Measures the tracker's memory.
//!
//! Peers: resident size after 1,000,000 distinct peers announce across 10,000 torrents,
//! minus the resident size before.
//! Flood: N invented info hashes with one peer each (from as many /24s) under a budget of
//! B MiB: what is kept, what is evicted, resident size, whether an honest newcomer is
//! stored, and how long expiry steps of 1,024 swarms hold the tracker. With B = 0, no
//! budget: bytes per single-peer torrent, and one expiry pass over them all.
//! Run: cargo run --release --example tracker_memory [-- PEERS TORRENTS]
//!      cargo run --release --example tracker_memory -- flood [N [B]]   (B = 0: no budget)

use battorrent::metainfo::InfoHash;
use battorrent::tracker::{AccessList, Announce, Event, Tracker, TrackerConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

#[path = "support/rss.rs"]
mod support;
use support::rss;

fn request(hash: u32, peer: u32, left: u64) -> Announce {
    let mut info_hash = [0u8; 20];
    info_hash[..4].copy_from_slice(&hash.to_be_bytes());
    let mut peer_id = *b"-BT0100-000000000000";
    peer_id[16..].copy_from_slice(&peer.to_be_bytes());
    Announce {
        info_hash: InfoHash(info_hash),
        peer_id,
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: Some(left),
        event: Event::Started,
        numwant: Some(0),
        compact: true,
        no_peer_id: false,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("flood") {
        let number = |i: usize, default: u32| {
            args.get(i)
                .map_or(default, |a| a.parse().expect("a number"))
        };
        return flood(number(1, 1_000_000), number(2, 256));
    }
    let number = |i: usize, default: u32| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    peers(number(0, 1_000_000), number(1, 10_000));
}

fn peers(peers: u32, torrents: u32) {
    let mut tracker = Tracker::new(TrackerConfig::default(), AccessList::Open);
    let mut out = Vec::with_capacity(4096);
    let before = rss();
    for i in 0..peers {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
        out.clear();
        tracker
            .announce(&request(i % torrents, i, u64::from(i % 4)), ip, 0)
            .map(|a| a.write(&mut out))
            .expect("accepted");
    }
    let after = rss();
    let totals = tracker.totals();
    assert_eq!(totals.peers, peers as usize);
    println!(
        "{} peers in {} torrents: RSS {:.1} MiB before, {:.1} MiB after: {:.1} bytes per peer (target < 100)",
        totals.peers,
        totals.torrents,
        mib(before),
        mib(after),
        (after - before) as f64 / f64::from(peers)
    );
}

/// The flood's `i`-th address: one per /24 of 10.0.0.0/8, then round again.
fn flood_ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0001 | (i & 0xff_ffff) << 8))
}

fn flood(hashes: u32, budget_mib: u32) {
    if budget_mib > 0 {
        return flood_within_budget(hashes, budget_mib);
    }
    let mut out = Vec::with_capacity(4096);
    // No budget in the way: what one single-peer torrent costs.
    let config = TrackerConfig {
        max_memory: usize::MAX,
        max_memory_per_prefix: usize::MAX,
        ..TrackerConfig::default()
    };
    let mut tracker = Tracker::new(config, AccessList::Open);
    let before = rss();
    for i in 0..hashes {
        out.clear();
        let _ = tracker
            .announce(&request(i, i, 1), flood_ip(i), 0)
            .map(|a| a.write(&mut out));
    }
    let after = rss();
    println!(
        "unbounded: {} single-peer torrents, RSS +{:.1} MiB: {:.0} bytes per torrent with its peer (charged: {} + {})",
        tracker.totals().torrents,
        mib(after.saturating_sub(before)),
        after.saturating_sub(before) as f64 / f64::from(hashes),
        battorrent::tracker::swarm::TORRENT_BYTES,
        battorrent::tracker::swarm::PEER_BYTES,
    );
    let started = Instant::now();
    tracker.expire(u32::MAX);
    println!(
        "  one full expiry pass over them (the old way, under one lock): {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

fn flood_within_budget(hashes: u32, budget_mib: u32) {
    let mut out = Vec::with_capacity(4096);
    let budget = (budget_mib as usize) << 20;
    let config = TrackerConfig {
        max_memory: budget,
        max_memory_per_prefix: budget / 64,
        ..TrackerConfig::default()
    };
    let mut tracker = Tracker::new(config, AccessList::Open);
    let before = rss();
    let started = Instant::now();
    for i in 0..hashes {
        out.clear();
        let _ = tracker
            .announce(&request(i, i, 1), flood_ip(i), 0)
            .map(|a| a.write(&mut out));
    }
    let took = started.elapsed();
    let (evicted, prefixes) = tracker.evictions();
    println!(
        "budget {budget_mib} MiB: {hashes} invented hashes in {:.2} s ({:.0}/s): {} torrents kept, {evicted} evicted, {prefixes} prefixes charged, {:.1} MiB charged, RSS +{:.1} MiB",
        took.as_secs_f64(),
        f64::from(hashes) / took.as_secs_f64(),
        tracker.totals().torrents,
        mib(tracker.memory_used() as u64),
        mib(rss().saturating_sub(before)),
    );
    // An honest newcomer from elsewhere: stored, and found by the next one.
    let honest = u32::MAX;
    let from = |last: u8| IpAddr::V4(Ipv4Addr::new(192, 0, 2, last));
    let _ = tracker.announce(&request(honest, 1, 1), from(1), 1);
    let _ = tracker.announce(&request(honest, 2, 1), from(2), 1);
    let mut info_hash = [0u8; 20];
    info_hash[..4].copy_from_slice(&honest.to_be_bytes());
    let scrape = tracker.scrape(&InfoHash(info_hash));
    println!(
        "  honest newcomer after the flood: {} peers stored in its swarm",
        scrape.incomplete
    );
    // Expiry in steps: how long each holds the tracker.
    let mut steps = Vec::new();
    let started = Instant::now();
    loop {
        let step = Instant::now();
        let done = tracker.expire_step(u32::MAX, 1024);
        steps.push(step.elapsed());
        if done.round_done {
            break;
        }
    }
    steps.sort();
    let at = |q: f64| steps[((steps.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "  expiry in {} steps of 1,024 swarms: median {:.2} ms, 99th percentile {:.2} ms, longest {:.2} ms, all {:.0} ms; {} torrents left",
        steps.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        started.elapsed().as_secs_f64() * 1000.0,
        tracker.totals().torrents
    );
}
