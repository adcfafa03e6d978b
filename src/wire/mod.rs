//! The peer wire protocol (BEP 3): handshake and length-prefixed messages.
//!
//! Will own framing and per-connection protocol state, kept free of sockets so it can be
//! tested with scripted peers. Nothing here yet: the peer engine issue fills it.
