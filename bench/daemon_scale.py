#!/usr/bin/env python3
"""Many torrents in one daemon: ours, transmission-daemon and qbittorrent-nox in one run.

For each client and each count N (small generated torrents, data already in place):
  - RSS per idle torrent: (RSS with N seeding - RSS empty) / N, after a settle. "Empty" is
    measured after one warm-up torrent was added, seeded and removed, so the code paged in
    on a first add and the first per-thread allocator arenas count as fixed costs, not as
    the torrents' (every client gets the same warm-up);
  - restart with saved state: seconds from start until the RPC answers and lists all N
    (target for ours: <= 10 s at 10,000);
  - listing every torrent (torrent-get of the fields transmission-remote -l asks; for
    qBittorrent /api/v2/torrents/info) while the client seeds a 1 GiB torrent to our
    downloader on loopback (`battorrent download --peer`, as fast as it goes; the transfer
    is repeated until 100 listings are timed, for at most 45 s): p50 / p99 milliseconds to the last byte
    (target <= 100 ms). Seeding, not downloading: transmission-daemon 3.00 does not
    connect out to peers on 127.0.0.1, so the same direction is used for every client.
Traffic stays on loopback, no trackers, no DHT, PeX, LPD or uTP.
Processes are stopped by pid. Usage:
    cargo build --release && python3 bench/daemon_scale.py --counts 1000,10000 --runs 1
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_restart import Rpc, rss_kib  # noqa: E402  (the same RPC client and RSS probe)
from magnet_vs_others import bencode  # noqa: E402

LIST_FIELDS = ["error", "errorString", "eta", "id", "isFinished", "leftUntilDone", "name",
               "peersGettingFromUs", "peersSendingToUs", "rateDownload", "rateUpload",
               "sizeWhenDone", "status", "uploadRatio"]
BIG = 1 << 30
LIMIT = 300  # seconds any one phase may take
WINDOW = 45  # seconds of listing while seeding (a slow seeder's transfer is cut there)


def make_torrent(path, piece, announce=None):
    pieces = []
    with open(path, "rb") as f:
        while chunk := f.read(piece):
            pieces.append(hashlib.sha1(chunk).digest())
    info = {"name": os.path.basename(path), "length": os.path.getsize(path),
            "piece length": piece, "pieces": b"".join(pieces)}
    meta = {"info": info}
    if announce:
        meta["announce"] = announce
    return bencode(meta)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle_rss(pid, seconds=3.0):
    time.sleep(seconds)
    return rss_kib(pid)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait(what, check, limit=LIMIT, every=0.05):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            if check():
                return time.monotonic() - t0
        except (OSError, urllib.error.URLError, ConnectionError, ValueError, KeyError):
            pass
        time.sleep(every)
    raise TimeoutError(what)


class TransmissionRpc(Rpc):
    """Transmission's RPC (ours and transmission-daemon speak it) on a loopback port."""

    def __init__(self, port):
        super().__init__(f"127.0.0.1:{port}")

    # The interface every client offers.
    def add(self, torrent, folder):
        self.call("torrent-add", {"metainfo": base64.b64encode(torrent).decode(),
                                  "download-dir": folder, "paused": False})

    def add_many(self, torrents, folder):
        for t in torrents:
            self.add(t, folder)

    def remove_all(self):
        got = self.call("torrent-get", {"fields": ["id"]})["torrents"]
        if got:
            self.call("torrent-remove", {"ids": [t["id"] for t in got]})

    def list_raw(self):
        return self.raw("torrent-get", {"fields": LIST_FIELDS})

    def seeding(self):
        """How many torrents are listed, and how many seed."""
        got = self.call("torrent-get", {"fields": ["status"]})["torrents"]
        return len(got), sum(1 for t in got if t["status"] == 6)

    def done(self, name):
        got = self.call("torrent-get", {"fields": ["name", "percentDone"]})["torrents"]
        return any(t["name"] == name and t["percentDone"] >= 1.0 for t in got)


class QbtApi:
    def __init__(self, port, user, password):
        self.base = f"http://127.0.0.1:{port}/api/v2/"
        self.user, self.password, self.cookie = user, password, ""

    def login(self):
        body = urllib.parse.urlencode({"username": self.user, "password": self.password})
        req = urllib.request.Request(self.base + "auth/login", body.encode(),
                                     {"Referer": self.base})
        with urllib.request.urlopen(req, timeout=30) as r:
            cookie = r.headers.get("Set-Cookie", "")
            if "SID=" not in cookie:
                raise ConnectionError("login refused")
            self.cookie = cookie.split(";")[0]

    def get(self, path):
        req = urllib.request.Request(self.base + path, headers={"Cookie": self.cookie})
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.read()

    def add_many(self, torrents, folder):
        for i in range(0, len(torrents), 200):
            boundary = "----bench%d" % i
            parts = []
            for j, t in enumerate(torrents[i:i + 200]):
                parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; "
                             f"filename=\"t{i + j}.torrent\"\r\nContent-Type: "
                             "application/x-bittorrent\r\n\r\n".encode() + t + b"\r\n")
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"savepath\""
                         f"\r\n\r\n{folder}\r\n--{boundary}--\r\n".encode())
            req = urllib.request.Request(
                self.base + "torrents/add", b"".join(parts),
                {"Cookie": self.cookie,
                 "Content-Type": f"multipart/form-data; boundary={boundary}"})
            with urllib.request.urlopen(req, timeout=300) as r:
                r.read()

    def add(self, torrent, folder):
        self.add_many([torrent], folder)

    def remove_all(self):
        body = urllib.parse.urlencode({"hashes": "all", "deleteFiles": "false"}).encode()
        req = urllib.request.Request(self.base + "torrents/delete", body,
                                     {"Cookie": self.cookie})
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()

    def list_raw(self):
        return self.get("torrents/info")

    def seeding(self):
        got = json.loads(self.get("torrents/info"))
        seeding = ("uploading", "stalledUP", "queuedUP", "forcedUP")
        return len(got), sum(1 for t in got if t["state"] in seeding)

    def done(self, name):
        got = json.loads(self.get("torrents/info"))
        return any(t["name"] == name and t["progress"] >= 1.0 for t in got)


def start_ours(binary, work, data, peer_port):
    port = free_port()
    log = open(os.path.join(work, "ours.log"), "a")
    proc = subprocess.Popen(
        [binary, "daemon", "--no-dht", "--state-dir", os.path.join(work, "ours-state"),
         "--download-dir", data, "--bind", "127.0.0.1", "--port", str(peer_port),
         "--rpc-bind", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    return proc, TransmissionRpc(port)


def start_transmission(work, data, peer_port):
    conf = os.path.join(work, "tr-conf")
    os.makedirs(conf, exist_ok=True)
    settings = os.path.join(conf, "settings.json")
    port = free_port()
    s = {}
    if os.path.exists(settings):
        with open(settings) as f:
            s = json.load(f)
    s.update({"utp-enabled": False, "dht-enabled": False, "lpd-enabled": False,
              "pex-enabled": False, "port-forwarding-enabled": False, "rpc-port": port,
              "rpc-bind-address": "127.0.0.1", "rpc-authentication-required": False,
              "rpc-whitelist-enabled": False, "rpc-host-whitelist-enabled": False,
              "bind-address-ipv4": "127.0.0.1", "peer-port": peer_port,
              "download-queue-enabled": False, "seed-queue-enabled": False,
              "queue-stalled-enabled": False, "download-dir": data,
              "speed-limit-down-enabled": False, "speed-limit-up-enabled": False})
    with open(settings, "w") as f:
        json.dump(s, f)
    proc = subprocess.Popen(["transmission-daemon", "-f", "-g", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, TransmissionRpc(port)


def start_qbittorrent(work, data, peer_port):
    profile = os.path.join(work, "qbt")
    conf_dir = os.path.join(profile, "qBittorrent", "config")
    os.makedirs(conf_dir, exist_ok=True)
    port = free_port()
    salt = b"battorrent-bench"
    key = hashlib.pbkdf2_hmac("sha512", b"benchpass", salt, 100000, 64)
    password = f"@ByteArray({base64.b64encode(salt).decode()}:{base64.b64encode(key).decode()})"
    with open(os.path.join(conf_dir, "qBittorrent.conf"), "w") as f:
        f.write(f"""[LegalNotice]
Accepted=true

[BitTorrent]
Session\\DHTEnabled=false
Session\\PeXEnabled=false
Session\\LSDEnabled=false
Session\\BTProtocol=TCP
Session\\Port={peer_port}
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\QueueingSystemEnabled=false
Session\\DefaultSavePath={data}
Session\\AnonymousModeEnabled=false

[Preferences]
Connection\\UPnP=false
WebUI\\Address=127.0.0.1
WebUI\\Port={port}
WebUI\\Username=admin
WebUI\\Password_PBKDF2="{password}"
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
WebUI\\LocalHostAuth=true
""")
    proc = subprocess.Popen(["qbittorrent-nox", f"--profile={profile}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = QbtApi(port, "admin", "benchpass")
    return proc, api


def ready(api):
    if isinstance(api, QbtApi):
        api.login()
    api.seeding()
    return True


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def warm_up(api, warm, data):
    """Adds one torrent, waits until it seeds, removes it: what a first add pages in and
    allocates once is then in the empty figure."""
    api.add(warm, data)
    wait("the warm-up torrent does not seed", lambda: api.seeding() == (1, 1), every=0.2)
    api.remove_all()
    wait("the warm-up torrent is not removed", lambda: api.seeding() == (0, 0), every=0.2)


def preload_transmission(work, torrents):
    """Writes torrents into transmission-daemon's state folder: it adds about ten a second
    over RPC, so at 10,000 this is the only way to measure it in minutes. Without resume
    files it queues each for a check (status 1, "queued to verify") and checks about ten a
    second; queued torrents cost it less than seeding ones (3.62 against 3.82 KiB at
    1,000), so the comparison does not favour us. The 1 GiB torrent of the listing phase
    waits behind those checks: at 10,000 that phase times out."""
    conf = os.path.join(work, "tr-conf")
    folder = os.path.join(conf, "torrents")
    os.makedirs(folder, exist_ok=True)
    for i, t in enumerate(torrents):
        with open(os.path.join(folder, f"s{i:05}.torrent"), "wb") as f:
            f.write(t)
    settings = os.path.join(conf, "settings.json")
    with open(settings) as f:
        s = json.load(f)
    s["start-added-torrents"] = False
    with open(settings, "w") as f:
        json.dump(s, f)


def run_client(name, start, work, data, small, big, binary, peer_port, warm, preload=None):
    """One client through every measure; returns a dict of figures (None where it failed).
    With `preload`, the torrents are written into the client's state folder while it is
    stopped instead of added over its API; its start with them is the restart figure."""
    out = {"rss_per_kib": None, "restart_s": None, "list_p50": None, "list_p99": None,
           "list_n": 0}
    n = len(small)
    big_torrent, big_file, big_dir, big_name = big
    proc, api = start()
    try:
        wait(f"{name} does not answer", lambda: ready(api))
        warm_up(api, warm, data)
        empty = settle_rss(proc.pid, 2)

        def restart():
            """Starts the client again; seconds until it answers and lists all n."""
            t0 = time.monotonic()
            proc, api = start()
            wait(f"{name} does not come back", lambda: ready(api) and api.seeding()[0] == n,
                 every=0.02)
            return proc, api, time.monotonic() - t0

        if preload:
            stop(proc)
            preload(small)
            proc, api, out["restart_s"] = restart()
            full = settle_rss(proc.pid, 5)
            out["rss_per_kib"] = (full - empty) / n
            print(f"  {name}: {n} written to its state folder (queued to check), all listed after "
                  f"{out['restart_s']:.2f} s; RSS {empty / 1024:.1f} -> {full / 1024:.1f} MiB, "
                  f"{out['rss_per_kib']:.2f} KiB each", flush=True)
        else:
            t0 = time.monotonic()
            api.add_many(small, data)
            wait(f"{name}: not every torrent seeds", lambda: api.seeding() == (n, n),
                 every=0.5)
            out["add_s"] = time.monotonic() - t0
            full = settle_rss(proc.pid, 5)
            out["rss_per_kib"] = (full - empty) / n
            print(f"  {name}: {n} added and seeding in {out['add_s']:.1f} s; RSS "
                  f"{empty / 1024:.1f} -> {full / 1024:.1f} MiB, "
                  f"{out['rss_per_kib']:.2f} KiB each", flush=True)
            stop(proc)
            t0 = time.monotonic()
            proc, api, out["restart_s"] = restart()
            wait(f"{name}: not every torrent seeds after the restart",
                 lambda: api.seeding() == (n, n), every=0.2)
            out["restart_seeding_s"] = time.monotonic() - t0
            print(f"  {name}: restart: all {n} listed after {out['restart_s']:.2f} s, all "
                  f"seeding after {out['restart_seeding_s']:.2f} s", flush=True)
        api.add(big_torrent, big_dir)
        wait(f"{name} does not check the 1 GiB torrent", lambda: api.done(big_name), every=0.5)
        times, transfers, body, codes = [], 0, b"", []
        t0 = time.monotonic()
        while len(times) < 100 and transfers < 5 and time.monotonic() - t0 < WINDOW:
            dl = os.path.join(work, "leech")
            shutil.rmtree(dl, ignore_errors=True)
            leech = subprocess.Popen(
                [binary, "download", big_file, "--dir", dl, "--no-dht", "--no-trackers",
                 "--bind", "127.0.0.1", "--port", "0", "--peer", f"127.0.0.1:{peer_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            transfers += 1
            while leech.poll() is None and time.monotonic() - t0 < WINDOW:
                s = time.monotonic()
                body = api.list_raw()
                times.append((time.monotonic() - s) * 1000)
                time.sleep(0.02)
            if leech.poll() is None:
                stop(leech)
            codes.append(leech.returncode)
            shutil.rmtree(dl, ignore_errors=True)
        transfer = time.monotonic() - t0
        out["list_p50"] = statistics.median(times)
        out["list_p99"] = percentile(times, 99)
        out["list_n"] = len(times)
        print(f"  {name}: listing all while seeding 1 GiB {transfers} times ({transfer:.1f} s): "
              f"{len(times)} calls, p50 {out['list_p50']:.1f} ms, p99 {out['list_p99']:.1f} ms, "
              f"{len(body)} bytes; downloader exit codes {codes}", flush=True)
    except (TimeoutError, RuntimeError, OSError) as e:
        print(f"  {name}: stopped: {e}", flush=True)
    finally:
        stop(proc)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--counts", default="1000,10000")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--size", type=int, default=16 << 10, help="bytes per small torrent")
    ap.add_argument("--clients", default="ours,transmission,qbittorrent")
    ap.add_argument("--max-qbittorrent", type=int, default=10**9,
                    help="skip qBittorrent above this many torrents (it adds about one a second)")
    ap.add_argument("--max-transmission", type=int, default=10**9)
    ap.add_argument("--preload-transmission-above", type=int, default=1000,
                    help="above this many torrents, write them into transmission-daemon's "
                         "state folder (stopped) instead of adding them over RPC")
    ap.add_argument("--big-mib", type=int, default=BIG >> 20, help="the transfer's size")
    ap.add_argument("--bin", default="target/release/battorrent")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    counts = [int(c) for c in args.counts.split(",")]
    clients = args.clients.split(",")
    limits = {"qbittorrent": args.max_qbittorrent, "transmission": args.max_transmission}
    root = tempfile.mkdtemp(prefix="bt-scale-")
    procs = []
    try:
        data = os.path.join(root, "data")
        os.makedirs(data)
        small = []
        for i in range(max(counts)):
            path = os.path.join(data, f"s{i:05}.bin")
            with open(path, "wb") as f:
                f.write(os.urandom(args.size))
            small.append(make_torrent(path, 16 << 10))
        warm_path = os.path.join(data, "warm-up.bin")
        with open(warm_path, "wb") as f:
            f.write(os.urandom(args.size))
        warm = make_torrent(warm_path, 16 << 10)
        seed_dir = os.path.join(root, "seed")
        os.makedirs(seed_dir)
        big_path = os.path.join(seed_dir, "big.bin")
        with open(big_path, "wb") as f:
            for _ in range(args.big_mib):
                f.write(os.urandom(1 << 20))
        big_torrent = make_torrent(big_path, 1 << 20)
        big_file = os.path.join(root, "big.torrent")
        with open(big_file, "wb") as f:
            f.write(big_torrent)
        big = (big_torrent, big_file, seed_dir, "big.bin")
        results = {}
        for n in counts:
            for run in range(args.runs):
                for name in clients:
                    work = os.path.join(root, f"{name}-{n}-{run}")
                    os.makedirs(work)
                    pp = free_port()
                    start = {
                        "ours": lambda: start_ours(binary, work, data, pp),
                        "transmission": lambda: start_transmission(work, data, pp),
                        "qbittorrent": lambda: start_qbittorrent(work, data, pp),
                    }[name]
                    if n > limits.get(name, n):
                        print(f"{name}: {n} torrents skipped (--max-{name})")
                        continue
                    print(f"{name}, {n} torrents, run {run + 1}", flush=True)
                    preload = None
                    if name == "transmission" and n > args.preload_transmission_above:
                        preload = lambda ts: preload_transmission(work, ts)  # noqa: E731
                    r = run_client(name, start, work, data, small[:n], big, binary, pp, warm,
                                   preload)
                    results.setdefault((name, n), []).append(r)
                    shutil.rmtree(work, ignore_errors=True)
        print("\nmedians (restart: all listed; list: all torrents while seeding 1 GiB)")
        print(f"{'client':14} {'N':>6} {'KiB/torrent':>12} {'restart s':>10} {'list p50 ms':>12} "
              f"{'list p99 ms':>12}")
        med = {}
        for (name, n), rs in results.items():
            def m(key):
                xs = [r[key] for r in rs if r.get(key) is not None]
                return statistics.median(xs) if xs else None
            med[(name, n)] = {k: m(k) for k in ("rss_per_kib", "restart_s", "list_p50",
                                                 "list_p99")}
            f = med[(name, n)]
            cell = lambda v, fmt: (fmt % v) if v is not None else "-"
            print(f"{name:14} {n:>6} {cell(f['rss_per_kib'], '%.2f'):>12} "
                  f"{cell(f['restart_s'], '%.2f'):>10} {cell(f['list_p50'], '%.1f'):>12} "
                  f"{cell(f['list_p99'], '%.1f'):>12}")
        for n in counts:
            ours = med.get(("ours", n))
            for other in ("transmission", "qbittorrent"):
                them = med.get((other, n))
                if not ours or not them:
                    continue
                ratios = []
                for k in ("rss_per_kib", "restart_s", "list_p99"):
                    if ours[k] and them[k]:
                        ratios.append(f"{k} {them[k] / ours[k]:.1f}x")
                print(f"N={n}: {other} / ours: " + ", ".join(ratios))
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
