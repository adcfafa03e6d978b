//! `battorrent add|list|pause|resume|remove`: a running daemon's JSON API from the command
//! line (see README.md, "JSON API").

use super::format;
use anyhow::{anyhow, bail, Context};
use battorrent::metainfo::MAX_TORRENT_FILE_SIZE;
use battorrent::text::escape;
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the daemon is.
#[derive(Debug, Clone, Args)]
pub struct RpcArgs {
    /// The daemon's RPC address (IP:PORT or HOST:PORT).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:9091",
        global = true
    )]
    rpc: String,
    /// The user name and password the daemon wants (its --rpc-auth); also read from the
    /// BATTORRENT_RPC_AUTH environment variable.
    #[arg(long, value_name = "USER:PASS", global = true)]
    rpc_auth: Option<String>,
}

/// What to ask the daemon.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Add a .torrent file or a magnet link to a running daemon.
    Add {
        /// A .torrent file, or a magnet link.
        source: String,
        /// The folder its files go in (on the daemon's machine) [default: the daemon's].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Add it paused.
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// List a running daemon's torrents.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Pause a torrent of a running daemon.
    Pause {
        id: u32,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Resume a paused torrent of a running daemon.
    Resume {
        id: u32,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Remove a torrent from a running daemon (its files stay unless --delete-data).
    Remove {
        id: u32,
        /// Delete its downloaded files too.
        #[arg(long)]
        delete_data: bool,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

/// A connection to the daemon's API.
struct Client {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
    addr: String,
}

impl Client {
    fn new(rpc: &RpcArgs) -> anyhow::Result<Client> {
        let auth_text = rpc
            .rpc_auth
            .clone()
            .or_else(|| std::env::var("BATTORRENT_RPC_AUTH").ok());
        let auth = match auth_text {
            Some(text) => {
                let c: battorrent::rpc::Credentials =
                    text.parse().map_err(|e| anyhow!("--rpc-auth: {e}"))?;
                Some((c.user, c.password))
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            // The daemon is on this machine or the local network: never through a proxy.
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            http,
            base: format!("http://{}/api/v1", rpc.rpc),
            auth,
            addr: rpc.rpc.clone(),
        })
    }

    /// Sends a request; the reply's JSON, or the daemon's error as one sentence.
    async fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let request = match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        let reply = request.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "no daemon answers at {}: start one with `battorrent daemon` (or give --rpc \
                     ADDR of a running one)",
                    self.addr
                )
            } else {
                anyhow!("the daemon at {} did not answer: {e}", self.addr)
            }
        })?;
        let status = reply.status();
        let body = reply
            .bytes()
            .await
            .context("the daemon's reply was cut short")?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the daemon wants a password: give --rpc-auth USER:PASS");
        }
        let value: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let message = value
                .as_ref()
                .and_then(|v| v["error"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            bail!("the daemon refused: {message}");
        }
        value.ok_or_else(|| anyhow!("the daemon at {} did not answer with JSON", self.addr))
    }
}

/// Reads a .torrent file, bounded.
fn read_torrent(path: &str) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {path}"))?;
    if bytes.len() as u64 > MAX_TORRENT_FILE_SIZE {
        bail!("{path} is larger than any .torrent file should be");
    }
    Ok(bytes)
}

fn percent(v: &Value) -> String {
    format!("{:.1}%", v["progress"].as_f64().unwrap_or(0.0) * 100.0)
}

fn print_list(list: &Value) {
    let torrents = list["torrents"].as_array().cloned().unwrap_or_default();
    if torrents.is_empty() {
        println!("no torrents");
        return;
    }
    println!(
        "{:>4}  {:<17} {:>6}  {:>10}  {:>10}  {:>5}  name",
        "id", "state", "done", "down/s", "up/s", "peers"
    );
    for t in &torrents {
        println!(
            "{:>4}  {:<17} {:>6}  {:>10}  {:>10}  {:>5}  {}",
            t["id"].as_u64().unwrap_or(0),
            escape(t["state"].as_str().unwrap_or("?")),
            percent(t),
            format::size(t["download_rate"].as_u64().unwrap_or(0)),
            format::size(t["upload_rate"].as_u64().unwrap_or(0)),
            t["peers"].as_u64().unwrap_or(0),
            escape(t["name"].as_str().unwrap_or("")),
        );
    }
}

async fn run_async(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Add {
            source,
            dir,
            paused,
            rpc,
        } => {
            let c = Client::new(&rpc)?;
            let dir = match dir {
                Some(d) => Some(
                    std::path::absolute(&d)
                        .with_context(|| format!("cannot resolve {}", d.display()))?
                        .to_str()
                        .ok_or_else(|| anyhow!("--dir must be valid UTF-8"))?
                        .to_string(),
                ),
                None => None,
            };
            let url = format!("{}/torrents", c.base);
            let request = if source.starts_with("magnet:") {
                let body = serde_json::json!({"magnet": source, "dir": dir, "paused": paused});
                c.http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.to_string())
            } else {
                let mut query = vec![("paused", paused.to_string())];
                if let Some(d) = dir {
                    query.push(("dir", d));
                }
                c.http
                    .post(url)
                    .query(&query)
                    .header("content-type", "application/x-bittorrent")
                    .body(read_torrent(&source)?)
            };
            let added = c.call(request).await?;
            let name = escape(added["name"].as_str().unwrap_or(""));
            let id = added["id"].as_u64().unwrap_or(0);
            if added["duplicate"].as_bool() == Some(true) {
                println!("already there as torrent {id}: {name}");
            } else {
                println!("added torrent {id}: {name}");
            }
        }
        ClientCommand::List { json, rpc } => {
            let c = Client::new(&rpc)?;
            let list = c.call(c.http.get(format!("{}/torrents", c.base))).await?;
            if json {
                println!("{list}");
            } else {
                print_list(&list);
            }
        }
        ClientCommand::Pause { id, rpc } => set_running(id, rpc, false).await?,
        ClientCommand::Resume { id, rpc } => set_running(id, rpc, true).await?,
        ClientCommand::Remove {
            id,
            delete_data,
            rpc,
        } => {
            let c = Client::new(&rpc)?;
            let url = format!("{}/torrents/{id}?delete_data={delete_data}", c.base);
            c.call(c.http.delete(url)).await?;
            if delete_data {
                println!("removed torrent {id} and deleted its data");
            } else {
                println!("removed torrent {id}");
            }
        }
    }
    Ok(())
}

async fn set_running(id: u32, rpc: RpcArgs, run: bool) -> anyhow::Result<()> {
    let c = Client::new(&rpc)?;
    let verb = if run { "resume" } else { "pause" };
    c.call(c.http.post(format!("{}/torrents/{id}/{verb}", c.base)))
        .await?;
    println!("{verb}d torrent {id}");
    Ok(())
}

pub fn run(command: ClientCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(command))?;
    Ok(ExitCode::SUCCESS)
}
