//! Bencode (BEP 3): a strict decoder that keeps byte spans, and a canonical encoder.
//!
//! This module owns the rules for what counts as valid bencode. It decodes borrowed
//! [`Value`]s that remember where in the input they came from, so callers can hash exact
//! original bytes (the info hash) and point at the byte offset of any problem.
//! It never panics, never recurses deeper than [`Limits::max_depth`], and never allocates
//! more than a bounded multiple of the input size ([`Limits::max_values`]).
//! [`decode_lazy`] checks by the same rules and builds nothing: large inputs (a .torrent's
//! file list) are then read in place.
//!
//! Typed structures (metainfo, tracker responses) are mapped with `serde_bencode`, but only
//! after this decoder has accepted the bytes.

mod decode;
mod encode;
mod lazy;

pub use decode::{decode, DecodeError, DecodeErrorKind, Document, Limits, Warning, WarningKind};
pub use encode::{encode, EncodeError, Writer};
pub use lazy::{decode_lazy, decode_lazy_prefix, Entries, Items, Lazy, LazyDocument};

use std::ops::Range;

/// A decoded bencode value borrowing from the input, with its byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value<'a> {
    /// The value itself.
    pub kind: Kind<'a>,
    /// Where the value's encoding starts and ends in the input (`input[span]` is its bytes).
    pub span: Range<usize>,
}

/// The four bencode types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `i42e`
    Int(i64),
    /// `4:spam`
    Bytes(&'a [u8]),
    /// `l...e`
    List(Vec<Value<'a>>),
    /// `d...e`, entries in input order (duplicates and disorder are reported as warnings).
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8 text, if it is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The dictionary entries, if this is a dictionary.
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match &self.kind {
            Kind::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// Looks up `key` in a dictionary (the first entry wins if a key is duplicated).
    /// Returns `None` when this is not a dictionary or the key is absent.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Int(_) => "integer",
            Kind::Bytes(_) => "string",
            Kind::List(_) => "list",
            Kind::Dict(_) => "dictionary",
        }
    }
}
