//! Ours downloads from a magnet link: the info dictionary from a real client's seed (BEP 9
//! over BEP 10), then the data. The namespace network of peer_interop.rs: our tracker on
//! host 1, Transmission 3.00, aria2 or libtorrent seeding on host 2, ours downloading on
//! host 3 with `battorrent download MAGNET --dir DIR --json`. The torrent is set/ (64 MiB in
//! 40 files, 4,096 pieces of 16 KiB: an 82 KiB info dictionary in six metadata pieces).
//! Ours finds the Transmission and aria2 seeds through the link's `tr=` (our tracker) and
//! the libtorrent seed through its `x.pe=` alone (no `tr=`), so both ways are covered. The
//! downloaded bytes must equal the originals, the .torrent ours saves (DIR/set.torrent)
//! must hold an info dictionary byte-identical to the original's, and our log must show
//! no protocol violation by the other client.
//!
//! Needs root, iproute2, transmission-cli, aria2 and python3-libtorrent (see .ci/run);
//! with BATTORRENT_SKIP_INTEROP=1 a test whose requirements are missing is skipped.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/netns.rs"]
mod netns;

use battorrent::metainfo::Metainfo;
use clients::{Client, Run, READY, SEEDER, TRACKER};
use fixture::{info_hash, magnet, network_for, tracked_set, Scratch};
use std::time::Instant;

#[test]
fn ours_downloads_a_magnet_link_from_transmission() {
    magnet_to_ours(Client::Transmission);
}

#[test]
fn ours_downloads_a_magnet_link_from_aria2() {
    magnet_to_ours(Client::Aria2);
}

#[test]
fn ours_downloads_a_magnet_link_from_libtorrent() {
    magnet_to_ours(Client::Libtorrent);
}

fn magnet_to_ours(seeder: Client) {
    let Some(net) = network_for(&[seeder], 3) else {
        return;
    };
    let scratch = Scratch::new();
    let (data, seed_dir, torrent) = tracked_set(&net, &scratch, TRACKER);
    let original = Metainfo::load(&torrent).unwrap().info_bytes;
    let link = match seeder {
        Client::Libtorrent => format!(
            "magnet:?xt=urn:btih:{}&dn=set&x.pe={}:6881",
            hex(&info_hash(&torrent)),
            net.addr(SEEDER)
        ),
        _ => magnet(&torrent),
    };

    let mut run = Run::new(&net, &scratch.0, &torrent);
    run.start_tracker();
    run.start_seeder(seeder, &seed_dir);
    let info_hash = info_hash(&torrent);
    run.wait_until("the tracker to list the seeder as complete", READY, |run| {
        run.scrape_complete(&info_hash).filter(|&n| n > 0)
    });
    run.use_magnet(&link);
    let dl_dir = scratch.0.join("download");
    std::fs::create_dir_all(&dl_dir).unwrap();
    let started = Instant::now();
    run.download(Client::Ours, &dl_dir, data.total(), || false);
    eprintln!(
        "ours from {seeder:?}: magnet link to complete in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = data.compare(&dl_dir, false) {
        run.fail(&format!("ours downloaded wrong data from {seeder:?}: {e}"));
    }
    let saved = dl_dir.join("set.torrent");
    match Metainfo::load(&saved) {
        Ok(meta) if *meta.info_bytes == *original => {}
        Ok(_) => run.fail(&format!(
            "{}: the info dictionary differs from the original",
            saved.display()
        )),
        Err(e) => run.fail(&format!("{}: {e}", saved.display())),
    }
    run.check_our_log();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
