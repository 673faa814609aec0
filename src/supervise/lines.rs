//! Splits a byte stream into lines without ever holding more than the line limit: a longer
//! line comes out in pieces marked partial. Bytes are kept exactly (invalid UTF-8 included).

/// The longest line kept whole; longer ones are cut into pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;

use bytes::Bytes;

/// One complete line (without its newline) or one piece of an over-long line: a slice of the
/// read it came from when it lies within one read, its own buffer when it spans reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub bytes: Bytes,
    /// More of the same line follows.
    pub partial: bool,
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
    fn piece(&mut self, read: &Bytes, start: usize, end: usize) -> Bytes {
        if self.pending.is_empty() {
            read.slice(start..end)
        } else {
            self.pending.extend_from_slice(&read[start..end]);
            Bytes::from(std::mem::take(&mut self.pending))
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
                    let mut line = self.piece(read, at, at + offset);
                    if line.last() == Some(&b'\r') {
                        line.truncate(line.len() - 1);
                    }
                    self.open_line = false;
                    emit(Piece {
                        bytes: line,
                        partial: false,
                    });
                    at += offset + 1;
                }
                None if end - at == room => {
                    self.open_line = true;
                    let bytes = self.piece(read, at, end);
                    emit(Piece {
                        bytes,
                        partial: true,
                    });
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
            bytes: Bytes::from(std::mem::take(&mut self.pending)),
            partial: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Piece> {
        let mut splitter = LineSplitter::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.feed(&Bytes::copy_from_slice(chunk), &mut |p| out.push(p));
        }
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn a_line_within_one_read_is_a_slice_of_it() {
        let read = Bytes::from_static(b"one\ntwo\r\nthr");
        let mut splitter = LineSplitter::new(64);
        let mut out = Vec::new();
        splitter.feed(&read, &mut |p| out.push(p));
        let texts: Vec<&[u8]> = out.iter().map(|p| &p.bytes[..]).collect();
        assert_eq!(texts, vec![&b"one"[..], b"two"]);
        let range = read.as_ptr_range();
        assert!(out.iter().all(|p| range.contains(&p.bytes.as_ptr())));
        // A line that spans two reads is gathered in a buffer of its own.
        splitter.feed(&Bytes::from_static(b"ee\n"), &mut |p| out.push(p));
        assert_eq!(&out[2].bytes[..], b"three");
        assert!(!range.contains(&out[2].bytes.as_ptr()));
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
