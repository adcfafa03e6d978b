#!/usr/bin/python3
"""Seeds a torrent with libtorrent until it is killed (or TIMEOUT_SECONDS pass).

Usage: lt_seed.py TORRENT SAVE_DIR LISTEN_IP TIMEOUT_SECONDS
The data must already be under SAVE_DIR: it is fully checked first (no seed mode);
status lines show the progress the check found. TCP only (no uTP, DHT, LSD,
UPnP/NAT-PMP); prints "seeding" to stderr once checked, then status lines.
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
seeding = False
while time.time() < deadline:
    status = handle.status()
    if status.errc.value() != 0:
        print(f"error: {status.errc.message()}", file=sys.stderr)
        sys.exit(1)
    if status.is_seeding and not seeding:
        seeding = True
        print("seeding", file=sys.stderr)
    print(f"{status.progress * 100:.1f}% state={status.state} peers={status.num_peers} "
          f"uploaded={status.total_upload}",
          file=sys.stderr)
    time.sleep(0.5)
print("timed out", file=sys.stderr)
sys.exit(1)
