#!/usr/bin/python3
"""Downloads a torrent with libtorrent and exits 0 once it is complete and verified.

Usage: lt_download.py TORRENT SAVE_DIR LISTEN_IP TIMEOUT_SECONDS
TCP only (no uTP, DHT, LSD, UPnP/NAT-PMP); prints progress lines to stderr.
"""
import sys
import time

import libtorrent as lt

torrent, save, listen_ip, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
session = lt.session({
    "listen_interfaces": f"{listen_ip}:6881",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
})
handle = session.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
deadline = time.time() + timeout
while time.time() < deadline:
    status = handle.status()
    if status.is_seeding:
        print(f"complete: {status.total_wanted} bytes", file=sys.stderr)
        sys.exit(0)
    print(f"{status.progress * 100:.1f}% peers={status.num_peers} state={status.state}", file=sys.stderr)
    time.sleep(0.5)
print("timed out", file=sys.stderr)
sys.exit(1)
