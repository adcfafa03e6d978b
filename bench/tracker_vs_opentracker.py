#!/usr/bin/env python3
"""Whole-program benchmark: `battorrent tracker` against opentracker under wrk.

Both trackers serve the same 1,000 whitelisted info hashes; wrk (bench/announce.lua)
announces each time as a fresh random peer with mixed events, compact=1, numwant=50.
The tracker runs pinned to CPU 0, wrk to CPU 1. Runs alternate between the trackers and
the medians are compared. On 2 cores one wrk thread can saturate its core before a tracker
does (notably with Connection: close, where wrk reconnects for every request), so besides
the raw rate the script reports each tracker's CPU cost as announces per CPU-second of the
tracker process: what one fully busy core would serve. Targets:
  - Connection: close on both (opentracker closes every connection anyway);
    target: ours >= 1.2 x opentracker.
  - keep-alive for ours alone; target: >= 100,000 announces/s. Also reported with
    --pipeline N requests in flight per connection (HTTP/1.1 pipelining).

Usage: python3 bench/tracker_vs_opentracker.py [--runs 3] [--seconds 10] [--connections 64]
Needs: apt-get install opentracker wrk
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"tracker exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"tracker on port {port} not ready after {timeout} s")


def start(kind, port, whitelist):
    if kind == "battorrent":
        cmd = [os.path.join(ROOT, "target/release/battorrent"), "tracker",
               "--bind", f"127.0.0.1:{port}", "--allow", whitelist, "--max-numwant", "50"]
    else:
        # opentracker chroots to -d and reads the whitelist from inside it.
        folder = os.path.dirname(whitelist)
        cmd = ["opentracker", "-i", "127.0.0.1", "-p", str(port), "-P", str(port),
               "-d", folder, "-w", os.path.basename(whitelist)]
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, cwd=os.path.dirname(whitelist),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port, seconds, connections, close, hashes_lua, pipeline=1):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
           "-s", os.path.join(ROOT, "bench/announce.lua")]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{port}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, HASHES_LUA=hashes_lua, PIPELINE=str(pipeline))).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = int(re.search(r"non-200: (\d+)", out).group(1))
    errors = re.search(r"Socket errors:.*", out)
    return rate, total, bad, errors.group(0) if errors else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--pipeline", type=int, default=8, help="depth for the pipelined keep-alive run")
    args = ap.parse_args()
    for tool in ("opentracker", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install opentracker wrk util-linux)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="battorrent-trackerbench-")
    hashes = [os.urandom(20) for _ in range(1000)]
    whitelist = os.path.join(tmp, "whitelist.txt")
    with open(whitelist, "w") as f:
        f.writelines(h.hex() + "\n" for h in hashes)
    hashes_lua = os.path.join(tmp, "hashes.lua")
    with open(hashes_lua, "w") as f:
        f.write("return {\n")
        f.writelines('"' + "".join(f"%{b:02X}" for b in h) + '",\n' for h in hashes)
        f.write("}\n")

    # (tracker, Connection: close, pipeline depth)
    plan = [("battorrent", True, 1), ("opentracker", True, 1), ("battorrent", False, 1),
            ("battorrent", False, args.pipeline)]
    rates = {p: [] for p in plan}
    per_cpu = {p: [] for p in plan}
    for _ in range(args.runs):
        for kind, close, depth in plan:
            port = free_port()
            proc = start(kind, port, whitelist)
            try:
                before = cpu_seconds(proc.pid)  # taskset execs the tracker: same pid
                rate, total, bad, errors = wrk(port, args.seconds, args.connections, close,
                                               hashes_lua, depth)
                used = cpu_seconds(proc.pid) - before
            finally:
                stop(proc)
            if bad:
                sys.exit(f"{kind}: {bad} non-200 answers ({errors})")
            rates[(kind, close, depth)].append(rate)
            per_cpu[(kind, close, depth)].append(total / max(used, 1e-9))

    med = {p: statistics.median(r) for p, r in rates.items()}
    cpu = {p: statistics.median(r) for p, r in per_cpu.items()}
    print(f"1,000 info hashes, random peers, mixed events, numwant=50; tracker on CPU 0, "
          f"wrk -t1 -c{args.connections} on CPU 1, {args.runs} runs x {args.seconds} s")
    for (kind, close, depth), r in rates.items():
        mode = "Connection: close" if close else f"keep-alive x{depth}"
        runs = ", ".join(f"{x:,.0f}" for x in r)
        print(f"  {kind:<11} {mode:<17} median {med[(kind, close, depth)]:>10,.0f} announces/s"
              f"  {cpu[(kind, close, depth)]:>10,.0f} per CPU-second   runs: {runs}")
    ratio = med[("battorrent", True, 1)] / med[("opentracker", True, 1)]
    cpu_ratio = cpu[("battorrent", True, 1)] / cpu[("opentracker", True, 1)]
    print(f"  ratio battorrent/opentracker (Connection: close): {ratio:.2f} by rate, "
          f"{cpu_ratio:.2f} by CPU cost  (target >= 1.2)")
    print(f"  battorrent keep-alive: {med[('battorrent', False, 1)]:,.0f}/s, pipelined x{args.pipeline}: "
          f"{med[('battorrent', False, args.pipeline)]:,.0f}/s  (target >= 100,000)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
