//! Splits a byte stream into lines without ever holding more than the line limit: a longer
//! line comes out in pieces marked partial. Bytes are kept exactly (invalid UTF-8 included).
//! A line that lies within one read is only a range of it (nothing copied or counted); one
//! that spans reads is gathered into a buffer of its own.

/// The longest line kept whole; longer ones are cut into pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;

use bytes::Bytes;

/// One complete line (without its newline) or one piece of an over-long line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub place: Place,
    /// More of the same line follows.
    pub partial: bool,
}

/// Where a piece's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// This range of the read fed when the piece came out.
    Within(std::ops::Range<usize>),
    /// A buffer of its own (the piece spans reads).
    Gathered(Bytes),
}

impl Piece {
    /// Its bytes; `read` is the read fed when it came out.
    pub fn bytes<'a>(&'a self, read: &'a [u8]) -> &'a [u8] {
        match &self.place {
            Place::Within(range) => read.get(range.clone()).unwrap_or_default(),
            Place::Gathered(bytes) => bytes,
        }
    }

    /// Its bytes as a buffer of their own or a slice of `read`.
    pub fn into_bytes(self, read: &Bytes) -> Bytes {
        match self.place {
            Place::Within(range) => read.slice(range),
            Place::Gathered(bytes) => bytes,
        }
    }
}

/// Incremental line splitter for one stream.
#[derive(Debug)]
pub struct LineSplitter {
    /// The start of a line whose end has not been read yet.
    pending: Vec<u8>,
    max_line: usize,
    /// The last piece out was partial: the line is still open even if `pending` is empty.
    open_line: bool,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(MAX_LINE)
    }
}

impl LineSplitter {
    pub fn new(max_line: usize) -> LineSplitter {
        LineSplitter {
            pending: Vec::new(),
            max_line: max_line.max(1),
            open_line: false,
        }
    }

    /// The piece `read[start..end]`, after whatever is pending: a slice of `read` when
    /// nothing is.
    fn piece(&mut self, read: &Bytes, start: usize, end: usize, partial: bool) -> Piece {
        if self.pending.is_empty() {
            let end = if !partial && end > start && read[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            Piece {
                place: Place::Within(start..end),
                partial,
            }
        } else {
            self.pending.extend_from_slice(&read[start..end]);
            if !partial && self.pending.last() == Some(&b'\r') {
                self.pending.pop();
            }
            Piece {
                place: Place::Gathered(Bytes::from(std::mem::take(&mut self.pending))),
                partial,
            }
        }
    }

    /// Feeds one read; calls `emit` for each finished line or piece.
    pub fn feed(&mut self, read: &Bytes, emit: &mut impl FnMut(Piece)) {
        let mut at = 0;
        while at < read.len() {
            let room = self.max_line - self.pending.len();
            let end = read.len().min(at + room);
            match memchr::memchr(b'\n', &read[at..end]) {
                Some(offset) => {
                    self.open_line = false;
                    emit(self.piece(read, at, at + offset, false));
                    at += offset + 1;
                }
                None if end - at == room => {
                    self.open_line = true;
                    emit(self.piece(read, at, end, true));
                    at = end;
                }
                None => {
                    self.pending.extend_from_slice(&read[at..end]);
                    at = end;
                }
            }
        }
    }

    /// At end of stream: the last line if it had no newline.
    pub fn finish(&mut self) -> Option<Piece> {
        let open = std::mem::take(&mut self.open_line);
        (open || !self.pending.is_empty()).then(|| Piece {
            place: Place::Gathered(Bytes::from(std::mem::take(&mut self.pending))),
            partial: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A piece as the tests look at it: its bytes, partial, and its range if within its read.
    struct Got {
        bytes: Vec<u8>,
        partial: bool,
        within: Option<std::ops::Range<usize>>,
    }

    fn got(piece: Piece, read: &[u8]) -> Got {
        Got {
            bytes: piece.bytes(read).to_vec(),
            partial: piece.partial,
            within: match piece.place {
                Place::Within(range) => Some(range),
                Place::Gathered(_) => None,
            },
        }
    }

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Got> {
        let mut splitter = LineSplitter::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let read = Bytes::copy_from_slice(chunk);
            splitter.feed(&read, &mut |p| out.push(got(p, &read)));
        }
        out.extend(splitter.finish().map(|p| got(p, &[])));
        out
    }

    #[test]
    fn a_line_within_one_read_is_a_range_of_it() {
        let pieces = split(&[b"one\ntwo\r\nthr", b"ee\n"], 64);
        let texts: Vec<&[u8]> = pieces.iter().map(|p| &p.bytes[..]).collect();
        assert_eq!(texts, vec![&b"one"[..], b"two", b"three"]);
        assert_eq!(pieces[0].within, Some(0..3));
        assert_eq!(pieces[1].within, Some(4..7));
        // A line that spans two reads is gathered in a buffer of its own.
        assert_eq!(pieces[2].within, None);
        let read = Bytes::from_static(b"ab\n");
        let mut splitter = LineSplitter::new(64);
        let mut slices = Vec::new();
        splitter.feed(&read, &mut |p| slices.push(p.into_bytes(&read)));
        assert!(read.as_ptr_range().contains(&slices[0].as_ptr()));
    }

    #[test]
    fn lines_across_chunks() {
        let pieces = split(&[b"ab", b"c\nde\r\n", b"f"], 100);
        let texts: Vec<&[u8]> = pieces.iter().map(|p| &p.bytes[..]).collect();
        assert_eq!(texts, vec![&b"abc"[..], b"de", b"f"]);
    }

    #[test]
    fn long_lines_come_in_pieces() {
        let pieces = split(&[b"abcdefg\nxy\n"], 3);
        let got: Vec<(String, bool)> = pieces
            .iter()
            .map(|p| (String::from_utf8_lossy(&p.bytes).into_owned(), p.partial))
            .collect();
        assert_eq!(
            got,
            vec![
                ("abc".into(), true),
                ("def".into(), true),
                ("g".into(), false),
                ("xy".into(), false)
            ]
        );
    }

    proptest! {
        #[test]
        fn no_byte_lost(data in proptest::collection::vec(any::<u8>(), 0..2000),
                        cut in 1usize..50, max in 1usize..40) {
            let chunks: Vec<&[u8]> = data.chunks(cut).collect();
            let pieces = split(&chunks, max);
            let mut rebuilt = Vec::new();
            for piece in &pieces {
                prop_assert!(piece.bytes.len() <= max);
                rebuilt.extend_from_slice(&piece.bytes);
                if !piece.partial { rebuilt.push(b'\n'); }
            }
            let mut expected: Vec<u8> = data.clone();
            if !expected.is_empty() && expected.last() != Some(&b'\n') { expected.push(b'\n'); }
            // \r before \n is dropped by design.
            let expected = String::from_utf8_lossy(&expected).replace("\r\n", "\n");
            let rebuilt = String::from_utf8_lossy(&rebuilt).into_owned();
            // A piece boundary can fall between \r and \n; compare without such \r.
            prop_assert_eq!(rebuilt.replace('\r', ""), expected.replace('\r', ""));
        }
    }
}
