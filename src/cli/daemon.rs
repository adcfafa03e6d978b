//! `battorrent daemon`: the always-on client with saved state, driven over Transmission's
//! RPC.

use super::format;
use anyhow::{bail, Context};
use battorrent::daemon::config::{default_download_dir, default_state_dir, FileConfig};
use battorrent::daemon::{Daemon, DaemonConfig, SAVE_EVERY};
use battorrent::rpc::http::{new_session_id, router_with, serve, HttpConfig};
use battorrent::rpc::Credentials;
use battorrent::session::SessionConfig;
use clap::Args;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// The RPC port when none is given (Transmission's).
const RPC_PORT: u16 = 9091;

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Where torrents, resume data and settings are kept [default: $XDG_DATA_HOME/battorrent
    /// or ~/.local/share/battorrent].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Where new torrents' files go unless an RPC client names a folder [default: the folder
    /// last set over RPC, else ~/Downloads if it exists, else STATE_DIR/downloads].
    #[arg(long, value_name = "DIR")]
    download_dir: Option<PathBuf>,
    /// Port to accept peers on (0: any free port) [default: 6881].
    #[arg(short, long)]
    port: Option<u16>,
    /// Address to accept peers on [default: 0.0.0.0].
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Address of the RPC (IP or IP:PORT) [default: 127.0.0.1:9091]. Any address other than
    /// a loopback one needs --rpc-auth.
    #[arg(long, value_name = "ADDR")]
    rpc_bind: Option<String>,
    /// User name and password RPC clients must give (HTTP basic auth); also read from the
    /// BATTORRENT_RPC_AUTH environment variable, which keeps it out of the process list.
    #[arg(long, value_name = "USER:PASS")]
    rpc_auth: Option<String>,
    /// A JSON file of settings named as these options ({"download-dir": "/srv/dl", ...});
    /// options given here win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Most bytes per second to upload, all torrents together: 500K, 10M...
    #[arg(long, value_name = "RATE")]
    upload_limit: Option<String>,
    /// Most peers connected at once, per torrent [default: 50].
    #[arg(long)]
    max_peers: Option<usize>,
    /// Most torrents downloading at once; the others wait in a queue (also set over RPC:
    /// download-queue-size) [default: no queue].
    #[arg(long, value_name = "N")]
    max_active: Option<usize>,
    /// Do not contact the torrents' trackers.
    #[arg(long)]
    no_trackers: bool,
    #[command(flatten)]
    dht: super::dht::DhtArgs,
}

/// Reads the RPC address: `IP:PORT`, `[IPv6]:PORT` or a bare IP (port 9091).
fn parse_rpc_bind(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match text
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        Ok(ip) => Ok(SocketAddr::new(ip, RPC_PORT)),
        Err(_) => bail!(
            "--rpc-bind {} is not an address: give IP or IP:PORT, such as 127.0.0.1:9091",
            format::escape(text)
        ),
    }
}

/// Refuses an RPC reachable from other machines without a password.
fn check_exposure(addr: SocketAddr, auth: Option<&Credentials>) -> anyhow::Result<()> {
    if auth.is_none() && !addr.ip().is_loopback() {
        bail!(
            "refusing to serve the RPC on {addr} without a password: anyone who can reach that \
             address could add torrents and delete files; give --rpc-auth USER:PASS (or set \
             BATTORRENT_RPC_AUTH), or keep --rpc-bind on 127.0.0.1"
        );
    }
    Ok(())
}

/// A fixed threshold above which glibc's malloc maps memory of its own. glibc's default
/// rises to the largest block freed so far, so after one large answer (a torrent-get of
/// thousands of torrents) every later large buffer comes from the heap and leaves holes
/// there that stay resident. With the threshold fixed, those buffers go back to the system
/// when freed: 1,000 idle torrents cost 4.5 KiB each instead of 6.0 (bench/daemon_scale.py).
/// Only the daemon sets it: it keeps thousands of small long-lived objects; one-shot
/// transfers gain nothing.
fn fix_malloc_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

pub fn run(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    fix_malloc_threshold();
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let env = |name| std::env::var(name).ok();
    let home = env("HOME");
    let state_dir = match args.state_dir.clone().or(file.state_dir.clone()) {
        Some(dir) => std::path::absolute(&dir)
            .with_context(|| format!("cannot resolve {}", dir.display()))?,
        None => default_state_dir(env("XDG_DATA_HOME").as_deref(), home.as_deref()).context(
            "neither HOME nor XDG_DATA_HOME is set, so there is no default state folder: \
             give --state-dir DIR",
        )?,
    };
    let download_dir = match args.download_dir.clone().or(file.download_dir.clone()) {
        Some(dir) => Some(
            std::path::absolute(&dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?,
        ),
        None => None,
    };
    let auth_text = args
        .rpc_auth
        .clone()
        .or(env("BATTORRENT_RPC_AUTH"))
        .or(file.rpc_auth.clone());
    let auth = match auth_text {
        Some(text) => Some(
            text.parse::<Credentials>()
                .map_err(|e| anyhow::anyhow!("--rpc-auth: {e}"))?,
        ),
        None => None,
    };
    let rpc_addr = match args.rpc_bind.as_deref().or(file.rpc_bind.as_deref()) {
        Some(text) => parse_rpc_bind(text)?,
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), RPC_PORT),
    };
    check_exposure(rpc_addr, auth.as_ref())?;
    let upload_limit = match args
        .upload_limit
        .as_deref()
        .or(file.upload_limit.as_deref())
    {
        Some(text) => {
            Some(format::parse_size(text).map_err(|e| anyhow::anyhow!("--upload-limit: {e}"))?)
        }
        None => None,
    };
    let mut dht = args.dht.clone();
    if let Some(true) = file.no_dht {
        dht.no_dht = true;
    }
    if dht.bootstrap.is_empty() && !dht.no_dht {
        dht.bootstrap = file.dht_bootstrap.clone().unwrap_or_default();
    }
    if !dht.no_dht && dht.dht_state.is_none() {
        dht.dht_state = Some(state_dir.join("dht.dat"));
    }
    let session = SessionConfig {
        bind: SocketAddr::new(
            args.bind
                .or(file.bind)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            args.port.or(file.port).unwrap_or(6881),
        ),
        max_peers: args.max_peers.or(file.max_peers).unwrap_or(50).max(1),
        use_trackers: !(args.no_trackers || file.no_trackers == Some(true)),
        upload_limit,
        dht: dht.config()?,
        ..SessionConfig::default()
    };
    let config = DaemonConfig {
        default_download_dir: default_download_dir(home.as_deref(), &state_dir),
        state_dir,
        download_dir,
        session,
        save_every: SAVE_EVERY,
        max_active: args.max_active.or(file.max_active),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()?;
    let dht_state = runtime.block_on(async {
        let (daemon, report) = Daemon::start(config.clone()).await?;
        for note in &report.notes {
            eprintln!("note: {}", format::escape(note));
        }
        eprintln!(
            "state in {}: {} torrents resumed without a check, {} to check, {} fetching metadata",
            config.state_dir.display(),
            report.resumed,
            report.checking,
            report.magnets
        );
        eprintln!("listening for peers on {}", daemon.local_addr());
        let listener = match tokio::net::TcpListener::bind(rpc_addr).await {
            Ok(l) => l,
            Err(e) => {
                daemon.shutdown().await;
                bail!(
                    "cannot serve the RPC on {rpc_addr}: {e} (is another daemon running? pick \
                     another --rpc-bind)"
                );
            }
        };
        let local = listener.local_addr()?;
        eprintln!("RPC on http://{local}/transmission/rpc");
        eprintln!("web page on http://{local}/ (JSON API under /api/v1)");
        let shutdown = daemon.shutdown_token();
        let backend = Arc::new(daemon.clone());
        let config = HttpConfig {
            auth,
            session_id: new_session_id(),
        };
        let app = router_with(backend.clone(), config, battorrent::api::routes(backend));
        let server = tokio::spawn(serve(listener, app, shutdown.clone()));
        tokio::select! {
            _ = super::peer::shutdown_signal() => {}
            _ = shutdown.cancelled() => {}
        }
        eprintln!("stopping: saving state and telling trackers");
        shutdown.cancel();
        let _ = server.await;
        anyhow::Ok(daemon.shutdown().await)
    })?;
    dht.save(dht_state)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_addresses() {
        assert_eq!(
            parse_rpc_bind("127.0.0.1").unwrap(),
            "127.0.0.1:9091".parse().unwrap()
        );
        assert_eq!(
            parse_rpc_bind("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(
            parse_rpc_bind("::1").unwrap(),
            "[::1]:9091".parse().unwrap()
        );
        assert!(parse_rpc_bind("localhost:9091").is_err());
    }

    #[test]
    fn only_loopback_goes_without_a_password() {
        let c: Credentials = "a:b".parse().unwrap();
        let open: SocketAddr = "0.0.0.0:9091".parse().unwrap();
        assert!(check_exposure("127.0.0.1:9091".parse().unwrap(), None).is_ok());
        assert!(check_exposure("[::1]:9091".parse().unwrap(), None).is_ok());
        let e = check_exposure(open, None).unwrap_err().to_string();
        assert!(e.contains("--rpc-auth"), "{e}");
        assert!(check_exposure(open, Some(&c)).is_ok());
    }
}
