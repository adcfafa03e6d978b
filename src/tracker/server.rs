//! The HTTP tracker server: HTTP/1.1 with keep-alive and pipelining on tokio + httparse.
//!
//! Limits: a request (line and headers) is at most [`ServerConfig::max_request_bytes`] and
//! 32 headers; request bodies are refused; a request still incomplete after one to two
//! [`ServerConfig::request_timeout`]s is cut off, and a connection idle for
//! [`ServerConfig::idle_timeout`] is closed (both on a coarse per-connection tick); at most [`ServerConfig::max_connections`] are open at
//! once (more are accepted and closed at once). The listener defers accepting a connection
//! until its first bytes arrive (TCP_DEFER_ACCEPT), so silent connections never take a slot
//! and each accepted one can usually be answered at once. Tracker state sits behind one mutex that is
//! held only for the in-memory update.

use super::query::{parse_announce, parse_scrape, QueryError};
use super::response::{write_failure, write_scrape};
use super::swarm::{AccessList, Tracker, TrackerConfig};
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Settings of the HTTP server around the tracker logic.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub tracker: TrackerConfig,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a proxy).
    pub trust_proxy: bool,
    pub max_connections: usize,
    pub max_request_bytes: usize,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for ServerConfig {
    /// 10,000 connections, 8 KiB requests, 10 s to send a request, 60 s idle keep-alive.
    fn default() -> Self {
        ServerConfig {
            tracker: TrackerConfig::default(),
            trust_proxy: false,
            max_connections: 10_000,
            max_request_bytes: 8 << 10,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Request counters for /stats and /metrics.
#[derive(Debug, Default)]
struct Counters {
    announces: AtomicU64,
    scrapes: AtomicU64,
    other: AtomicU64,
    bad_requests: AtomicU64,
    refused: AtomicU64,
    connections: AtomicU64,
    connections_dropped: AtomicU64,
}

/// State shared by all connections.
pub struct Shared {
    config: ServerConfig,
    tracker: Mutex<Tracker>,
    counters: Counters,
    started: Instant,
    /// Whole seconds since `started`, kept by a ticker so announces need not read the clock.
    clock: AtomicU32,
}

impl Shared {
    /// Tracker state and counters for a server with `config` and `access`.
    pub fn new(config: ServerConfig, access: AccessList) -> Arc<Shared> {
        Arc::new(Shared {
            tracker: Mutex::new(Tracker::new(config.tracker.clone(), access)),
            config,
            counters: Counters::default(),
            started: Instant::now(),
            clock: AtomicU32::new(0),
        })
    }

    /// Seconds since start: the tracker's clock.
    fn now(&self) -> u32 {
        self.clock.load(Ordering::Relaxed)
    }

    /// Brings the clock up to date.
    fn tick(&self) {
        let seconds = self.started.elapsed().as_secs() as u32;
        self.clock.store(seconds, Ordering::Relaxed);
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than stopping service would, so keep serving.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the access list (for SIGHUP reloads).
    pub fn set_access(&self, access: AccessList) {
        self.tracker().access = access;
    }

    /// Drops peers that stopped announcing; returns how many.
    pub fn expire(&self) -> usize {
        let now = self.now();
        self.tracker().expire(now)
    }
}

/// Listens on every address of `binds` and serves until `shutdown` completes.
/// Returns once the listeners are closed; open connections are dropped.
pub async fn serve(
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    for listener in &listeners {
        defer_accept(listener);
    }
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(shared.clone(), listener, permits.clone()));
    }
    let expiry = {
        let shared = shared.clone();
        let every = u64::from(shared.config.tracker.interval / 4).clamp(1, 60);
        tokio::spawn(async move {
            let mut second = tokio::time::interval(Duration::from_secs(1));
            for n in 0u64.. {
                second.tick().await;
                shared.tick();
                if n % every == every - 1 {
                    let dropped = shared.expire();
                    if dropped > 0 {
                        tracing::debug!("expired {dropped} peers");
                    }
                }
            }
        })
    };
    shutdown.await;
    expiry.abort();
    tasks.shutdown().await;
    Ok(())
}

/// Asks the kernel to hand over connections only once their first bytes have arrived
/// (TCP_DEFER_ACCEPT), saving a wake-up per connection. Best effort: ignored if refused.
fn defer_accept(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let seconds: libc::c_int = 5;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        tracing::debug!("TCP_DEFER_ACCEPT not set: {}", io::Error::last_os_error());
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, permits: Arc<Semaphore>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shared
                .counters
                .connections_dropped
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        // No TCP_NODELAY: every reply batch is one write, so Nagle never holds one back.
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(&shared, stream, peer).await {
                tracing::trace!("connection from {peer} ended: {e}");
            }
            drop(permit);
        });
    }
}

/// What to send back for one request.
struct Reply {
    status: u16,
    content_type: &'static str,
}

/// Serves one connection: reads requests (pipelined or not), answers each, closes on
/// error, timeout, `Connection: close`, or when the client closes.
///
/// Timeouts run on a coarse per-connection clock rather than a timer per read: it ticks
/// every `request_timeout` (or `idle_timeout` if shorter). A request still incomplete at two
/// ticks in a row with nothing answered in between is cut off (so after 1 to 2 request
/// timeouts), and a connection with nothing answered for `idle_timeout` is closed at the
/// tick after.
async fn connection(shared: &Shared, mut stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    let config = &shared.config;
    let mut buf = vec![0u8; config.max_request_bytes];
    let mut filled = 0;
    let mut out = Vec::with_capacity(1024);
    let mut body = Vec::with_capacity(512);
    let tick = (config.request_timeout.min(config.idle_timeout)).max(Duration::from_millis(10));
    let idle_ticks = config.idle_timeout.as_millis() / tick.as_millis().max(1);
    let timer = tokio::time::sleep(tick);
    tokio::pin!(timer);
    let (mut answered, mut quiet_ticks, mut stuck_ticks) = (false, 0u128, 0u32);
    loop {
        let mut start = 0;
        let mut close = false;
        while start < filled && !close {
            let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; 32];
            let mut req = httparse::Request::new(&mut []);
            let parsed = req.parse_with_uninit_headers(&buf[start..filled], &mut headers);
            body.clear();
            let reply = match parsed {
                Ok(httparse::Status::Partial) => break,
                Ok(httparse::Status::Complete(n)) => {
                    start += n;
                    close = wants_close(&req);
                    if has_body(&req) {
                        close = true;
                        failure(shared, &mut body, 400, "request bodies are not accepted")
                    } else {
                        route(shared, &req, client_ip(config, &req, peer), &mut body)
                    }
                }
                Err(e) => {
                    close = true;
                    failure(
                        shared,
                        &mut body,
                        400,
                        &format!("malformed HTTP request: {e}"),
                    )
                }
            };
            answered = true;
            write_response(&mut out, &reply, &body, close);
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            return Ok(()); // dropping the stream closes it after the queued reply
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            let mut body = Vec::new();
            let reply = failure(
                shared,
                &mut body,
                431,
                "request line and headers are too large",
            );
            write_response(&mut out, &reply, &body, true);
            return stream.write_all(&out).await;
        }
        tokio::select! {
            biased;
            read = stream.read(&mut buf[filled..]) => match read {
                Ok(0) => return Ok(()),
                Ok(n) => filled += n,
                Err(e) => return Err(e),
            },
            () = &mut timer => {
                if std::mem::take(&mut answered) {
                    (quiet_ticks, stuck_ticks) = (0, 0);
                } else {
                    quiet_ticks += 1;
                    stuck_ticks = if filled > 0 { stuck_ticks + 1 } else { 0 };
                }
                if stuck_ticks >= 2 || quiet_ticks > idle_ticks {
                    return Ok(()); // too slow, or idle too long
                }
                timer.as_mut().reset(tokio::time::Instant::now() + tick);
            }
        }
    }
}

fn header<'r>(req: &'r httparse::Request<'_, '_>, name: &str) -> Option<&'r [u8]> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes unless told to keep.
fn wants_close(req: &httparse::Request<'_, '_>) -> bool {
    let connection = header(req, "connection").map(|v| v.to_ascii_lowercase());
    match req.version {
        Some(1) => connection.is_some_and(|v| v.windows(5).any(|w| w == b"close")),
        _ => !connection.is_some_and(|v| v.windows(10).any(|w| w == b"keep-alive")),
    }
}

fn has_body(req: &httparse::Request<'_, '_>) -> bool {
    header(req, "transfer-encoding").is_some()
        || header(req, "content-length").is_some_and(|v| v.iter().any(|&b| b != b'0' && b != b' '))
}

/// The client's address: the connection's, or with `--trust-proxy` the last
/// `X-Forwarded-For` entry. IPv4-mapped IPv6 addresses count as IPv4.
fn client_ip(config: &ServerConfig, req: &httparse::Request<'_, '_>, peer: SocketAddr) -> IpAddr {
    let forwarded = config
        .trust_proxy
        .then(|| header(req, "x-forwarded-for"))
        .flatten()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    forwarded.unwrap_or(peer.ip()).to_canonical()
}

fn failure(shared: &Shared, body: &mut Vec<u8>, status: u16, reason: &str) -> Reply {
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

fn route(
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
            let result = shared.tracker().announce(&announce, ip, now, body);
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

fn write_response(out: &mut Vec<u8>, reply: &Reply, body: &[u8], close: bool) {
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

fn counter(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn stats_json(shared: &Shared) -> String {
    let totals = shared.tracker().totals();
    let c = &shared.counters;
    serde_json::json!({
        "uptime_seconds": shared.now(),
        "torrents": totals.torrents,
        "peers": totals.peers,
        "seeders": totals.seeders,
        "leechers": totals.peers - totals.seeders,
        "requests": {
            "announce": counter(&c.announces),
            "scrape": counter(&c.scrapes),
            "other": counter(&c.other),
        },
        "errors": {
            "bad_request": counter(&c.bad_requests),
            "refused": counter(&c.refused),
        },
        "connections": {
            "accepted": counter(&c.connections),
            "dropped_over_limit": counter(&c.connections_dropped),
        },
    })
    .to_string()
}

fn metrics_text(shared: &Shared) -> String {
    let totals = shared.tracker().totals();
    let c = &shared.counters;
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        s += &format!(
            "# HELP battorrent_tracker_{name} {help}\n# TYPE battorrent_tracker_{name} {kind}\n"
        );
        for (labels, value) in samples {
            s += &format!("battorrent_tracker_{name}{labels} {value}\n");
        }
    };
    metric(
        "torrents",
        "gauge",
        "Torrents with at least one peer.",
        &[("", totals.torrents as u64)],
    );
    metric(
        "peers",
        "gauge",
        "Peers by state.",
        &[
            ("{state=\"seeder\"}", totals.seeders as u64),
            (
                "{state=\"leecher\"}",
                (totals.peers - totals.seeders) as u64,
            ),
        ],
    );
    metric(
        "requests_total",
        "counter",
        "HTTP requests by kind.",
        &[
            ("{kind=\"announce\"}", counter(&c.announces)),
            ("{kind=\"scrape\"}", counter(&c.scrapes)),
            ("{kind=\"other\"}", counter(&c.other)),
        ],
    );
    metric(
        "errors_total",
        "counter",
        "Requests answered with a failure reason.",
        &[
            ("{kind=\"bad_request\"}", counter(&c.bad_requests)),
            ("{kind=\"refused\"}", counter(&c.refused)),
        ],
    );
    metric(
        "connections_total",
        "counter",
        "Connections accepted.",
        &[("", counter(&c.connections))],
    );
    s
}
