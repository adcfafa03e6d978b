//! `battorrent tracker`: the tracker server, HTTP and UDP (BEP 15).

use anyhow::{bail, Context};
use battorrent::tracker::server::default_per_address;
use battorrent::tracker::{serve_with_udp, AccessList, ServerConfig, Shared};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct TrackerArgs {
    /// Address to listen on for HTTP (IPv4 or IPv6); may be repeated.
    #[arg(short, long, value_name = "ADDR", default_value = "0.0.0.0:6969")]
    bind: Vec<SocketAddr>,
    /// Also serve the UDP tracker protocol (BEP 15) on ADDR (IPv4 or IPv6; may share the
    /// HTTP port number); may be repeated.
    #[arg(long, value_name = "ADDR")]
    udp: Vec<SocketAddr>,
    /// Seconds clients should wait between announces.
    #[arg(long, default_value_t = 1800)]
    interval: u32,
    /// Serve only the info hashes in FILE (40 hex digits a line); reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", conflicts_with = "deny")]
    allow: Option<PathBuf>,
    /// Serve every info hash except those in FILE; reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    deny: Option<PathBuf>,
    /// Most peers returned per announce.
    #[arg(long, default_value_t = 200)]
    max_numwant: u32,
    /// Take client addresses from X-Forwarded-For (only behind a proxy you run).
    #[arg(long)]
    trust_proxy: bool,
    /// Most open connections.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Most open connections from one address, or one /64 for IPv6 (0: no cap) [default: a sixteenth of
    /// --max-connections, at least 64]. Not applied with --trust-proxy.
    #[arg(long, value_name = "N")]
    max_connections_per_address: Option<usize>,
    /// Memory for peers and torrents, in MiB (past it, swarms of one prefix with few peers
    /// are evicted for newcomers).
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    max_memory: usize,
    /// Memory the peers and new torrents of one /24 (IPv4) or /48 (IPv6) may take, in MiB
    /// [default: a 64th of --max-memory].
    #[arg(long, value_name = "MIB")]
    max_memory_per_prefix: Option<usize>,
    /// Seconds a client has to send a complete request.
    #[arg(long, default_value_t = 10)]
    request_timeout: u64,
    /// Worker threads (1 runs everything on the calling thread).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

impl TrackerArgs {
    fn access(&self) -> anyhow::Result<AccessList> {
        Ok(match (&self.allow, &self.deny) {
            (Some(file), _) => {
                AccessList::Allow(AccessList::read_hashes(file).map_err(anyhow::Error::msg)?)
            }
            (_, Some(file)) => {
                AccessList::Deny(AccessList::read_hashes(file).map_err(anyhow::Error::msg)?)
            }
            _ => AccessList::Open,
        })
    }
}

pub fn run(args: TrackerArgs) -> anyhow::Result<ExitCode> {
    if args.interval == 0 {
        bail!("--interval must be at least 1 second");
    }
    let mut config = ServerConfig {
        trust_proxy: args.trust_proxy,
        max_connections: args.max_connections,
        max_connections_per_address: match args.max_connections_per_address {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(default_per_address(args.max_connections)),
        },
        request_timeout: std::time::Duration::from_secs(args.request_timeout.max(1)),
        ..ServerConfig::default()
    };
    config.tracker.interval = args.interval;
    config.tracker.min_interval = (args.interval / 6).max(1);
    config.tracker.peer_ttl = args.interval.saturating_mul(2).saturating_add(60);
    config.tracker.max_numwant = args.max_numwant;
    config.tracker.max_memory = args.max_memory.saturating_mul(1 << 20);
    config.tracker.max_memory_per_prefix = match args.max_memory_per_prefix {
        Some(mib) => mib.saturating_mul(1 << 20),
        None => config.tracker.max_memory / 64,
    };
    config.tracker.default_numwant = config.tracker.default_numwant.min(args.max_numwant);
    let shared = Shared::new(config, args.access()?);

    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        for addr in &args.bind {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            eprintln!(
                "tracker listening on http://{}/announce",
                listener.local_addr()?
            );
            listeners.push(listener);
        }
        let mut udp = Vec::new();
        for addr in &args.udp {
            let socket = tokio::net::UdpSocket::bind(addr)
                .await
                .with_context(|| format!("cannot listen on UDP {addr}"))?;
            eprintln!(
                "tracker listening on udp://{}/announce",
                socket.local_addr()?
            );
            udp.push(socket);
        }
        tokio::spawn(reload_on_sighup(shared.clone(), args));
        serve_with_udp(shared, listeners, udp, shutdown_signal()).await?;
        eprintln!("tracker stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the tracker with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// Re-reads the allow or deny list on every SIGHUP; a bad file keeps the old list.
async fn reload_on_sighup(shared: Arc<Shared>, args: TrackerArgs) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match args.access() {
            Ok(access) => {
                shared.set_access(access);
                eprintln!("access list reloaded");
            }
            Err(e) => eprintln!("access list not reloaded, keeping the old one: {e:#}"),
        }
    }
}
