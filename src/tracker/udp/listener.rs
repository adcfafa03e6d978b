//! The UDP tracker's socket loop: receive a datagram, let the front end answer it, send
//! the reply. Nothing is kept per client; a reply the kernel cannot take at once is dropped
//! (the client retries, as BEP 15 tells it to).

use super::front::MAX_REQUEST;
use crate::tracker::server::Shared;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Serves tracker requests arriving on `socket` until the task is dropped.
pub(in crate::tracker) async fn udp_loop(shared: Arc<Shared>, socket: UdpSocket) {
    // One byte more than the longest request, so a longer datagram shows as too long
    // (the kernel cuts what does not fit without saying so).
    let mut buf = vec![0; MAX_REQUEST + 1];
    let mut out = Vec::with_capacity(2048);
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) if transient(&e) => continue,
            Err(e) => {
                // Out of memory and the like: wait rather than spin.
                tracing::warn!("UDP receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.answer_udp(&buf[..len], from, &mut out) {
            if let Err(e) = socket.try_send_to(&out, from) {
                tracing::trace!("UDP reply to {from} dropped: {e}");
            }
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
