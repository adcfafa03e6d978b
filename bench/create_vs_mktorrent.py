#!/usr/bin/env python3
"""Whole-program benchmark: `battorrent create` against `mktorrent -t 2` on the same file.

Makes (once) a 1 GiB file of random bytes, reads it into the page cache, then alternates
runs of both tools at 256 KiB pieces. Prints each tool's median wall time and peak RSS and
the ratio ours / mktorrent (target: at most 0.9). Also checks both produce the same info hash.

Usage: python3 bench/create_vs_mktorrent.py [--runs 7] [--size-mib 1024] [--dir /tmp/battorrent-bench]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    """Runs cmd; returns (seconds, peak RSS in KiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if status != 0:
        sys.exit(f"{cmd[0]} failed ({status}): {err}")
    return elapsed, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--dir", default="/tmp/battorrent-bench")
    args = ap.parse_args()
    if not shutil.which("mktorrent"):
        sys.exit("mktorrent is not installed: apt-get install mktorrent")

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    ours = os.path.join(ROOT, "target", "release", "battorrent")
    os.makedirs(args.dir, exist_ok=True)
    data = os.path.join(args.dir, f"data-{args.size_mib}M.bin")
    if not os.path.exists(data) or os.path.getsize(data) != args.size_mib << 20:
        with open(data, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
    with open(data, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass

    out_ours = os.path.join(args.dir, "ours.torrent")
    out_mk = os.path.join(args.dir, "mktorrent.torrent")
    results = {"battorrent": [], "mktorrent": []}
    for _ in range(args.runs):
        results["battorrent"].append(
            timed([ours, "create", data, "-l", "256K", "--no-date", "-f", "-o", out_ours]))
        if os.path.exists(out_mk):
            os.remove(out_mk)
        results["mktorrent"].append(
            timed(["mktorrent", "-t", "2", "-l", "18", "-o", out_mk, data]))

    def info_hash(path):
        shown = subprocess.run([ours, "show", "--json", path], capture_output=True, check=True)
        return json.loads(shown.stdout)["info_hash"]

    same = info_hash(out_ours) == info_hash(out_mk)
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    rss = {k: max(r for _, r in v) for k, v in results.items()}
    print(f"{args.size_mib} MiB, 256 KiB pieces, {args.runs} runs each, {os.cpu_count()} cores")
    for k in results:
        times = ", ".join(f"{t:.3f}" for t, _ in results[k])
        print(f"  {k:<11} median {med[k]:.3f} s  ({args.size_mib / 1024 / med[k]:.2f} GiB/s)  "
              f"peak RSS {rss[k] / 1024:.1f} MiB  runs: {times}")
    print(f"  ratio battorrent/mktorrent: {med['battorrent'] / med['mktorrent']:.3f}  (target <= 0.9)")
    print(f"  same info hash: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
