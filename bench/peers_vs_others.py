#!/usr/bin/env python3
"""Whole-program benchmark: one seeder and one downloader of the same client on two hosts of
a private namespace network, for BatTorrent, rqbit, libtorrent and aria2, in one run.

Makes (once) a file of random bytes (default 1 GiB) and a torrent of it with 1 MiB pieces
announcing to our tracker on a third host. For each client and run (clients alternate
within a round): start its seeder on host 1 and wait until it serves, then time its
downloader on host 2 from start to exit (complete and verified), record the downloader's
peak RSS, compare the bytes, stop the seeder. Prints medians, and ratios against rqbit
(issue targets: time at most 0.5 x rqbit's, peak RSS no larger than rqbit's).

Also a flash crowd (--crowd N): one seeder of ours and N downloaders of ours on N hosts;
prints the total time and the seeder's upload divided by the file size (target at most 1.5).

With --before PATH (a `battorrent` binary built from an earlier commit), that build runs as
a contender too ("before"), in the same rounds and flash crowds: a before/after comparison
of our own code in one run.

Needs root, iproute2, python3-libtorrent, aria2, and rqbit (`cargo install rqbit`).
Usage: python3 bench/peers_vs_others.py [--runs 5] [--size-mib 1024] [--clients ours,rqbit,...]
       [--crowd 8] [--before PATH] [--dir /tmp/battorrent-bench-peers]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target", "release", "battorrent")
LT = os.path.join(ROOT, "bench", "lt_peer.py")
TAG = f"btb{os.getpid() % 100000}"
TRACKER_HOST = 3
# Our binaries by contender name ("before" is set by --before).
BINARIES = {"ours": OURS}



_NO_DHT = {}


def no_dht(binary):
    """`--no-dht` for a build whose DHT is on by default (older builds lack the flag and
    never joined the DHT): a benchmark never contacts the public routers."""
    if binary not in _NO_DHT:
        help_text = subprocess.run([binary, "download", "--help"], capture_output=True,
                                   text=True).stdout
        _NO_DHT[binary] = ["--no-dht"] if "--no-dht" in help_text else []
    return _NO_DHT[binary]

def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Network:
    """Hosts 10.99.0.N, each in its own namespace, on a bridge in a hub namespace."""

    def __init__(self, hosts):
        self.hub = f"{TAG}hub"
        self.hosts = []
        sh("ip", "netns", "add", self.hub)
        sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.hub, "link", "set", "br0", "up")
        for i in range(1, hosts + 1):
            ns = f"{TAG}h{i}"
            sh("ip", "netns", "add", ns)
            self.hosts.append(ns)
            sh("ip", "-n", self.hub, "link", "add", f"p{i}", "type", "veth",
               "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.hub, "link", "set", f"p{i}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"10.99.0.{i}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def cmd(self, host, *argv):
        return ["ip", "netns", "exec", self.hosts[host - 1], *argv]

    def close(self):
        for ns in self.hosts + [self.hub]:
            sh("ip", "netns", "del", ns, check=False)


def addr(host):
    return f"10.99.0.{host}"


def wait_port(net, host, port, proc, timeout=120):
    """Waits until host listens on TCP port (the seeder is ready to serve)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"seeder exited early ({proc.returncode}): {proc.args}")
        out = sh(*net.cmd(host, "ss", "-Hltn", f"sport = :{port}"), check=False).stdout
        if out.strip():
            return
        time.sleep(0.05)
    sys.exit(f"nothing listens on {addr(host)}:{port}")


# Each client: (seeder argv, port it listens on, downloader argv), for a torrent, a seed
# folder and a download folder.
def client_commands(client, torrent, seed_dir, dl_dir, seed_host, dl_host):
    if client in BINARIES:
        binary = BINARIES[client]
        return (
            [binary, "seed", *no_dht(binary), torrent, "--dir", seed_dir, "--port", "6881"],
            6881,
            [binary, "download", *no_dht(binary), torrent, "--dir", dl_dir, "--port", "6881"],
        )
    if client == "rqbit":
        common = ["rqbit", "--disable-dht", "--disable-upnp-port-forward", "--disable-lsd",
                  "--listen-port", "6881"]
        return (
            common + ["download", "--disable-http-api", "--overwrite", "-o", seed_dir, torrent],
            6881,
            common + ["download", "--disable-http-api", "-e", "-o", dl_dir, torrent],
        )
    if client == "libtorrent":
        return (
            ["/usr/bin/python3", LT, "seed", torrent, seed_dir, addr(seed_host)],
            6881,
            ["/usr/bin/python3", LT, "download", torrent, dl_dir, addr(dl_host)],
        )
    if client == "aria2":
        common = ["aria2c", "--listen-port=6881", "--enable-dht=false", "--enable-dht6=false",
                  "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                  "--summary-interval=0", "--console-log-level=warn",
                  "--file-allocation=falloc"]
        return (
            common + ["--seed-ratio=0.0", "--check-integrity=true", f"--dir={seed_dir}", torrent],
            6881,
            common + ["--seed-time=0", f"--dir={dl_dir}", torrent],
        )
    sys.exit(f"unknown client {client}")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def timed(argv, timeout):
    """Runs argv; returns (seconds, peak RSS in KiB, stderr tail)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            sys.exit(f"{argv} did not finish in {timeout} s")
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")[-2000:]
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv} failed ({status}): {err}")
    return elapsed, usage.ru_maxrss, err


def same_file(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


def one_pair(net, client, torrent, data, work):
    seed_dir = os.path.dirname(data)
    dl_dir = os.path.join(work, f"dl-{client}")
    shutil.rmtree(dl_dir, ignore_errors=True)
    os.makedirs(dl_dir)
    seed_argv, port, dl_argv = client_commands(client, torrent, seed_dir, dl_dir, 1, 2)
    seeder = subprocess.Popen(net.cmd(1, *seed_argv), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_port(net, 1, port, seeder)
        secs, rss, _ = timed(net.cmd(2, *dl_argv), timeout=300)
    finally:
        stop(seeder)
    got = os.path.join(dl_dir, os.path.basename(data))
    if not same_file(got, data):
        sys.exit(f"{client}: downloaded bytes differ from the original")
    shutil.rmtree(dl_dir)
    return secs, rss


def crowd(net, n, torrent, data, work, binary=OURS):
    """One seeder of ours on host 1, n downloaders of ours on hosts 4.. ."""
    seed_dir = os.path.dirname(data)
    seeder = subprocess.Popen(
        net.cmd(1, binary, "seed", *no_dht(binary), torrent, "--dir", seed_dir, "--port", "6881", "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_port(net, 1, 6881, seeder)
        start = time.perf_counter()
        procs = []
        for i in range(n):
            d = os.path.join(work, f"crowd-{i}")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            procs.append((d, subprocess.Popen(
                net.cmd(4 + i, binary, "download", *no_dht(binary), torrent, "--dir", d, "--port", "6881"),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        for d, p in procs:
            if p.wait(timeout=600) != 0:
                sys.exit(f"crowd downloader failed: {p.stderr.read().decode()[-2000:]}")
        elapsed = time.perf_counter() - start
    finally:
        seeder.send_signal(signal.SIGINT)
        out, _ = seeder.communicate(timeout=30)
    summary = json.loads(out)
    # One torrent: {"torrents": [{"stats": ...}]}; builds before the multi-torrent session
    # printed {"stats": ...}.
    stats = summary["torrents"][0]["stats"] if "torrents" in summary else summary["stats"]
    uploaded = stats["uploaded"]
    for d, _ in procs:
        if not same_file(os.path.join(d, os.path.basename(data)), data):
            sys.exit("crowd: a copy differs from the original")
        shutil.rmtree(d)
    return elapsed, uploaded / os.path.getsize(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--clients", default="ours,rqbit,libtorrent,aria2")
    ap.add_argument("--crowd", type=int, default=0, help="flash crowd size (0: skip)")
    ap.add_argument("--crowd-runs", type=int, default=3)
    ap.add_argument("--before", help="an earlier battorrent binary to compare with")
    ap.add_argument("--dir", default="/tmp/battorrent-bench-peers")
    args = ap.parse_args()
    clients = args.clients.split(",")
    if args.before:
        BINARIES["before"] = os.path.abspath(args.before)
        clients.insert(1, "before")
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    for tool, client in [("rqbit", "rqbit"), ("aria2c", "aria2")]:
        if client in clients and not shutil.which(tool):
            sys.exit(f"{tool} is not installed")

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    os.makedirs(os.path.join(args.dir, "seed"), exist_ok=True)
    data = os.path.join(args.dir, "seed", f"data-{args.size_mib}M.bin")
    if not os.path.exists(data) or os.path.getsize(data) != args.size_mib << 20:
        with open(data, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
    torrent = os.path.join(args.dir, "data.torrent")
    sh(OURS, "create", data, "-l", "1M", "--force", "-o", torrent,
       "-a", f"http://{addr(TRACKER_HOST)}:6969/announce")

    net = Network(3 + args.crowd)
    tracker = subprocess.Popen(net.cmd(TRACKER_HOST, OURS, "tracker", "--bind",
                                       f"{addr(TRACKER_HOST)}:6969", "--interval", "5"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(net, TRACKER_HOST, 6969, tracker)
        results = {c: [] for c in clients}
        for r in range(args.runs):
            order = clients[r % len(clients):] + clients[:r % len(clients)]
            for c in order:
                secs, rss = one_pair(net, c, torrent, data, args.dir)
                results[c].append((secs, rss))
                print(f"run {r + 1}: {c:10} {secs:7.2f} s  peak RSS {rss / 1024:6.1f} MiB",
                      flush=True)
        print()
        print(f"{args.size_mib} MiB, 1 MiB pieces, one seeder -> one downloader, "
              f"medians of {args.runs}:")
        med = {c: (statistics.median(s for s, _ in v), statistics.median(m for _, m in v))
               for c, v in results.items()}
        for c, (secs, rss) in med.items():
            line = f"  {c:10} {secs:7.2f} s  {args.size_mib / secs:7.0f} MiB/s  " \
                   f"peak RSS {rss / 1024:6.1f} MiB"
            if "rqbit" in med and c != "rqbit":
                line += f"   time x{secs / med['rqbit'][0]:.2f} of rqbit's, " \
                        f"RSS x{rss / med['rqbit'][1]:.2f}"
            print(line)
        if args.crowd:
            crowds = {name: [] for name in BINARIES}
            for _ in range(args.crowd_runs):
                for name, binary in BINARIES.items():
                    t, ratio = crowd(net, args.crowd, torrent, data, args.dir, binary)
                    crowds[name].append((t, ratio))
                    print(f"crowd of {args.crowd} ({name}): {t:.2f} s, seeder uploaded "
                          f"{ratio:.2f} x the file", flush=True)
            for name, runs in crowds.items():
                print(f"flash crowd ({name}), 1 seeder + {args.crowd} downloaders, medians of "
                      f"{len(runs)}: {statistics.median(t for t, _ in runs):.2f} s, seeder upload "
                      f"{statistics.median(r for _, r in runs):.2f} x the file (target <= 1.5)")
    finally:
        stop(tracker)
        net.close()


if __name__ == "__main__":
    main()
