//! The simulated network: every node's sans-IO [`Dht`] in one process, a virtual clock,
//! and one heap of what happens next (datagrams arriving, nodes due for
//! `handle_timeout`, nodes leaving).
//!
//! Each datagram is lost with probability `loss`, else arrives after a one-way latency
//! drawn uniformly from `latency`. A node is woken only when its `poll_timeout` is due: the
//! heap holds one wake-up per node, and a superseded one is skipped when it comes up. Every
//! node has its own /24 in 10/8 (so libtorrent's one-node-per-/24-per-bucket rule and the
//! per-IP rate limits keep their defaults, and BEP 42 exempts the addresses). A few seed
//! nodes serve as every other node's bootstrap routers and never leave.

use crate::probe::Probes;
use battorrent::dht::{Dht, DhtConfig, DhtEvent, NodeId, K};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Node `i`'s address (kept after it leaves): its own /24, 10.a.b.1 with i = a * 256 + b.
pub fn address(i: usize) -> SocketAddr {
    assert!(i < 1 << 16, "more nodes than /24s in 10/8");
    let ip = Ipv4Addr::from(0x0a00_0001 | ((i as u32) << 8));
    SocketAddr::new(IpAddr::V4(ip), 6881)
}

/// How datagrams travel.
#[derive(Clone, Copy, Debug)]
pub struct Links {
    /// One-way latency, drawn uniformly per datagram.
    pub latency: (Duration, Duration),
    /// Probability that a datagram is lost.
    pub loss: f64,
}

enum Action {
    Deliver {
        to: SocketAddr,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    /// The node's `poll_timeout` said this time (skipped if it has changed since).
    Wake { node: usize },
    /// A node leaves (churn), and a new one joins in its place.
    Leave,
}

struct Scheduled {
    at: Duration,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap's top is the earliest (ties in the order scheduled).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// One live node.
pub struct Slot {
    pub dht: Dht,
    pub addr: SocketAddr,
    /// The wake-up in the heap that counts.
    wake: Option<Duration>,
    /// When it joined, while its table holds fewer than K live nodes.
    booting: Option<Duration>,
}

/// What the network carried.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub sent: u64,
    pub lost: u64,
    /// Datagrams that reached an address whose node had left.
    pub to_departed: u64,
    pub delivered: u64,
    /// Queries among them.
    pub queries: u64,
    /// Queries delivered that got no reply at all (rate limited).
    pub unanswered: u64,
    pub wakes: u64,
    /// `poll_timeout` right after `handle_timeout(now)` was not after `now` (a node that
    /// would spin); the simulation then waits 1 ms.
    pub wakes_in_past: u64,
    pub joined: u64,
    pub left: u64,
}

/// The simulated network; see the module documentation.
pub struct Net {
    base: Instant,
    /// Virtual time since `base`.
    pub now: Duration,
    pub rng: fastrand::Rng,
    links: Links,
    pub nodes: Vec<Option<Slot>>,
    by_addr: HashMap<SocketAddr, usize>,
    seeds: Vec<SocketAddr>,
    /// Live nodes that are not seeds, and each one's place in that list.
    live: Vec<usize>,
    live_at: HashMap<usize, usize>,
    heap: BinaryHeap<Scheduled>,
    seq: u64,
    /// Leaves a second (each replaced by a newcomer); 0: no churn.
    churn_per_sec: f64,
    pub counters: Counters,
    pub probes: Probes,
    /// How long each joined node took to hold K live nodes.
    pub boot_times: Vec<Duration>,
}

impl Net {
    /// A network of `seeds` nodes that know each other, at time 0.
    pub fn new(seeds: usize, links: Links, seed: u64) -> Net {
        let mut net = Net {
            base: Instant::now(),
            now: Duration::ZERO,
            rng: fastrand::Rng::with_seed(seed),
            links,
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            seeds: Vec::new(),
            live: Vec::new(),
            live_at: HashMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            churn_per_sec: 0.0,
            counters: Counters::default(),
            probes: Probes::default(),
            boot_times: Vec::new(),
        };
        for _ in 0..seeds {
            let i = net.spawn(Vec::new());
            net.seeds.push(net.addr_of(i));
        }
        for i in 0..seeds {
            for j in 0..seeds {
                if i != j {
                    let (now, addr) = (net.instant(), net.seeds[j]);
                    net.node(i).add_node(now, addr);
                }
            }
            net.flush(i, None, false);
        }
        net
    }

    /// The virtual time as an `Instant`.
    pub fn instant(&self) -> Instant {
        self.base + self.now
    }

    /// A new node bootstrapping from the seeds; its index.
    pub fn join(&mut self) -> usize {
        let i = self.spawn(self.seeds.clone());
        self.live_at.insert(i, self.live.len());
        self.live.push(i);
        self.counters.joined += 1;
        i
    }

    /// From now on, `per_minute` of the nodes (a fraction) leave each minute, each
    /// replaced at once by a newcomer.
    pub fn start_churn(&mut self, per_minute: f64) {
        self.churn_per_sec = per_minute * self.live.len() as f64 / 60.0;
        if self.churn_per_sec > 0.0 {
            let next = self.next_leave();
            self.schedule(next, Action::Leave);
        }
    }

    /// Live nodes that are not seeds.
    pub fn live(&self) -> &[usize] {
        &self.live
    }

    /// Joined nodes whose table still holds fewer than K live nodes.
    pub fn booting(&self) -> usize {
        self.live
            .iter()
            .filter(|&&i| self.nodes[i].as_ref().is_some_and(|s| s.booting.is_some()))
            .count()
    }

    pub fn is_live(&self, addr: SocketAddr) -> bool {
        self.by_addr.contains_key(&addr)
    }

    pub fn addr_of(&self, i: usize) -> SocketAddr {
        self.nodes[i].as_ref().expect("a live node").addr
    }

    /// The live node `i`.
    pub fn node(&mut self, i: usize) -> &mut Dht {
        &mut self.nodes[i].as_mut().expect("a live node").dht
    }

    /// Runs `f` on live node `i` at the current time, then sends what it sent.
    pub fn with_node(&mut self, i: usize, f: impl FnOnce(&mut Dht, Instant)) {
        let now = self.instant();
        f(self.node(i), now);
        self.flush(i, None, false);
    }

    /// Runs everything due up to `until`, which becomes the time.
    pub fn run_until(&mut self, until: Duration) {
        while self.heap.peek().is_some_and(|s| s.at <= until) {
            let Scheduled { at, action, .. } = self.heap.pop().expect("peeked");
            self.now = at;
            match action {
                Action::Deliver { to, from, bytes } => self.deliver(to, from, &bytes),
                Action::Wake { node } => self.wake(node, at),
                Action::Leave => {
                    self.leave();
                    let next = self.next_leave();
                    self.schedule(next, Action::Leave);
                }
            }
        }
        self.now = self.now.max(until);
    }

    fn spawn(&mut self, bootstrap: Vec<SocketAddr>) -> usize {
        let i = self.nodes.len();
        let addr = address(i);
        let bootstrap_empty = bootstrap.is_empty();
        let config = DhtConfig {
            bootstrap,
            seed: self.rng.u64(..),
            ..DhtConfig::default()
        };
        let dht = Dht::with_id(self.instant(), NodeId::random(&mut self.rng), config);
        self.nodes.push(Some(Slot {
            dht,
            addr,
            wake: None,
            booting: (!bootstrap_empty).then_some(self.now),
        }));
        self.by_addr.insert(addr, i);
        self.flush(i, None, false);
        i
    }

    fn leave(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let i = self.live[self.rng.usize(..self.live.len())];
        let pos = self.live_at.remove(&i).expect("listed");
        self.live.swap_remove(pos);
        if let Some(&moved) = self.live.get(pos) {
            self.live_at.insert(moved, pos);
        }
        let slot = self.nodes[i].take().expect("a live node");
        self.by_addr.remove(&slot.addr);
        self.probes.abort(i);
        self.counters.left += 1;
        self.join();
    }

    fn next_leave(&mut self) -> Duration {
        // Exponential gaps: a Poisson process of leaves.
        let gap = -(1.0 - self.rng.f64()).ln() / self.churn_per_sec;
        self.now + Duration::from_secs_f64(gap)
    }

    fn deliver(&mut self, to: SocketAddr, from: SocketAddr, bytes: &[u8]) {
        let Some(&i) = self.by_addr.get(&to) else {
            self.counters.to_departed += 1;
            return;
        };
        self.counters.delivered += 1;
        let now = self.instant();
        self.probes.before(i, from, bytes);
        self.node(i).handle_datagram(now, from, bytes);
        // Keys are in byte order and `y` comes last: a query ends so.
        let query = bytes.ends_with(b"1:y1:qe");
        self.counters.queries += u64::from(query);
        self.flush(i, query.then_some(from), false);
    }

    fn wake(&mut self, i: usize, at: Duration) {
        match &mut self.nodes[i] {
            Some(slot) if slot.wake == Some(at) => slot.wake = None,
            _ => return,
        }
        self.counters.wakes += 1;
        let now = self.instant();
        self.probes.before_timeout(i);
        self.node(i).handle_timeout(now);
        self.flush(i, None, true);
    }

    /// Sends node `i`'s datagrams, hands its events to the probes and schedules its next
    /// wake-up. `query_from`: the node was just given a query from there; `woken`: it
    /// was just given `handle_timeout`.
    fn flush(&mut self, i: usize, query_from: Option<SocketAddr>, woken: bool) {
        let now = self.now;
        let mut answered = false;
        loop {
            let slot = self.nodes[i].as_mut().expect("a live node");
            let Some((to, bytes)) = slot.dht.poll_transmit() else {
                break;
            };
            let from = slot.addr;
            answered |= query_from == Some(to);
            self.counters.sent += 1;
            self.probes.on_send(i, to, &bytes, now);
            if self.rng.f64() < self.links.loss {
                self.counters.lost += 1;
                continue;
            }
            let (min, max) = self.links.latency;
            let latency = min + (max - min).mul_f64(self.rng.f64());
            self.schedule(now + latency, Action::Deliver { to, from, bytes });
        }
        if query_from.is_some() && !answered {
            self.counters.unanswered += 1;
        }
        while let Some(event) = self.node(i).poll_event() {
            self.on_event(i, event);
        }
        self.probes.after(i);
        let slot = self.nodes[i].as_mut().expect("a live node");
        if let Some(joined) = slot.booting {
            if slot.dht.routing().len() >= K {
                slot.booting = None;
                self.boot_times.push(now - joined);
            }
        }
        let at = self.node(i).poll_timeout().map(|t| t - self.base);
        let slot = self.nodes[i].as_mut().expect("a live node");
        let Some(mut at) = at else {
            slot.wake = None;
            return;
        };
        if at <= now && woken {
            // The node asks again for a time it was just given: it would spin.
            self.counters.wakes_in_past += 1;
            at = now + Duration::from_millis(1);
        }
        let at = at.max(now);
        if slot.wake != Some(at) {
            slot.wake = Some(at);
            self.schedule(at, Action::Wake { node: i });
        }
    }

    fn on_event(&mut self, i: usize, event: DhtEvent) {
        let now = self.now;
        self.probes.on_event(i, &event, now);
    }

    fn schedule(&mut self, at: Duration, action: Action) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            action,
        });
    }
}
