//! The strict decoder.

use super::{Kind, Value};
use std::collections::HashSet;
use thiserror::Error;

/// Bounds that keep decoding of hostile input cheap.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries accepted (the root counts as depth 1).
    pub max_depth: usize,
    /// Most values (integers, strings, lists, dictionaries) accepted in one input.
    pub max_values: usize,
}

impl Default for Limits {
    /// 64 levels and 4,000,000 values: far beyond any real .torrent or tracker response.
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_values: 4_000_000,
        }
    }
}

/// A successfully decoded input: the root value and any tolerated irregularities.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    /// The root value; its span covers the whole input.
    pub root: Value<'a>,
    /// Irregularities that were accepted (unsorted or duplicate dictionary keys).
    pub warnings: Vec<Warning>,
}

/// An accepted irregularity in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Byte offset of the offending key.
    pub offset: usize,
    /// What is irregular.
    pub kind: WarningKind,
}

/// Irregularities the decoder accepts but reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A dictionary key sorts before the key that precedes it.
    UnsortedKey,
    /// A dictionary key appears twice in the same dictionary.
    DuplicateKey,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            WarningKind::UnsortedKey => "dictionary key out of order",
            WarningKind::DuplicateKey => "duplicate dictionary key",
        };
        write!(f, "{what} at byte {}", self.offset)
    }
}

/// Why an input is not valid bencode, and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid bencode at byte {offset}: {kind}")]
pub struct DecodeError {
    /// Byte offset at which the problem was found.
    pub offset: usize,
    /// What the problem is.
    pub kind: DecodeErrorKind,
}

/// The ways bencode input can be invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeErrorKind {
    #[error("input ends in the middle of a value")]
    UnexpectedEnd,
    #[error("unexpected byte {0:?} where a value should start")]
    UnexpectedByte(char),
    #[error("integer is not a plain decimal number (digits with an optional leading '-')")]
    BadInteger,
    #[error("integer has a leading zero")]
    LeadingZero,
    #[error("integer is negative zero")]
    NegativeZero,
    #[error("integer does not fit in 64 bits")]
    IntegerOverflow,
    #[error("string length is not a plain decimal number")]
    BadLength,
    #[error("string length {0} runs past the end of the input")]
    LengthPastEnd(u64),
    #[error("dictionary key is not a string")]
    KeyNotString,
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    #[error("more than {0} values")]
    TooManyValues(usize),
    #[error("{0} unexpected bytes after the end of the value")]
    TrailingBytes(usize),
}

/// Decodes exactly one bencode value spanning all of `input`.
///
/// Errors name the byte offset of the problem. Unsorted and duplicate dictionary keys are
/// accepted and listed in [`Document::warnings`]; callers that need canonical input check
/// that list.
///
/// ```
/// use battorrent::bencode::{decode, Limits};
///
/// let doc = decode(b"d4:spaml1:ai7eee", Limits::default()).unwrap();
/// let list = doc.root.get("spam").unwrap();
/// assert_eq!(list.span, 7..15); // where the list's bytes are in the input
/// assert_eq!(list.as_list().unwrap()[1].as_int(), Some(7));
///
/// let err = decode(b"li01ee", Limits::default()).unwrap_err();
/// assert_eq!(err.to_string(), "invalid bencode at byte 2: integer has a leading zero");
/// ```
pub fn decode(input: &[u8], limits: Limits) -> Result<Document<'_>, DecodeError> {
    run(input, limits, true)
}

/// Checks `input` by exactly the rules of [`decode`] without building values: what
/// [`super::lazy`] reads in place afterwards. Returns the warnings.
pub(super) fn check(input: &[u8], limits: Limits) -> Result<Vec<Warning>, DecodeError> {
    run(input, limits, false).map(|doc| doc.warnings)
}

fn run(input: &[u8], limits: Limits, build: bool) -> Result<Document<'_>, DecodeError> {
    let mut decoder = Decoder {
        input,
        pos: 0,
        limits,
        values: 0,
        warnings: Vec::new(),
        build,
    };
    let root = decoder.value(1)?;
    if decoder.pos != input.len() {
        return Err(DecodeError {
            offset: decoder.pos,
            kind: DecodeErrorKind::TrailingBytes(input.len() - decoder.pos),
        });
    }
    Ok(Document {
        root,
        warnings: decoder.warnings,
    })
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
    values: usize,
    warnings: Vec<Warning>,
    /// False when only checking: lists and dictionaries come back empty.
    build: bool,
}

impl<'a> Decoder<'a> {
    fn err<T>(&self, offset: usize, kind: DecodeErrorKind) -> Result<T, DecodeError> {
        Err(DecodeError { offset, kind })
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        match self.input.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.err(self.pos, DecodeErrorKind::UnexpectedEnd),
        }
    }

    /// Decodes one value at `depth` (1 for the root).
    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        let start = self.pos;
        self.values += 1;
        if self.values > self.limits.max_values {
            return self.err(
                start,
                DecodeErrorKind::TooManyValues(self.limits.max_values),
            );
        }
        let kind = match self.peek()? {
            b'i' => {
                self.pos += 1;
                Kind::Int(self.integer(b'e')?)
            }
            b'0'..=b'9' => Kind::Bytes(self.bytes()?),
            b'l' | b'd' if depth > self.limits.max_depth => {
                return self.err(start, DecodeErrorKind::TooDeep(self.limits.max_depth));
            }
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    let item = self.value(depth + 1)?;
                    if self.build {
                        items.push(item);
                    }
                }
                self.pos += 1;
                Kind::List(items)
            }
            b'd' => {
                self.pos += 1;
                let entries = self.dict_entries(depth)?;
                Kind::Dict(if self.build { entries } else { Vec::new() })
            }
            other => return self.err(start, DecodeErrorKind::UnexpectedByte(other as char)),
        };
        Ok(Value {
            kind,
            span: start..self.pos,
        })
    }

    fn dict_entries(&mut self, depth: usize) -> Result<Vec<(&'a [u8], Value<'a>)>, DecodeError> {
        let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
        // Once a dictionary is out of order, duplicates can hide anywhere: keep a set then.
        let mut seen: Option<HashSet<&'a [u8]>> = None;
        while self.peek()? != b'e' {
            let key_at = self.pos;
            if !self.peek()?.is_ascii_digit() {
                return self.err(key_at, DecodeErrorKind::KeyNotString);
            }
            let key = self.bytes()?;
            let prev = entries.last().map(|e| e.0);
            let irregular = if let Some(set) = &mut seen {
                if !set.insert(key) {
                    Some(WarningKind::DuplicateKey)
                } else {
                    prev.filter(|p| key < *p).map(|_| WarningKind::UnsortedKey)
                }
            } else {
                match prev {
                    Some(p) if key == p => Some(WarningKind::DuplicateKey),
                    Some(p) if key < p => {
                        let mut set: HashSet<_> = entries.iter().map(|e| e.0).collect();
                        let fresh = set.insert(key);
                        seen = Some(set);
                        Some(if fresh {
                            WarningKind::UnsortedKey
                        } else {
                            WarningKind::DuplicateKey
                        })
                    }
                    _ => None,
                }
            };
            if let Some(kind) = irregular {
                self.warnings.push(Warning {
                    offset: key_at,
                    kind,
                });
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.pos += 1;
        Ok(entries)
    }

    /// Parses a decimal integer ending at `terminator`, starting at the current position.
    fn integer(&mut self, terminator: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let Some(len) = rest.iter().position(|&b| b == terminator) else {
            // Report the first non-digit if there is one, else the end of input.
            return match rest.iter().skip(1).position(|b| !b.is_ascii_digit()) {
                Some(_) => self.err(start, DecodeErrorKind::BadInteger),
                None => self.err(self.input.len(), DecodeErrorKind::UnexpectedEnd),
            };
        };
        let text = &rest[..len];
        let (negative, digits) = match text.split_first() {
            Some((b'-', digits)) => (true, digits),
            _ => (false, text),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return self.err(start, DecodeErrorKind::BadInteger);
        }
        if digits[0] == b'0' && digits.len() > 1 {
            return self.err(start, DecodeErrorKind::LeadingZero);
        }
        if negative && digits == b"0" {
            return self.err(start, DecodeErrorKind::NegativeZero);
        }
        let mut n: i64 = 0;
        for &d in digits {
            let digit = i64::from(d - b'0');
            n = n
                .checked_mul(10)
                .and_then(|n| {
                    if negative {
                        n.checked_sub(digit)
                    } else {
                        n.checked_add(digit)
                    }
                })
                .ok_or(DecodeError {
                    offset: start,
                    kind: DecodeErrorKind::IntegerOverflow,
                })?;
        }
        self.pos = start + len + 1;
        Ok(n)
    }

    /// Parses `<length>:<bytes>` and returns the bytes, borrowed from the input.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        match rest.get(digits) {
            None => return self.err(self.input.len(), DecodeErrorKind::UnexpectedEnd),
            Some(b':') => {}
            Some(_) => return self.err(start + digits, DecodeErrorKind::BadLength),
        }
        if digits == 0 || (rest[0] == b'0' && digits > 1) {
            return self.err(start, DecodeErrorKind::BadLength);
        }
        // More than 19 digits cannot be a length that fits in the input anyway.
        let len = if digits > 19 {
            u64::MAX
        } else {
            rest[..digits]
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'))
        };
        let body = start + digits + 1;
        let available = (self.input.len() - body) as u64;
        if len > available {
            return self.err(start, DecodeErrorKind::LengthPastEnd(len));
        }
        let end = body + len as usize;
        self.pos = end;
        Ok(&self.input[body..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &[u8]) -> DecodeError {
        decode(input, Limits::default()).expect_err("input should be rejected")
    }

    fn ok(input: &[u8]) -> Document<'_> {
        decode(input, Limits::default()).expect("input should decode")
    }

    #[test]
    fn decodes_each_type_with_spans() {
        let doc = ok(b"d3:bar4:spam3:fooi42e4:listli-7e0:ee");
        let root = &doc.root;
        assert_eq!(root.span, 0..36);
        assert_eq!(root.get("bar").unwrap().as_bytes(), Some(&b"spam"[..]));
        assert_eq!(root.get("foo").unwrap().as_int(), Some(42));
        let list = root.get("list").unwrap();
        assert_eq!(list.span, 27..35);
        assert_eq!(list.as_list().unwrap()[0].as_int(), Some(-7));
        assert_eq!(list.as_list().unwrap()[1].as_bytes(), Some(&b""[..]));
        assert!(doc.warnings.is_empty());
    }

    #[test]
    fn integer_edge_values() {
        assert_eq!(ok(b"i0e").root.as_int(), Some(0));
        assert_eq!(ok(b"i9223372036854775807e").root.as_int(), Some(i64::MAX));
        assert_eq!(ok(b"i-9223372036854775808e").root.as_int(), Some(i64::MIN));
    }

    #[test]
    fn rejects_malformed_integers_with_offsets() {
        assert_eq!(err(b"i03e").kind, DecodeErrorKind::LeadingZero);
        assert_eq!(err(b"i-0e").kind, DecodeErrorKind::NegativeZero);
        assert_eq!(err(b"i-03e").kind, DecodeErrorKind::LeadingZero);
        assert_eq!(err(b"ie").kind, DecodeErrorKind::BadInteger);
        assert_eq!(err(b"i-e").kind, DecodeErrorKind::BadInteger);
        assert_eq!(err(b"i1x2e").kind, DecodeErrorKind::BadInteger);
        assert_eq!(err(b"i+1e").kind, DecodeErrorKind::BadInteger);
        assert_eq!(
            err(b"i9223372036854775808e").kind,
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            err(b"i-9223372036854775809e").kind,
            DecodeErrorKind::IntegerOverflow
        );
        let e = err(b"li1ei01ee");
        assert_eq!((e.offset, e.kind), (5, DecodeErrorKind::LeadingZero));
        assert_eq!(err(b"i12").kind, DecodeErrorKind::UnexpectedEnd);
    }

    #[test]
    fn rejects_bad_string_lengths() {
        assert_eq!(err(b"-1:a").kind, DecodeErrorKind::UnexpectedByte('-'));
        assert_eq!(err(b"01:a").kind, DecodeErrorKind::BadLength);
        assert_eq!(err(b"5:abc").kind, DecodeErrorKind::LengthPastEnd(5));
        assert_eq!(
            err(b"99999999999999999999999999:a").kind,
            DecodeErrorKind::LengthPastEnd(u64::MAX)
        );
        assert_eq!(err(b"3").kind, DecodeErrorKind::UnexpectedEnd);
        assert_eq!(err(b"3x").kind, DecodeErrorKind::BadLength);
        let e = err(b"l1:a5:abce");
        assert_eq!((e.offset, e.kind), (4, DecodeErrorKind::LengthPastEnd(5)));
    }

    #[test]
    fn rejects_structure_errors() {
        assert_eq!(err(b"").kind, DecodeErrorKind::UnexpectedEnd);
        assert_eq!(err(b"l").kind, DecodeErrorKind::UnexpectedEnd);
        assert_eq!(err(b"d3:foo").kind, DecodeErrorKind::UnexpectedEnd);
        assert_eq!(err(b"di1ei2ee").kind, DecodeErrorKind::KeyNotString);
        assert_eq!(err(b"x").kind, DecodeErrorKind::UnexpectedByte('x'));
        let e = err(b"i1ei2e");
        assert_eq!((e.offset, e.kind), (3, DecodeErrorKind::TrailingBytes(3)));
    }

    #[test]
    fn million_deep_nesting_is_an_error_not_a_crash() {
        let mut input = vec![b'l'; 1_000_000];
        input.extend(std::iter::repeat_n(b'e', 1_000_000));
        let e = err(&input);
        assert_eq!((e.offset, e.kind), (64, DecodeErrorKind::TooDeep(64)));
        let mut dicts = b"d1:a".repeat(1_000_000);
        dicts.extend(std::iter::repeat_n(b'e', 1_000_000));
        assert_eq!(err(&dicts).kind, DecodeErrorKind::TooDeep(64));
    }

    #[test]
    fn value_count_is_bounded() {
        let mut input = b"l".to_vec();
        input.extend(b"i1e".repeat(100));
        input.push(b'e');
        let limits = Limits {
            max_depth: 8,
            max_values: 50,
        };
        let e = decode(&input, limits).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TooManyValues(50));
    }

    #[test]
    fn unsorted_and_duplicate_keys_are_warnings() {
        let doc = ok(b"d1:bi1e1:ai2e1:bi3ee");
        assert_eq!(
            doc.warnings,
            vec![
                Warning {
                    offset: 7,
                    kind: WarningKind::UnsortedKey
                },
                Warning {
                    offset: 13,
                    kind: WarningKind::DuplicateKey
                },
            ]
        );
        // The first entry wins on lookup.
        assert_eq!(doc.root.get("b").unwrap().as_int(), Some(1));
    }

    #[test]
    fn error_messages_name_the_offset() {
        let message = err(b"d3:fooi01ee").to_string();
        assert_eq!(
            message,
            "invalid bencode at byte 7: integer has a leading zero"
        );
    }
}
