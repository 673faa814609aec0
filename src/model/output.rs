//! One process's captured output: a ring of lines bounded in count and bytes, with counters
//! that make any loss visible. Lines are kept as they came, a read's lines as one entry that
//! shares the read's buffer, so a flood costs the scrollback one entry per read, not per line.

use std::collections::VecDeque;

use super::event::Stream;
use super::{LineSpan, LineText, OutputLines};

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

/// Lines that came together: one line, or the lines of one read (from `first` on).
#[derive(Clone, Debug)]
struct Chunk {
    t: f64,
    lines: OutputLines,
    /// The first line still kept.
    first: usize,
}

impl Chunk {
    fn kept(&self) -> usize {
        self.lines.spans.len() - self.first
    }

    fn line(&self, index: usize) -> Option<OutputLine> {
        let span = self.lines.spans.get(self.first + index)?;
        Some(OutputLine {
            stream: self.lines.stream,
            text: self.lines.text(span),
            seq: self.lines.first_seq + (self.first + index) as u64,
            partial: span.partial,
            t: self.t,
        })
    }
}

fn span_len(span: &LineSpan) -> usize {
    (span.end - span.start) as usize
}

/// The scrollback of one process.
#[derive(Clone, Debug)]
pub struct OutputLog {
    chunks: VecDeque<Chunk>,
    /// Lines kept.
    len: usize,
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
            chunks: VecDeque::new(),
            len: 0,
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
            bytes: 0,
            received: 0,
            evicted: 0,
        }
    }

    /// Keeps one line (as a chunk of one; the scrollback has no use for its pid).
    pub fn push(&mut self, line: OutputLine) {
        let end = line.text.len() as u32;
        let lines = OutputLines {
            pid: 0,
            stream: line.stream,
            first_seq: line.seq,
            read: line.text.into_bytes(),
            spans: vec![LineSpan {
                start: 0,
                end,
                partial: line.partial,
            }],
        };
        self.push_lines(line.t, lines);
    }

    /// Keeps the lines of one read, which share its buffer.
    pub fn push_lines(&mut self, t: f64, lines: OutputLines) {
        if lines.is_empty() {
            return;
        }
        self.received += lines.len() as u64;
        self.len += lines.len();
        self.bytes += lines.text_len();
        self.chunks.push_back(Chunk { t, lines, first: 0 });
        self.trim();
    }

    /// Drops the oldest lines until both bounds hold, always keeping the newest line.
    fn trim(&mut self) {
        while self.len > self.max_lines || (self.bytes > self.max_bytes && self.len > 1) {
            // With more than one chunk the newest line is not in the oldest.
            let many = self.chunks.len() > 1;
            let Some(oldest) = self.chunks.front_mut() else {
                break;
            };
            let rest = &oldest.lines.spans[oldest.first..];
            let rest_bytes: usize = rest.iter().map(span_len).sum();
            // The whole chunk goes at once when a bound needs at least that much gone.
            let by_lines = self.len > self.max_lines && self.len - rest.len() >= self.max_lines;
            let by_bytes = self.bytes > self.max_bytes && self.bytes - rest_bytes >= self.max_bytes;
            if many && (by_lines || by_bytes) {
                self.len -= rest.len();
                self.bytes -= rest_bytes;
                self.evicted += rest.len() as u64;
                self.chunks.pop_front();
                continue;
            }
            // Only part of it: line by line, until both bounds hold.
            while oldest.kept() > 0
                && (self.len > self.max_lines || (self.bytes > self.max_bytes && self.len > 1))
            {
                let span = oldest.lines.spans[oldest.first];
                oldest.first += 1;
                self.len -= 1;
                self.bytes -= span_len(&span);
                self.evicted += 1;
            }
            if oldest.kept() == 0 {
                self.chunks.pop_front();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The line at `index`, 0 being the oldest kept.
    pub fn line(&self, index: usize) -> Option<OutputLine> {
        self.range(index..index + 1).next()
    }

    /// The lines kept in `range` (0 being the oldest), in order.
    pub fn range(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = OutputLine> + '_ {
        let wanted = range.end.min(self.len).saturating_sub(range.start);
        // The chunk holding `range.start`, counted from the newest end when that is nearer
        // (what the view shows is the tail).
        let mut skip = range.start;
        let mut chunk = 0;
        if range.start >= self.len / 2 {
            let mut after = self.len;
            chunk = self.chunks.len();
            while chunk > 0 && after > range.start {
                chunk -= 1;
                after -= self.chunks[chunk].kept();
            }
            skip = range.start - after;
        } else {
            while chunk < self.chunks.len() && skip >= self.chunks[chunk].kept() {
                skip -= self.chunks[chunk].kept();
                chunk += 1;
            }
        }
        self.chunks
            .range(chunk..)
            .flat_map(|c| (0..c.kept()).filter_map(move |i| c.line(i)))
            .skip(skip)
            .take(wanted)
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

    /// One read of `n` lines "line N", numbered from `first_seq`.
    fn read(first_seq: u64, n: usize) -> OutputLines {
        let texts: Vec<String> = (first_seq..first_seq + n as u64)
            .map(|seq| format!("line {seq}"))
            .collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        OutputLines::of_lines(1, Stream::Stderr, first_seq, &texts)
    }

    fn seqs(log: &OutputLog) -> Vec<u64> {
        log.range(0..log.len()).map(|l| l.seq).collect()
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
        assert_eq!(log.line(0).map(|l| l.seq), Some(3));
    }

    #[test]
    fn bounded_by_bytes_but_keeps_the_newest_line() {
        let mut log = OutputLog::with_capacity(100, 10);
        log.push(line(1, "abcdef"));
        log.push(line(2, "ghijkl"));
        assert_eq!(log.len(), 1);
        log.push(line(3, &"z".repeat(50)));
        assert_eq!(log.len(), 1);
        assert_eq!(log.line(0).map(|l| l.seq), Some(3));
    }

    #[test]
    fn reads_are_kept_whole_and_evicted_line_by_line() {
        let mut log = OutputLog::with_capacity(25, 1 << 20);
        log.push_lines(0.5, read(1, 10));
        log.push(line(11, "alone"));
        log.push_lines(1.0, read(12, 20));
        assert_eq!(log.len(), 25);
        assert_eq!(log.received, 31);
        assert_eq!(log.evicted, 6);
        assert_eq!(seqs(&log), (7..=31).collect::<Vec<u64>>());
        let eleventh = log.line(4).unwrap();
        assert_eq!((eleventh.seq, eleventh.text.as_str()), (11, "alone"));
        let last = log.line(24).unwrap();
        assert_eq!(
            (last.text.as_str(), last.stream, last.t),
            ("line 31", Stream::Stderr, 1.0)
        );
        assert!(log.line(25).is_none());
        // Any window, from either end, is the same as the whole list cut.
        let all = seqs(&log);
        for start in 0..=25 {
            for end in start..=27 {
                let got: Vec<u64> = log.range(start..end).map(|l| l.seq).collect();
                assert_eq!(got, all[start.min(25)..end.min(25)], "{start}..{end}");
            }
        }
        // Many reads later only the newest remain, whole reads having gone at once.
        for n in 0..100 {
            log.push_lines(2.0, read(32 + n * 20, 20));
        }
        assert_eq!(log.len(), 25);
        assert_eq!(log.evicted, log.received - 25);
        assert_eq!(seqs(&log), (2007..=2031).collect::<Vec<u64>>());
    }

    #[test]
    fn byte_bound_holds_across_reads() {
        let mut log = OutputLog::with_capacity(1000, 40);
        log.push_lines(0.0, read(1, 10));
        // "line N" is 6 bytes for N < 10, 7 from 10: at most 40 bytes kept.
        assert_eq!(seqs(&log), (5..=10).collect::<Vec<u64>>());
    }
}
