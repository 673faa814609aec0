//! The hub's ring of recent events (`events --from-start`), bounded in events and in output
//! bytes. While nobody subscribes, output lines are kept small: their text shares the buffer
//! of the read it came from, so an output flood costs the ring neither an allocation nor a
//! copy of the text per line. A subscriber taking the backlog gets every event back, in order.

use std::collections::VecDeque;
use std::sync::Arc;

use super::hub::SharedEvent;
use crate::model::{Event, EventBody, LineText, Stream};

enum Entry {
    Shared(Arc<SharedEvent>),
    /// An `output` line nobody has asked for yet (valid UTF-8: no `raw_hex`), kept small.
    Line(KeptLine),
}

struct KeptLine {
    t: f64,
    pid: i32,
    stream: Stream,
    partial: bool,
    seq: u64,
    text: LineText,
}

impl Entry {
    fn weight(&self) -> usize {
        match self {
            Entry::Shared(event) => event.weight(),
            Entry::Line(line) => line.text.len(),
        }
    }

    fn shared(&self) -> Arc<SharedEvent> {
        match self {
            Entry::Shared(event) => event.clone(),
            Entry::Line(line) => Arc::new(SharedEvent::new(Event {
                t: line.t,
                body: EventBody::Output {
                    pid: line.pid,
                    stream: line.stream,
                    line: line.text.clone(),
                    raw_hex: None,
                    seq: line.seq,
                    partial: line.partial,
                },
            })),
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

    /// Keeps an `output` line of valid UTF-8 (false, and nothing kept, for anything else).
    pub fn push_line(&mut self, event: &Event) -> bool {
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
        self.push(Entry::Line(KeptLine {
            t: event.t,
            pid: *pid,
            stream: *stream,
            partial: *partial,
            seq: *seq,
            text: line.clone(),
        }));
        true
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
        self.entries.iter().map(Entry::shared).collect()
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
    fn kept_lines_come_back_exactly_and_in_order() {
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
        for event in &events {
            if !ring.push_line(event) {
                ring.push_shared(Arc::new(SharedEvent::new(event.clone())));
            }
        }
        let back: Vec<Event> = ring.backlog().iter().map(|s| s.event.clone()).collect();
        assert_eq!(back, events);
    }

    #[test]
    fn bounds_hold_for_kept_lines() {
        let mut ring = Ring::new(10, 25);
        for n in 1..=30 {
            assert!(ring.push_line(&output(n, "abcd", None)));
        }
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
