//! `GET /stream/{id}/{*path}`: one of a torrent's files over HTTP, with ranges, while it
//! downloads. The path must be one of the torrent's files exactly (the filesystem is never
//! looked up by it); bytes come from [`crate::session::Session::read_at`], which waits for
//! and hurries the pieces, a chunk at a time so memory stays small whatever the range.

use super::range::{wanted, Wanted};
use super::{ApiBackend, ApiError};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Bytes read from the session per step of a reply.
pub const CHUNK: u64 = 1 << 20;

/// A file's place in its torrent's data: its offset and length. Padding files are not
/// served.
pub fn locate<B: ApiBackend>(backend: &B, id: u32, path: &str) -> Result<(u64, u64), ApiError> {
    let tid = backend
        .session_id(id)
        .ok_or_else(|| ApiError::no_torrent(id))?;
    let meta = backend.session().metainfo(tid).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "this torrent has no file list yet (a magnet link still fetching its metadata)",
        )
    })?;
    meta.info
        .files
        .iter()
        .find(|f| !f.padding && &*f.path == path)
        .map(|f| (f.offset, f.length))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("torrent {id} has no file named {path:?}"),
            )
        })
}

/// A media type from the file name's extension, for players.
pub fn media_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "flac" => "audio/flac",
        "txt" => "text/plain; charset=utf-8",
        "pdf" => "application/pdf",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// The reply to a stream request: headers now, the body read chunk by chunk as the client
/// takes it.
pub fn reply<B: ApiBackend>(
    backend: Arc<B>,
    id: u32,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let (base, length) = locate(&*backend, id, path)?;
    let tid = backend
        .session_id(id)
        .ok_or_else(|| ApiError::no_torrent(id))?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match wanted(range, length) {
        Wanted::All => (StatusCode::OK, 0, length),
        Wanted::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
        Wanted::Unsatisfiable => {
            let mut r = super::routes::error_response(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range is outside the file ({length} bytes)"),
            ));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{length}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let state = (backend, base + start, base + end);
    let body = futures_util::stream::unfold(state, move |(backend, at, end)| async move {
        if at >= end {
            return None;
        }
        let len = (end - at).min(CHUNK) as usize;
        match backend.session().read_at(tid, at, len).await {
            Ok(bytes) => Some((
                Ok::<Bytes, std::io::Error>(Bytes::from(bytes)),
                (backend, at + len as u64, end),
            )),
            Err(e) => Some((
                Err(std::io::Error::other(e.to_string())),
                (backend, end, end),
            )),
        }
    });
    let mut response = (status, Body::from_stream(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media_type(path)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{length}", end - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}
