//! `battorrent dht`: a standalone DHT node (a bootstrap node for a private swarm), and
//! the DHT options `seed` and `download` share.

use super::format;
use anyhow::Context;
use battorrent::dht::persist::Saved;
use battorrent::dht::{Config, DhtConfig};
use battorrent::session::{Session, SessionConfig};
use clap::Args;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The public routers a node joins the Mainline DHT through when no `--dht-bootstrap` is
/// given (the ones libtorrent, Transmission and qBittorrent use). They are asked for nodes
/// only: never added to the routing table.
pub const PUBLIC_ROUTERS: [&str; 4] = [
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// DHT options of `seed`, `download` and `dht`.
#[derive(Debug, Args, Clone)]
pub struct DhtArgs {
    /// Stay out of the Mainline DHT (BEP 5): find peers through trackers and peers only.
    /// Private torrents never use the DHT.
    #[arg(long, conflicts_with_all = ["bootstrap", "dht_state", "dht_any_ip"])]
    pub no_dht: bool,
    /// A node to join the DHT through (HOST:PORT), instead of the public routers; may be
    /// repeated. `none`: no router at all (the first node of a private swarm).
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub bootstrap: Vec<String>,
    /// Let many DHT nodes share one IP address or /24 (test networks; libtorrent's
    /// dht_restrict_routing_ips off).
    #[arg(long)]
    pub dht_any_ip: bool,
    /// Keep the DHT node's id and routing table in FILE across runs (read at start,
    /// written at the end).
    #[arg(long, value_name = "FILE")]
    pub dht_state: Option<std::path::PathBuf>,
}

impl DhtArgs {
    /// The DHT configuration these options ask for (none with `--no-dht`).
    pub fn config(&self) -> anyhow::Result<Option<DhtConfig>> {
        if self.no_dht {
            return Ok(None);
        }
        self.node_config().map(Some)
    }

    /// The routers to join through: `--dht-bootstrap` (each must resolve), or the public
    /// ones (those that do not resolve are skipped with a note: no network is not an error).
    fn routers(&self) -> anyhow::Result<Vec<SocketAddr>> {
        let mut routers = Vec::new();
        if self.bootstrap.is_empty() {
            for r in PUBLIC_ROUTERS {
                match r.to_socket_addrs() {
                    Ok(addrs) => routers.extend(one_per_family(addrs)),
                    Err(e) => tracing::info!("DHT router {r} not resolved: {e}"),
                }
            }
            if routers.is_empty() {
                eprintln!(
                    "note: no public DHT router could be resolved (no network?); the DHT starts \
                     from saved nodes and the peers' nodes only"
                );
            }
            return Ok(routers);
        }
        for b in &self.bootstrap {
            if b == "none" {
                continue;
            }
            let addrs = b
                .to_socket_addrs()
                .with_context(|| format!("cannot resolve the DHT node {}", format::escape(b)))?;
            routers.extend(one_per_family(addrs));
        }
        Ok(routers)
    }

    /// The DHT configuration.
    fn node_config(&self) -> anyhow::Result<DhtConfig> {
        let bootstrap = self.routers()?;
        let saved = self.dht_state.as_deref().and_then(|path| {
            let bytes = std::fs::read(path).ok()?;
            match Saved::decode(&bytes) {
                Ok(saved) => Some(saved),
                Err(e) => {
                    eprintln!(
                        "note: ignoring the DHT state in {}: {e}",
                        format::escape(&path.display().to_string())
                    );
                    None
                }
            }
        });
        let mut config = DhtConfig {
            bootstrap,
            routing: Config {
                restrict_ips: !self.dht_any_ip,
                ..Config::default()
            },
            saved,
            ..DhtConfig::default()
        };
        config.responder.store.restrict_ips = !self.dht_any_ip;
        Ok(config)
    }

    /// Writes the DHT state to `--dht-state` (atomically), if asked to.
    pub fn save(&self, state: Option<Vec<u8>>) -> anyhow::Result<()> {
        let (Some(path), Some(bytes)) = (&self.dht_state, state) else {
            return Ok(());
        };
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot save the DHT state to {}", path.display()))
    }
}

/// The first IPv4 and the first IPv6 address of a name (each family has its own DHT).
fn one_per_family(addrs: impl Iterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let addrs: Vec<SocketAddr> = addrs.collect();
    let v4 = addrs.iter().find(|a| a.is_ipv4());
    let v6 = addrs.iter().find(|a| a.is_ipv6());
    v4.into_iter().chain(v6).copied().collect()
}

#[derive(Debug, Args)]
pub struct DhtNodeArgs {
    /// Address to listen on (UDP; TCP too, unused).
    #[arg(long, default_value = "0.0.0.0:6881")]
    bind: SocketAddr,
    #[command(flatten)]
    dht: DhtArgs,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    /// Print the routing table's health as JSON at the end.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DhtNodeArgs) -> anyhow::Result<ExitCode> {
    if args.dht.no_dht {
        anyhow::bail!("`dht --no-dht` would run nothing; leave out --no-dht");
    }
    let dht = args.dht.node_config()?;
    let config = SessionConfig {
        bind: args.bind,
        use_trackers: false,
        dht: Some(dht),
        ..SessionConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (stats, state) = runtime.block_on(async {
        let session = Session::start(config).await?;
        eprintln!("DHT node listening on {}", session.local_addr());
        let until = args.seconds.map(|s| Instant::now() + Duration::from_secs(s));
        let mut signal = std::pin::pin!(super::peer::shutdown_signal());
        let mut every = tokio::time::interval(Duration::from_secs(5));
        let end = async move {
            match until {
                Some(u) => tokio::time::sleep_until(u.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut end = std::pin::pin!(end);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = &mut signal => break,
                _ = &mut end => break,
            }
            if let Some(s) = session.dht_stats() {
                eprintln!(
                    "{} nodes ({} good, {} questionable, {} bad) in {} buckets; {} queries sent, {} answered",
                    s.nodes, s.good, s.questionable, s.bad, s.buckets, s.queries_sent, s.queries_answered
                );
            }
        }
        let stats = session.dht_stats();
        let state = session.shutdown().await;
        anyhow::Ok((stats, state))
    })?;
    args.dht.save(state)?;
    if args.json {
        println!(
            "{}",
            format::json(&serde_json::json!({ "dht": stats }), false)
        );
    }
    Ok(ExitCode::SUCCESS)
}
