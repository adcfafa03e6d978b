#!/usr/bin/env python3
"""The daemon with many small torrents: time to take them all, RSS, a restart from saved
state (no hashing when nothing changed), and torrent-get of all of them over the RPC.

Everything on loopback, no trackers, no DHT. Usage:
    cargo build --release && python3 bench/daemon_restart.py --torrents 1000
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

LIST_FIELDS = ["error", "errorString", "eta", "id", "isFinished", "leftUntilDone", "name",
               "peersGettingFromUs", "peersSendingToUs", "rateDownload", "rateUpload",
               "sizeWhenDone", "status", "uploadRatio"]


class Rpc:
    def __init__(self, addr):
        self.url = f"http://{addr}/transmission/rpc"
        self.sid = ""

    def raw(self, method, arguments):
        """The response body, unparsed (so timings leave out Python's JSON decoding)."""
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(2):
            req = urllib.request.Request(self.url, body, {"X-Transmission-Session-Id": self.sid})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    return r.read()
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
                self.sid = e.headers["X-Transmission-Session-Id"]
        raise RuntimeError("no session id")

    def call(self, method, arguments):
        answer = json.loads(self.raw(method, arguments))
        if answer["result"] != "success":
            raise RuntimeError(answer["result"])
        return answer["arguments"]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_daemon(binary, work, log_name):
    log = open(os.path.join(work, log_name), "w+")
    proc = subprocess.Popen(
        [binary, "daemon", "--no-dht", "--no-trackers", "--state-dir", os.path.join(work, "state"),
         "--download-dir", os.path.join(work, "data"), "--bind", "127.0.0.1", "--port", "0",
         "--rpc-bind", "127.0.0.1:0"],
        stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    while True:
        text = open(log.name).read()
        m = re.search(r"RPC on http://([^/]+)/", text)
        if m:
            return proc, Rpc(m.group(1)), time.monotonic() - started, text
        if proc.poll() is not None or time.monotonic() - started > 300:
            sys.exit(f"the daemon did not start:\n{text}")
        time.sleep(0.005)


def wait_all_seeding(rpc, n, timeout=600):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        got = rpc.call("torrent-get", {"fields": ["status"]})["torrents"]
        if len(got) == n and all(t["status"] == 6 for t in got):
            return time.monotonic() - started
        time.sleep(0.05)
    sys.exit("not every torrent is seeding")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--torrents", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64 << 10, help="bytes per torrent")
    ap.add_argument("--bin", default="target/release/battorrent")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="bt-daemon-bench-")
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        metainfo = []
        for i in range(args.torrents):
            path = os.path.join(data, f"file{i:05}.bin")
            with open(path, "wb") as f:
                f.write(os.urandom(args.size))
            out = os.path.join(work, f"t{i}.torrent")
            subprocess.run([binary, "create", path, "-l", "16K", "--no-date", "-o", out],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(out, "rb") as f:
                metainfo.append(base64.b64encode(f.read()).decode())
        proc, rpc, _, _ = start_daemon(binary, work, "first.log")
        rss_empty = rss_kib(proc.pid)
        t0 = time.monotonic()
        for m in metainfo:
            rpc.call("torrent-add", {"metainfo": m})
        added = time.monotonic() - t0
        checked = wait_all_seeding(rpc, args.torrents)
        time.sleep(4)  # a save round after the last check
        rss_full = rss_kib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        proc.wait(timeout=120)
        stop = time.monotonic() - t0

        proc, rpc, ready, log = start_daemon(binary, work, "second.log")
        seeding = wait_all_seeding(rpc, args.torrents)
        resumed = re.search(r"(\d+) torrents resumed without a check, (\d+) to check", log)
        rss_restart = rss_kib(proc.pid)
        times = []
        for _ in range(20):
            t0 = time.monotonic()
            body = rpc.raw("torrent-get", {"fields": LIST_FIELDS})
            times.append((time.monotonic() - t0) * 1000)
            assert len(json.loads(body)["arguments"]["torrents"]) == args.torrents
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        per = (rss_full - rss_empty) / args.torrents
        print(f"{args.torrents} torrents of {args.size >> 10} KiB")
        print(f"  added over RPC in {added:.2f} s, all checked and seeding {checked:.2f} s later")
        print(f"  RSS: {rss_empty / 1024:.1f} MiB empty, {rss_full / 1024:.1f} MiB with all "
              f"({per:.2f} KiB per torrent)")
        print(f"  SIGTERM to exit (final save, every torrent stopped): {stop:.2f} s")
        print(f"  restart: RPC answering after {ready:.2f} s, every torrent seeding "
              f"{seeding:.2f} s later; {resumed.group(1)} resumed without a check, "
              f"{resumed.group(2)} checked; RSS {rss_restart / 1024:.1f} MiB")
        print(f"  torrent-get of all (transmission-remote -l fields, until the last byte): median "
              f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
