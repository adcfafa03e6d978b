//! The peers chosen for one announce reply, collected in the form the client asked for.

use std::net::IpAddr;

/// The peers chosen for one response, in the form the client asked for.
pub(in crate::tracker) struct PeerList {
    pub(in crate::tracker) compact: bool,
    /// Leave peer ids out of the dictionary form (`no_peer_id=1`).
    pub(in crate::tracker) no_peer_id: bool,
    /// Compact IPv4 entries (6 bytes each) for `peers`.
    pub(in crate::tracker) v4: Vec<u8>,
    /// Compact IPv6 entries (18 bytes each) for `peers6`.
    pub(in crate::tracker) v6: Vec<u8>,
    /// Dictionary-form entries when not compact.
    pub(in crate::tracker) dicts: Vec<(IpAddr, u16, [u8; 20])>,
    pub(in crate::tracker) len: usize,
}

impl PeerList {
    pub(in crate::tracker) fn new(compact: bool) -> PeerList {
        PeerList {
            compact,
            no_peer_id: false,
            v4: Vec::new(),
            v6: Vec::new(),
            dicts: Vec::new(),
            len: 0,
        }
    }

    pub(in crate::tracker) fn reset(&mut self, compact: bool, no_peer_id: bool) {
        self.compact = compact;
        self.no_peer_id = no_peer_id;
        self.v4.clear();
        self.v6.clear();
        self.dicts.clear();
        self.len = 0;
    }

    pub(in crate::tracker) fn add4(&mut self, keys: &[[u8; 6]], ids: &[[u8; 20]]) {
        self.len += keys.len();
        if self.compact {
            self.v4.extend_from_slice(keys.as_flattened());
            return;
        }
        for (k, id) in keys.iter().zip(ids) {
            let ip = std::net::Ipv4Addr::new(k[0], k[1], k[2], k[3]);
            self.dicts
                .push((ip.into(), u16::from_be_bytes([k[4], k[5]]), *id));
        }
    }

    pub(in crate::tracker) fn add6(&mut self, keys: &[[u8; 18]], ids: &[[u8; 20]]) {
        self.len += keys.len();
        if self.compact {
            self.v6.extend_from_slice(keys.as_flattened());
            return;
        }
        for (k, id) in keys.iter().zip(ids) {
            let octets: [u8; 16] = k[..16].try_into().expect("16 bytes");
            let ip = std::net::Ipv6Addr::from(octets);
            self.dicts
                .push((ip.into(), u16::from_be_bytes([k[16], k[17]]), *id));
        }
    }
}
