#!/usr/bin/env python3
"""Whole-program benchmark: `battorrent tracker --udp` against aquatic_udp and opentracker,
in the same run.

Each tracker runs pinned to core 0, the load generator to core 1. Two generators:
- `--generator aquatic` (default): aquatic_udp_load_test (one worker, four sockets,
  connect/announce/scrape mixed as aquatic's defaults, 100,000 random torrents), against
  ours and aquatic_udp. Goal: ours >= aquatic_udp per CPU-second.
- `--generator ours`: examples/udp_load.rs over 1,000 fixed info hashes that every
  tracker whitelists (Debian's opentracker serves only whitelisted hashes), against ours,
  aquatic_udp and opentracker. Goal: ours >= 1.5 x opentracker per CPU-second.
The figure that matters is responses per CPU-second of the tracker process: a generator
may saturate its core before a tracker does, so raw rates say less. Runs alternate; medians
are printed with the ratios. Also reported: the tracker's peak RSS and, for ours, the peers
it holds (from /stats). `--threads 2` runs ours with two worker threads.

Usage: python3 bench/udp_tracker_vs_others.py [--runs 3] [--seconds 10] [--generator aquatic|ours] [--threads N]
Needs: cargo install aquatic_udp aquatic_udp_load_test (aquatic_udp 0.9 builds only
without --locked); apt-get install opentracker util-linux; cargo build --release
--example udp_load; a release build of battorrent.
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
LOAD = os.path.join(ROOT, "target/release/examples/udp_load")


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


def start_tracker(kind, port, http_port, work, whitelist, threads):
    if kind == "battorrent":
        cmd = [OURS, "tracker", "--bind", f"127.0.0.1:{http_port}",
               "--udp", f"127.0.0.1:{port}", "--max-memory-per-prefix", "1024",
               "--max-numwant", "30", "--threads", str(threads)]
        if whitelist:
            cmd += ["--allow", whitelist]
    elif kind == "aquatic_udp":
        config = os.path.join(work, "aquatic_udp.toml")
        with open(config, "w") as f:
            f.write(f'socket_workers = 1\nlog_level = "error"\n[network]\n'
                    f'address = "127.0.0.1:{port}"\n')
            if whitelist:
                f.write(f'[access_list]\nmode = "allow"\npath = "{whitelist}"\n')
        cmd = ["aquatic_udp", "-c", config]
    else:
        # opentracker chroots to -d and reads the whitelist from inside it.
        cmd = ["opentracker", "-i", "127.0.0.1", "-p", str(http_port), "-P", str(port),
               "-d", work, "-w", os.path.basename(whitelist)]
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    if proc.poll() is not None:
        sys.exit(f"{kind} did not start: {' '.join(cmd)}")
    return proc


def load_ours(port, seconds, hashes):
    out = subprocess.run(["taskset", "-c", "1", LOAD, f"127.0.0.1:{port}", str(seconds), hashes],
                         capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"responses/s: ([\d.]+)", out.stdout)
    if not m:
        sys.exit(f"no rate from udp_load:\n{out.stdout}{out.stderr}")
    return float(m.group(1)), out.stdout


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


def run_one(kind, seconds, work, whitelist, threads):
    port, http_port = free_port(), free_port()
    proc = start_tracker(kind, port, http_port, work, whitelist, threads)
    try:
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.time()
        if whitelist:
            rate, _ = load_ours(port, seconds, whitelist)
        else:
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
    ap.add_argument("--generator", choices=["aquatic", "ours"], default="aquatic")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    tools = ["aquatic_udp", "taskset"]
    tools += ["aquatic_udp_load_test"] if args.generator == "aquatic" else ["opentracker"]
    for tool in tools:
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (see the usage above)")
    if not os.path.exists(OURS) or (args.generator == "ours" and not os.path.exists(LOAD)):
        sys.exit("build first: cargo build --release && cargo build --release --example udp_load")
    kinds = ["battorrent", "aquatic_udp"] + (["opentracker"] if args.generator == "ours" else [])
    results = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as work:
        whitelist = None
        # opentracker drops to user nobody after its chroot: it must be able to read there.
        os.chmod(work, 0o755)
        if args.generator == "ours":
            whitelist = os.path.join(work, "whitelist")
            with open(whitelist, "w") as f:
                for _ in range(1000):
                    f.write(os.urandom(20).hex() + "\n")
        for r in range(args.runs):
            for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                res = run_one(kind, args.seconds, work, whitelist, args.threads)
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
    for other in kinds[1:]:
        print(f"  battorrent / {other}: {med['battorrent'] / med[other]:.2f} per CPU-second, "
              f"{rate['battorrent'] / rate[other]:.2f} by rate")


if __name__ == "__main__":
    main()
