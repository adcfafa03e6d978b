//! The API's HTTP side: axum routes over [`super::handlers`], [`super::events`],
//! [`super::stream`] and [`super::web`], and the same-origin check on changes.

use super::{handlers as h, ApiBackend, ApiError, Reply, MAX_JSON};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use std::sync::Arc;

/// The API's, the page's and the stream's routes, for [`crate::rpc::http::router_with`].
pub fn routes<B: ApiBackend>(backend: Arc<B>) -> Router {
    let api = Router::new()
        .route("/torrents", get(list::<B>).post(add::<B>))
        .route("/torrents/{id}", axum::routing::delete(remove::<B>))
        .route("/torrents/{id}/pause", post(pause::<B>))
        .route("/torrents/{id}/resume", post(resume::<B>))
        .route("/torrents/{id}/files", get(files::<B>).put(set_files::<B>))
        .route("/torrents/{id}/sequential", put(sequential::<B>))
        .route(
            "/torrents/{id}/limits",
            get(torrent_limits::<B>).put(set_torrent_limits::<B>),
        )
        .route("/limits", get(limits::<B>).put(set_limits::<B>))
        .route("/events", get(events::<B>))
        .fallback(not_found);
    Router::new()
        .nest("/api/v1", api)
        .route("/stream/{id}/{*path}", get(stream::<B>))
        .merge(super::web::routes())
        .layer(axum::middleware::from_fn(same_origin))
        .with_state(backend)
}

/// An error as JSON: `{"error": "..."}`.
pub fn error_response(e: ApiError) -> Response {
    let body = serde_json::json!({ "error": e.message }).to_string();
    (e.status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn respond(reply: Reply) -> Response {
    match reply {
        Ok((status, value)) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

async fn not_found() -> Response {
    error_response(ApiError::new(
        StatusCode::NOT_FOUND,
        "no such API call (see the README's JSON API section)",
    ))
}

/// Refuses changes a page of another site sends through the visitor's browser.
async fn same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && !origin_allowed(request.headers()) {
        return error_response(ApiError::new(
            StatusCode::FORBIDDEN,
            "changes are taken only from this daemon's own page (the Origin header names another site)",
        ));
    }
    next.run(request).await
}

/// Whether a request's `Origin` (if any) is this daemon as the `Host` header names it.
pub fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest == Some(host)
}

fn id_of(text: &str) -> Result<u32, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad(format!("{text:?} is not a torrent id (a number)")))
}

fn small(body: &Bytes) -> Result<&[u8], ApiError> {
    if body.len() > MAX_JSON {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {MAX_JSON} bytes"),
        ));
    }
    Ok(body)
}

type St<B> = State<Arc<B>>;

async fn list<B: ApiBackend>(State(b): St<B>) -> Response {
    respond(Ok((StatusCode::OK, h::list(&*b))))
}

async fn add<B: ApiBackend>(
    State(b): St<B>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let new = if kind.starts_with("application/x-bittorrent") {
        h::uploaded_torrent(body.to_vec(), uri.query().unwrap_or(""))
    } else if kind.is_empty() || kind.starts_with("application/json") {
        h::parse(&body).and_then(h::new_torrent)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send JSON (application/json) or a .torrent file (application/x-bittorrent)",
        ))
    };
    match new {
        Ok(new) => respond(h::add(&*b, new).await),
        Err(e) => error_response(e),
    }
}

async fn remove<B: ApiBackend>(State(b): St<B>, Path(id): Path<String>, uri: Uri) -> Response {
    let delete = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "delete_data" && matches!(&*v, "true" | "1"));
    match id_of(&id) {
        Ok(id) => respond(h::remove(&*b, id, delete).await),
        Err(e) => error_response(e),
    }
}

async fn pause<B: ApiBackend>(State(b): St<B>, Path(id): Path<String>) -> Response {
    respond(id_of(&id).and_then(|id| h::set_running(&*b, id, false)))
}

async fn resume<B: ApiBackend>(State(b): St<B>, Path(id): Path<String>) -> Response {
    respond(id_of(&id).and_then(|id| h::set_running(&*b, id, true)))
}

async fn files<B: ApiBackend>(State(b): St<B>, Path(id): Path<String>) -> Response {
    respond(id_of(&id).and_then(|id| h::files(&*b, id)))
}

async fn set_files<B: ApiBackend>(
    State(b): St<B>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond((|| {
        let id = id_of(&id)?;
        h::set_files(&*b, id, h::parse(small(&body)?)?)
    })())
}

async fn sequential<B: ApiBackend>(
    State(b): St<B>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond((|| {
        let id = id_of(&id)?;
        h::set_sequential(&*b, id, h::parse(small(&body)?)?)
    })())
}

async fn limits<B: ApiBackend>(State(b): St<B>) -> Response {
    respond(h::limits(&*b, None))
}

async fn set_limits<B: ApiBackend>(State(b): St<B>, body: Bytes) -> Response {
    respond(small(&body).and_then(|body| h::set_limits(&*b, None, body)))
}

async fn torrent_limits<B: ApiBackend>(State(b): St<B>, Path(id): Path<String>) -> Response {
    respond(id_of(&id).and_then(|id| h::limits(&*b, Some(id))))
}

async fn set_torrent_limits<B: ApiBackend>(
    State(b): St<B>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    respond((|| h::set_limits(&*b, Some(id_of(&id)?), small(&body)?))())
}

async fn events<B: ApiBackend>(State(b): St<B>) -> Response {
    super::events::stream(b).into_response()
}

async fn stream<B: ApiBackend>(
    State(b): St<B>,
    Path((id, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match id_of(&id).and_then(|id| super::stream::reply(b, id, &path, &headers)) {
        Ok(r) => r,
        Err(e) => error_response(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_this_daemons_page_may_change_things() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9091"));
        assert!(origin_allowed(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9091"),
        );
        assert!(origin_allowed(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!origin_allowed(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_allowed(&h));
        h.remove(header::HOST);
        assert!(!origin_allowed(&h));
    }
}
