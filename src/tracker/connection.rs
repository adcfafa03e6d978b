//! One client connection of the tracker server: its buffers, answering what it has sent,
//! and the task that serves it once the accept loop hands it over.
//!
//! Memory per connection is bounded: the read buffer ([`ServerConfig::max_request_bytes`])
//! and unsent replies. While more than [`MAX_UNSENT`] bytes wait to be sent, the connection
//! neither reads nor answers, so a client that sends requests but never reads the replies
//! stops being served (TCP flow control then stalls it) instead of growing a queue. A write
//! that makes no progress for one to two ticks closes the connection; so does the first
//! stalled tick while all connections together hold more than
//! [`ServerConfig::max_unsent_bytes`].

use super::http::{client_ip, framing, wants_close, write_response};
use super::server::{failure, route, ServerConfig, Shared, Slot};
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Unsent reply bytes past which a connection stops reading and answering. One more reply
/// may be appended past it (at most a few KiB: numwant is capped).
pub(super) const MAX_UNSENT: usize = 16 << 10;

/// Buffers of one connection: received bytes not yet answered, and replies not yet sent.
pub(super) struct Conn {
    pub(super) buf: Vec<u8>,
    pub(super) filled: usize,
    pub(super) out: Vec<u8>,
    body: Vec<u8>,
}

impl Conn {
    pub(super) fn new(max_request_bytes: usize) -> Conn {
        Conn {
            buf: vec![0; max_request_bytes],
            filled: 0,
            out: Vec::with_capacity(1024),
            body: Vec::with_capacity(512),
        }
    }

    pub(super) fn clear(&mut self) {
        self.filled = 0;
        self.out.clear();
    }

    /// Gives these buffers, pending bytes and all, to a connection's own task, leaving a
    /// fresh `Conn` here for the next connection.
    pub(super) fn hand_over(&mut self, max_request_bytes: usize) -> Conn {
        std::mem::replace(self, Conn::new(max_request_bytes))
    }
}

/// What [`answer_buffered`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answered {
    /// Close once `out` is sent (`Connection: close`, a malformed request, or a request too
    /// large for the buffer).
    pub(super) close: bool,
    /// At least one request was answered.
    pub(super) any: bool,
    /// Answering stopped at [`MAX_UNSENT`]: complete requests may wait in the buffer.
    pub(super) held: bool,
}

/// Answers the complete requests in `conn.buf` (pipelined ones too) in order, appending the
/// replies to `conn.out`, until the buffer holds no complete request or `out` holds
/// [`MAX_UNSENT`] bytes; what is left stays at the front of the buffer.
pub(super) fn answer_buffered(shared: &Shared, conn: &mut Conn, peer: SocketAddr) -> Answered {
    let config = &shared.config;
    let mut start = 0;
    let mut close = false;
    let mut any = false;
    let mut partial = false;
    let mut held = false;
    while start < conn.filled && !close {
        if conn.out.len() >= MAX_UNSENT {
            held = true;
            break;
        }
        let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; 32];
        let mut req = httparse::Request::new(&mut []);
        let parsed = req.parse_with_uninit_headers(&conn.buf[start..conn.filled], &mut headers);
        let body = &mut conn.body;
        body.clear();
        let reply = match parsed {
            Ok(httparse::Status::Partial) => {
                partial = true;
                break;
            }
            Ok(httparse::Status::Complete(n)) => {
                start += n;
                close = wants_close(&req);
                match framing(&req) {
                    Ok(()) => route(shared, &req, client_ip(config, &req, peer), body),
                    Err(e) => {
                        // The end of this request is unknown: what follows cannot be read
                        // as another request.
                        close = true;
                        failure(shared, body, 400, &e.to_string())
                    }
                }
            }
            Err(e) => {
                close = true;
                failure(shared, body, 400, &format!("malformed HTTP request: {e}"))
            }
        };
        any = true;
        write_response(&mut conn.out, &reply, body, close);
    }
    conn.buf.copy_within(start..conn.filled, 0);
    conn.filled -= start;
    if partial && conn.filled == conn.buf.len() {
        conn.body.clear();
        let reply = failure(
            shared,
            &mut conn.body,
            431,
            "request line and headers are too large",
        );
        write_response(&mut conn.out, &reply, &conn.body, true);
        return Answered {
            close: true,
            any: true,
            held: false,
        };
    }
    Answered { close, any, held }
}

/// Closing with unread input makes the kernel reset the connection, which can destroy
/// the reply (a 400 or 431) before the client reads it. So after such a reply: send FIN,
/// then read and discard what the client still sends, for at most 2 s and 64 KiB.
async fn linger(stream: &mut TcpStream, buf: &mut [u8]) {
    const LINGER: Duration = Duration::from_secs(2);
    const MAX_DISCARD: usize = 64 << 10;
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut discarded = 0;
        while discarded < MAX_DISCARD {
            match stream.read(buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    })
    .await;
}

/// The connection's share of [`Shared::unsent`]: kept up to date only when a write leaves
/// bytes behind, so a connection whose replies leave at once never touches the counter.
struct Unsent<'a> {
    shared: &'a Shared,
    counted: usize,
}

impl Unsent<'_> {
    fn set(&mut self, now: usize) {
        if now > self.counted {
            self.shared
                .unsent
                .fetch_add(now - self.counted, Ordering::Relaxed);
        } else if now < self.counted {
            self.shared
                .unsent
                .fetch_sub(self.counted - now, Ordering::Relaxed);
        }
        self.counted = now;
    }
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// The coarse per-connection clock: the tick length and how many quiet ticks make a
/// connection idle.
fn tick_of(config: &ServerConfig) -> (Duration, u128) {
    let tick = (config.request_timeout.min(config.idle_timeout)).max(Duration::from_millis(10));
    let idle_ticks = config.idle_timeout.as_millis() / tick.as_millis().max(1);
    (tick, idle_ticks)
}

/// Serves a connection in its own task: sends what `conn.out` holds, then reads requests
/// (pipelined or not) and answers each, and closes on error, timeout, `Connection: close`
/// (or `close` already set), or when the client closes.
///
/// Timeouts run on a coarse per-connection clock rather than a timer per read or write: it
/// ticks every `request_timeout` (or `idle_timeout` if shorter). A request still incomplete
/// at two ticks in a row with nothing answered in between is cut off (so after 1 to 2
/// request timeouts); so is a reply no byte of which could be written for two ticks in a
/// row (one tick when all connections' unsent bytes are over their budget); and a
/// connection with nothing answered for `idle_timeout` is closed at the tick after.
///
/// With `evict`, the connection has not sent a complete request yet: it ends when the
/// token is cancelled (evicted for a newcomer) unless a request arrives first.
pub(super) async fn connection(
    slot: &Slot,
    stream: TcpStream,
    peer: SocketAddr,
    mut conn: Conn,
    mut close: bool,
    evict: Option<CancellationToken>,
) -> io::Result<()> {
    let shared: &Shared = &slot.shared;
    let mut stream = stream;
    let mut silent = evict.is_some();
    let evicted = async move {
        match evict {
            Some(token) => token.cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(evicted);
    let (tick, idle_ticks) = tick_of(&shared.config);
    let timer = tokio::time::sleep(tick);
    tokio::pin!(timer);
    let mut unsent = Unsent { shared, counted: 0 };
    // Bytes handed over may hold requests the accept loop left unanswered.
    let (mut answered, mut wrote, mut held) = (false, false, conn.filled > 0);
    let (mut quiet_ticks, mut stuck_ticks, mut stalled_ticks) = (0u128, 0u32, 0u32);
    loop {
        if !conn.out.is_empty() {
            match stream.try_write(&conn.out) {
                Ok(n) => {
                    conn.out.drain(..n);
                    wrote = true;
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
            unsent.set(conn.out.len());
        }
        if held && !close && conn.out.len() < MAX_UNSENT {
            // Requests already buffered, left unanswered while replies piled up.
            let done = answer_buffered(shared, &mut conn, peer);
            (close, held) = (done.close, done.held);
            answered |= done.any;
            continue;
        }
        if close && conn.out.is_empty() {
            if conn.filled > 0 {
                linger(&mut stream, &mut conn.buf).await;
            }
            return Ok(()); // dropping the stream closes it after the queued reply
        }
        // Back-pressure: no reading while replies pile up unsent.
        let reading = !close && conn.out.len() < MAX_UNSENT && conn.filled < conn.buf.len();
        let writing = !conn.out.is_empty();
        if silent && answered {
            silent = false;
            slot.answered();
        }
        tokio::select! {
            biased;
            () = &mut evicted, if silent => return Ok(()),
            ready = stream.writable(), if writing => {
                ready?;
                continue;
            }
            ready = stream.readable(), if reading => {
                ready?;
                match read_and_answer(shared, &stream, &mut conn, peer)? {
                    None => return Ok(()), // the client closed
                    Some(done) => {
                        (close, held) = (done.close, done.held);
                        answered |= done.any;
                    }
                }
            }
            () = &mut timer => {
                if std::mem::take(&mut answered) {
                    (quiet_ticks, stuck_ticks) = (0, 0);
                } else {
                    quiet_ticks += 1;
                    stuck_ticks = if conn.filled > 0 { stuck_ticks + 1 } else { 0 };
                }
                stalled_ticks = match (conn.out.is_empty(), std::mem::take(&mut wrote)) {
                    (false, false) => stalled_ticks + 1,
                    _ => 0,
                };
                let over_budget = shared.unsent.load(Ordering::Relaxed)
                    > shared.config.max_unsent_bytes;
                if stuck_ticks >= 2
                    || quiet_ticks > idle_ticks
                    || stalled_ticks >= 2
                    || (stalled_ticks >= 1 && over_budget)
                {
                    return Ok(()); // too slow, not reading, or idle too long
                }
                timer.as_mut().reset(tokio::time::Instant::now() + tick);
                continue;
            }
        }
    }
}

/// Reads what has arrived and answers it; while a read fills the buffer, reads and answers
/// again before anything is written, so the replies to a pipelined batch larger than the
/// buffer leave in one write. Returns `None` when the client has closed.
fn read_and_answer(
    shared: &Shared,
    stream: &TcpStream,
    conn: &mut Conn,
    peer: SocketAddr,
) -> io::Result<Option<Answered>> {
    let mut all = Answered {
        close: false,
        any: false,
        held: false,
    };
    loop {
        let room = conn.buf.len() - conn.filled;
        let n = match stream.try_read(&mut conn.buf[conn.filled..]) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if is_transient(&e) => return Ok(Some(all)),
            Err(e) => return Err(e),
        };
        conn.filled += n;
        let done = answer_buffered(shared, conn, peer);
        all.close = done.close;
        all.any |= done.any;
        all.held = done.held;
        if n < room || done.close || conn.out.len() >= MAX_UNSENT || conn.filled == conn.buf.len() {
            return Ok(Some(all));
        }
    }
}

/// Errors after which the same call may succeed later.
pub(super) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
