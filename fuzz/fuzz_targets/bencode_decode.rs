//! Strict bencode decoder + canonical encoder.
//!
//! - `decode` never panics (depth and value-count limits hold for any input).
//! - The root span covers the whole input.
//! - Canonical input (no warnings) re-encodes to exactly the input bytes.
//! - Input with warnings (unsorted / duplicate keys) either fails to encode with
//!   `DuplicateKey`, or encodes to bytes that decode again without warnings and are a fixed
//!   point of decode → encode.
#![no_main]

use battorrent::bencode::{decode, encode, EncodeError, Limits, WarningKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = decode(data, Limits::default()) else {
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
