//! The semaphores of a tree (from shared-memory discovery), their values, the threads
//! blocked on them, the primitives they form and the barriers among those.

use std::collections::{BTreeMap, BTreeSet};

use crate::inspect::shm::read::read_segment;
use crate::model::shm::{Segment, SegmentKind};
use crate::model::sync::{
    Barrier, Blocker, Confidence, MissingParty, Primitive, ProcessWaits, Semaphore, WaitKind,
};

use super::sems::{self, SemFacts};

/// An arena larger than this is not searched for a barrier's counters.
const MAX_ARENA_BYTES: u64 = 1 << 20;

/// Threads blocked on each semaphore inode.
fn blockers(waits: &[ProcessWaits]) -> BTreeMap<u64, Vec<Blocker>> {
    let mut map: BTreeMap<u64, Vec<Blocker>> = BTreeMap::new();
    for p in waits {
        for t in &p.threads {
            if t.blocked_on.kind != WaitKind::Futex {
                continue;
            }
            if let Some(inode) = t.blocked_on.details.semaphore {
                map.entry(inode).or_default().push(Blocker {
                    pid: p.pid,
                    tid: t.tid,
                });
            }
        }
    }
    map
}

/// Semaphores (sorted by inode), their primitives, and barriers.
pub fn build(
    segments: &[Segment],
    waits: &[ProcessWaits],
) -> (Vec<Semaphore>, Vec<Primitive>, Vec<Barrier>) {
    let blocked = blockers(waits);
    let mut sem_segments: Vec<&Segment> = segments
        .iter()
        .filter(|s| s.kind == SegmentKind::Semaphore)
        .collect();
    sem_segments.sort_by_key(|s| s.inode);
    let mut semaphores: Vec<Semaphore> = sem_segments
        .iter()
        .map(|seg| {
            let decoded = read_segment(seg, 4096).ok().and_then(|b| sems::decode(&b));
            let threads = blocked.get(&seg.inode).cloned().unwrap_or_default();
            let mut pids: Vec<i32> = threads.iter().map(|b| b.pid).collect();
            pids.dedup();
            Semaphore {
                inode: seg.inode,
                device: seg.device.clone(),
                name: seg.name.clone(),
                deleted: seg.deleted,
                value: decoded.map(|d| d.0),
                waiters: decoded.map(|d| d.1),
                pids: seg.pids.clone(),
                blocked: pids,
                blocked_threads: threads,
                kind: None,
                primitive: None,
            }
        })
        .collect();
    let facts: Vec<SemFacts> = semaphores
        .iter()
        .map(|s| SemFacts {
            inode: s.inode,
            value: s.value,
            waiters: s.waiters,
            pids: s.pids.clone(),
            blocked: s.blocked.clone(),
        })
        .collect();
    let arenas: Vec<&Segment> = segments
        .iter()
        .filter(|s| s.kind == SegmentKind::PyArena)
        .collect();
    let arena_before = |inode: u64| arenas.iter().any(|a| a.inode + 1 == inode);
    let groups = sems::group(&facts, &arena_before);
    let primitives = sems::primitives(&facts, &groups);
    for (index, g) in groups.iter().enumerate() {
        for (offset, role) in g.roles.iter().enumerate() {
            if let Some(s) = semaphores.get_mut(g.start + offset) {
                s.kind = Some(role.to_string());
                s.primitive = Some(index);
            }
        }
    }
    let barriers: Vec<Barrier> = primitives
        .iter()
        .filter(|p| p.kind == "barrier")
        .filter_map(|p| barrier(p, &semaphores, &arenas, waits))
        .collect();
    let mut primitives = primitives;
    for b in barriers
        .iter()
        .filter(|b| b.confidence == Confidence::Confirmed)
    {
        if let Some(p) = primitives
            .iter_mut()
            .find(|p| p.semaphores.contains(&b.semaphore))
        {
            p.confidence = Confidence::Confirmed;
            p.reason.push_str("; its arena counters match its waiters");
        }
    }
    (semaphores, primitives, barriers)
}

fn barrier(
    primitive: &Primitive,
    semaphores: &[Semaphore],
    arenas: &[&Segment],
    waits: &[ProcessWaits],
) -> Option<Barrier> {
    let first = *primitive.semaphores.first()?;
    let wait_inode = *primitive.semaphores.get(3)?;
    let wait_sem = semaphores.iter().find(|s| s.inode == wait_inode)?;
    let waiting = wait_sem.blocked.clone();
    // The arena created for it is the one just before; else the nearest older one.
    let arena = arenas
        .iter()
        .filter(|a| a.inode < first && a.pids.iter().any(|p| primitive.pids.contains(p)))
        .max_by_key(|a| a.inode);
    let mut slot = None;
    if let Some(a) = arena
        && a.size <= MAX_ARENA_BYTES
        && let Ok(bytes) = read_segment(a, MAX_ARENA_BYTES)
        && let Some((offset, confidence)) =
            sems::find_barrier_slot(&bytes, a.inode + 1 == first, waiting.len() as i32)
    {
        let at = offset as usize;
        slot = bytes
            .get(at..at + 8)
            .and_then(sems::barrier_counters)
            .map(|(state, count)| (a.name.clone(), offset, state, count, confidence));
    }
    let waiting_set: BTreeSet<i32> = waiting.iter().copied().collect();
    let missing = primitive
        .pids
        .iter()
        .filter(|p| !waiting_set.contains(p))
        .map(|pid| MissingParty {
            pid: *pid,
            blocked_on: waits
                .iter()
                .find(|w| w.pid == *pid)
                .map(|w| w.blocked_on.clone()),
        })
        .collect();
    let waiting_secs = waits
        .iter()
        .filter(|w| waiting_set.contains(&w.pid))
        .filter_map(|w| w.blocked_on.blocked_secs)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    Some(Barrier {
        semaphore: wait_inode,
        state: slot.as_ref().map(|s| s.2.to_string()),
        arrived: slot.as_ref().map(|s| s.3),
        arena: slot.as_ref().map(|s| s.0.clone()),
        arena_offset: slot.as_ref().map(|s| s.1),
        waiting,
        waiting_secs,
        missing,
        exited: Vec::new(),
        can_never_fill: false,
        confidence: slot.map(|s| s.4).unwrap_or(Confidence::Guess),
    })
}

/// What a semaphore is, in a word or two: `barrier`, `event`, `lock`, `condition woken`.
pub fn what(sem: &Semaphore, primitives: &[Primitive]) -> String {
    let kind = sem
        .primitive
        .and_then(|i| primitives.get(i))
        .map(|p| p.kind.as_str());
    let role = sem.kind.as_deref().unwrap_or("");
    match (kind, role) {
        (Some(k), "condition.wait") => k.to_string(),
        (Some(k), r) if r.starts_with("condition.") || r == "event.flag" => {
            format!("{k} {}", r.rsplit('.').next().unwrap_or(r))
        }
        (Some(k), _) => k.replace("lock-or-rlock", "lock"),
        (None, _) => "semaphore".to_string(),
    }
}

/// A wait's object on semaphore `inode`: `sem 62 (barrier, 2 waiting)`; `what` may be unknown.
pub fn label(inode: u64, what: Option<&str>, waiting: usize) -> String {
    match (what, waiting) {
        (Some(w), 0) => format!("sem {inode} ({w})"),
        (Some(w), n) => format!("sem {inode} ({w}, {n} waiting)"),
        (None, 0) => format!("sem {inode}"),
        (None, n) => format!("sem {inode} ({n} waiting)"),
    }
}
