//! Peer exchange messages (BEP 11, `ut_pex`): peers that joined (`added`, with a flags
//! byte each in `added.f`) and left (`dropped`), in compact form, IPv4 and IPv6.
//!
//! A message may list at most [`MAX_PEX_PEERS`] addresses per key (BEP 11 asks senders for
//! at most 50 added); more is a flood and an error, so the caller can drop the peer. Port 0
//! entries are skipped.

use super::extension::LIMITS;
use crate::bencode::{decode_lazy, Writer};
use crate::core::compact;
use std::net::SocketAddr;
use thiserror::Error;

/// Most addresses accepted per key in one message.
pub const MAX_PEX_PEERS: usize = 200;
/// Most addresses we send as added (BEP 11: 50).
pub const MAX_PEX_SENT: usize = 50;

/// `added.f` flags (BEP 11).
pub mod flags {
    /// Prefers encryption.
    pub const ENCRYPTION: u8 = 0x01;
    /// A seed (upload only).
    pub const SEED: u8 = 0x02;
    /// Supports uTP.
    pub const UTP: u8 = 0x04;
    /// Supports the hole-punch extension.
    pub const HOLEPUNCH: u8 = 0x08;
    /// Reachable: we connected out to it.
    pub const REACHABLE: u8 = 0x10;
}

/// Why a PEX message was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PexError {
    #[error("ut_pex message is not a bencoded dictionary: {0}")]
    Bencode(String),
    #[error("ut_pex message lists {0} addresses under one key (at most {MAX_PEX_PEERS})")]
    Flood(usize),
}

/// One PEX message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pex {
    /// Peers that joined, with their flags (0 when not given).
    pub added: Vec<(SocketAddr, u8)>,
    pub dropped: Vec<SocketAddr>,
}

fn compact(list: &[u8], v6: bool) -> Result<Vec<SocketAddr>, PexError> {
    let count = list.len() / compact::entry_len(v6);
    if count > MAX_PEX_PEERS {
        return Err(PexError::Flood(count));
    }
    Ok(compact::addrs(list, v6).collect())
}

impl Pex {
    /// Parses the payload of a `ut_pex` message.
    pub fn parse(payload: &[u8]) -> Result<Pex, PexError> {
        let doc = decode_lazy(payload, LIMITS).map_err(|e| PexError::Bencode(e.to_string()))?;
        let bytes = |key: &str| {
            doc.root
                .get(key)
                .and_then(|v| v.as_bytes())
                .unwrap_or_default()
        };
        let mut pex = Pex::default();
        for (added, f, v6) in [("added", "added.f", false), ("added6", "added6.f", true)] {
            let flags = bytes(f);
            for (i, addr) in compact(bytes(added), v6)?.into_iter().enumerate() {
                if addr.port() != 0 {
                    pex.added.push((addr, flags.get(i).copied().unwrap_or(0)));
                }
            }
        }
        for (dropped, v6) in [("dropped", false), ("dropped6", true)] {
            pex.dropped.extend(
                compact(bytes(dropped), v6)?
                    .into_iter()
                    .filter(|a| a.port() != 0),
            );
        }
        Ok(pex)
    }

    /// Writes the payload: `added.f` always accompanies `added` (libtorrent ignores
    /// `added` without it); at most [`MAX_PEX_SENT`] added and as many dropped.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut lists: [(Vec<u8>, Vec<u8>, Vec<u8>); 2] = Default::default();
        for (addr, f) in self.added.iter().take(MAX_PEX_SENT) {
            let family = &mut lists[usize::from(addr.is_ipv6())];
            compact::push(&mut family.0, *addr);
            family.1.push(*f);
        }
        for addr in self.dropped.iter().take(MAX_PEX_SENT) {
            compact::push(&mut lists[usize::from(addr.is_ipv6())].2, *addr);
        }
        let mut w = Writer(out);
        w.begin_dict();
        // Keys in byte order: added, added.f, added6, added6.f, dropped, dropped6.
        w.key_bytes("added", &lists[0].0);
        w.key_bytes("added.f", &lists[0].1);
        w.key_bytes("added6", &lists[1].0);
        w.key_bytes("added6.f", &lists[1].1);
        w.key_bytes("dropped", &lists[0].2);
        w.key_bytes("dropped6", &lists[1].2);
        w.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::{decode, Limits};

    #[test]
    fn round_trips_both_families_with_flags() {
        let pex = Pex {
            added: vec![
                (
                    "10.99.0.2:6881".parse().unwrap(),
                    flags::SEED | flags::REACHABLE,
                ),
                ("[2001:db8::2]:51413".parse().unwrap(), flags::UTP),
            ],
            dropped: vec!["10.99.0.3:6881".parse().unwrap()],
        };
        let mut out = Vec::new();
        pex.encode(&mut out);
        assert!(
            decode(&out, Limits::default()).unwrap().warnings.is_empty(),
            "sorted keys"
        );
        assert_eq!(Pex::parse(&out), Ok(pex));
    }

    #[test]
    fn floods_are_errors_and_missing_flags_are_zero() {
        let many = vec![1u8; 6 * (MAX_PEX_PEERS + 1)];
        let mut msg = format!("d5:added{}:", many.len()).into_bytes();
        msg.extend_from_slice(&many);
        msg.push(b'e');
        assert_eq!(Pex::parse(&msg), Err(PexError::Flood(MAX_PEX_PEERS + 1)));
        let h =
            Pex::parse(b"d5:added12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x00e").unwrap();
        assert_eq!(
            h.added,
            [("10.0.0.1:6881".parse().unwrap(), 0)],
            "port 0 skipped"
        );
        assert!(Pex::parse(b"le").unwrap().added.is_empty());
        assert!(Pex::parse(b"d5:added").is_err());
    }

    #[test]
    fn at_most_fifty_are_sent() {
        let pex = Pex {
            added: (0..80u16)
                .map(|i| (SocketAddr::from(([10, 0, 0, 1], 1000 + i)), 0))
                .collect(),
            dropped: vec![],
        };
        let mut out = Vec::new();
        pex.encode(&mut out);
        assert_eq!(Pex::parse(&out).unwrap().added.len(), MAX_PEX_SENT);
    }
}
