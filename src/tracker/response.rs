//! Bencoded tracker responses, written straight into the output buffer.
//! Dictionary keys are written in sorted order by hand; tests decode every shape with the
//! strict decoder, which reports any disorder.

use super::swarm::{PeerList, ScrapeEntry, TrackerConfig};
use crate::bencode::Writer;
use crate::metainfo::InfoHash;

/// An announce response: counts, intervals, and peers (compact `peers`/`peers6`, or the
/// dictionary form with or without peer ids).
pub(super) fn write_announce(
    out: &mut Vec<u8>,
    config: &TrackerConfig,
    (complete, incomplete): (usize, usize),
    peers: &PeerList,
) {
    let mut w = Writer(out);
    w.begin_dict();
    w.key_int("complete", complete as i64);
    w.key_int("incomplete", incomplete as i64);
    w.key_int("interval", i64::from(config.interval));
    w.key_int("min interval", i64::from(config.min_interval));
    if peers.compact {
        w.key_bytes("peers", &peers.v4);
        if !peers.v6.is_empty() {
            w.key_bytes("peers6", &peers.v6);
        }
    } else {
        w.bytes(b"peers");
        w.begin_list();
        for (ip, port, peer_id) in &peers.dicts {
            w.begin_dict();
            w.key_bytes("ip", ip.to_string().as_bytes());
            if !peers.no_peer_id {
                w.key_bytes("peer id", peer_id);
            }
            w.key_int("port", i64::from(*port));
            w.end();
        }
        w.end();
    }
    w.end();
}

/// A scrape response for `entries`, which must be sorted by info hash.
pub fn write_scrape(out: &mut Vec<u8>, entries: &[(InfoHash, ScrapeEntry)]) {
    debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
    let mut w = Writer(out);
    w.begin_dict();
    w.bytes(b"files");
    w.begin_dict();
    for (hash, entry) in entries {
        w.bytes(&hash.0);
        w.begin_dict();
        w.key_int("complete", entry.complete as i64);
        w.key_int("downloaded", entry.downloaded as i64);
        w.key_int("incomplete", entry.incomplete as i64);
        w.end();
    }
    w.end();
    w.end();
}

/// `d14:failure reason<len>:<reason>e`
pub fn write_failure(out: &mut Vec<u8>, reason: &str) {
    let mut w = Writer(out);
    w.begin_dict();
    w.key_bytes("failure reason", reason.as_bytes());
    w.end();
}
