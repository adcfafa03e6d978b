//! The extension protocol (BEP 10): the reserved bit, message id 20, and the extension
//! handshake that says which extensions a peer speaks under which message ids, its listen
//! port, client name, how many requests it queues, what address it sees us at, and the
//! size of the torrent's metadata (BEP 9).
//!
//! Parsing reads the checked bencode in place (nothing is built from the sender's
//! lengths), keeps only what we use, ignores unknown keys and extensions, and caps every
//! list and string. Encoding writes keys in sorted order (canonical bencode).

use crate::bencode::{decode_lazy, Lazy, Limits, Writer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// The BEP 3 message id that carries every extension message.
pub const EXTENDED: u8 = 20;
/// The extended message id of the extension handshake.
pub const HANDSHAKE_ID: u8 = 0;
/// Reserved byte and bit that say "I speak BEP 10" (byte 5, 0x10).
pub const RESERVED_BYTE: usize = 5;
pub const RESERVED_BIT: u8 = 0x10;
/// Extensions listed in `m` beyond this are ignored.
const MAX_EXTENSIONS: usize = 64;
/// Longest client name (`v`) kept.
const MAX_CLIENT: usize = 64;
/// Bencode limits for an extension message: shallow and small.
pub const LIMITS: Limits = Limits {
    max_depth: 4,
    max_values: 1024,
};

/// Extensions we know, by the name they are listed under.
pub const UT_METADATA: &str = "ut_metadata";
pub const UT_PEX: &str = "ut_pex";

/// Why an extension handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExtensionError {
    #[error("extension handshake is not bencode: {0}")]
    Bencode(String),
    #[error("extension handshake is not a dictionary")]
    NotDict,
}

/// What a peer said in its extension handshake (the parts we use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// Its message id for `ut_metadata` (BEP 9), if it speaks it (id 0 means "not").
    pub ut_metadata: Option<u8>,
    /// Its message id for `ut_pex` (BEP 11).
    pub ut_pex: Option<u8>,
    /// Its listen port (`p`).
    pub port: Option<u16>,
    /// Its client name (`v`), cut to 64 bytes; escape before printing.
    pub client: Option<String>,
    /// The address it sees us at (`yourip`).
    pub yourip: Option<IpAddr>,
    /// How many requests it queues (`reqq`).
    pub reqq: Option<u32>,
    /// The size of the info dictionary (`metadata_size`, BEP 9).
    pub metadata_size: Option<u64>,
    /// It will not download (`upload_only`, BEP 21).
    pub upload_only: bool,
}

fn small_int(v: &Lazy<'_>) -> Option<i64> {
    v.as_int()
}

fn ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).ok()?,
        ))),
        _ => None,
    }
}

impl ExtHandshake {
    /// Parses the payload of an extension handshake (after ids 20 and 0). Fields of the
    /// wrong type or out of range are ignored, as BEP 10 asks.
    pub fn parse(payload: &[u8]) -> Result<ExtHandshake, ExtensionError> {
        let doc =
            decode_lazy(payload, LIMITS).map_err(|e| ExtensionError::Bencode(e.to_string()))?;
        let entries = doc.root.dict().ok_or(ExtensionError::NotDict)?;
        let mut h = ExtHandshake::default();
        for (key, value) in entries {
            match key {
                b"m" => {
                    for (name, id) in value.dict().into_iter().flatten().take(MAX_EXTENSIONS) {
                        let id = small_int(&id)
                            .and_then(|i| u8::try_from(i).ok())
                            .filter(|&i| i != 0);
                        match name {
                            b"ut_metadata" => h.ut_metadata = id,
                            b"ut_pex" => h.ut_pex = id,
                            _ => {}
                        }
                    }
                }
                b"p" => h.port = small_int(&value).and_then(|p| u16::try_from(p).ok()),
                b"v" => {
                    h.client = value.as_bytes().map(|b| {
                        String::from_utf8_lossy(&b[..b.len().min(MAX_CLIENT)]).into_owned()
                    })
                }
                b"yourip" => h.yourip = value.as_bytes().and_then(ip),
                b"reqq" => h.reqq = small_int(&value).and_then(|n| u32::try_from(n).ok()),
                b"metadata_size" => {
                    h.metadata_size = small_int(&value).and_then(|n| u64::try_from(n).ok())
                }
                b"upload_only" => h.upload_only = small_int(&value).is_some_and(|n| n != 0),
                _ => {}
            }
        }
        Ok(h)
    }

    /// Writes the payload of our extension handshake (to follow ids 20 and 0).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.begin_dict();
        // Keys in byte order: m, metadata_size, p, reqq, upload_only, v, yourip.
        w.bytes(b"m");
        w.begin_dict();
        let mut m: Vec<(&str, u8)> = Vec::new();
        if let Some(id) = self.ut_metadata {
            m.push((UT_METADATA, id));
        }
        if let Some(id) = self.ut_pex {
            m.push((UT_PEX, id));
        }
        m.sort();
        for (name, id) in m {
            w.key_int(name, i64::from(id));
        }
        w.end();
        if let Some(size) = self.metadata_size {
            w.key_int("metadata_size", size as i64);
        }
        if let Some(port) = self.port {
            w.key_int("p", i64::from(port));
        }
        if let Some(reqq) = self.reqq {
            w.key_int("reqq", i64::from(reqq));
        }
        if self.upload_only {
            w.key_int("upload_only", 1);
        }
        if let Some(client) = &self.client {
            w.key_bytes("v", client.as_bytes());
        }
        match self.yourip {
            Some(IpAddr::V4(v4)) => w.key_bytes("yourip", &v4.octets()),
            Some(IpAddr::V6(v6)) => w.key_bytes("yourip", &v6.octets()),
            None => {}
        }
        w.end();
    }
}

/// Whether a handshake's reserved bytes announce BEP 10.
pub fn supports_extensions(reserved: &[u8; 8]) -> bool {
    reserved[RESERVED_BYTE] & RESERVED_BIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::decode;

    fn ours() -> ExtHandshake {
        ExtHandshake {
            ut_metadata: Some(3),
            ut_pex: Some(1),
            port: Some(6881),
            client: Some("BatTorrent 0.1".into()),
            yourip: Some("10.99.0.2".parse().unwrap()),
            reqq: Some(500),
            metadata_size: Some(31_337),
            upload_only: true,
        }
    }

    #[test]
    fn round_trips_and_is_canonical() {
        let mut out = Vec::new();
        ours().encode(&mut out);
        let doc = decode(&out, Limits::default()).unwrap();
        assert!(
            doc.warnings.is_empty(),
            "keys sorted: {:?}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(ExtHandshake::parse(&out), Ok(ours()));
    }

    #[test]
    fn reads_what_libtorrent_sends_and_ignores_the_rest() {
        let msg = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei1234e1:pi50000e4:reqqi500e11:upload_onlyi0e1:v18:libtorrent/2.0.8.06:yourip4:\x0a\x63\x00\x02e";
        let h = ExtHandshake::parse(msg).unwrap();
        assert_eq!((h.ut_metadata, h.ut_pex), (Some(2), Some(1)));
        assert_eq!(
            (h.port, h.reqq, h.metadata_size),
            (Some(50000), Some(500), Some(1234))
        );
        assert_eq!(h.yourip, Some("10.99.0.2".parse().unwrap()));
        assert_eq!(h.client.as_deref(), Some("libtorrent/2.0.8.0"));
        assert!(!h.upload_only);
    }

    #[test]
    fn hostile_values_are_ignored_not_trusted() {
        // Disabled extension (id 0), ids and ports out of range, a negative size, wrong
        // types, an overlong name.
        let long = "x".repeat(500);
        let msg = format!(
            "d1:md11:ut_metadatai0e6:ut_pexi300ee13:metadata_sizei-5e1:pi70000e4:reqq3:abc1:v500:{long}6:yourip3:abce"
        );
        let h = ExtHandshake::parse(msg.as_bytes()).unwrap();
        assert_eq!(h.ut_metadata, None);
        assert_eq!(h.ut_pex, None);
        assert_eq!(
            (h.port, h.reqq, h.metadata_size, h.yourip),
            (None, None, None, None)
        );
        assert_eq!(h.client.unwrap().len(), 64);
        assert_eq!(ExtHandshake::parse(b"li1ee"), Err(ExtensionError::NotDict));
        assert!(matches!(
            ExtHandshake::parse(b"d1:m"),
            Err(ExtensionError::Bencode(_))
        ));
        // Deep nesting is refused by the limits, not recursed into.
        let deep = format!("d1:m{}{}e", "l".repeat(100), "e".repeat(100));
        assert!(ExtHandshake::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn the_reserved_bit() {
        let mut r = [0u8; 8];
        assert!(!supports_extensions(&r));
        r[5] = 0x10;
        assert!(supports_extensions(&r));
    }
}
