//! HTTP/1.1 message rules of the tracker server, without sockets: keep-alive, framing
//! (no bodies, nothing ambiguous), the client's address, and the reply head.

use super::server::ServerConfig;
use std::net::{IpAddr, SocketAddr};

/// What to send back for one request.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
}

pub(super) fn header<'r>(req: &'r httparse::Request<'_, '_>, name: &str) -> Option<&'r [u8]> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes unless told to keep.
pub(super) fn wants_close(req: &httparse::Request<'_, '_>) -> bool {
    let says = |token: &[u8]| {
        header(req, "connection").is_some_and(|v| {
            v.windows(token.len())
                .any(|w| w.eq_ignore_ascii_case(token))
        })
    };
    match req.version {
        Some(1) => says(b"close"),
        _ => !says(b"keep-alive"),
    }
}

/// Why a request's framing was refused: a body, or headers that disagree about where the
/// request ends (read another way by a proxy in front, that is request smuggling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Framing {
    #[error("request bodies are not accepted")]
    Body,
    #[error("conflicting message framing: more than one Content-Length, or Content-Length with Transfer-Encoding")]
    Conflicting,
    #[error("malformed Content-Length")]
    BadLength,
}

/// Accepts a request without a body: no `Transfer-Encoding`, and at most one
/// `Content-Length`, which must be zero.
pub(super) fn framing(req: &httparse::Request<'_, '_>) -> Result<(), Framing> {
    let mut lengths = 0;
    let mut chunked = false;
    let mut nonzero = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            let digits = h.value.trim_ascii();
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(Framing::BadLength);
            }
            nonzero |= digits.iter().any(|&d| d != b'0');
        }
    }
    match (lengths, chunked) {
        (2.., _) | (1, true) => Err(Framing::Conflicting),
        (_, true) => Err(Framing::Body),
        _ if nonzero => Err(Framing::Body),
        _ => Ok(()),
    }
}

/// The client's address: the connection's, or with `--trust-proxy` the last
/// `X-Forwarded-For` entry. IPv4-mapped IPv6 addresses count as IPv4.
pub(super) fn client_ip(
    config: &ServerConfig,
    req: &httparse::Request<'_, '_>,
    peer: SocketAddr,
) -> IpAddr {
    let forwarded = config
        .trust_proxy
        .then(|| header(req, "x-forwarded-for"))
        .flatten()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    forwarded.unwrap_or(peer.ip()).to_canonical()
}

pub(super) fn write_response(out: &mut Vec<u8>, reply: &Reply, body: &[u8], close: bool) {
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(number.format(reply.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(reply.content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(number.format(body.len()).as_bytes());
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closes(request: &[u8]) -> bool {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(request).unwrap().is_complete());
        wants_close(&req)
    }

    fn framed(request: &[u8]) -> Result<(), Framing> {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(request).unwrap().is_complete());
        framing(&req)
    }

    #[test]
    fn conflicting_or_bodied_framing_is_refused() {
        assert_eq!(framed(b"GET / HTTP/1.1\r\n\r\n"), Ok(()));
        assert_eq!(
            framed(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Ok(())
        );
        assert_eq!(
            framed(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Err(Framing::Body)
        );
        assert_eq!(
            framed(b"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\n"),
            Err(Framing::Conflicting)
        );
        assert_eq!(
            framed(b"GET / HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n"),
            Err(Framing::Conflicting)
        );
        assert_eq!(
            framed(b"GET / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Framing::Conflicting)
        );
        assert_eq!(
            framed(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Framing::Body)
        );
        assert_eq!(
            framed(b"GET / HTTP/1.1\r\nContent-Length: 0, 7\r\n\r\n"),
            Err(Framing::BadLength)
        );
        assert_eq!(
            framed(b"GET / HTTP/1.1\r\nContent-Length: -0\r\n\r\n"),
            Err(Framing::BadLength)
        );
    }

    #[test]
    fn connection_header_and_version_decide_keep_alive() {
        assert!(!closes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(closes(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(closes(
            b"GET / HTTP/1.1\r\nconnection: upgrade, CLOSE\r\n\r\n"
        ));
        assert!(closes(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(!closes(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(closes(b"GET / HTTP/1.0\r\nConnection: clo\r\n\r\n"));
    }
}
