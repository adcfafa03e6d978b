//! The DHT with real clients on the namespace network, no tracker anywhere: a trackerless
//! torrent's seed is found through the DHT alone by a downloader given its bare magnet link
//! (`magnet:?xt=urn:btih:HASH`, nothing else). Host 1 runs `battorrent dht` as the bootstrap
//! node, and every client joins through our nodes only (libtorrent's public routers turned
//! off, aria2's entry point and Transmission's dht.bootstrap file naming ours; the network
//! reaches nothing else). Seeds on host 2, downloaders on host 3, further `battorrent dht`
//! nodes on host 4. 64 MiB (large.bin), bytes compared, and our logs must show no protocol
//! violation.
//!
//! Needs root, iproute2, transmission-cli, aria2 and python3-libtorrent (see .ci/run); with
//! BATTORRENT_SKIP_INTEROP=1 a test whose requirements are missing is skipped.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/netns.rs"]
mod netns;

use clients::{Client, Run};
use fixture::{create_torrent, info_hash, network_for, Dataset, Scratch, Shape};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

/// The host of the extra DHT nodes.
const NODES_HOST: usize = 4;

#[test]
fn ours_downloads_a_bare_magnet_link_seeded_by_libtorrent_through_the_dht() {
    bare_magnet(Client::Libtorrent, Client::Ours, 0);
}

#[test]
fn libtorrent_downloads_a_bare_magnet_link_seeded_by_ours_through_the_dht() {
    bare_magnet(Client::Ours, Client::Libtorrent, 0);
}

/// Transmission 3.00 starts a lookup only once its table holds 4 nodes that answered it and
/// 9 in all, so the network has 14 besides it: the bootstrap node, the seed and 12 more.
#[test]
fn transmission_downloads_a_bare_magnet_link_seeded_by_ours_through_the_dht() {
    bare_magnet(Client::Ours, Client::Transmission, 12);
}

#[test]
fn aria2_downloads_a_bare_magnet_link_seeded_by_ours_through_the_dht() {
    bare_magnet(Client::Ours, Client::Aria2, 4);
}

/// `seeder` seeds large.bin from a trackerless torrent, and `downloader` gets it from the
/// bare magnet link, both joining the DHT through the bootstrap node and `extra` more of
/// our nodes.
fn bare_magnet(seeder: Client, downloader: Client, extra: u16) {
    let Some(net) = network_for(&[seeder, downloader], 4) else {
        return;
    };
    let scratch = Scratch::new();
    let (data, torrent, link) = trackerless(&scratch);
    let mut run = Run::new(&net, &scratch.0, &torrent);
    let nodes = start_nodes(&mut run, extra);
    run.use_dht(&nodes);
    run.start_seeder(seeder, &scratch.0.join("seed"));
    run.use_magnet(&link);
    let dir = scratch.0.join("get");
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    run.download(downloader, &dir, data.total(), || {
        data.compare(&dir, false).is_ok()
    });
    eprintln!(
        "{downloader:?} from {seeder:?}, found through the DHT: bare magnet link to complete in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = data.compare(&dir, false) {
        run.fail(&format!("{downloader:?} downloaded wrong data: {e}"));
    }
    run.check_our_log();
}

/// The bootstrap node on host 1 (port 6881) and `extra` nodes joining through it on
/// NODES_HOST (ports 6881, 6882, ...); returns their addresses, the bootstrap node's first.
fn start_nodes(run: &mut Run, extra: u16) -> Vec<SocketAddr> {
    let mut nodes = run.start_dht_nodes("Ours-bootstrap", 1, 6881..6882, None);
    let bootstrap = Some(nodes[0]);
    nodes.extend(run.start_dht_nodes("Ours-node", NODES_HOST, 6881..6881 + extra, bootstrap));
    nodes
}

/// The 64 MiB data set written under `SCRATCH/seed`, a trackerless torrent of it and its
/// bare magnet link.
fn trackerless(scratch: &Scratch) -> (Dataset, PathBuf, String) {
    let data = Dataset::new(Shape::Large);
    data.write(&scratch.0.join("seed"));
    let torrent = scratch.0.join("large.torrent");
    create_torrent(&data, &scratch.0.join("seed"), None, &torrent);
    let link = format!("magnet:?xt=urn:btih:{}", hex(&info_hash(&torrent)));
    (data, torrent, link)
}

fn hex(bytes: &[u8; 20]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
