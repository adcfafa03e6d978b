//! HTTP `Range` headers (RFC 9110, section 14): one byte range per request.

/// What a `Range` header asks of a file of `length` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// The whole file (no header, or one this server ignores: several ranges, another unit).
    All,
    /// Bytes `start..end` (end exclusive, never empty).
    Part { start: u64, end: u64 },
    /// A range that does not overlap the file: 416.
    Unsatisfiable,
}

/// Reads `Range: bytes=...` for a file of `length` bytes.
pub fn wanted(header: Option<&str>, length: u64) -> Wanted {
    let Some(spec) = header.map(str::trim).and_then(|h| h.strip_prefix("bytes=")) else {
        return Wanted::All;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::Unsatisfiable;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first.is_empty(), last.is_empty()) {
        // "-N": the last N bytes.
        (true, false) => match number(last) {
            Some(0) | None => Wanted::Unsatisfiable,
            Some(_) if length == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part {
                start: length.saturating_sub(n),
                end: length,
            },
        },
        // "A-" or "A-B".
        (false, _) => {
            let Some(start) = number(first) else {
                return Wanted::Unsatisfiable;
            };
            let end = if last.is_empty() {
                length
            } else {
                match number(last) {
                    Some(b) if b >= start => b.saturating_add(1).min(length),
                    _ => return Wanted::Unsatisfiable,
                }
            };
            if start >= length {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part { start, end }
            }
        }
        (true, true) => Wanted::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let part = |start, end| Wanted::Part { start, end };
        assert_eq!(wanted(None, 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-9"), 100), part(0, 10));
        assert_eq!(wanted(Some("bytes=90-"), 100), part(90, 100));
        assert_eq!(wanted(Some("bytes=90-1000"), 100), part(90, 100));
        assert_eq!(wanted(Some("bytes=-10"), 100), part(90, 100));
        assert_eq!(wanted(Some("bytes=-1000"), 100), part(0, 100));
        assert_eq!(wanted(Some("bytes=99-99"), 100), part(99, 100));
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::All);
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::All);
        for bad in [
            "bytes=100-",
            "bytes=5-4",
            "bytes=-0",
            "bytes=-",
            "bytes=x-1",
            "bytes=1",
            "bytes=+1-2",
            "bytes=18446744073709551616-",
        ] {
            assert_eq!(wanted(Some(bad), 100), Wanted::Unsatisfiable, "{bad}");
        }
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
    }
}
