//! Bencoded tracker responses, written straight into the output buffer.
//! Dictionary keys are written in sorted order by hand; tests decode every shape with the
//! strict decoder, which reports any disorder.

use super::swarm::{Announced, PeerList, ScrapeEntry, TrackerConfig};
use crate::bencode::Writer;
use crate::core::InfoHash;

impl Announced<'_> {
    /// Appends the HTTP announce reply (bencode) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        write_announce(out, self.config, self.counts, self.peers);
    }
}

/// An announce response: counts, intervals, and peers (compact `peers`/`peers6`, or the
/// dictionary form with or without peer ids).
fn write_announce(
    out: &mut Vec<u8>,
    config: &TrackerConfig,
    (complete, incomplete): (usize, usize),
    peers: &PeerList,
) {
    if peers.compact {
        // The hot path: fixed keys as literal bencode, one reservation, numbers by itoa.
        let mut number = itoa::Buffer::new();
        out.reserve(96 + peers.v4.len() + peers.v6.len());
        out.extend_from_slice(b"d8:completei");
        out.extend_from_slice(number.format(complete).as_bytes());
        out.extend_from_slice(b"e10:incompletei");
        out.extend_from_slice(number.format(incomplete).as_bytes());
        out.extend_from_slice(b"e8:intervali");
        out.extend_from_slice(number.format(config.interval).as_bytes());
        out.extend_from_slice(b"e12:min intervali");
        out.extend_from_slice(number.format(config.min_interval).as_bytes());
        out.extend_from_slice(b"e5:peers");
        out.extend_from_slice(number.format(peers.v4.len()).as_bytes());
        out.push(b':');
        out.extend_from_slice(&peers.v4);
        if !peers.v6.is_empty() {
            out.extend_from_slice(b"6:peers6");
            out.extend_from_slice(number.format(peers.v6.len()).as_bytes());
            out.push(b':');
            out.extend_from_slice(&peers.v6);
        }
        out.push(b'e');
        return;
    }
    let mut w = Writer(out);
    w.begin_dict();
    w.key_int("complete", complete as i64);
    w.key_int("incomplete", incomplete as i64);
    w.key_int("interval", i64::from(config.interval));
    w.key_int("min interval", i64::from(config.min_interval));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The compact form as the general `Writer` spells it.
    fn by_writer(config: &TrackerConfig, counts: (usize, usize), peers: &PeerList) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer(&mut out);
        w.begin_dict();
        w.key_int("complete", counts.0 as i64);
        w.key_int("incomplete", counts.1 as i64);
        w.key_int("interval", i64::from(config.interval));
        w.key_int("min interval", i64::from(config.min_interval));
        w.key_bytes("peers", &peers.v4);
        if !peers.v6.is_empty() {
            w.key_bytes("peers6", &peers.v6);
        }
        w.end();
        out
    }

    #[test]
    fn compact_fast_path_matches_the_writer() {
        let config = TrackerConfig {
            interval: 1800,
            min_interval: 7,
            ..TrackerConfig::default()
        };
        let mut peers = PeerList::new(true);
        for (v4, v6, counts) in [
            (0, 0, (0, 0)),
            (1, 0, (1, 0)),
            (50, 0, (12_345, 678_901)),
            (0, 3, (0, 3)),
            (17, 20, (1 << 40, 9)),
        ] {
            peers.v4 = (0..v4 * 6).map(|i| i as u8).collect();
            peers.v6 = (0..v6 * 18).map(|i| (i * 7) as u8).collect();
            let mut fast = b"prefix".to_vec();
            write_announce(&mut fast, &config, counts, &peers);
            let mut expected = b"prefix".to_vec();
            expected.extend(by_writer(&config, counts, &peers));
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&expected)
            );
        }
    }
}
