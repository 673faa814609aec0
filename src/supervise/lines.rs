//! Splits a byte stream into lines without ever holding more than the line limit: a longer
//! line comes out in pieces marked partial. Bytes are kept exactly (invalid UTF-8 included).

/// The longest line kept whole; longer ones are cut into pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;

/// One complete line (without its newline) or one piece of an over-long line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub bytes: Vec<u8>,
    /// More of the same line follows.
    pub partial: bool,
}

/// Incremental line splitter for one stream.
#[derive(Debug)]
pub struct LineSplitter {
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

    /// Feeds bytes; calls `emit` for each finished line or piece.
    pub fn feed(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(Piece)) {
        while !bytes.is_empty() {
            let room = self.max_line - self.pending.len();
            let window = &bytes[..bytes.len().min(room)];
            match memchr::memchr(b'\n', window) {
                Some(at) => {
                    self.pending.extend_from_slice(&window[..at]);
                    let mut line = std::mem::take(&mut self.pending);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.open_line = false;
                    emit(Piece {
                        bytes: line,
                        partial: false,
                    });
                    bytes = &bytes[at + 1..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    if self.pending.len() == self.max_line {
                        self.open_line = true;
                        emit(Piece {
                            bytes: std::mem::take(&mut self.pending),
                            partial: true,
                        });
                    }
                }
            }
        }
    }

    /// At end of stream: the last line if it had no newline.
    pub fn finish(&mut self) -> Option<Piece> {
        let open = std::mem::take(&mut self.open_line);
        (open || !self.pending.is_empty()).then(|| Piece {
            bytes: std::mem::take(&mut self.pending),
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
            splitter.feed(chunk, &mut |p| out.push(p));
        }
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn lines_across_chunks() {
        let pieces = split(&[b"ab", b"c\nde\r\n", b"f"], 100);
        let texts: Vec<&[u8]> = pieces.iter().map(|p| p.bytes.as_slice()).collect();
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
