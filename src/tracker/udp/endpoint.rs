//! The session's UDP socket: one per session, on the peer port, shared by everything that
//! speaks UDP. Datagrams are told apart by their first bytes: a UDP tracker's reply starts
//! with its action (0 to 3) as a big-endian 32-bit number, so with three zero bytes; the
//! DHT's KRPC messages are bencoded dictionaries (`d`); uTP packets start with their type
//! and version (0x01, 0x11, ..., 0x41). Tracker replies are routed here by transaction id
//! (and must come from the tracker asked); DHT messages go to the DHT node when one is
//! attached ([`UdpEndpoint::attach_dht`]); uTP packets are dropped until uTP arrives.

use super::exchange::{Exchange, Failure, Step};
use super::packet::{AnnounceRequest, MAX_PACKET};
use crate::tracker::client::{AnnounceParams, AnnounceResponse, ClientError};
use crate::tracker::guard;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Connection ids kept at most (one per tracker address).
const MAX_CONNECTIONS: usize = 4096;

/// The kind of a datagram, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A UDP tracker's reply (BEP 15).
    Tracker,
    /// A DHT message (BEP 5: a bencoded dictionary).
    Dht,
    /// Anything else (uTP, BEP 29, starts with its type and version nibbles).
    Other,
}

/// Tells a datagram's protocol by its first bytes; see the module documentation.
pub fn kind(datagram: &[u8]) -> Kind {
    match datagram {
        [0, 0, 0, 0..=3, ..] if datagram.len() >= 8 => Kind::Tracker,
        [b'd', ..] => Kind::Dht,
        _ => Kind::Other,
    }
}

/// A reply waiter: the tracker asked and where its replies go.
struct Waiter {
    tracker: SocketAddr,
    replies: mpsc::Sender<Vec<u8>>,
}

/// The shared UDP socket; see the module documentation.
pub struct UdpEndpoint {
    socket: UdpSocket,
    waiting: Mutex<HashMap<u32, Waiter>>,
    /// Connection ids by tracker address, with when they stop being usable.
    connections: Mutex<HashMap<SocketAddr, (u64, Instant)>>,
    /// Transaction ids are drawn from this counter (started at random): never two alike
    /// in flight.
    transactions: Arc<AtomicU32>,
    /// Where DHT datagrams go (a bounded queue: past it, datagrams are dropped).
    dht: std::sync::OnceLock<mpsc::Sender<(SocketAddr, Vec<u8>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a waiter when its announce ends, however it ends.
struct Registered<'a> {
    endpoint: &'a UdpEndpoint,
    transaction: u32,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.endpoint.waiting).remove(&self.transaction);
    }
}

impl UdpEndpoint {
    /// Binds the socket (a port of 0 picks one).
    pub async fn bind(addr: SocketAddr) -> io::Result<Arc<UdpEndpoint>> {
        Ok(UdpEndpoint::with_socket(UdpSocket::bind(addr).await?))
    }

    /// Binds an IPv6 socket that takes IPv6 only (`IPV6_V6ONLY`): it can share its port
    /// with an IPv4 socket on the unspecified address.
    pub fn bind_v6_only(addr: SocketAddr) -> io::Result<Arc<UdpEndpoint>> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_only_v6(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
        Ok(UdpEndpoint::with_socket(socket))
    }

    fn with_socket(socket: UdpSocket) -> Arc<UdpEndpoint> {
        Arc::new(UdpEndpoint {
            socket,
            waiting: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            transactions: Arc::new(AtomicU32::new(fastrand::u32(..))),
            dht: std::sync::OnceLock::new(),
        })
    }

    /// Sends DHT datagrams to `to` from now on (once per endpoint).
    pub fn attach_dht(&self, to: mpsc::Sender<(SocketAddr, Vec<u8>)>) {
        let _ = self.dht.set(to);
    }

    /// Sends one datagram (errors, such as an unreachable network, are the caller's to
    /// ignore: UDP promises nothing).
    pub async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(bytes, to).await
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Reads datagrams and hands them on until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut buf = vec![0u8; MAX_PACKET.max(2048)];
        loop {
            let (n, from) = tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok(got) => got,
                    // ICMP errors from earlier sends surface here: nothing to do.
                    Err(_) => continue,
                },
                _ = stop.cancelled() => return,
            };
            let datagram = &buf[..n];
            match kind(datagram) {
                Kind::Tracker => {}
                Kind::Dht => {
                    if let Some(dht) = self.dht.get() {
                        let _ = dht.try_send((from, datagram.to_vec()));
                    }
                    continue;
                }
                Kind::Other => continue,
            }
            let transaction = u32::from_be_bytes(datagram[4..8].try_into().expect("len >= 8"));
            let waiting = lock(&self.waiting);
            if let Some(w) = waiting.get(&transaction) {
                if w.tracker.ip().to_canonical() == from.ip().to_canonical()
                    && w.tracker.port() == from.port()
                {
                    let _ = w.replies.try_send(datagram.to_vec());
                }
            }
        }
    }

    /// Announces to the UDP tracker at `url` (`udp://host:port/path`): the path and query
    /// go as BEP 41 URL data.
    pub async fn announce(
        &self,
        url: &Url,
        params: &AnnounceParams,
    ) -> Result<AnnounceResponse, ClientError> {
        let tracker = self.resolve(url).await?;
        let mut url_data = url.path().as_bytes().to_vec();
        if let Some(q) = url.query() {
            url_data.push(b'?');
            url_data.extend_from_slice(q.as_bytes());
        }
        let request = AnnounceRequest {
            info_hash: params.info_hash,
            peer_id: params.peer_id,
            downloaded: params.downloaded,
            left: params.left,
            uploaded: params.uploaded,
            event: params.event,
            key: params.key,
            numwant: params.numwant,
            port: params.port,
            url_data: if url_data == b"/" { &[] } else { &url_data },
        };
        let now = Instant::now();
        let cached = lock(&self.connections)
            .get(&tracker)
            .filter(|(_, until)| *until > now)
            .map(|(c, _)| *c);
        let counter = self.transactions.clone();
        let (mut ex, first) = Exchange::start(now, tracker, request, cached, move || {
            counter.fetch_add(1, Ordering::Relaxed)
        });
        let (tx, mut rx) = mpsc::channel(4);
        let mut registered = self.register(ex.transaction(), tracker, tx.clone());
        let transport = |error: io::Error| ClientError::Transport {
            url: url.to_string(),
            error: error.to_string(),
        };
        self.socket
            .send_to(&first, tracker)
            .await
            .map_err(transport)?;
        loop {
            let step = tokio::select! {
                Some(reply) = rx.recv() => ex.handle_reply(Instant::now(), &reply),
                _ = tokio::time::sleep_until(ex.deadline().into()) => {
                    ex.handle_timeout(Instant::now())
                }
            };
            match step {
                Step::Wait => {}
                Step::Send(datagram) => {
                    self.socket
                        .send_to(&datagram, tracker)
                        .await
                        .map_err(transport)?;
                }
                Step::Connected {
                    connection,
                    until,
                    then,
                } => {
                    self.remember(tracker, connection, until);
                    drop(registered);
                    registered = self.register(ex.transaction(), tracker, tx.clone());
                    self.socket
                        .send_to(&then, tracker)
                        .await
                        .map_err(transport)?;
                }
                Step::Done(result) => {
                    drop(registered);
                    return result.map_err(|failure| match failure {
                        Failure::Refused(reason) => ClientError::Failure {
                            url: url.to_string(),
                            reason,
                        },
                        Failure::TimedOut => ClientError::Transport {
                            url: url.to_string(),
                            error: "no answer".to_string(),
                        },
                        Failure::Malformed(reason) => ClientError::Malformed {
                            url: url.to_string(),
                            reason,
                        },
                    });
                }
            }
        }
    }

    /// Keeps a tracker's connection id for its next announces.
    fn remember(&self, tracker: SocketAddr, connection: u64, until: Instant) {
        let mut connections = lock(&self.connections);
        if connections.len() >= MAX_CONNECTIONS {
            let now = Instant::now();
            connections.retain(|_, (_, u)| *u > now);
        }
        if connections.len() < MAX_CONNECTIONS {
            connections.insert(tracker, (connection, until));
        }
    }

    fn register(
        &self,
        transaction: u32,
        tracker: SocketAddr,
        replies: mpsc::Sender<Vec<u8>>,
    ) -> Registered<'_> {
        lock(&self.waiting).insert(transaction, Waiter { tracker, replies });
        Registered {
            endpoint: self,
            transaction,
        }
    }

    /// The tracker's address, of the socket's family; a tracker on this machine only at
    /// an `/announce` path (as for HTTP, see [`guard`]).
    async fn resolve(&self, url: &Url) -> Result<SocketAddr, ClientError> {
        let refused = |reason: String| ClientError::Refused {
            url: url.to_string(),
            reason,
        };
        let host = url
            .host_str()
            .ok_or_else(|| refused("no host".to_string()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().ok_or_else(|| refused("no port".to_string()))?;
        let v6 = self.local_addr().is_ok_and(|a| a.is_ipv6());
        let addrs = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| ClientError::Transport {
                url: url.to_string(),
                error: e.to_string(),
            })?;
        let addr = addrs
            .into_iter()
            .find(|a| v6 || a.is_ipv4())
            .ok_or_else(|| ClientError::Transport {
                url: url.to_string(),
                error: "no address of the family we listen on".to_string(),
            })?;
        if guard::is_local(addr.ip()) && !url.path().starts_with("/announce") {
            return Err(refused(
                "a tracker on this machine is asked only at /announce".to_string(),
            ));
        }
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_told_apart_by_their_first_bytes() {
        assert_eq!(kind(&[0, 0, 0, 1, 0, 0, 0, 9]), Kind::Tracker);
        assert_eq!(kind(&[0, 0, 0, 3, 0, 0, 0, 9, b'x']), Kind::Tracker);
        assert_eq!(kind(&[0, 0, 0, 4, 0, 0, 0, 9]), Kind::Other);
        assert_eq!(kind(&[0, 0, 0, 1]), Kind::Other, "too short for a reply");
        assert_eq!(kind(b"d1:ad2:id20:"), Kind::Dht);
        assert_eq!(kind(&[0x41, 0x01]), Kind::Other);
        assert_eq!(kind(&[]), Kind::Other);
    }
}
