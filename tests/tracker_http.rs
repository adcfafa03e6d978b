//! The tracker server over real loopback sockets: every malformed request gets its status
//! and failure reason; keep-alive, pipelining, limits, access lists and SIGHUP reloads work.
//! Each test starts `battorrent tracker` on 127.0.0.1:0 and stops it by process id.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const HASH: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
const HASH_HEX: &str = "123456789abcdef123456789abcdef123456789a";
const PEER: &str = "-BT0001-abcdefghijkl";

/// A running tracker, killed on drop.
struct Tracker {
    child: Child,
    port: u16,
}

impl Tracker {
    fn start(extra: &[&str]) -> Tracker {
        Tracker::start_on("127.0.0.1:0", extra)
    }

    fn start_on(bind: &str, extra: &[&str]) -> Tracker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_battorrent"))
            .args(["tracker", "--bind", bind])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tracker");
        let mut line = String::new();
        BufReader::new(child.stderr.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Tracker { child, port }
    }

    fn connect(&self) -> TcpStream {
        self.connect_to("127.0.0.1")
    }

    fn connect_to(&self, host: &str) -> TcpStream {
        let s = TcpStream::connect((host, self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// One request on a fresh connection; returns (status, body).
    fn get(&self, target: &str) -> (u16, Vec<u8>) {
        let mut s = self.connect();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        read_response(&mut BufReader::new(s))
    }

    fn announce(&self, query: &str) -> (u16, Vec<u8>) {
        self.get(&format!("/announce?{query}"))
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one HTTP response: status and body (by Content-Length).
fn read_response(r: &mut impl BufRead) -> (u16, Vec<u8>) {
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    (status, body)
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[test]
fn malformed_announces_get_400_and_a_reason() {
    let t = Tracker::start(&[]);
    let ok = format!("info_hash={HASH}&peer_id={PEER}");
    let cases = [
        (format!("peer_id={PEER}&port=1"), "missing info_hash"),
        (
            format!("info_hash=abc&peer_id={PEER}&port=1"),
            "info_hash must be exactly 20 bytes, got 3",
        ),
        (
            format!("info_hash={HASH}%00&peer_id={PEER}&port=1"),
            "info_hash must be exactly 20 bytes, got 21",
        ),
        (format!("info_hash={HASH}&port=1"), "missing peer_id"),
        (
            format!("{ok}x&port=1"),
            "peer_id must be exactly 20 bytes, got 21",
        ),
        (ok.clone(), "missing port"),
        (format!("{ok}&port=0"), "port must be 1 to 65535"),
        (format!("{ok}&port=70000"), "port must be 1 to 65535"),
        (format!("{ok}&port=http"), "port must be 1 to 65535"),
        (
            format!("{ok}&port=1&left=lots"),
            "left is not a whole number",
        ),
        (
            format!("{ok}&port=1&uploaded=-1"),
            "uploaded is not a whole number",
        ),
        (
            format!("{ok}&port=1&downloaded=1e9"),
            "downloaded is not a whole number",
        ),
        (
            format!("{ok}&port=1&numwant=x"),
            "numwant is not a whole number",
        ),
        (
            format!("{ok}&port=1&event=finished"),
            "unknown event 'finished'",
        ),
        (
            format!("{ok}&port=1&port=2"),
            "port is given more than once",
        ),
        (format!("{ok}&port=1&x=%G0"), "malformed percent-encoding"),
    ];
    for (query, reason) in cases {
        let (status, body) = t.announce(&query);
        assert_eq!(status, 400, "{query}");
        let body = text(&body);
        assert!(
            body.starts_with("d14:failure reason") && body.contains(reason),
            "{query}: {body}"
        );
    }
    let (status, body) = t.get("/nowhere");
    assert_eq!((status, text(&body).contains("unknown path")), (404, true));
    let (status, body) = t.get("/scrape");
    assert_eq!(
        (status, text(&body).contains("missing info_hash")),
        (400, true)
    );
    let (status, _) = t.announce(&format!("{ok}&port=6881"));
    assert_eq!(status, 200);

    // With `Connection: close` the reply is followed by the end of the stream, and a
    // malformed request's reply survives the client's unread bytes (no reset).
    for (request, status) in [
        (
            format!("GET /announce?{ok}&port=6882 HTTP/1.1\r\nConnection: close\r\n\r\n"),
            "200",
        ),
        (
            format!("GET /announce?{ok}&port=0 HTTP/1.1\r\nConnection: close\r\n\r\n"),
            "400",
        ),
        (
            format!("BAD\x01REQUEST\r\n\r\n{}", "x".repeat(100_000)),
            "400",
        ),
    ] {
        let mut s = t.connect();
        let _ = s.write_all(request.as_bytes());
        let mut all = Vec::new();
        s.read_to_end(&mut all)
            .expect("a reply then a clean end, not a reset");
        let all = text(&all);
        assert!(all.starts_with(&format!("HTTP/1.1 {status} ")), "{all}");
        assert_eq!(all.matches("HTTP/1.1").count(), 1, "{all}");
    }
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let t = Tracker::start(&[]);
    let mut s = t.connect();
    let mut batch = String::new();
    for port in 1..=5 {
        batch += &format!("GET /announce?info_hash={HASH}&peer_id={PEER}&port={port}&left=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    batch += "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(batch.as_bytes()).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for expected_peers in 0..5 {
        let (status, body) = read_response(&mut r);
        assert_eq!(status, 200);
        // Each new peer on 127.0.0.1 sees the ones before it: 6 bytes each.
        let body = text(&body);
        assert!(
            body.contains(&format!("5:peers{}:", expected_peers * 6)),
            "{body}"
        );
    }
    let (status, stats) = read_response(&mut r);
    assert_eq!(status, 200);
    assert!(text(&stats).contains("\"peers\":5"), "{}", text(&stats));
    // The same connection still works afterwards.
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (status, metrics) = read_response(&mut r);
    assert_eq!(status, 200);
    assert!(text(&metrics).contains("battorrent_tracker_requests_total{kind=\"announce\"} 5"));
}

#[test]
fn pipelined_batches_larger_than_the_read_buffer_are_not_held_back() {
    // 200 announces in one write is about 24 KiB, three reads of the 8 KiB buffer. Answered
    // in several writes without TCP_NODELAY, each write after the first waited for the
    // client's delayed ACK (about 40 ms on Linux): 20 rounds took over a second.
    let t = Tracker::start(&[]);
    let mut s = t.connect();
    s.set_nodelay(true).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let started = std::time::Instant::now();
    for round in 0..20 {
        let mut batch = String::new();
        for port in 1..=200 {
            batch += &format!(
                "GET /announce?info_hash={HASH}&peer_id={PEER}&port={port}&left={round}&numwant=0 HTTP/1.1\r\nHost: x\r\n\r\n"
            );
        }
        s.write_all(batch.as_bytes()).unwrap();
        for _ in 0..200 {
            assert_eq!(read_response(&mut r).0, 200);
        }
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "20 pipelined batches of 200 took {took:?}"
    );
}

#[test]
fn garbage_oversized_and_slow_requests_are_cut_off() {
    let t = Tracker::start(&["--request-timeout", "1"]);
    let mut s = t.connect();
    s.write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .unwrap();
    let (status, body) = read_response(&mut BufReader::new(s));
    assert_eq!(status, 400);
    assert!(text(&body).contains("malformed HTTP request"));

    let mut s = t.connect();
    let huge = format!("GET /announce?{} HTTP/1.1\r\n", "a".repeat(20_000));
    let _ = s.write_all(huge.as_bytes());
    let (status, body) = read_response(&mut BufReader::new(s));
    assert_eq!(status, 431);
    assert!(text(&body).contains("too large"));

    let mut s = t.connect();
    write!(
        s,
        "POST /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    )
    .unwrap();
    let (status, body) = read_response(&mut BufReader::new(s));
    assert_eq!(status, 400);
    assert!(text(&body).contains("bodies are not accepted"));

    // A client that starts a request and stalls is disconnected after the timeout.
    let mut s = t.connect();
    s.write_all(b"GET /announce?info_hash=").unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest).unwrap();
    assert_eq!(n, 0, "expected a silent close");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn conflicting_framing_gets_400_and_hides_no_second_request() {
    let t = Tracker::start(&[]);
    let smuggled = "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n";
    for framing in [
        format!("Content-Length: 0\r\nContent-Length: {}", smuggled.len()),
        format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked",
            smuggled.len()
        ),
    ] {
        let mut s = t.connect();
        write!(
            s,
            "GET /announce HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n{smuggled}"
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let (status, body) = read_response(&mut r);
        assert_eq!(status, 400, "{framing}: {}", text(&body));
        assert!(text(&body).contains("framing"), "{}", text(&body));
        // The connection closes: the smuggled request is never answered.
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{framing}: answered {}", text(&rest));
    }
}

#[test]
fn connection_cap_closes_extra_connections() {
    let t = Tracker::start(&["--max-connections", "2"]);
    // Two keep-alive clients that have been served hold both slots (connections still
    // without a complete request would be evicted for the newcomer instead).
    let mut _a = t.connect();
    let mut _b = t.connect();
    for s in [&mut _a, &mut _b] {
        s.write_all(b"GET /stats HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut BufReader::new(&*s)).0, 200);
    }
    let mut c = t.connect();
    let _ = c.write_all(b"GET /stats HTTP/1.1\r\n\r\n");
    let mut buf = [0u8; 16];
    assert_eq!(
        c.read(&mut buf).unwrap_or(0),
        0,
        "third connection should be closed"
    );
    drop((_a, _b));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(t.get("/stats").0, 200);
}

/// Pipelines announces without ever reading a reply until the kernel buffers on both sides
/// are full and writing blocks.
fn stuff_without_reading(t: &Tracker) -> TcpStream {
    let mut s = t.connect();
    s.set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let request = format!(
        "GET /announce?info_hash={HASH}&peer_id={PEER}&port=7&left=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let batch = request.repeat(100);
    while s.write_all(batch.as_bytes()).is_ok() {}
    s
}

#[test]
fn clients_that_never_read_their_replies_lose_their_slot() {
    let t = Tracker::start(&["--max-connections", "2", "--request-timeout", "1"]);
    let _stuck = [stuff_without_reading(&t), stuff_without_reading(&t)];
    // The replies' writes stall; they are cut off after one to two request timeouts (here
    // 1 s), well before the 60 s idle limit, and the slots come free.
    std::thread::sleep(Duration::from_millis(3_500));
    let (status, stats) = t.get("/stats");
    assert_eq!(status, 200);
    assert!(
        text(&stats).contains("\"unsent_bytes\":0"),
        "{}",
        text(&stats)
    );
}

/// A connection from `source` (any 127.x.y.z works on Linux loopback) to the tracker.
fn connect_from(t: &Tracker, source: &str) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let s = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let addr = format!("127.0.0.1:{}", t.port).parse().unwrap();
        socket.connect(addr).await.unwrap().into_std().unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Whether a /stats request on `s` is answered (false: the connection was closed).
fn served(mut s: TcpStream) -> bool {
    if s.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut r = BufReader::new(s);
    let mut line = String::new();
    matches!(r.read_line(&mut line), Ok(n) if n > 0) && line.contains(" 200 ")
}

#[test]
fn silent_connections_give_way_to_new_clients() {
    let t = Tracker::start(&["--max-connections", "4"]);
    // Four connections from four addresses start a request and stall: well within the
    // 10 s request timeout they hold every slot.
    let mut stalled: Vec<_> = (1..=4)
        .map(|n| {
            let mut s = connect_from(&t, &format!("127.0.0.{n}"));
            s.write_all(b"GET /").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A newcomer evicts the oldest of them instead of being turned away.
    assert!(
        served(t.connect()),
        "a newcomer should evict a silent connection"
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        stalled[0].read(&mut buf).unwrap_or(0),
        0,
        "the oldest is closed"
    );
    let (_, stats) = t.get("/stats");
    let stats = text(&stats);
    let evicted: u32 = stats
        .split("\"evicted_silent\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no evicted_silent in {stats}"));
    assert!((1..=2).contains(&evicted), "{stats}");
    stalled.clear();
}

#[test]
fn one_address_cannot_take_every_slot() {
    let t = Tracker::start(&["--max-connections-per-address", "3"]);
    let held: Vec<_> = (0..3)
        .map(|_| {
            let mut s = connect_from(&t, "127.0.0.5");
            s.write_all(b"GET /").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!served(connect_from(&t, "127.0.0.5")), "over the cap");
    assert!(served(connect_from(&t, "127.0.0.6")), "another address");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert!(served(connect_from(&t, "127.0.0.5")), "slots given back");
}

#[test]
fn allow_list_is_enforced_and_reloaded_on_sighup() {
    let dir = std::env::temp_dir().join(format!("battorrent-allow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("allow.txt");
    std::fs::write(&list, "# nothing allowed yet\n").unwrap();
    let t = Tracker::start(&["--allow", list.to_str().unwrap()]);
    let query = format!("info_hash={HASH}&peer_id={PEER}&port=1");
    let (status, body) = t.announce(&query);
    assert_eq!(status, 200);
    assert!(
        text(&body).contains("does not serve that info_hash"),
        "{}",
        text(&body)
    );

    std::fs::write(&list, format!("{HASH_HEX}\n")).unwrap();
    let pid = t.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let mut served = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let (_, body) = t.announce(&query);
        if text(&body).contains("8:interval") {
            served = true;
            break;
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(served, "the reloaded allow list was not applied");
}

#[test]
fn scrape_reports_counts_for_several_hashes() {
    let t = Tracker::start(&[]);
    t.announce(&format!(
        "info_hash={HASH}&peer_id={PEER}&port=1&left=0&event=completed"
    ));
    t.announce(&format!(
        "info_hash={HASH}&peer_id=-BT0001-zzzzzzzzzzzz&port=2&left=9"
    ));
    let zero = "%00".repeat(20);
    let (status, body) = t.get(&format!("/scrape?info_hash={HASH}&info_hash={zero}"));
    assert_eq!(status, 200);
    let body = text(&body);
    assert!(
        body.contains("d8:completei0e10:downloadedi0e10:incompletei0ee"),
        "{body}"
    );
    assert!(
        body.contains("d8:completei1e10:downloadedi1e10:incompletei1ee"),
        "{body}"
    );
}

/// Announces with an `X-Forwarded-For` header; returns the body.
fn announce_forwarded(t: &Tracker, port: u16, forwarded: &str) -> Vec<u8> {
    let mut s = t.connect();
    write!(
        s,
        "GET /announce?info_hash={HASH}&peer_id={PEER}&port={port}&left=1 HTTP/1.1\r\n\
         X-Forwarded-For: {forwarded}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut BufReader::new(s)).1
}

#[test]
fn forwarded_addresses_are_used_only_when_trusted() {
    let plain = Tracker::start(&[]);
    announce_forwarded(&plain, 1, "10.1.2.3");
    let body = announce_forwarded(&plain, 2, "10.9.9.9");
    // Untrusted: the peer is the connection's address, 127.0.0.1:1.
    assert!(
        body.windows(6).any(|w| w == [127, 0, 0, 1, 0, 1]),
        "{}",
        text(&body)
    );

    let proxied = Tracker::start(&["--trust-proxy"]);
    announce_forwarded(&proxied, 1, "192.0.2.1, 10.1.2.3");
    let body = announce_forwarded(&proxied, 2, "10.9.9.9");
    // Trusted: the last (proxy-added) entry is the client.
    assert!(
        body.windows(6).any(|w| w == [10, 1, 2, 3, 0, 1]),
        "{}",
        text(&body)
    );
}

#[test]
fn ipv6_binds_serve_peers6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    let t = Tracker::start_on("[::1]:0", &[]);
    let announce = |port: u16| {
        let mut s = t.connect_to("::1");
        write!(s, "GET /announce?info_hash={HASH}&peer_id={PEER}&port={port} HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        read_response(&mut BufReader::new(s)).1
    };
    announce(1);
    let body = announce(2);
    let mut expected = b"6:peers618:".to_vec();
    expected.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    expected.extend_from_slice(&[0, 1]);
    assert!(
        body.windows(expected.len()).any(|w| w == expected),
        "{}",
        text(&body)
    );
}

mod client {
    //! Our tracker client against our tracker server.

    use super::{Tracker, HASH_HEX};
    use battorrent::metainfo::InfoHash;
    use battorrent::tracker::{AnnounceParams, ClientError, Event, TrackerClient};

    fn params(port: u16, left: u64) -> AnnounceParams {
        let mut peer_id = *b"-BT0100-000000000000";
        peer_id[18..].copy_from_slice(&port.to_be_bytes());
        AnnounceParams {
            info_hash: InfoHash::from_hex(HASH_HEX).unwrap(),
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event: Event::Started,
            numwant: None,
            key: 1,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn peers_find_each_other_through_our_tracker() {
        let t = Tracker::start(&[]);
        let url = format!("http://127.0.0.1:{}/announce", t.port);
        runtime().block_on(async {
            let mut seeder = TrackerClient::new(&[vec![url.clone()]]);
            let mut leecher = TrackerClient::new(&[vec![url.clone()]]);
            let (_, first) = seeder.announce(&params(7001, 0)).await.unwrap();
            assert!(first.peers.is_empty());
            assert_eq!(first.interval, 1800);
            let (_, second) = leecher.announce(&params(7002, 100)).await.unwrap();
            assert_eq!(second.peers, ["127.0.0.1:7001".parse().unwrap()]);
            assert_eq!((second.complete, second.incomplete), (Some(1), Some(1)));

            let mut done = params(7002, 0);
            done.event = Event::Completed;
            leecher.announce(&done).await.unwrap();
            let stats = leecher
                .scrape(&url.parse().unwrap(), &[done.info_hash])
                .await
                .unwrap();
            assert_eq!(stats.len(), 1);
            assert_eq!(
                (
                    stats[0].1.complete,
                    stats[0].1.incomplete,
                    stats[0].1.downloaded
                ),
                (2, 0, 1)
            );
        });
    }

    #[test]
    fn unreachable_trackers_fall_back_within_the_tier_and_working_ones_move_first() {
        let t = Tracker::start(&[]);
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!(
                "http://127.0.0.1:{}/announce",
                l.local_addr().unwrap().port()
            )
        };
        let good = format!("http://127.0.0.1:{}/announce", t.port);
        runtime().block_on(async {
            let mut client =
                TrackerClient::new(&[vec![dead.clone(), good.clone()], vec!["udp://x:1".into()]]);
            assert_eq!(client.tiers().len(), 1, "UDP tiers are skipped for now");
            let (used, _) = client.announce(&params(7003, 5)).await.unwrap();
            assert_eq!(used.as_str(), good);
            assert_eq!(client.tiers()[0][0].as_str(), good);

            let mut only_dead = TrackerClient::new(&[vec![dead.clone()]]);
            let err = only_dead.announce(&params(7004, 5)).await.unwrap_err();
            assert!(matches!(err, ClientError::Transport { .. }), "{err}");
        });
    }

    #[test]
    fn refusals_reach_the_caller_as_failure_reasons() {
        let dir = std::env::temp_dir().join(format!("battorrent-refuse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("allow.txt");
        std::fs::write(&list, "").unwrap();
        let t = Tracker::start(&["--allow", list.to_str().unwrap()]);
        let url = format!("http://127.0.0.1:{}/announce", t.port);
        let err = runtime().block_on(async {
            TrackerClient::new(&[vec![url]])
                .announce(&params(7005, 5))
                .await
                .unwrap_err()
        });
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            err.to_string()
                .ends_with("refused: this tracker does not serve that info_hash"),
            "{err}"
        );
    }
}
