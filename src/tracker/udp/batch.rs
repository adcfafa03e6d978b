//! Datagrams by the batch: `recvmmsg` and `sendmmsg` move up to [`BATCH`] datagrams per
//! system call, where `recv_from` and `send_to` move one. Under load the socket loop spends
//! most of its time in system calls, so this is where the UDP tracker's rate comes from.
//! Linux only, like the rest of the crate; every call is non-blocking.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr::null_mut;

/// Datagrams moved per system call at most.
pub const BATCH: usize = 32;

/// Buffers for one `recvmmsg`.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
}

impl RecvBatch {
    /// Room for [`BATCH`] datagrams of up to `cap` bytes each (a longer one arrives cut to
    /// `cap`: give one byte more than the longest you accept, to see it).
    pub fn new(cap: usize) -> RecvBatch {
        RecvBatch {
            bufs: (0..BATCH).map(|_| vec![0; cap]).collect(),
            // SAFETY: sockaddr_storage is plain data; all zeros is a valid (empty) value.
            addrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            lens: vec![0; BATCH],
        }
    }

    /// Receives what is waiting, up to [`BATCH`] datagrams, without blocking. Returns how
    /// many (an error of kind `WouldBlock` when none).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain data; zeroed values are valid and every
        // pointer is set below before the call.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iovs[i].iov_len = self.bufs[i].len();
            hdrs[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: hdrs holds BATCH headers whose name and iovec pointers reference buffers
        // owned by self (and iovs), alive and not otherwise borrowed during the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for ((len, hdr), buf) in self.lens.iter_mut().zip(&hdrs).zip(&self.bufs).take(n) {
            *len = (hdr.msg_len as usize).min(buf.len());
        }
        Ok(n)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`] and its sender (`None` for an address
    /// family other than IPv4 and IPv6).
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let from = from_storage(&self.addrs[i])?;
        Some((&self.bufs[i][..self.lens[i]], from))
    }
}

/// Replies gathered for one `sendmmsg`.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    /// End offset in `data` and destination of each datagram.
    items: Vec<(usize, SocketAddr)>,
}

impl SendBatch {
    /// Queues `datagram` for `to`.
    pub fn push(&mut self, datagram: &[u8], to: SocketAddr) {
        self.data.extend_from_slice(datagram);
        self.items.push((self.data.len(), to));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends every queued datagram it can without blocking; what the kernel cannot take
    /// now is dropped (a client resends). Empties the batch. Returns how many went out.
    pub fn send(&mut self, fd: RawFd) -> usize {
        let count = self.items.len().min(BATCH);
        // SAFETY: plain data; every pointer is set below before the call.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut start = 0;
        for i in 0..count {
            let (end, to) = self.items[i];
            let len = to_storage(to, &mut addrs[i]);
            iovs[i].iov_base = self.data[start..end].as_ptr() as *mut libc::c_void;
            iovs[i].iov_len = end - start;
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = len;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            start = end;
        }
        let mut sent = 0;
        while sent < count {
            // SAFETY: the headers from `sent` on point into self.data, addrs and iovs,
            // which outlive the call; the kernel only reads them.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs[sent..].as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                // Full (EAGAIN) or refused for the first of them: skip that one.
                sent += 1;
                continue;
            }
            sent += n as usize;
        }
        self.data.clear();
        self.items.clear();
        count
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // and aligned enough for.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let a = unsafe { &mut *(s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_port = v4.port().to_be();
            a.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let a =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            a.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            a.sin6_port = v6.port().to_be();
            a.sin6_flowinfo = v6.flowinfo();
            a.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            a.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_its_senders() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(a) = std::net::UdpSocket::bind(local) else {
                continue;
            };
            let b = std::net::UdpSocket::bind(local).unwrap();
            let mut out = SendBatch::default();
            for i in 0..40u8 {
                out.push(&[i; 3], b.local_addr().unwrap());
            }
            // One call sends at most a batch; the rest is dropped, as under load.
            assert_eq!(out.send(a.as_raw_fd()), BATCH);
            assert!(out.is_empty());
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut batch = RecvBatch::new(2);
            let n = batch.recv(b.as_raw_fd()).unwrap();
            assert_eq!(n, BATCH);
            for i in 0..n {
                let (data, from) = batch.get(i).unwrap();
                assert_eq!(data, [i as u8; 2], "cut to the buffer");
                assert_eq!(from, a.local_addr().unwrap());
            }
            let err = batch.recv(b.as_raw_fd()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        }
    }
}
