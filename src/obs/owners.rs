//! Which worker slot a pid belongs to, folded from `spawn`, `fork` and `exit` events: a
//! worker's descendants (and the lines they write) count for the worker that started them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::model::EventBody;

/// A worker slot: pool name and worker index.
pub type Slot = (Arc<str>, u32);

/// Ended pids remembered for late output (a drain after a descendant's `exit`).
const ENDED_KEPT: usize = 4096;

/// The fold.
#[derive(Debug, Default)]
pub struct Owners {
    /// pid -> (slot, generation); the generation tells a reused pid from the one that ended.
    by_pid: HashMap<i32, (Slot, u64)>,
    ended: VecDeque<(i32, u64)>,
    generation: u64,
    pools: HashMap<String, Arc<str>>,
}

impl Owners {
    /// Applies one event; returns the slot a `spawn` started.
    pub fn apply(&mut self, body: &EventBody) -> Option<Slot> {
        match body {
            EventBody::Spawn {
                pid, pool, worker, ..
            } => {
                let name = self.pool_name(pool);
                let slot = (name, *worker);
                self.insert(*pid, slot.clone());
                Some(slot)
            }
            EventBody::Fork { pid, ppid, .. } => {
                if let Some(slot) = self.slot_of(*ppid).cloned() {
                    self.insert(*pid, slot);
                }
                None
            }
            EventBody::Exit { pid, .. } => {
                if let Some((_, generation)) = self.by_pid.get(pid) {
                    self.ended.push_back((*pid, *generation));
                }
                while self.ended.len() > ENDED_KEPT {
                    let Some((old, generation)) = self.ended.pop_front() else {
                        break;
                    };
                    if self.by_pid.get(&old).is_some_and(|(_, g)| *g == generation) {
                        self.by_pid.remove(&old);
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// The slot of a pid of the tree, if it descends from a worker.
    pub fn slot_of(&self, pid: i32) -> Option<&Slot> {
        self.by_pid.get(&pid).map(|(slot, _)| slot)
    }

    fn insert(&mut self, pid: i32, slot: Slot) {
        self.generation += 1;
        self.by_pid.insert(pid, (slot, self.generation));
    }

    fn pool_name(&mut self, pool: &str) -> Arc<str> {
        if let Some(name) = self.pools.get(pool) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(pool);
        self.pools.insert(pool.to_string(), name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExitStatus, TrackSource};

    fn spawn(pid: i32, worker: u32) -> EventBody {
        EventBody::Spawn {
            pid,
            ppid: 1,
            pool: "p".into(),
            worker,
            argv: Vec::new(),
            start_time: None,
            restarts: 0,
        }
    }

    fn exit(pid: i32) -> EventBody {
        EventBody::Exit {
            pid,
            ppid: 1,
            status: ExitStatus::Exited(0),
            pool: None,
            worker: None,
            source: TrackSource::Engine,
            zombie: false,
        }
    }

    #[test]
    fn descendants_belong_to_their_worker_and_ended_pids_are_bounded() {
        let mut owners = Owners::default();
        owners.apply(&spawn(10, 3));
        owners.apply(&EventBody::Fork {
            pid: 11,
            ppid: 10,
            start_time: None,
            source: TrackSource::Kernel,
        });
        assert_eq!(owners.slot_of(11).map(|s| s.1), Some(3));
        owners.apply(&exit(11));
        // Late lines of an ended pid still find their worker...
        assert_eq!(owners.slot_of(11).map(|s| s.1), Some(3));
        // ...until enough other pids ended after it.
        for pid in 100..(100 + ENDED_KEPT as i32) {
            owners.apply(&spawn(pid, 0));
            owners.apply(&exit(pid));
        }
        assert!(owners.slot_of(11).is_none());
        assert!(owners.slot_of(10).is_some());
        // A reused pid is the new process's.
        owners.apply(&spawn(100, 7));
        assert_eq!(owners.slot_of(100).map(|s| s.1), Some(7));
    }
}
