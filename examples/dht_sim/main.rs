//! The DHT node at scale: thousands of sans-IO nodes in one process, a virtual clock,
//! latency, loss and churn (issue 14, "Toward internet scale").
//!
//! For each size: seed nodes start; the others join over `--join-secs`, staggered, each
//! bootstrapping from the seeds; a warm-up of `--warmup-mins` lets the tables fill (churn,
//! if asked, runs from then on); the routing tables' health is taken. Then `--hashes`
//! random nodes announce themselves as peers of random info hashes, and `--lookups`
//! get_peers lookups start from random other nodes, one every `--gap-ms`, each for one of
//! the hashes whose announce went out. Per lookup: rounds (the node's `LookupStats`), round trips along
//! the critical path (computed from the datagrams, see `probe.rs`), queries sent, answers,
//! whether the announced peer was found, the simulated time to the end of the lookup and
//! to the peer. Medians and 95th percentiles, the process's peak RSS and the wall time of
//! each size are printed, then one table of all sizes.
//!
//! Run: cargo run --release --example dht_sim -- --nodes 10000 --lookups 500 --seed 1
//!      [--sizes 1000,3000,10000] [--loss 0.02] [--churn 0.01] [--latency-ms 10,150]

mod net;
mod probe;

use battorrent::core::InfoHash;
use battorrent::dht::{NodeId, K};
use clap::Parser;
use net::{Links, Net};
use probe::{Kind, Probe};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(about = "Simulates a Mainline DHT of thousands of our nodes in one process")]
struct Args {
    /// Nodes in the network, seeds included (ignored with --sizes).
    #[arg(long, default_value_t = 10_000)]
    nodes: usize,
    /// Several sizes, one after the other, e.g. 1000,3000,10000.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Lookups measured per size.
    #[arg(long, default_value_t = 500)]
    lookups: usize,
    /// Info hashes announced (each by one random node) and looked up.
    #[arg(long, default_value_t = 50)]
    hashes: usize,
    /// Seed of everything random (ids, latencies, losses, choices).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Probability that a datagram is lost.
    #[arg(long, default_value_t = 0.01)]
    loss: f64,
    /// Fraction of the nodes that leave each minute (each replaced by a newcomer), from
    /// the end of the join through the measurement; 0: none.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// One-way latency range in milliseconds, drawn uniformly per datagram.
    #[arg(long, value_delimiter = ',', num_args = 1, default_value = "10,150")]
    latency_ms: Vec<u64>,
    /// Seed nodes: every other node's bootstrap routers.
    #[arg(long, default_value_t = 4)]
    seeds: usize,
    /// Simulated seconds over which the nodes join.
    #[arg(long, default_value_t = 120)]
    join_secs: u64,
    /// Simulated minutes between the end of the join and the announces.
    #[arg(long, default_value_t = 20)]
    warmup_mins: u64,
    /// Simulated milliseconds between the starts of two measured lookups.
    #[arg(long, default_value_t = 100)]
    gap_ms: u64,
}

/// The port the announcing nodes give as their peer port.
const PEER_PORT: u16 = 51413;

fn main() {
    let args = Args::parse();
    assert!(
        args.latency_ms.len() == 2 && args.latency_ms[0] <= args.latency_ms[1],
        "--latency-ms MIN,MAX"
    );
    let sizes = if args.sizes.is_empty() {
        vec![args.nodes]
    } else {
        args.sizes.clone()
    };
    println!(
        "latency {}-{} ms one way, loss {}, churn {}/min, {} seeds, join {} s, warm-up {} min, \
         {} hashes, {} lookups, seed {}",
        args.latency_ms[0],
        args.latency_ms[1],
        args.loss,
        args.churn,
        args.seeds,
        args.join_secs,
        args.warmup_mins,
        args.hashes,
        args.lookups,
        args.seed
    );
    let rows: Vec<Row> = sizes.iter().map(|&n| run(n, &args)).collect();
    print_table(&rows);
}

/// One size's results.
struct Row {
    nodes: usize,
    health: Health,
    lookups: Summary,
    announces: Summary,
    peak_rss_mib: f64,
    wall: Duration,
}

fn run(size: usize, args: &Args) -> Row {
    assert!(size > args.seeds + 2, "more nodes than seeds, please");
    reset_peak_rss();
    let wall = Instant::now();
    let links = Links {
        latency: (
            Duration::from_millis(args.latency_ms[0]),
            Duration::from_millis(args.latency_ms[1]),
        ),
        loss: args.loss,
    };
    let mut net = Net::new(args.seeds, links, args.seed);
    let joiners = size - args.seeds;
    let join = Duration::from_secs(args.join_secs);
    for k in 0..joiners {
        net.run_until(join.mul_f64(k as f64 / joiners as f64));
        net.join();
    }
    net.run_until(join);
    net.start_churn(args.churn);
    net.run_until(join + Duration::from_secs(args.warmup_mins * 60));
    let joined_in = wall.elapsed();
    let before = net.counters;
    let health = health(&mut net);

    // Announces: each from a random node, for a random info hash.
    let mut hashes: Vec<(InfoHash, usize)> = Vec::new();
    for _ in 0..args.hashes {
        let origin = pick(&mut net, |_| true);
        let mut hash = [0u8; 20];
        net.rng.fill(&mut hash);
        let hash = InfoHash(hash);
        hashes.push((hash, origin));
        let now = net.now;
        net.probes.start(Kind::Announce, origin, hash, None, now);
        net.with_node(origin, |d, now| d.get_peers(now, hash, Some(PEER_PORT)));
    }
    net.run_until(net.now + Duration::from_secs(60));
    // Only hashes stored somewhere are looked up (an announcer may leave before its
    // announce went out).
    let stored = |net: &Net, hash: InfoHash| {
        net.probes.list.iter().any(|p| {
            p.kind == Kind::Announce && p.hash == hash && p.done.is_some_and(|d| d.announced > 0)
        })
    };
    let hashes: Vec<(InfoHash, usize)> = hashes
        .into_iter()
        .filter(|&(hash, _)| stored(&net, hash))
        .collect();
    assert!(!hashes.is_empty(), "no announce went out");

    // Lookups, staggered, for the announced hashes from other nodes.
    let start = net.now;
    let gap = Duration::from_millis(args.gap_ms);
    for k in 0..args.lookups {
        net.run_until(start + gap * k as u32);
        let (hash, announcer) = hashes[net.rng.usize(..hashes.len())];
        let expect = SocketAddr::new(net::address(announcer).ip(), PEER_PORT);
        let origin = pick(&mut net, |i| i != announcer);
        let now = net.now;
        net.probes
            .start(Kind::Lookup, origin, hash, Some(expect), now);
        net.with_node(origin, |d, now| d.get_peers(now, hash, None));
    }
    let last = net.now;
    while net.probes.running() > 0 && net.now < last + Duration::from_secs(120) {
        net.run_until(net.now + Duration::from_secs(1));
    }
    let measured = net.now - join - Duration::from_secs(args.warmup_mins * 60);
    let lookups = summarize(&net.probes.list, Kind::Lookup);
    let announces = summarize(&net.probes.list, Kind::Announce);
    let row = Row {
        nodes: size,
        health,
        lookups,
        announces,
        peak_rss_mib: peak_rss_mib(),
        wall: wall.elapsed(),
    };
    print_size(&net, &row, joined_in, before, measured);
    row
}

/// A random live node (not a seed) that runs no measured lookup and passes `ok`.
fn pick(net: &mut Net, ok: impl Fn(usize) -> bool) -> usize {
    loop {
        let k = net.rng.usize(..net.live().len());
        let i = net.live()[k];
        if ok(i) && !net.probes.is_running(i) {
            return i;
        }
    }
}

/// The routing tables across the live nodes (seeds left out).
#[derive(Default)]
struct Health {
    live: f64,
    good: f64,
    questionable: f64,
    bad: f64,
    buckets: f64,
    replacements: f64,
    /// Nodes with fewer than K live entries.
    small: usize,
    /// Live entries whose node has left.
    stale: f64,
    /// Of each sampled node's K nearest live nodes, how many its table holds live.
    nearest: f64,
    /// Time from joining to K live nodes in the table, seconds.
    boot: Dist,
    /// Nodes still below K live nodes at the end of the warm-up, of all that joined.
    still_booting: usize,
}

fn health(net: &mut Net) -> Health {
    let now = net.instant();
    let live = net.live().to_vec();
    let mut h = Health::default();
    for &i in &live {
        let table = net.node(i).routing();
        let t = table.health(now);
        h.live += table.len() as f64;
        h.good += t.good as f64;
        h.questionable += t.questionable as f64;
        h.bad += t.bad as f64;
        h.buckets += t.buckets as f64;
        h.replacements += t.replacements as f64;
        h.small += usize::from(table.len() < K);
        let addrs: Vec<SocketAddr> = table.nodes().map(|n| n.addr()).collect();
        h.stale += addrs.iter().filter(|a| !net.is_live(**a)).count() as f64;
    }
    let n = live.len() as f64;
    for v in [
        &mut h.live,
        &mut h.good,
        &mut h.questionable,
        &mut h.bad,
        &mut h.buckets,
        &mut h.replacements,
        &mut h.stale,
    ] {
        *v /= n;
    }
    // The K nearest live nodes of 200 sampled nodes, by brute force.
    let ids: Vec<(NodeId, SocketAddr)> = live
        .iter()
        .map(|&i| (net.node(i).id(), net.addr_of(i)))
        .collect();
    let samples = 200.min(live.len());
    let mut held = 0usize;
    for _ in 0..samples {
        let i = live[net.rng.usize(..live.len())];
        let own = net.node(i).id();
        let mut by_distance: Vec<&(NodeId, SocketAddr)> =
            ids.iter().filter(|(id, _)| *id != own).collect();
        by_distance.select_nth_unstable_by_key(K - 1, |(id, _)| own.distance(id));
        let table = net.node(i).routing();
        held += by_distance[..K]
            .iter()
            .filter(|(_, a)| table.is_live(*a))
            .count();
    }
    h.nearest = held as f64 / samples as f64;
    h.boot = Dist(net.boot_times.iter().map(Duration::as_secs_f64).collect());
    h.still_booting = net.booting();
    h
}

/// Distributions over the lookups of one kind that ended.
#[derive(Default)]
struct Summary {
    started: usize,
    done: usize,
    aborted: usize,
    found: usize,
    announced: f64,
    rounds: Dist,
    chain: Dist,
    queries: Dist,
    answers: Dist,
    time_ms: Dist,
    first_peer_ms: Dist,
    peer_chain: Dist,
}

/// A sample: median and 95th percentile (nearest rank).
#[derive(Default)]
struct Dist(Vec<f64>);

impl Dist {
    fn at(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
    fn med(&self) -> f64 {
        self.at(0.5)
    }
    fn p95(&self) -> f64 {
        self.at(0.95)
    }
    fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len() as f64
    }
}

fn summarize(list: &[Probe], kind: Kind) -> Summary {
    let mut s = Summary::default();
    for p in list.iter().filter(|p| p.kind == kind) {
        s.started += 1;
        s.aborted += usize::from(p.aborted);
        if p.aborted {
            continue;
        }
        if let Some(t) = p.first_peer {
            s.found += 1;
            s.first_peer_ms.0.push(t.as_secs_f64() * 1e3);
        }
        if let Some(c) = p.peer_chain {
            s.peer_chain.0.push(f64::from(c));
        }
        let Some(d) = p.done else { continue };
        s.done += 1;
        s.announced += d.announced as f64;
        s.rounds.0.push(d.stats.rounds as f64);
        s.chain.0.push(f64::from(d.chain));
        s.queries.0.push(d.stats.queries as f64);
        s.answers.0.push(d.stats.answers as f64);
        s.time_ms.0.push(d.elapsed.as_secs_f64() * 1e3);
    }
    s.announced /= s.done.max(1) as f64;
    s
}

fn print_size(
    net: &Net,
    row: &Row,
    joined_in: Duration,
    before: net::Counters,
    measured: Duration,
) {
    let h = &row.health;
    let c = net.counters;
    println!("\n== {} nodes ==", row.nodes);
    println!(
        "tables after warm-up (average per node): {:.1} live ({:.1} good, {:.1} questionable, \
         {:.1} bad), {:.1} buckets, {:.1} waiting in replacement caches; {:.1} entries point \
         at nodes gone; {} nodes below {K} live; K nearest held live: {:.2} of {K}",
        h.live,
        h.good,
        h.questionable,
        h.bad,
        h.buckets,
        h.replacements,
        h.stale,
        h.small,
        h.nearest
    );
    println!(
        "joining: K live nodes reached after {:.1} s median, {:.1} s p95, {:.1} s at most; \
         {} nodes not yet",
        h.boot.med(),
        h.boot.p95(),
        h.boot.at(1.0),
        h.still_booting
    );
    let a = &row.announces;
    println!(
        "announces: {} of {} ended, announced to {:.1} nodes on average",
        a.done, a.started, a.announced
    );
    let l = &row.lookups;
    println!(
        "lookups: {} started, {} ended, {} aborted (their node left), peer found by {} ({:.1}%)",
        l.started,
        l.done,
        l.aborted,
        l.found,
        100.0 * l.found as f64 / (l.started - l.aborted).max(1) as f64
    );
    for (name, d) in [
        ("rounds (LookupStats)", &l.rounds),
        ("round trips, critical path", &l.chain),
        ("queries sent", &l.queries),
        ("answers", &l.answers),
        ("time to LookupDone, ms", &l.time_ms),
        ("time to the peer, ms", &l.first_peer_ms),
        ("round trips to the peer", &l.peer_chain),
    ] {
        println!(
            "  {name:<28} median {:>7.1}  p95 {:>7.1}  mean {:>7.2}",
            d.med(),
            d.p95(),
            d.mean()
        );
    }
    let secs = measured.as_secs_f64();
    let live = net.live().len() as f64;
    println!(
        "network: {} datagrams sent ({:.2} per node per second after warm-up), {} lost, {} to \
         nodes gone, {} of {} queries delivered unanswered (rate limits); {} joined, {} left; {} wake-ups, {} \
         asked for the past",
        c.sent,
        (c.sent - before.sent) as f64 / live / secs,
        c.lost,
        c.to_departed,
        c.unanswered,
        c.queries,
        c.joined,
        c.left,
        c.wakes,
        c.wakes_in_past
    );
    println!(
        "cost: {:.1} s wall ({:.1} s to join and warm up), peak RSS {:.0} MiB",
        row.wall.as_secs_f64(),
        joined_in.as_secs_f64(),
        row.peak_rss_mib
    );
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| nodes | found | rounds med/p95 (mean) | critical RTs med/p95 (mean) | queries med/p95 \
         | lookup ms med/p95 | to peer ms med/p95 | RTs to peer med/p95 | live/good per table | K nearest held \
         | peak RSS | wall |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let l = &r.lookups;
        println!(
            "| {} | {:.1}% | {:.0} / {:.0} ({:.2}) | {:.0} / {:.0} ({:.2}) | {:.0} / {:.0} \
             | {:.0} / {:.0} \
             | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.1} of {K} | {:.0} MiB | {:.0} s |",
            r.nodes,
            100.0 * l.found as f64 / (l.started - l.aborted).max(1) as f64,
            l.rounds.med(),
            l.rounds.p95(),
            l.rounds.mean(),
            l.chain.med(),
            l.chain.p95(),
            l.chain.mean(),
            l.queries.med(),
            l.queries.p95(),
            l.time_ms.med(),
            l.time_ms.p95(),
            l.first_peer_ms.med(),
            l.first_peer_ms.p95(),
            l.peer_chain.med(),
            l.peer_chain.p95(),
            r.health.live,
            r.health.good,
            r.health.nearest,
            r.peak_rss_mib,
            r.wall.as_secs_f64()
        );
    }
}

/// Resets the process's peak resident size (Linux: `5` to /proc/self/clear_refs), so
/// each size reports its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident size (VmHWM) in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
