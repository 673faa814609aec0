//! Output capture: the read ends of every worker's stdout and stderr pipes, registered with
//! the engine's poller, split into lines and sent as `output` events in order.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};

use bytes::Bytes;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::channel::EventTx;
use super::lines::{LineSplitter, Place};
use crate::inspect::shm::decode::hex::hex_string;
use crate::model::lesson::STEP_PREFIX;
use crate::model::{Event, EventBody, LineSpan, LineText, OutputLines, Stream};

/// Bytes read from one pipe per visit before the loop moves on (fairness between pipes).
const VISIT_BUDGET: usize = 256 * 1024;

struct Capture {
    pid: i32,
    stream: Stream,
    file: std::fs::File,
    splitter: LineSplitter,
    seq: u64,
    /// A pty master: stdout and stderr together; resized with the output pane.
    pty: bool,
    /// The pipe's inode (what `/proc/PID/fd/N` of its writers links to as `pipe:[inode]`).
    inode: u64,
}

/// Lesson steps found among the stdout lines (`model::lesson`).
#[derive(Debug, Default)]
pub struct StepLines {
    /// Steps announced this session.
    count: u32,
    /// Whether the engine holds the programs at each step.
    pub held: bool,
    /// (pid, n) of the held steps announced since the engine last looked.
    announced: Vec<(i32, u32)>,
}

/// Every open capture pipe, by poll token.
pub struct Captures {
    pipes: HashMap<Token, Capture>,
    pub steps: StepLines,
    /// Pipes that may have unread bytes (readiness is edge-triggered).
    hot: HashSet<Token>,
    next_token: usize,
    buffer: Vec<u8>,
}

/// Tokens below this are reserved for the engine's own sources.
pub const FIRST_PIPE_TOKEN: usize = 16;

impl Default for Captures {
    fn default() -> Self {
        Captures::new()
    }
}

impl Captures {
    pub fn new() -> Captures {
        Captures {
            pipes: HashMap::new(),
            steps: StepLines::default(),
            hot: HashSet::new(),
            next_token: FIRST_PIPE_TOKEN,
            buffer: vec![0; 64 * 1024],
        }
    }

    /// Registers a pipe's read end for `pid`'s `stream`.
    pub fn add(
        &mut self,
        registry: &Registry,
        pid: i32,
        stream: Stream,
        fd: OwnedFd,
    ) -> io::Result<()> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        let inode = rustix::fs::fstat(&fd)?.st_ino;
        let token = Token(self.next_token);
        self.next_token += 1;
        registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
        self.pipes.insert(
            token,
            Capture {
                pid,
                stream,
                file: std::fs::File::from(fd),
                splitter: LineSplitter::default(),
                seq: 0,
                pty: false,
                inode,
            },
        );
        self.hot.insert(token);
        Ok(())
    }

    /// The steps announced since the last call, in order.
    pub fn take_announced(&mut self) -> Vec<(i32, u32)> {
        std::mem::take(&mut self.steps.announced)
    }

    /// Registers a pty's master side for `pid` (reported as `stdout`: a pty has one stream).
    pub fn add_pty(&mut self, registry: &Registry, pid: i32, fd: OwnedFd) -> io::Result<()> {
        self.add(registry, pid, Stream::Stdout, fd)?;
        if let Some(capture) = self.pipes.get_mut(&Token(self.next_token - 1)) {
            capture.pty = true;
        }
        Ok(())
    }

    /// Gives every pty the new size (the kernel tells the programs that ask).
    pub fn resize_ptys(&self, cols: u16, rows: u16) {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        for capture in self.pipes.values().filter(|c| c.pty) {
            if let Err(err) = rustix::termios::tcsetwinsize(&capture.file, size) {
                tracing::debug!(pid = capture.pid, "cannot resize a pty: {err}");
            }
        }
    }

    /// The process whose capture pipe has this inode (never a pty).
    pub fn owner_of_pipe(&self, inode: u64) -> Option<i32> {
        self.pipes
            .values()
            .find(|c| !c.pty && c.inode == inode)
            .map(|c| c.pid)
    }

    /// Notes that a pipe became readable.
    pub fn mark_ready(&mut self, token: Token) -> bool {
        if self.pipes.contains_key(&token) {
            self.hot.insert(token);
            true
        } else {
            false
        }
    }

    /// Whether some pipe still has bytes waiting.
    pub fn has_hot(&self) -> bool {
        !self.hot.is_empty()
    }

    /// Reads every hot pipe once, up to the visit budget each.
    pub fn service(&mut self, registry: &Registry, events: &EventTx) {
        let tokens: Vec<Token> = self.hot.iter().copied().collect();
        for token in tokens {
            self.read(registry, token, VISIT_BUDGET, events);
        }
    }

    /// Reads everything already written by `pid` (called before reporting its exit, so its
    /// last lines come before the exit event).
    pub fn drain_pid(&mut self, registry: &Registry, pid: i32, events: &EventTx) {
        let tokens: Vec<Token> = self
            .pipes
            .iter()
            .filter(|(_, c)| c.pid == pid)
            .map(|(t, _)| *t)
            .collect();
        for token in tokens {
            self.drain(registry, token, events);
        }
    }

    /// Reads everything already written to every pipe, whether or not its readiness has been
    /// seen yet: a descendant writes into its worker's pipes, so when it is reaped (or the
    /// session ends) its last lines must be read before anything else is reported.
    pub fn drain_all(&mut self, registry: &Registry, events: &EventTx) {
        let tokens: Vec<Token> = self.pipes.keys().copied().collect();
        for token in tokens {
            self.drain(registry, token, events);
        }
    }

    /// Reads what the pipe holds now (and its end, if every writer is gone), never more than
    /// that plus one buffer: a writer still alive (an orphan sharing its dead worker's pipe)
    /// cannot keep a drain going, so a drain costs at most a pipe's capacity.
    fn drain(&mut self, registry: &Registry, token: Token, events: &EventTx) {
        let Some(capture) = self.pipes.get(&token) else {
            self.hot.remove(&token);
            return;
        };
        let written = rustix::io::ioctl_fionread(&capture.file).map_or(0, |n| n as usize);
        // One read past what is written: it sees the end of a pipe whose writers are gone.
        self.read(registry, token, written + 1, events);
    }

    fn read(&mut self, registry: &Registry, token: Token, budget: usize, events: &EventTx) {
        let Some(capture) = self.pipes.get_mut(&token) else {
            self.hot.remove(&token);
            return;
        };
        let mut taken = 0;
        loop {
            if taken >= budget {
                self.hot.insert(token);
                return;
            }
            let result = match capture.file.read(&mut self.buffer) {
                // A pty master whose slave side every process has closed: end of file.
                Err(e) if capture.pty && e.raw_os_error() == Some(libc::EIO) => Ok(0),
                other => other,
            };
            match result {
                Ok(0) => {
                    if let Some(piece) = capture.splitter.finish() {
                        let partial = piece.partial;
                        let bytes = piece.into_bytes(&Bytes::new());
                        let body = body_of(capture, bytes, partial, &mut self.steps);
                        events.emit(body);
                    }
                    let _ = registry.deregister(&mut SourceFd(&capture.file.as_raw_fd()));
                    self.pipes.remove(&token);
                    self.hot.remove(&token);
                    return;
                }
                Ok(n) => {
                    taken += n;
                    // The lines of this read share one buffer of exactly its size.
                    let read = Bytes::copy_from_slice(&self.buffer[..n]);
                    let t = events.stamp();
                    let mut splitter = std::mem::take(&mut capture.splitter);
                    let mut batch = Vec::new();
                    let mut lines = ReadLines::default();
                    splitter.feed(&read, &mut |piece| match piece.place {
                        Place::Within(within)
                            if !maybe_step(capture.stream, &read[within.clone()]) =>
                        {
                            capture.seq += 1;
                            lines.add(within, piece.partial, capture.seq);
                        }
                        _ => {
                            lines.flush(capture, &read, t, &mut batch);
                            let partial = piece.partial;
                            let bytes = piece.into_bytes(&read);
                            let body = body_of(capture, bytes, partial, &mut self.steps);
                            batch.push(Event { t, body });
                        }
                    });
                    lines.flush(capture, &read, t, &mut batch);
                    capture.splitter = splitter;
                    events.emit_all(batch);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.hot.remove(&token);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(pid = capture.pid, "reading output failed: {e}");
                    let _ = registry.deregister(&mut SourceFd(&capture.file.as_raw_fd()));
                    self.pipes.remove(&token);
                    self.hot.remove(&token);
                    return;
                }
            }
        }
    }
}

/// Whether a whole line may be a lesson step line (`model::lesson`).
fn maybe_step(stream: Stream, line: &[u8]) -> bool {
    stream == Stream::Stdout && line.starts_with(STEP_PREFIX.as_bytes())
}

/// The lines of one read that lie within it, gathered to go out as one `OutputLines` event.
#[derive(Default)]
struct ReadLines {
    spans: Vec<LineSpan>,
    first_seq: u64,
}

impl ReadLines {
    fn add(&mut self, within: std::ops::Range<usize>, partial: bool, seq: u64) {
        if self.spans.is_empty() {
            self.first_seq = seq;
        }
        // A read is at most the capture buffer (64 KiB): its offsets fit in u32.
        self.spans.push(LineSpan {
            start: within.start as u32,
            end: within.end as u32,
            partial,
        });
    }

    /// Sends what is gathered: one `OutputLines` if it is all valid UTF-8 (checked once for
    /// the whole stretch), else one `output` event per line, with `raw_hex` where needed.
    fn flush(&mut self, capture: &Capture, read: &Bytes, t: f64, batch: &mut Vec<Event>) {
        let (Some(first), Some(last)) = (self.spans.first(), self.spans.last()) else {
            return;
        };
        let stretch = &read[first.start as usize..last.end as usize];
        let spans = std::mem::take(&mut self.spans);
        if std::str::from_utf8(stretch).is_ok() {
            batch.push(Event {
                t,
                body: EventBody::OutputLines(OutputLines {
                    pid: capture.pid,
                    stream: capture.stream,
                    first_seq: self.first_seq,
                    read: read.clone(),
                    spans,
                }),
            });
            return;
        }
        for (span, seq) in spans.iter().zip(self.first_seq..) {
            let bytes = read.slice(span.start as usize..span.end as usize);
            let body = output_body(capture, bytes, seq, span.partial);
            batch.push(Event { t, body });
        }
    }
}

/// The event of one line or piece: a lesson step, or output.
fn body_of(capture: &mut Capture, bytes: Bytes, partial: bool, steps: &mut StepLines) -> EventBody {
    if !partial
        && maybe_step(capture.stream, &bytes)
        && let Some(words) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(crate::model::lesson::parse_step_line)
    {
        steps.count += 1;
        let held = steps.held && words.hold;
        if held {
            steps.announced.push((capture.pid, steps.count));
        }
        return EventBody::Step {
            pid: capture.pid,
            n: steps.count,
            title: words.title,
            text: words.text,
            question: words.question,
            held,
        };
    }
    capture.seq += 1;
    output_body(capture, bytes, capture.seq, partial)
}

/// One `output` event: the text, and the exact bytes in hex when they are not valid UTF-8.
fn output_body(capture: &Capture, bytes: Bytes, seq: u64, partial: bool) -> EventBody {
    let (line, raw_hex) = match LineText::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(bytes) => (
            LineText::from(String::from_utf8_lossy(&bytes).into_owned()),
            Some(hex_string(&bytes)),
        ),
    };
    EventBody::Output {
        pid: capture.pid,
        stream: capture.stream,
        line,
        raw_hex,
        seq,
        partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::channel::channels;
    use std::sync::Arc;

    /// What a real pipe carrying `data` (then closed) becomes: the batches sent.
    fn captured(data: &[u8]) -> Vec<Vec<Event>> {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), Token(0)).unwrap());
        let (tx, rx, _actions, _action_rx) = channels(waker, std::time::Instant::now());
        let (read_end, write_end) = rustix::pipe::pipe().unwrap();
        let mut captures = Captures::new();
        captures
            .add(poll.registry(), 42, Stream::Stdout, read_end)
            .unwrap();
        assert_eq!(rustix::io::write(&write_end, data).unwrap(), data.len());
        drop(write_end);
        captures.drain_all(poll.registry(), &tx);
        let mut batches = Vec::new();
        while let Ok(batch) = rx.raw().try_recv() {
            rx.ack(&batch);
            batches.push(batch.events);
        }
        batches
    }

    fn lines(batches: &[Vec<Event>]) -> Vec<(String, Option<String>, u64)> {
        let mut out = Vec::new();
        for event in batches.iter().flatten() {
            let bodies: Vec<EventBody> = match &event.body {
                EventBody::OutputLines(lines) => lines.bodies().collect(),
                body => vec![body.clone()],
            };
            for body in bodies {
                if let EventBody::Output {
                    line, raw_hex, seq, ..
                } = body
                {
                    out.push((line.to_string(), raw_hex, seq));
                }
            }
        }
        out
    }

    #[test]
    fn the_lines_of_a_read_travel_as_one_event() {
        let batches = captured(b"one\ntwo\r\nthree\nend");
        assert_eq!(batches.len(), 2, "{batches:?}");
        assert!(
            matches!(&batches[0][..], [Event { body: EventBody::OutputLines(l), .. }] if l.len() == 3)
        );
        let expected = [("one", 1), ("two", 2), ("three", 3), ("end", 4)]
            .map(|(text, seq)| (text.to_string(), None, seq));
        assert_eq!(lines(&batches), expected);
    }

    #[test]
    fn a_read_with_invalid_utf8_goes_line_by_line_with_raw_hex() {
        let batches = captured(b"ok\nbad \xff\nok too\n");
        assert!(
            batches[0]
                .iter()
                .all(|e| matches!(e.body, EventBody::Output { .. })),
            "{batches:?}"
        );
        assert_eq!(
            lines(&batches),
            vec![
                ("ok".to_string(), None, 1),
                (
                    "bad \u{fffd}".to_string(),
                    Some("62616420ff".to_string()),
                    2
                ),
                ("ok too".to_string(), None, 3),
            ]
        );
    }
}
