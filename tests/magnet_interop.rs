//! Standard clients download from our seeder given only a magnet link: they fetch the info
//! dictionary from it (BEP 9 over BEP 10), then the data. The namespace network of
//! peer_interop.rs: the link, printed by `battorrent magnet`, names our tracker on host 1
//! (`tr=`); ours seeds on host 2; Transmission 3.00, aria2 or libtorrent downloads on host
//! 3. The torrent is 64 MiB in 40 files and 4,096 pieces of 16 KiB, so its info dictionary
//! (82 KiB) comes in six metadata pieces. The downloaded bytes must equal the originals,
//! and our log must show no protocol violation by the other client.
//!
//! Needs root, iproute2, transmission-cli, aria2 and python3-libtorrent (see .ci/run);
//! with BATTORRENT_SKIP_INTEROP=1 a test whose requirements are missing is skipped.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/netns.rs"]
mod netns;

use clients::{Client, Run, READY, TRACKER, TRACKER_PORT};
use fixture::{info_hash, magnet, network_for, tracked_set, Scratch};
use std::time::Instant;

#[test]
fn transmission_downloads_a_magnet_link_seeded_by_ours() {
    magnet_from_ours(Client::Transmission);
}

/// aria2 announces `left=0` until it has the metadata (it cannot know the size yet): a
/// tracker that takes it for a seed, and sends seeds leechers only, leaves it alone.
#[test]
fn aria2_downloads_a_magnet_link_seeded_by_ours() {
    magnet_from_ours(Client::Aria2);
}

#[test]
fn libtorrent_downloads_a_magnet_link_seeded_by_ours() {
    magnet_from_ours(Client::Libtorrent);
}

fn magnet_from_ours(leecher: Client) {
    let Some(net) = network_for(&[leecher], 3) else {
        return;
    };
    let scratch = Scratch::new();
    let (data, seed_dir, torrent) = tracked_set(&net, &scratch, TRACKER);
    let announce = format!("http://{}:{TRACKER_PORT}/announce", net.addr(TRACKER));
    let info = battorrent::metainfo::Metainfo::load(&torrent)
        .unwrap()
        .info_bytes;
    assert!(
        info.len() > 5 * 16_384,
        "the info dictionary spans six metadata pieces"
    );
    let link = magnet(&torrent);
    let parsed = url::Url::parse(&link).unwrap();
    assert!(
        parsed
            .query_pairs()
            .any(|(k, v)| k == "tr" && v == announce),
        "{link} names our tracker"
    );

    let mut run = Run::new(&net, &scratch.0, &torrent);
    run.start_tracker();
    run.start_seeder(Client::Ours, &seed_dir);
    let info_hash = info_hash(&torrent);
    run.wait_until("the tracker to list the seeder as complete", READY, |run| {
        run.scrape_complete(&info_hash).filter(|&n| n > 0)
    });
    run.use_magnet(&link);
    let dl_dir = scratch.0.join("download");
    std::fs::create_dir_all(&dl_dir).unwrap();
    let started = Instant::now();
    run.download(leecher, &dl_dir, data.total(), || {
        data.compare(&dl_dir, false).is_ok()
    });
    eprintln!(
        "{leecher:?}: magnet link to complete in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = data.compare(&dl_dir, false) {
        run.fail(&format!("{leecher:?} downloaded wrong data: {e}"));
    }
    if leecher == Client::Libtorrent {
        let said = format!("metadata: {} bytes", info.len());
        if !run.log("Libtorrent-download").contains(&said) {
            run.fail(&format!("libtorrent never said \"{said}\""));
        }
    }
    run.check_our_log();
}
