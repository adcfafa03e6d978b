//! One peer connection: handshake, then a reader task and a writer task.
//!
//! The reader decodes frames straight from its receive buffer, checks each with
//! [`Rules`], and applies a whole buffer's worth of messages under one lock. The writer
//! drains the peer's [`Outbox`]: queued messages first, then requested blocks read from
//! storage on a blocking thread directly behind their 13-byte headers.

use super::torrent::{lock, Completed, Outbox, Torrent};
use super::{CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT, KEEPALIVE_EVERY, WRITE_TIMEOUT};
use crate::picker::{Block, PeerKey};
use crate::wire::{
    decode, max_message_len, piece_header, Handshake, Message, Rules, HANDSHAKE_LEN,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Receive buffer: room for several blocks per read.
const READ_BUF: usize = 128 * 1024;
/// Most block bytes read from disk and sent in one go.
const SERVE_BATCH: usize = 16;

/// Connects to `addr`, then runs the connection until it ends.
pub async fn outgoing(torrent: Arc<Torrent>, addr: SocketAddr) {
    let connect = async {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        // Bound to a specific address: connect from it too (local test networks).
        let bind = torrent.config.bind.ip();
        if !bind.is_unspecified() && bind.is_ipv4() == addr.is_ipv4() {
            socket.bind(SocketAddr::new(bind, 0))?;
        }
        socket.connect(addr).await
    };
    let result = match timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(stream)) => run(torrent.clone(), stream, addr, true).await,
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err("connection timed out".into()),
    };
    torrent.lock().connecting.remove(&addr);
    if let Err(reason) = result {
        tracing::debug!("{addr}: {reason}");
    }
}

/// Runs an accepted connection until it ends.
pub async fn incoming(torrent: Arc<Torrent>, stream: TcpStream, addr: SocketAddr) {
    if torrent.lock().bans.is_banned(addr, None) {
        return;
    }
    if let Err(reason) = run(torrent, stream, addr, false).await {
        tracing::debug!("{addr}: {reason}");
    }
}

async fn handshake(
    stream: &mut TcpStream,
    torrent: &Torrent,
    outgoing: bool,
) -> Result<Handshake, String> {
    let ours = Handshake::new(torrent.info_hash, torrent.peer_id).encode();
    let exchange = async {
        if outgoing {
            stream.write_all(&ours).await.map_err(|e| e.to_string())?;
        }
        let mut theirs = [0u8; HANDSHAKE_LEN];
        stream
            .read_exact(&mut theirs)
            .await
            .map_err(|e| format!("handshake not received: {e}"))?;
        let h = Handshake::decode(&theirs).map_err(|e| e.to_string())?;
        h.check(torrent.info_hash, &torrent.peer_id)
            .map_err(|e| e.to_string())?;
        if !outgoing {
            stream.write_all(&ours).await.map_err(|e| e.to_string())?;
        }
        Ok(h)
    };
    timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| "handshake timed out".to_string())?
}

async fn run(
    torrent: Arc<Torrent>,
    mut stream: TcpStream,
    addr: SocketAddr,
    outgoing: bool,
) -> Result<(), String> {
    let theirs = handshake(&mut stream, &torrent, outgoing).await?;
    let _ = stream.set_nodelay(true);
    let out = Arc::new(Outbox::new());
    let cancel = torrent.shutdown.child_token();
    let key = torrent.add_peer(addr, theirs.peer_id, out.clone(), cancel.clone())?;
    tracing::debug!(
        "{addr}: connected ({})",
        if outgoing { "out" } else { "in" }
    );
    let (rd, wr) = stream.into_split();
    let writer = tokio::spawn(write_loop(torrent.clone(), key, wr, out, cancel.clone()));
    let result = read_loop(&torrent, key, rd, &cancel).await;
    cancel.cancel();
    let _ = writer.await;
    torrent.remove_peer(key);
    result
}

async fn read_loop(
    torrent: &Arc<Torrent>,
    key: PeerKey,
    mut rd: OwnedReadHalf,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let mut rules = Rules::new(torrent.piece_length, torrent.total_length);
    let max = max_message_len(rules.pieces() as usize);
    let mut buf = vec![0u8; READ_BUF.max(max + 4)];
    let (mut start, mut end) = (0usize, 0usize);
    let mut done: Vec<Completed> = Vec::new();
    loop {
        if buf.len() - end < max + 4 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = tokio::select! {
            r = rd.read(&mut buf[end..]) => r.map_err(|e| format!("read failed: {e}"))?,
            _ = cancel.cancelled() => return Ok(()),
        };
        if n == 0 {
            return Err("closed by peer".into());
        }
        end += n;
        // A violation ends the connection, but only after the pieces this buffer completed
        // are handed to the hasher (dropping them would leave them started for ever).
        let mut violation = None;
        {
            let mut st = torrent.lock();
            loop {
                let (message, used) = match decode(&buf[start..end], max) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        violation = Some(e.to_string());
                        break;
                    }
                };
                if let Err(e) = rules.check(&message) {
                    violation = Some(e.to_string());
                    break;
                }
                let bitfield = match message {
                    Message::Bitfield(bytes) => match rules.bitfield(bytes) {
                        Ok(bits) => Some(bits),
                        Err(e) => {
                            violation = Some(e.to_string());
                            break;
                        }
                    },
                    _ => None,
                };
                torrent.on_message(&mut st, key, &message, bitfield, &mut done);
                start += used;
            }
            if violation.is_none() {
                torrent.refill(&mut st, key);
            }
        }
        for piece in done.drain(..) {
            torrent.queue_for_hashing(piece);
        }
        if let Some(e) = violation {
            return Err(format!("protocol violation: {e}"));
        }
        if start == end {
            (start, end) = (0, 0);
        }
    }
}

async fn write_loop(
    torrent: Arc<Torrent>,
    key: PeerKey,
    mut wr: OwnedWriteHalf,
    out: Arc<Outbox>,
    cancel: CancellationToken,
) {
    let mut bytes = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        {
            let mut q = lock(&out.queue);
            std::mem::swap(&mut q.bytes, &mut bytes);
            let n = q.serves.len().min(SERVE_BATCH);
            blocks.extend(q.serves.drain(..n));
        }
        if bytes.is_empty() && blocks.is_empty() {
            tokio::select! {
                _ = out.notify.notified() => continue,
                _ = tokio::time::sleep(KEEPALIVE_EVERY) => Message::KeepAlive.encode(&mut bytes),
                _ = cancel.cancelled() => return,
            }
        }
        if !blocks.is_empty() {
            if let Some(limiter) = &torrent.upload_limit {
                let payload = blocks.iter().map(|b| u64::from(b.len)).sum();
                let wait = limiter.reserve(payload);
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = cancel.cancelled() => return,
                    }
                }
            }
            // The blocks are read from disk straight behind their headers, after the
            // messages queued before them.
            let t = torrent.clone();
            let batch = std::mem::take(&mut blocks);
            let mut buf = std::mem::take(&mut bytes);
            let read = tokio::task::spawn_blocking(move || {
                for b in &batch {
                    buf.extend_from_slice(&piece_header(b.piece, b.offset, b.len));
                    let at = buf.len();
                    buf.resize(at + b.len as usize, 0);
                    let offset = u64::from(b.piece) * t.piece_length + u64::from(b.offset);
                    t.storage.read(offset, &mut buf[at..])?;
                }
                Ok::<_, crate::storage::StorageError>((buf, batch))
            });
            match read.await {
                Ok(Ok((buf, mut batch))) => {
                    let payload: u64 = batch.iter().map(|b| u64::from(b.len)).sum();
                    torrent.uploaded(key, payload);
                    bytes = buf;
                    batch.clear();
                    blocks = batch;
                }
                Ok(Err(e)) => {
                    torrent.fail(format!("cannot read data to upload: {e}"));
                    return;
                }
                Err(_) => return,
            }
        }
        let write = async { wr.write_all(&bytes).await };
        let ok = tokio::select! {
            r = timeout(WRITE_TIMEOUT, write) => matches!(r, Ok(Ok(()))),
            _ = cancel.cancelled() => return,
        };
        if !ok {
            tracing::debug!("{key:?}: write failed or timed out");
            cancel.cancel();
            return;
        }
        bytes.clear();
    }
}
