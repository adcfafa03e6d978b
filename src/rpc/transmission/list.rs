//! torrent-get: the chosen torrents' fields, written as JSON text straight into one buffer
//! (a listing of 10,000 torrents is a few MiB; building a map per torrent first cost more
//! than everything else together).

use super::{fields, parse_ids, IdRef, Ids, MAX_FIELDS};
use crate::rpc::backend::{Backend, Detail};
use serde_json::{Map, Value};

/// Appends one JSON value.
fn push(buf: &mut Vec<u8>, v: &Value) -> Result<(), String> {
    serde_json::to_writer(&mut *buf, v).map_err(|e| format!("cannot write the answer: {e}"))
}

/// The arguments of torrent-get's answer, as JSON text.
pub fn torrent_get<B: Backend>(
    backend: &B,
    args: &Map<String, Value>,
    now: i64,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let Some(Value::Array(names)) = args.get("fields") else {
        return Err("torrent-get needs 'fields', a list of field names".into());
    };
    let mut names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
    // Each name once: a request cannot make the answer grow by repeating them.
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
    if names.len() > MAX_FIELDS {
        return Err(format!("torrent-get takes at most {MAX_FIELDS} fields"));
    }
    let table = match args.get("format").and_then(Value::as_str) {
        None | Some("objects") => false,
        Some("table") => true,
        Some(other) => return Err(format!("unknown format '{other}' (objects or table)")),
    };
    let ids = parse_ids(args.get("ids"))?;
    let detail = if names.iter().any(|n| fields::needs_pieces(n)) {
        Detail::Pieces
    } else {
        Detail::Brief
    };
    let all = backend.torrents(detail);
    let chosen = all.iter().filter(|t| match &ids {
        Ids::All => true,
        Ids::RecentlyActive => fields::recently_active(t, now),
        Ids::These(refs) => refs.iter().any(|r| match r {
            IdRef::Number(n) => i64::from(t.id) == *n,
            IdRef::Hash(h) => *h == t.info_hash,
        }),
    });
    // Each key written once, then copied.
    let keys: Vec<Vec<u8>> = names
        .iter()
        .map(|n| {
            let mut k = Value::String((*n).to_string()).to_string().into_bytes();
            k.push(b':');
            k
        })
        .collect();
    buf.reserve(all.len().saturating_mul(names.len() * 16) + 64);
    buf.extend_from_slice(b"{\"torrents\":[");
    let mut first = true;
    if table {
        push(buf, &serde_json::json!(names))?;
        first = false;
    }
    for t in chosen {
        if !first {
            buf.push(b',');
        }
        first = false;
        buf.push(if table { b'[' } else { b'{' });
        let mut first_field = true;
        for (name, key) in names.iter().zip(&keys) {
            let value = fields::field(name, t, now);
            if value.is_none() && !table {
                continue;
            }
            if !first_field {
                buf.push(b',');
            }
            first_field = false;
            if !table {
                buf.extend_from_slice(key);
            }
            push(buf, value.as_ref().unwrap_or(&Value::Null))?;
        }
        buf.push(if table { b']' } else { b'}' });
    }
    buf.push(b']');
    if ids == Ids::RecentlyActive {
        buf.extend_from_slice(b",\"removed\":");
        push(buf, &serde_json::json!(backend.removed_recently()))?;
    }
    buf.push(b'}');
    Ok(())
}
