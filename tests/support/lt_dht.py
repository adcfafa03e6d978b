#!/usr/bin/python3
"""libtorrent with its DHT on and no tracker, for the DHT interop tests.

Usage: lt_dht.py seed TORRENT SAVE_DIR LISTEN_IP TIMEOUT_SECONDS --node IP:PORT
       lt_dht.py download MAGNET SAVE_DIR LISTEN_IP TIMEOUT_SECONDS --node IP:PORT
The DHT bootstraps only from --node (never the public routers: dht_bootstrap_nodes is
empty), with the test network's settings: many nodes per /24 allowed
(dht_restrict_routing_ips and dht_restrict_search_ips off), a high rate limit, and an
announce every 5 s. TCP only (no uTP, LSD, UPnP/NAT-PMP). seed: checks the data, prints
"seeding" on stderr, runs until killed or the timeout. download: exits 0 once every piece
is verified, 1 at the timeout. Status lines on stderr.
"""
import argparse
import sys
import time

import libtorrent as lt

parser = argparse.ArgumentParser()
parser.add_argument("mode", choices=["seed", "download"])
parser.add_argument("what")
parser.add_argument("save")
parser.add_argument("listen_ip")
parser.add_argument("timeout", type=float)
parser.add_argument("--node", required=True)
args = parser.parse_args()

session = lt.session({
    "listen_interfaces": f"{args.listen_ip}:6881",
    "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "dht_bootstrap_nodes": "",
    "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
    "dht_block_ratelimit": 10000, "dht_announce_interval": 5,
})
host, port = args.node.rsplit(":", 1)
session.add_dht_node((host, int(port)))
if args.mode == "seed":
    handle = session.add_torrent({"ti": lt.torrent_info(args.what), "save_path": args.save})
else:
    params = lt.parse_magnet_uri(args.what)
    params.save_path = args.save
    handle = session.add_torrent(params)
deadline = time.time() + args.timeout
announced = False
last = 0.0
while time.time() < deadline:
    status = handle.status()
    if status.errc.value() != 0:
        print(f"error: {status.errc.message()}", file=sys.stderr)
        sys.exit(1)
    if status.is_seeding:
        if args.mode == "download":
            print("complete", file=sys.stderr, flush=True)
            sys.exit(0)
        if not announced:
            announced = True
            print("seeding", file=sys.stderr, flush=True)
    if time.time() - last > 2:
        last = time.time()
        dht = session.status().dht_nodes
        print(f"{status.state} {status.progress:.3f} peers {status.num_peers} "
              f"dht nodes {dht}", file=sys.stderr, flush=True)
    time.sleep(0.05)
print("timed out", file=sys.stderr)
sys.exit(1)
