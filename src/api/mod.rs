//! Our own JSON API, its event stream, the web page and file streaming, next to the
//! Transmission RPC on the daemon's router ([`crate::rpc::http`], behind the same guard).
//!
//! - `/api/v1/...`: JSON in, JSON out ([`handlers`] as plain functions over an
//!   [`ApiBackend`], [`mod@routes`] binding them to HTTP); errors are `{"error": "..."}` with a
//!   fitting status.
//! - `/api/v1/events`: server-sent events ([`events`]).
//! - `/`: the web page ([`web`]), built into the binary.
//! - `/stream/{id}/{*path}`: a torrent's file with HTTP ranges ([`stream`]).
//!
//! Changes (`POST`, `PUT`, `DELETE`) coming from a browser must come from this daemon's own
//! page: a request whose `Origin` names another site is refused, so a page elsewhere cannot
//! drive a daemon on loopback (the guard lets such requests through when no password is set).

pub mod backend;
pub mod events;
pub mod handlers;
pub mod range;
pub mod routes;
pub mod stream;
pub mod web;

pub use backend::ApiBackend;
pub use routes::routes;

use axum::http::StatusCode;

/// Largest JSON body the API takes, besides uploads (a .torrent, in base64 or raw).
pub const MAX_JSON: usize = 64 << 10;

/// A failed API call: the status and one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn no_torrent(id: u32) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("there is no torrent {id}"))
    }
}

impl From<crate::rpc::backend::BackendError> for ApiError {
    fn from(e: crate::rpc::backend::BackendError) -> ApiError {
        use crate::rpc::backend::BackendError as E;
        use crate::session::SessionError as S;
        let status = match &e {
            E::Torrent(_) | E::Magnet(_) | E::Refused(_) => StatusCode::BAD_REQUEST,
            E::Session(S::Duplicate(_)) => StatusCode::CONFLICT,
            E::Session(S::Unknown(_)) => StatusCode::NOT_FOUND,
            E::Session(S::NoMetadata(_)) => StatusCode::CONFLICT,
            E::Session(S::FileCount { .. }) => StatusCode::BAD_REQUEST,
            E::Session(_) | E::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<crate::session::SessionError> for ApiError {
    fn from(e: crate::session::SessionError) -> ApiError {
        crate::rpc::backend::BackendError::Session(e).into()
    }
}

/// A JSON reply: the status and the value.
pub type Reply = Result<(StatusCode, serde_json::Value), ApiError>;

#[cfg(test)]
mod tests;
