//! The hub's ring of recent events (`events --from-start`), bounded in events and in output
//! bytes. While nobody subscribes, the lines of a read stay one entry that shares the read's
//! buffer (`OutputLines`), so an output flood costs the ring one entry per read: no copy, no
//! allocation and no reference count per line. A subscriber taking the backlog gets every
//! event back, one `output` event per line, in order.

use std::collections::VecDeque;
use std::sync::Arc;

use super::hub::SharedEvent;
use crate::model::{Event, EventBody, OutputLines};

enum Entry {
    Shared(Arc<SharedEvent>),
    /// The lines of one read from `first` on (the older ones are out of the ring).
    Lines {
        t: f64,
        lines: OutputLines,
        first: usize,
    },
}

/// Recent events, at most `max_events` of them and `max_bytes` of output text.
pub struct Ring {
    entries: VecDeque<Entry>,
    events: usize,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl Ring {
    pub fn new(max_events: usize, max_bytes: usize) -> Ring {
        Ring {
            entries: VecDeque::new(),
            events: 0,
            bytes: 0,
            max_events,
            max_bytes,
        }
    }

    pub fn push_shared(&mut self, event: Arc<SharedEvent>) {
        self.events += 1;
        self.bytes += event.weight();
        self.entries.push_back(Entry::Shared(event));
        self.trim();
    }

    /// Keeps the lines of a read as they are (their text stays in the read's buffer); false,
    /// and nothing kept, for any other event.
    pub fn push_lines(&mut self, event: &Event) -> bool {
        let EventBody::OutputLines(lines) = &event.body else {
            return false;
        };
        if !lines.is_empty() {
            self.events += lines.len();
            self.bytes += lines.text_len();
            self.entries.push_back(Entry::Lines {
                t: event.t,
                lines: lines.clone(),
                first: 0,
            });
            self.trim();
        }
        true
    }

    fn over(&self) -> bool {
        self.events > self.max_events || self.bytes > self.max_bytes
    }

    /// Drops the oldest events until both bounds hold: whole entries while a bound needs
    /// that much gone, then line by line.
    fn trim(&mut self) {
        while self.over() {
            let Some(oldest) = self.entries.front_mut() else {
                break;
            };
            let gone = match oldest {
                Entry::Shared(event) => {
                    self.events -= 1;
                    self.bytes -= event.weight();
                    true
                }
                Entry::Lines { lines, first, .. } => {
                    let rest = &lines.spans[*first..];
                    let rest_bytes: usize = rest.iter().map(|s| (s.end - s.start) as usize).sum();
                    let whole = (self.events > self.max_events
                        && self.events - rest.len() >= self.max_events)
                        || (self.bytes > self.max_bytes
                            && self.bytes - rest_bytes >= self.max_bytes);
                    if whole {
                        self.events -= rest.len();
                        self.bytes -= rest_bytes;
                        true
                    } else {
                        while *first < lines.spans.len()
                            && (self.events > self.max_events || self.bytes > self.max_bytes)
                        {
                            let span = lines.spans[*first];
                            *first += 1;
                            self.events -= 1;
                            self.bytes -= (span.end - span.start) as usize;
                        }
                        *first >= lines.spans.len()
                    }
                }
            };
            if gone {
                self.entries.pop_front();
            }
        }
    }

    /// Every event kept, oldest first.
    pub fn backlog(&self) -> Vec<Arc<SharedEvent>> {
        let mut events = Vec::with_capacity(self.events);
        for entry in &self.entries {
            match entry {
                Entry::Shared(event) => events.push(event.clone()),
                Entry::Lines { t, lines, first } => events.extend(
                    lines
                        .bodies()
                        .skip(*first)
                        .map(|body| Arc::new(SharedEvent::new(Event { t: *t, body }))),
                ),
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Stream;

    /// The lines of one read of `n` lines of `text`, numbered from `first_seq`.
    fn read(t: f64, first_seq: u64, n: usize, text: &str) -> Event {
        let lines = vec![text; n];
        Event {
            t,
            body: EventBody::OutputLines(OutputLines::of_lines(
                7,
                Stream::Stdout,
                first_seq,
                &lines,
            )),
        }
    }

    /// What a subscriber sees of `events`: one `output` event per line.
    fn expanded(events: &[Event]) -> Vec<Event> {
        let mut out = Vec::new();
        for event in events {
            match &event.body {
                EventBody::OutputLines(lines) => {
                    out.extend(lines.bodies().map(|body| Event { t: event.t, body }));
                }
                _ => out.push(event.clone()),
            }
        }
        out
    }

    fn keep(ring: &mut Ring, event: &Event) {
        if !ring.push_lines(event) {
            ring.push_shared(Arc::new(SharedEvent::new(event.clone())));
        }
    }

    fn seqs(ring: &Ring) -> Vec<u64> {
        ring.backlog()
            .iter()
            .filter_map(|s| match s.event.body {
                EventBody::Output { seq, .. } => Some(seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lines_come_back_exactly_and_in_order() {
        let events = vec![
            read(0.5, 1, 3, "é and more"),
            Event {
                t: 0.6,
                body: EventBody::Output {
                    pid: 7,
                    stream: Stream::Stderr,
                    line: "\u{fffd}".into(),
                    raw_hex: Some("ff".into()),
                    seq: 1,
                    partial: false,
                },
            },
            Event {
                t: 0.7,
                body: EventBody::Reap { pid: 8, by: 1 },
            },
            read(0.8, 4, 2, ""),
        ];
        let mut ring = Ring::new(1000, 1 << 20);
        for event in &events {
            keep(&mut ring, event);
        }
        let back: Vec<Event> = ring.backlog().iter().map(|s| s.event.clone()).collect();
        assert_eq!(back, expanded(&events));
    }

    #[test]
    fn bounds_hold_within_a_read() {
        let mut ring = Ring::new(10, 25);
        keep(&mut ring, &read(1.0, 1, 30, "abcd"));
        // 25 bytes of 4-byte lines: the newest 6.
        assert_eq!(seqs(&ring), vec![25, 26, 27, 28, 29, 30]);
    }

    #[test]
    fn whole_reads_go_at_once_but_never_more_than_needed() {
        let mut ring = Ring::new(25, 1 << 20);
        for n in 0..10 {
            keep(&mut ring, &read(n as f64, n * 10 + 1, 10, "line"));
        }
        assert_eq!(seqs(&ring), (76..=100).collect::<Vec<u64>>());
        assert_eq!(ring.events, 25);
        assert_eq!(ring.bytes, 25 * 4);
    }
}
