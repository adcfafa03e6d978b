//! Reading checked bencode in place, for inputs too large to turn into a [`super::Value`]
//! tree (a .torrent with a million files): nothing is built, values are found by walking
//! the bytes.
//!
//! [`decode_lazy`] first checks the whole input with the same rules as [`super::decode`], so
//! the walk meets only well-formed bencode; it still never panics or loops on any bytes.

use super::decode::{check, DecodeError, Limits, Warning};
use std::ops::Range;

/// A checked input: its root value and the irregularities that were accepted.
#[derive(Debug, Clone)]
pub struct LazyDocument<'a> {
    /// The root value; its span covers the whole input.
    pub root: Lazy<'a>,
    /// Unsorted or duplicate dictionary keys, as [`super::decode`] reports them.
    pub warnings: Vec<Warning>,
}

/// Checks `input` as [`super::decode`] does (same errors, same warnings) and returns its root
/// for reading in place. Costs no memory beyond the warnings and the decoder's stack.
pub fn decode_lazy(input: &[u8], limits: Limits) -> Result<LazyDocument<'_>, DecodeError> {
    let warnings = check(input, limits)?;
    Ok(LazyDocument {
        root: Lazy {
            input,
            span: 0..input.len(),
        },
        warnings,
    })
}

/// Checks the bencoded value at the start of `input` (anything may follow it: BEP 9 puts
/// raw bytes after a dictionary) and returns it with the length it takes.
pub fn decode_lazy_prefix(
    input: &[u8],
    limits: Limits,
) -> Result<(LazyDocument<'_>, usize), DecodeError> {
    let end = skip(input, 0);
    let doc = decode_lazy(&input[..end], limits)?;
    Ok((doc, end))
}

/// One value of a checked input, read in place. Cheap to copy around (a slice and a span).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lazy<'a> {
    input: &'a [u8],
    /// Where the value's encoding starts and ends in the input.
    pub span: Range<usize>,
}

impl<'a> Lazy<'a> {
    fn first(&self) -> u8 {
        self.input.get(self.span.start).copied().unwrap_or(0)
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        if self.first() != b'i' {
            return None;
        }
        let digits = self.input.get(self.span.start + 1..self.span.end - 1)?;
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        if !self.first().is_ascii_digit() {
            return None;
        }
        let input: &'a [u8] = self.input;
        let colon = input
            .get(self.span.clone())?
            .iter()
            .position(|&b| b == b':')?;
        input.get(self.span.start + colon + 1..self.span.end)
    }

    /// The byte string as UTF-8 text, if it is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list's items in order, if this is a list.
    pub fn list(&self) -> Option<Items<'a>> {
        (self.first() == b'l').then(|| Items {
            input: self.input,
            pos: self.span.start + 1,
            end: self.span.end,
        })
    }

    /// The dictionary's entries in input order, if this is a dictionary.
    pub fn dict(&self) -> Option<Entries<'a>> {
        (self.first() == b'd').then(|| Entries {
            items: Items {
                input: self.input,
                pos: self.span.start + 1,
                end: self.span.end,
            },
        })
    }

    /// Looks up `key` in a dictionary (the first entry wins, as in [`super::Value::get`]).
    /// Walks the dictionary: costs time in its size, so read large ones once with
    /// [`Lazy::dict`].
    pub fn get(&self, key: &str) -> Option<Lazy<'a>> {
        self.dict()?
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.first() {
            b'i' => "integer",
            b'l' => "list",
            b'd' => "dictionary",
            _ => "string",
        }
    }
}

/// The items of a list (also the keys and values of a dictionary, alternately).
#[derive(Debug, Clone)]
pub struct Items<'a> {
    input: &'a [u8],
    pos: usize,
    /// One past the container's closing `e`.
    end: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Lazy<'a>;

    fn next(&mut self) -> Option<Lazy<'a>> {
        // The container's closing 'e' sits at end - 1.
        if self.pos + 1 >= self.end || self.input.get(self.pos) == Some(&b'e') {
            return None;
        }
        let item = Lazy {
            input: self.input,
            span: self.pos..skip(self.input, self.pos),
        };
        self.pos = item.span.end;
        Some(item)
    }
}

/// The entries of a dictionary: key bytes and value.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    items: Items<'a>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a [u8], Lazy<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let key = self.items.next()?;
        let value = self.items.next()?;
        Some((key.as_bytes().unwrap_or_default(), value))
    }
}

/// Where the value starting at `pos` ends. On checked input this is exact; on anything else
/// it still ends (at most at the end of the input) without panicking.
fn skip(input: &[u8], mut pos: usize) -> usize {
    let mut open = 0usize;
    loop {
        match input.get(pos) {
            None => return input.len(),
            Some(b'i') => {
                pos = input[pos..]
                    .iter()
                    .position(|&b| b == b'e')
                    .map_or(input.len(), |e| pos + e + 1);
            }
            Some(b'l' | b'd') => {
                open += 1;
                pos += 1;
                continue;
            }
            Some(b'e') => {
                open = open.saturating_sub(1);
                pos += 1;
            }
            Some(b'0'..=b'9') => {
                let digits = input[pos..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let len = std::str::from_utf8(&input[pos..pos + digits])
                    .ok()
                    .and_then(|d| d.parse::<usize>().ok())
                    .unwrap_or(usize::MAX);
                pos = (pos + digits + 1).saturating_add(len).min(input.len());
            }
            Some(_) => return input.len(),
        }
        if open == 0 {
            return pos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    #[test]
    fn reads_what_the_tree_decoder_reads() {
        let input = b"d3:bar4:spam3:fooi-42e4:listli7e0:d1:ai1eee1:bde1:ble1:bi9ee";
        let tree = decode(input, Limits::default()).unwrap();
        let lazy = decode_lazy(input, Limits::default()).unwrap();
        assert_eq!(
            lazy.warnings, tree.warnings,
            "the duplicate 'b's are reported"
        );
        let root = &lazy.root;
        assert_eq!(root.get("bar").unwrap().as_bytes(), Some(&b"spam"[..]));
        assert_eq!(root.get("foo").unwrap().as_int(), Some(-42));
        let list = root.get("list").unwrap();
        assert_eq!(list.span, tree.root.get("list").unwrap().span);
        let items: Vec<_> = list.list().unwrap().collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_int(), Some(7));
        assert_eq!(items[1].as_bytes(), Some(&b""[..]));
        assert_eq!(items[2].get("a").unwrap().as_int(), Some(1));
        assert_eq!(
            root.get("b").unwrap().type_name(),
            "dictionary",
            "first wins"
        );
        assert_eq!(root.get("b").unwrap().dict().unwrap().count(), 0);
        assert_eq!(root.dict().unwrap().count(), 6);
        assert!(root.get("missing").is_none() && root.as_int().is_none());
        assert!(list.dict().is_none() && list.as_bytes().is_none());
    }

    #[test]
    fn refuses_what_the_tree_decoder_refuses() {
        for bad in [&b"li01ee"[..], b"d1:a", b"i1ei2e", b"5:abc", b"di1ei2ee"] {
            assert_eq!(
                decode_lazy(bad, Limits::default()).unwrap_err(),
                decode(bad, Limits::default()).unwrap_err()
            );
        }
    }

    #[test]
    fn skipping_never_panics_on_garbage() {
        for bad in [
            &b""[..],
            b"l",
            b"i12",
            b"99999999999999999999999:",
            b"x",
            b"d3:ab",
        ] {
            assert!(skip(bad, 0) <= bad.len());
        }
    }
}
