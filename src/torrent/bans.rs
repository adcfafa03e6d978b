//! Who sent data that failed its hash check, and who gets banned for it.
//!
//! A failed piece records, for each block, which peer sent it and the SHA-1 of what it
//! sent. When the piece later verifies, every recorded block is compared with the good
//! data: a peer whose block differs is proven to have lied and is banned at once, and
//! peers whose blocks were right are cleared. A peer that alone supplied a failed piece
//! gets a strike, and [`MAX_STRIKES`] strikes ban it. Peers that shared a failed piece with
//! others are put on parole (served whole pieces only, so the next failure is theirs
//! alone) but are never punished without proof.
//!
//! Bans are keyed on the address, never on the peer id: peer ids are public (every
//! handshake carries one), so anyone could borrow an honest peer's id to get it banned.

use crate::core::keyed::{Map as HashMap, Set as HashSet};
use sha1::{Digest, Sha1};
use std::net::{IpAddr, SocketAddr};

/// Strikes (failed pieces supplied alone) that ban a peer.
pub const MAX_STRIKES: u32 = 3;

/// What a ban applies to: the address, or the full socket address on loopback (where
/// several local peers share one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BanKey {
    Ip(IpAddr),
    Socket(SocketAddr),
}

impl BanKey {
    /// The key for a peer at `addr` (an IPv4 address mapped into IPv6 is the IPv4 one).
    pub fn of(addr: SocketAddr) -> BanKey {
        let ip = addr.ip().to_canonical();
        if ip.is_loopback() {
            BanKey::Socket(SocketAddr::new(ip, addr.port()))
        } else {
            BanKey::Ip(ip)
        }
    }
}

/// Strike and ban bookkeeping for one torrent. Its lists are made at the first failed
/// piece: most torrents never have one, and an idle torrent should cost little.
#[derive(Debug, Default)]
pub struct Bans {
    lists: Option<Box<Lists>>,
}

#[derive(Debug, Default)]
struct Lists {
    strikes: HashMap<BanKey, u32>,
    banned: HashSet<BanKey>,
    parole: HashSet<BanKey>,
    /// Per failed piece: (block index, sender, SHA-1 of what it sent).
    suspects: HashMap<u32, Vec<(u32, BanKey, [u8; 20])>>,
}

fn block_hash(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

impl Bans {
    fn lists(&mut self) -> &mut Lists {
        self.lists.get_or_insert_with(Default::default)
    }

    /// Whether a peer at `addr` is banned.
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.is_banned_key(BanKey::of(addr))
    }

    /// Whether `key` is banned.
    pub fn is_banned_key(&self, key: BanKey) -> bool {
        self.lists.as_ref().is_some_and(|l| l.banned.contains(&key))
    }

    /// Whether the peer must be given whole pieces only.
    pub fn on_parole(&self, key: BanKey) -> bool {
        self.lists.as_ref().is_some_and(|l| l.parole.contains(&key))
    }

    /// Number of banned peers.
    pub fn banned_count(&self) -> usize {
        self.lists.as_ref().map_or(0, |l| l.banned.len())
    }

    /// Bans `key`. Returns true if it was not banned yet.
    pub fn ban(&mut self, key: BanKey) -> bool {
        let lists = self.lists();
        lists.parole.remove(&key);
        lists.banned.insert(key)
    }

    /// Whether blocks of `piece` that failed before are waiting to be compared with the
    /// good data (then a check of the piece should report its blocks' hashes).
    pub fn has_suspects(&self, piece: u32) -> bool {
        self.lists
            .as_ref()
            .is_some_and(|l| l.suspects.contains_key(&piece))
    }

    /// Records a piece that failed its hash. `senders[i]` sent block `i` (blocks of
    /// `block_len` bytes). Returns the peers this bans.
    pub fn piece_failed(
        &mut self,
        piece: u32,
        data: &[u8],
        block_len: usize,
        senders: &[BanKey],
    ) -> Vec<BanKey> {
        let hashes: Vec<[u8; 20]> = data.chunks(block_len).map(block_hash).collect();
        self.piece_failed_hashes(piece, &hashes, senders)
    }

    /// [`Bans::piece_failed`] with each block's SHA-1 (`hashes[i]` of block `i`) instead
    /// of the data.
    pub fn piece_failed_hashes(
        &mut self,
        piece: u32,
        hashes: &[[u8; 20]],
        senders: &[BanKey],
    ) -> Vec<BanKey> {
        let record = self.lists().suspects.entry(piece).or_default();
        for (i, (hash, sender)) in hashes.iter().zip(senders).enumerate() {
            record.push((i as u32, *sender, *hash));
        }
        let first = senders.first().copied();
        let mut newly = Vec::new();
        match first {
            Some(only) if senders.iter().all(|s| *s == only) => {
                let strikes = self.lists().strikes.entry(only).or_default();
                *strikes += 1;
                if *strikes >= MAX_STRIKES && self.ban(only) {
                    newly.push(only);
                } else {
                    self.lists().parole.insert(only);
                }
            }
            _ => self.lists().parole.extend(senders.iter().copied()),
        }
        newly
    }

    /// A piece verified: compares what suspects sent for it with the good `data`. Returns
    /// the peers proven to have sent bad blocks (now banned).
    pub fn piece_verified(&mut self, piece: u32, data: &[u8], block_len: usize) -> Vec<BanKey> {
        if !self.has_suspects(piece) {
            return Vec::new();
        }
        let hashes: Vec<[u8; 20]> = data.chunks(block_len).map(block_hash).collect();
        self.piece_verified_hashes(piece, &hashes)
    }

    /// [`Bans::piece_verified`] with each good block's SHA-1 instead of the data.
    pub fn piece_verified_hashes(&mut self, piece: u32, hashes: &[[u8; 20]]) -> Vec<BanKey> {
        let Some(record) = self.lists.as_mut().and_then(|l| l.suspects.remove(&piece)) else {
            return Vec::new();
        };
        let mut liars = Vec::new();
        let mut honest = Vec::new();
        for (index, sender, hash) in record {
            let Some(good) = hashes.get(index as usize) else {
                continue;
            };
            if *good == hash {
                honest.push(sender);
            } else if !liars.contains(&sender) {
                liars.push(sender);
            }
        }
        for sender in honest {
            if !liars.contains(&sender) {
                let lists = self.lists();
                lists.parole.remove(&sender);
                lists.strikes.remove(&sender);
            }
        }
        liars.retain(|k| self.ban(*k));
        liars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> BanKey {
        BanKey::of(SocketAddr::from(([10, 0, 0, n], 6881)))
    }

    #[test]
    fn a_liar_sharing_a_piece_is_banned_on_proof_and_the_honest_peer_is_cleared() {
        let mut bans = Bans::default();
        let good = vec![7u8; 8];
        let mut bad = good.clone();
        bad[5] = 0; // block 1 (bytes 4..8) came from peer 2 and is wrong
        assert!(bans.piece_failed(3, &bad, 4, &[key(1), key(2)]).is_empty());
        assert!(bans.on_parole(key(1)) && bans.on_parole(key(2)));
        assert!(!bans.is_banned(SocketAddr::from(([10, 0, 0, 1], 1))));
        assert_eq!(bans.piece_verified(3, &good, 4), vec![key(2)]);
        assert!(bans.is_banned(SocketAddr::from(([10, 0, 0, 2], 9999))));
        assert!(!bans.is_banned(SocketAddr::from(([10, 0, 0, 1], 6881))));
        assert!(!bans.on_parole(key(1)));
    }

    #[test]
    fn strikes_for_pieces_failed_alone() {
        let mut bans = Bans::default();
        for piece in 0..MAX_STRIKES - 1 {
            assert!(bans
                .piece_failed(piece, &[1; 8], 4, &[key(1); 2])
                .is_empty());
        }
        assert_eq!(bans.piece_failed(9, &[1; 8], 4, &[key(1); 2]), vec![key(1)]);
        assert_eq!(bans.banned_count(), 1);
    }

    #[test]
    fn an_ipv4_peer_is_the_same_peer_over_a_dual_stack_socket() {
        let v4 = SocketAddr::from(([10, 1, 2, 3], 6881));
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:7000".parse().unwrap();
        let mut bans = Bans::default();
        bans.ban(BanKey::of(mapped));
        assert!(bans.is_banned(v4));
        let local: SocketAddr = "[::ffff:127.0.0.1]:7000".parse().unwrap();
        assert_eq!(
            BanKey::of(local),
            BanKey::Socket(SocketAddr::from(([127, 0, 0, 1], 7000)))
        );
    }

    #[test]
    fn loopback_peers_are_told_apart_by_port() {
        let a = SocketAddr::from(([127, 0, 0, 1], 7000));
        let b = SocketAddr::from(([127, 0, 0, 1], 7001));
        let mut bans = Bans::default();
        bans.ban(BanKey::of(a));
        assert!(bans.is_banned(a));
        assert!(!bans.is_banned(b));
    }
}
