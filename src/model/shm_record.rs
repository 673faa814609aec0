//! Shared memory as a recording tells it: the `shm` events of a session folded into the
//! latest known state of each segment, and turned into the [`ShmSnapshot`] the shared-memory
//! view renders (how `replay` shows segments changing). Pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::event::EventBody;
use super::shm::{Contents, Decoded, Segment, SegmentId, SegmentKind, ShmSnapshot};

/// The latest `shm` event of one segment.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    kind: SegmentKind,
    inode: u64,
    size: u64,
    pids: Vec<i32>,
    value: Option<Decoded>,
    changed: Vec<[u64; 2]>,
    changed_items: Vec<usize>,
    truncated: bool,
}

/// Segments named by `shm` events, by name; gone ones are dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShmRecord {
    segments: BTreeMap<String, Entry>,
    /// How many `shm` events were folded.
    pub events: u64,
}

impl ShmRecord {
    /// Folds one event (anything but `shm` is ignored).
    pub fn apply(&mut self, body: &EventBody) {
        let EventBody::Shm {
            name,
            segment,
            inode,
            size,
            pids,
            value,
            changed,
            changed_items,
            truncated,
            gone,
            ..
        } = body
        else {
            return;
        };
        self.events += 1;
        if *gone {
            self.segments.remove(name);
            return;
        }
        self.segments.insert(
            name.clone(),
            Entry {
                kind: *segment,
                inode: *inode,
                size: *size,
                pids: pids.clone(),
                value: value.clone(),
                changed: changed.clone(),
                changed_items: changed_items.clone(),
                truncated: *truncated,
            },
        );
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The view's snapshot: every known segment, and the contents of the `selected` one.
    pub fn snapshot(&self, selected: usize) -> ShmSnapshot {
        let segments: Vec<Segment> = self
            .segments
            .iter()
            .map(|(name, e)| Segment {
                name: name.clone(),
                kind: e.kind,
                inode: e.inode,
                device: String::new(),
                size: e.size,
                deleted: false,
                pids: e.pids.clone(),
                id: id_of(e.inode),
                attachments: Vec::new(),
                sysv: None,
            })
            .collect();
        let contents = self
            .segments
            .values()
            .nth(selected.min(segments.len().saturating_sub(1)))
            .map(|e| match &e.value {
                None if e.truncated => Err(format!(
                    "{} bytes: over the recording's size cap, not recorded",
                    e.size
                )),
                None => Err("not recorded".to_string()),
                Some(value) => Ok(Contents {
                    id: id_of(e.inode),
                    bytes: Arc::new(match value {
                        Decoded::Hex { hex, .. } => from_hex(hex),
                        _ => Vec::new(),
                    }),
                    decoded: Ok(value.clone()),
                    changed: e
                        .changed
                        .iter()
                        .map(|[a, b]| *a as usize..*b as usize)
                        .collect(),
                    changed_items: e.changed_items.clone(),
                }),
            });
        ShmSnapshot {
            segments,
            contents,
            took_us: 0,
        }
    }
}

fn id_of(inode: u64) -> SegmentId {
    SegmentId {
        dev_major: 0,
        dev_minor: 0,
        inode,
    }
}

/// Bytes of a hex string (two digits a byte; anything else ends it).
fn from_hex(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks_exact(2)
        .map_while(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::shm::ListItem;

    fn event(name: &str, value: Option<Decoded>, gone: bool) -> EventBody {
        EventBody::Shm {
            pid: None,
            name: name.into(),
            segment: SegmentKind::Posix,
            inode: 9,
            size: 16,
            pids: vec![3],
            value,
            changed: vec![[1, 2]],
            changed_items: vec![0],
            truncated: false,
            gone,
        }
    }

    #[test]
    fn folds_changes_and_forgets_gone_segments() {
        let mut record = ShmRecord::default();
        let list = |v| Decoded::ShareableList {
            layout: "3.9+".into(),
            items: vec![ListItem::Int { value: v }],
        };
        record.apply(&event("psm_a", Some(list(1)), false));
        record.apply(&event("psm_a", Some(list(2)), false));
        record.apply(&event(
            "pym-1-x",
            Some(Decoded::Hex {
                size: 2,
                hex: "0a0b".into(),
            }),
            false,
        ));
        let snap = record.snapshot(1);
        assert_eq!(snap.segments.len(), 2);
        let contents = snap.contents.unwrap().unwrap();
        assert_eq!(*contents.bytes, vec![0x0a, 0x0b]);
        let snap = record.snapshot(0);
        let contents = snap.contents.unwrap().unwrap();
        assert_eq!(contents.decoded, Ok(list(2)));
        assert_eq!(contents.changed, vec![1..2]);
        record.apply(&event("psm_a", None, true));
        assert_eq!(record.snapshot(0).segments.len(), 1);
        assert_eq!(record.events, 4);
    }
}
