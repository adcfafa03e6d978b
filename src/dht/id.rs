//! Node ids (BEP 5): 160-bit names in the space of info hashes, compared by XOR distance;
//! and BEP 42, which ties a node's id to its external IP address so that one host cannot
//! pick ids next to a target at will.
//!
//! BEP 42 (the DHT security extension): the first 21 bits of a secure id are the top bits
//! of `crc32c((ip & mask) | r << 29)` (IPv4: 4 address bytes masked with
//! `03 0f 3f ff`; IPv6: the first 8 bytes masked with `01 03 07 0f 1f 3f 7f ff`), where `r`
//! is the low 3 bits of the id's last byte. Local addresses are exempt.

use crate::core::InfoHash;
use std::fmt;
use std::net::IpAddr;

/// Bits in a node id.
pub const ID_BITS: usize = 160;

/// A DHT node id, or any point of the id space (a lookup target).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

/// The XOR distance between two points; smaller is closer. Ordered as a 160-bit unsigned
/// number, most significant byte first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 20]);

impl NodeId {
    /// The id whose bytes are `bytes`, if there are exactly 20.
    pub fn from_bytes(bytes: &[u8]) -> Option<NodeId> {
        <[u8; 20]>::try_from(bytes).ok().map(NodeId)
    }

    /// A uniformly random id.
    pub fn random(rng: &mut fastrand::Rng) -> NodeId {
        let mut id = [0u8; 20];
        rng.fill(&mut id);
        NodeId(id)
    }

    /// The info hash as a point of the id space (a get_peers or announce target).
    pub fn from_info_hash(hash: InfoHash) -> NodeId {
        NodeId(hash.0)
    }

    /// `self XOR other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 20];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// How many leading bits `self` and `other` share: 160 when they are equal.
    pub fn common_prefix_len(&self, other: &NodeId) -> usize {
        self.distance(other).leading_zeros()
    }

    /// Bit `i`, counted from the most significant (bit 0 is the top bit of byte 0).
    ///
    /// Panics if `i >= 160`.
    pub fn bit(&self, i: usize) -> bool {
        self.0[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// This id with bit `i` inverted (see [`NodeId::bit`]).
    ///
    /// Panics if `i >= 160`.
    pub fn with_bit_flipped(mut self, i: usize) -> NodeId {
        self.0[i / 8] ^= 0x80 >> (i % 8);
        self
    }

    /// A random id whose first `bits` bits are those of `prefix` (all of it when
    /// `bits >= 160`): a random point in the part of the space that `prefix` names, as a
    /// bucket refresh needs.
    pub fn random_with_prefix(prefix: &NodeId, bits: usize, rng: &mut fastrand::Rng) -> NodeId {
        let mut id = NodeId::random(rng);
        let bits = bits.min(ID_BITS);
        let whole = bits / 8;
        id.0[..whole].copy_from_slice(&prefix.0[..whole]);
        if bits % 8 != 0 {
            let keep = 0xffu8 << (8 - bits % 8);
            id.0[whole] = (prefix.0[whole] & keep) | (id.0[whole] & !keep);
        }
        id
    }

    /// BEP 42: `random` with its first 21 bits replaced by the prefix that makes it a
    /// secure id for `ip`, keyed by the low 3 bits of its last byte (the BEP's `r`); the
    /// other 139 bits are kept. Pass a random id to mint our own id from our external
    /// address. An IPv4-mapped IPv6 address counts as the IPv4 one.
    pub fn secure_for(ip: IpAddr, random: NodeId) -> NodeId {
        let crc = bep42_crc(ip, random.0[19]).to_be_bytes();
        let mut id = random;
        id.0[0] = crc[0];
        id.0[1] = crc[1];
        id.0[2] = (crc[2] & 0xf8) | (id.0[2] & 0x07);
        id
    }

    /// BEP 42: whether this id's first 21 bits are the ones [`NodeId::secure_for`] derives
    /// from `ip` and the id's last byte. Strict: a local address gets no exemption here
    /// (see [`bep42_exempt`]).
    pub fn is_secure_for(&self, ip: IpAddr) -> bool {
        let crc = bep42_crc(ip, self.0[19]).to_be_bytes();
        self.0[0] == crc[0] && self.0[1] == crc[1] && (self.0[2] ^ crc[2]) & 0xf8 == 0
    }

    /// BEP 42 as receivers apply it: the id is secure for `ip`, or `ip` is exempt.
    pub fn is_verified_for(&self, ip: IpAddr) -> bool {
        bep42_exempt(ip) || self.is_secure_for(ip)
    }
}

impl From<InfoHash> for NodeId {
    fn from(hash: InfoHash) -> NodeId {
        NodeId::from_info_hash(hash)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl Distance {
    /// Leading zero bits: the common prefix length of the two ids (160 for a zero distance).
    pub fn leading_zeros(&self) -> usize {
        match self.0.iter().position(|&b| b != 0) {
            Some(i) => i * 8 + self.0[i].leading_zeros() as usize,
            None => ID_BITS,
        }
    }
}

/// BEP 42: addresses whose nodes need no secure id, because the address is not one the
/// node could be reached at from the internet. IPv4: 10/8, 172.16/12, 192.168/16,
/// 169.254/16 and 127/8 as the BEP lists; IPv6: loopback, unique local (fc00::/7) and link
/// local (fe80::/10), their counterparts.
pub fn bep42_exempt(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
        }
    }
}

/// `crc32c((ip & mask) | r << 29)` over the masked address bytes (4 for IPv4, the first
/// 8 for IPv6), with `r = rand & 7` in the top 3 bits of the first byte.
fn bep42_crc(ip: IpAddr, rand: u8) -> u32 {
    const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
    const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];
    let mut bytes = [0u8; 8];
    let len = match ip.to_canonical() {
        IpAddr::V4(v4) => {
            for (i, b) in v4.octets().iter().enumerate() {
                bytes[i] = b & V4_MASK[i];
            }
            4
        }
        IpAddr::V6(v6) => {
            for (i, b) in v6.octets()[..8].iter().enumerate() {
                bytes[i] = b & V6_MASK[i];
            }
            8
        }
    };
    bytes[0] |= (rand & 0x07) << 5;
    crc32c(&bytes[..len])
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as BEP 42 specifies.
fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82f6_3b78
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |crc, &b| {
        TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(hex: &str) -> NodeId {
        NodeId(InfoHash::from_hex(hex).unwrap().0)
    }

    /// BEP 42's table: IP, rand, an example id secure for that IP.
    const VECTORS: [(&str, u8, &str); 5] = [
        (
            "124.31.75.21",
            1,
            "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401",
        ),
        (
            "21.75.31.124",
            86,
            "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256",
        ),
        (
            "65.23.51.170",
            22,
            "a5d43220bc8f112a3d426c84764f8c2a1150e616",
        ),
        (
            "84.124.73.14",
            65,
            "1b0321dd1bb1fe518101ceef99462b947a01ff41",
        ),
        (
            "43.213.53.83",
            90,
            "e56f6cbf5b7c4be0237986d5243b87aa6d51305a",
        ),
    ];

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn bep42_test_vectors() {
        for (ip, rand, hex) in VECTORS {
            let ip: IpAddr = ip.parse().unwrap();
            let v = id(hex);
            assert_eq!(v.0[19], rand);
            assert!(v.is_secure_for(ip), "{ip}");
            // The vectors' ids are fixed points: only their first 21 bits are derived.
            assert_eq!(NodeId::secure_for(ip, v), v, "{ip}");
            // Bit 20 is the last one checked, bit 21 the first one free.
            assert!(!v.with_bit_flipped(20).is_secure_for(ip), "{ip}");
            assert!(!v.with_bit_flipped(0).is_secure_for(ip), "{ip}");
            assert!(v.with_bit_flipped(21).is_secure_for(ip), "{ip}");
            assert!(v.with_bit_flipped(100).is_secure_for(ip), "{ip}");
            // r is the low 3 bits of the last byte: other bits there are free.
            let mut high = v;
            high.0[19] ^= 0xf8;
            assert!(high.is_secure_for(ip), "{ip}");
            let mut other_r = v;
            other_r.0[19] ^= 0x01;
            assert!(!other_r.is_secure_for(ip), "{ip}");
        }
        // An id secure for one address is not for another (almost surely: checked here).
        let first = id(VECTORS[0].2);
        assert!(!first.is_secure_for("21.75.31.124".parse().unwrap()));
    }

    #[test]
    fn bep42_ipv4_mask_ignores_the_masked_bits() {
        // 124.31.75.21 & 03 0f 3f ff == 0.15.11.21; these differ only in masked-out bits.
        let v = id(VECTORS[0].2);
        for ip in [
            "0.15.11.21",
            "252.31.75.21",
            "124.255.203.21",
            "::ffff:124.31.75.21",
        ] {
            assert!(v.is_secure_for(ip.parse().unwrap()), "{ip}");
        }
        assert!(!v.is_secure_for("124.31.75.22".parse().unwrap()));
    }

    #[test]
    fn bep42_ipv6_round_trips_and_masks_the_first_eight_bytes() {
        // BEP 42 gives no IPv6 vectors: check the masking by hand and the round trip.
        let mut rng = fastrand::Rng::with_seed(42);
        let ip: IpAddr = "2001:db8:85a3:1234:8a2e:370:7334:1".parse().unwrap();
        // 20 01 0d b8 85 a3 12 34 & 01 03 07 0f 1f 3f 7f ff = 00 01 05 08 05 23 12 34;
        // this address has the same masked bytes and differs in every other bit it can.
        let same: IpAddr = "fe01:fdf8:e5e3:9234:ffff:ffff:ffff:ffff".parse().unwrap();
        for _ in 0..100 {
            let mine = NodeId::secure_for(ip, NodeId::random(&mut rng));
            assert!(mine.is_secure_for(ip) && mine.is_secure_for(same));
        }
        let zero_r = NodeId::secure_for(ip, NodeId([0; 20]));
        let crc = crc32c(&[0x00, 0x01, 0x05, 0x08, 0x05, 0x23, 0x12, 0x34]).to_be_bytes();
        assert_eq!(&zero_r.0[..3], &[crc[0], crc[1], crc[2] & 0xf8]);
        // r = 5 sets the top 3 bits of the first masked byte.
        let r5 = NodeId::secure_for(ip, NodeId([5; 20]));
        let crc = crc32c(&[0xa0, 0x01, 0x05, 0x08, 0x05, 0x23, 0x12, 0x34]).to_be_bytes();
        assert_eq!(&r5.0[..2], &crc[..2]);
        assert!(!r5.is_secure_for("2001:db8:85a3:1235::".parse().unwrap()));
    }

    #[test]
    fn bep42_exemptions() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.3.4",
            "127.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(bep42_exempt(ip), "{ip}");
            assert!(NodeId([0; 20]).is_verified_for(ip), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "124.31.75.21"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!bep42_exempt(ip), "{ip}");
        }
        let v = id(VECTORS[0].2);
        assert!(v.is_verified_for("124.31.75.21".parse().unwrap()));
        assert!(!NodeId([0; 20]).is_verified_for("124.31.75.21".parse().unwrap()));
    }

    #[test]
    fn distance_and_common_prefix() {
        let a = NodeId([0; 20]);
        assert_eq!(a.common_prefix_len(&a), 160);
        assert_eq!(a.distance(&a), Distance([0; 20]));
        for i in 0..160 {
            let b = a.with_bit_flipped(i);
            assert!(b.bit(i) && !a.bit(i));
            assert_eq!(a.common_prefix_len(&b), i);
            assert_eq!(b.common_prefix_len(&a), i);
        }
        // XOR distance orders by the first differing bit.
        let near = a.with_bit_flipped(159);
        let far = a.with_bit_flipped(0);
        assert!(a.distance(&near) < a.distance(&far));
        let mid = a.with_bit_flipped(80).with_bit_flipped(159);
        assert!(a.distance(&near) < a.distance(&mid) && a.distance(&mid) < a.distance(&far));
        // Symmetric.
        let mut rng = fastrand::Rng::with_seed(1);
        let (x, y) = (NodeId::random(&mut rng), NodeId::random(&mut rng));
        assert_eq!(x.distance(&y), y.distance(&x));
    }

    #[test]
    fn random_ids_keep_the_prefix() {
        let mut rng = fastrand::Rng::with_seed(7);
        let own = NodeId::random(&mut rng);
        for bits in [0, 1, 7, 8, 9, 20, 159, 160, 200] {
            for _ in 0..20 {
                let r = NodeId::random_with_prefix(&own, bits, &mut rng);
                assert!(r.common_prefix_len(&own) >= bits.min(160), "{bits}");
            }
        }
        // Bucket i's range: the first i bits of our id, then bit i flipped.
        let target = NodeId::random_with_prefix(&own.with_bit_flipped(5), 6, &mut rng);
        assert_eq!(own.common_prefix_len(&target), 5);
    }

    #[test]
    fn hex_display_and_from_bytes() {
        let v = id(VECTORS[0].2);
        assert_eq!(v.to_string(), VECTORS[0].2);
        assert_eq!(NodeId::from_bytes(&v.0), Some(v));
        assert_eq!(NodeId::from_bytes(&v.0[..19]), None);
        assert_eq!(NodeId::from(InfoHash(v.0)), v);
    }
}
