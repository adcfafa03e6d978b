//! The DHT in a [`Run`]: our `battorrent dht` nodes, and every client with its DHT on,
//! joining through the test network's nodes only (never the public routers).

use super::{support_file, Run, READY};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Time for a whole download whose peers come from the DHT (Transmission 3.00 looks up
/// nothing before it has heard from 4 nodes, which takes it 20 to 60 s).
pub const DHT_DOWNLOAD: Duration = Duration::from_secs(150);

impl Run<'_> {
    /// From now on every client started has its DHT on and joins through `nodes` only
    /// (ours through all of them, aria2 and libtorrent through the first, Transmission
    /// through its dht.bootstrap file of them all, read one line every 7 to 23 s); a
    /// download may take [`DHT_DOWNLOAD`].
    pub fn use_dht(&mut self, nodes: &[SocketAddr]) {
        self.dht = nodes.to_vec();
        self.limit = DHT_DOWNLOAD;
    }

    /// Our DHT options: `--no-dht`, or the nodes to join through and `--dht-any-ip` (every
    /// host of the test network is on one /24).
    pub(super) fn our_dht_args(&self) -> Vec<String> {
        if self.dht.is_empty() {
            return vec!["--no-dht".into()];
        }
        let mut args: Vec<String> = self
            .dht
            .iter()
            .flat_map(|node| ["--dht-bootstrap".into(), node.to_string()])
            .collect();
        args.push("--dht-any-ip".into());
        args
    }

    /// Starts `battorrent dht` on `host` at each of `ports` (UDP) as processes `NAME-PORT`
    /// (their tables' health once a second in the logs), joining through `join` (None: the
    /// first node of the network), and waits until all of them listen; returns their
    /// addresses.
    pub fn start_dht_nodes(
        &mut self,
        name: &str,
        host: usize,
        ports: Range<u16>,
        join: Option<SocketAddr>,
    ) -> Vec<SocketAddr> {
        let join = join.map_or("none".into(), |node| node.to_string());
        let mut nodes = Vec::new();
        for port in ports {
            let node = SocketAddr::from((self.net.addr(host), port));
            let mut cmd = self.ours(host);
            cmd.args(["dht", "--bind", &node.to_string(), "--dht-any-ip"])
                .args(["--dht-bootstrap", &join]);
            self.spawn(&format!("{name}-{port}"), cmd, false, false);
            nodes.push(node);
        }
        for node in &nodes {
            let name = format!("{name}-{}", node.port());
            self.wait_until(&format!("{name} to listen"), READY, |run| {
                run.log(&name).contains("DHT node listening").then_some(())
            });
        }
        nodes
    }

    /// Starts tests/support/lt_dht_swarm.py on `host` as process `name`: `count` libtorrent
    /// DHT nodes (ports 6881, 6882, ...) joining through the first of the run's DHT nodes,
    /// one of which looks `info_hash` up until the answer holds `want` or `limit` passes,
    /// then exits. Its JSON reports go to `NAME.out` (see the script).
    pub fn start_lt_dht_swarm(
        &mut self,
        name: &str,
        host: usize,
        count: usize,
        info_hash: &[u8; 20],
        want: SocketAddr,
        limit: Duration,
    ) {
        let hash: String = info_hash.iter().map(|b| format!("{b:02x}")).collect();
        let mut cmd = self.net.command(host, "/usr/bin/python3");
        cmd.arg(support_file("lt_dht_swarm.py"))
            .arg(hash)
            .arg(self.net.addr(host).to_string())
            .args(["6881", &count.to_string(), &limit.as_secs().to_string()])
            .arg(format!("--node={}", self.dht[0]))
            .arg(format!("--want={want}"));
        self.spawn(name, cmd, true, true);
    }

    /// tests/support/lt_dht.py in `mode` (seed or download) on `what` (a .torrent or a magnet
    /// link), joining the DHT through the first node; it gives up by itself after `limit`.
    pub(super) fn lt_dht(
        &self,
        host: usize,
        mode: &str,
        what: OsString,
        dir: &Path,
        limit: Duration,
    ) -> Command {
        let mut cmd = self.net.command(host, "/usr/bin/python3");
        cmd.arg(support_file("lt_dht.py"))
            .arg(mode)
            .arg(what)
            .arg(dir)
            .arg(self.net.addr(host).to_string())
            .arg(limit.as_secs().to_string())
            .arg("--node")
            .arg(self.dht[0].to_string());
        cmd
    }
}
