//! Reading files a person names (config, recordings) with a bound that holds for every kind
//! of file: a regular file, a FIFO or `<(...)`, a character device such as `/dev/zero`. Sizes
//! from `stat` mean nothing for the last two, so the bound is on the bytes actually read: a
//! whole file of at most N bytes, or lines of at most N bytes each, streamed.
//!
//! A FIFO whose writer sends nothing and keeps it open blocks the reader, as it blocks `cat`
//! (Ctrl-C ends it); one that sends bytes without a newline ends at the line bound.

use std::io::{self, BufRead, Read};
use std::path::Path;

/// Reads all of `path`, refusing more than `max` bytes (`InvalidData`, "is larger than ...").
pub fn read_at_most(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(io::Error::other("is a directory"));
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("is larger than {}", size_text(max)),
        ));
    }
    Ok(bytes)
}

/// `1 MiB`, `16 MiB`, `512 bytes`.
pub fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("line longer than {} (no newline within it)", size_text(*.max as u64))]
    TooLong { line: usize, max: usize },
}

/// The lines of a reader, each at most `max` bytes (without its newline), with their 1-based
/// numbers. After an error it ends.
pub struct BoundedLines<R> {
    reader: R,
    max: usize,
    line: usize,
    done: bool,
}

impl<R: BufRead> BoundedLines<R> {
    pub fn new(reader: R, max: usize) -> BoundedLines<R> {
        BoundedLines {
            reader,
            max,
            line: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for BoundedLines<R> {
    type Item = Result<(usize, Vec<u8>), LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.line += 1;
        let mut bytes = Vec::new();
        // One byte more than a line may hold, plus its newline.
        let limit = self.max as u64 + 2;
        match (&mut self.reader).take(limit).read_until(b'\n', &mut bytes) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                }
                if bytes.len() > self.max {
                    self.done = true;
                    return Some(Err(LineError::TooLong {
                        line: self.line,
                        max: self.max,
                    }));
                }
                Some(Ok((self.line, bytes)))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err.into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let text = b"one\ntwo\n\nabcdef\nlast";
        let lines: Vec<_> = BoundedLines::new(&text[..], 6)
            .map(|r| r.map(|(n, l)| (n, String::from_utf8(l).unwrap())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            lines,
            [
                (1, "one".into()),
                (2, "two".into()),
                (3, String::new()),
                (4, "abcdef".into()),
                (5, "last".into())
            ]
        );
        let mut long = BoundedLines::new(&b"ok\nabcdefg\nnever"[..], 6);
        assert!(long.next().unwrap().is_ok());
        let err = long.next().unwrap().unwrap_err();
        assert!(
            matches!(err, LineError::TooLong { line: 2, max: 6 }),
            "{err}"
        );
        assert!(long.next().is_none());
    }

    #[test]
    fn endless_files_end_at_the_bound() {
        let err = read_at_most(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
        let zero = std::io::BufReader::new(std::fs::File::open("/dev/zero").unwrap());
        let mut lines = BoundedLines::new(zero, 1 << 16);
        assert!(matches!(
            lines.next(),
            Some(Err(LineError::TooLong { line: 1, .. }))
        ));
        let err = read_at_most(Path::new("/"), 10).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }
}
