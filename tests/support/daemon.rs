//! Running `battorrent daemon` in tests: scratch folders, a tracker and a seeder of our own
//! on loopback, the daemon on a free RPC port read from its log, a small Transmission RPC
//! client (with the session-id handshake), and waiting with deadlines. Every process is
//! killed and reaped by process id when its handle drops.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_battorrent");

/// A child process killed (SIGKILL, by process id) and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits (at most `timeout`) for it to exit; returns whether it exited 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        // SAFETY: kill(2) on our own child's process id.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "still running {timeout:?} after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `battorrent ARGS...` with stdout and stderr to `log`.
pub fn start(args: &[&str], log: &Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    Proc {
        child,
        log: log.to_path_buf(),
    }
}

/// A scratch folder (emptied first) named after the test and this process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("battorrent-daemon-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `check` returns something, polling every 50 ms; fails with `what` (and
/// `context()`) after `timeout`.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} (waited {timeout:?})\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tracker of ours on a free port of 127.0.0.1; returns it and its announce URL.
pub fn start_tracker(dir: &Path) -> (Proc, String) {
    let port = free_port("127.0.0.1");
    let addr = format!("127.0.0.1:{port}");
    let tracker = start(&["tracker", "--bind", &addr], &dir.join("tracker.log"));
    wait_for(
        Duration::from_secs(20),
        "the tracker does not listen",
        || tracker.log(),
        || TcpStream::connect(&addr).ok(),
    );
    (tracker, format!("http://{addr}/announce"))
}

/// `size` pseudo-random bytes in `dir/seed/NAME` and a torrent of them (64 KiB pieces)
/// announcing to `tracker`. Returns the data and the .torrent's path.
pub fn make_torrent(dir: &Path, name: &str, size: usize, tracker: &str) -> (Vec<u8>, PathBuf) {
    let mut rng = fastrand::Rng::with_seed(size as u64 ^ name.len() as u64);
    let data: Vec<u8> = (0..size).map(|_| rng.u8(..)).collect();
    let seed = dir.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(seed.join(name), &data).unwrap();
    let torrent = dir.join(format!("{name}.torrent"));
    let out = Command::new(BIN)
        .arg("create")
        .arg(seed.join(name))
        .args(["-l", "65536", "-a", tracker, "--no-date", "-o"])
        .arg(&torrent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (data, torrent)
}

/// Our seeder of `dir/seed` on 127.0.0.1 (the tracker hands out the address announces
/// come from), uploading at most `limit` a second, announcing to the torrent's tracker.
pub fn start_seeder(dir: &Path, torrents: &[&Path], limit: &str) -> Proc {
    let port = free_port("127.0.0.1").to_string();
    let seed_dir = dir.join("seed");
    let mut args = vec!["seed", "--no-dht"];
    args.extend(torrents.iter().map(|t| t.to_str().unwrap()));
    args.extend([
        "--dir",
        seed_dir.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--upload-limit",
        limit,
    ]);
    let seeder = start(&args, &dir.join("seed.log"));
    let addr = format!("127.0.0.1:{port}");
    wait_for(
        Duration::from_secs(30),
        "the seeder does not listen",
        || seeder.log(),
        || TcpStream::connect(&addr).ok(),
    );
    seeder
}

/// A running daemon and its RPC address.
pub struct Daemon {
    pub proc: Proc,
    pub rpc: SocketAddr,
}

/// Starts `battorrent daemon --no-dht` with its state in `state`, downloads in `dl`, peers
/// on 127.0.0.1 and the RPC on a free loopback port (read from its log), plus `extra`.
pub fn start_daemon(dir: &Path, state: &Path, dl: &Path, log: &str, extra: &[&str]) -> Daemon {
    let mut args = vec![
        "daemon",
        "--no-dht",
        "--state-dir",
        state.to_str().unwrap(),
        "--download-dir",
        dl.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--rpc-bind",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut proc = start(&args, &dir.join(log));
    let rpc = wait_for(
        Duration::from_secs(60),
        "the daemon does not say where its RPC is",
        || proc.log(),
        || {
            let log = proc.log();
            let at = log.split("RPC on http://").nth(1)?;
            at.split('/').next()?.parse::<SocketAddr>().ok()
        },
    );
    assert!(proc.child.try_wait().unwrap().is_none(), "{}", proc.log());
    Daemon { proc, rpc }
}

/// One HTTP/1.1 POST; returns the status, the headers (lower-case names) and the body.
pub fn post(
    addr: SocketAddr,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut request = format!(
        "POST /transmission/rpc HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// A Transmission RPC call: the 409 handshake, then the request; returns `arguments`
/// after checking `result` is "success".
pub fn rpc(addr: SocketAddr, method: &str, arguments: Value) -> Value {
    let body = json!({"method": method, "arguments": arguments}).to_string();
    let (status, headers, _) = post(addr, &[], &body);
    assert_eq!(status, 409, "the first request must get the session id");
    let id = headers
        .iter()
        .find(|(k, _)| k == "x-transmission-session-id")
        .map(|(_, v)| v.clone())
        .expect("a session id header");
    let (status, _, body) = post(addr, &[("X-Transmission-Session-Id", &id)], &body);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["result"], "success", "{answer}");
    answer["arguments"].clone()
}

/// torrent-get of `fields` for torrent `id` (None if it is not there).
pub fn torrent(addr: SocketAddr, id: u64, fields: &[&str]) -> Option<Value> {
    let args = rpc(addr, "torrent-get", json!({"ids": [id], "fields": fields}));
    args["torrents"].as_array().unwrap().first().cloned()
}
