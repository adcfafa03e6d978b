#!/usr/bin/python3
"""A libtorrent peer that reports whom it is connected to, for the peer exchange tests.

Usage: lt_peer.py TORRENT SAVE_DIR LISTEN_IP TIMEOUT_SECONDS [--peer IP:PORT]...
                  [--upload-limit BYTES_PER_SECOND] [--no-pex]

Adds TORRENT (the data may already be under SAVE_DIR: then it seeds once checked) and
keeps dialling each --peer while not connected to it. TCP only (no uTP, DHT, LSD,
UPnP/NAT-PMP). --no-pex leaves out the ut_pex plugin (ut_metadata stays), so this peer
neither hears nor tells of other peers. Every half second it prints one JSON line on
stdout (peers still connecting or in the handshake left out):

  {"progress": 0.25, "seeding": false, "peers": [{"ip": "10.99.0.2", "port": 6881,
   "outgoing": true, "pex": false, "seed": true, "client": "..."}]}

where "outgoing" says this peer made the connection and "pex" that it learned the
address from peer exchange (peer_info.source). Exits 1 when TIMEOUT_SECONDS pass.
"""
import argparse
import json
import sys
import time

import libtorrent as lt

parser = argparse.ArgumentParser()
parser.add_argument("torrent")
parser.add_argument("save")
parser.add_argument("listen_ip")
parser.add_argument("timeout", type=float)
parser.add_argument("--peer", action="append", default=[])
parser.add_argument("--upload-limit", type=int, default=0)
parser.add_argument("--no-pex", action="store_true")
args = parser.parse_args()

settings = {
    "listen_interfaces": f"{args.listen_ip}:6881",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "upload_rate_limit": args.upload_limit,
}
if args.no_pex:
    session = lt.session(settings, flags=0)
    session.add_extension("ut_metadata")
else:
    session = lt.session(settings)  # default plugins: ut_metadata, ut_pex, smart_ban
if args.upload_limit:
    # Peers on a private network are in libtorrent's "local" peer class, which has no
    # limits: put every address in the global class, which upload_rate_limit caps.
    everyone = lt.ip_filter()
    everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    session.set_peer_class_filter(everyone)
handle = session.add_torrent({"ti": lt.torrent_info(args.torrent), "save_path": args.save})
dial = []
for peer in args.peer:
    ip, port = peer.rsplit(":", 1)
    dial.append((ip, int(port)))

deadline = time.time() + args.timeout
while time.time() < deadline:
    status = handle.status()
    if status.errc.value() != 0:
        print(f"error: {status.errc.message()}", file=sys.stderr)
        sys.exit(1)
    peers = handle.get_peer_info()
    connected = {p.ip for p in peers}
    for addr in dial:
        if addr not in connected:
            handle.connect_peer(addr)
    report = {
        "progress": status.progress,
        "seeding": status.is_seeding,
        "peers": [{
            "ip": p.ip[0],
            "port": p.ip[1],
            "outgoing": bool(p.flags & lt.peer_info.outgoing_connection),
            "pex": bool(p.source & lt.peer_info.pex),
            "seed": bool(p.flags & lt.peer_info.seed),
            "client": p.client.decode("utf-8", "replace") if isinstance(p.client, bytes)
            else p.client,
        } for p in peers if not p.flags & (lt.peer_info.connecting | lt.peer_info.handshake)],
    }
    print(json.dumps(report), flush=True)
    time.sleep(0.5)
print("timed out", file=sys.stderr)
sys.exit(1)
