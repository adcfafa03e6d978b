//! URL building and response parsing, without a network; request forgery rules against
//! local servers.

use super::*;

fn params() -> AnnounceParams {
    AnnounceParams {
        info_hash: InfoHash([
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
            0xef, 0x20, 0x2b, 0x7e, 0x2e, 0x00,
        ]),
        peer_id: *b"-BT0100-abcdefghijkl",
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Event::Started,
        numwant: Some(80),
        key: 0xdead,
    }
}

#[test]
fn announce_url_percent_encodes_binary_and_keeps_passkeys() {
    let url = announce_url(&Url::parse("http://t.example/announce").unwrap(), &params());
    assert_eq!(
        url,
        "http://t.example/announce?info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%20%2B~.%00\
         &peer_id=-BT0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1\
         &key=0000DEAD&event=started&numwant=80"
    );
    // Our own tracker's parser reads back exactly what we sent.
    let query = url.split_once('?').unwrap().1;
    let parsed = crate::tracker::parse_announce(query.as_bytes()).unwrap();
    assert_eq!(parsed.info_hash, params().info_hash);
    let keyed = announce_url(
        &Url::parse("https://t.example/a/announce?pk=s3cret").unwrap(),
        &params(),
    );
    assert!(keyed.starts_with("https://t.example/a/announce?pk=s3cret&info_hash="));
}

#[test]
fn scrape_urls_follow_the_convention() {
    let s = |u: &str| scrape_url(&Url::parse(u).unwrap()).map(|u| u.to_string());
    assert_eq!(s("http://t/announce").as_deref(), Some("http://t/scrape"));
    assert_eq!(
        s("http://t/x/announce.php?pk=1").as_deref(),
        Some("http://t/x/scrape.php?pk=1")
    );
    assert_eq!(s("http://t/a"), None);
    assert_eq!(s("http://t/announce/x"), None);
}

#[test]
fn parses_compact_dictionary_and_ipv6_peers() {
    let body = b"d8:completei2e10:incompletei1e8:intervali900e12:min intervali60e5:peers12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x006:peers618:\xfd\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe215:warning message4:slowe";
    let r = parse_announce_response(body).unwrap().unwrap();
    assert_eq!(r.interval, 900);
    assert_eq!(r.min_interval, Some(60));
    assert_eq!((r.complete, r.incomplete), (Some(2), Some(1)));
    let peers: Vec<String> = r.peers.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        peers,
        ["10.0.0.1:6881", "[fd00::1]:6882"],
        "port-0 peer dropped"
    );
    assert_eq!(r.warning.as_deref(), Some("slow"));

    let dict = b"d8:intervali60e5:peersld2:ip8:10.0.0.77:peer id20:xxxxxxxxxxxxxxxxxxxx4:porti7eed2:ip3:bad4:porti1eeee";
    let r = parse_announce_response(dict).unwrap().unwrap();
    assert_eq!(r.peers, ["10.0.0.7:7".parse().unwrap()]);
}

#[test]
fn failure_reasons_and_malformed_bodies() {
    assert_eq!(
        parse_announce_response(b"d14:failure reason8:not heree").unwrap(),
        Err("not here".to_owned())
    );
    for (body, error) in [
        (&b"<html>nope</html>"[..], "invalid bencode at byte 0"),
        (b"le", "expected a dictionary"),
        (b"d5:peers0:e", "missing or invalid 'interval'"),
        (b"d8:intervali1e5:peers5:abcdee", "not a multiple of 6"),
        (b"d8:intervali1e5:peersi1ee", "'peers' is a integer"),
        (b"d8:intervali1e6:peers65:abcdee", "not a multiple of 18"),
    ] {
        let e = parse_announce_response(body).unwrap_err();
        assert!(e.contains(error), "{e}");
    }
}

/// An HTTP server on 127.0.0.1 that answers each request with `answer(path)` and closes;
/// returns its port and the paths asked.
fn server(
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split(' ').nth(1).unwrap_or("").to_owned();
            while reader.read_line(&mut line).unwrap() > 2 && !line.ends_with("\r\n\r\n") {}
            log.lock().unwrap().push(path.clone());
            let _ = stream.write_all(answer(&path).as_bytes());
        }
    });
    (port, seen)
}

/// A listener nobody should connect to; `untouched` says whether anybody did.
struct Bystander(std::net::TcpListener);

impl Bystander {
    fn new() -> Bystander {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Bystander(l)
    }
    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }
    fn untouched(&self) -> bool {
        matches!(self.0.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

fn redirect_to(location: &str) -> String {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

const OK_BODY: &str = "d8:intervali60e5:peers0:e";

#[tokio::test]
async fn redirects_to_another_host_or_port_are_not_followed() {
    let bystander = Bystander::new();
    for location in [
        format!("http://127.0.0.1:{}/announce", bystander.port()),
        format!("http://localhost:{}/announce", bystander.port()),
    ] {
        let (port, seen) = server(move |_| redirect_to(&location));
        let url = format!("http://127.0.0.1:{port}/announce");
        let err = TrackerClient::new(&[vec![url]])
            .announce(&params())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Refused { .. })
                && err.to_string().contains("another host or port"),
            "{err}"
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
    assert!(bystander.untouched(), "a redirect was followed");
}

#[tokio::test]
async fn redirects_within_the_tracker_are_followed_a_few_times() {
    let (port, seen) = server(move |path| {
        if path.starts_with("/announce-old") {
            redirect_to("/announce")
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{OK_BODY}",
                OK_BODY.len()
            )
        }
    });
    let url = format!("http://127.0.0.1:{port}/announce-old");
    let (_, response) = TrackerClient::new(&[vec![url]])
        .announce(&params())
        .await
        .unwrap();
    assert_eq!(response.interval, 60);
    assert_eq!(*seen.lock().unwrap(), ["/announce-old?info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%20%2B~.%00&peer_id=-BT0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1&key=0000DEAD&event=started&numwant=80", "/announce"]);

    let (port, seen) = server(|_| redirect_to("/announce"));
    let url = format!("http://127.0.0.1:{port}/announce");
    let err = TrackerClient::new(&[vec![url]])
        .announce(&params())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("not asked: more than 3 redirects"),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_local_tracker_url_off_the_announce_path_is_not_even_connected() {
    let bystander = Bystander::new();
    let url = format!("http://127.0.0.1:{}/admin", bystander.port());
    let err = TrackerClient::new(&[vec![url]])
        .announce(&params())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "tracker http://127.0.0.1:{}/admin not asked: 127.0.0.1 is on this machine, and a \
             tracker there is only asked at a path starting with /announce (protection \
             against request forgery)",
            bystander.port()
        )
    );
    assert!(
        bystander.untouched(),
        "the refused tracker was connected to"
    );
}
