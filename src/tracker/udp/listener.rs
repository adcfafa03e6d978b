//! The UDP tracker's socket loop: receive datagrams, let the front end answer them, send
//! the replies, a batch at a time. Nothing is kept per client; a reply the kernel cannot take at once is dropped
//! (the client retries, as BEP 15 tells it to).

use super::batch::{RecvBatch, SendBatch};
use super::front::MAX_REQUEST;
use crate::tracker::server::Shared;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Serves tracker requests arriving on `socket` until the task is dropped: a batch of
/// datagrams in, their replies out in one batch too (see [`super::batch`]).
pub(in crate::tracker) async fn udp_loop(shared: Arc<Shared>, socket: UdpSocket) {
    // One byte more than the longest request, so a longer datagram shows as too long
    // (the kernel cuts what does not fit without saying so).
    let mut received = RecvBatch::new(MAX_REQUEST + 1);
    let mut replies = SendBatch::default();
    let mut out = Vec::with_capacity(2048);
    let fd = socket.as_raw_fd();
    loop {
        if let Err(e) = socket.readable().await {
            tracing::warn!("UDP socket failed: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let n = match socket.try_io(Interest::READABLE, || received.recv(fd)) {
            Ok(n) => n,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                // Out of memory and the like: wait rather than spin.
                tracing::warn!("UDP receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        for i in 0..n {
            let Some((datagram, from)) = received.get(i) else {
                continue;
            };
            if shared.answer_udp(datagram, from, &mut out) {
                replies.push(&out, from);
            }
        }
        if !replies.is_empty() {
            // A reply the kernel cannot take now is dropped (the client resends).
            let _ = socket.try_io(Interest::WRITABLE, || Ok(replies.send(fd)));
        }
    }
}

/// Errors that say nothing about the socket: an ICMP error from an earlier send to a
/// client that has gone, or an interrupted call.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error() == Some(libc::EHOSTUNREACH)
        || e.raw_os_error() == Some(libc::ENETUNREACH)
}
