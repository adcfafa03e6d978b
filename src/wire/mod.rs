//! The peer wire protocol (BEP 3): handshake and length-prefixed messages, the fast
//! extension's messages (BEP 6), and the payloads of the extension protocol (BEP 10:
//! metadata exchange, BEP 9; peer exchange, BEP 11).
//!
//! Owns framing ([`decode`], [`Message::encode`]) and the per-connection protocol rules
//! ([`Rules`]), kept free of sockets so they can be tested with scripted peers and fuzzed.
//! It never touches storage or the picker, and never allocates more than a frame's checked
//! length.

pub mod extension;
mod handshake;
mod message;
pub mod metadata;
pub mod pex;
mod rules;

pub use handshake::{
    supports_dht, supports_fast, Handshake, HandshakeError, DHT_RESERVED_BIT, DHT_RESERVED_BYTE,
    HANDSHAKE_LEN, PROTOCOL,
};
pub use message::{decode, max_message_len, piece_header, Message, WireError, BLOCK_LEN};
pub use rules::{Rules, Violation};

use bitvec::prelude::{BitVec, Msb0};

/// A set of piece indexes in wire order: piece 0 is the high bit of the first byte.
pub type Bitfield = BitVec<u8, Msb0>;
