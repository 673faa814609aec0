//! Semaphores and the Python `multiprocessing` primitives they form.
//!
//! A glibc `sem_t` (x86-64 and aarch64): u64 at 0 = value (low 32 bits) | waiters (high 32),
//! i32 at 8 = `private` (128 for a process-shared semaphore). The semaphore files carry no
//! type, so primitives are recognised by how CPython 3.8-3.13 creates them, one file after
//! another (tmpfs gives consecutive inode numbers to files created in a row):
//!
//! | primitive | semaphores, in creation order |
//! |---|---|
//! | `Lock`, `RLock` | one binary semaphore (which of the two is not in shared memory) |
//! | `Semaphore(n)` | one semaphore |
//! | `Condition()` | RLock, sleeping count, woken count, wait semaphore |
//! | `Event` | Lock, sleeping, woken, wait (its Condition), flag |
//! | `Barrier` | an 8-byte block in a heap arena (`_state`, `_count`), then a Condition |
//! | `Queue` | (a pipe), rlock, wlock, a BoundedSemaphore(maxsize) (2^31-1 by default) |
//!
//! Grouping rests on that order and on the values, so it is a guess unless the memory
//! confirms it (a barrier whose arena counters match its waiters).

use crate::model::sync::{Confidence, Primitive};

/// The facts about one semaphore that grouping uses.
#[derive(Clone, Debug, PartialEq)]
pub struct SemFacts {
    pub inode: u64,
    pub value: Option<u32>,
    pub waiters: Option<u32>,
    pub pids: Vec<i32>,
    pub blocked: Vec<i32>,
}

/// Decodes a `sem_t`: (value, waiters); `None` when shorter than 8 bytes or the `private`
/// field (when present) is neither 0 nor 128.
pub fn decode(bytes: &[u8]) -> Option<(u32, u32)> {
    let word = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    if let Some(private) = bytes.get(8..12) {
        let private = u32::from_le_bytes(private.try_into().ok()?);
        if private != 0 && private != 128 {
            return None;
        }
    }
    Some((word as u32, (word >> 32) as u32))
}

/// The default `maxsize` of a Queue's slot semaphore is `SEM_VALUE_MAX`; any semaphore this
/// high is a queue's counter in practice.
const QUEUE_SLOTS_MIN: u32 = 1 << 30;

fn binary(s: &SemFacts) -> bool {
    s.value.is_some_and(|v| v <= 1)
}

fn small(s: &SemFacts) -> bool {
    s.value.is_some_and(|v| v < QUEUE_SLOTS_MIN)
}

/// One recognised group: its kind, the roles of its semaphores, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub kind: &'static str,
    pub roles: Vec<&'static str>,
    pub start: usize,
    pub confidence: Confidence,
    pub reason: String,
}

const CONDITION: [&str; 4] = [
    "condition.lock",
    "condition.sleeping",
    "condition.woken",
    "condition.wait",
];

/// Groups semaphores, sorted by inode, into primitives. `arena_before(inode)` says whether a
/// Python heap arena was created just before the semaphore `inode` (a barrier's state).
///
/// Each run of consecutive inodes is cut into candidate primitives at the least cost: a
/// semaphore left alone costs 1, a recognised primitive costs little, plus a penalty for
/// each value that does not fit its role (a Condition's lock with waiters, a wait semaphore
/// above 1, fewer sleepers than waiters). Ties go to the earlier, larger primitive.
pub fn group(sems: &[SemFacts], arena_before: &dyn Fn(u64) -> bool) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < sems.len() {
        let run_len = sems[i..]
            .windows(2)
            .take_while(|w| w[1].inode == w[0].inode + 1)
            .count()
            + 1;
        let run = &sems[i..i + run_len];
        // best[k]: the cheapest cut of run[k..] (cost, groups in order).
        let mut best: Vec<(f64, Vec<Group>)> = vec![(0.0, Vec::new()); run.len() + 1];
        for k in (0..run.len()).rev() {
            let mut choice: Option<(f64, Vec<Group>)> = None;
            for (cost, g) in candidates(&run[k..], arena_before) {
                let n = g.roles.len();
                let total = cost + best[k + n].0;
                if choice.as_ref().is_none_or(|c| total < c.0 - 1e-9) {
                    let mut gs = vec![Group { start: i + k, ..g }];
                    gs.extend(best[k + n].1.iter().cloned());
                    choice = Some((total, gs));
                }
            }
            best[k] = choice.unwrap_or_default();
        }
        groups.append(&mut best[0].1);
        i += run_len;
    }
    groups
}

/// The primitives that could start at `run[0]`, with their costs, larger ones first.
fn candidates(run: &[SemFacts], arena_before: &dyn Fn(u64) -> bool) -> Vec<(f64, Group)> {
    let guess = |kind, roles: Vec<&'static str>, reason: &str| Group {
        kind,
        roles,
        start: 0,
        confidence: Confidence::Guess,
        reason: reason.to_string(),
    };
    let condition = condition_penalty(run);
    let mut out = Vec::new();
    if let Some(penalty) = condition {
        if run.len() >= 5 && binary(&run[4]) {
            let mut roles = CONDITION.to_vec();
            roles.push("event.flag");
            out.push((
                0.2 + penalty,
                guess(
                    "event",
                    roles,
                    "five semaphores created in a row, the last binary (Event: Lock, Condition sems, flag)",
                ),
            ));
        }
        if arena_before(run[0].inode) {
            // The arena is good evidence: a barrier then a lone lock beats an Event.
            out.push((
                penalty - 0.5,
                guess(
                    "barrier",
                    CONDITION.to_vec(),
                    "a heap arena then four semaphores created in a row (Barrier: _state/_count block, then its Condition)",
                ),
            ));
        }
        out.push((
            0.1 + penalty,
            guess(
                "condition",
                CONDITION.to_vec(),
                "four semaphores created in a row, the first binary (Condition: RLock, sleeping, woken, wait)",
            ),
        ));
    }
    if run.len() >= 3
        && binary(&run[0])
        && binary(&run[1])
        && run[2].value.is_some_and(|v| v >= QUEUE_SLOTS_MIN)
    {
        out.push((
            0.0,
            guess(
                "queue",
                vec!["queue.rlock", "queue.wlock", "queue.slots"],
                "two binary semaphores then one near SEM_VALUE_MAX, created in a row (Queue: rlock, wlock, BoundedSemaphore(maxsize))",
            ),
        ));
    }
    let lone = match run.first() {
        Some(s) if binary(s) => guess(
            "lock-or-rlock",
            vec!["lock"],
            "a lone binary semaphore: a Lock, an RLock, or a Semaphore(1) (not told apart in shared memory)",
        ),
        _ => guess(
            "semaphore",
            vec!["semaphore"],
            "a lone semaphore with a count above 1",
        ),
    };
    out.push((1.0, lone));
    out
}

/// `None` when `run` cannot start a Condition; else the penalty of its values.
fn condition_penalty(run: &[SemFacts]) -> Option<f64> {
    let c = run.get(..4)?;
    if !(binary(&c[0]) && small(&c[1]) && small(&c[2]) && small(&c[3])) {
        return None;
    }
    let mut penalty = 0.0;
    if c[0].waiters.unwrap_or(0) > 0 {
        penalty += 0.6;
    }
    if c[3].value.unwrap_or(0) > 1 {
        penalty += 0.6;
    }
    if c[1].value.unwrap_or(0) < c[3].waiters.unwrap_or(0) {
        penalty += 0.3;
    }
    Some(penalty)
}

/// Builds the [`Primitive`]s of `groups` (semaphores sorted by inode, as grouped).
pub fn primitives(sems: &[SemFacts], groups: &[Group]) -> Vec<Primitive> {
    groups
        .iter()
        .map(|g| {
            let members = &sems[g.start..(g.start + g.roles.len()).min(sems.len())];
            let mut waiting: Vec<i32> = members.iter().flat_map(|s| s.blocked.clone()).collect();
            waiting.sort_unstable();
            waiting.dedup();
            let mut pids: Vec<i32> = members.iter().flat_map(|s| s.pids.clone()).collect();
            pids.sort_unstable();
            pids.dedup();
            Primitive {
                kind: g.kind.to_string(),
                semaphores: members.iter().map(|s| s.inode).collect(),
                confidence: g.confidence,
                reason: g.reason.clone(),
                waiting,
                pids,
                state: state_of(g.kind, members),
                pipe: None,
            }
        })
        .collect()
}

fn state_of(kind: &str, members: &[SemFacts]) -> Option<String> {
    let value = |i: usize| members.get(i).and_then(|s| s.value);
    match kind {
        "lock-or-rlock" => value(0).map(|v| if v == 0 { "held" } else { "free" }.into()),
        "semaphore" => value(0).map(|v| format!("value {v}")),
        "event" => value(4).map(|v| if v > 0 { "set" } else { "clear" }.into()),
        "condition" | "barrier" => value(0).map(|v| {
            if v == 0 {
                "lock held".into()
            } else {
                "lock free".into()
            }
        }),
        "queue" => value(2).map(|v| {
            let queued = (i32::MAX as u32).saturating_sub(v);
            format!("{queued} put and not yet taken (default maxsize)")
        }),
        _ => None,
    }
}

/// A barrier's `_state`, `_count` read from 8 arena bytes: (state name, count), when
/// plausible (state one of 0, 1, -1, -2; count not negative).
pub fn barrier_counters(bytes: &[u8]) -> Option<(&'static str, i32)> {
    let state = i32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let count = i32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let name = match state {
        0 => "filling",
        1 => "draining",
        -1 => "resetting",
        -2 => "broken",
        _ => return None,
    };
    (count >= 0).then_some((name, count))
}

/// Where in an arena a barrier with `waiting` waiters keeps its counters: offset 0 when the
/// arena was created for it, else the only 8-aligned slot that reads `filling, waiting`.
pub fn find_barrier_slot(arena: &[u8], fresh: bool, waiting: i32) -> Option<(u64, Confidence)> {
    if fresh {
        let (_, count) = barrier_counters(arena)?;
        let confidence = if waiting > 0 && count == waiting {
            Confidence::Confirmed
        } else {
            Confidence::Guess
        };
        return Some((0, confidence));
    }
    if waiting <= 0 {
        return None;
    }
    let mut found = arena
        .chunks_exact(8)
        .take(1 << 13)
        .enumerate()
        .filter(|(_, c)| barrier_counters(c) == Some(("filling", waiting)));
    let (first, _) = found.next()?;
    found
        .next()
        .is_none()
        .then_some((first as u64 * 8, Confidence::Guess))
}

#[cfg(test)]
#[path = "sems_tests.rs"]
mod tests;
