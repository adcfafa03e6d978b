#!/usr/bin/python3
"""libtorrent DHT nodes in one process, for the DHT swarm test: one of them looks an info
hash up (dht_get_peers) until the answer holds the peer it is told to want.

Usage: lt_dht_swarm.py INFO_HASH LISTEN_IP FIRST_PORT COUNT TIMEOUT_SECONDS
                       --node IP:PORT --want IP:PORT
COUNT sessions listen on LISTEN_IP, ports FIRST_PORT, FIRST_PORT+1, ... (TCP, and UDP for
the DHT), with the test network's settings: no public routers (dht_bootstrap_nodes empty),
many nodes per IP and /24 (dht_restrict_routing_ips and dht_restrict_search_ips off), a
high dht_block_ratelimit. Every session but the first is introduced to --node (add_dht_node);
the first, the asker, only to the second session, so whatever else it learns comes through
the DHT. Reports are JSON lines on stdout. Once every session has a node in its table (or
after 10 s) it prints {"ready", "nodes", ...}; then every 2 s the asker starts a lookup
(dht_get_peers), and each answer (dht_get_peers_reply_alert) is printed as {"elapsed",
"peers"}. Once an answer holds --want (or at the timeout) it prints {"found", "elapsed",
"nodes", "stored", "announces", "invalid"}: the DHT nodes each session knows, and summed
over the sessions the peers they store and the announce_peer queries they took and refused
(libtorrent's dht.* counters; after a find, up to 20 s more for "stored" to become
non-zero). Exit 0 if found, 1 otherwise.
"""
import argparse
import json
import sys
import time

import libtorrent as lt

parser = argparse.ArgumentParser()
parser.add_argument("info_hash")
parser.add_argument("listen_ip")
parser.add_argument("first_port", type=int)
parser.add_argument("count", type=int)
parser.add_argument("timeout", type=float)
parser.add_argument("--node", required=True)
parser.add_argument("--want", required=True)
args = parser.parse_args()


def endpoint(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


sessions = []
for i in range(args.count):
    sessions.append(lt.session({
        "listen_interfaces": f"{args.listen_ip}:{args.first_port + i}",
        "enable_dht": True, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_block_ratelimit": 10000,
        "alert_mask": lt.alert_category.dht_operation,
    }))
for session in sessions[1:]:
    session.add_dht_node(endpoint(args.node))
sessions[0].add_dht_node((args.listen_ip, args.first_port + 1))



def counters(session):
    """libtorrent's dht.* counters of `session`, by name."""
    session.post_session_stats()
    for _ in range(50):
        for alert in session.pop_alerts():
            if isinstance(alert, lt.session_stats_alert):
                return alert.values
        session.wait_for_alert(100)
    return {}


def totals():
    """What the sessions know and hold, summed over all of them."""
    each = [counters(s) for s in sessions]
    return {
        "nodes": [c.get("dht.dht_nodes", 0) for c in each],
        "stored": sum(c.get("dht.dht_peers", 0) for c in each),
        "announces": sum(c.get("dht.dht_announce_peer_in", 0) for c in each),
        "invalid": sum(c.get("dht.dht_invalid_announce", 0) for c in each),
    }


start = time.time()
# Ready once every session has a node in its table (or after 10 s: the test goes on).
while time.time() - start < 10 and min(totals()["nodes"]) == 0:
    time.sleep(0.2)
print(json.dumps({"ready": round(time.time() - start, 2), **totals()}), flush=True)

info_hash = lt.sha1_hash(bytes.fromhex(args.info_hash))
want = "{}:{}".format(*endpoint(args.want))
found = False
next_lookup = 0
while not found and time.time() - start < args.timeout:
    if time.time() >= next_lookup:
        sessions[0].dht_get_peers(info_hash)
        next_lookup = time.time() + 2
    sessions[0].wait_for_alert(200)
    for alert in sessions[0].pop_alerts():
        if isinstance(alert, lt.dht_get_peers_reply_alert):
            peers = [f"{ip}:{port}" for ip, port in alert.peers()]
            print(json.dumps({"elapsed": round(time.time() - start, 2), "peers": peers}),
                  flush=True)
            found = found or want in peers

# The announce may reach the libtorrent nodes a little after the asker's answer.
deadline = time.time() + 20
summary = totals()
while found and summary["stored"] == 0 and time.time() < deadline:
    time.sleep(0.5)
    summary = totals()
print(json.dumps({"found": found, "elapsed": round(time.time() - start, 2), **summary}),
      flush=True)
sys.exit(0 if found else 1)
