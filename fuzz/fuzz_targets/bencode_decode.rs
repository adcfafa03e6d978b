//! Strict bencode decoder + canonical encoder.
//!
//! - `decode` never panics (depth and value-count limits hold for any input).
//! - The root span covers the whole input.
//! - Canonical input (no warnings) re-encodes to exactly the input bytes.
//! - Input with warnings (unsorted / duplicate keys) either fails to encode with
//!   `DuplicateKey`, or encodes to bytes that decode again without warnings and are a fixed
//!   point of decode → encode.
//! - `decode_lazy` accepts exactly what `decode` accepts, with the same warnings, and
//!   reading its values in place finds the same tree, span for span.
#![no_main]

use battorrent::bencode::{
    decode, decode_lazy, encode, EncodeError, Kind, Lazy, Limits, Value, WarningKind,
};
use libfuzzer_sys::fuzz_target;

/// Whether the value read in place is the decoded one.
fn same(lazy: &Lazy<'_>, value: &Value<'_>) -> bool {
    if lazy.span != value.span {
        return false;
    }
    match &value.kind {
        Kind::Int(n) => lazy.as_int() == Some(*n),
        Kind::Bytes(b) => lazy.as_bytes() == Some(*b),
        Kind::List(items) => lazy.list().is_some_and(|l| {
            let l: Vec<_> = l.collect();
            l.len() == items.len() && l.iter().zip(items).all(|(a, b)| same(a, b))
        }),
        Kind::Dict(entries) => lazy.dict().is_some_and(|d| {
            let d: Vec<_> = d.collect();
            d.len() == entries.len()
                && d
                    .iter()
                    .zip(entries)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let lazy = decode_lazy(data, Limits::default());
    let full = decode(data, Limits::default());
    match (&lazy, &full) {
        (Ok(l), Ok(f)) => {
            assert_eq!(l.warnings, f.warnings, "lazy and full decoders disagree");
            assert!(same(&l.root, &f.root), "reading in place differs from the tree");
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "lazy and full decoders fail differently"),
        _ => panic!("one decoder accepted what the other refused"),
    }
    let Ok(doc) = full else {
        return;
    };
    assert_eq!(doc.root.span, 0..data.len(), "root span must cover the input");

    if doc.warnings.is_empty() {
        let encoded = encode(&doc.root).expect("canonical input must encode");
        assert_eq!(
            encoded,
            data,
            "canonical input did not round-trip byte for byte: {:?} -> {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&encoded)
        );
        return;
    }

    let has_duplicate = doc
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::DuplicateKey);
    match encode(&doc.root) {
        Err(EncodeError::DuplicateKey(_)) => {
            assert!(
                has_duplicate,
                "encode refused a duplicate key the decoder did not report: {:?}",
                doc.warnings
            );
        }
        Ok(encoded) => {
            assert!(
                !has_duplicate,
                "decoder reported a duplicate key but encode accepted it"
            );
            let again = decode(&encoded, Limits::default())
                .expect("encoder output must decode");
            assert!(
                again.warnings.is_empty(),
                "encoder output is not canonical: {:?}",
                again.warnings
            );
            let twice = encode(&again.root).expect("canonical output must encode");
            assert_eq!(twice, encoded, "decode -> encode is not a fixed point");
        }
    }
});
