#!/usr/bin/env python3
"""Whole-program benchmark: `battorrent tracker` against opentracker (and hyper) under wrk.

All trackers serve the same 1,000 whitelisted info hashes; wrk (bench/announce.lua)
announces each time as a fresh random peer with mixed events, compact=1, numwant=50.
The tracker runs pinned to CPU 0, wrk to CPU 1. Runs alternate between the contenders and
the medians are compared. On 2 cores wrk can saturate its core before a tracker does
(with Connection: close it reconnects for every request), so besides the raw rate the
script reports each tracker's CPU cost as announces per CPU-second of the tracker process
(what one fully busy core would serve) and wrk's own CPU use. Contenders:
  - Connection: close, ours and opentracker (which closes every connection anyway);
    target: ours >= 1.2 x opentracker.
  - keep-alive, ours; target: >= 100,000 announces/s on one core.
  - keep-alive, hyper: the same tracker code behind hyper's HTTP/1.1 server
    (examples/tracker_hyper.rs), to compare the HTTP layers.
  - keep-alive ceiling: our server answering a fixed 404 with no tracker work, wrk sending
    one static request: what this machine's loopback TCP allows any responder.
  - keep-alive bare responder (bench/bare_responder.c, built here with cc): an epoll
    loop in C that answers every request of the same wrk script with a fixed 200 reply of
    our typical size (--bare-body bytes), doing no HTTP parsing and no tracker work. Its
    rate is the ceiling that loopback TCP and the load generator set on this machine for
    any server, ours included.
  - keep-alive with --pipeline N requests in flight per connection (HTTP/1.1 pipelining).
  - Connection: close again, ours and opentracker, with wrk running two threads on both
    cores (the tracker still pinned to CPU 0): with wrk alone on its core the client, not
    the tracker, sets the close-mode rate, so this shows what the trackers' costs leave.

With --before PATH (a battorrent binary from an earlier commit), that build runs too, in
Connection: close and keep-alive, in the same rounds.

Usage: python3 bench/tracker_vs_opentracker.py [--runs 3] [--seconds 10] [--connections 64]
Needs: apt-get install opentracker wrk gcc
"""
import argparse
import os
import re
import resource
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


# An earlier battorrent binary to compare with (--before), run as contender "before".
BEFORE = None


def start(kind, port, whitelist, bare=None):
    if kind == "bare":
        binary, body = bare
        cmd = [binary, str(port), str(body)]
    elif kind == "hyper":
        cmd = [os.path.join(ROOT, "target/release/examples/tracker_hyper"), f"127.0.0.1:{port}",
               whitelist]
    elif kind in ("battorrent", "ceiling", "before"):
        binary = BEFORE if kind == "before" else os.path.join(ROOT, "target/release/battorrent")
        cmd = [binary, "tracker",
               "--bind", f"127.0.0.1:{port}", "--allow", whitelist, "--max-numwant", "50"]
        if kind != "before":
            # Every wrk peer comes from 127.0.0.1: let that one prefix use the whole memory
            # budget, as all of opentracker's peers may (an earlier build has no such flag).
            cmd += ["--max-memory-per-prefix", "1024"]
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


def children_cpu():
    """CPU seconds used so far by this script's reaped children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(port, seconds, connections, close, hashes_lua, pipeline=1, ceiling=False, shared=False):
    """Runs wrk; returns (rate, requests, non-2xx answers, socket errors, wrk CPU share).
    With `shared`, wrk runs two threads on both cores (the tracker stays on CPU 0)."""
    cpus, threads = ("0,1", "-t2") if shared else ("1", "-t1")
    cmd = ["taskset", "-c", cpus, "wrk", threads, f"-c{connections}", f"-d{seconds}s"]
    if ceiling:
        url = f"http://127.0.0.1:{port}/ceiling"  # one static request, no Lua
    else:
        cmd += ["-s", os.path.join(ROOT, "bench/announce.lua")]
        url = f"http://127.0.0.1:{port}"
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(url)
    env = dict(os.environ, HASHES_LUA=hashes_lua, PIPELINE=str(pipeline),
               POOL=str(seconds * (50_000 if close else 120_000)))  # > requests sent
    # Line-buffered so the "Running ..." line arrives when the test starts, after the
    # script's init has built its requests: wrk's CPU is counted from there.
    before = children_cpu()
    proc = subprocess.Popen(["stdbuf", "-oL"] + cmd, stdout=subprocess.PIPE, text=True, env=env)
    first = proc.stdout.readline()
    init_cpu = cpu_seconds(proc.pid) if first.startswith("Running") else 0.0
    out = first + proc.stdout.read()
    if proc.wait() != 0:
        sys.exit(f"wrk failed: {out}")
    wrk_cpu = children_cpu() - before - init_cpu
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    took = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    total = int(took.group(1))
    elapsed = float(took.group(2)) / (1000 if took.group(3) == "ms" else 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return (rate, total, int(bad.group(1)) if bad else 0, errors.group(0) if errors else "",
            wrk_cpu / max(elapsed, 1e-9))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--pipeline", type=int, default=8, help="depth for the pipelined keep-alive run")
    ap.add_argument("--bare-body", type=int, default=345,
                    help="reply body bytes of the bare responder (ours average about 345 here)")
    ap.add_argument("--before", help="an earlier battorrent binary, run as contender 'before'")
    args = ap.parse_args()
    global BEFORE
    BEFORE = args.before and os.path.abspath(args.before)
    for tool in ("opentracker", "wrk", "taskset", "cc"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install opentracker wrk util-linux gcc)")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "battorrent",
                    "--example", "tracker_hyper"], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="battorrent-trackerbench-")
    bare_bin = os.path.join(tmp, "bare_responder")
    subprocess.run(["cc", "-O2", "-o", bare_bin, os.path.join(ROOT, "bench/bare_responder.c")],
                   check=True)
    bare = (bare_bin, args.bare_body)
    hashes = [os.urandom(20) for _ in range(1000)]
    whitelist = os.path.join(tmp, "whitelist.txt")
    with open(whitelist, "w") as f:
        f.writelines(h.hex() + "\n" for h in hashes)
    hashes_lua = os.path.join(tmp, "hashes.lua")
    with open(hashes_lua, "w") as f:
        f.write("return {\n")
        f.writelines('"' + "".join(f"%{b:02X}" for b in h) + '",\n' for h in hashes)
        f.write("}\n")

    # (contender, Connection: close, pipeline depth); depth 0 marks the shared-core runs:
    # Connection: close with wrk on both cores, so the client is not the limit.
    plan = [("battorrent", True, 1), ("opentracker", True, 1), ("battorrent", False, 1),
            ("hyper", False, 1), ("ceiling", False, 1), ("bare", False, 1),
            ("battorrent", False, args.pipeline),
            ("battorrent", True, 0), ("opentracker", True, 0)]
    if BEFORE:
        plan += [("before", True, 1), ("before", False, 1)]
    rates = {p: [] for p in plan}
    per_cpu = {p: [] for p in plan}
    wrk_share = {p: [] for p in plan}
    for _ in range(args.runs):
        for kind, close, depth in plan:
            port = free_port()
            proc = start(kind, port, whitelist, bare)
            try:
                before = cpu_seconds(proc.pid)  # taskset execs the tracker: same pid
                rate, total, bad, errors, share = wrk(port, args.seconds, args.connections,
                                                      close, hashes_lua, max(depth, 1),
                                                      ceiling=kind == "ceiling",
                                                      shared=depth == 0)
                used = cpu_seconds(proc.pid) - before
            finally:
                stop(proc)
            if bad and kind != "ceiling":
                sys.exit(f"{kind}: {bad} non-2xx answers ({errors})")
            rates[(kind, close, depth)].append(rate)
            per_cpu[(kind, close, depth)].append(total / max(used, 1e-9))
            wrk_share[(kind, close, depth)].append(share)

    med = {p: statistics.median(r) for p, r in rates.items()}
    cpu = {p: statistics.median(r) for p, r in per_cpu.items()}
    print(f"1,000 info hashes, random peers, mixed events, numwant=50; tracker on CPU 0, "
          f"wrk -t1 -c{args.connections} on CPU 1, {args.runs} runs x {args.seconds} s")
    for key, r in rates.items():
        kind, close, depth = key
        mode = ("close, wrk -t2 both cores" if depth == 0 else
                "Connection: close" if close else f"keep-alive x{depth}")
        runs = ", ".join(f"{x:,.0f}" for x in r)
        print(f"  {kind:<11} {mode:<26} median {med[key]:>9,.0f} announces/s"
              f"  {cpu[key]:>9,.0f} per CPU-second  wrk CPU {statistics.median(wrk_share[key]):4.0%}"
              f"   runs: {runs}")
    ours_close, ot = ("battorrent", True, 1), ("opentracker", True, 1)
    ours, hyper, ceiling = ("battorrent", False, 1), ("hyper", False, 1), ("ceiling", False, 1)
    bare_key = ("bare", False, 1)
    print(f"  Connection: close, battorrent/opentracker: {med[ours_close] / med[ot]:.2f} by rate, "
          f"{cpu[ours_close] / cpu[ot]:.2f} by CPU cost  (target >= 1.2)")
    shared_ratio = med[("battorrent", True, 0)] / med[("opentracker", True, 0)]
    print(f"  Connection: close, wrk on both cores (tracker still on CPU 0 only), "
          f"battorrent/opentracker: {shared_ratio:.2f} by rate")
    print(f"  keep-alive: battorrent {med[ours]:,.0f}/s, {cpu[ours]:,.0f} per CPU-second  "
          f"(target >= 100,000); pipelined x{args.pipeline}: "
          f"{med[('battorrent', False, args.pipeline)]:,.0f}/s")
    print(f"  keep-alive, battorrent/hyper: {med[ours] / med[hyper]:.2f} by rate, "
          f"{cpu[ours] / cpu[hyper]:.2f} by CPU cost")
    print(f"  keep-alive, battorrent/ceiling (a 404 with no tracker work): "
          f"{med[ours] / med[ceiling]:.2f} by rate, {cpu[ours] / cpu[ceiling]:.2f} by CPU cost")
    print(f"  keep-alive, battorrent/bare responder (C, fixed reply, no parsing): "
          f"{med[ours] / med[bare_key]:.2f} by rate, {cpu[ours] / cpu[bare_key]:.2f} by CPU cost; "
          f"bare responder {med[bare_key]:,.0f}/s with wrk CPU "
          f"{statistics.median(wrk_share[bare_key]):.0%}")
    if BEFORE:
        for close in (True, False):
            now, then = ("battorrent", close, 1), ("before", close, 1)
            mode = "Connection: close" if close else "keep-alive"
            print(f"  {mode}, this build / before: {med[now] / med[then]:.2f} by rate, "
                  f"{cpu[now] / cpu[then]:.2f} by CPU cost")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
