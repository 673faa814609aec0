//! Text from outside (argv, file and segment names, error messages that quote them) made safe
//! to print on a terminal. Any process chooses its own argv, so none of it may reach the
//! terminal as a control character: the output pane drops them ([`is_terminal_control`] is its
//! test too), everything printed outside ratatui shows them escaped (`\e]0;x\a`), and JSON
//! printed to a terminal escapes the ones serde_json leaves raw (DEL, C1).

use std::borrow::Cow;
use std::fmt::Write as _;

/// A character a terminal may act on instead of showing: C0, DEL and C1 controls (ESC, BEL,
/// CSI...), and the bidirectional overrides that reorder what is shown.
pub fn is_terminal_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` on one line: every terminal control (newlines included) written visibly.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`one_line`], but line breaks stay (for messages of several lines).
pub fn lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// An argv as one line: each argument escaped, joined by spaces.
pub fn argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| one_line(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| is_terminal_control(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\x1b' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Escapes, in serialised JSON, the terminal controls serde_json leaves raw (DEL, C1, the
/// bidi overrides) as `\u00XX`; they can only be inside strings, so the JSON means the same.
pub fn json(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| is_terminal_control(c) && c != '\n';
    // Fast path (the headless stream): every such character's UTF-8 starts with one of these.
    let maybe = |b: u8| (b < 0x20 && b != b'\n') || b == 0x7f || b == 0xc2 || b == 0xe2;
    if !text.bytes().any(maybe) || !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_shown_not_sent() {
        assert_eq!(
            one_line("X\x1b]0;PWNED\x07\x1b[2J"),
            "X\\e]0;PWNED\\a\\e[2J"
        );
        assert_eq!(
            one_line("a\nb\r\t\x7f\u{9b}2J"),
            "a\\nb\\r\\t\\x7f\\u{9b}2J"
        );
        assert_eq!(lines("a\nb\x1b"), "a\nb\\e");
        assert_eq!(one_line("plain ünïcode"), "plain ünïcode");
        assert_eq!(
            argv(&["sh".into(), "two\nlines".into(), "\u{202e}txt".into()]),
            "sh two\\nlines \\u{202e}txt"
        );
    }

    #[test]
    fn json_stays_json() {
        let value = serde_json::json!({"argv": ["a\u{9b}b\x7f\x1b\u{202e}"]});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = json(&text);
        assert!(!safe.chars().any(|c| is_terminal_control(c) && c != '\n'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
    }

    proptest::proptest! {
        #[test]
        fn nothing_a_terminal_acts_on_remains(text in "\\PC{0,100}|[\\x00-\\x7f\u{80}-\u{9f}]{0,100}") {
            proptest::prop_assert!(!one_line(&text).chars().any(is_terminal_control));
            proptest::prop_assert!(!lines(&text).chars().any(|c| is_terminal_control(c) && c != '\n'));
        }
    }
}
