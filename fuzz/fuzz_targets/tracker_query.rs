//! Tracker query strings: `parse_announce` and `parse_scrape` never panic on any bytes, and
//! every announce that parses is answered with valid, canonical bencode (a tracker kept
//! across inputs, so swarms build up, peers change roles and leave).
#![no_main]

use battorrent::bencode::{decode, Limits};
use battorrent::tracker::{parse_announce, parse_scrape, AccessList, Tracker, TrackerConfig};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::net::IpAddr;

thread_local! {
    static TRACKER: RefCell<(Tracker, u32)> = RefCell::new((
        Tracker::new(
            TrackerConfig {
                // Room for about 60 single-peer torrents, a quarter of it per prefix:
                // eviction and per-prefix refusals are exercised too.
                max_memory: 64 << 10,
                max_memory_per_prefix: 16 << 10,
                max_peers_per_torrent: 16,
                peer_ttl: 50,
                ..TrackerConfig::default()
            },
            AccessList::Open,
        ),
        0,
    ));
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_scrape(data, 8);
    let Ok(announce) = parse_announce(data) else {
        return;
    };
    TRACKER.with(|cell| {
        let (tracker, now) = &mut *cell.borrow_mut();
        *now += 1;
        if *now % 16 == 0 {
            tracker.expire_step(*now, 8);
        }
        // The low bits of the port pick one of a few addresses, of both families.
        let ip: IpAddr = match announce.port % 4 {
            0 => "10.0.0.1".parse().unwrap(),
            1 => "10.0.0.2".parse().unwrap(),
            2 => "fd00::1".parse().unwrap(),
            _ => "::ffff:10.0.0.3".parse().unwrap(),
        };
        let mut out = Vec::new();
        if tracker.announce(&announce, ip, *now).map(|a| a.write(&mut out)).is_ok() {
            let doc = decode(&out, Limits::default())
                .unwrap_or_else(|e| panic!("announce reply is not bencode: {e}: {out:?}"));
            assert!(doc.warnings.is_empty(), "reply not canonical: {:?}", doc.warnings);
        }
    });
});
