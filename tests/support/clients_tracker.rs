//! Our tracker in a [`Run`], on host [`TRACKER`] at port [`TRACKER_PORT`].

use super::{Run, TRACKER, TRACKER_PORT};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

impl Run<'_> {
    pub fn start_tracker(&mut self) {
        let bind = format!("{}:{TRACKER_PORT}", self.net.addr(TRACKER));
        let mut cmd = self.ours(TRACKER);
        cmd.args(["tracker", "--bind", &bind, "--interval", "5"]);
        self.spawn("tracker", cmd, false, false);
        self.wait_listening("the tracker", TRACKER, TRACKER_PORT);
    }

    /// How many seeders the tracker counts for the torrent (None if it cannot be asked).
    pub fn scrape_complete(&self, info_hash: &[u8; 20]) -> Option<u64> {
        let addr = SocketAddr::from((self.net.addr(TRACKER), TRACKER_PORT));
        let query: String = info_hash.iter().map(|b| format!("%{b:02X}")).collect();
        let body = self
            .net
            .run_in(TRACKER, || {
                http_get(addr, &format!("/scrape?info_hash={query}"))
            })
            .unwrap_or_else(|e| self.fail(&e))?;
        let key = b"8:completei";
        let at = body.windows(key.len()).position(|w| w == key)? + key.len();
        let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        std::str::from_utf8(&body[at..at + digits])
            .ok()?
            .parse()
            .ok()
    }
}

/// The body of `GET target` from `addr` if the answer is 200 OK.
fn http_get(addr: SocketAddr, target: &str) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    response
        .starts_with(b"HTTP/1.1 200 ")
        .then(|| response[end + 4..].to_vec())
}
