//! Compact addresses (BEP 23, BEP 7, BEP 11, BEP 15): 4 address bytes and a big-endian port
//! for IPv4, 16 and a port for IPv6. One reader and one writer for the trackers' replies,
//! peer exchange and the UDP tracker protocol.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes of one compact entry: 6 for IPv4, 18 for IPv6.
pub fn entry_len(v6: bool) -> usize {
    if v6 {
        18
    } else {
        6
    }
}

/// The addresses in a compact list of one family (a trailing partial entry is ignored).
pub fn addrs(list: &[u8], v6: bool) -> impl Iterator<Item = SocketAddr> + '_ {
    let size = entry_len(v6);
    list.chunks_exact(size).map(move |e| {
        let port = u16::from_be_bytes([e[size - 2], e[size - 1]]);
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(&e[..16]).expect("sized by chunks_exact"),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(e[0], e[1], e[2], e[3]))
        };
        SocketAddr::new(ip, port)
    })
}

/// The compact form of an IPv4 address and port.
pub fn v4(ip: Ipv4Addr, port: u16) -> [u8; 6] {
    let mut k = [0; 6];
    k[..4].copy_from_slice(&ip.octets());
    k[4..].copy_from_slice(&port.to_be_bytes());
    k
}

/// The compact form of an IPv6 address and port.
pub fn v6(ip: Ipv6Addr, port: u16) -> [u8; 18] {
    let mut k = [0; 18];
    k[..16].copy_from_slice(&ip.octets());
    k[16..].copy_from_slice(&port.to_be_bytes());
    k
}

/// Appends the compact form of `addr` (6 or 18 bytes, by its family).
pub fn push(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&v4(ip, addr.port())),
        IpAddr::V6(ip) => out.extend_from_slice(&v6(ip, addr.port())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_round_trip_and_partial_entries_are_ignored() {
        let a: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:51413".parse().unwrap();
        let mut list = Vec::new();
        push(&mut list, a);
        list.push(9);
        assert_eq!(addrs(&list, false).collect::<Vec<_>>(), [a]);
        let mut list6 = Vec::new();
        push(&mut list6, b);
        assert_eq!(addrs(&list6, true).collect::<Vec<_>>(), [b]);
    }
}
