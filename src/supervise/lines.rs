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

/// Line buffers of at most this capacity come back from the consumer for reuse.
const RECYCLED_CAPACITY: usize = 1024;
/// Buffers waiting for reuse (at most this many, so at most 4 MiB).
const RECYCLED_BUFFERS: usize = 4096;

type Pool = (
    crossbeam_channel::Sender<Vec<u8>>,
    crossbeam_channel::Receiver<Vec<u8>>,
);

/// Line buffers handed back by the consumer once a line is written: an output flood then
/// reuses them instead of allocating each line on the engine thread and freeing it on the
/// consumer's (glibc's slowest path: `docs/PERFORMANCE.md`, "Output").
fn recycled() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| crossbeam_channel::bounded(RECYCLED_BUFFERS))
}

/// Hands a line's buffer back for reuse (small ones only; never waits).
pub fn recycle(mut buffer: Vec<u8>) {
    if buffer.capacity() <= RECYCLED_CAPACITY {
        buffer.clear();
        let _ = recycled().0.try_send(buffer);
    }
}

/// An empty buffer for the next line: a recycled one if any.
fn fresh() -> Vec<u8> {
    recycled().1.try_recv().unwrap_or_default()
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
                    let mut line = std::mem::replace(&mut self.pending, fresh());
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
                            bytes: std::mem::replace(&mut self.pending, fresh()),
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

    #[test]
    fn recycled_buffers_come_back_empty() {
        for _ in 0..64 {
            let mut dirty = Vec::with_capacity(256);
            dirty.extend_from_slice(b"left over from an earlier line");
            recycle(dirty);
        }
        let pieces = split(&[b"one\ntwo\nthree\n"], 64);
        let lines: Vec<&[u8]> = pieces.iter().map(|p| p.bytes.as_slice()).collect();
        assert_eq!(lines, vec![&b"one"[..], b"two", b"three"]);
    }

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
