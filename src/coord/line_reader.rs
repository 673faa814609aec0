//! Reading one bounded request line from a client: a longer line is consumed, not kept.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::protocol::MAX_LINE;

/// One line read by [`next_line`].
pub(super) enum Line {
    Complete(Vec<u8>),
    TooLong,
}

/// Reads one line of at most `MAX_LINE` bytes; a longer one is consumed without keeping
/// it. `None` at the end of the stream (a partial last line is dropped).
pub(super) async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(None);
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        if !too_long {
            if line.len() + take > MAX_LINE {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&buf[..take]);
            }
        }
        reader.consume(take + usize::from(done));
        if done {
            return Ok(Some(if too_long {
                Line::TooLong
            } else {
                Line::Complete(line)
            }));
        }
    }
}
