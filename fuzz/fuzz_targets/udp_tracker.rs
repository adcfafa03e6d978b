//! The UDP tracker's front end on any datagram: no panic, every reply fits one datagram
//! (and parses as a reply to the request's transaction), and a request without a valid
//! connection id (as the front end itself judges it) is never answered with more bytes
//! than it had (no amplification).
//!
//! The first byte steers: bit 0 puts a valid connection id in front of the rest, bit 1
//! sends from IPv6, bits 2-3 pick one of four source addresses, bits 4-7 move the clock
//! (so ids expire). One tracker and front end are kept across inputs so swarms build up.
#![no_main]

use battorrent::core::InfoHash;
use battorrent::tracker::udp::front::{MAX_REPLY_V4, MAX_REPLY_V6};
use battorrent::tracker::udp::{Reply, UdpFront};
use battorrent::tracker::{AccessList, Tracker, TrackerConfig};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

struct State {
    front: UdpFront,
    tracker: Mutex<Tracker>,
    now: u32,
    out: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        front: UdpFront::default(),
        tracker: Mutex::new(Tracker::new(
            TrackerConfig {
                max_memory: 64 << 10,
                max_memory_per_prefix: 16 << 10,
                max_peers_per_torrent: 300,
                max_numwant: 1000,
                default_numwant: 1000,
                peer_ttl: 600,
                ..TrackerConfig::default()
            },
            // Info hashes of zeros are refused.
            AccessList::Deny([InfoHash([0; 20])].into_iter().collect()),
        )),
        now: 0,
        out: Vec::new(),
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&steer, rest)) = data.split_first() else {
        return;
    };
    STATE.with(|cell| {
        let state = &mut *cell.borrow_mut();
        state.now += u32::from(steer >> 4) * 4;
        let v6 = steer & 2 != 0;
        let host = (steer >> 2) & 3;
        let ip: IpAddr = match (v6, host) {
            (false, 3) => "::ffff:10.0.0.3".parse().unwrap(),
            (false, n) => IpAddr::from([10, 0, 0, n]),
            (true, n) => format!("2001:db8::{n}").parse().unwrap(),
        };
        let from = SocketAddr::new(ip, 6881);
        let connected = steer & 1 != 0;
        let mut datagram = Vec::with_capacity(rest.len() + 8);
        if connected {
            datagram.extend_from_slice(&state.front.issue(from, state.now).to_be_bytes());
        }
        datagram.extend_from_slice(rest);
        let State {
            front,
            tracker,
            now,
            out,
        } = state;
        if !front.handle(tracker, &datagram, from, *now, out) {
            assert!(out.is_empty());
            return;
        }
        let limit = if ip.to_canonical().is_ipv6() {
            MAX_REPLY_V6
        } else {
            MAX_REPLY_V4
        };
        assert!(out.len() <= limit, "{} bytes", out.len());
        // The fuzzer finds valid ids on its own too (from the comparisons it watches), so
        // ask the front end rather than trust bit 0.
        let proven = datagram.get(..8).is_some_and(|head| {
            let id = u64::from_be_bytes(head.try_into().unwrap());
            front.is_valid(id, from, *now)
        });
        if !proven {
            assert!(out.len() <= datagram.len(), "amplified: {out:?}");
        }
        let reply = Reply::parse(out).expect("a reply");
        assert_eq!(reply.transaction().to_be_bytes(), datagram[12..16]);
    });
});
