//! Writing a KRPC message: canonical bencode, keys in byte order, lists cut to the limits
//! the parser enforces, so whatever we send parses back.

use super::parse::cut_message;
use super::{
    Body, Message, Method, NodeInfo, Query, Response, Want, MAX_INTERVAL, MAX_NODES, MAX_SAMPLES,
    MAX_VALUES,
};
use crate::bencode::Writer;
use crate::core::compact;

impl Message {
    /// Appends the message's bencoding to `out`. Nodes of the wrong family for their key
    /// are skipped, lists past their limit cut, `interval` clamped to [`MAX_INTERVAL`]
    /// and the error message cut to [`super::MAX_ERROR_MESSAGE`] bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.begin_dict();
        // Keys in byte order: a, e, ip, q, r, ro, t, v, y.
        if let Body::Query(query) = &self.body {
            w.bytes(b"a");
            write_args(&mut w, query);
        }
        if let Body::Error(error) = &self.body {
            w.bytes(b"e");
            w.begin_list();
            w.int(error.code);
            w.bytes(cut_message(&error.message).as_bytes());
            w.end();
        }
        if let Some(ip) = self.ip {
            let mut addr = Vec::with_capacity(18);
            compact::push(&mut addr, ip);
            w.key_bytes("ip", &addr);
        }
        match &self.body {
            Body::Query(query) => {
                w.key_bytes("q", query.method.name().as_bytes());
            }
            Body::Response(response) => {
                w.bytes(b"r");
                write_response(&mut w, response);
            }
            Body::Error(_) => {}
        }
        if let Body::Query(Query {
            read_only: true, ..
        }) = &self.body
        {
            w.key_int("ro", 1);
        }
        w.key_bytes("t", self.transaction.as_bytes());
        if let Some(v) = &self.version {
            w.key_bytes("v", v.as_bytes());
        }
        let y: &[u8] = match self.body {
            Body::Query(_) => b"q",
            Body::Response(_) => b"r",
            Body::Error(_) => b"e",
        };
        w.key_bytes("y", y);
        w.end();
    }

    /// The message's bencoding in a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.encode(&mut out);
        out
    }
}

fn write_args(w: &mut Writer<'_>, query: &Query) {
    w.begin_dict();
    // Keys in byte order: id, implied_port, info_hash, port, target, token, want.
    w.key_bytes("id", &query.id.0);
    match &query.method {
        Method::Ping => {}
        Method::FindNode { target, want } | Method::SampleInfohashes { target, want } => {
            w.key_bytes("target", &target.0);
            write_want(w, *want);
        }
        Method::GetPeers { info_hash, want } => {
            w.key_bytes("info_hash", &info_hash.0);
            write_want(w, *want);
        }
        Method::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            if *implied_port {
                w.key_int("implied_port", 1);
            }
            w.key_bytes("info_hash", &info_hash.0);
            w.key_int("port", i64::from(*port));
            w.key_bytes("token", token.as_bytes());
        }
    }
    w.end();
}

fn write_want(w: &mut Writer<'_>, want: Want) {
    if !want.v4 && !want.v6 {
        return;
    }
    w.bytes(b"want");
    w.begin_list();
    if want.v4 {
        w.bytes(b"n4");
    }
    if want.v6 {
        w.bytes(b"n6");
    }
    w.end();
}

fn write_response(w: &mut Writer<'_>, r: &Response) {
    w.begin_dict();
    // Keys in byte order: id, interval, nodes, nodes6, num, samples, token, values.
    w.key_bytes("id", &r.id.0);
    if let Some(samples) = &r.samples {
        w.key_int("interval", i64::from(samples.interval.min(MAX_INTERVAL)));
    }
    write_nodes(w, "nodes", &r.nodes, false);
    write_nodes(w, "nodes6", &r.nodes6, true);
    if let Some(samples) = &r.samples {
        w.key_int("num", i64::from(samples.num));
        let hashes = &samples.hashes[..samples.hashes.len().min(MAX_SAMPLES)];
        let mut list = Vec::with_capacity(hashes.len() * 20);
        for h in hashes {
            list.extend_from_slice(&h.0);
        }
        w.key_bytes("samples", &list);
    }
    if let Some(token) = &r.token {
        w.key_bytes("token", token.as_bytes());
    }
    if !r.values.is_empty() {
        w.bytes(b"values");
        w.begin_list();
        let mut entry = Vec::with_capacity(18);
        for addr in r.values.iter().take(MAX_VALUES) {
            entry.clear();
            compact::push(&mut entry, *addr);
            w.bytes(&entry);
        }
        w.end();
    }
    w.end();
}

fn write_nodes(w: &mut Writer<'_>, key: &str, nodes: &[NodeInfo], v6: bool) {
    let mut list = Vec::new();
    for node in nodes
        .iter()
        .filter(|n| n.addr.is_ipv6() == v6)
        .take(MAX_NODES)
    {
        node.write_compact(&mut list);
    }
    if !list.is_empty() {
        w.key_bytes(key, &list);
    }
}
