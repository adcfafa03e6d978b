//! Extension protocol payloads from a peer (BEP 10 handshake, BEP 9 ut_metadata, BEP 11
//! ut_pex): never a panic, and what is accepted respects the limits.
//!
//! - an extension handshake's client name is at most 64 bytes;
//! - a metadata data message carries exactly its piece's length, within 32 MiB in all;
//! - a PEX message lists at most 200 addresses per key, none with port 0;
//! - what parses re-encodes to bytes that parse to the same value.
#![no_main]

use battorrent::wire::extension::ExtHandshake;
use battorrent::wire::metadata::{piece_len, MetadataMessage, MAX_METADATA_SIZE};
use battorrent::wire::pex::{Pex, MAX_PEX_PEERS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = ExtHandshake::parse(data) {
        assert!(h.client.as_ref().map_or(0, |c| c.len()) <= 64 * 3);
        let mut out = Vec::new();
        h.encode(&mut out);
        let again = ExtHandshake::parse(&out).expect("our handshake parses");
        assert_eq!(again.ut_metadata, h.ut_metadata);
        assert_eq!(again.metadata_size, h.metadata_size);
    }
    if let Ok(m) = MetadataMessage::parse(data) {
        if let MetadataMessage::Data {
            piece,
            total_size,
            data: bytes,
        } = m
        {
            assert!(total_size <= MAX_METADATA_SIZE);
            assert_eq!(bytes.len(), piece_len(total_size, piece));
        }
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(MetadataMessage::parse(&out), Ok(m));
    }
    if let Ok(p) = Pex::parse(data) {
        assert!(p.added.len() <= 2 * MAX_PEX_PEERS && p.dropped.len() <= 2 * MAX_PEX_PEERS);
        assert!(p.added.iter().all(|(a, _)| a.port() != 0));
        assert!(p.dropped.iter().all(|a| a.port() != 0));
    }
});
