//! The canonical encoder for [`Value`]s.

use super::{Kind, Value};
use thiserror::Error;

/// Why a value has no canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The same key appears twice in one dictionary.
    #[error("duplicate dictionary key {0:?}")]
    DuplicateKey(String),
}

/// Encodes `value` canonically: dictionary keys sorted by raw bytes, no duplicate keys,
/// integers without leading zeros. Decoding canonical input and encoding it again gives back
/// the same bytes.
pub fn encode(value: &Value<'_>) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(value.span.len());
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match &value.kind {
        Kind::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'e');
        }
        Kind::Bytes(b) => write_bytes(b, out),
        Kind::List(items) => {
            out.push(b'l');
            for item in items {
                write(item, out)?;
            }
            out.push(b'e');
        }
        Kind::Dict(entries) => {
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(EncodeError::DuplicateKey(
                    String::from_utf8_lossy(w[0].0).into_owned(),
                ));
            }
            out.push(b'd');
            for (key, item) in sorted {
                write_bytes(key, out);
                write(item, out)?;
            }
            out.push(b'e');
        }
    }
    Ok(())
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::super::{decode, Limits};
    use super::*;

    #[test]
    fn canonical_input_round_trips_byte_for_byte() {
        let inputs: [&[u8]; 5] = [
            b"d1:ai-12e1:bl0:4:spamd1:xi0eee2:zzi9223372036854775807ee",
            b"le",
            b"de",
            b"i-9223372036854775808e",
            b"d4:infod6:lengthi5e4:name1:xee",
        ];
        for input in inputs {
            let doc = decode(input, Limits::default()).unwrap();
            assert!(doc.warnings.is_empty());
            let encoded = encode(&doc.root).unwrap();
            assert_eq!(encoded, input, "{}", String::from_utf8_lossy(input));
            // And once more from our own output.
            let again = encode(&decode(&encoded, Limits::default()).unwrap().root).unwrap();
            assert_eq!(again, encoded);
        }
    }

    #[test]
    fn sorts_keys_by_raw_bytes() {
        let doc = decode(b"d1:bi1e2:aai2e1:ai3e1:Bi4ee", Limits::default()).unwrap();
        assert_eq!(doc.warnings.len(), 3);
        let encoded = encode(&doc.root).unwrap();
        assert_eq!(encoded, b"d1:Bi4e1:ai3e2:aai2e1:bi1ee");
    }

    #[test]
    fn refuses_duplicate_keys() {
        let doc = decode(b"d1:ai1e1:ai2ee", Limits::default()).unwrap();
        assert_eq!(
            encode(&doc.root),
            Err(EncodeError::DuplicateKey("a".into()))
        );
    }
}
