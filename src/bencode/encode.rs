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
    let mut w = Writer(out);
    match &value.kind {
        Kind::Int(i) => w.int(*i),
        Kind::Bytes(b) => w.bytes(b),
        Kind::List(items) => {
            w.begin_list();
            for item in items {
                write(item, w.0)?;
            }
            w.end();
        }
        Kind::Dict(entries) => {
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            if let Some(pair) = sorted.windows(2).find(|pair| pair[0].0 == pair[1].0) {
                return Err(EncodeError::DuplicateKey(
                    String::from_utf8_lossy(pair[0].0).into_owned(),
                ));
            }
            w.begin_dict();
            for (key, item) in sorted {
                w.bytes(key);
                write(item, w.0)?;
            }
            w.end();
        }
    }
    Ok(())
}

/// A streaming bencode writer appending to a byte vector: the hot-path encoder for
/// responses built directly from state (tracker replies). The caller writes dictionary keys
/// in sorted order; [`encode`] is the checked way for arbitrary values.
pub struct Writer<'o>(pub &'o mut Vec<u8>);

impl Writer<'_> {
    /// `i<n>e`
    pub fn int(&mut self, n: i64) {
        self.0.push(b'i');
        self.0
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.0.push(b'e');
    }

    /// `<len>:<bytes>`
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
        self.0.push(b':');
        self.0.extend_from_slice(bytes);
    }

    /// A dictionary key followed by an integer value.
    pub fn key_int(&mut self, key: &str, n: i64) {
        self.bytes(key.as_bytes());
        self.int(n);
    }

    /// A dictionary key followed by a string value.
    pub fn key_bytes(&mut self, key: &str, value: &[u8]) {
        self.bytes(key.as_bytes());
        self.bytes(value);
    }

    /// `l`
    pub fn begin_list(&mut self) {
        self.0.push(b'l');
    }

    /// `d`
    pub fn begin_dict(&mut self) {
        self.0.push(b'd');
    }

    /// `e`, closing the innermost list or dictionary.
    pub fn end(&mut self) {
        self.0.push(b'e');
    }
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
