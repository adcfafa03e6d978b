//! Socket options and system calls of the tracker server that std and tokio do not offer:
//! deferred accept, capped kernel buffers, `accept4` with the address decoded, MSG_MORE.

use std::io;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Asks the kernel to hand over connections only once their first bytes have arrived
/// (TCP_DEFER_ACCEPT), saving a wake-up per connection. Best effort: ignored if refused.
pub(super) fn defer_accept(listener: &TcpListener) {
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

/// Kernel buffer size asked for each direction of a long-lived connection (the kernel
/// doubles it for bookkeeping). Autotuned buffers grow to megabytes (`tcp_wmem`,
/// `tcp_rmem`): a client that never reads its replies would pin that much kernel memory
/// until its write times out. Tracker replies are small; a batch of replies to pipelined
/// requests is at most [`super::connection::MAX_UNSENT`] plus one reply.
pub(super) const SOCKET_BUFFER: libc::c_int = 32 << 10;

/// Caps the kernel's send and receive buffers of a connection at [`SOCKET_BUFFER`].
/// Best effort: a refusal is logged and the kernel's sizes kept.
pub(super) fn cap_socket_buffers(stream: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
        let result = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&SOCKET_BUFFER as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            tracing::debug!("socket buffer not capped: {}", io::Error::last_os_error());
        }
    }
}

/// `accept4` with the new socket already non-blocking and close-on-exec, and the peer's
/// address decoded from what the call returns (no extra syscalls).
pub(super) fn accept_nonblocking(
    listener: &std::net::TcpListener,
) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: accept4 on a listening socket we own, writing at most `len` bytes into
    // `storage`, which outlives the call.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let peer = match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET; storage is large and
            // aligned enough for any socket address.
            let a = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            SocketAddr::from((
                std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a sockaddr_in6 for AF_INET6.
            let a = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            ))
        }
        family => {
            return Err(io::Error::other(format!(
                "accepted a connection of address family {family}"
            )))
        }
    };
    Ok((stream, peer))
}

/// `send` with MSG_MORE: the kernel may hold the bytes until more follow or the socket
/// is closed.
pub(super) fn send_more(stream: &std::net::TcpStream, data: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: send on a socket we own, reading `data.len()` bytes from a live slice.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_MORE | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
