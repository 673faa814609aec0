//! The waits-for graph between processes, and the deadlocks in it.
//!
//! A process (its main thread) waits for the processes that could end its wait: a child it
//! joins, the holders of the other end of a pipe or socket it reads or writes, and, for an
//! untimed semaphore wait, every other process that maps the semaphore without waiting on it
//! (the holder of a multiprocessing lock is not in shared memory, so this is a guess). A
//! process that is running, sleeping, in a timed wait or in a wait we do not interpret can
//! proceed alone. Processes that cannot proceed and whose every possible waker is equally
//! stuck are deadlocked; each cycle among them is reported.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::sync::{Deadlock, ProcessWaits, WaitKind};

/// One edge: `to` could end the wait of `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub to: i32,
    /// What the wait is on: `sem 62`, `pipe:[27446]`, `join`.
    pub via: String,
    /// The edge rests on a guessed lock holder.
    pub guess: bool,
    pub join: bool,
}

/// The graph: each stuck process's possible wakers. Processes that can proceed alone are
/// absent.
pub type Graph = BTreeMap<i32, Vec<Edge>>;

/// Builds the graph. `sem_mappers(inode)` gives the pids mapping a semaphore, `children(pid)`
/// a process's children.
pub fn build(
    waits: &[ProcessWaits],
    sem_mappers: &dyn Fn(u64) -> Vec<i32>,
    children: &dyn Fn(i32) -> Vec<i32>,
) -> Graph {
    let sem_of = |pid: i32| {
        waits
            .iter()
            .find(|p| p.pid == pid)
            .and_then(|p| p.blocked_on.details.semaphore)
    };
    let mut graph = Graph::new();
    for process in waits {
        let b = &process.blocked_on;
        if b.kind.can_progress_alone() || b.details.timed || b.kind == WaitKind::Stopped {
            continue;
        }
        let object = b.object.clone().unwrap_or_else(|| b.kind.label());
        let edges: Vec<Edge> = match b.kind {
            WaitKind::ChildWait => {
                let targets = match b.details.child {
                    Some(child) => vec![child],
                    None => children(process.pid),
                };
                targets
                    .into_iter()
                    .map(|to| Edge {
                        to,
                        via: "join".into(),
                        guess: false,
                        join: true,
                    })
                    .collect()
            }
            WaitKind::Futex => match b.details.semaphore {
                Some(inode) => sem_mappers(inode)
                    .into_iter()
                    .filter(|pid| sem_of(*pid) != Some(inode))
                    .map(|to| Edge {
                        to,
                        via: object.clone(),
                        guess: true,
                        join: false,
                    })
                    .collect(),
                // A private futex is woken by the process's own threads.
                None => continue,
            },
            WaitKind::Zombie => Vec::new(),
            _ => b
                .details
                .peers
                .iter()
                .map(|to| Edge {
                    to: *to,
                    via: object.clone(),
                    guess: false,
                    join: false,
                })
                .collect(),
        };
        // No known waker: someone outside the tree may end it.
        if !edges.is_empty() {
            graph.insert(process.pid, edges);
        }
    }
    graph
}

/// The processes that are stuck: in the graph, with every waker stuck too.
pub fn stuck(graph: &Graph) -> BTreeSet<i32> {
    let mut stuck: BTreeSet<i32> = graph.keys().copied().collect();
    loop {
        let free: Vec<i32> = stuck
            .iter()
            .copied()
            .filter(|pid| {
                graph
                    .get(pid)
                    .is_some_and(|edges| edges.iter().any(|e| !stuck.contains(&e.to)))
            })
            .collect();
        if free.is_empty() {
            return stuck;
        }
        for pid in free {
            stuck.remove(&pid);
        }
    }
}

/// The shortest cycle through `start` inside `within` (fewest joins among equals).
fn cycle_from(graph: &Graph, start: i32, within: &BTreeSet<i32>) -> Option<Vec<(i32, Edge)>> {
    // Breadth first over (node, joins so far); paths kept per node.
    let mut best: Option<Vec<(i32, Edge)>> = None;
    let mut queue: VecDeque<(i32, Vec<(i32, Edge)>)> = VecDeque::from([(start, Vec::new())]);
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = queue.pop_front() {
        if path.len() > within.len() || best.as_ref().is_some_and(|b| path.len() >= b.len()) {
            continue;
        }
        for edge in graph.get(&node).into_iter().flatten() {
            if !within.contains(&edge.to) {
                continue;
            }
            let mut next = path.clone();
            next.push((node, edge.clone()));
            if edge.to == start {
                let joins = |p: &Vec<(i32, Edge)>| p.iter().filter(|(_, e)| e.join).count();
                let better = match &best {
                    None => true,
                    Some(b) => {
                        next.len() < b.len() || (next.len() == b.len() && joins(&next) < joins(b))
                    }
                };
                if better {
                    best = Some(next);
                }
            } else if seen.insert((edge.to, next.iter().filter(|(_, e)| e.join).count())) {
                queue.push_back((edge.to, next));
            }
        }
    }
    best
}

/// The deadlocks of the graph: one per group of stuck processes that wait for each other,
/// named by its shortest cycle (preferring lock and channel edges over joins).
pub fn deadlocks(graph: &Graph) -> Vec<Deadlock> {
    let stuck = stuck(graph);
    let mut found: Vec<Deadlock> = Vec::new();
    let mut covered = BTreeSet::new();
    let mut candidates: Vec<Vec<(i32, Edge)>> = stuck
        .iter()
        .filter_map(|pid| cycle_from(graph, *pid, &stuck))
        .collect();
    candidates.sort_by_key(|c| (c.iter().filter(|(_, e)| e.join).count(), c.len()));
    for cycle in candidates {
        let pids: BTreeSet<i32> = cycle.iter().map(|(p, _)| *p).collect();
        if pids.iter().any(|p| covered.contains(p)) {
            continue;
        }
        covered.extend(pids.iter().copied());
        found.push(Deadlock {
            pids: pids.into_iter().collect(),
            cycle: cycle
                .iter()
                .map(|(from, e)| format!("{from} waits for {} ({})", e.to, e.via))
                .collect(),
            guess: cycle.iter().any(|(_, e)| e.guess),
        });
    }
    found
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
