#!/usr/bin/python3
"""libtorrent as a benchmark peer.

Usage: lt_peer.py seed|download|magnet TORRENT SAVE_DIR LISTEN_IP
seed: checks the data, prints "seeding" to stdout, then seeds until killed.
download: exits 0 as soon as every piece is verified (polled every 10 ms).
magnet: TORRENT is a magnet link; prints "metadata" to stdout the moment the metadata
arrives (polled every 2 ms), then downloads until killed.
TCP only: no uTP, DHT, LSD, UPnP or NAT-PMP.
"""
import sys
import time

import libtorrent as lt

mode, torrent, save, listen_ip = sys.argv[1:5]
session = lt.session({
    "listen_interfaces": f"{listen_ip}:6881",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
})
if mode == "magnet":
    params = lt.parse_magnet_uri(torrent)
    params.save_path = save
    handle = session.add_torrent(params)
    while not handle.status().has_metadata:
        time.sleep(0.002)
    print("metadata", flush=True)
    while True:
        time.sleep(1)
handle = session.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
announced = False
while True:
    status = handle.status()
    if status.errc.value() != 0:
        print(f"error: {status.errc.message()}", file=sys.stderr)
        sys.exit(1)
    if status.is_seeding:
        if mode == "download":
            sys.exit(0)
        if not announced:
            announced = True
            print("seeding", flush=True)
    time.sleep(0.01 if mode == "download" else 0.2)
