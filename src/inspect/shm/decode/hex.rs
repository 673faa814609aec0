//! Hex: the fallback decoder. A hex string for JSON, and `xxd`-style dump lines for text.

use std::fmt::Write;

/// Two lowercase hex digits per byte.
pub fn hex_string(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Bytes per dump line.
pub const LINE_BYTES: usize = 16;

/// One dump line: `00000010  48 65 6c 6c 6f 00 ...  |Hello.|`.
pub fn dump_line(bytes: &[u8], offset: usize) -> String {
    let mut line = String::with_capacity(80);
    let _ = write!(line, "{offset:08x} ");
    for i in 0..LINE_BYTES {
        if i == 8 {
            line.push(' ');
        }
        match bytes.get(i) {
            Some(b) => {
                let _ = write!(line, " {b:02x}");
            }
            None => line.push_str("   "),
        }
    }
    line.push_str("  |");
    for b in bytes.iter().take(LINE_BYTES) {
        line.push(if b.is_ascii_graphic() || *b == b' ' {
            *b as char
        } else {
            '.'
        });
    }
    line.push('|');
    line
}

/// The whole dump, one line per 16 bytes (at most `max_lines`; then a `...` line).
pub fn dump(bytes: &[u8], max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = bytes
        .chunks(LINE_BYTES)
        .take(max_lines)
        .enumerate()
        .map(|(i, chunk)| dump_line(chunk, i * LINE_BYTES))
        .collect();
    let total = bytes.len().div_ceil(LINE_BYTES);
    if total > max_lines {
        lines.push(format!(
            "... {} more bytes",
            bytes.len() - max_lines * LINE_BYTES
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(hex_string(b"ab\x00\xff"), "616200ff");
        assert_eq!(
            dump_line(b"Hello\x00", 16),
            "00000010  48 65 6c 6c 6f 00                                 |Hello.|"
        );
        assert_eq!(dump(&[0u8; 40], 2).len(), 3);
        assert!(dump(&[], 10).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
                        max in 0usize..20) {
            let lines = dump(&bytes, max);
            proptest::prop_assert!(lines.len() <= max + 1);
            proptest::prop_assert_eq!(hex_string(&bytes).len(), bytes.len() * 2);
        }
    }
}
