//! The UDP tracker (BEP 15) over real loopback sockets: connect, announce and scrape are
//! answered; garbage, forged connection ids and oversized datagrams are not, and the
//! server keeps answering after them; HTTP and UDP share one swarm store (and may share a
//! port number). Each test starts `battorrent tracker` on port 0 and stops it by process
//! id. The client is written here with the crate's codec.
//!
//! "No reply" is checked without sleeping: after the datagram that must go unanswered, a
//! connect with a fresh transaction id is sent, and the next datagram that arrives must be
//! its reply.

use battorrent::core::InfoHash;
use battorrent::tracker::udp::packet::{
    announce_request, connect_request, peers, scrape_request, AnnounceRequest, Reply, MAX_SCRAPE,
};
use battorrent::tracker::Event;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const HASH: InfoHash = InfoHash([0x12; 20]);

/// A running tracker, killed on drop.
struct Tracker {
    child: Child,
    http: SocketAddr,
    udp: Vec<SocketAddr>,
}

impl Tracker {
    /// Starts `battorrent tracker --bind <bind> --udp <each of udp> <extra>` and reads the
    /// addresses it listens on.
    fn start(bind: &str, udp: &[&str], extra: &[&str]) -> Tracker {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_battorrent"));
        cmd.args(["tracker", "--bind", bind]);
        for addr in udp {
            cmd.args(["--udp", addr]);
        }
        let mut child = cmd
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tracker");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut listening = |scheme: &str| -> SocketAddr {
            let mut line = String::new();
            stderr.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix(&format!("tracker listening on {scheme}://"))
                .and_then(|rest| rest.strip_suffix("/announce"))
                .and_then(|addr| addr.parse().ok())
                .unwrap_or_else(|| panic!("no {scheme} address in {line:?}"))
        };
        let http = listening("http");
        let udp = udp.iter().map(|_| listening("udp")).collect();
        Tracker { child, http, udp }
    }

    fn udp(udp: &[&str], extra: &[&str]) -> Tracker {
        Tracker::start("127.0.0.1:0", udp, extra)
    }

    /// `/stats` as JSON.
    fn stats(&self) -> serde_json::Value {
        let mut s = TcpStream::connect(self.http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).expect("a body");
        serde_json::from_str(body).unwrap()
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A BEP 15 client on its own socket.
struct Client {
    socket: UdpSocket,
    next: u32,
}

impl Client {
    fn new(tracker: SocketAddr) -> Client {
        let local = if tracker.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let socket = UdpSocket::bind(local).unwrap();
        socket.connect(tracker).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client { socket, next: 1 }
    }

    fn transaction(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    fn send(&self, datagram: &[u8]) {
        self.socket.send(datagram).unwrap();
    }

    /// The next datagram from the tracker (fails after 10 s).
    fn receive(&self) -> Vec<u8> {
        let mut buf = vec![0; 65536];
        let n = self.socket.recv(&mut buf).expect("a reply within 10 s");
        buf.truncate(n);
        buf
    }

    /// A new connection id; the connect reply must be the next datagram to arrive.
    fn connect(&mut self) -> u64 {
        let transaction = self.transaction();
        let mut b = Vec::new();
        connect_request(&mut b, transaction);
        self.send(&b);
        let reply = self.receive();
        assert_eq!(reply.len(), 16, "a connect reply is 16 bytes");
        match Reply::parse(&reply) {
            Ok(Reply::Connect {
                transaction: t,
                connection,
            }) if t == transaction => connection,
            other => panic!("expected the connect reply {transaction}, got {other:?}"),
        }
    }

    /// Sends `request` and returns the reply.
    fn ask(&self, request: &[u8]) -> Vec<u8> {
        self.send(request);
        self.receive()
    }

    fn announce(&mut self, id: u64, hash: InfoHash, port: u16) -> Vec<u8> {
        let mut b = Vec::new();
        let transaction = self.transaction();
        announce_request(&mut b, id, transaction, &announce_of(hash, port));
        let reply = self.ask(&b);
        assert_eq!(Reply::parse(&reply).unwrap().transaction(), transaction);
        reply
    }
}

fn announce_of(hash: InfoHash, port: u16) -> AnnounceRequest<'static> {
    let mut peer_id = *b"-BT0001-000000000000";
    peer_id[14..16].copy_from_slice(&port.to_be_bytes());
    AnnounceRequest {
        info_hash: hash,
        peer_id,
        downloaded: 0,
        left: 1000,
        uploaded: 0,
        event: Event::Started,
        key: 7,
        numwant: None,
        port,
        url_data: b"/announce",
    }
}

/// The peers of an announce reply.
fn peer_list(reply: &[u8], v6: bool) -> Vec<SocketAddr> {
    match Reply::parse(reply) {
        Ok(Reply::Announce { peers: list, .. }) => {
            assert_eq!(list.len() % if v6 { 18 } else { 6 }, 0, "whole entries");
            peers(list, v6).collect()
        }
        other => panic!("not an announce reply: {other:?}"),
    }
}

#[test]
fn connect_and_announce_returns_the_other_announcer() {
    let t = Tracker::udp(&["127.0.0.1:0"], &[]);
    let mut a = Client::new(t.udp[0]);
    let id = a.connect();
    assert!(peer_list(&a.announce(id, HASH, 6881), false).is_empty());
    let mut b = Client::new(t.udp[0]);
    let id = b.connect();
    let reply = b.announce(id, HASH, 6882);
    assert_eq!(
        peer_list(&reply, false),
        ["127.0.0.1:6881".parse::<SocketAddr>().unwrap()]
    );
    let Ok(Reply::Announce {
        leechers, seeders, ..
    }) = Reply::parse(&reply)
    else {
        unreachable!()
    };
    assert_eq!((leechers, seeders), (2, 0));
    let stats = t.stats();
    assert_eq!(stats["udp"]["requests"]["connect"], 2);
    assert_eq!(stats["udp"]["requests"]["announce"], 2);
    assert_eq!(stats["peers"], 2);
}

#[test]
fn a_scrape_of_100_hashes_answers_74() {
    let t = Tracker::udp(&["127.0.0.1:0"], &[]);
    let mut c = Client::new(t.udp[0]);
    let id = c.connect();
    c.announce(id, InfoHash([5; 20]), 6881);
    let hashes: Vec<InfoHash> = (0..100u8).map(|i| InfoHash([i; 20])).collect();
    let mut b = Vec::new();
    scrape_request(&mut b, id, 9, &hashes);
    for h in &hashes[MAX_SCRAPE..] {
        b.extend_from_slice(&h.0);
    }
    let reply = c.ask(&b);
    let Ok(Reply::Scrape {
        transaction: 9,
        entries,
    }) = Reply::parse(&reply)
    else {
        panic!("not a scrape reply: {reply:?}")
    };
    assert_eq!(entries.len(), 74);
    assert_eq!(entries[5], (0, 0, 1), "(seeders, completed, leechers)");
    assert_eq!(t.stats()["udp"]["requests"]["scrape"], 1);
}

#[test]
fn forged_ids_and_garbage_get_no_reply_and_the_server_goes_on() {
    let t = Tracker::udp(&["127.0.0.1:0"], &[]);
    let mut c = Client::new(t.udp[0]);
    let id = c.connect();

    let mut forged = Vec::new();
    announce_request(&mut forged, id ^ 0x8000, 3, &announce_of(HASH, 1));
    let mut scrape = Vec::new();
    scrape_request(&mut scrape, id.wrapping_add(1), 3, &[HASH]);
    let mut unknown_action = Vec::new();
    connect_request(&mut unknown_action, 3);
    unknown_action[8..12].copy_from_slice(&5u32.to_be_bytes());
    let mut bad_magic = Vec::new();
    connect_request(&mut bad_magic, 3);
    bad_magic[0] ^= 0xff;
    let mut unconnected = forged.clone();
    unconnected[80..84].copy_from_slice(&9u32.to_be_bytes()); // an unknown event too
    let garbage: [&[u8]; 8] = [
        &forged,
        &scrape,
        &unknown_action,
        &bad_magic,
        &unconnected,
        &forged[..50],
        &[],
        &vec![0xab; 9000],
    ];
    for datagram in garbage {
        c.send(datagram);
        // The next datagram to arrive is the connect reply: nothing answered the garbage.
        c.connect();
    }
    let stats = t.stats();
    assert_eq!(stats["udp"]["errors"]["bad_connection_id"], 2);
    assert_eq!(stats["udp"]["errors"]["bad_packet"], 6);
    assert_eq!(stats["peers"], 0, "nothing stored for a forged id");

    // A connected client is told what was wrong with its request.
    let mut bad_event = Vec::new();
    announce_request(&mut bad_event, id, 4, &announce_of(HASH, 1));
    bad_event[80..84].copy_from_slice(&9u32.to_be_bytes());
    let reply = c.ask(&bad_event);
    assert!(
        matches!(Reply::parse(&reply), Ok(Reply::Error { transaction: 4, message }) if message == b"unknown announce event 9"),
        "{reply:?}"
    );
    // And still served.
    assert!(peer_list(&c.announce(id, HASH, 6881), false).is_empty());
}

#[test]
fn refused_info_hashes_get_an_error_reply() {
    let dir = std::env::temp_dir().join(format!("battorrent-udp-allow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("allow.txt");
    let allowed = InfoHash([0xab; 20]);
    std::fs::write(&list, format!("{}\n", allowed.to_hex())).unwrap();
    let t = Tracker::udp(&["127.0.0.1:0"], &["--allow", list.to_str().unwrap()]);
    let mut c = Client::new(t.udp[0]);
    let id = c.connect();
    let reply = c.announce(id, HASH, 6881);
    assert!(
        matches!(Reply::parse(&reply), Ok(Reply::Error { message, .. }) if message == b"this tracker does not serve that info_hash"),
        "{reply:?}"
    );
    assert!(peer_list(&c.announce(id, allowed, 6881), false).is_empty());
    assert_eq!(t.stats()["udp"]["errors"]["refused"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ipv6_clients_get_18_byte_peers() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    }
    let t = Tracker::udp(&["127.0.0.1:0", "[::1]:0"], &[]);
    let mut a = Client::new(t.udp[1]);
    let id = a.connect();
    a.announce(id, HASH, 6881);
    let mut b = Client::new(t.udp[1]);
    let id = b.connect();
    let reply = b.announce(id, HASH, 6882);
    assert_eq!(
        peer_list(&reply, true),
        ["[::1]:6881".parse::<SocketAddr>().unwrap()]
    );
    // An IPv4 client of the same swarm gets 6-byte peers: none of the IPv6 ones.
    let mut c = Client::new(t.udp[0]);
    let id = c.connect();
    assert!(peer_list(&c.announce(id, HASH, 6883), false).is_empty());
}

#[test]
fn http_and_udp_share_a_port_number_and_a_swarm() {
    // A port free for TCP now; UDP on the same number is very likely free too.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let t = Tracker::start(&addr, &[&addr], &[]);
    assert_eq!((t.http.port(), t.udp[0].port()), (port, port));
    let mut s = TcpStream::connect(t.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hash: String = HASH.0.iter().map(|b| format!("%{b:02X}")).collect();
    write!(
        s,
        "GET /announce?info_hash={hash}&peer_id=-BT0001-httphttphttp&port=7000&left=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    assert!(response.starts_with(b"HTTP/1.1 200"));
    let mut c = Client::new(t.udp[0]);
    let id = c.connect();
    assert_eq!(
        peer_list(&c.announce(id, HASH, 7001), false),
        ["127.0.0.1:7000".parse::<SocketAddr>().unwrap()]
    );
}
