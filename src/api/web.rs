//! The web page: one HTML file, a script and a style sheet, built into the binary (nothing
//! is fetched from elsewhere). Plain JavaScript over the JSON API and its event stream.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/style.css");

/// A strict policy: this page's own script and style only, requests to this daemon only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; media-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

fn asset<S: Clone + Send + Sync + 'static>(
    body: &'static str,
    kind: &'static str,
) -> axum::routing::MethodRouter<S> {
    get(move || async move {
        (
            [
                (header::CONTENT_TYPE, kind),
                (header::CONTENT_SECURITY_POLICY, POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response()
    })
}

/// `/`, `/app.js`, `/style.css`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", asset(INDEX, "text/html; charset=utf-8"))
        .route("/app.js", asset(SCRIPT, "text/javascript; charset=utf-8"))
        .route("/style.css", asset(STYLE, "text/css; charset=utf-8"))
}
