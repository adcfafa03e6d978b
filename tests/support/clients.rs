//! Ours and the real clients (Transmission 3.00, aria2, libtorrent) as processes on a
//! namespace network (netns.rs): our tracker on host 1, a seeder on host 2, a downloader
//! on host 3 (given the .torrent or a magnet link), and any further peers on hosts of
//! their own, each started with its own temporary folders and logging into a file. With
//! [`Run::use_dht`] every client has its DHT on and joins through the given nodes only
//! (ours started with `battorrent dht` by [`Run::start_dht_nodes`]); otherwise it is off. A
//! [`Run`] kills and reaps every process it started, by process id, when dropped, and
//! its failures print the end of every log.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

#[path = "clients_dht.rs"]
mod dht;
#[path = "clients_tracker.rs"]
mod tracker;

use crate::netns::Network;
use std::ffi::OsString;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_battorrent");
pub const TRACKER: usize = 1;
pub const SEEDER: usize = 2;
pub const LEECHER: usize = 3;
pub const TRACKER_PORT: u16 = 6969;
/// Time for the tracker to listen, and for a seeder to check its data and announce.
pub const READY: Duration = Duration::from_secs(60);
/// Time for a whole download (Transmission decides whom to be interested in only every
/// 10 s, so it needs about 15 s for a few MiB).
pub const DOWNLOAD: Duration = Duration::from_secs(90);

/// A BitTorrent client the tests run: ours (the `battorrent` binary) or a real one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Ours,
    Transmission,
    Aria2,
    Libtorrent,
}

/// A process on the test network, its output going to `log`.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    /// It is meant to exit by itself (a downloader), so exiting is not a failure.
    may_exit: bool,
}

/// One scenario's processes; dropping it kills and reaps every one of them by process id.
pub struct Run<'a> {
    net: &'a Network,
    /// Logs and client config folders go here.
    dir: PathBuf,
    torrent: PathBuf,
    /// Given to the downloader instead of the .torrent, when set.
    magnet: Option<String>,
    /// The DHT nodes every client joins through; empty: DHT off.
    dht: Vec<SocketAddr>,
    /// Time for a whole download.
    limit: Duration,
    procs: Vec<Proc>,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

impl<'a> Run<'a> {
    /// A run of `torrent` on `net`, keeping its logs in `dir`.
    pub fn new(net: &'a Network, dir: &Path, torrent: &Path) -> Run<'a> {
        Run {
            net,
            dir: dir.to_path_buf(),
            torrent: torrent.to_path_buf(),
            magnet: None,
            dht: Vec::new(),
            limit: DOWNLOAD,
            procs: Vec::new(),
        }
    }

    /// From now on the downloader gets `link` instead of the .torrent (seeders still get
    /// the .torrent).
    pub fn use_magnet(&mut self, link: &str) {
        self.magnet = Some(link.to_string());
    }

    /// What the downloader is given: the magnet link if there is one, else the .torrent.
    fn wanted(&self) -> OsString {
        match &self.magnet {
            Some(link) => link.into(),
            None => self.torrent.clone().into(),
        }
    }

    /// Starts `cmd`, with stdout and stderr in `NAME.log` (stdout in `NAME.out` when
    /// `separate_stdout`); returns its index in `procs`.
    fn spawn(
        &mut self,
        name: &str,
        mut cmd: Command,
        may_exit: bool,
        separate_stdout: bool,
    ) -> usize {
        let log = self.dir.join(format!("{name}.log"));
        let file = File::create(&log).unwrap();
        let stdout = if separate_stdout {
            File::create(self.dir.join(format!("{name}.out"))).unwrap()
        } else {
            file.try_clone().unwrap()
        };
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(file);
        // The child gets SIGKILL when the thread that started it ends, so it cannot outlive
        // a test process killed before the Drop guard runs.
        // SAFETY: only prctl runs between fork and exec, and it is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| self.fail(&format!("cannot start {name}: {e}")));
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
            may_exit,
        });
        self.procs.len() - 1
    }

    fn ours(&self, host: usize) -> Command {
        let mut cmd = self.net.command(host, BIN);
        cmd.env("RUST_LOG", "info,battorrent=debug")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Waits until something on `host` accepts TCP connections at `port`.
    pub fn wait_listening(&mut self, what: &str, host: usize, port: u16) {
        let addr = SocketAddr::from((self.net.addr(host), port));
        self.wait_until(&format!("{what} to accept connections"), READY, |run| {
            run.net
                .run_in(host, || {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                })
                .unwrap_or_else(|e| run.fail(&e))
                .then_some(())
        });
    }

    /// Starts `battorrent ARGS` on `host` as process `name` (debug log in `NAME.log`, stdout
    /// in `NAME.out`); `may_exit` when it is meant to end by itself.
    pub fn start_ours(&mut self, name: &str, host: usize, args: &[OsString], may_exit: bool) {
        let mut cmd = self.ours(host);
        cmd.args(args);
        self.spawn(name, cmd, may_exit, true);
    }

    /// Starts tests/support/lt_peer.py on `host` as process `name`, with the .torrent, the
    /// data folder `dir` and `options` (see the script); its reports go to `NAME.out`.
    pub fn start_lt_peer(&mut self, name: &str, host: usize, dir: &Path, options: &[String]) {
        let ip = self.net.addr(host);
        let mut cmd = self.libtorrent(host, "lt_peer.py", dir, ip, READY + DOWNLOAD);
        cmd.args(options);
        self.spawn(name, cmd, false, true);
    }

    /// The last report lt_peer.py `name` printed, if any.
    pub fn lt_report(&self, name: &str) -> Option<serde_json::Value> {
        let out = std::fs::read_to_string(self.dir.join(format!("{name}.out"))).ok()?;
        // The last line may be half written: take the last one that parses.
        out.lines().rev().find_map(|l| serde_json::from_str(l).ok())
    }

    /// Everything process `name` has logged so far.
    pub fn log(&self, name: &str) -> String {
        let text = std::fs::read(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        String::from_utf8_lossy(&text).into_owned()
    }

    pub fn start_seeder(&mut self, client: Client, data: &Path) {
        let ip = self.net.addr(SEEDER);
        let cmd = match client {
            Client::Ours => {
                let mut cmd = self.ours(SEEDER);
                cmd.arg("seed")
                    .args(self.our_dht_args())
                    .arg(&self.torrent)
                    .arg("--dir")
                    .arg(data)
                    .args(["--port", "6881", "--bind", &ip.to_string()]);
                cmd
            }
            Client::Transmission => {
                let torrent = self.torrent.clone().into();
                self.transmission(SEEDER, "transmission-seed", data, torrent)
            }
            Client::Aria2 => {
                let mut cmd = self.aria2(SEEDER, data, self.torrent.clone().into());
                cmd.args(["--seed-ratio=0.0", "--check-integrity=true"]);
                cmd
            }
            Client::Libtorrent if !self.dht.is_empty() => {
                let torrent = self.torrent.clone().into();
                self.lt_dht(SEEDER, "seed", torrent, data, READY + self.limit)
            }
            Client::Libtorrent => self.libtorrent(SEEDER, "lt_seed.py", data, ip, READY + DOWNLOAD),
        };
        self.spawn(&format!("{client:?}-seed"), cmd, false, false);
    }

    /// Runs `client` as the downloader of the .torrent or the magnet link (see
    /// [`Run::use_magnet`]) into `dir` and returns once it says it has all `total_bytes`
    /// (exiting 0; ours must also print a complete `--json` summary, which is returned) or,
    /// for Transmission, which never exits, once `complete()`. Fails the test if that does
    /// not happen within [`DOWNLOAD`] ([`dht::DHT_DOWNLOAD`] after [`Run::use_dht`]). The
    /// process is named `CLIENT-download` (its log `CLIENT-download.log`).
    pub fn download(
        &mut self,
        client: Client,
        dir: &Path,
        total_bytes: u64,
        mut complete: impl FnMut() -> bool,
    ) -> Option<serde_json::Value> {
        let ip = self.net.addr(LEECHER);
        let name = format!("{client:?}-download");
        let deadline = Instant::now() + self.limit;
        match client {
            Client::Ours => {
                let mut cmd = self.ours(LEECHER);
                cmd.arg("download")
                    .args(self.our_dht_args())
                    .arg(self.wanted())
                    .arg("--dir")
                    .arg(dir)
                    .args(["--port", "6881", "--bind", &ip.to_string(), "--json"]);
                let i = self.spawn(&name, cmd, true, true);
                self.wait_success(i, deadline);
                let out = std::fs::read(self.dir.join(format!("{name}.out"))).unwrap();
                let summary: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
                    self.fail(&format!("download --json printed no JSON: {e}"))
                });
                if summary["complete"] != true
                    || summary["torrents"][0]["stats"]["verified_bytes"] != total_bytes
                {
                    self.fail(&format!("download --json does not say complete: {summary}"));
                }
                return Some(summary);
            }
            Client::Transmission => {
                // transmission-cli keeps seeding once complete: watch the files instead.
                let cmd = self.transmission(LEECHER, "transmission-download", dir, self.wanted());
                self.spawn(&name, cmd, false, false);
                self.wait_until("Transmission to download every byte", self.limit, |_| {
                    complete().then_some(())
                });
            }
            Client::Aria2 => {
                let mut cmd = self.aria2(LEECHER, dir, self.wanted());
                cmd.arg("--seed-time=0");
                let i = self.spawn(&name, cmd, true, false);
                self.wait_success(i, deadline);
            }
            Client::Libtorrent => {
                let cmd = match self.magnet.clone() {
                    Some(link) if !self.dht.is_empty() => {
                        self.lt_dht(LEECHER, "download", link.into(), dir, self.limit)
                    }
                    // lt_magnet.py is also given the seeder's address, like x.pe= would.
                    Some(link) => {
                        let mut cmd = self.net.command(LEECHER, "/usr/bin/python3");
                        cmd.arg(support_file("lt_magnet.py"))
                            .arg(link)
                            .arg(dir)
                            .arg(ip.to_string())
                            .arg(self.net.addr(SEEDER).to_string())
                            .arg("6881")
                            .arg(DOWNLOAD.as_secs().to_string());
                        cmd
                    }
                    None => self.libtorrent(LEECHER, "lt_download.py", dir, ip, DOWNLOAD),
                };
                let i = self.spawn(&name, cmd, true, false);
                self.wait_success(i, deadline);
            }
        }
        None
    }

    /// transmission-cli with its own config folder, on `what` (a .torrent or a magnet
    /// link): TCP only (3.00 tries uTP first and stalls against TCP-only peers), no LPD,
    /// PEX or UPnP; the DHT only after [`Run::use_dht`], joining through a dht.bootstrap
    /// file (its fallback, dht.transmissionbt.com, does not resolve in a namespace).
    fn transmission(&self, host: usize, conf: &str, dir: &Path, what: OsString) -> Command {
        let conf = self.dir.join(conf);
        std::fs::create_dir_all(&conf).unwrap();
        // With the DHT: debug messages, which say how its table stands.
        let (dht, level) = if self.dht.is_empty() {
            (false, 2)
        } else {
            (true, 3)
        };
        std::fs::write(
            conf.join("settings.json"),
            format!(
                r#"{{"utp-enabled": false, "dht-enabled": {dht}, "lpd-enabled": false, "pex-enabled": false, "port-forwarding-enabled": false, "message-level": {level}}}"#
            ),
        )
        .unwrap();
        if dht {
            let lines: String = self
                .dht
                .iter()
                .map(|node| format!("{} {}\n", node.ip(), node.port()))
                .collect();
            std::fs::write(conf.join("dht.bootstrap"), lines).unwrap();
        }
        let mut cmd = self.net.command(host, "transmission-cli");
        cmd.arg("-g").arg(conf).arg("-w").arg(dir).arg(what);
        if dht {
            // Every DHT message it sends and takes, in its log.
            cmd.env("TR_DHT_VERBOSE", "1");
        }
        cmd
    }

    /// aria2c on `what` (a .torrent or a magnet link): no LPD or PEX; the DHT only after
    /// [`Run::use_dht`], joining through the first node (its table kept in the run's folder,
    /// not the user's).
    fn aria2(&self, host: usize, dir: &Path, what: OsString) -> Command {
        let mut cmd = self.net.command(host, "aria2c");
        match self.dht.first() {
            Some(node) => cmd.args([
                "--enable-dht=true".into(),
                "--dht-listen-port=6881".into(),
                format!("--dht-entry-point={node}"),
                format!(
                    "--dht-file-path={}",
                    self.dir.join("aria2-dht.dat").display()
                ),
            ]),
            None => cmd.arg("--enable-dht=false"),
        };
        cmd.args([
            "--listen-port=6881",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--summary-interval=0",
            "--console-log-level=notice",
        ])
        .arg(format!("--dir={}", dir.display()))
        .arg(what);
        cmd
    }

    /// One of our libtorrent scripts; it gives up by itself after `limit`.
    fn libtorrent(
        &self,
        host: usize,
        script: &str,
        dir: &Path,
        ip: Ipv4Addr,
        limit: Duration,
    ) -> Command {
        let mut cmd = self.net.command(host, "/usr/bin/python3");
        cmd.arg(support_file(script))
            .arg(&self.torrent)
            .arg(dir)
            .arg(ip.to_string())
            .arg(limit.as_secs().to_string());
        cmd
    }

    /// Polls `probe` every 200 ms until it gives a value, failing the test when `limit`
    /// passes or a process that should keep running exits.
    pub fn wait_until<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut probe: impl FnMut(&mut Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = probe(self) {
                return value;
            }
            self.check_running();
            if Instant::now() > deadline {
                self.fail(&format!("timed out after {limit:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for process `i` to exit with status 0.
    fn wait_success(&mut self, i: usize, deadline: Instant) {
        let status: ExitStatus = loop {
            match self.procs[i].child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => self.fail(&format!("cannot wait for {}: {e}", self.procs[i].name)),
            }
            self.check_running();
            if Instant::now() > deadline {
                self.fail(&format!(
                    "{} did not finish within {:?}",
                    self.procs[i].name, self.limit
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !status.success() {
            self.fail(&format!("{} exited with {status}", self.procs[i].name));
        }
    }

    /// Fails the test if a process that should keep running has exited.
    fn check_running(&mut self) {
        let exited = self
            .procs
            .iter_mut()
            .find_map(|p| match p.child.try_wait() {
                Ok(Some(status)) if !p.may_exit => Some((p.name.clone(), status)),
                _ => None,
            });
        if let Some((name, status)) = exited {
            self.fail(&format!("{name} exited early with {status}"));
        }
    }

    /// Our processes must not have seen a protocol violation from the other client.
    pub fn check_our_log(&self) {
        for p in &self.procs {
            if p.name.starts_with("Ours") {
                let log = std::fs::read_to_string(&p.log).unwrap_or_default();
                if let Some(line) = log.lines().find(|l| l.contains("protocol violation")) {
                    self.fail(&format!("{} logged: {line}", p.name));
                }
            }
        }
    }

    /// Fails the test with `message` and the end of every process's log.
    pub fn fail(&self, message: &str) -> ! {
        let mut report = format!("{message}\n");
        for p in &self.procs {
            report.push_str(&format!("--- last lines of {} ---\n", p.name));
            report.push_str(&tail(&p.log, 40));
        }
        panic!("{report}");
    }
}

/// A file in tests/support.
fn support_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// The last `n` lines of a log (progress lines ending in \r count as lines).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text).replace('\r', "\n");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = String::new();
    for line in &lines[lines.len().saturating_sub(n)..] {
        let line: String = line.chars().take(300).collect();
        out.push_str(&line);
        out.push('\n');
    }
    out
}
