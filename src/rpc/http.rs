//! The daemon's HTTP side: one axum router (Transmission RPC at `/transmission/rpc`; our
//! JSON API and the web page go next to it), served by hyper with limits on everything a
//! client controls: request bodies ([`MAX_BODY`]), headers (10 s to arrive, 64 KiB),
//! connections ([`MAX_CONNECTIONS`], each at most [`MAX_CONNECTION_TIME`]).
//!
//! Every request passes a guard first: basic auth when credentials are set, else only
//! requests addressed to this machine by address or `localhost`.

use super::auth::{authorized, local_host, Credentials};
use super::backend::Backend;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest request body: a 16 MiB .torrent in base64 with room for the rest of the JSON.
pub const MAX_BODY: usize = super::transmission::MAX_METAINFO / 3 * 4 + (1 << 20);
/// Connections served at once; more wait in the kernel's queue.
pub const MAX_CONNECTIONS: usize = 256;
/// A connection is closed after this long whatever it does (clients reconnect).
pub const MAX_CONNECTION_TIME: Duration = Duration::from_secs(600);
/// The header naming the RPC session (Transmission's CSRF defence).
pub const SESSION_HEADER: &str = "x-transmission-session-id";

/// What the HTTP side needs besides the backend.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Basic-auth credentials; `None`: requests must come addressed to this machine.
    pub auth: Option<Credentials>,
    /// The RPC session id handed out with 409 replies (random per run).
    pub session_id: String,
}

struct AppState<B> {
    backend: Arc<B>,
    config: HttpConfig,
}

/// The daemon's routes over `backend`.
pub fn router<B: Backend>(backend: Arc<B>, config: HttpConfig) -> Router {
    router_with(backend, config, Router::new())
}

/// The daemon's routes and `extra` (the JSON API and the web page), all behind the guard.
pub fn router_with<B: Backend>(backend: Arc<B>, config: HttpConfig, extra: Router) -> Router {
    let state = Arc::new(AppState { backend, config });
    Router::new()
        .route("/transmission/rpc", any(transmission::<B>))
        .route("/transmission/rpc/", any(transmission::<B>))
        .with_state(state.clone())
        .merge(extra)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(state, guard::<B>))
}

/// A fresh RPC session id: 48 random letters and digits.
pub fn new_session_id() -> String {
    (0..48).map(|_| fastrand::alphanumeric()).collect()
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Auth or the host check, before any route.
async fn guard<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    match &state.config.auth {
        Some(credentials) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes);
            if !authorized(given, credentials) {
                let mut reply = text(StatusCode::UNAUTHORIZED, "401: Unauthorized\n");
                reply.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"battorrent\""),
                );
                return reply;
            }
        }
        None => {
            if !local_host(headers.get(header::HOST).map(HeaderValue::as_bytes)) {
                return text(
                    StatusCode::MISDIRECTED_REQUEST,
                    "421: this daemon answers only requests addressed to this machine by \
                     address or as localhost; start it with --rpc-auth USER:PASS to use a \
                     host name\n",
                );
            }
        }
    }
    next.run(request).await
}

/// `POST /transmission/rpc`: the session-id handshake (409 carrying the id until the
/// client sends it back), then one request answered by [`super::transmission::handle`].
async fn transmission<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = &state.config.session_id;
    let given = headers.get(SESSION_HEADER).map(HeaderValue::as_bytes);
    if given != Some(id.as_bytes()) {
        let mut reply = text(
            StatusCode::CONFLICT,
            "409: Conflict. Send the X-Transmission-Session-Id header of this reply with \
             your request.\n",
        );
        if let Ok(value) = HeaderValue::from_str(id) {
            reply.headers_mut().insert(SESSION_HEADER, value);
        }
        return reply;
    }
    if method != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "405: use POST\n");
    }
    let now = unix_now();
    let answer = super::transmission::handle(&*state.backend, &body, id, now).await;
    let mut reply = (
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        answer,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(id) {
        reply.headers_mut().insert(SESSION_HEADER, value);
    }
    reply
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Serves `app` on `listener` until `shutdown` (connections still open then are closed).
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return,
            slot = slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { return };
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("RPC accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .max_buf_size(64 << 10)
            .serve_connection(TokioIo::new(stream), service);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // A second's grace at shutdown: the reply to `session-close` still goes out.
            let closing = async {
                shutdown.cancelled().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            };
            tokio::select! {
                _ = connection => {}
                _ = closing => {}
                _ = tokio::time::sleep(MAX_CONNECTION_TIME) => {}
            }
        });
    }
}
