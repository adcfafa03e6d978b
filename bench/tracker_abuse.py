#!/usr/bin/env python3
"""Hostile clients against `battorrent tracker` on loopback, and what they cost it.

  stuck N   N clients pipeline announces and never read a reply: the tracker's resident
            size and server-side kernel socket memory per client once they are stuck, then
            how long until the tracker has closed them all (at most 60 s is waited).
  silent N  N connections from 127.0.0.1 that never send a byte, opened while a client on
            127.0.0.2 asks for /stats every 0.25 s for 20 s: how many of its requests were
            served, and the tracker's connection counters.

Tracker options follow `--`, e.g.
  python3 bench/tracker_abuse.py stuck 200 -- --max-connections 200 --max-connections-per-address 0
  python3 bench/tracker_abuse.py silent 10000 -- --max-connections 1000
--binary runs another build (an earlier one, to compare). Needs Linux (ss, /proc) and
`ulimit -n` above N.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASH = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A"


def start(binary, extra):
    proc = subprocess.Popen([binary, "tracker", "--bind", "127.0.0.1:0"] + extra,
                            stderr=subprocess.PIPE)
    port = int(re.search(r":(\d+)/", proc.stderr.readline().decode()).group(1))
    return proc, port


def rss_kib(proc):
    with open(f"/proc/{proc.pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def server_sockets(port):
    """Open server-side sockets of the tracker's port and their kernel memory (bytes)."""
    out = subprocess.run(["ss", "-tnm", "state", "established", f"sport = :{port}"],
                         capture_output=True, text=True).stdout
    mem = sum(int(r) + int(w) for r, w in
              re.findall(r"skmem:\(r(\d+),rb\d+,t\d+,tb\d+,f\d+,w(\d+)", out))
    return out.count("skmem"), mem


def stuck(binary, n, extra):
    proc, port = start(binary, extra)
    request = (f"GET /announce?info_hash={HASH}&peer_id=-BT0001-abcdefghijkl&port=7&left=1 "
               "HTTP/1.1\r\nHost: x\r\n\r\n").encode() * 100
    before = rss_kib(proc)
    clients = []
    started = time.time()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        while True:
            try:
                s.send(request)
            except BlockingIOError:
                time.sleep(0.05)
                try:
                    s.send(request)
                except (BlockingIOError, ConnectionError):
                    break
            except ConnectionError:
                break
        clients.append(s)
    time.sleep(0.5)
    count, mem = server_sockets(port)
    print(f"{n} clients stuck in {time.time() - started:.1f} s: tracker RSS "
          f"+{(rss_kib(proc) - before) / n:.1f} KiB each; server-side kernel socket memory "
          f"{mem / 1024 / max(count, 1):.1f} KiB each ({count} open)", flush=True)
    waited = time.time()
    while time.time() - waited < 60:
        count, _ = server_sockets(port)
        if count == 0:
            print(f"all closed by the tracker {time.time() - waited:.1f} s later")
            break
        time.sleep(0.5)
    else:
        print(f"{count} still open after 60 s")
    proc.kill()
    proc.wait()


def stats_from(port, source):
    """GET /stats from `source`; the decoded JSON, or None if not served."""
    try:
        c = socket.socket()
        c.settimeout(2)
        c.bind((source, 0))
        c.connect(("127.0.0.1", port))
        c.sendall(b"GET /stats HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(65536):
            data += chunk
        c.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return json.loads(body) if b" 200 " in head.split(b"\r\n")[0] else None
    except (OSError, ValueError):
        return None


def silent(binary, n, extra):
    proc, port = start(binary, extra)
    sockets, stop = [], threading.Event()

    def flood():
        for i in range(n):
            if stop.is_set():
                break
            try:
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                sockets.append(s)
            except OSError as e:
                print("flood stopped:", e)
                break
            if i % 1000 == 999:
                time.sleep(0.05)

    flooder = threading.Thread(target=flood)
    flooder.start()
    served = asked = 0
    last = None
    started = time.time()
    while time.time() - started < 20:
        asked += 1
        stats = stats_from(port, "127.0.0.2")
        if stats is not None:
            served += 1
            last = stats
        time.sleep(0.25)
    stop.set()
    flooder.join()
    print(f"{len(sockets)} silent sockets from 127.0.0.1 over 20 s: a client on 127.0.0.2 "
          f"was served {served} of {asked} times; connections: {last and last.get('connections')}")
    proc.kill()
    proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("attack", choices=["stuck", "silent"])
    ap.add_argument("n", type=int)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/battorrent"))
    ap.add_argument("tracker_args", nargs="*", help="options for the tracker, after --")
    args = ap.parse_args()
    {"stuck": stuck, "silent": silent}[args.attack](args.binary, args.n, args.tracker_args)


if __name__ == "__main__":
    main()
