//! The DHT with libtorrent on the namespace network, no tracker anywhere: libtorrent seeds
//! a trackerless torrent and ours downloads its bare magnet link, and the other way round.
//! Host 1 runs `battorrent dht` as the bootstrap node; both clients join through it only
//! (libtorrent's public routers are turned off; the network reaches nothing else).
//! 64 MiB (large.bin), bytes compared.
//!
//! Needs root, iproute2 and python3-libtorrent (see .ci/run); with
//! BATTORRENT_SKIP_INTEROP=1 a test whose requirements are missing is skipped.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/netns.rs"]
mod netns;

use clients::{Client, BIN};
use fixture::{create_torrent, info_hash, network_for, Dataset, Scratch, Shape};
use netns::Network;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Time for the whole download, bootstrap included.
const LIMIT: Duration = Duration::from_secs(150);

/// A process killed (by process id) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(format!("{name}.log"))).unwrap()
}

fn tail(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The bootstrap node on host 1.
fn bootstrap(net: &Network, dir: &Path) -> Proc {
    let bind = format!("{}:6881", net.addr(1));
    let mut cmd = net.command(1, BIN);
    cmd.args([
        "dht",
        "--bind",
        &bind,
        "--dht-any-ip",
        "--dht-bootstrap",
        "none",
    ])
    .env("RUST_LOG", "battorrent=debug")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log(dir, "bootstrap"));
    Proc(cmd.spawn().unwrap())
}

fn lt_dht(net: &Network, host: usize, dir: &Path, mode: &str, what: &str, save: &Path) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/lt_dht.py");
    let mut cmd = net.command(host, "/usr/bin/python3");
    cmd.arg(script)
        .args([mode, what])
        .arg(save)
        .arg(net.addr(host).to_string())
        .arg(LIMIT.as_secs().to_string())
        .arg("--node")
        .arg(format!("{}:6881", net.addr(1)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log(dir, &format!("libtorrent-{mode}")));
    cmd.spawn().unwrap()
}

fn ours(net: &Network, host: usize, dir: &Path, command: &str, what: &str, data: &Path) -> Child {
    let ip = net.addr(host).to_string();
    let node = format!("{}:6881", net.addr(1));
    let mut cmd = net.command(host, BIN);
    cmd.args([command, what, "--dir"])
        .arg(data)
        .args([
            "--port",
            "6881",
            "--bind",
            &ip,
            "--dht-bootstrap",
            &node,
            "--dht-any-ip",
        ])
        .env("RUST_LOG", "info,battorrent=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log(dir, &format!("ours-{command}")));
    cmd.spawn().unwrap()
}

/// Waits for `child` to exit 0 within LIMIT.
fn wait_success(child: &mut Child, what: &str, dir: &Path, logs: &[&str]) {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            if status.success() {
                return;
            }
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown: Vec<String> = logs
        .iter()
        .map(|l| format!("--- {l} ---\n{}", tail(dir, l)))
        .collect();
    panic!("{what} did not complete in {LIMIT:?}\n{}", shown.join("\n"));
}

/// A scenario: the namespace network (None: skipped), its scratch folder, the 64 MiB data
/// set written under `seed/`, a trackerless torrent of it and its bare magnet link, and the
/// bootstrap node running on host 1.
struct Scenario {
    /// First, so it is killed before the network goes.
    _node: Proc,
    net: Network,
    scratch: Scratch,
    data: Dataset,
    torrent: std::path::PathBuf,
    link: String,
}

impl Scenario {
    fn new() -> Option<Scenario> {
        let net = network_for(&[Client::Libtorrent], 3)?;
        let scratch = Scratch::new();
        let data = Dataset::new(Shape::Large);
        data.write(&scratch.0.join("seed"));
        let torrent = scratch.0.join("large.torrent");
        create_torrent(&data, &scratch.0.join("seed"), None, &torrent);
        let link = format!("magnet:?xt=urn:btih:{}", hex(&info_hash(&torrent)));
        let node = bootstrap(&net, &scratch.0);
        std::thread::sleep(Duration::from_millis(500));
        Some(Scenario {
            net,
            scratch,
            data,
            torrent,
            link,
            _node: node,
        })
    }

    fn dir(&self) -> &Path {
        &self.scratch.0
    }

    /// Waits for the downloader, then compares what it got.
    fn finish(&self, mut down: Child, who: &str, logs: &[&str]) {
        let started = Instant::now();
        wait_success(&mut down, who, self.dir(), logs);
        eprintln!(
            "{who}: bare magnet to complete in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        self.data.compare(&self.dir().join("get"), false).unwrap();
    }
}

#[test]
fn ours_downloads_a_bare_magnet_link_seeded_by_libtorrent_through_the_dht() {
    let Some(s) = Scenario::new() else {
        return;
    };
    let (dir, seed) = (s.dir(), s.dir().join("seed"));
    let _seed = Proc(lt_dht(
        &s.net,
        2,
        dir,
        "seed",
        s.torrent.to_str().unwrap(),
        &seed,
    ));
    let down = ours(&s.net, 3, dir, "download", &s.link, &dir.join("get"));
    s.finish(
        down,
        "ours, from a libtorrent seed found through the DHT,",
        &["ours-download", "libtorrent-seed", "bootstrap"],
    );
}

#[test]
fn libtorrent_downloads_a_bare_magnet_link_seeded_by_ours_through_the_dht() {
    let Some(s) = Scenario::new() else {
        return;
    };
    let (dir, seed) = (s.dir(), s.dir().join("seed"));
    let _seed = Proc(ours(
        &s.net,
        2,
        dir,
        "seed",
        s.torrent.to_str().unwrap(),
        &seed,
    ));
    let down = lt_dht(&s.net, 3, dir, "download", &s.link, &dir.join("get"));
    s.finish(
        down,
        "libtorrent, from our seed found through the DHT,",
        &["libtorrent-download", "ours-seed", "bootstrap"],
    );
}

fn hex(bytes: &[u8; 20]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
