//! The torrent engine facing one hostile peer: the first bytes choose a torrent geometry,
//! whether we seed or fetch a magnet link's metadata (BEP 9), and whether the peer's
//! handshake sets the fast extension bit (BEP 6), the rest is what the peer sends after a
//! valid handshake, delivered
//! in chunks whose sizes the input also chooses, with clock ticks between them. The engine
//! never panics, never uses more bytes than given, serves only pieces it has, and every
//! byte it sends back parses as wire messages.
#![no_main]

use battorrent::core::{Geometry, InfoHash};
use battorrent::torrent::{Action, Direction, Engine, TorrentConfig};
use battorrent::wire::{decode, Bitfield, Handshake, HANDSHAKE_LEN};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let piece_length = 16384 * (1 + u64::from(data[0] % 4));
    let total = piece_length * u64::from(1 + data[1] % 16) - u64::from(data[0]) * 7;
    let seed = data[2] & 1 == 1;
    let fast = data[2] & 2 == 0;
    let magnet = data[2] & 4 == 4;
    let geometry = Geometry::new(piece_length, total);
    let hash = InfoHash([7; 20]);
    let mut now = Instant::now();
    let config = TorrentConfig {
        peer_id: [1; 20],
        seed: 1,
        ..TorrentConfig::default()
    };
    let mut engine = if magnet {
        Engine::new_magnet(now, hash, config)
    } else {
        let mut engine =
            Engine::new(now, hash, geometry, vec![[0; 20]; geometry.pieces as usize], config);
        engine.handle_checked(now, &Bitfield::repeat(seed, geometry.pieces as usize));
        engine
    };
    let addr = SocketAddr::from(([10, 0, 0, 2], 6881));
    let Ok(key) = engine.handle_connected(now, addr, Direction::Incoming) else {
        return;
    };
    let mut handshake = Handshake::new(hash, [2; 20]);
    if !fast {
        handshake.reserved[7] &= !0x04;
    }
    let mut stream = handshake.encode().to_vec();
    stream.extend_from_slice(&data[3..]);
    let mut pending: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut step = 0usize;
    let mut sent_handshake = false;
    while at < stream.len() {
        let chunk = 1 + usize::from(stream[at]) * 3;
        let end = (at + chunk).min(stream.len());
        pending.extend_from_slice(&stream[at..end]);
        at = end;
        let used = engine.handle_bytes(now, key, &pending);
        assert!(used <= pending.len());
        pending.drain(..used);
        step += 1;
        if step % 4 == 0 {
            now += Duration::from_secs(7);
            engine.handle_timeout(now);
        }
        let mut served = Vec::new();
        engine.take_serves(key, 64, &mut served);
        for b in &served {
            assert!(engine.have()[b.piece as usize], "served a piece we lack");
        }
        while let Some(action) = engine.poll_action() {
            if let Action::Send { bytes, .. } = action {
                let mut rest = &bytes[..];
                if !sent_handshake {
                    assert!(rest.len() >= HANDSHAKE_LEN);
                    rest = &rest[HANDSHAKE_LEN..];
                    sent_handshake = true;
                }
                while !rest.is_empty() {
                    let (_, n) = decode(rest, 1 << 20)
                        .expect("our bytes decode")
                        .expect("whole messages");
                    rest = &rest[n..];
                }
            }
        }
    }
});
