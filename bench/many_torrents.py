#!/usr/bin/env python3
"""Scale benchmark: many torrents seeded by one process, and a second process that downloads
a hundred of them at once through the seeder's one listening port.

Makes (once) N small files and a torrent of each (default 1,000 files of 64 KiB in 16 KiB
pieces). Then, in one run:
  - RSS of `battorrent seed` with one torrent and with all N, idle (no trackers, no peers),
    after the process has settled: the difference divided by N-1 is the memory per idle
    torrent; also the time from start until the process listens with every torrent live;
  - the same for transmission-daemon when it is installed (torrents added with
    transmission-remote), for comparison;
  - `battorrent download` of the first 100 torrents from the seeder at once (one process,
    one port, loopback): wall time and peak RSS.
Prints medians of --runs runs.

Needs: target/release/battorrent (cargo build --release). Optional: transmission-daemon and
transmission-remote (apt-get install transmission-daemon transmission-cli).
Usage: python3 bench/many_torrents.py [--torrents 1000] [--runs 3] [--dir /tmp/bt-many]
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target", "release", "battorrent")


def status_kib(pid, field):
    """A size field of /proc/PID/status (VmRSS, VmHWM) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def hwm_kib(pid):
    return status_kib(pid, "VmHWM")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def settle_rss(pid, seconds=3.0):
    """RSS once it stopped moving (a few samples), in KiB."""
    time.sleep(seconds)
    samples = []
    for _ in range(5):
        samples.append(rss_kib(pid))
        time.sleep(0.2)
    return statistics.median(samples)


def make(work, n):
    data = os.path.join(work, "data")
    torrents = os.path.join(work, "torrents")
    if os.path.exists(os.path.join(work, "done")):
        return data, torrents
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(data)
    os.makedirs(torrents)
    for i in range(n):
        name = f"f{i:05}.bin"
        with open(os.path.join(data, name), "wb") as f:
            f.write(os.urandom(64 * 1024))
        subprocess.run([OURS, "create", os.path.join(data, name), "-l", "16K", "--no-date",
                        "-o", os.path.join(torrents, f"t{i:05}.torrent")],
                       check=True, capture_output=True)
    open(os.path.join(work, "done"), "w").close()
    return data, torrents


def ours_seed(torrents, data, count):
    port = free_port()
    files = sorted(os.listdir(torrents))[:count]
    start = time.time()
    p = subprocess.Popen([OURS, "seed", "--no-dht", *[os.path.join(torrents, f) for f in files],
                          "--dir", data, "--no-trackers", "--bind", "127.0.0.1",
                          "--port", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        p.kill()
        sys.exit("our seeder did not listen")
    started = time.time() - start
    return p, port, started


def ours_idle(torrents, data, count):
    p, port, started = ours_seed(torrents, data, count)
    rss = settle_rss(p.pid)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)
    return rss, started


def transmission_idle(work, torrents, data, count):
    if not shutil.which("transmission-daemon") or not shutil.which("transmission-remote"):
        return None
    conf = os.path.join(work, f"tr-conf-{count}")
    shutil.rmtree(conf, ignore_errors=True)
    os.makedirs(conf)
    port = free_port()
    with open(os.path.join(conf, "settings.json"), "w") as f:
        f.write('{"utp-enabled": false, "dht-enabled": false, "lpd-enabled": false, '
                '"pex-enabled": false, "port-forwarding-enabled": false, '
                f'"rpc-port": {port}, "rpc-bind-address": "127.0.0.1", '
                '"rpc-authentication-required": false, "rpc-whitelist-enabled": false, '
                '"peer-port": 0, "download-queue-enabled": false, "seed-queue-enabled": false}')
    start = time.time()
    p = subprocess.Popen(["transmission-daemon", "-f", "-g", conf, "-w", data],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        p.kill()
        return None
    files = sorted(os.listdir(torrents))[:count]
    remote = ["transmission-remote", f"127.0.0.1:{port}"]
    for i in range(0, len(files), 100):
        args = []
        for f in files[i:i + 100]:
            args += ["-a", os.path.join(torrents, f)]
        subprocess.run(remote + args, capture_output=True)
    started = time.time() - start
    rss = settle_rss(p.pid, 5.0)
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return rss, started


def download_100(work, torrents, data, count):
    seeder, port, _ = ours_seed(torrents, data, count)
    time.sleep(1)
    files = sorted(os.listdir(torrents))[:100]
    out = os.path.join(work, "get")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    start = time.time()
    p = subprocess.Popen([OURS, "download", "--no-dht", *[os.path.join(torrents, f) for f in files],
                          "--dir", out, "--no-trackers", "--bind", "127.0.0.1", "--port", "0",
                          "--peer", f"127.0.0.1:{port}", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0
    while p.poll() is None:
        try:
            peak = max(peak, hwm_kib(p.pid))
        except OSError:
            pass
        time.sleep(0.02)
    elapsed = time.time() - start
    seeder.send_signal(signal.SIGINT)
    seeder.wait(timeout=30)
    if p.returncode != 0:
        sys.exit(f"download of 100 torrents failed ({p.returncode})")
    for f in os.listdir(out):
        with open(os.path.join(out, f), "rb") as a, open(os.path.join(data, f), "rb") as b:
            if a.read() != b.read():
                sys.exit(f"{f} differs")
    return elapsed, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrents", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/battorrent-bench-many")
    args = ap.parse_args()
    n = args.torrents
    data, torrents = make(args.dir, n)
    rows = {"ours_1": [], "ours_n": [], "ours_start": [], "tr_1": [], "tr_n": [],
            "tr_start": [], "dl_time": [], "dl_peak": []}
    for run in range(args.runs):
        rss1, _ = ours_idle(torrents, data, 1)
        rssn, start = ours_idle(torrents, data, n)
        rows["ours_1"].append(rss1)
        rows["ours_n"].append(rssn)
        rows["ours_start"].append(start)
        tr1 = transmission_idle(args.dir, torrents, data, 1)
        trn = transmission_idle(args.dir, torrents, data, n)
        if tr1 and trn:
            rows["tr_1"].append(tr1[0])
            rows["tr_n"].append(trn[0])
            rows["tr_start"].append(trn[1])
        t, peak = download_100(args.dir, torrents, data, n)
        rows["dl_time"].append(t)
        rows["dl_peak"].append(peak)
        print(f"run {run + 1}: ours {rss1:.0f} -> {rssn:.0f} KiB, started in {start:.2f} s; "
              f"download of 100: {t:.2f} s, peak {peak} KiB"
              + (f"; transmission-daemon {tr1[0]:.0f} -> {trn[0]:.0f} KiB" if tr1 and trn else ""),
              flush=True)
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    per = (med["ours_n"] - med["ours_1"]) * 1024 / (n - 1)
    print(f"\nmedians of {args.runs} runs, {n} idle torrents of 64 KiB (4 pieces each):")
    print(f"  ours: {med['ours_1'] / 1024:.1f} MiB with 1, {med['ours_n'] / 1024:.1f} MiB with {n}: "
          f"{per / 1024:.2f} KiB per idle torrent; every torrent live {med['ours_start']:.2f} s after start")
    if "tr_n" in med:
        tper = (med["tr_n"] - med["tr_1"]) * 1024 / (n - 1)
        print(f"  transmission-daemon: {med['tr_1'] / 1024:.1f} MiB with 1, {med['tr_n'] / 1024:.1f} MiB "
              f"with {n}: {tper / 1024:.2f} KiB per torrent (added over RPC in {med['tr_start']:.2f} s)")
        print(f"  ours / transmission-daemon, memory per torrent: {per / tper:.2f}")
    print(f"  download of 100 torrents at once through one port: {med['dl_time']:.2f} s, "
          f"peak RSS {med['dl_peak'] / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
