//! Events as JSON lines written straight into the output buffer. `output` events (nearly all
//! of a flood) are written by hand, without intermediate `String`s; every other event goes
//! through serde_json. Either way the bytes are exactly serde_json's, with the terminal
//! controls it leaves raw (DEL, C1, the bidi overrides) escaped as `\uXXXX` like
//! [`printable::json`], since stdout may be a terminal.

use std::io::{self, Write};

use crate::model::{Event, EventBody, OutputLines, Stream, printable};

/// Reusable scratch space of one writer.
#[derive(Default)]
pub struct JsonLines {
    scratch: Vec<u8>,
    /// `t` of the last output event and its text (a batch shares one `t`).
    last_t: Option<(u64, Vec<u8>)>,
}

impl JsonLines {
    /// Appends `event` as one JSON line (with its newline) to `out`; the lines of a read as
    /// one `output` line each.
    pub fn write(&mut self, out: &mut Vec<u8>, event: &Event) -> io::Result<()> {
        let (pid, stream, line, raw_hex, seq, partial) = match &event.body {
            EventBody::OutputLines(lines) => {
                self.write_lines(out, event.t, lines);
                return Ok(());
            }
            EventBody::Output {
                pid,
                stream,
                line,
                raw_hex,
                seq,
                partial,
            } => (*pid, *stream, line, raw_hex, *seq, *partial),
            _ => {
                self.scratch.clear();
                serde_json::to_writer(&mut self.scratch, event)?;
                match std::str::from_utf8(&self.scratch) {
                    Ok(text) => out.extend_from_slice(printable::json(text).as_bytes()),
                    Err(_) => out.extend_from_slice(&self.scratch),
                }
                out.push(b'\n');
                return Ok(());
            }
        };
        self.head(out, event.t, pid, stream);
        string(out, line.as_bytes());
        if let Some(hex) = raw_hex {
            out.extend_from_slice(b",\"raw_hex\":");
            string(out, hex.as_bytes());
        }
        tail(out, seq, partial);
        Ok(())
    }

    /// One `output` line per line of a read (they share `t`, `pid` and `stream`).
    fn write_lines(&mut self, out: &mut Vec<u8>, t: f64, lines: &OutputLines) {
        let start = out.len();
        self.head(out, t, lines.pid, lines.stream);
        let head = start..out.len();
        for (index, (span, seq)) in lines.spans.iter().zip(lines.first_seq..).enumerate() {
            if index > 0 {
                out.extend_from_within(head.clone());
            }
            string(out, lines.bytes(span));
            tail(out, seq, span.partial);
        }
    }

    /// An `output` line up to its `line`'s value.
    fn head(&mut self, out: &mut Vec<u8>, t: f64, pid: i32, stream: Stream) {
        out.extend_from_slice(b"{\"t\":");
        let bits = t.to_bits();
        match &self.last_t {
            Some((last, text)) if *last == bits => out.extend_from_slice(text),
            _ => {
                let start = out.len();
                out.extend_from_slice(json_number(t).as_bytes());
                self.last_t = Some((bits, out[start..].to_vec()));
            }
        }
        out.extend_from_slice(b",\"kind\":\"output\",\"pid\":");
        out.extend_from_slice(itoa::Buffer::new().format(pid).as_bytes());
        out.extend_from_slice(match stream {
            Stream::Stdout => b",\"stream\":\"stdout\",\"line\":",
            Stream::Stderr => b",\"stream\":\"stderr\",\"line\":",
        });
    }
}

/// `t` as serde_json writes it.
fn json_number(t: f64) -> String {
    serde_json::to_string(&t).unwrap_or_else(|_| "0.0".to_string())
}

/// An `output` line after its `line` (and `raw_hex`): `seq`, `partial`, the end.
fn tail(out: &mut Vec<u8>, seq: u64, partial: bool) {
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    if partial {
        out.extend_from_slice(b",\"partial\":true");
    }
    out.extend_from_slice(b"}\n");
}

/// Whether a byte may start something [`string`] escapes: what JSON requires (`"`, `\`,
/// C0) and the first byte of DEL, C1 (`0xc2`) and the bidi overrides (`0xe2`).
fn may_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f || b == 0xc2 || b == 0xe2
}

const ONES: u64 = u64::MAX / 255;
const HIGHS: u64 = ONES * 0x80;

/// Whether some byte of `word` is `value` (may say yes wrongly, never no wrongly).
fn has_byte(word: u64, value: u8) -> bool {
    let x = word ^ (ONES * u64::from(value));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// The first byte of `bytes` for which [`may_escape`] holds: eight bytes at a time, each word
/// tested for a control byte, a byte from DEL up (DEL and every non-ASCII byte), `"` and `\`;
/// only a word that may hold one is looked at byte by byte.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    for (index, chunk) in words.by_ref().enumerate() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let del_or_high = word.wrapping_add(ONES) | word;
        let suspect =
            (control | del_or_high) & HIGHS != 0 || has_byte(word, b'"') || has_byte(word, b'\\');
        if suspect && let Some(i) = chunk.iter().position(|&b| may_escape(b)) {
            return Some(index * 8 + i);
        }
    }
    let tail = bytes.len() - words.remainder().len();
    words
        .remainder()
        .iter()
        .position(|&b| may_escape(b))
        .map(|i| tail + i)
}

/// Whether nothing in `bytes` needs a look (printable ASCII without `"` and `\`): a loop
/// without branches, 64 bytes at a time, that the compiler turns into vector instructions.
fn plain(bytes: &[u8]) -> bool {
    bytes.chunks(64).all(|chunk| {
        !chunk.iter().fold(false, |seen, &b| {
            seen | !(0x20..0x7f).contains(&b) | (b == b'"') | (b == b'\\')
        })
    })
}

/// The character that starts at `at` in valid UTF-8.
fn char_at(bytes: &[u8], at: usize) -> char {
    let len = match bytes[at] {
        b if b < 0x80 => 1,
        b if b >= 0xf0 => 4,
        b if b >= 0xe0 => 3,
        _ => 2,
    };
    bytes
        .get(at..at + len)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// `text` (valid UTF-8) as a JSON string, quoted, escaped as serde_json does plus the
/// terminal controls.
fn string(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.push(b'"');
    if plain(bytes) {
        buf.extend_from_slice(bytes);
        buf.push(b'"');
        return;
    }
    let mut start = 0;
    while let Some(offset) = first_to_escape(&bytes[start..]) {
        let at = start + offset;
        buf.extend_from_slice(&bytes[start..at]);
        // `at` starts a character: every byte tested is ASCII or a UTF-8 lead byte.
        let c = char_at(bytes, at);
        match c {
            '"' => buf.extend_from_slice(b"\\\""),
            '\\' => buf.extend_from_slice(b"\\\\"),
            '\n' => buf.extend_from_slice(b"\\n"),
            '\r' => buf.extend_from_slice(b"\\r"),
            '\t' => buf.extend_from_slice(b"\\t"),
            '\u{8}' => buf.extend_from_slice(b"\\b"),
            '\u{c}' => buf.extend_from_slice(b"\\f"),
            c if printable::is_terminal_control(c) => {
                let _ = write!(buf, "\\u{:04x}", c as u32);
            }
            c => {
                let mut utf8 = [0; 4];
                buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
        start = at + c.len_utf8();
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the printer wrote before: serde_json, then the terminal controls escaped.
    fn reference(event: &Event) -> Vec<u8> {
        let json = serde_json::to_string(event).unwrap();
        let mut line = printable::json(&json).into_owned().into_bytes();
        line.push(b'\n');
        line
    }

    fn output(t: f64, line: &str, raw_hex: Option<&str>, partial: bool) -> Event {
        Event {
            t,
            body: EventBody::Output {
                pid: 4242,
                stream: if partial {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                line: line.into(),
                raw_hex: raw_hex.map(str::to_string),
                seq: 123_456_789,
                partial,
            },
        }
    }

    fn written(writer: &mut JsonLines, event: &Event) -> Vec<u8> {
        let mut out = Vec::new();
        writer.write(&mut out, event).unwrap();
        out
    }

    #[test]
    fn same_bytes_as_serde_and_printable() {
        let mut writer = JsonLines::default();
        let lines = [
            "",
            "plain",
            "quote \" backslash \\ tab \t cr \r bell \x07 esc \x1b[2J nul \0",
            "del \x7f c1 \u{9b}2J é ü \u{a0} bidi \u{202e}txt\u{2069} arrow \u{2192}",
            "\u{1F600} emoji and \u{feff} bom",
        ];
        for (i, line) in lines.iter().enumerate() {
            for partial in [false, true] {
                let event = output(0.5 + i as f64 / 7.0, line, Some("ff00"), partial);
                assert_eq!(written(&mut writer, &event), reference(&event), "{line:?}");
                let event = output(1.0, line, None, partial);
                assert_eq!(written(&mut writer, &event), reference(&event), "{line:?}");
            }
        }
        let other = Event {
            t: 2.0,
            body: EventBody::Notice {
                pid: None,
                level: crate::model::NoticeLevel::Info,
                message: "a\u{9b}b".into(),
            },
        };
        assert_eq!(written(&mut writer, &other), reference(&other));
    }

    #[test]
    fn the_lines_of_a_read_are_written_as_their_output_events() {
        let texts = ["plain", "quote \" é", "", "last piece"];
        let mut lines = OutputLines::of_lines(31, Stream::Stderr, 9, &texts);
        if let Some(last) = lines.spans.last_mut() {
            last.partial = true;
        }
        let mut writer = JsonLines::default();
        let event = Event {
            t: 0.25,
            body: EventBody::OutputLines(lines.clone()),
        };
        let expected: Vec<u8> = lines
            .bodies()
            .flat_map(|body| reference(&Event { t: 0.25, body }))
            .collect();
        assert_eq!(written(&mut writer, &event), expected);
    }

    proptest::proptest! {
        #[test]
        fn plain_is_what_needs_no_escape(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let naive = bytes.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
            proptest::prop_assert_eq!(plain(&bytes), naive);
        }

        #[test]
        fn word_scan_finds_the_first(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let naive = bytes.iter().position(|&b| may_escape(b));
            proptest::prop_assert_eq!(first_to_escape(&bytes), naive);
        }

        #[test]
        fn any_line_any_time(line in "\\PC{0,40}|[\\x00-\\x7f\u{80}-\u{9f}\u{2000}-\u{206f}]{0,40}",
                             t in 0.0f64..1e6, partial: bool) {
            let mut writer = JsonLines::default();
            let event = output(t, &line, None, partial);
            proptest::prop_assert_eq!(written(&mut writer, &event), reference(&event));
            // Twice: the second time `t` comes from the cache.
            proptest::prop_assert_eq!(written(&mut writer, &event), reference(&event));
        }
    }
}
