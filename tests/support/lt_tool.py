#!/usr/bin/python3
"""libtorrent helper for tests/interop_tools/ (the interop_tools test crate).

Run with the system interpreter (/usr/bin/python3, which has python3-libtorrent):

  lt_tool.py version
      Print the libtorrent version.

  lt_tool.py create [--v1-only] --piece-length N [-a URL]... [--tier URL,URL]...
                    [--private] [--web-seed URL]... [--comment TEXT] SRC OUT
      Make OUT from the file or directory SRC with libtorrent's create_torrent.
      Without --v1-only libtorrent 2.x makes a hybrid (v1 + v2) torrent. Each -a
      and each --tier is its own tier, in command-line order. Prints the same
      JSON object as `info OUT`.

  lt_tool.py info TORRENT
      Load TORRENT with libtorrent's torrent_info (a failure to load exits 1
      with the error on stderr) and print one JSON object describing what
      libtorrent read: name, info_hash_v1 / info_hash_v2 (lowercase hex, null
      when absent), total_size, piece_length, piece_count, files (path joined
      with '/' as libtorrent reports it, i.e. including the torrent name for
      multi-file torrents; length; padding), trackers (list of tiers, in tier
      order; order inside a tier is libtorrent's), private, web_seeds,
      comment, created_by, creation_date.
"""

import argparse
import json
import os
import sys

try:
    import libtorrent as lt
except ImportError as e:  # pragma: no cover - reported to the Rust test
    sys.stderr.write("cannot import libtorrent (install python3-libtorrent): %s\n" % e)
    sys.exit(3)


def hex_or_none(digest, has):
    if not has:
        return None
    return str(digest).lower()


def describe(ti):
    hashes = ti.info_hashes()
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        files.append({
            "path": fs.file_path(i).replace(os.sep, "/"),
            "length": fs.file_size(i),
            "padding": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
        })
    tiers = {}
    for entry in ti.trackers():
        tiers.setdefault(entry.tier, []).append(entry.url)
    return {
        "libtorrent_version": lt.__version__,
        "name": ti.name(),
        "info_hash_v1": hex_or_none(hashes.v1, hashes.has_v1()),
        "info_hash_v2": hex_or_none(hashes.v2, hashes.has_v2()),
        "total_size": ti.total_size(),
        "piece_length": ti.piece_length(),
        "piece_count": ti.num_pieces(),
        "files": files,
        "trackers": [tiers[t] for t in sorted(tiers)],
        "private": bool(ti.priv()),
        "web_seeds": [ws["url"] for ws in ti.web_seeds()],
        "comment": ti.comment() or None,
        "created_by": ti.creator() or None,
        "creation_date": ti.creation_date() or None,
    }


def cmd_info(args):
    ti = lt.torrent_info(args.torrent)
    print(json.dumps(describe(ti)))


def cmd_create(args):
    src = os.path.abspath(args.src)
    fs = lt.file_storage()
    lt.add_files(fs, src)
    if fs.num_files() == 0:
        sys.stderr.write("no files found under %s\n" % src)
        sys.exit(1)
    flags = lt.create_torrent.v1_only if args.v1_only else 0
    ct = lt.create_torrent(fs, args.piece_length, flags=flags)
    tier = 0
    for url in args.announce:
        ct.add_tracker(url, tier)
        tier += 1
    for group in args.tier:
        for url in group.split(","):
            ct.add_tracker(url, tier)
        tier += 1
    for url in args.web_seed:
        ct.add_url_seed(url)
    if args.private:
        ct.set_priv(True)
    if args.comment is not None:
        ct.set_comment(args.comment)
    lt.set_piece_hashes(ct, os.path.dirname(src))
    data = lt.bencode(ct.generate())
    with open(args.out, "wb") as f:
        f.write(data)
    print(json.dumps(describe(lt.torrent_info(args.out))))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    p_info = sub.add_parser("info")
    p_info.add_argument("torrent")
    p_create = sub.add_parser("create")
    p_create.add_argument("--v1-only", action="store_true")
    p_create.add_argument("--piece-length", type=int, required=True)
    p_create.add_argument("-a", "--announce", action="append", default=[])
    p_create.add_argument("--tier", action="append", default=[])
    p_create.add_argument("--private", action="store_true")
    p_create.add_argument("--web-seed", action="append", default=[])
    p_create.add_argument("--comment")
    p_create.add_argument("src")
    p_create.add_argument("out")
    args = parser.parse_args()
    try:
        if args.cmd == "version":
            print(lt.__version__)
        elif args.cmd == "info":
            cmd_info(args)
        else:
            cmd_create(args)
    except RuntimeError as e:
        # libtorrent raises RuntimeError (or subclasses) for invalid torrents.
        sys.stderr.write("libtorrent error: %s\n" % e)
        sys.exit(1)


if __name__ == "__main__":
    main()
