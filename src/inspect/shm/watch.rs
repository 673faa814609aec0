//! The shared-memory watcher: discovery, reading and change detection on their own thread,
//! off the render path.
//!
//! # API (for the TUI)
//! ```no_run
//! use std::time::Duration;
//! use forkscope::inspect::shm::watch::{WatchRequest, Watcher};
//! use forkscope::inspect::shm::decode::Format;
//!
//! let watcher = Watcher::spawn(Duration::from_millis(500), 64 << 20).expect("thread");
//! // Whenever the tree or the selection changes (cheap; triggers a refresh at once):
//! watcher.set(WatchRequest { pids: vec![1234, 1235], selected: None, format: Format::Auto,
//!     rules: Vec::new().into() });
//! // In the UI loop, never blocking (`snapshots()` is a crossbeam Receiver, usable in select!):
//! while let Ok(snapshot) = watcher.snapshots().try_recv() {
//!     // snapshot.segments: Vec<Segment>; snapshot.contents: the selected segment's bytes,
//!     // decoded form, changed byte ranges and changed item indexes since the last snapshot.
//!     // forkscope::ui::shm_view::ShmPanel::from_snapshot(&snapshot, ...) builds the view.
//! }
//! drop(watcher); // stops and joins the thread
//! ```
//! Every `interval` (or at once after [`Watcher::set`]) the thread discovers the segments the
//! requested pids map or hold, reads the selected one (bounded by `max_bytes`), decodes it
//! with [`decode_for_view`], compares it with the previous snapshot it sent, and sends a
//! [`ShmSnapshot`] on a bounded channel (capacity 2). If the UI has not taken the previous
//! ones, the new snapshot is dropped (and the next one is compared with the last one sent,
//! so no change is lost from the highlights). The byte buffers are recycled once the UI
//! drops its snapshot, so a 64 MiB segment does not cost a 64 MiB allocation per refresh.

use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::decode::rules::{self, FormatRule};
use super::decode::{Decoding, Format, decode_for_view};
use super::discover::{Scope, discover};
use super::read::read_segment_into;
use crate::model::shm::{Contents, Decoded, Segment, SegmentId, ShmSnapshot};

/// What to watch. Sent with [`Watcher::set`]; the latest request wins.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchRequest {
    /// The processes whose segments to list (the supervised tree).
    pub pids: Vec<i32>,
    /// The segment whose contents to read, if any.
    pub selected: Option<SegmentId>,
    pub format: Format,
    /// Per-segment formats used when `format` is auto (first matching glob wins).
    pub rules: Arc<[FormatRule]>,
}

impl Default for WatchRequest {
    fn default() -> Self {
        WatchRequest {
            pids: Vec::new(),
            selected: None,
            format: Format::Auto,
            rules: Arc::from(Vec::new()),
        }
    }
}

/// A running watcher thread. Dropping it stops the thread.
pub struct Watcher {
    requests: Option<Sender<WatchRequest>>,
    snapshots: Receiver<ShmSnapshot>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts the thread, refreshing every `interval` (at least 10 ms), reading at most
    /// `max_bytes` of the selected segment.
    pub fn spawn(interval: Duration, max_bytes: u64) -> std::io::Result<Watcher> {
        let (req_tx, req_rx) = crossbeam_channel::unbounded();
        let (snap_tx, snap_rx) = crossbeam_channel::bounded(2);
        let interval = interval.max(Duration::from_millis(10));
        let thread = std::thread::Builder::new()
            .name("forkscope-shm-watch".into())
            .spawn(move || run(req_rx, snap_tx, interval, max_bytes))?;
        Ok(Watcher {
            requests: Some(req_tx),
            snapshots: snap_rx,
            thread: Some(thread),
        })
    }

    /// Replaces what is watched and asks for a refresh now.
    pub fn set(&self, request: WatchRequest) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(request);
        }
    }

    /// The snapshots, newest last.
    pub fn snapshots(&self) -> &Receiver<ShmSnapshot> {
        &self.snapshots
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The watcher's memory of the last snapshot it sent.
#[derive(Default)]
pub struct Previous {
    id: Option<SegmentId>,
    bytes: Option<Arc<Vec<u8>>>,
    decoded: Option<Decoded>,
    /// A buffer to read into (a released earlier snapshot's).
    spare: Vec<u8>,
}

fn run(
    requests: Receiver<WatchRequest>,
    snapshots: Sender<ShmSnapshot>,
    interval: Duration,
    max_bytes: u64,
) {
    let mut request = WatchRequest::default();
    let mut previous = Previous::default();
    loop {
        match requests.recv_timeout(interval) {
            Ok(mut r) => {
                // Only the newest of a burst matters (bounded by what is queued now).
                for _ in 0..requests.len() {
                    if let Ok(newer) = requests.try_recv() {
                        r = newer;
                    }
                }
                if r.format != request.format || r.rules != request.rules {
                    // Items of another decoder do not compare: start change marks afresh.
                    previous.id = None;
                }
                request = r;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let (snapshot, sent_state) = refresh(&request, &mut previous, max_bytes);
        match snapshots.try_send(snapshot) {
            Ok(()) => previous.commit(sent_state),
            Err(TrySendError::Full(_)) => previous.recycle(sent_state),
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// What a refresh read, kept if its snapshot is sent.
pub struct Pending {
    id: Option<SegmentId>,
    bytes: Option<Arc<Vec<u8>>>,
    decoded: Option<Decoded>,
}

impl Previous {
    /// Remembers what was sent (the next refresh compares with it); recycles the old buffer.
    pub fn commit(&mut self, sent: Pending) {
        let old = std::mem::replace(&mut self.bytes, sent.bytes);
        self.id = sent.id;
        self.decoded = sent.decoded;
        if let Some(buf) = old.and_then(|a| Arc::try_unwrap(a).ok()) {
            self.spare = buf;
        }
    }

    fn recycle(&mut self, unsent: Pending) {
        if let Some(buf) = unsent.bytes.and_then(|a| Arc::try_unwrap(a).ok()) {
            self.spare = buf;
        }
    }
}

/// One refresh: discovery, read, decode, change detection. Public for the benchmark.
pub fn refresh(
    request: &WatchRequest,
    previous: &mut Previous,
    max_bytes: u64,
) -> (ShmSnapshot, Pending) {
    let started = Instant::now();
    let segments = discover(&Scope::Pids(request.pids.clone()));
    let mut pending = Pending {
        id: None,
        bytes: None,
        decoded: None,
    };
    let contents = request.selected.map(|id| {
        let seg = segments
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| "the segment is gone".to_string())?;
        let contents = read_contents(seg, request, previous, max_bytes)?;
        pending.id = Some(id);
        pending.bytes = Some(contents.bytes.clone());
        pending.decoded = contents.decoded.clone().ok();
        Ok(contents)
    });
    let snapshot = ShmSnapshot {
        segments,
        contents,
        took_us: started.elapsed().as_micros().min(u64::MAX as u128) as u64,
    };
    (snapshot, pending)
}

fn read_contents(
    seg: &Segment,
    request: &WatchRequest,
    previous: &mut Previous,
    max_bytes: u64,
) -> Result<Contents, String> {
    let mut buf = std::mem::take(&mut previous.spare);
    read_segment_into(seg, max_bytes, &mut buf).map_err(|e| e.to_string())?;
    let format = rules::effective(&request.format, &request.rules, &seg.name);
    let decoding = decode_for_view(&buf, seg.kind, format);
    let same_segment = previous.id == Some(seg.id);
    let old = previous.bytes.as_deref().filter(|_| same_segment);
    let changed = old
        .map(|old| changed_ranges(old, &buf, MAX_RANGES))
        .unwrap_or_default();
    let changed_items = match (
        &decoding,
        previous.decoded.as_ref().filter(|_| same_segment),
    ) {
        (Ok(now), Some(before)) => changed_items(now, before, &changed),
        _ => Vec::new(),
    };
    Ok(Contents {
        id: seg.id,
        bytes: Arc::new(buf),
        decoded: decoding.map(|d| d.decoded),
        changed,
        changed_items,
    })
}

/// Most changed ranges reported; past it the rest of the segment is one range.
pub const MAX_RANGES: usize = 4096;

/// Byte ranges where `new` differs from `old` (a length change counts as changed tail).
/// Compares 4 KiB blocks first (memcmp speed), bytes only inside blocks that differ. At most
/// `max_ranges` ranges: the last one then runs to the end.
pub fn changed_ranges(old: &[u8], new: &[u8], max_ranges: usize) -> Vec<Range<usize>> {
    const BLOCK: usize = 4096;
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let common = old.len().min(new.len());
    let push = |ranges: &mut Vec<Range<usize>>, r: Range<usize>| {
        match ranges.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => ranges.push(r),
        }
        ranges.len() < max_ranges.max(1)
    };
    let mut block_start = 0;
    'blocks: while block_start < common {
        let block_end = (block_start + BLOCK).min(common);
        if old[block_start..block_end] != new[block_start..block_end] {
            let mut i = block_start;
            while i < block_end {
                if old[i] != new[i] {
                    let start = i;
                    while i < block_end && old[i] != new[i] {
                        i += 1;
                    }
                    if !push(&mut ranges, start..i) {
                        if let Some(last) = ranges.last_mut() {
                            last.end = new.len().max(last.end);
                        }
                        break 'blocks;
                    }
                } else {
                    i += 1;
                }
            }
        }
        block_start = block_end;
    }
    if new.len() > common && ranges.len() < max_ranges.max(1) {
        push(&mut ranges, common..new.len());
    }
    ranges
}

/// Which decoded items changed: list items compared by value (a format or code change
/// counts), other items by whether their bytes intersect a changed range.
pub(crate) fn changed_items(
    now: &Decoding,
    before: &Decoded,
    changed: &[Range<usize>],
) -> Vec<usize> {
    if let (Decoded::ShareableList { items: a, .. }, Decoded::ShareableList { items: b, .. }) =
        (&now.decoded, before)
    {
        return (0..a.len()).filter(|i| a.get(*i) != b.get(*i)).collect();
    }
    let mut out = Vec::new();
    let mut j = 0;
    for (i, item) in now.item_ranges.iter().enumerate() {
        while j < changed.len() && changed[j].end <= item.start {
            j += 1;
        }
        if j < changed.len() && changed[j].start < item.end {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_changed_ranges() {
        let old = vec![0u8; 10_000];
        let mut new = old.clone();
        new[5] = 1;
        new[6] = 1;
        new[4095] = 2;
        new[4096] = 2;
        new[9999] = 3;
        assert_eq!(
            changed_ranges(&old, &new, 100),
            vec![5..7, 4095..4097, 9999..10_000]
        );
        assert_eq!(changed_ranges(&old, &new, 1), vec![5..10_000]);
        assert_eq!(changed_ranges(&old, &old, 10), Vec::<Range<usize>>::new());
        assert_eq!(
            changed_ranges(&old[..10], &new[..12], 10),
            vec![5..7, 10..12]
        );
    }

    #[test]
    fn maps_changes_to_items() {
        let d = Decoding {
            decoded: Decoded::Hex {
                size: 0,
                hex: String::new(),
            },
            item_ranges: vec![0..4, 4..8, 8..12],
        };
        let before = d.decoded.clone();
        assert_eq!(changed_items(&d, &before, &[5..6]), vec![1]);
        assert_eq!(changed_items(&d, &before, &[3..9]), vec![0, 1, 2]);
        assert_eq!(changed_items(&d, &before, &[12..20]), Vec::<usize>::new());
    }

    #[test]
    fn watcher_sees_a_change_in_a_memfd() {
        use std::os::unix::fs::FileExt;
        let fd = rustix::fs::memfd_create("forkscope-watch-test", rustix::fs::MemfdFlags::CLOEXEC)
            .unwrap();
        let file = std::fs::File::from(fd);
        file.write_all_at(&[0u8; 64], 0).unwrap();
        let me = std::process::id() as i32;
        let watcher = Watcher::spawn(Duration::from_millis(20), 1 << 20).unwrap();
        watcher.set(WatchRequest {
            pids: vec![me],
            ..WatchRequest::default()
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut id = None;
        while id.is_none() && Instant::now() < deadline {
            if let Ok(s) = watcher.snapshots().recv_timeout(Duration::from_millis(100)) {
                id = s
                    .segments
                    .iter()
                    .find(|s| s.name == "memfd:forkscope-watch-test")
                    .map(|s| s.id);
            }
        }
        watcher.set(WatchRequest {
            pids: vec![me],
            selected: id,
            format: "u32".parse().unwrap(),
            ..WatchRequest::default()
        });
        let mut wrote = false;
        let mut seen = None;
        while seen.is_none() && Instant::now() < deadline {
            let Ok(s) = watcher.snapshots().recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            let Some(Ok(c)) = s.contents else { continue };
            if !wrote {
                file.write_all_at(&[9, 0, 0, 0], 8).unwrap();
                wrote = true;
            } else if !c.changed.is_empty() {
                seen = Some((c.changed, c.changed_items));
            }
        }
        assert_eq!(seen, Some((vec![8..9], vec![2])));
    }

    #[test]
    fn rules_pick_the_format_of_matching_segments() {
        use std::os::unix::fs::FileExt;
        let fd = rustix::fs::memfd_create("forkscope-rules-test", rustix::fs::MemfdFlags::CLOEXEC)
            .unwrap();
        let file = std::fs::File::from(fd);
        file.write_all_at(&[7, 0, 0, 0, 9, 0, 0, 0], 0).unwrap();
        let me = std::process::id() as i32;
        let segments = discover(&Scope::Pids(vec![me]));
        let id = segments
            .iter()
            .find(|s| s.name == "memfd:forkscope-rules-test")
            .map(|s| s.id);
        assert!(id.is_some());
        let rule = |pattern: &str| FormatRule {
            pattern: pattern.into(),
            format: "layout:a:u32,b:u32".parse().unwrap(),
            origin: "test".into(),
        };
        let decoded = |rules: Vec<FormatRule>, format: &str| {
            let request = WatchRequest {
                pids: vec![me],
                selected: id,
                format: format.parse().unwrap(),
                rules: rules.into(),
            };
            let (snapshot, _) = refresh(&request, &mut Previous::default(), 1 << 20);
            snapshot.contents.unwrap().unwrap().decoded.unwrap()
        };
        assert!(matches!(
            decoded(vec![rule("memfd:forkscope-rules-*")], "auto"),
            Decoded::Layout { size: 8, .. }
        ));
        assert!(matches!(
            decoded(vec![rule("psm_*")], "auto"),
            Decoded::Hex { .. }
        ));
        assert!(matches!(
            decoded(vec![rule("memfd:*")], "u8"),
            Decoded::Typed { .. }
        ));
    }

    proptest! {
        #[test]
        fn ranges_are_exact(old in proptest::collection::vec(0u8..3, 0..9000),
                            new in proptest::collection::vec(0u8..3, 0..9000)) {
            let ranges = changed_ranges(&old, &new, usize::MAX);
            let mut marked = vec![false; new.len()];
            for r in &ranges {
                prop_assert!(r.start < r.end && r.end <= new.len());
                for m in &mut marked[r.clone()] { *m = true; }
            }
            for (i, m) in marked.iter().enumerate() {
                prop_assert_eq!(*m, old.get(i) != Some(&new[i]));
            }
        }
    }
}
