//! The hub's ring of recent events (`events --from-start`), bounded in events and in output
//! bytes. While nobody subscribes, the output lines of a batch are kept packed: their text in
//! one buffer per batch, not one `String` (and one `Arc`) per line, so an output flood costs
//! the ring a copy of each read rather than two allocations per line. A subscriber taking the
//! backlog gets every event back, unpacked, in order.

use std::collections::VecDeque;
use std::sync::Arc;

use super::hub::SharedEvent;
use crate::model::{Event, EventBody, Stream};

/// The output lines of one batch.
#[derive(Debug, Default)]
pub struct PackedLines {
    text: String,
    lines: Vec<PackedLine>,
}

#[derive(Debug)]
struct PackedLine {
    t: f64,
    pid: i32,
    stream: Stream,
    start: usize,
    end: usize,
    seq: u64,
    partial: bool,
}

impl PackedLines {
    /// Packs `event` if it is an output line that packing keeps exactly (valid UTF-8: no
    /// `raw_hex`); false leaves it to the caller.
    pub fn push(&mut self, event: &Event) -> bool {
        let EventBody::Output {
            pid,
            stream,
            line,
            raw_hex: None,
            seq,
            partial,
        } = &event.body
        else {
            return false;
        };
        let start = self.text.len();
        self.text.push_str(line);
        self.lines.push(PackedLine {
            t: event.t,
            pid: *pid,
            stream: *stream,
            start,
            end: self.text.len(),
            seq: *seq,
            partial: *partial,
        });
        true
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn weight(&self, index: usize) -> usize {
        self.lines.get(index).map_or(0, |l| l.end - l.start)
    }

    fn event(&self, index: usize) -> Option<Event> {
        let line = self.lines.get(index)?;
        Some(Event {
            t: line.t,
            body: EventBody::Output {
                pid: line.pid,
                stream: line.stream,
                line: self.text[line.start..line.end].to_string(),
                raw_hex: None,
                seq: line.seq,
                partial: line.partial,
            },
        })
    }
}

enum Entry {
    Shared(Arc<SharedEvent>),
    Packed(Arc<PackedLines>, usize),
}

impl Entry {
    fn weight(&self) -> usize {
        match self {
            Entry::Shared(event) => event.weight(),
            Entry::Packed(lines, index) => lines.weight(*index),
        }
    }

    fn shared(&self) -> Option<Arc<SharedEvent>> {
        match self {
            Entry::Shared(event) => Some(event.clone()),
            Entry::Packed(lines, index) => {
                let event = lines.event(*index)?;
                Some(Arc::new(SharedEvent::new(event)))
            }
        }
    }
}

/// Recent events, at most `max_events` of them and `max_bytes` of output text.
pub struct Ring {
    entries: VecDeque<Entry>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl Ring {
    pub fn new(max_events: usize, max_bytes: usize) -> Ring {
        Ring {
            entries: VecDeque::new(),
            bytes: 0,
            max_events,
            max_bytes,
        }
    }

    pub fn push_shared(&mut self, event: Arc<SharedEvent>) {
        self.push(Entry::Shared(event));
    }

    pub fn push_packed(&mut self, lines: Arc<PackedLines>) {
        for index in 0..lines.len() {
            self.push(Entry::Packed(lines.clone(), index));
        }
    }

    fn push(&mut self, entry: Entry) {
        self.bytes += entry.weight();
        self.entries.push_back(entry);
        while self.entries.len() > self.max_events || self.bytes > self.max_bytes {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= oldest.weight();
        }
    }

    /// Every event kept, oldest first.
    pub fn backlog(&self) -> Vec<Arc<SharedEvent>> {
        self.entries.iter().filter_map(Entry::shared).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(seq: u64, line: &str, raw_hex: Option<&str>) -> Event {
        Event {
            t: seq as f64 / 8.0,
            body: EventBody::Output {
                pid: 7,
                stream: if seq.is_multiple_of(2) {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                },
                line: line.into(),
                raw_hex: raw_hex.map(String::from),
                seq,
                partial: seq.is_multiple_of(3),
            },
        }
    }

    #[test]
    fn packed_lines_come_back_exactly_and_in_order() {
        let events: Vec<Event> = (1..=50)
            .map(|n| match n % 10 {
                0 => output(n, "\u{fffd}", Some("ff")),
                5 => Event {
                    t: 1.0,
                    body: EventBody::Reap {
                        pid: n as i32,
                        by: 1,
                    },
                },
                _ => output(n, &"é".repeat(n as usize % 7), None),
            })
            .collect();
        let mut ring = Ring::new(1000, 1 << 20);
        let mut packed = PackedLines::default();
        for event in &events {
            if !packed.push(event) {
                ring.push_packed(Arc::new(std::mem::take(&mut packed)));
                ring.push_shared(Arc::new(SharedEvent::new(event.clone())));
            }
        }
        ring.push_packed(Arc::new(packed));
        let back: Vec<Event> = ring.backlog().iter().map(|s| s.event.clone()).collect();
        assert_eq!(back, events);
    }

    #[test]
    fn bounds_hold_across_packed_batches() {
        let mut ring = Ring::new(10, 25);
        let mut packed = PackedLines::default();
        for n in 1..=30 {
            assert!(packed.push(&output(n, "abcd", None)));
        }
        ring.push_packed(Arc::new(packed));
        let back = ring.backlog();
        // 25 bytes of 4-byte lines: the newest 6.
        assert_eq!(back.len(), 6);
        let seqs: Vec<u64> = back
            .iter()
            .map(|s| match s.event.body {
                EventBody::Output { seq, .. } => seq,
                _ => 0,
            })
            .collect();
        assert_eq!(seqs, vec![25, 26, 27, 28, 29, 30]);
    }
}
