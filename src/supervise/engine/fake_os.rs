//! A scripted operating system for the engine's unit tests: processes are rows of a table,
//! time moves only when a test moves it, and a test says how each process answers a
//! signal (dies, exits, ignores it, or was already gone: ESRCH), when reaping or walking
//! the tree is interrupted (EINTR), and which spawns fail. Its pids start above any
//! kernel's `pid_max`, so a call that slipped past the fake into the real OS finds nothing.
//!
//! What the fake claims about the real OS, and the integration tests that hold it to it,
//! are listed in docs/ARCHITECTURE.md ("The engine's OS seam").

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::inspect::proc::ProcStat;
use crate::model::ExitStatus;
use crate::supervise::os::{Os, SpawnRequest, Started, Target};
use crate::supervise::pidfd::SignalError;
use crate::supervise::reap::{BATCH, Reaped};

/// The engine's pid in the fake world.
pub(super) const ENGINE: i32 = 4_999_999;
/// Above `pid_max` (at most 2^22 = 4,194,304).
const FIRST_PID: i32 = 5_000_000;

/// How a process answers one signal (without one for it: killed by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reaction {
    /// A handler that ends the process with this status.
    Exit(ExitStatus),
    /// Caught and ignored: keeps running (SIGKILL cannot be ignored).
    Ignore,
    /// It had ended just before: the signal finds ESRCH, the process ends with this status.
    Vanish(ExitStatus),
}

#[derive(Debug)]
struct Proc {
    ppid: i32,
    start_time: u64,
    /// Ended, not reaped yet.
    zombie: Option<ExitStatus>,
    reactions: HashMap<i32, Reaction>,
}

/// One signal the engine tried to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Attempt {
    pub pid: i32,
    pub signo: i32,
    pub result: Result<(), SignalError>,
}

#[derive(Debug)]
struct World {
    now: Instant,
    next_pid: i32,
    procs: BTreeMap<i32, Proc>,
    /// (pool, index, pid) of every spawn, in order.
    spawned: Vec<(String, u32, i32)>,
    fail_spawns: u32,
    reap_errors: VecDeque<io::ErrorKind>,
    walk_errors: VecDeque<io::ErrorKind>,
    interrupted_sends: u32,
    attempts: Vec<Attempt>,
}

/// The fake; clones share one world (the engine owns one, the test keeps another).
#[derive(Clone, Debug)]
pub(super) struct FakeOs(Arc<Mutex<World>>);

impl FakeOs {
    pub fn new() -> FakeOs {
        FakeOs(Arc::new(Mutex::new(World {
            now: Instant::now(),
            next_pid: FIRST_PID,
            procs: BTreeMap::new(),
            spawned: Vec::new(),
            fail_spawns: 0,
            reap_errors: VecDeque::new(),
            walk_errors: VecDeque::new(),
            interrupted_sends: 0,
            attempts: Vec::new(),
        })))
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn advance(&self, by: Duration) {
        self.world().now += by;
    }

    /// The pid of the latest spawn of worker `index` of `pool`.
    pub fn pid_of(&self, pool: &str, index: u32) -> i32 {
        let world = self.world();
        let found = world
            .spawned
            .iter()
            .rev()
            .find(|(p, i, _)| p == pool && *i == index);
        found.map_or(0, |(_, _, pid)| *pid)
    }

    /// How many workers were spawned so far.
    pub fn spawns(&self) -> usize {
        self.world().spawned.len()
    }

    /// `pid` ends on its own.
    pub fn exit(&self, pid: i32, status: ExitStatus) {
        self.world().end(pid, status);
    }

    pub fn react(&self, pid: i32, signo: i32, reaction: Reaction) {
        if let Some(proc) = self.world().procs.get_mut(&pid) {
            proc.reactions.insert(signo, reaction);
        }
    }

    /// A new child of `parent`; its pid.
    pub fn fork(&self, parent: i32) -> i32 {
        self.world().add(parent)
    }

    pub fn is_running(&self, pid: i32) -> bool {
        self.world()
            .procs
            .get(&pid)
            .is_some_and(|p| p.zombie.is_none())
    }

    pub fn fail_next_spawns(&self, count: u32) {
        self.world().fail_spawns = count;
    }

    pub fn interrupt_next_reap(&self) {
        self.world()
            .reap_errors
            .push_back(io::ErrorKind::Interrupted);
    }

    pub fn interrupt_next_walk(&self) {
        self.world()
            .walk_errors
            .push_back(io::ErrorKind::Interrupted);
    }

    pub fn interrupt_next_sends(&self, count: u32) {
        self.world().interrupted_sends = count;
    }

    /// Every signal the engine tried, EINTR attempts included.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.world().attempts.clone()
    }
}

impl World {
    fn add(&mut self, ppid: i32) -> i32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        let proc = Proc {
            ppid,
            start_time: 1000 + pid as u64,
            zombie: None,
            reactions: HashMap::new(),
        };
        self.procs.insert(pid, proc);
        pid
    }

    /// `pid` ends: the engine's children stay as zombies until reaped; others are reaped by
    /// their parent at once. Its children go to the engine, the subreaper.
    fn end(&mut self, pid: i32, status: ExitStatus) {
        let Some(proc) = self.procs.get_mut(&pid) else {
            return;
        };
        if proc.zombie.is_some() {
            return;
        }
        proc.zombie = Some(status);
        if proc.ppid != ENGINE {
            self.procs.remove(&pid);
        }
        for child in self.procs.values_mut() {
            if child.ppid == pid {
                child.ppid = ENGINE;
            }
        }
    }

    fn stat(&self, pid: i32) -> Option<ProcStat> {
        let proc = self.procs.get(&pid)?;
        let mut stat = ProcStat::fixture(pid, proc.ppid, proc.start_time);
        if proc.zombie.is_some() {
            stat.state = 'Z';
        }
        Some(stat)
    }

    fn deliver(&mut self, target: Target<'_>, signo: i32) -> Result<(), SignalError> {
        if self.interrupted_sends > 0 {
            self.interrupted_sends -= 1;
            return Err(SignalError::Interrupted);
        }
        let pid = target.pid();
        let Some(proc) = self.procs.get(&pid).filter(|p| p.zombie.is_none()) else {
            return Err(SignalError::Gone);
        };
        match target {
            Target::Verified {
                start_time: Some(expected),
                ..
            } if expected != proc.start_time => {
                return Err(SignalError::Reused {
                    pid,
                    expected,
                    found: proc.start_time,
                });
            }
            Target::Child { .. } if proc.ppid != ENGINE => return Err(SignalError::Gone),
            _ => {}
        }
        let killed = ExitStatus::Signaled {
            signal: signo,
            core_dumped: false,
        };
        match proc.reactions.get(&signo).copied() {
            Some(Reaction::Vanish(status)) => {
                self.end(pid, status);
                return Err(SignalError::Gone);
            }
            _ if signo == libc::SIGKILL => self.end(pid, killed),
            None => self.end(pid, killed),
            Some(Reaction::Exit(status)) => self.end(pid, status),
            Some(Reaction::Ignore) => {}
        }
        Ok(())
    }
}

impl Os for FakeOs {
    fn now(&self) -> Instant {
        self.world().now
    }

    fn spawn(&self, request: &SpawnRequest<'_>) -> io::Result<Started> {
        let mut world = self.world();
        if world.fail_spawns > 0 {
            world.fail_spawns -= 1;
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "fake: no such program",
            ));
        }
        let pid = world.add(ENGINE);
        let start_time = world.procs.get(&pid).map(|p| p.start_time);
        let name = request.spec.name.clone();
        world.spawned.push((name, request.index, pid));
        Ok(Started {
            pid,
            pidfd: None,
            start_time,
            stat: None,
            stdout: None,
            stderr: None,
            pty: false,
        })
    }

    fn reap(&self) -> io::Result<(Vec<Reaped>, bool)> {
        let mut world = self.world();
        if let Some(kind) = world.reap_errors.pop_front() {
            return Err(kind.into());
        }
        let ended: Vec<(i32, ExitStatus)> = world
            .procs
            .iter()
            .filter(|(_, p)| p.ppid == ENGINE)
            .filter_map(|(pid, p)| p.zombie.map(|status| (*pid, status)))
            .take(BATCH)
            .collect();
        let more = ended.len() == BATCH;
        let reaped = ended
            .into_iter()
            .map(|(pid, status)| {
                let stat = world.stat(pid);
                world.procs.remove(&pid);
                Reaped { pid, status, stat }
            })
            .collect();
        Ok((reaped, more))
    }

    fn has_children(&self) -> bool {
        self.world().procs.values().any(|p| p.ppid == ENGINE)
    }

    fn send_signal(&self, target: Target<'_>, signo: i32) -> Result<(), SignalError> {
        let mut world = self.world();
        let result = world.deliver(target, signo);
        world.attempts.push(Attempt {
            pid: target.pid(),
            signo,
            result: result.clone(),
        });
        result
    }

    fn read_stat(&self, pid: i32) -> io::Result<ProcStat> {
        self.world()
            .stat(pid)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn descendants(&self, root: i32) -> io::Result<Vec<ProcStat>> {
        let mut world = self.world();
        if let Some(kind) = world.walk_errors.pop_front() {
            return Err(kind.into());
        }
        let mut found = Vec::new();
        let mut parents = vec![root];
        while let Some(parent) = parents.pop() {
            for (pid, proc) in &world.procs {
                if proc.ppid == parent {
                    parents.push(*pid);
                    found.extend(world.stat(*pid));
                }
            }
        }
        found.sort_by_key(|s| s.pid);
        Ok(found)
    }
}
