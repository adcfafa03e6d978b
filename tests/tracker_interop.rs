//! Standard clients find each other through our tracker on a private namespace network:
//! aria2c seeds; Transmission and libtorrent download; the bytes must match. Once over
//! HTTP, once over UDP (BEP 15): the torrent names only that tracker, and DHT, LSD and PEX
//! have no one else to ask there, so a transfer means the tracker introduced the peers.
//! Needs root, iproute2, aria2, transmission-cli and python3-libtorrent (see .ci/run);
//! BATTORRENT_SKIP_INTEROP=1 skips it where those are missing.

#[path = "support/netns.rs"]
mod netns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Child processes killed (by process id) when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh folder for one test (`tag` tells apart the tests that run at once).
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "battorrent-tracker-interop-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn skip(reason: &str) -> bool {
    if std::env::var_os("BATTORRENT_SKIP_INTEROP").is_some() {
        eprintln!("skipped: {reason}");
        return true;
    }
    panic!("{reason} (set BATTORRENT_SKIP_INTEROP=1 to skip)");
}

fn wait_for_file(path: &Path, expected: &[u8], deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if std::fs::read(path).is_ok_and(|got| got == expected) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

#[test]
fn aria2_seeds_to_transmission_and_libtorrent_through_our_tracker() {
    through_our_tracker(Scheme::Http);
}

#[test]
fn aria2_seeds_to_transmission_and_libtorrent_through_our_udp_tracker() {
    through_our_tracker(Scheme::Udp);
}

#[derive(PartialEq)]
enum Scheme {
    Http,
    Udp,
}

fn through_our_tracker(scheme: Scheme) {
    for tool in ["aria2c", "transmission-cli", "ip"] {
        if Command::new("which")
            .arg(tool)
            .output()
            .map_or(true, |o| !o.status.success())
            && skip(&format!("{tool} is not installed"))
        {
            return;
        }
    }
    let net = match netns::Network::new(4) {
        Ok(net) => net,
        Err(e) => {
            if skip(&format!(
                "cannot build the namespace network (root needed): {e}"
            )) {
                return;
            }
            unreachable!()
        }
    };
    let dir = scratch(match scheme {
        Scheme::Http => "http",
        Scheme::Udp => "udp",
    });
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(seed_dir.join("payload.bin"), &data).unwrap();
    let torrent = dir.join("payload.torrent");
    let tracker_url = match scheme {
        Scheme::Http => format!("http://{}:6969/announce", net.addr(1)),
        Scheme::Udp => format!("udp://{}:6969/announce", net.addr(1)),
    };
    let created = Command::new(env!("CARGO_BIN_EXE_battorrent"))
        .args(["create", "-l", "256K", "-a", &tracker_url, "-o"])
        .arg(&torrent)
        .arg(seed_dir.join("payload.bin"))
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let mut procs = Procs(Vec::new());
    procs.0.push(
        net.command(1, env!("CARGO_BIN_EXE_battorrent"))
            .args([
                "tracker",
                "--bind",
                &format!("{}:6969", net.addr(1)),
                "--interval",
                "5",
            ])
            .args(match scheme {
                Scheme::Http => vec![],
                Scheme::Udp => vec!["--udp".to_string(), format!("{}:6969", net.addr(1))],
            })
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    procs.0.push(
        net.command(2, "aria2c")
            .args([
                "--seed-ratio=0.0",
                "--check-integrity=true",
                "--listen-port=6881",
                // aria2 asks UDP trackers only with its DHT on (there is no one to find
                // through it here).
                if scheme == Scheme::Udp {
                    "--enable-dht=true"
                } else {
                    "--enable-dht=false"
                },
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--summary-interval=0",
                "--console-log-level=warn",
            ])
            .arg(format!("--dir={}", seed_dir.display()))
            .arg(&torrent)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Transmission 3.00: TCP only until we speak uTP.
    let tr_conf = dir.join("tr-conf");
    let tr_dl = dir.join("tr-dl");
    std::fs::create_dir_all(&tr_conf).unwrap();
    std::fs::create_dir_all(&tr_dl).unwrap();
    std::fs::write(
        tr_conf.join("settings.json"),
        r#"{"utp-enabled": false, "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false}"#,
    )
    .unwrap();
    procs.0.push(
        net.command(3, "transmission-cli")
            .arg("-g")
            .arg(&tr_conf)
            .arg("-w")
            .arg(&tr_dl)
            .arg(&torrent)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let lt_dl = dir.join("lt-dl");
    std::fs::create_dir_all(&lt_dl).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/lt_download.py");
    let lt = net
        .command(4, "/usr/bin/python3")
        .arg(script)
        .arg(&torrent)
        .arg(&lt_dl)
        .arg(net.addr(4).to_string())
        .arg("90")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    procs.0.push(lt);

    let deadline = Instant::now() + Duration::from_secs(90);
    let transmission_ok = wait_for_file(&tr_dl.join("payload.bin"), &data, deadline);
    let libtorrent_ok = wait_for_file(&lt_dl.join("payload.bin"), &data, deadline);
    drop(procs);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        transmission_ok,
        "Transmission did not download the right bytes through our tracker ({tracker_url})"
    );
    assert!(
        libtorrent_ok,
        "libtorrent did not download the right bytes through our tracker ({tracker_url})"
    );
}
