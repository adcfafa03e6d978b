#!/usr/bin/env python3
"""Magnet links: how fast the metadata arrives, and the first byte of data, for BatTorrent,
libtorrent and aria2 in one run, on a private namespace network.

1. Metadata (issue 12 goals): torrents whose info dictionary is 1 MiB and 16 MiB (piece
   hashes of data that does not exist: only the metadata moves). Three of our peers on
   hosts 1-3 hold the .torrent and serve its metadata; each client on host 4 gets the bare
   magnet link plus the tracker on host 5 and fetches the metadata. Timed from the client's
   start to the metadata being verified, and for ours also from its first extension
   handshake offering metadata (the issue's measure; from its debug log, stamped as the
   lines arrive). Goals: 1 MiB at most 0.5 s, 16 MiB at most 3 s.
2. Magnet-to-first-byte: a 64 MiB torrent of random data seeded by three of ours; each
   client starts from the magnet link and is timed until the first data block is on disk
   (a file in its folder with allocated blocks; aria2 with --file-allocation=none).

Clients alternate within each round; medians of --runs rounds. Needs root, iproute2,
python3-libtorrent and aria2.
Usage: python3 bench/magnet_vs_others.py [--runs 5] [--clients ours,libtorrent,aria2]
"""
import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers_vs_others import Network, addr, sh, stop, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target", "release", "battorrent")
LT = os.path.join(ROOT, "bench", "lt_peer.py")
TRACKER = 5
CLIENT = 4
SEEDS = (1, 2, 3)


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, str):
        return bencode(v.encode())
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError(v)


def fake_torrent(path, name, info_bytes, tracker):
    """A .torrent whose info dictionary is about info_bytes long (16 KiB pieces of data
    nobody has)."""
    pieces = info_bytes // 20
    info = {"name": name, "piece length": 16384, "length": pieces * 16384,
            "pieces": os.urandom(pieces * 20)}
    raw = bencode({"announce": tracker, "info": info})
    with open(path, "wb") as f:
        f.write(raw)
    return hashlib.sha1(bencode(info)).hexdigest(), len(bencode(info))


def magnet(info_hash, tracker):
    return f"magnet:?xt=urn:btih:{info_hash}&tr={tracker}"


def start_seeds(net, torrent, data_dir, work, real):
    """Our three peers holding `torrent` (seeding `data_dir`, or leeching into empty
    folders when not `real`); returns their processes once they listen."""
    procs = []
    for h in SEEDS:
        if real:
            argv = [OURS, "seed", "--no-dht", torrent, "--dir", data_dir, "--port", "6881"]
        else:
            d = os.path.join(work, f"holder-{h}")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            argv = [OURS, "download", "--no-dht", torrent, "--dir", d, "--port", "6881"]
        procs.append(subprocess.Popen(net.cmd(h, *argv), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL))
    for h, p in zip(SEEDS, procs):
        wait_port(net, h, 6881, p)
    time.sleep(1.5)  # their first announce reaches the tracker
    return procs


def client_argv(client, link, dl_dir, metadata_only):
    if client == "ours":
        return [OURS, "download", "--no-dht", link, "--dir", dl_dir, "--port", "6881"]
    if client == "libtorrent":
        return ["/usr/bin/python3", LT, "magnet", link, dl_dir, addr(CLIENT)]
    if client == "aria2":
        argv = ["aria2c", "--listen-port=6881", "--enable-dht=false", "--enable-dht6=false",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                "--summary-interval=0", "--console-log-level=warn",
                "--file-allocation=none", f"--dir={dl_dir}"]
        if metadata_only:
            argv += ["--bt-metadata-only=true", "--bt-save-metadata=true"]
        return argv + [link]
    sys.exit(f"unknown client {client}")


def time_metadata(net, client, link, work):
    """Seconds from start to verified metadata (and, for ours, from its first metadata
    offer)."""
    dl = os.path.join(work, f"meta-{client}")
    shutil.rmtree(dl, ignore_errors=True)
    os.makedirs(dl)
    env = dict(os.environ, RUST_LOG="battorrent=debug", NO_COLOR="1")
    start = time.perf_counter()
    proc = subprocess.Popen(net.cmd(CLIENT, *client_argv(client, link, dl, True)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            stdin=subprocess.DEVNULL)
    marks = {}

    def watch(stream, key):
        for raw in stream:
            line = raw.decode(errors="replace")
            now = time.perf_counter()
            if "offers metadata" in line:
                marks.setdefault("offer", now)
            if "metadata received" in line or line.strip() == "metadata":
                marks.setdefault("done", now)

    threads = [threading.Thread(target=watch, args=(proc.stdout, "out"), daemon=True),
               threading.Thread(target=watch, args=(proc.stderr, "err"), daemon=True)]
    for t in threads:
        t.start()
    deadline = start + 120
    while time.perf_counter() < deadline:
        if client == "aria2" and proc.poll() is not None:
            if proc.returncode != 0:
                sys.exit(f"aria2 failed ({proc.returncode})")
            marks.setdefault("done", time.perf_counter())
        if "done" in marks:
            break
        time.sleep(0.001)
    stop(proc)
    if "done" not in marks:
        sys.exit(f"{client}: no metadata in 120 s")
    total = marks["done"] - start
    from_offer = marks["done"] - marks["offer"] if "offer" in marks else None
    shutil.rmtree(dl, ignore_errors=True)
    return total, from_offer


def has_data(folder):
    for base, _, files in os.walk(folder):
        for f in files:
            if f.endswith((".torrent", ".aria2", ".part")):
                continue
            try:
                if os.stat(os.path.join(base, f)).st_blocks > 0:
                    return True
            except FileNotFoundError:
                pass
    return False


def time_first_byte(net, client, link, work):
    dl = os.path.join(work, f"first-{client}")
    shutil.rmtree(dl, ignore_errors=True)
    os.makedirs(dl)
    start = time.perf_counter()
    proc = subprocess.Popen(net.cmd(CLIENT, *client_argv(client, link, dl, False)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        while time.perf_counter() < start + 120:
            if has_data(dl):
                return time.perf_counter() - start
            if proc.poll() is not None:
                sys.exit(f"{client} exited ({proc.returncode}) before any data")
            time.sleep(0.001)
        sys.exit(f"{client}: no data in 120 s")
    finally:
        stop(proc)
        shutil.rmtree(dl, ignore_errors=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clients", default="ours,libtorrent,aria2")
    ap.add_argument("--sizes-mib", default="1,16", help="info dictionary sizes")
    ap.add_argument("--dir", default="/tmp/battorrent-bench-magnet")
    args = ap.parse_args()
    clients = args.clients.split(",")
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    os.makedirs(args.dir, exist_ok=True)
    tracker = f"http://{addr(TRACKER)}:6969/announce"

    net = Network(5)
    tr = subprocess.Popen(net.cmd(TRACKER, OURS, "tracker", "--bind", f"{addr(TRACKER)}:6969",
                                  "--interval", "5"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(net, TRACKER, 6969, tr)
        for mib in [int(s) for s in args.sizes_mib.split(",")]:
            path = os.path.join(args.dir, f"meta-{mib}M.torrent")
            info_hash, size = fake_torrent(path, f"meta-{mib}M", mib << 20, tracker)
            holders = start_seeds(net, path, None, args.dir, real=False)
            try:
                totals = {c: [] for c in clients}
                offers = []
                for r in range(args.runs):
                    order = clients[r % len(clients):] + clients[:r % len(clients)]
                    for c in order:
                        if c == "aria2" and mib > 8:
                            continue  # aria2 refuses metadata over 8 MiB
                        total, from_offer = time_metadata(net, c, magnet(info_hash, tracker),
                                                          args.dir)
                        totals[c].append(total)
                        if c == "ours":
                            offers.append(from_offer)
                        extra = f" ({from_offer:.3f} s from the first offer)" \
                            if c == "ours" and from_offer is not None else ""
                        print(f"{mib} MiB info ({size} B), run {r + 1}: {c:10} "
                              f"{total:.3f} s{extra}", flush=True)
            finally:
                for p in holders:
                    stop(p)
            goal = 0.5 if mib == 1 else 3.0 if mib == 16 else None
            print(f"\n{mib} MiB info dictionary from 3 peers, medians of {args.runs}:")
            for c in clients:
                if not totals[c]:
                    print(f"  {c:10} skipped (aria2 takes metadata of at most 8 MiB)")
                    continue
                print(f"  {c:10} start to metadata {med(totals[c]):.3f} s")
            if "ours" in clients:
                print(f"  ours: first metadata offer to verified metadata "
                      f"{med(offers):.3f} s" + (f" (goal at most {goal} s)" if goal else ""))
            print(flush=True)

        # Magnet to first byte.
        seed_dir = os.path.join(args.dir, "seed")
        os.makedirs(seed_dir, exist_ok=True)
        data = os.path.join(seed_dir, "data-64M.bin")
        if not os.path.exists(data) or os.path.getsize(data) != 64 << 20:
            with open(data, "wb") as f:
                f.write(os.urandom(64 << 20))
        torrent = os.path.join(args.dir, "data.torrent")
        sh(OURS, "create", data, "--force", "-o", torrent, "-a", tracker)
        info_hash = sh(OURS, "show", torrent, "--json").stdout
        import json
        info_hash = json.loads(info_hash)["info_hash"]
        seeds = start_seeds(net, torrent, seed_dir, args.dir, real=True)
        try:
            firsts = {c: [] for c in clients}
            for r in range(args.runs):
                order = clients[r % len(clients):] + clients[:r % len(clients)]
                for c in order:
                    t = time_first_byte(net, c, magnet(info_hash, tracker), args.dir)
                    firsts[c].append(t)
                    print(f"first byte, run {r + 1}: {c:10} {t:.3f} s", flush=True)
        finally:
            for p in seeds:
                stop(p)
        print(f"\nmagnet to first byte on disk (64 MiB torrent, 3 seeds), medians of "
              f"{args.runs}:")
        for c in clients:
            ratio = med(firsts[c]) / med(firsts["ours"]) if "ours" in clients else float("nan")
            print(f"  {c:10} {med(firsts[c]):.3f} s  ({ratio:.2f} x ours)")
    finally:
        stop(tr)
        net.close()


if __name__ == "__main__":
    main()
