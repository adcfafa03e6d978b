//! The UDP tracker client's side of BEP 15: an announce exchange fed arbitrary replies.
//!
//! - `Reply::parse` never panics; what it accepts as an announce yields peers without
//!   panicking, for IPv4 and IPv6 trackers;
//! - an exchange in either phase takes any reply (right transaction id or not) and any
//!   timeout without panicking, and resends each request at most the bounded number of
//!   times.
#![no_main]

use battorrent::core::InfoHash;
use battorrent::tracker::udp::exchange::{Exchange, Step, MAX_RESENDS};
use battorrent::tracker::udp::packet::{self, AnnounceRequest, Reply};
use battorrent::tracker::Event;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    if let Ok(Reply::Announce { peers, .. }) = Reply::parse(data) {
        let _ = packet::peers(peers, false).count();
        let _ = packet::peers(peers, true).count();
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let tracker = if mode & 1 == 0 {
        "10.0.0.1:6969".parse().unwrap()
    } else {
        "[2001:db8::1]:6969".parse().unwrap()
    };
    let connection = (mode & 2 != 0).then_some(42);
    let request = AnnounceRequest {
        info_hash: InfoHash([1; 20]),
        peer_id: [2; 20],
        downloaded: 0,
        left: 1,
        uploaded: 0,
        event: Event::None,
        key: 0,
        numwant: None,
        port: 6881,
        url_data: b"/announce",
    };
    let mut now = Instant::now();
    let (mut ex, _) = Exchange::start(now, tracker, request, connection, || 7);
    let mut sends = 0;
    // The rest is a series of replies, each led by its length; a zero length is a timeout.
    let mut rest = rest;
    while let Some((&len, tail)) = rest.split_first() {
        let step = if len == 0 {
            now += Duration::from_secs(240);
            ex.handle_timeout(now)
        } else {
            let n = (len as usize).min(tail.len());
            let mut reply = tail[..n].to_vec();
            // Often carry the right transaction id, so the phases are reached.
            if mode & 4 != 0 && reply.len() >= 8 {
                reply[4..8].copy_from_slice(&ex.transaction().to_be_bytes());
            }
            rest = &tail[n..];
            ex.handle_reply(now, &reply)
        };
        if len == 0 {
            rest = tail;
        }
        match step {
            Step::Send(_) => {
                sends += 1;
                assert!(sends <= MAX_RESENDS, "more resends than the bound");
            }
            Step::Done(_) => return,
            // The announce after a connect has its own resends.
            Step::Connected { .. } => sends = 0,
            Step::Wait => {}
        }
    }
});
