//! Shared memory in recordings: while a session records, a thread discovers the segments the
//! supervised tree maps or holds, reads and decodes them, and emits an `shm` event for each
//! one that appeared, changed (bytes, size or mappers) or is gone. Bounds ([`Bounds`],
//! `docs/events.md`): a tick every 500 ms (the discovery of segments, which walks the maps of
//! every process of the tree, at most every 500 ms and about 1 % of the time, so at least every
//! 5 s), at most 64 segments a tick, 64 KiB read per
//! segment, 16 KiB of decoded JSON per event (over it: `truncated`, no value), 64 changed
//! ranges per event, and 256 KiB of values a tick (the rest waits for the next tick).

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::inspect::shm::decode::rules::{self, FormatRule};
use crate::inspect::shm::decode::{Format, decode};
use crate::inspect::shm::discover::{Scope, discover};
use crate::inspect::shm::read::read_segment_into;
use crate::inspect::shm::watch::{changed_items, changed_ranges};
use crate::model::EventBody;
use crate::model::shm::{Decoded, Segment};
use crate::supervise::channel::EventTx;

/// How much the watcher reads and records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub every: Duration,
    pub max_segments: usize,
    pub max_read: u64,
    pub max_value_json: usize,
    pub max_ranges: usize,
    pub budget_per_tick: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            every: Duration::from_millis(500),
            max_segments: 64,
            max_read: 64 << 10,
            max_value_json: 16 << 10,
            max_ranges: 64,
            budget_per_tick: 256 << 10,
        }
    }
}

/// What was last recorded of one segment.
struct Seen {
    kind: crate::model::shm::SegmentKind,
    size: u64,
    pids: Vec<i32>,
    bytes: Option<Vec<u8>>,
    decoded: Option<Decoded>,
}

/// The change detector: pure given the segments and a way to read them.
pub struct ShmTracker {
    bounds: Bounds,
    rules: Arc<[FormatRule]>,
    seen: HashMap<(String, u64), Seen>,
}

impl ShmTracker {
    pub fn new(bounds: Bounds, rules: Arc<[FormatRule]>) -> ShmTracker {
        ShmTracker {
            bounds,
            rules,
            seen: HashMap::new(),
        }
    }

    /// The `shm` events of one tick. `read` returns a segment's bytes (at most `max`).
    pub fn tick(
        &mut self,
        segments: &[Segment],
        mut read: impl FnMut(&Segment, u64) -> Option<Vec<u8>>,
    ) -> Vec<EventBody> {
        let segments = &segments[..segments.len().min(self.bounds.max_segments)];
        let mut events = Vec::new();
        let mut budget = self.bounds.budget_per_tick;
        for seg in segments {
            let key = (seg.name.clone(), seg.inode);
            let bytes = (seg.size <= self.bounds.max_read)
                .then(|| read(seg, self.bounds.max_read))
                .flatten();
            let before = self.seen.get(&key);
            if before.is_some_and(|b| b.size == seg.size && b.pids == seg.pids && b.bytes == bytes)
            {
                continue;
            }
            let format = rules::effective(&Format::Auto, &self.rules, &seg.name);
            let decoding = bytes
                .as_deref()
                .and_then(|b| decode(b, seg.kind, format).ok());
            let changed = match (before.and_then(|b| b.bytes.as_deref()), bytes.as_deref()) {
                (Some(old), Some(new)) => changed_ranges(old, new, self.bounds.max_ranges),
                _ => Vec::new(),
            };
            let items = match (&decoding, before.and_then(|b| b.decoded.as_ref())) {
                (Some(now), Some(old)) => changed_items(now, old, &changed),
                _ => Vec::new(),
            };
            let decoded = decoding.map(|d| d.decoded);
            let json_len = decoded
                .as_ref()
                .and_then(|d| serde_json::to_vec(d).ok())
                .map_or(0, |j| j.len());
            if json_len > budget {
                break;
            }
            let truncated = bytes.is_none() || json_len > self.bounds.max_value_json;
            let value = decoded.clone().filter(|_| !truncated);
            budget -= if truncated { 0 } else { json_len };
            events.push(EventBody::Shm {
                pid: None,
                name: seg.name.clone(),
                segment: seg.kind,
                inode: seg.inode,
                size: seg.size,
                pids: seg.pids.clone(),
                value,
                changed: changed
                    .iter()
                    .map(|r| [r.start as u64, r.end as u64])
                    .collect(),
                changed_items: items,
                truncated,
                gone: false,
            });
            self.seen.insert(
                key,
                Seen {
                    kind: seg.kind,
                    size: seg.size,
                    pids: seg.pids.clone(),
                    bytes,
                    decoded,
                },
            );
        }
        let present: std::collections::HashSet<(&str, u64)> = segments
            .iter()
            .map(|s| (s.name.as_str(), s.inode))
            .collect();
        let gone: Vec<(String, u64)> = self
            .seen
            .keys()
            .filter(|(name, inode)| !present.contains(&(name.as_str(), *inode)))
            .cloned()
            .collect();
        for key in gone {
            if let Some(seen) = self.seen.remove(&key) {
                events.push(EventBody::Shm {
                    pid: None,
                    name: key.0,
                    segment: seen.kind,
                    inode: key.1,
                    size: seen.size,
                    pids: Vec::new(),
                    value: None,
                    changed: Vec::new(),
                    changed_items: Vec::new(),
                    truncated: false,
                    gone: true,
                });
            }
        }
        events
    }
}

/// Finding the segments walks the maps and descriptors of every process of the tree, which
/// costs far more than reading the segments found: it runs at most this share of the time.
const DISCOVERY_SHARE: u32 = 100;
/// ...but at least this often.
const DISCOVERY_MAX_GAP: Duration = Duration::from_secs(5);

/// The segments the descendants of `root` map or hold.
fn discover_tree(root: i32) -> Vec<Segment> {
    let pids: Vec<i32> = crate::inspect::proc::descendants(root)
        .map(|procs| procs.iter().map(|p| p.pid).collect())
        .unwrap_or_default();
    if pids.is_empty() {
        Vec::new()
    } else {
        discover(&Scope::Pids(pids))
    }
}

/// The time until the next discovery, after one that took `cost`: at least `every`, about
/// [`DISCOVERY_SHARE`] times its cost, at most [`DISCOVERY_MAX_GAP`].
fn discovery_gap(every: Duration, cost: Duration) -> Duration {
    cost.saturating_mul(DISCOVERY_SHARE)
        .min(DISCOVERY_MAX_GAP)
        .max(every)
}

/// The running watcher; dropping it stops and joins the thread.
pub struct ShmEvents {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ShmEvents {
    /// Watches the descendants of `root` (forkscope's engine process), emitting on `events`.
    pub fn spawn(
        root: i32,
        events: EventTx,
        rules: Arc<[FormatRule]>,
        bounds: Bounds,
    ) -> std::io::Result<ShmEvents> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("forkscope-shm-record".into())
            .spawn(move || {
                let mut tracker = ShmTracker::new(bounds, rules);
                let mut buf = Vec::new();
                let mut segments = Vec::new();
                let mut next_discovery = Instant::now();
                loop {
                    if Instant::now() >= next_discovery {
                        let began = Instant::now();
                        segments = discover_tree(root);
                        next_discovery =
                            Instant::now() + discovery_gap(bounds.every, began.elapsed());
                    }
                    let read = |seg: &Segment, max: u64| {
                        read_segment_into(seg, max, &mut buf).ok()?;
                        Some(buf.clone())
                    };
                    for body in tracker.tick(&segments, read) {
                        events.emit(body);
                    }
                    match stopped.recv_timeout(bounds.every) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(ShmEvents {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for ShmEvents {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::shm::{SegmentId, SegmentKind};

    fn segment(name: &str, size: u64) -> Segment {
        Segment {
            name: name.into(),
            kind: SegmentKind::Posix,
            inode: 5,
            device: "00:1a".into(),
            size,
            deleted: false,
            pids: vec![10],
            id: SegmentId {
                dev_major: 0,
                dev_minor: 0x1a,
                inode: 5,
            },
            attachments: Vec::new(),
            sysv: None,
        }
    }

    fn changed_of(event: &EventBody) -> (Vec<[u64; 2]>, bool, bool) {
        match event {
            EventBody::Shm {
                changed,
                truncated,
                gone,
                value,
                ..
            } => (changed.clone(), *truncated, *gone || value.is_none()),
            _ => unreachable!(),
        }
    }

    #[test]
    fn discovery_takes_a_bounded_share_of_the_time() {
        let every = Duration::from_millis(500);
        assert_eq!(discovery_gap(every, Duration::from_micros(100)), every);
        assert_eq!(
            discovery_gap(every, Duration::from_millis(20)),
            Duration::from_secs(2)
        );
        assert_eq!(
            discovery_gap(every, Duration::from_secs(1)),
            DISCOVERY_MAX_GAP
        );
    }

    #[test]
    fn emits_changes_only_and_the_end_of_a_segment() {
        let mut tracker = ShmTracker::new(Bounds::default(), Arc::from(Vec::new()));
        let mut bytes = vec![0u8; 32];
        let segs = vec![segment("a", 32)];
        let first = tracker.tick(&segs, |_, _| Some(bytes.clone()));
        assert_eq!(first.len(), 1);
        assert_eq!(changed_of(&first[0]), (vec![], false, false));
        assert!(tracker.tick(&segs, |_, _| Some(bytes.clone())).is_empty());
        bytes[3] = 7;
        let second = tracker.tick(&segs, |_, _| Some(bytes.clone()));
        assert_eq!(changed_of(&second[0]), (vec![[3, 4]], false, false));
        let gone = tracker.tick(&[], |_, _| None);
        assert_eq!(changed_of(&gone[0]), (vec![], false, true));
    }

    #[test]
    fn bounds_the_size_of_an_event() {
        let bounds = Bounds {
            max_value_json: 100,
            max_read: 1000,
            ..Bounds::default()
        };
        let mut tracker = ShmTracker::new(bounds, Arc::from(Vec::new()));
        let events = tracker.tick(&[segment("big", 4000), segment("mid", 500)], |s, max| {
            assert!(s.size <= max, "read past the cap");
            Some(vec![1; s.size as usize])
        });
        assert_eq!(events.len(), 2);
        for event in &events {
            assert_eq!(changed_of(event), (vec![], true, true));
            assert!(serde_json::to_vec(event).unwrap().len() < 400);
        }
    }
}
