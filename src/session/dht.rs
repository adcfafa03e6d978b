//! The session's DHT service: one task owns the [`Dht`] node and moves its datagrams over
//! the session's UDP socket. Torrents that are not private ask it for peers when they
//! start and again every [`LOOKUP_EVERY`] (each lookup also announces us), until they
//! stop; peers found go to the torrent's peer book as [`PeerSource::Dht`].

use super::driver::{lock, TorrentHandle};
use crate::core::InfoHash;
use crate::dht::node::Family;
use crate::dht::{Dht, DhtConfig, DhtEvent, DhtStats};
use crate::torrent::PeerSource;
use crate::tracker::udp::endpoint::UdpEndpoint;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often a torrent looks for peers in the DHT (and announces itself there).
pub const LOOKUP_EVERY: Duration = Duration::from_secs(15 * 60);
/// Datagrams waiting for the DHT task at most (past it, they are dropped: a flood costs a
/// bounded queue).
const DATAGRAM_QUEUE: usize = 1024;

/// What torrents ask of the DHT.
pub enum Command {
    /// Look for peers of this torrent now and every [`LOOKUP_EVERY`], announcing us.
    Start {
        info_hash: InfoHash,
        torrent: Weak<TorrentHandle>,
    },
    /// Stop looking for this torrent.
    Stop { info_hash: InfoHash },
    /// A node to try (a peer's BEP 5 `port` message).
    AddNode(SocketAddr),
    /// A peer's view of our address (`yourip`).
    ExternalIp { voter: IpAddr, seen: IpAddr },
}

/// The UDP sockets the DHT speaks over: one per family (an IPv6 one only where the host
/// has IPv6; one dual-stack socket may serve both, IPv4 destinations then written as
/// IPv4-mapped IPv6 addresses). Datagrams go out through the socket of the destination's
/// family.
#[derive(Clone, Default)]
pub struct Sockets {
    pub v4: Option<Arc<UdpEndpoint>>,
    pub v6: Option<Arc<UdpEndpoint>>,
    /// `v4` is an IPv6 socket that takes IPv4 too.
    pub v4_mapped: bool,
    /// The families the peer port (TCP) takes connections in.
    pub peers_ipv4: bool,
    pub peers_ipv6: bool,
}

impl Sockets {
    /// The socket for `to`, and the address to write (mapped for a dual-stack socket).
    fn for_addr(&self, to: SocketAddr) -> Option<(&Arc<UdpEndpoint>, SocketAddr)> {
        match (Family::of(&to), &to) {
            (Family::V4, SocketAddr::V4(v4)) if self.v4_mapped => {
                let mapped = SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port());
                self.v4.as_ref().map(|e| (e, mapped))
            }
            (Family::V4, _) => self.v4.as_ref().map(|e| (e, to)),
            (Family::V6, _) => self.v6.as_ref().map(|e| (e, to)),
        }
    }

    /// The family whose lookups decide when a torrent looks again: IPv4 where we have it.
    fn primary(&self) -> Family {
        if self.v4.is_some() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// The session's handle on the DHT task.
pub struct DhtHandle {
    commands: mpsc::Sender<Command>,
    stats: Arc<Mutex<DhtStats>>,
    saved: Arc<Mutex<Option<Vec<u8>>>>,
}

impl DhtHandle {
    /// Sends a command (dropped if the task is gone or its queue is full).
    pub fn send(&self, command: Command) {
        let _ = self.commands.try_send(command);
    }

    /// The node's figures, as of its last wake-up.
    pub fn stats(&self) -> DhtStats {
        lock(&self.stats).clone()
    }

    /// The node's state to save ([`crate::dht::persist`]), as of the last minute (and of
    /// the end, once the session has shut down).
    pub fn saved(&self) -> Option<Vec<u8>> {
        lock(&self.saved).clone()
    }
}

/// Starts the DHT task on `endpoint`; `port` is the port peers reach us on (announced).
pub fn start(
    sockets: Sockets,
    mut config: DhtConfig,
    port: u16,
    stop: CancellationToken,
) -> (DhtHandle, tokio::task::JoinHandle<()>) {
    let (datagrams_tx, datagrams) = mpsc::channel(DATAGRAM_QUEUE);
    for endpoint in sockets.v4.iter().chain(&sockets.v6) {
        endpoint.attach_dht(datagrams_tx.clone());
    }
    config.ipv4 = sockets.v4.is_some();
    config.ipv6 = sockets.v6.is_some();
    config.peers_ipv4 = sockets.peers_ipv4;
    config.peers_ipv6 = sockets.peers_ipv6;
    let (commands_tx, commands) = mpsc::channel(4096);
    let stats = Arc::new(Mutex::new(DhtStats::default()));
    let saved = Arc::new(Mutex::new(None));
    let node = Dht::new(Instant::now(), config);
    let shared = Shared {
        stats: stats.clone(),
        saved: saved.clone(),
    };
    let task = tokio::spawn(run(node, sockets, datagrams, commands, port, shared, stop));
    (
        DhtHandle {
            commands: commands_tx,
            stats,
            saved,
        },
        task,
    )
}

/// First wait before looking again after a lookup that reached fewer than 8 nodes (the
/// table was still filling); doubles up to [`LOOKUP_EVERY`].
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// What the task publishes for the session.
struct Shared {
    stats: Arc<Mutex<DhtStats>>,
    saved: Arc<Mutex<Option<Vec<u8>>>>,
}

/// How often the state to save is refreshed.
const SAVE_EVERY: Duration = Duration::from_secs(60);
/// How often the torrents' lookups are looked at and the figures published (not on every
/// datagram: both cost time in proportion to the torrents and the table).
const SCAN_EVERY: Duration = Duration::from_secs(1);

/// A torrent the DHT looks for.
struct Wanted {
    torrent: Weak<TorrentHandle>,
    next: Instant,
    retry: Duration,
}

async fn run(
    mut node: Dht,
    sockets: Sockets,
    mut datagrams: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    mut commands: mpsc::Receiver<Command>,
    port: u16,
    shared: Shared,
    stop: CancellationToken,
) {
    let mut wanted: HashMap<InfoHash, Wanted> = HashMap::new();
    let mut next_save = Instant::now() + SAVE_EVERY;
    let mut next_scan = Instant::now();
    loop {
        let wake = node.poll_timeout().map_or(next_scan, |t| t.min(next_scan));
        tokio::select! {
            got = datagrams.recv() => match got {
                Some((from, bytes)) => node.handle_datagram(Instant::now(), from, &bytes),
                None => return,
            },
            command = commands.recv() => match command {
                Some(Command::Start { info_hash, torrent }) => {
                    wanted.insert(
                        info_hash,
                        Wanted { torrent, next: Instant::now(), retry: FIRST_RETRY },
                    );
                    next_scan = Instant::now();
                }
                Some(Command::Stop { info_hash }) => {
                    wanted.remove(&info_hash);
                }
                Some(Command::AddNode(addr)) => node.add_node(Instant::now(), addr),
                Some(Command::ExternalIp { voter, seen }) => {
                    node.external_ip_vote(Instant::now(), voter, seen)
                }
                None => return,
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                node.handle_timeout(Instant::now());
            }
            _ = stop.cancelled() => {
                *lock(&shared.saved) = Some(node.save().encode());
                return;
            }
        }
        let now = Instant::now();
        if now >= next_scan {
            next_scan = now + SCAN_EVERY;
            wanted.retain(|_, w| w.torrent.strong_count() > 0);
            for (hash, w) in wanted.iter_mut() {
                if w.next <= now {
                    w.next = now + LOOKUP_EVERY;
                    node.get_peers(now, *hash, Some(port));
                }
            }
            *lock(&shared.stats) = node.stats(now);
            if now >= next_save {
                next_save = now + SAVE_EVERY;
                *lock(&shared.saved) = Some(node.save().encode());
            }
        }
        while let Some((to, bytes)) = node.poll_transmit() {
            if let Some((endpoint, to)) = sockets.for_addr(to) {
                let _ = endpoint.send_to(&bytes, to).await;
            }
        }
        while let Some(event) = node.poll_event() {
            match event {
                DhtEvent::Peers { info_hash, peers } => {
                    let Some(torrent) = wanted.get(&info_hash).and_then(|w| w.torrent.upgrade())
                    else {
                        continue;
                    };
                    let mut d = torrent.lock();
                    d.engine
                        .handle_peers(Instant::now(), PeerSource::Dht, &peers);
                    torrent.dispatch(&mut d);
                }
                DhtEvent::LookupDone {
                    info_hash,
                    family,
                    stats,
                    peers,
                    announced,
                } => {
                    tracing::debug!(
                        "DHT lookup of {info_hash}: {peers} peers, announced to {announced} \
                         nodes ({} queries, {} answers)",
                        stats.queries,
                        stats.answers
                    );
                    // One family's lookups decide (an empty IPv6 DHT must not keep a
                    // torrent looking every few seconds).
                    let decides = family == sockets.primary();
                    if let Some(w) = wanted.get_mut(&info_hash).filter(|_| decides) {
                        if stats.answers < crate::dht::K {
                            // Too few nodes yet: look again soon, then less and less often.
                            w.next = now + w.retry;
                            w.retry = (w.retry * 2).min(LOOKUP_EVERY);
                        } else {
                            w.retry = FIRST_RETRY;
                        }
                    }
                }
            }
        }
    }
}
