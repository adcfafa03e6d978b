//! A UDP tracker load generator over a fixed set of info hashes (so a whitelist-only
//! tracker such as Debian's opentracker can be measured on the same hashes as the others).
//!
//! Run: cargo run --release --example udp_load -- SERVER SECONDS HASHES_FILE [SOCKETS]
//! Each socket connects, then keeps 32 announces in flight (random hash from the file,
//! random peer, numwant 30), reconnecting every minute and resending a window that got no
//! answer for a second. Prints `responses/s: N` (announce replies per second, over the
//! whole run) at the end. Single-threaded: pin it to a core of its own.

use battorrent::core::InfoHash;
use battorrent::tracker::udp::packet::{self, AnnounceRequest, Reply};
use battorrent::tracker::Event;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const WINDOW: usize = 32;

struct Client {
    socket: UdpSocket,
    connection: Option<u64>,
    connected_at: Instant,
    in_flight: usize,
    last_reply: Instant,
    next_tx: u32,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: udp_load SERVER SECONDS HASHES_FILE [SOCKETS]");
        std::process::exit(2);
    }
    let server: SocketAddr = args[1].parse().expect("SERVER is ip:port");
    let seconds: u64 = args[2].parse().expect("SECONDS is a number");
    let hashes: Vec<InfoHash> = std::fs::read_to_string(&args[3])
        .expect("readable HASHES_FILE")
        .lines()
        .filter_map(InfoHash::from_hex)
        .collect();
    assert!(!hashes.is_empty(), "no hashes in {}", args[3]);
    let sockets: usize = args
        .get(4)
        .map_or(8, |s| s.parse().expect("SOCKETS is a number"));
    let now = Instant::now();
    let mut clients: Vec<Client> = (0..sockets)
        .map(|i| {
            // Distinct source addresses (127.0.0.2, .3, ...), as many peers behind one
            // host would not be.
            let socket = UdpSocket::bind(("127.0.0.".to_string() + &(2 + i % 250).to_string(), 0))
                .expect("bind a loopback address");
            socket.set_nonblocking(true).expect("non-blocking");
            Client {
                socket,
                connection: None,
                connected_at: now,
                in_flight: 0,
                last_reply: now - Duration::from_secs(10),
                next_tx: (i as u32) << 24,
            }
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut buf = [0u8; 2048];
    let mut out = Vec::with_capacity(128);
    let mut responses = 0u64;
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    while Instant::now() < end {
        let now = Instant::now();
        for c in &mut clients {
            // Replies first.
            while let Ok((n, _)) = c.socket.recv_from(&mut buf) {
                c.last_reply = now;
                match Reply::parse(&buf[..n]) {
                    Ok(Reply::Connect { connection, .. }) => {
                        c.connection = Some(connection);
                        c.connected_at = now;
                        c.in_flight = 0;
                    }
                    Ok(Reply::Announce { .. }) => {
                        responses += 1;
                        c.in_flight = c.in_flight.saturating_sub(1);
                    }
                    _ => c.in_flight = c.in_flight.saturating_sub(1),
                }
            }
            let stale = now.duration_since(c.connected_at) > Duration::from_secs(60);
            let stuck =
                c.in_flight > 0 && now.duration_since(c.last_reply) > Duration::from_secs(1);
            let Some(connection) = c.connection.filter(|_| !stale && !stuck) else {
                if now.duration_since(c.last_reply) > Duration::from_millis(500) || stale {
                    out.clear();
                    c.next_tx = c.next_tx.wrapping_add(1);
                    packet::connect_request(&mut out, c.next_tx);
                    let _ = c.socket.send_to(&out, server);
                    c.connection = None;
                    c.last_reply = now;
                }
                continue;
            };
            while c.in_flight < WINDOW {
                out.clear();
                c.next_tx = c.next_tx.wrapping_add(1);
                let mut peer_id = [0u8; 20];
                rng.fill(&mut peer_id);
                let request = AnnounceRequest {
                    info_hash: hashes[rng.usize(..hashes.len())],
                    peer_id,
                    downloaded: 0,
                    left: rng.u64(0..2) * 1000,
                    uploaded: 0,
                    event: Event::None,
                    key: rng.u32(..),
                    numwant: Some(30),
                    port: rng.u16(1024..),
                    url_data: &[],
                };
                packet::announce_request(&mut out, connection, c.next_tx, &request);
                if c.socket.send_to(&out, server).is_err() {
                    break;
                }
                c.in_flight += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!("responses/s: {:.0}", responses as f64 / elapsed);
}
