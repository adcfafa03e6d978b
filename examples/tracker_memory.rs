//! Measures the tracker's memory per peer: resident size after 1,000,000 distinct peers
//! announce across 10,000 torrents, minus the resident size before.
//! Run: cargo run --release --example tracker_memory [-- PEERS TORRENTS]

use battorrent::metainfo::InfoHash;
use battorrent::tracker::{AccessList, Announce, Event, Tracker, TrackerConfig};
use std::net::{IpAddr, Ipv4Addr};

#[path = "support/rss.rs"]
mod support;
use support::rss;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u32>().expect("a number"));
    let peers = args.next().unwrap_or(1_000_000);
    let torrents = args.next().unwrap_or(10_000);
    let mut tracker = Tracker::new(TrackerConfig::default(), AccessList::Open);
    let mut out = Vec::with_capacity(4096);
    let before = rss();
    for i in 0..peers {
        let t = i % torrents;
        let mut hash = [0u8; 20];
        hash[..4].copy_from_slice(&t.to_be_bytes());
        let mut peer_id = *b"-BT0100-000000000000";
        peer_id[16..].copy_from_slice(&i.to_be_bytes());
        let req = Announce {
            info_hash: InfoHash(hash),
            peer_id,
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: Some(u64::from(i % 4)),
            event: Event::Started,
            numwant: Some(0),
            compact: true,
            no_peer_id: false,
        };
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
        out.clear();
        tracker
            .announce(&req, ip, 0)
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
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        (after - before) as f64 / f64::from(peers)
    );
}
