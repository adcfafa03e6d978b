//! The 68-byte handshake that opens every connection.

use crate::core::InfoHash;
use thiserror::Error;

/// The protocol string sent after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// Bytes in a handshake: length byte, protocol string, reserved, info hash, peer id.
pub const HANDSHAKE_LEN: usize = 1 + 19 + 8 + 20 + 20;
/// Reserved byte and bit that say "I speak the fast extension" (BEP 6: byte 7, 0x04).
pub const FAST_RESERVED_BYTE: usize = 7;
pub const FAST_RESERVED_BIT: u8 = 0x04;
/// Reserved byte and bit that say "I run a DHT node; ask my port" (BEP 5: byte 7, 0x01).
pub const DHT_RESERVED_BYTE: usize = 7;
pub const DHT_RESERVED_BIT: u8 = 0x01;

/// Whether a handshake's reserved bytes announce a DHT node (BEP 5).
pub fn supports_dht(reserved: &[u8; 8]) -> bool {
    reserved[DHT_RESERVED_BYTE] & DHT_RESERVED_BIT != 0
}

/// The opening message of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits: ours announce the extension protocol (BEP 10) and the fast
    /// extension (BEP 6).
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    #[error("not a BitTorrent handshake (protocol string {0:?})")]
    Protocol(String),
    #[error("handshake for torrent {got}, expected {expected}")]
    WrongTorrent { expected: InfoHash, got: InfoHash },
    #[error("connected to ourselves (same peer id)")]
    SelfConnection,
}

impl Handshake {
    /// Our handshake: the extension protocol (BEP 10) and fast extension (BEP 6) bits set.
    pub fn new(info_hash: InfoHash, peer_id: [u8; 20]) -> Handshake {
        let mut reserved = [0; 8];
        reserved[super::extension::RESERVED_BYTE] |= super::extension::RESERVED_BIT;
        reserved[FAST_RESERVED_BYTE] |= FAST_RESERVED_BIT;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// The 68 wire bytes.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    /// Parses the 68 wire bytes; only the protocol string is checked here.
    pub fn decode(bytes: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, HandshakeError> {
        if bytes[0] != 19 || &bytes[1..20] != PROTOCOL {
            let shown = &bytes[..usize::from(bytes[0]).clamp(1, 20)];
            return Err(HandshakeError::Protocol(
                String::from_utf8_lossy(shown).into_owned(),
            ));
        }
        let mut h = Handshake::new(InfoHash([0; 20]), [0; 20]);
        h.reserved.copy_from_slice(&bytes[20..28]);
        h.info_hash.0.copy_from_slice(&bytes[28..48]);
        h.peer_id.copy_from_slice(&bytes[48..68]);
        Ok(h)
    }

    /// Checks a peer's handshake against the torrent we serve and our own peer id.
    pub fn check(&self, info_hash: InfoHash, our_id: &[u8; 20]) -> Result<(), HandshakeError> {
        if self.info_hash != info_hash {
            return Err(HandshakeError::WrongTorrent {
                expected: info_hash,
                got: self.info_hash,
            });
        }
        if &self.peer_id == our_id {
            return Err(HandshakeError::SelfConnection);
        }
        Ok(())
    }
}

/// Whether a handshake's reserved bytes announce the fast extension (BEP 6). It is in force
/// on a connection only when both handshakes set it.
pub fn supports_fast(reserved: &[u8; 8]) -> bool {
    reserved[FAST_RESERVED_BYTE] & FAST_RESERVED_BIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let h = Handshake::new(InfoHash([7; 20]), *b"-BT0001-abcdefghijkl");
        let bytes = h.encode();
        assert_eq!(&bytes[1..20], b"BitTorrent protocol");
        assert_eq!(Handshake::decode(&bytes), Ok(h));
        assert!(h.check(InfoHash([7; 20]), &[0; 20]).is_ok());
        assert!(matches!(
            h.check(InfoHash([8; 20]), &[0; 20]),
            Err(HandshakeError::WrongTorrent { .. })
        ));
        assert_eq!(
            h.check(InfoHash([7; 20]), b"-BT0001-abcdefghijkl"),
            Err(HandshakeError::SelfConnection)
        );
    }

    #[test]
    fn garbage_is_refused() {
        let mut bytes = Handshake::new(InfoHash([7; 20]), [1; 20]).encode();
        bytes[0] = 200;
        assert!(matches!(
            Handshake::decode(&bytes),
            Err(HandshakeError::Protocol(_))
        ));
        let mut bytes = Handshake::new(InfoHash([7; 20]), [1; 20]).encode();
        bytes[5] = b'x';
        assert!(Handshake::decode(&bytes).is_err());
    }

    #[test]
    fn ours_announces_bep10_and_bep6_and_nothing_else() {
        let h = Handshake::new(InfoHash([7; 20]), [1; 20]);
        assert_eq!(h.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert!(supports_fast(&h.reserved));
        let mut r = [0u8; 8];
        assert!(!supports_fast(&r));
        // Neighbouring bits (DHT 0x01 and 0x02 of byte 7) say nothing about fast.
        r[7] = 0x03;
        assert!(!supports_fast(&r));
        r[7] = 0x04;
        assert!(supports_fast(&r));
        r = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb];
        assert!(!supports_fast(&r));
    }
}
