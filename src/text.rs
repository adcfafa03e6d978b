//! Text from outside made safe to show: the one escaping function for terminals and logs.
//!
//! Torrent names, paths, comments, tracker URLs and messages, peer client names and error
//! strings that quote any of them can hold escape sequences that move the cursor, forge
//! lines, set the terminal title or write the clipboard (OSC 52). Everything from outside
//! goes through [`escape`] before it reaches stdout, stderr or a log; JSON output goes
//! through [`json`].

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL, C1, which
/// includes the one-byte CSI), line and paragraph separators, and bidirectional overrides
/// (which reorder what is shown).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [`is_unsafe`] character written as a Rust escape (`\n`, `\u{1b}`), so
/// it shows as one inert line. Borrows when there is nothing to escape.
///
/// ```
/// use battorrent::text::escape;
/// assert_eq!(escape("a\x1b]52;c;eA==\x07\nInfo hash"), "a\\u{1b}]52;c;eA==\\u{7}\\nInfo hash");
/// assert_eq!(escape("名前.txt"), "名前.txt");
/// ```
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text for `value` (pretty when `pretty`) with no character a terminal acts on:
/// serde_json escapes C0 controls in strings; this also writes DEL, C1 controls and the
/// rest of [`is_unsafe`] as `\uXXXX` escapes, which decode to the same strings. The only
/// raw newlines left are the layout's.
pub fn json(value: &serde_json::Value, pretty: bool) -> String {
    let raw = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .unwrap_or_default();
    if !raw.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return raw;
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        // Outside strings serde_json writes only ASCII punctuation, digits, letters and
        // layout whitespace, so any other unsafe character is inside a string.
        if c != '\n' && is_unsafe(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_control_and_nothing_else() {
        let hostile = "n\x1b[2J\r\x07\x7f\u{9b}31m\u{202e}txt.exe\u{2028}";
        let shown = escape(hostile);
        assert!(!shown.chars().any(is_unsafe), "{shown}");
        assert_eq!(
            shown,
            "n\\u{1b}[2J\\r\\u{7}\\u{7f}\\u{9b}31m\\u{202e}txt.exe\\u{2028}"
        );
        assert!(matches!(escape("plain, ünïcode ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_valid_and_decodes_to_the_same_text() {
        let hostile = "n\x1b]0;title\x07\r\n\x7f\u{9b}\u{202e}";
        let value = serde_json::json!({ "name": hostile, "list": [hostile] });
        for pretty in [false, true] {
            let text = json(&value, pretty);
            assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "{text}");
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, value);
        }
    }
}
