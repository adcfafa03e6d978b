#!/usr/bin/env python3
"""Whole-program benchmark: `battorrent tracker --udp` against aquatic_udp under aquatic's
UDP load generator, in the same run.

Each tracker runs pinned to core 0, the load generator to core 1 (one worker, four
sockets, connect/announce/scrape mixed as aquatic's defaults). The figure that matters is
responses per CPU-second of the tracker process: the load generator may saturate its core
before a tracker does, so raw rates say less. Runs alternate between the trackers; medians
are printed with the ratio ours / aquatic_udp (goal: at least 1). Also reported: the
tracker's peak RSS and, for ours, heap per peer from /stats after the run.

Usage: python3 bench/udp_tracker_vs_aquatic.py [--runs 3] [--seconds 10]
Needs: cargo install aquatic_udp aquatic_udp_load_test (aquatic_udp 0.9 builds only
without --locked); util-linux (taskset); a release build of battorrent.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target/release/battorrent")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start_tracker(kind, port, http_port, work):
    if kind == "battorrent":
        cmd = [OURS, "tracker", "--bind", f"127.0.0.1:{http_port}",
               "--udp", f"127.0.0.1:{port}", "--max-memory-per-prefix", "1024",
               "--max-numwant", "30"]
    else:
        config = os.path.join(work, "aquatic_udp.toml")
        with open(config, "w") as f:
            f.write(f'socket_workers = 1\nlog_level = "error"\n[network]\n'
                    f'address = "127.0.0.1:{port}"\n')
        cmd = ["aquatic_udp", "-c", config]
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    if proc.poll() is not None:
        sys.exit(f"{kind} did not start: {' '.join(cmd)}")
    return proc


def load(port, seconds, work):
    config = os.path.join(work, "load.toml")
    with open(config, "w") as f:
        f.write(f'server_address = "127.0.0.1:{port}"\nlog_level = "error"\nworkers = 1\n'
                f'duration = {seconds}\nsummarize_last = {max(1, seconds - 2)}\n'
                f'extra_statistics = false\n[network]\nmultiple_client_ipv4s = true\n'
                f'sockets_per_worker = 4\n[requests]\nnumber_of_torrents = 100000\n'
                f'number_of_peers = 200000\n')
    out = subprocess.run(["taskset", "-c", "1", "aquatic_udp_load_test", "-c", config],
                         capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout + out.stderr
    m = re.search(r"[Rr]esponses in:\s*([\d.]+)", text)
    if not m:
        sys.exit(f"no response rate in the load generator's output:\n{text}")
    return float(m.group(1)), text


def run_one(kind, seconds, work):
    port, http_port = free_port(), free_port()
    proc = start_tracker(kind, port, http_port, work)
    try:
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.time()
        rate, _ = load(port, seconds, work)
        elapsed = time.time() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        rss = peak_rss_kib(proc.pid)
        peers = None
        if kind == "battorrent":
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/stats", timeout=5) as r:
                stats = json.load(r)
            peers = stats.get("peers")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    # Responses per second over the summarised window, times the run, per CPU-second.
    per_cpu = rate * elapsed / cpu if cpu > 0 else float("nan")
    return rate, per_cpu, cpu / elapsed, rss, peers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    for tool in ("aquatic_udp", "aquatic_udp_load_test", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (cargo install aquatic_udp aquatic_udp_load_test)")
    if not os.path.exists(OURS):
        sys.exit("build first: cargo build --release")
    kinds = ["battorrent", "aquatic_udp"]
    results = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.runs):
            for kind in kinds[r % 2:] + kinds[:r % 2]:
                res = run_one(kind, args.seconds, work)
                results[kind].append(res)
                rate, per_cpu, load_share, rss, peers = res
                extra = f", {peers} peers held" if peers is not None else ""
                print(f"run {r + 1}: {kind:12} {rate:10.0f} responses/s  "
                      f"{per_cpu:10.0f} per CPU-second  tracker CPU {load_share * 100:4.0f}%  "
                      f"peak RSS {rss / 1024:6.1f} MiB{extra}", flush=True)
    med = {k: statistics.median(x[1] for x in v) for k, v in results.items()}
    rate = {k: statistics.median(x[0] for x in v) for k, v in results.items()}
    print(f"\nmedians of {args.runs}, {args.seconds} s each, tracker on one pinned core:")
    for k in kinds:
        print(f"  {k:12} {rate[k]:10.0f} responses/s  {med[k]:10.0f} per CPU-second")
    print(f"  battorrent / aquatic_udp: {med['battorrent'] / med['aquatic_udp']:.2f} per CPU-second, "
          f"{rate['battorrent'] / rate['aquatic_udp']:.2f} by rate")


if __name__ == "__main__":
    main()
