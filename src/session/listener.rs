//! The session's one listening socket: accepts connections, reads the handshake's first
//! 68 bytes and routes the connection to the torrent its info hash names.

use super::conn;
use super::Inner;
use crate::core::InfoHash;
use crate::torrent::{Direction, HANDSHAKE_TIMEOUT};
use crate::wire::{Handshake, HANDSHAKE_LEN};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Accepts until the session shuts down.
pub async fn listen(inner: Arc<Inner>, listener: TcpListener) {
    // Connections alive at once that have not been routed yet, and in all: beyond them new
    // ones are closed at once (silent sockets cannot pile up).
    let slots = Arc::new(tokio::sync::Semaphore::new(inner.max_connections));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        continue;
                    };
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        route(inner, stream, addr).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = inner.shutdown.cancelled() => return,
        }
    }
}

/// Reads the handshake and hands the connection to its torrent.
async fn route(inner: Arc<Inner>, mut stream: tokio::net::TcpStream, addr: std::net::SocketAddr) {
    let mut first = [0u8; HANDSHAKE_LEN];
    let read = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut first)) => r,
        _ = inner.shutdown.cancelled() => return,
    };
    match read {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!("{addr}: handshake not received: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("{addr}: handshake timed out");
            return;
        }
    }
    let info_hash = match Handshake::decode(&first) {
        Ok(h) => h.info_hash,
        Err(e) => {
            tracing::debug!("{addr}: {}", crate::text::escape(&e.to_string()));
            return;
        }
    };
    let Some(torrent) = inner.find(&info_hash) else {
        tracing::debug!(
            "{addr}: handshake for a torrent we do not have ({})",
            InfoHash::to_hex(&info_hash)
        );
        return;
    };
    conn::run(torrent, stream, addr, Direction::Incoming, &first).await;
}
