//! A test DHT of a dozen nodes, ours and libtorrent's, on the namespace network: the
//! bootstrap node (`battorrent dht`, host 1), four more of our nodes (host 3), six
//! python3-libtorrent sessions (host 4, tests/support/lt_dht_swarm.py: public routers off,
//! many nodes per IP allowed) and, once they have all joined, ours seeding a trackerless
//! 64 MiB torrent (host 2). One libtorrent session, introduced to another libtorrent
//! session only, looks the info hash up with `dht_get_peers`: its answer
//! (`dht_get_peers_reply_alert`) must hold our seed's address and port, and the libtorrent
//! nodes must have stored our seed's announce (so libtorrent took our `announce_peer` and
//! its token) without refusing one.
//!
//! Needs root, iproute2 and python3-libtorrent (see .ci/run); with
//! BATTORRENT_SKIP_INTEROP=1 a test whose requirements are missing is skipped.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/netns.rs"]
mod netns;

use clients::{Client, Run, READY, SEEDER};
use fixture::{create_torrent, info_hash, network_for, Dataset, Scratch, Shape};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Our nodes besides the bootstrap node and the seed.
const OUR_NODES: u16 = 4;
/// libtorrent's nodes, the asker among them.
const LT_NODES: usize = 6;
/// Time for the seed to check its data and announce, and the asker to find it.
const FIND: Duration = Duration::from_secs(60);

#[test]
fn libtorrent_finds_our_seed_in_a_dht_of_a_dozen_nodes() {
    let Some(net) = network_for(&[Client::Libtorrent], 4) else {
        return;
    };
    let scratch = Scratch::new();
    let data = Dataset::new(Shape::Large);
    let seed_dir = scratch.0.join("seed");
    data.write(&seed_dir);
    let torrent = scratch.0.join("large.torrent");
    create_torrent(&data, &seed_dir, None, &torrent);
    let hash = info_hash(&torrent);

    let mut run = Run::new(&net, &scratch.0, &torrent);
    let bootstrap = run.start_dht_nodes("Ours-bootstrap", 1, 6881..6882, None)[0];
    run.start_dht_nodes("Ours-node", 3, 6881..6881 + OUR_NODES, Some(bootstrap));
    run.use_dht(&[bootstrap]);
    let seed = SocketAddr::from((net.addr(SEEDER), 6881));
    run.start_lt_dht_swarm("libtorrent", 4, LT_NODES, &hash, seed, FIND);
    run.wait_until("the libtorrent nodes to join", READY, |run| {
        run.lt_report("libtorrent")
            .filter(|r| r.get("ready").is_some())
    });

    let started = Instant::now();
    run.start_seeder(Client::Ours, &seed_dir);
    let report = run.wait_until("libtorrent's lookups to end", FIND, |run| {
        run.lt_report("libtorrent")
            .filter(|r| r.get("found").is_some())
    });
    eprintln!(
        "libtorrent's lookups ended {:.1} s after our seed started: {report}",
        started.elapsed().as_secs_f64()
    );
    let out = std::fs::read_to_string(scratch.0.join("libtorrent.out")).unwrap_or_default();
    let answered = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|r| {
            r["peers"]
                .as_array()
                .is_some_and(|peers| peers.iter().any(|p| p == &seed.to_string()))
        });
    if !answered {
        run.fail(&format!(
            "no dht_get_peers answer holds our seed {seed}:\n{out}"
        ));
    }
    if report["stored"].as_u64().unwrap_or(0) == 0 || report["invalid"] != 0 {
        run.fail(&format!(
            "the libtorrent nodes should hold our seed's announce and have refused none: {report}"
        ));
    }
    run.check_our_log();
}
