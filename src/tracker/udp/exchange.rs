//! One announce to a UDP tracker as a state machine (BEP 15), with no I/O and no clock
//! reads: connect (unless a connection id from the last minute is at hand), then announce;
//! each request is sent again after 15 × 2^n seconds without an answer, a bounded number
//! of times. Replies whose transaction id does not match are dropped.

use super::packet::{self, AnnounceRequest, Reply};
use crate::tracker::client::AnnounceResponse;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// First wait for an answer; doubles with each resend (BEP 15).
pub const FIRST_WAIT: Duration = Duration::from_secs(15);
/// Resends after the first request before giving up (15 + 30 + 60 + 120 s in all).
pub const MAX_RESENDS: u32 = 3;
/// How long a connection id may be used (BEP 15: one minute).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What the driver does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this datagram to the tracker (again or anew), then wait until
    /// [`Exchange::deadline`] for a reply.
    Send(Vec<u8>),
    /// Nothing to do (a reply that was not ours): keep waiting.
    Wait,
    /// A connection id was obtained: cache it (until `until`) for the next announces.
    /// The announce request is in `then`: send it.
    Connected {
        connection: u64,
        until: Instant,
        then: Vec<u8>,
    },
    /// Finished.
    Done(Result<AnnounceResponse, Failure>),
}

/// Why an exchange ended without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The tracker answered with an error message.
    Refused(String),
    /// No answer after every resend.
    TimedOut,
    /// An answer that is not BEP 15.
    Malformed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Announcing(u64),
}

/// One announce in progress; see the module documentation.
pub struct Exchange {
    phase: Phase,
    transaction: u32,
    resends: u32,
    deadline: Instant,
    request: AnnounceOwned,
    /// Whether the tracker's address is IPv6 (its peers come in 18 bytes).
    v6: bool,
    /// The datagram last sent (sent again on a timeout).
    last: Vec<u8>,
    next_transaction: Box<dyn FnMut() -> u32 + Send>,
}

/// [`AnnounceRequest`] with owned URL data.
struct AnnounceOwned {
    fields: AnnounceRequest<'static>,
    url_data: Vec<u8>,
}

impl Exchange {
    /// Starts announcing `request` to a tracker at `tracker`, with a connection id still
    /// valid if one is at hand. `transactions` draws transaction ids. Returns the
    /// exchange and the first datagram to send.
    pub fn start(
        now: Instant,
        tracker: SocketAddr,
        request: AnnounceRequest<'_>,
        connection: Option<u64>,
        mut transactions: impl FnMut() -> u32 + Send + 'static,
    ) -> (Exchange, Vec<u8>) {
        let url_data = request.url_data.to_vec();
        let fields = AnnounceRequest {
            url_data: &[],
            ..request
        };
        let transaction = transactions();
        let mut ex = Exchange {
            phase: match connection {
                Some(c) => Phase::Announcing(c),
                None => Phase::Connecting,
            },
            transaction,
            resends: 0,
            deadline: now + FIRST_WAIT,
            request: AnnounceOwned { fields, url_data },
            v6: tracker.is_ipv6() && !tracker.ip().to_canonical().is_ipv4(),
            last: Vec::new(),
            next_transaction: Box::new(transactions),
        };
        ex.last = ex.datagram();
        let first = ex.last.clone();
        (ex, first)
    }

    /// When to call [`Exchange::handle_timeout`] if no reply came.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The transaction id a reply must carry now.
    pub fn transaction(&self) -> u32 {
        self.transaction
    }

    fn datagram(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(packet::ANNOUNCE_LEN + self.request.url_data.len() + 8);
        match self.phase {
            Phase::Connecting => packet::connect_request(&mut out, self.transaction),
            Phase::Announcing(connection) => {
                let fields = AnnounceRequest {
                    url_data: &self.request.url_data,
                    ..self.request.fields.clone()
                };
                packet::announce_request(&mut out, connection, self.transaction, &fields);
            }
        }
        out
    }

    /// No reply by the deadline: send again with a doubled wait, or give up.
    pub fn handle_timeout(&mut self, now: Instant) -> Step {
        if now < self.deadline {
            return Step::Wait;
        }
        if self.resends >= MAX_RESENDS {
            return Step::Done(Err(Failure::TimedOut));
        }
        self.resends += 1;
        self.deadline = now + FIRST_WAIT * 2u32.pow(self.resends);
        Step::Send(self.last.clone())
    }

    /// A datagram from the tracker's address.
    pub fn handle_reply(&mut self, now: Instant, bytes: &[u8]) -> Step {
        let reply = match Reply::parse(bytes) {
            Ok(r) => r,
            Err(e) => return Step::Done(Err(Failure::Malformed(e.to_string()))),
        };
        if reply.transaction() != self.transaction {
            return Step::Wait;
        }
        match (self.phase, reply) {
            (_, Reply::Error { message, .. }) => Step::Done(Err(Failure::Refused(
                String::from_utf8_lossy(message).into_owned(),
            ))),
            (Phase::Connecting, Reply::Connect { connection, .. }) => {
                self.phase = Phase::Announcing(connection);
                self.transaction = (self.next_transaction)();
                self.resends = 0;
                self.deadline = now + FIRST_WAIT;
                self.last = self.datagram();
                Step::Connected {
                    connection,
                    until: now + CONNECTION_LIFETIME,
                    then: self.last.clone(),
                }
            }
            (
                Phase::Announcing(_),
                Reply::Announce {
                    interval,
                    leechers,
                    seeders,
                    peers,
                    ..
                },
            ) => Step::Done(Ok(AnnounceResponse {
                interval,
                min_interval: None,
                complete: Some(u64::from(seeders)),
                incomplete: Some(u64::from(leechers)),
                peers: packet::peers(peers, self.v6)
                    .filter(|a| a.port() != 0)
                    .collect(),
                warning: None,
            })),
            _ => Step::Done(Err(Failure::Malformed(
                "a reply of the wrong kind".to_string(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::InfoHash;
    use crate::tracker::query::Event;
    use crate::tracker::udp::packet::Request;

    fn request() -> AnnounceRequest<'static> {
        AnnounceRequest {
            info_hash: InfoHash([1; 20]),
            peer_id: [2; 20],
            downloaded: 0,
            left: 10,
            uploaded: 0,
            event: Event::Started,
            key: 7,
            numwant: Some(50),
            port: 6881,
            url_data: b"/announce",
        }
    }

    fn counter() -> impl FnMut() -> u32 + Send + 'static {
        let mut n = 100;
        move || {
            n += 1;
            n
        }
    }

    const TRACKER: &str = "10.0.0.1:6969";

    #[test]
    fn connect_then_announce_then_peers() {
        let now = Instant::now();
        let (mut ex, first) =
            Exchange::start(now, TRACKER.parse().unwrap(), request(), None, counter());
        assert_eq!(
            Request::parse(&first),
            Ok(Request::Connect { transaction: 101 })
        );
        // A reply to another transaction is dropped.
        let mut wrong = Vec::new();
        packet::connect_reply(&mut wrong, 999, 5);
        assert_eq!(ex.handle_reply(now, &wrong), Step::Wait);
        let mut reply = Vec::new();
        packet::connect_reply(&mut reply, 101, 0xabc);
        let Step::Connected {
            connection, then, ..
        } = ex.handle_reply(now, &reply)
        else {
            panic!("not connected")
        };
        assert_eq!(connection, 0xabc);
        let Ok(Request::Announce {
            connection,
            transaction,
            url_data,
            ..
        }) = Request::parse(&then)
        else {
            panic!("not an announce")
        };
        assert_eq!((connection, transaction), (0xabc, 102));
        assert_eq!(url_data, b"/announce");
        let mut reply = Vec::new();
        packet::announce_reply_head(&mut reply, 102, 1800, 1, 2);
        reply.extend_from_slice(&[10, 0, 0, 2, 0x1a, 0xe1, 10, 0, 0, 3, 0, 0]);
        let Step::Done(Ok(r)) = ex.handle_reply(now, &reply) else {
            panic!("no answer")
        };
        assert_eq!(r.interval, 1800);
        assert_eq!((r.complete, r.incomplete), (Some(2), Some(1)));
        assert_eq!(
            r.peers,
            ["10.0.0.2:6881".parse::<SocketAddr>().unwrap()],
            "port 0 dropped"
        );
    }

    #[test]
    fn resends_wait_15_then_30_60_120_seconds_then_give_up() {
        let start = Instant::now();
        let (mut ex, first) = Exchange::start(
            start,
            TRACKER.parse().unwrap(),
            request(),
            Some(9),
            counter(),
        );
        assert!(matches!(
            Request::parse(&first),
            Ok(Request::Announce { connection: 9, .. })
        ));
        assert_eq!(
            ex.handle_timeout(start + Duration::from_secs(14)),
            Step::Wait
        );
        let mut at = start;
        for wait in [15, 30, 60] {
            at += Duration::from_secs(wait);
            assert_eq!(ex.deadline(), at);
            assert_eq!(ex.handle_timeout(at), Step::Send(first.clone()));
        }
        at += Duration::from_secs(120);
        assert_eq!(ex.deadline(), at);
        assert_eq!(ex.handle_timeout(at), Step::Done(Err(Failure::TimedOut)));
    }

    #[test]
    fn an_error_reply_ends_it_and_garbage_is_malformed() {
        let now = Instant::now();
        let (mut ex, _) =
            Exchange::start(now, TRACKER.parse().unwrap(), request(), None, counter());
        let mut reply = Vec::new();
        packet::error_reply(&mut reply, 101, "not allowed");
        assert_eq!(
            ex.handle_reply(now, &reply),
            Step::Done(Err(Failure::Refused("not allowed".into())))
        );
        let (mut ex, _) =
            Exchange::start(now, TRACKER.parse().unwrap(), request(), None, counter());
        assert!(matches!(
            ex.handle_reply(now, &[1, 2, 3]),
            Step::Done(Err(Failure::Malformed(_)))
        ));
    }

    #[test]
    fn an_ipv6_tracker_sends_18_byte_peers() {
        let now = Instant::now();
        let (mut ex, _) = Exchange::start(
            now,
            "[2001:db8::1]:6969".parse().unwrap(),
            request(),
            Some(1),
            counter(),
        );
        let mut reply = Vec::new();
        packet::announce_reply_head(&mut reply, 101, 60, 0, 1);
        let mut entry = [0u8; 18];
        entry[0] = 0x20;
        entry[1] = 0x01;
        entry[15] = 9;
        entry[16..].copy_from_slice(&6881u16.to_be_bytes());
        reply.extend_from_slice(&entry);
        let Step::Done(Ok(r)) = ex.handle_reply(now, &reply) else {
            panic!()
        };
        assert_eq!(r.peers, ["[2001::9]:6881".parse::<SocketAddr>().unwrap()]);
    }
}
