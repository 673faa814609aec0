//! `LineText`: the text of one captured line, valid UTF-8 held in shared bytes. Lines read
//! together share one buffer: an output flood costs one allocation per read, not per line,
//! and the event, the control socket's ring and the scrollback keep slices of it.

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

    /// A copy in a buffer of its own, so a line kept long does not keep its whole read alive.
    pub fn detached(&self) -> LineText {
        LineText(Bytes::copy_from_slice(&self.0))
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
    fn a_detached_copy_is_equal_and_owns_its_bytes() {
        let read = Bytes::from(vec![b'x'; 4096]);
        let line = LineText::from_utf8(read.slice(0..3)).unwrap();
        let kept = line.detached();
        assert_eq!(kept, line);
        drop(read);
        drop(line);
        assert_eq!(kept.as_str(), "xxx");
    }
}
