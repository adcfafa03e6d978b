//! KRPC datagrams (the DHT's messages, BEP 5 with BEP 32, 42, 43 and 51) from anyone on
//! the internet: never a panic, and what is accepted respects the limits.
//!
//! - an accepted message holds at most `MAX_NODES` nodes per family (each of its key's
//!   family), `MAX_VALUES` values, `MAX_SAMPLES` samples with an interval of at most
//!   `MAX_INTERVAL`, and an error message of at most `MAX_ERROR_MESSAGE` bytes;
//! - it re-encodes to canonical bencode of at most `MAX_DATAGRAM` bytes that parses back
//!   to the same message and encodes again to the same bytes;
//! - a refused datagram gets an error reply only if it said it was a query and had a valid
//!   transaction id, and that reply encodes, parses, and answers that transaction.
#![no_main]

use battorrent::bencode::{decode, Limits};
use battorrent::dht::krpc::{
    Body, Message, MAX_DATAGRAM, MAX_ERROR_MESSAGE, MAX_INTERVAL, MAX_NODES, MAX_SAMPLES,
    MAX_VALUES,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(m) => {
            match &m.body {
                Body::Response(r) => {
                    assert!(r.nodes.len() <= MAX_NODES && r.nodes6.len() <= MAX_NODES);
                    assert!(r.nodes.iter().all(|n| n.addr.is_ipv4()));
                    assert!(r.nodes6.iter().all(|n| n.addr.is_ipv6()));
                    assert!(r.values.len() <= MAX_VALUES);
                    if let Some(s) = &r.samples {
                        assert!(s.hashes.len() <= MAX_SAMPLES && s.interval <= MAX_INTERVAL);
                    }
                }
                Body::Error(e) => assert!(e.message.len() <= MAX_ERROR_MESSAGE),
                Body::Query(_) => {}
            }
            let bytes = m.to_bytes();
            assert!(bytes.len() <= MAX_DATAGRAM);
            let doc = decode(&bytes, Limits::default()).expect("our encoding is bencode");
            assert!(doc.warnings.is_empty(), "our keys are sorted");
            let again = Message::parse(&bytes).expect("our encoding parses");
            assert_eq!(again, m);
            assert_eq!(again.to_bytes(), bytes);
        }
        Err(e) => {
            if let Some(reply) = e.reply() {
                assert!(e.query);
                assert_eq!(Some(reply.transaction), e.transaction);
                let back = Message::parse(&reply.to_bytes()).expect("our error parses");
                assert_eq!(back, reply);
                assert!(matches!(back.body, Body::Error(_)));
            }
        }
    }
});
