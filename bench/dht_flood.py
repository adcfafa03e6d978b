#!/usr/bin/env python3
"""A query flood against a running DHT node (`battorrent dht`) on loopback, and what it costs.

One address (127.0.0.2) sends RATE `get_peers` queries a second (each for another info hash,
as a crawler or an attacker would) for SECONDS, while an honest node on 127.0.0.3 pings once
every 0.2 s. Printed: the node's CPU (percent of one core, from /proc) when idle and under
the flood, how many of the flood's queries were answered (the per-address limit lets a
burst of 50 through, then ignores the address), whether the honest node was answered
throughout, and the node's resident size before and after. Medians over --runs runs.

  python3 bench/dht_flood.py [--rate 10000] [--seconds 20] [--runs 3] [--binary PATH]

Needs Linux (/proc). Traffic stays on loopback.
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def bstr(b):
    return str(len(b)).encode() + b":" + b


def get_peers(tid, node_id, info_hash):
    return (b"d1:ad2:id" + bstr(node_id) + b"9:info_hash" + bstr(info_hash) + b"e1:q9:get_peers1:t"
            + bstr(tid) + b"1:y1:qe")


def ping(tid, node_id):
    return b"d1:ad2:id" + bstr(node_id) + b"e1:q4:ping1:t" + bstr(tid) + b"1:y1:qe"


def flood(target, rate, seconds, answered, stop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    s.setblocking(False)
    node_id = os.urandom(20)
    batch = max(1, rate // 100)
    sent = 0
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        for _ in range(batch):
            n += 1
            msg = get_peers(n.to_bytes(4, "big"), node_id, n.to_bytes(4, "big") * 5)
            try:
                s.sendto(msg, target)
                sent += 1
            except BlockingIOError:
                pass
        try:
            while True:
                s.recv(4096)
                answered[0] += 1
        except BlockingIOError:
            pass
        # Keep to the rate: sleep until this batch's slot ends.
        due = start + sent / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    stop.set()
    return sent


def honest(target, results, stop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.3", 0))
    s.settimeout(0.2)
    node_id = os.urandom(20)
    n = 0
    while not stop.is_set():
        n += 1
        s.sendto(ping(n.to_bytes(2, "big"), node_id), target)
        try:
            s.recv(4096)
            results.append(True)
        except socket.timeout:
            results.append(False)
        time.sleep(0.2)


def run_once(binary, rate, seconds):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = ("127.0.0.1", port)
    proc = subprocess.Popen([binary, "dht", "--bind", f"127.0.0.1:{port}",
                             "--dht-bootstrap", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        rss0 = rss_kib(proc.pid)
        c0 = cpu_seconds(proc.pid)
        time.sleep(5.0)
        idle = (cpu_seconds(proc.pid) - c0) / 5.0
        answered, honest_results = [0], []
        stop = threading.Event()
        h = threading.Thread(target=honest, args=(target, honest_results, stop))
        h.start()
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        sent = flood(target, rate, seconds, answered, stop)
        busy = (cpu_seconds(proc.pid) - c1) / (time.monotonic() - t1)
        h.join()
        rss1 = rss_kib(proc.pid)
        return {
            "idle_cpu_pct": idle * 100,
            "flood_cpu_pct": busy * 100,
            "sent_per_s": sent / seconds,
            "flood_answered": answered[0],
            "honest_answered": sum(honest_results),
            "honest_asked": len(honest_results),
            "rss_before_kib": rss0,
            "rss_after_kib": rss1,
        }
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/battorrent"))
    args = ap.parse_args()
    runs = []
    for i in range(args.runs):
        r = run_once(args.binary, args.rate, args.seconds)
        runs.append(r)
        print(f"run {i + 1}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in r.items()), flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"\nmedian of {len(runs)}: sent {med['sent_per_s']:.0f} queries/s from one address for "
          f"{args.seconds:.0f} s; node CPU {med['flood_cpu_pct']:.2f}% of a core under the flood "
          f"({med['idle_cpu_pct']:.2f}% idle); the flood got {med['flood_answered']:.0f} answers; "
          f"the honest node was answered {med['honest_answered']:.0f} of "
          f"{med['honest_asked']:.0f} times; RSS {med['rss_before_kib']:.0f} -> "
          f"{med['rss_after_kib']:.0f} KiB")


if __name__ == "__main__":
    main()
