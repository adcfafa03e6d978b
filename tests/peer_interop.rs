//! Our peer engine against the real clients on a private network of namespaces
//! (tests/support/netns.rs): our tracker runs on host 1, the seeder on host 2 and the
//! downloader on host 3, and they find each other only through the tracker. Our `seed` and
//! `download` meet Transmission 3.00, aria2 and libtorrent in both directions, each on three
//! torrents: a multi-file one (odd file sizes, an empty file, a file in a subfolder, 48 KiB
//! pieces, a short last piece), a single-file one (80 KiB pieces, a short last piece), and
//! a 64 MiB one (256 KiB pieces), big enough to show a transfer that stalls. The
//! downloaded bytes must equal the originals, and our log must show no protocol violation
//! by the other client. Downloading from Transmission and libtorrent, ours must also
//! negotiate the fast extension (BEP 6) and hear their "have all".
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
use fixture::{create_torrent, info_hash, network_for, Dataset, Scratch, Shape};

// --- ours seeds, they download -------------------------------------------------------

#[test]
fn ours_seeds_multi_file_to_transmission() {
    exchange(Client::Ours, Client::Transmission, Shape::Multi);
}

#[test]
fn ours_seeds_single_file_to_transmission() {
    exchange(Client::Ours, Client::Transmission, Shape::Single);
}

#[test]
fn ours_seeds_multi_file_to_aria2() {
    exchange(Client::Ours, Client::Aria2, Shape::Multi);
}

#[test]
fn ours_seeds_single_file_to_aria2() {
    exchange(Client::Ours, Client::Aria2, Shape::Single);
}

#[test]
fn ours_seeds_multi_file_to_libtorrent() {
    exchange(Client::Ours, Client::Libtorrent, Shape::Multi);
}

#[test]
fn ours_seeds_single_file_to_libtorrent() {
    exchange(Client::Ours, Client::Libtorrent, Shape::Single);
}

#[test]
fn ours_seeds_64_mib_to_transmission() {
    exchange(Client::Ours, Client::Transmission, Shape::Large);
}

#[test]
fn ours_seeds_64_mib_to_aria2() {
    exchange(Client::Ours, Client::Aria2, Shape::Large);
}

#[test]
fn ours_seeds_64_mib_to_libtorrent() {
    exchange(Client::Ours, Client::Libtorrent, Shape::Large);
}

// --- they seed, ours downloads -------------------------------------------------------

#[test]
fn transmission_seeds_64_mib_to_ours() {
    exchange(Client::Transmission, Client::Ours, Shape::Large);
}

#[test]
fn aria2_seeds_64_mib_to_ours() {
    exchange(Client::Aria2, Client::Ours, Shape::Large);
}

#[test]
fn libtorrent_seeds_64_mib_to_ours() {
    exchange(Client::Libtorrent, Client::Ours, Shape::Large);
}

#[test]
fn transmission_seeds_multi_file_to_ours() {
    exchange(Client::Transmission, Client::Ours, Shape::Multi);
}

#[test]
fn transmission_seeds_single_file_to_ours() {
    exchange(Client::Transmission, Client::Ours, Shape::Single);
}

#[test]
fn aria2_seeds_multi_file_to_ours() {
    exchange(Client::Aria2, Client::Ours, Shape::Multi);
}

#[test]
fn aria2_seeds_single_file_to_ours() {
    exchange(Client::Aria2, Client::Ours, Shape::Single);
}

#[test]
fn libtorrent_seeds_multi_file_to_ours() {
    exchange(Client::Libtorrent, Client::Ours, Shape::Multi);
}

#[test]
fn libtorrent_seeds_single_file_to_ours() {
    exchange(Client::Libtorrent, Client::Ours, Shape::Single);
}

// --- the fast extension (BEP 6) --------------------------------------------------------

#[test]
fn fast_extension_with_a_transmission_seed() {
    fast_extension_with(Client::Transmission);
}

#[test]
fn fast_extension_with_a_libtorrent_seed() {
    fast_extension_with(Client::Libtorrent);
}

/// Ours downloads from `seeder`: the fast extension is negotiated (both handshakes set the
/// bit) and the seed says "have all" instead of a bitfield, as our `--json` summary counts.
fn fast_extension_with(seeder: Client) {
    let Some(summary) = exchange(seeder, Client::Ours, Shape::Single) else {
        return;
    };
    let stats = &summary["torrents"][0]["stats"];
    let count = |key: &str| stats[key].as_u64().unwrap_or(0);
    assert!(
        count("fast_peers") >= 1 && count("have_all_received") >= 1,
        "{seeder:?} and ours did not use the fast extension: {stats}"
    );
}

/// `seeder` on host 2 has the data; `leecher` on host 3 downloads it; both learn of each
/// other from our tracker on host 1. Returns our `--json` summary when ours downloads
/// (`None` when skipped or another client downloads).
fn exchange(seeder: Client, leecher: Client, shape: Shape) -> Option<serde_json::Value> {
    let net = network_for(&[seeder, leecher], 3)?;
    let scratch = Scratch::new();
    let data = Dataset::new(shape);
    let seed_dir = scratch.0.join("seed");
    data.write(&seed_dir);
    let torrent = scratch.0.join(format!("{}.torrent", data.name));
    let announce = format!("http://{}:{TRACKER_PORT}/announce", net.addr(TRACKER));
    create_torrent(&data, &seed_dir, Some(&announce), &torrent);
    let info_hash = info_hash(&torrent);

    let mut run = Run::new(&net, &scratch.0, &torrent);
    run.start_tracker();
    run.start_seeder(seeder, &seed_dir);
    run.wait_until("the tracker to list the seeder as complete", READY, |run| {
        run.scrape_complete(&info_hash).filter(|&n| n > 0)
    });
    let dl_dir = scratch.0.join("download");
    std::fs::create_dir_all(&dl_dir).unwrap();
    // Transmission 3.00 never creates zero-length files (transmission/transmission#417,
    // fixed in 4.x); the others must.
    let transmission = leecher == Client::Transmission;
    let summary = run.download(leecher, &dl_dir, data.total(), || {
        data.compare(&dl_dir, transmission).is_ok()
    });
    if let Err(e) = data.compare(&dl_dir, transmission) {
        run.fail(&format!("{leecher:?} downloaded wrong data: {e}"));
    }
    run.check_our_log();
    summary
}
