//! Zombies waiting to be collected, for every source. A process is a zombie from its exit
//! until its parent reaps it; the kernel's connector and ptrace report the exit, `/proc`
//! polling sees the `Z` state, but nothing announces the reap of a process forkscope did not
//! reap itself. The set remembers each zombie (pid, start time, parent) and, when asked,
//! reads its `/proc` entry: gone (or the pid now names another process) means collected,
//! by the parent it had last. Work per check is one `stat` per waiting zombie.

use std::collections::HashMap;

use crate::inspect::proc::ProcStat;
use crate::model::EventBody;

use super::kernel::ProcReader;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Zombie {
    start: Option<u64>,
    parent: i32,
}

/// Same process, when both start times are known; a missing one matches.
pub fn same_start(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// The zombies of the tree whose `exit` was reported and whose `reap` was not yet.
#[derive(Debug, Default)]
pub struct ZombieSet {
    waiting: HashMap<i32, Zombie>,
}

impl ZombieSet {
    /// `pid` (start time `start`) ended as a child of `parent` and waits to be collected.
    pub fn insert(&mut self, pid: i32, start: Option<u64>, parent: i32) {
        self.waiting.insert(pid, Zombie { start, parent });
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether this identity is a zombie already reported.
    pub fn contains(&self, pid: i32, start: Option<u64>) -> bool {
        self.waiting
            .get(&pid)
            .is_some_and(|z| same_start(z.start, start))
    }

    /// Forkscope reaped `pid` itself: true (and forgotten) when it was a reported zombie.
    pub fn collected_by_engine(&mut self, pid: i32, start: Option<u64>) -> bool {
        if self.contains(pid, start) {
            self.waiting.remove(&pid);
            return true;
        }
        false
    }

    /// A new process got `pid`: the zombie that held it was collected before.
    pub fn pid_reused(&mut self, pid: i32) -> Option<EventBody> {
        let zombie = self.waiting.remove(&pid)?;
        Some(EventBody::Reap {
            pid,
            by: zombie.parent,
        })
    }

    /// Reads each zombie's `/proc` entry; returns a `reap` for each one that is gone.
    pub fn check(&mut self, reader: &impl ProcReader) -> Vec<EventBody> {
        self.collect_gone(|pid| reader.stat(pid))
    }

    /// As [`ZombieSet::check`], against a scan of all of `/proc` the caller already made.
    pub fn check_in(&mut self, all: &HashMap<i32, ProcStat>) -> Vec<EventBody> {
        self.collect_gone(|pid| all.get(&pid).cloned())
    }

    /// The session is over and nothing of the tree is left: every zombie was collected.
    pub fn finish(&mut self) -> Vec<EventBody> {
        self.collect_gone(|_| None)
    }

    fn collect_gone(&mut self, stat: impl Fn(i32) -> Option<ProcStat>) -> Vec<EventBody> {
        let mut reaped = Vec::new();
        for (pid, zombie) in self.waiting.iter_mut() {
            match stat(*pid) {
                Some(s) if same_start(zombie.start, Some(s.start_time)) => {
                    // Still waiting; its parent may have changed (it ended, the zombie was
                    // adopted).
                    zombie.parent = s.ppid;
                }
                _ => reaped.push(EventBody::Reap {
                    pid: *pid,
                    by: zombie.parent,
                }),
            }
        }
        reaped.sort_unstable_by_key(|e| e.pid());
        for event in &reaped {
            if let Some(pid) = event.pid() {
                self.waiting.remove(&pid);
            }
        }
        reaped
    }
}

/// Of the known children of a process that just ended (`(pid, start time)` each), those now
/// adopted by another parent, as `reparent` events; `set_parent(pid, new_parent)` is called
/// for each. Children already gone are left to their own exit.
pub fn adopted_children(
    reader: &impl ProcReader,
    dead_parent: i32,
    children: impl IntoIterator<Item = (i32, Option<u64>)>,
    mut set_parent: impl FnMut(i32, i32),
) -> Vec<EventBody> {
    let mut events: Vec<EventBody> = children
        .into_iter()
        .filter_map(|(pid, start)| {
            let stat = reader.stat(pid)?;
            (same_start(start, Some(stat.start_time)) && stat.ppid != dead_parent).then_some(
                EventBody::Reparent {
                    pid,
                    from: dead_parent,
                    to: stat.ppid,
                },
            )
        })
        .collect();
    events.sort_unstable_by_key(|e| e.pid());
    for event in &events {
        if let EventBody::Reparent { pid, to, .. } = event {
            set_parent(*pid, *to);
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Fake(RefCell<HashMap<i32, ProcStat>>);

    impl Fake {
        fn set(&self, pid: i32, ppid: i32, start: u64, state: char) {
            let stat = ProcStat {
                state,
                ..ProcStat::fixture(pid, ppid, start)
            };
            self.0.borrow_mut().insert(pid, stat);
        }
    }

    impl ProcReader for Fake {
        fn stat(&self, pid: i32) -> Option<ProcStat> {
            self.0.borrow().get(&pid).cloned()
        }
        fn argv(&self, _pid: i32) -> Option<Vec<String>> {
            None
        }
    }

    #[test]
    fn a_zombie_is_reaped_by_its_last_parent_once_gone() {
        let proc = Fake::default();
        let mut set = ZombieSet::default();
        proc.set(20, 10, 5, 'Z');
        set.insert(20, Some(5), 10);
        assert!(set.check(&proc).is_empty(), "still a zombie");
        // Its parent ended: the zombie was adopted by 1, which collects it.
        proc.set(20, 1, 5, 'Z');
        assert!(set.check(&proc).is_empty());
        proc.0.borrow_mut().remove(&20);
        assert_eq!(set.check(&proc), vec![EventBody::Reap { pid: 20, by: 1 }]);
        assert!(set.is_empty());
        assert!(set.check(&proc).is_empty(), "reported once");
    }

    #[test]
    fn a_reused_pid_means_the_zombie_was_collected() {
        let proc = Fake::default();
        let mut set = ZombieSet::default();
        set.insert(20, Some(5), 10);
        proc.set(20, 10, 99, 'S');
        assert_eq!(set.check(&proc), vec![EventBody::Reap { pid: 20, by: 10 }]);
    }

    #[test]
    fn the_engine_collecting_a_zombie_removes_it() {
        let mut set = ZombieSet::default();
        set.insert(20, Some(5), 10);
        assert!(!set.collected_by_engine(20, Some(6)), "another identity");
        assert!(set.collected_by_engine(20, Some(5)));
        assert!(set.finish().is_empty());
        set.insert(21, None, 10);
        assert_eq!(set.finish(), vec![EventBody::Reap { pid: 21, by: 10 }]);
    }

    #[test]
    fn children_whose_parent_changed_are_adopted() {
        let proc = Fake::default();
        proc.set(31, 1, 7, 'S');
        proc.set(32, 30, 8, 'S');
        proc.set(33, 1, 100, 'S'); // pid reused: not the child we knew
        let mut moved = Vec::new();
        let events = adopted_children(
            &proc,
            30,
            [(31, Some(7)), (32, Some(8)), (33, Some(9))],
            |pid, to| moved.push((pid, to)),
        );
        assert_eq!(moved, vec![(31, 1)]);
        assert_eq!(
            events,
            vec![EventBody::Reparent {
                pid: 31,
                from: 30,
                to: 1
            }]
        );
    }
}
