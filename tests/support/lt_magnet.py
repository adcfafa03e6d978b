#!/usr/bin/python3
"""Downloads a magnet link with libtorrent from one given peer; exits 0 once the metadata
arrived and the data is complete and verified.

Usage: lt_magnet.py MAGNET SAVE_DIR LISTEN_IP PEER_IP PEER_PORT TIMEOUT_SECONDS
TCP only (no uTP, DHT, LSD, UPnP/NAT-PMP, trackers); prints progress lines to stderr, and
"metadata: N bytes" once the info dictionary is in.
"""
import sys
import time

import libtorrent as lt

magnet, save, listen_ip, peer_ip, peer_port, timeout = sys.argv[1:7]
session = lt.session({
    "listen_interfaces": f"{listen_ip}:6881",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
})
params = lt.parse_magnet_uri(magnet)
params.save_path = save
handle = session.add_torrent(params)
handle.connect_peer((peer_ip, int(peer_port)))
deadline = time.time() + float(timeout)
said_metadata = False
while time.time() < deadline:
    status = handle.status()
    if status.has_metadata and not said_metadata:
        said_metadata = True
        info = handle.torrent_file()
        print(f"metadata: {info.metadata_size()} bytes", file=sys.stderr)
    if status.is_seeding:
        print(f"complete: {status.total_wanted} bytes", file=sys.stderr)
        sys.exit(0)
    if not status.has_metadata or status.num_peers == 0:
        handle.connect_peer((peer_ip, int(peer_port)))
    print(f"{status.progress * 100:.1f}% peers={status.num_peers} state={status.state}",
          file=sys.stderr)
    time.sleep(0.5)
print("timed out", file=sys.stderr)
sys.exit(1)
