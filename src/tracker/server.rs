//! The HTTP tracker server: HTTP/1.1 with keep-alive and pipelining on tokio + httparse.
//!
//! Limits: a request (line and headers) is at most [`ServerConfig::max_request_bytes`] and
//! 32 headers; request bodies and ambiguous framing are refused; timeouts (an incomplete
//! request, a reply the client does not take, an idle connection) run on a coarse
//! per-connection tick (see `connection.rs`); at most
//! [`ServerConfig::max_connections`] are open at once (more are accepted and closed at
//! once). The listener defers accepting a connection until its first bytes arrive
//! (TCP_DEFER_ACCEPT, a few seconds at most), and the accept loop answers what has already
//! arrived before a connection gets a task of its own. Tracker state sits behind one mutex
//! that is held only for the in-memory update. UDP sockets (BEP 15, `udp/listener.rs`) are
//! served beside it on the same [`Shared`] state: one swarm store behind both.

use super::admission::{source, Admission, Ticket};
use super::connection::{answer_buffered, connection, is_transient, Conn};
use super::http::Reply;
use super::query::{parse_announce, parse_scrape, QueryError};
use super::response::{write_failure, write_scrape};
use super::socket::{accept_nonblocking, cap_socket_buffers, defer_accept, send_more};
use super::stats::{metrics_text, stats_json, Counters};
use super::swarm::{AccessList, Tracker, TrackerConfig};
use super::udp::{listener::udp_loop, UdpFront};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// Settings of the HTTP server around the tracker logic.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub tracker: TrackerConfig,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a proxy).
    pub trust_proxy: bool,
    pub max_connections: usize,
    /// Most connections from one address (one /64 for IPv6); `None` for no cap. Ignored
    /// with `trust_proxy` (every connection then comes from the proxy).
    pub max_connections_per_address: Option<usize>,
    pub max_request_bytes: usize,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    /// Unsent reply bytes of all connections together past which a connection whose
    /// writes stall is closed at its next tick instead of the second.
    pub max_unsent_bytes: usize,
}

/// The default cap on connections from one address: a sixteenth of all slots, and at least
/// 64 (enough for a load generator on loopback with the benchmark's settings).
pub fn default_per_address(max_connections: usize) -> usize {
    (max_connections / 16).max(64)
}

impl Default for ServerConfig {
    /// 10,000 connections, 8 KiB requests, 10 s to send a request, 60 s idle keep-alive.
    fn default() -> Self {
        ServerConfig {
            tracker: TrackerConfig::default(),
            trust_proxy: false,
            max_connections: 10_000,
            max_connections_per_address: Some(default_per_address(10_000)),
            max_request_bytes: 8 << 10,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_unsent_bytes: 64 << 20,
        }
    }
}

/// State shared by all connections.
pub struct Shared {
    pub(super) config: ServerConfig,
    tracker: Mutex<Tracker>,
    pub(super) counters: Counters,
    /// The UDP front end: connection-id key and counters.
    pub(super) udp: UdpFront,
    /// Connection slots (see [`super::admission`]).
    slots: Mutex<Admission<CancellationToken>>,
    /// Reply bytes written by the tracker but not yet taken by the kernel, all connections
    /// together (see [`ServerConfig::max_unsent_bytes`]).
    pub(super) unsent: AtomicUsize,
    started: Instant,
    /// Whole seconds since `started`, kept by a ticker so announces need not read the clock.
    clock: AtomicU32,
}

impl Shared {
    /// Tracker state and counters for a server with `config` and `access`.
    pub fn new(config: ServerConfig, access: AccessList) -> Arc<Shared> {
        let slots = Admission::new(
            config.max_connections,
            config
                .max_connections_per_address
                .filter(|_| !config.trust_proxy),
        );
        Arc::new(Shared {
            tracker: Mutex::new(Tracker::new(config.tracker.clone(), access)),
            config,
            counters: Counters::default(),
            udp: UdpFront::default(),
            slots: Mutex::new(slots),
            unsent: AtomicUsize::new(0),
            started: Instant::now(),
            clock: AtomicU32::new(0),
        })
    }

    /// Seconds since start: the tracker's clock.
    pub(super) fn now(&self) -> u32 {
        self.clock.load(Ordering::Relaxed)
    }

    /// Brings the clock up to date.
    fn tick(&self) {
        let seconds = self.started.elapsed().as_secs() as u32;
        self.clock.store(seconds, Ordering::Relaxed);
    }

    pub(super) fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than stopping service would, so keep serving.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers one UDP datagram (see [`UdpFront::handle`]); returns whether `out` holds a
    /// reply to send.
    pub(super) fn answer_udp(&self, datagram: &[u8], from: SocketAddr, out: &mut Vec<u8>) -> bool {
        self.udp
            .handle(&self.tracker, datagram, from, self.now(), out)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Admission<CancellationToken>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections holding a slot.
    pub(super) fn open_connections(&self) -> usize {
        self.slots().open()
    }

    /// Scrape figures for one torrent, as `/scrape` would give them.
    pub fn scrape(&self, hash: &crate::core::InfoHash) -> super::ScrapeEntry {
        self.tracker().scrape(hash)
    }

    /// Replaces the access list (for SIGHUP reloads).
    pub fn set_access(&self, access: AccessList) {
        self.tracker().set_access(access);
    }

    /// One second's share of expiry: visits a thirtieth of the swarms (at least
    /// [`EXPIRY_STEP`]), so every swarm is visited about every 30 s, holding the lock for
    /// at most [`EXPIRY_STEP`] swarms at a time. Returns how many peers were dropped.
    async fn expire_some(&self) -> usize {
        let now = self.now();
        let share = (self.tracker().totals().torrents / 30).max(EXPIRY_STEP);
        let (mut visited, mut dropped) = (0, 0);
        while visited < share {
            let done = self.tracker().expire_step(now, EXPIRY_STEP);
            visited += done.visited;
            dropped += done.peers;
            if done.round_done {
                break;
            }
            tokio::task::yield_now().await;
        }
        dropped
    }
}

/// Most swarms one expiry step visits under the tracker's lock: about 1.5 ms, under 6 ms
/// at worst, when every one of them expires (`examples/tracker_memory.rs -- flood`).
const EXPIRY_STEP: usize = 1024;

/// A connection's hold on its slot, given back when the connection's task ends.
pub(super) struct Slot {
    pub(super) shared: Arc<Shared>,
    ticket: Option<Ticket>,
}

impl Slot {
    /// The connection has sent a complete request: it is no longer evicted for silence.
    pub(super) fn answered(&self) {
        if let Some(ticket) = &self.ticket {
            self.shared.slots().answered(ticket);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.slots().leave(ticket);
        }
    }
}

/// Serves HTTP on every listener until `shutdown` completes.
/// Returns once the listeners are closed; open connections are dropped.
pub async fn serve(
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    serve_with_udp(shared, listeners, Vec::new(), shutdown).await
}

/// Serves HTTP on every listener and BEP 15 on every UDP socket, one swarm store behind
/// both, until `shutdown` completes. Returns once the sockets are closed; open connections
/// are dropped.
pub async fn serve_with_udp(
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
    udp: Vec<UdpSocket>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    for listener in &listeners {
        defer_accept(listener);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(shared.clone(), listener));
    }
    for socket in udp {
        tasks.spawn(udp_loop(shared.clone(), socket));
    }
    let expiry = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut second = tokio::time::interval(Duration::from_secs(1));
            loop {
                second.tick().await;
                shared.tick();
                let dropped = shared.expire_some().await;
                if dropped > 0 {
                    tracing::debug!("expired {dropped} peers");
                }
            }
        })
    };
    shutdown.await;
    expiry.abort();
    tasks.shutdown().await;
    Ok(())
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let watched = listener.into_std().and_then(|std_listener| {
        // SAFETY: a std TcpListener owns its descriptor, keeps it open while the AsyncFd
        // owns the listener, and always reports the same one.
        unsafe { AsyncFd::register_with_interest(std_listener, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    });
    let listener = match watched {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot watch the listening socket: {e}");
            return;
        }
    };
    let mut scratch = Conn::new(shared.config.max_request_bytes);
    loop {
        let mut ready = match listener.readable().await {
            Ok(guard) => guard,
            Err(e) => {
                tracing::error!("listening socket failed: {e}");
                return;
            }
        };
        // Drain the backlog, then wait for readiness again; after a burst of connections
        // let the other tasks run (readiness is kept, so the loop comes straight back).
        for _ in 0..ACCEPT_BURST {
            let (stream, peer) = match accept_nonblocking(listener.get_ref()) {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.clear_ready();
                    break;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    break;
                }
            };
            let admitted = shared.slots().admit(source(peer.ip()));
            let ticket = match admitted {
                Ok((ticket, victim)) => {
                    if let Some(victim) = victim {
                        victim.cancel();
                        shared
                            .counters
                            .connections_evicted
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    ticket
                }
                Err(refused) => {
                    tracing::trace!("connection from {peer} refused: {refused}");
                    shared
                        .counters
                        .connections_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    continue; // dropping the stream closes it
                }
            };
            shared.counters.connections.fetch_add(1, Ordering::Relaxed);
            // The fast path: with TCP_DEFER_ACCEPT the first request is usually here
            // already, and a `Connection: close` client is answered and closed without the
            // socket ever joining epoll or getting a task.
            let (close, answered) = match first_requests(&shared, &mut scratch, &stream, peer) {
                Ok(Some(next)) => next,
                Ok(None) => {
                    shared.slots().leave(ticket);
                    continue;
                }
                Err(e) => {
                    tracing::trace!("connection from {peer} ended: {e}");
                    shared.slots().leave(ticket);
                    scratch.clear();
                    continue;
                }
            };
            // A connection with no complete request yet may be evicted for a newcomer.
            let evict = (!answered).then(|| {
                let token = CancellationToken::new();
                shared.slots().waiting(&ticket, token.clone());
                token
            });
            let slot = Slot {
                shared: shared.clone(),
                ticket: Some(ticket),
            };
            let conn = scratch.hand_over(shared.config.max_request_bytes);
            // Replies to a pipelined batch larger than the read buffer leave in several
            // writes; with Nagle each one after the first would wait for the client's
            // delayed ACK (about 40 ms). The fast path above needs no such call: its one
            // write has nothing unacknowledged before it.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY not set: {e}");
            }
            cap_socket_buffers(&stream);
            let stream = match TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot register a connection: {e}");
                    continue;
                }
            };
            tokio::spawn(async move {
                if let Err(e) = connection(&slot, stream, peer, conn, close, evict).await {
                    tracing::trace!("connection from {peer} ended: {e}");
                }
            });
        }
        tokio::task::yield_now().await;
    }
}

/// Connections the accept loop takes (and answers, on the fast path) before it yields.
const ACCEPT_BURST: usize = 64;

/// Reads and answers what a new connection has sent so far, without waiting. Returns
/// `None` when the connection is finished (answered and closed, or closed by the client),
/// else `Some((close, answered))`: it goes on in its own task, which first sends what is
/// left in `scratch.out` and then closes if `close`; `answered` says whether a complete
/// request has arrived.
fn first_requests(
    shared: &Shared,
    scratch: &mut Conn,
    stream: &std::net::TcpStream,
    peer: SocketAddr,
) -> io::Result<Option<(bool, bool)>> {
    use std::io::{Read, Write};
    let mut stream = stream;
    let read = match stream.read(&mut scratch.buf) {
        Ok(0) => return Ok(None),
        Ok(n) => n,
        Err(e) if is_transient(&e) => return Ok(Some((false, false))),
        Err(e) => return Err(e),
    };
    scratch.filled = read;
    let done = answer_buffered(shared, scratch, peer);
    let close = done.close;
    // A clean close: everything received was answered (no error, nothing left over), and
    // the read did not fill the buffer, so nothing more was waiting in the kernel.
    let clean = close && scratch.filled == 0 && read < scratch.buf.len();
    if !scratch.out.is_empty() {
        // Before a clean close, MSG_MORE holds the reply back until close() adds the FIN,
        // so both leave in one segment: one packet fewer for each side to handle.
        let sent = if clean {
            send_more(stream, &scratch.out)
        } else {
            stream.write(&scratch.out)
        };
        match sent {
            Ok(n) => {
                scratch.out.drain(..n);
            }
            Err(e) if is_transient(&e) => {} // the connection's task sends the rest
            Err(e) => return Err(e),
        }
    }
    if clean && scratch.out.is_empty() {
        scratch.clear();
        return Ok(None); // dropping the stream closes it after the reply
    }
    Ok(Some((close, done.any)))
}

pub(super) fn failure(shared: &Shared, body: &mut Vec<u8>, status: u16, reason: &str) -> Reply {
    shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
    write_failure(body, reason);
    Reply {
        status,
        content_type: "text/plain",
    }
}

fn ok(content_type: &'static str) -> Reply {
    Reply {
        status: 200,
        content_type,
    }
}

pub(super) fn route(
    shared: &Shared,
    req: &httparse::Request<'_, '_>,
    ip: IpAddr,
    body: &mut Vec<u8>,
) -> Reply {
    let target = req.path.unwrap_or("/").as_bytes();
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &target[..0]),
    };
    if req.method != Some("GET") {
        return failure(shared, body, 405, "only GET is supported");
    }
    let bad = |body: &mut Vec<u8>, e: QueryError| failure(shared, body, 400, &e.to_string());
    match path {
        b"/announce" => {
            shared.counters.announces.fetch_add(1, Ordering::Relaxed);
            let announce = match parse_announce(query) {
                Ok(a) => a,
                Err(e) => return bad(body, e),
            };
            let now = shared.now();
            let result = shared
                .tracker()
                .announce(&announce, ip, now)
                .map(|a| a.write(body));
            if let Err(refusal) = result {
                // A well-formed request the tracker declines: 200, as clients expect.
                shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                body.clear();
                write_failure(body, &refusal.to_string());
            }
            ok("text/plain")
        }
        b"/scrape" => {
            shared.counters.scrapes.fetch_add(1, Ordering::Relaxed);
            let mut hashes = match parse_scrape(query, shared.config.tracker.max_scrape_hashes) {
                Ok(h) => h,
                Err(e) => return bad(body, e),
            };
            hashes.sort_unstable();
            hashes.dedup();
            let entries: Vec<_> = {
                let tracker = shared.tracker();
                hashes.iter().map(|h| (*h, tracker.scrape(h))).collect()
            };
            write_scrape(body, &entries);
            ok("text/plain")
        }
        b"/stats" => {
            shared.counters.other.fetch_add(1, Ordering::Relaxed);
            body.extend_from_slice(stats_json(shared).as_bytes());
            ok("application/json")
        }
        b"/metrics" => {
            shared.counters.other.fetch_add(1, Ordering::Relaxed);
            body.extend_from_slice(metrics_text(shared).as_bytes());
            ok("text/plain; version=0.0.4")
        }
        _ => failure(shared, body, 404, "unknown path: use /announce or /scrape"),
    }
}
