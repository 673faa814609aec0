//! `LineText`: the text of one captured line, valid UTF-8 held in shared bytes. Lines read
//! together share one buffer: an output flood costs one allocation per read, not per line,
//! and the event, the control socket's ring and the scrollback keep slices of it.
//! `OutputLines`: the lines of one read as the engine hands them over (one event for a whole
//! read), standing for the `output` events each line is.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Valid UTF-8 in a shared buffer (cloning it shares the buffer).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct LineText(Bytes);

impl LineText {
    /// The bytes as a line, if they are valid UTF-8 (otherwise they come back).
    pub fn from_utf8(bytes: Bytes) -> Result<LineText, Bytes> {
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(LineText(bytes)),
            Err(_) => Err(bytes),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The shared bytes themselves.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The text (validated again: the type never holds anything else, so it never fails).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for LineText {
    fn from(text: String) -> LineText {
        LineText(Bytes::from(text))
    }
}

impl From<&str> for LineText {
    fn from(text: &str) -> LineText {
        LineText(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl std::ops::Deref for LineText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for LineText {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for LineText {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl fmt::Debug for LineText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for LineText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LineText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LineText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LineText, D::Error> {
        String::deserialize(deserializer).map(LineText::from)
    }
}

/// Where one line lies in its read (without its newline), and whether more of the same line
/// follows (a piece of a line longer than the line limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineSpan {
    pub start: u32,
    pub end: u32,
    pub partial: bool,
}

/// The lines of one read of one pipe that lie within the read, all valid UTF-8: one event in
/// the engine's channel for what is printed, recorded and shown as one `output` event per
/// line ([`OutputLines::bodies`]), `seq` counting on from `first_seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputLines {
    pub pid: i32,
    pub stream: super::Stream,
    pub first_seq: u64,
    pub read: Bytes,
    pub spans: Vec<LineSpan>,
}

impl OutputLines {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The text of the line at `span` (a slice of the read).
    pub fn text(&self, span: &LineSpan) -> LineText {
        LineText(self.read.slice(span.start as usize..span.end as usize))
    }

    /// The bytes of the line at `span`.
    pub fn bytes(&self, span: &LineSpan) -> &[u8] {
        self.read
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    /// Bytes of text in all (what the lines weigh in the flow control).
    pub fn text_len(&self) -> usize {
        self.spans.iter().map(|s| (s.end - s.start) as usize).sum()
    }

    /// The `output` event body of each line, in order.
    pub fn bodies(&self) -> impl Iterator<Item = super::EventBody> + '_ {
        self.spans
            .iter()
            .zip(self.first_seq..)
            .map(|(span, seq)| super::EventBody::Output {
                pid: self.pid,
                stream: self.stream,
                line: self.text(span),
                raw_hex: None,
                seq,
                partial: span.partial,
            })
    }
}

#[cfg(test)]
impl OutputLines {
    /// One read holding `lines`, each followed by a newline (tests build reads with it).
    pub fn of_lines(pid: i32, stream: super::Stream, first_seq: u64, lines: &[&str]) -> Self {
        let mut read = String::new();
        let mut spans = Vec::new();
        for line in lines {
            let start = read.len() as u32;
            read.push_str(line);
            spans.push(LineSpan {
                start,
                end: read.len() as u32,
                partial: false,
            });
            read.push('\n');
        }
        OutputLines {
            pid,
            stream,
            first_seq,
            read: Bytes::from(read),
            spans,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_utf8_becomes_text() {
        let read = Bytes::from_static(b"ok\n\xff\xfe\n");
        let ok = LineText::from_utf8(read.slice(0..2)).unwrap();
        assert_eq!(ok, "ok");
        assert_eq!(ok.as_str(), "ok");
        assert!(LineText::from_utf8(read.slice(3..5)).is_err());
    }

    #[test]
    fn serialises_as_a_json_string() {
        let text = LineText::from("a \"quoted\" é");
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(json, r#""a \"quoted\" é""#);
        let back: LineText = serde_json::from_str(&json).unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn output_lines_stand_for_one_output_event_each() {
        let read = Bytes::from_static(b"ab\ncd\r\nef");
        let span = |start, end, partial| LineSpan {
            start,
            end,
            partial,
        };
        let lines = OutputLines {
            pid: 7,
            stream: super::super::Stream::Stderr,
            first_seq: 41,
            read,
            spans: vec![span(0, 2, false), span(3, 5, false), span(7, 9, true)],
        };
        assert_eq!(lines.text_len(), 6);
        let bodies: Vec<_> = lines.bodies().collect();
        let expected: Vec<_> = [("ab", 41, false), ("cd", 42, false), ("ef", 43, true)]
            .into_iter()
            .map(|(text, seq, partial)| super::super::EventBody::Output {
                pid: 7,
                stream: super::super::Stream::Stderr,
                line: text.into(),
                raw_hex: None,
                seq,
                partial,
            })
            .collect();
        assert_eq!(bodies, expected);
    }
}
