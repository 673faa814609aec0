//! One process's captured output: a ring of lines bounded in count and bytes, with counters
//! that make any loss visible.

use std::collections::VecDeque;

use super::LineText;
use super::event::Stream;

/// One captured line (or a piece of a line longer than the line limit).
#[derive(Clone, Debug, PartialEq)]
pub struct OutputLine {
    pub stream: Stream,
    pub text: LineText,
    pub seq: u64,
    pub partial: bool,
    /// Seconds since forkscope started.
    pub t: f64,
}

/// Default number of lines kept per process.
pub const DEFAULT_LINES: usize = 10_000;
/// Bytes kept per process, whatever the line count, so a flood of long lines stays bounded.
pub const DEFAULT_BYTES: usize = 32 * 1024 * 1024;

/// The scrollback of one process.
#[derive(Clone, Debug)]
pub struct OutputLog {
    lines: VecDeque<OutputLine>,
    max_lines: usize,
    max_bytes: usize,
    bytes: usize,
    /// Lines received in all.
    pub received: u64,
    /// Lines pushed out of the ring to respect its bounds.
    pub evicted: u64,
}

impl Default for OutputLog {
    fn default() -> Self {
        OutputLog::with_capacity(DEFAULT_LINES, DEFAULT_BYTES)
    }
}

impl OutputLog {
    pub fn with_capacity(max_lines: usize, max_bytes: usize) -> OutputLog {
        OutputLog {
            lines: VecDeque::new(),
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
            bytes: 0,
            received: 0,
            evicted: 0,
        }
    }

    pub fn push(&mut self, line: OutputLine) {
        self.received += 1;
        self.bytes += line.text.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines
            || (self.bytes > self.max_bytes && self.lines.len() > 1)
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.text.len();
                self.evicted += 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn lines(&self) -> &VecDeque<OutputLine> {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, text: &str) -> OutputLine {
        OutputLine {
            stream: Stream::Stdout,
            text: text.into(),
            seq,
            partial: false,
            t: 0.0,
        }
    }

    #[test]
    fn bounded_by_lines_and_counts_evictions() {
        let mut log = OutputLog::with_capacity(3, 1 << 20);
        for seq in 1..=5 {
            log.push(line(seq, "x"));
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.received, 5);
        assert_eq!(log.evicted, 2);
        assert_eq!(log.lines().front().map(|l| l.seq), Some(3));
    }

    #[test]
    fn bounded_by_bytes_but_keeps_the_newest_line() {
        let mut log = OutputLog::with_capacity(100, 10);
        log.push(line(1, "abcdef"));
        log.push(line(2, "ghijkl"));
        assert_eq!(log.len(), 1);
        log.push(line(3, &"z".repeat(50)));
        assert_eq!(log.len(), 1);
        assert_eq!(log.lines()[0].seq, 3);
    }
}
