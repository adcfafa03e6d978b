//! Magnet links (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>...`.

use super::InfoHash;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt;
use thiserror::Error;

/// A parsed magnet link.
///
/// ```
/// use battorrent::metainfo::Magnet;
///
/// let link = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Some%20File";
/// let magnet: Magnet = link.parse().unwrap();
/// assert_eq!(magnet.display_name.as_deref(), Some("Some File"));
/// assert_eq!(magnet.to_string(), link);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// From `xt=urn:btih:` (40 hex digits or 32 base32 characters).
    pub info_hash: InfoHash,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`, in order, duplicates removed.
    pub trackers: Vec<String>,
    /// `ws` web seeds.
    pub web_seeds: Vec<String>,
    /// `xl`: total size in bytes.
    pub exact_length: Option<u64>,
    /// `x.pe`: peers to connect to (`host:port`, as given), in order, duplicates removed.
    pub peers: Vec<String>,
}

/// Why a magnet link could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MagnetError {
    #[error("not a magnet link (it must start with 'magnet:?')")]
    NotMagnet,
    #[error("no 'xt=urn:btih:' parameter: the link does not name a BitTorrent v1 info hash")]
    NoInfoHash,
    #[error("info hash '{0}' is neither 40 hex digits nor 32 base32 characters")]
    BadInfoHash(String),
    #[error("two different info hashes: {0} and {1}")]
    ConflictingHashes(InfoHash, InfoHash),
}

/// Characters left as they are in parameter values: unreserved ones plus `:` and `/`, so
/// tracker URLs stay readable. Everything else is percent-encoded.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/');

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash)?;
        if let Some(name) = &self.display_name {
            write!(f, "&dn={}", utf8_percent_encode(name, VALUE))?;
        }
        if let Some(len) = self.exact_length {
            write!(f, "&xl={len}")?;
        }
        for tr in &self.trackers {
            write!(f, "&tr={}", utf8_percent_encode(tr, VALUE))?;
        }
        for ws in &self.web_seeds {
            write!(f, "&ws={}", utf8_percent_encode(ws, VALUE))?;
        }
        for pe in &self.peers {
            write!(f, "&x.pe={}", utf8_percent_encode(pe, VALUE))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Magnet {
    type Err = MagnetError;

    /// Parses a magnet link. Unknown parameters are ignored; `xt` values for other hash
    /// kinds (such as v2 `urn:btmh:`) are skipped.
    fn from_str(link: &str) -> Result<Magnet, MagnetError> {
        let query = link
            .strip_prefix("magnet:?")
            .or_else(|| link.strip_prefix("MAGNET:?"))
            .ok_or(MagnetError::NotMagnet)?;
        let mut magnet = Magnet {
            info_hash: InfoHash([0; 20]),
            display_name: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            exact_length: None,
            peers: Vec::new(),
        };
        let mut hash = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if key == "x.pe" {
                if !magnet.peers.iter().any(|p| *p == value) && magnet.peers.len() < MAX_PEERS {
                    magnet.peers.push(value.into_owned());
                }
                continue;
            }
            // Keys may carry an index suffix: `tr.1`, `xt.2`.
            let key = key.split('.').next().unwrap_or_default().to_owned();
            match key.as_str() {
                "xt" => {
                    let Some(text) = value.strip_prefix("urn:btih:") else {
                        continue;
                    };
                    let parsed = parse_btih(text)?;
                    match hash {
                        Some(h) if h != parsed => {
                            return Err(MagnetError::ConflictingHashes(h, parsed))
                        }
                        _ => hash = Some(parsed),
                    }
                }
                "dn" => magnet.display_name = Some(value.into_owned()),
                "tr" if !magnet.trackers.iter().any(|t| *t == value) => {
                    magnet.trackers.push(value.into_owned())
                }
                "ws" => magnet.web_seeds.push(value.into_owned()),
                "xl" => magnet.exact_length = value.parse().ok(),
                _ => {}
            }
        }
        magnet.info_hash = hash.ok_or(MagnetError::NoInfoHash)?;
        Ok(magnet)
    }
}

/// Most `x.pe` peers kept from one link.
const MAX_PEERS: usize = 200;

impl Magnet {
    /// The `x.pe` peers given as IP addresses (`1.2.3.4:6881`, `[::1]:6881`); host names
    /// are left out (nothing here resolves names).
    pub fn peer_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.peers.iter().filter_map(|p| p.parse().ok()).collect()
    }
}

fn parse_btih(text: &str) -> Result<InfoHash, MagnetError> {
    let bad = || MagnetError::BadInfoHash(text.to_owned());
    match text.len() {
        40 => InfoHash::from_hex(text).ok_or_else(bad),
        32 => {
            // RFC 4648 base32, no padding: 32 characters × 5 bits = 160 bits.
            let mut out = [0u8; 20];
            let mut acc: u64 = 0;
            let mut bits = 0;
            let mut n = 0;
            for c in text.bytes() {
                let v = match c.to_ascii_uppercase() {
                    c @ b'A'..=b'Z' => c - b'A',
                    c @ b'2'..=b'7' => c - b'2' + 26,
                    _ => return Err(bad()),
                };
                acc = (acc << 5) | u64::from(v);
                bits += 5;
                if bits >= 8 {
                    bits -= 8;
                    out[n] = (acc >> bits) as u8;
                    n += 1;
                }
            }
            Ok(InfoHash(out))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn formats_and_parses_back() {
        let magnet = Magnet {
            info_hash: InfoHash::from_hex(HEX).unwrap(),
            display_name: Some("My File & more.iso".into()),
            trackers: vec![
                "http://t.example:6969/announce?k=1".into(),
                "udp://u.example:80".into(),
            ],
            web_seeds: vec![],
            exact_length: Some(1234),
            peers: vec!["10.0.0.2:6881".into(), "[::1]:51413".into()],
        };
        let link = magnet.to_string();
        let expected = format!(
            "magnet:?xt=urn:btih:{HEX}&dn=My%20File%20%26%20more.iso&xl=1234\
             &tr=http://t.example:6969/announce%3Fk%3D1&tr=udp://u.example:80\
             &x.pe=10.0.0.2:6881&x.pe=%5B::1%5D:51413"
        );
        assert_eq!(link, expected);
        let back = link.parse::<Magnet>().unwrap();
        assert_eq!(back, magnet);
        assert_eq!(
            back.peer_addrs(),
            vec![
                "10.0.0.2:6881".parse::<std::net::SocketAddr>().unwrap(),
                "[::1]:51413".parse().unwrap()
            ]
        );
    }

    #[test]
    fn parses_base32_and_uppercase_hex() {
        let hex: Magnet = format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase())
            .parse()
            .unwrap();
        assert_eq!(hex.info_hash.to_hex(), HEX);
        let b32: Magnet = "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK"
            .parse()
            .unwrap();
        assert_eq!(b32.info_hash.to_hex(), HEX);
    }

    #[test]
    fn refuses_bad_links() {
        assert_eq!("http://x".parse::<Magnet>(), Err(MagnetError::NotMagnet));
        assert_eq!(
            "magnet:?dn=x".parse::<Magnet>(),
            Err(MagnetError::NoInfoHash)
        );
        assert!(matches!(
            "magnet:?xt=urn:btih:1234".parse::<Magnet>(),
            Err(MagnetError::BadInfoHash(_))
        ));
        assert!(matches!(
            "magnet:?xt=urn:btih:zz2fe1c06bba254a9dc9f519b335aa7c1367a88a".parse::<Magnet>(),
            Err(MagnetError::BadInfoHash(_))
        ));
        let two = format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}", "0".repeat(40));
        assert!(matches!(
            two.parse::<Magnet>(),
            Err(MagnetError::ConflictingHashes(..))
        ));
    }
}
