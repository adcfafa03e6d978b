//! Connection tasks: they only move bytes between a transport and the torrent's engine.
//!
//! The transport seam is a pair of byte streams ([`Transport`]): TCP today; protocol
//! encryption and uTP will hand in their own streams without touching the engine. The
//! reader feeds whole receive buffers to the engine; the writer drains the connection's
//! [`Link`] and reads requested blocks from storage on a blocking thread, straight behind
//! their 13-byte headers.

use super::driver::{lock, Link, TorrentHandle};
use crate::core::PeerKey;
use crate::picker::Block;
use crate::torrent::Direction;
use crate::wire::piece_header;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// A connection attempt gives up after this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that makes no progress for this long ends the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Receive buffer: room for several blocks per read.
const READ_BUF: usize = 128 * 1024;
/// Most blocks read from disk and sent in one go.
const SERVE_BATCH: usize = 16;

/// The byte streams a connection runs over.
pub trait Transport: Send + 'static {
    type Read: AsyncRead + Unpin + Send + 'static;
    type Write: AsyncWrite + Unpin + Send + 'static;
    /// The two halves.
    fn split(self) -> (Self::Read, Self::Write);
}

impl Transport for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    fn split(self) -> (Self::Read, Self::Write) {
        let _ = self.set_nodelay(true);
        self.into_split()
    }
}

/// Dials `addr` for `torrent`, then runs the connection until it ends.
pub async fn outgoing(torrent: Arc<TorrentHandle>, addr: SocketAddr) {
    let bind = torrent.shared.bind.ip();
    let connect = async {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        // Bound to a specific address: connect from it too (local test networks).
        if !bind.is_unspecified() && bind.is_ipv4() == addr.is_ipv4() {
            socket.bind(SocketAddr::new(bind, 0))?;
        }
        socket.connect(addr).await
    };
    let stream = tokio::select! {
        r = timeout(CONNECT_TIMEOUT, connect) => match r {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::debug!("{addr}: cannot connect: {e}");
                None
            }
            Err(_) => {
                tracing::debug!("{addr}: connection timed out");
                None
            }
        },
        _ = torrent.cancel.cancelled() => None,
    };
    let Some(stream) = stream else {
        let mut d = torrent.lock();
        d.engine.handle_dial_failed(Instant::now(), addr);
        torrent.dispatch(&mut d);
        return;
    };
    run(torrent, stream, addr, Direction::Outgoing, &[]).await;
}

/// Runs a connection: registers it with the engine, hands it `first` (bytes already read,
/// such as the handshake the listener routed by), then moves bytes both ways.
pub async fn run<T: Transport>(
    torrent: Arc<TorrentHandle>,
    stream: T,
    addr: SocketAddr,
    direction: Direction,
    first: &[u8],
) {
    let link = Arc::new(Link::new(torrent.cancel.child_token()));
    let (key, max_frame) = {
        let mut d = torrent.lock();
        let now = Instant::now();
        let key = match d.engine.handle_connected(now, addr, direction) {
            Ok(key) => key,
            Err(reason) => {
                let reason = reason.to_string();
                tracing::debug!("{addr}: refused: {}", crate::text::escape(&reason));
                torrent.dispatch(&mut d);
                return;
            }
        };
        d.links.insert(key, link.clone());
        if !first.is_empty() {
            d.engine.handle_bytes(now, key, first);
        }
        torrent.dispatch(&mut d);
        (key, d.engine.max_frame_len())
    };
    let (rd, wr) = stream.split();
    let writer = tokio::spawn(write_loop(torrent.clone(), key, wr, link.clone()));
    if let Err(e) = read_loop(&torrent, key, rd, &link, max_frame).await {
        tracing::debug!("{addr}: {}", crate::text::escape(&e.to_string()));
    }
    link.cancel.cancel();
    let _ = writer.await;
    let mut d = torrent.lock();
    d.links.remove(&key);
    d.engine.handle_closed(Instant::now(), key);
    torrent.dispatch(&mut d);
}

async fn read_loop(
    torrent: &Arc<TorrentHandle>,
    key: PeerKey,
    mut rd: impl AsyncRead + Unpin,
    link: &Link,
    max_frame: usize,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; READ_BUF.max(max_frame + 4)];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        if buf.len() - end < max_frame + 4 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = tokio::select! {
            r = rd.read(&mut buf[end..]) => r?,
            _ = link.cancel.cancelled() => return Ok(()),
        };
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed by peer",
            ));
        }
        let wait = super::limit::both(&torrent.shared.limits.down, torrent.limits.down(), n as u64);
        end += n;
        {
            let mut d = torrent.lock();
            start += d.engine.handle_bytes(Instant::now(), key, &buf[start..end]);
            torrent.dispatch(&mut d);
        }
        if start == end {
            (start, end) = (0, 0);
        }
        if !wait.is_zero() {
            // Over the download limit: what was read is handled; read no more until the
            // rate allows (the peer's sending then slows to it through TCP's window).
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = link.cancel.cancelled() => return Ok(()),
            }
        }
    }
}

async fn write_loop(
    torrent: Arc<TorrentHandle>,
    key: PeerKey,
    mut wr: impl AsyncWrite + Unpin,
    link: Arc<Link>,
) {
    let mut bytes = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    // Payload of the last batch written, reported with the next look at the queue: one
    // engine lock per batch.
    let mut sent = 0u64;
    // The torrent's revocation count when the blocks were taken.
    let mut taken_at = 0u64;
    loop {
        std::mem::swap(&mut *lock(&link.queue), &mut bytes);
        if sent > 0 || link.serve.load(Ordering::Relaxed) {
            let mut d = torrent.lock();
            if sent > 0 {
                d.engine.handle_sent(Instant::now(), key, sent);
                torrent.dispatch(&mut d);
                sent = 0;
            }
            if link.serve.load(Ordering::Relaxed) {
                d.engine.take_serves(key, SERVE_BATCH, &mut blocks);
                taken_at = d.engine.revocations();
                if blocks.len() < SERVE_BATCH {
                    // Queue drained; the next request sets the flag again (under this lock).
                    link.serve.store(false, Ordering::Relaxed);
                }
            }
        }
        if bytes.is_empty() && blocks.is_empty() {
            tokio::select! {
                _ = link.notify.notified() => continue,
                _ = link.cancel.cancelled() => return,
            }
        }
        let mut payload: u64 = blocks.iter().map(|b| u64::from(b.len)).sum();
        if !blocks.is_empty() {
            let wait = super::limit::both(&torrent.shared.limits.up, torrent.limits.up(), payload);
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = link.cancel.cancelled() => return,
                }
            }
            // The blocks are read from disk straight behind their headers, after the
            // messages queued before them.
            let t = torrent.clone();
            let batch = std::mem::take(&mut blocks);
            let mut buf = std::mem::take(&mut bytes);
            let messages = buf.len();
            // A block that cannot be read is left out (the engine checks its piece again).
            let read = tokio::task::spawn_blocking(move || {
                let files = t.files();
                let mut failed = Vec::new();
                let mut payload = 0u64;
                for b in &batch {
                    let header = buf.len();
                    buf.extend_from_slice(&piece_header(b.piece, b.offset, b.len));
                    let at = buf.len();
                    buf.resize(at + b.len as usize, 0);
                    let read = files.clone().and_then(|f| {
                        let offset = f.geometry.piece_offset(b.piece) + u64::from(b.offset);
                        f.storage
                            .read(offset, &mut buf[at..])
                            .map_err(|e| e.to_string())
                    });
                    match read {
                        Ok(()) => payload += u64::from(b.len),
                        Err(e) => {
                            buf.truncate(header);
                            failed.push((b.piece, e.to_string()));
                        }
                    }
                }
                (buf, batch, payload, failed)
            });
            match read.await {
                Ok((buf, mut batch, read_payload, failed)) => {
                    bytes = buf;
                    batch.clear();
                    blocks = batch;
                    payload = read_payload;
                    if torrent.revoked.load(Ordering::Relaxed) != taken_at {
                        // A piece stopped being served while we read: what we read may
                        // be new, unverified data. Send none of it (the peer asks again).
                        bytes.truncate(messages);
                        payload = 0;
                    }
                    if !failed.is_empty() {
                        let mut d = torrent.lock();
                        for (piece, message) in failed {
                            d.engine.handle_read_failed(piece, &message);
                        }
                        torrent.dispatch(&mut d);
                    }
                }
                Err(_) => return,
            }
        }
        let ok = tokio::select! {
            r = timeout(WRITE_TIMEOUT, wr.write_all(&bytes)) => matches!(r, Ok(Ok(()))),
            _ = link.cancel.cancelled() => return,
        };
        if !ok {
            tracing::debug!("{key}: write failed or timed out");
            link.cancel.cancel();
            return;
        }
        bytes.clear();
        sent = payload;
    }
}
