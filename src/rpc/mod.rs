//! Remote control of a running client: the RPC layers over a [`Backend`].
//!
//! [`transmission`] speaks Transmission's RPC (JSON in, JSON out, no sockets); [`http`]
//! serves it, with auth and limits, on hyper through one axum router that our own JSON
//! API and web page will share. The backend is the daemon ([`crate::daemon`]) over a
//! session, or a fake in tests. This module never touches torrents' files or the session
//! directly: everything goes through [`Backend`].

pub mod auth;
pub mod backend;
pub mod http;
pub mod options;
pub mod transmission;

pub use auth::Credentials;
pub use backend::Backend;
