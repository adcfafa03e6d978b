//! A private test network of Linux network namespaces: a hub namespace holding a bridge,
//! and hosts 10.99.0.1, 10.99.0.2, ... each in its own namespace with a veth to the hub.
//! Nothing leaves these namespaces. Dropping the network deletes them (and their links).
//! Needs root and iproute2.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Network {
    namespaces: Vec<String>,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Network {
    /// Creates `hosts` hosts on a fresh bridge. Fails with a readable message when not root.
    pub fn new(hosts: usize) -> Result<Network, String> {
        let tag = format!(
            "bt{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let hub = format!("{tag}hub");
        let mut net = Network {
            namespaces: Vec::new(),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &hub])?;
        net.namespaces.push(hub.clone());
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 1..=hosts {
            let ns = format!("{tag}h{i}");
            ip(&["netns", "add", &ns])?;
            net.namespaces.push(ns.clone());
            let port = format!("p{i}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.99.0.{i}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            net.hosts.push(ns);
        }
        Ok(net)
    }

    /// The address of host `n` (1-based).
    pub fn addr(&self, n: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 99, 0, n as u8)
    }

    /// Runs `f` on a fresh thread that has joined host `n`'s namespace, so sockets it opens
    /// are on the test network. The caller's own threads stay where they are.
    #[allow(dead_code)] // not every test crate that includes this module uses it
    pub fn run_in<T: Send>(&self, n: usize, f: impl FnOnce() -> T + Send) -> Result<T, String> {
        use std::os::fd::AsRawFd;
        let path = format!("/var/run/netns/{}", self.hosts[n - 1]);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
                // SAFETY: setns only switches this thread's network namespace; the fd is
                // valid for the call.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join()
            .map_err(|_| "thread in the namespace panicked".to_string())?
        })
    }

    /// A command that runs `program` inside host `n`. `ip netns exec` replaces itself with
    /// the program, so the child's process id is the program's.
    pub fn command(&self, n: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.hosts[n - 1], program]);
        c
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
