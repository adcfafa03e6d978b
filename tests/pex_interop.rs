//! Peer exchange (BEP 11, ut_pex) between ours and libtorrent on the namespace network of
//! peer_interop.rs, with no tracker: every peer is told one address, and the only way to
//! the third peer is what PEX says. Each observable is a connection a real client reports
//! (tests/support/lt_peer.py prints libtorrent's peer list), and the peer that must not find
//! the other by itself runs without ut_pex, so the connection can only come from PEX.
//! 64 MiB (large.bin), uploads capped at 1 MiB/s so no one completes (and stops
//! connecting) before PEX has done its work.
//!
//! Needs root, iproute2 and python3-libtorrent (see .ci/run); with
//! BATTORRENT_SKIP_INTEROP=1 a test whose requirements are missing is skipped.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/netns.rs"]
mod netns;

use clients::{Client, Run, READY};
use fixture::{create_torrent, network_for, Dataset, Scratch, Shape};
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// libtorrent sends its first PEX message within a minute of the extension handshake, ours
/// at once; then a dial and a handshake.
const LEARN: Duration = Duration::from_secs(120);
/// Each seed's upload cap, bytes per second.
const UPLOAD_LIMIT: u64 = 1 << 20;

/// Ours is told only of a libtorrent seed L1 (host 2), to which libtorrent peer L2 (host 3,
/// without ut_pex) is connected; L1's PEX names L2, and L2 must see a connection from ours.
#[test]
fn ours_connects_to_a_peer_it_learns_from_libtorrent_pex() {
    let Some(net) = network_for(&[Client::Libtorrent], 4) else {
        return;
    };
    let (scratch, data) = (Scratch::new(), Dataset::new(Shape::Large));
    let torrent = trackerless_torrent(&scratch, &data);
    let [l1, us] = [2, 4].map(|h| net.addr(h));
    let mut run = Run::new(&net, &scratch.0, &torrent);

    let limit = format!("--upload-limit={UPLOAD_LIMIT}");
    run.start_lt_peer("L1", 2, &scratch.0.join("seed"), &[limit]);
    run.wait_until("L1 to seed", READY, |run| {
        run.lt_report("L1").filter(|r| r["seeding"] == true)
    });
    let empty = empty_dir(&scratch, "l2");
    run.start_lt_peer(
        "L2",
        3,
        &empty,
        &[format!("--peer={l1}:6881"), "--no-pex".into()],
    );
    run.wait_until("L2 to connect to L1", READY, |run| peer(run, "L2", l1));

    let dir = empty_dir(&scratch, "ours");
    let args: Vec<OsString> = vec![
        "download".into(),
        "--no-dht".into(),
        torrent.clone().into(),
        "--dir".into(),
        dir.into(),
        "--port=6881".into(),
        format!("--bind={us}").into(),
        format!("--peer={l1}:6881").into(),
        "--no-trackers".into(),
    ];
    run.start_ours("Ours-download", 4, &args, false);
    let started = Instant::now();
    let seen = run.wait_until("L2 to see a connection from ours", LEARN, |run| {
        peer(run, "L2", us)
    });
    eprintln!(
        "ours reached L2 {:.1} s after it started",
        started.elapsed().as_secs_f64()
    );
    if seen["outgoing"] != false {
        run.fail(&format!("L2 dialled ours, not ours L2: {seen}"));
    }
    run.check_our_log();
}

/// Ours seeds (host 2); libtorrent peer T (host 4, without ut_pex) connects to it, then
/// libtorrent L1 (host 3) does; ours' PEX names T to L1, and L1 must dial T, saying it has
/// T's address from PEX.
#[test]
fn libtorrent_connects_to_a_peer_it_learns_from_our_pex() {
    let Some(net) = network_for(&[Client::Libtorrent], 4) else {
        return;
    };
    let (scratch, data) = (Scratch::new(), Dataset::new(Shape::Large));
    let torrent = trackerless_torrent(&scratch, &data);
    let [seed, t] = [2, 4].map(|h| net.addr(h));
    let mut run = Run::new(&net, &scratch.0, &torrent);

    let args: Vec<OsString> = vec![
        "seed".into(),
        "--no-dht".into(),
        torrent.clone().into(),
        "--dir".into(),
        scratch.0.join("seed").into(),
        "--port=6881".into(),
        format!("--bind={seed}").into(),
        "--no-trackers".into(),
        format!("--upload-limit={UPLOAD_LIMIT}").into(),
    ];
    run.start_ours("Ours-seed", 2, &args, false);
    run.wait_listening("ours", 2, 6881);
    let to_ours = format!("--peer={seed}:6881");
    let empty = empty_dir(&scratch, "t");
    run.start_lt_peer("T", 4, &empty, &[to_ours.clone(), "--no-pex".into()]);
    run.wait_until("T to connect to ours", READY, |run| peer(run, "T", seed));

    let empty = empty_dir(&scratch, "l1");
    run.start_lt_peer("L1", 3, &empty, &[to_ours]);
    let started = Instant::now();
    let seen = run.wait_until("L1 to connect to T", LEARN, |run| peer(run, "L1", t));
    eprintln!(
        "L1 reached T {:.1} s after it started",
        started.elapsed().as_secs_f64()
    );
    if seen["outgoing"] != true || seen["pex"] != true {
        run.fail(&format!("L1 did not dial T from a PEX address: {seen}"));
    }
    run.check_our_log();
}

/// `data` under SCRATCH/seed and a torrent of it with no tracker.
fn trackerless_torrent(scratch: &Scratch, data: &Dataset) -> std::path::PathBuf {
    let seed_dir = scratch.0.join("seed");
    data.write(&seed_dir);
    let torrent = scratch.0.join(format!("{}.torrent", data.name));
    create_torrent(data, &seed_dir, None, &torrent);
    torrent
}

fn empty_dir(scratch: &Scratch, name: &str) -> std::path::PathBuf {
    let dir = scratch.0.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The peer at `ip` in lt_peer.py `name`'s last report, if it is connected.
fn peer(run: &mut Run, name: &str, ip: Ipv4Addr) -> Option<serde_json::Value> {
    let report = run.lt_report(name)?;
    let peers = report["peers"].as_array()?;
    peers
        .iter()
        .find(|p| p["ip"] == ip.to_string().as_str())
        .cloned()
}
