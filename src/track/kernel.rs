//! The tree filter for kernel process events: keeps the set of members (the engine's
//! descendants, by pid with their start time), turns the connector's system-wide events into
//! `fork`/`exec`/`exit` events for members only, dedupes against the engine's own reaping,
//! and reconciles with a `/proc` scan so that dropped events cannot corrupt the tree.
//!
//! The dedupe rule (see `docs/tracking.md`): the engine reaps its own children (workers and
//! orphans re-parented to it) and reports them exactly; a kernel exit whose parent is the
//! engine is therefore left to the reap. The kernel queues its exit message *after* the
//! process became a zombie (`proc_exit_connector` follows `exit_notify` in `do_exit`), so an
//! orphan re-parented at the very moment it died can be reported by both; kernel-reported
//! exits are remembered until the same (pid, start time) is reaped or gone from `/proc`, so
//! each process gets exactly one `exit`.
//!
//! Pure apart from the [`ProcReader`] it is given (the real one reads `/proc`).

use std::collections::{HashMap, HashSet};

use crate::inspect::proc::{self, ProcStat};
use crate::model::{EventBody, ExitStatus, TrackSource};

use super::netlink::{ProcEvent, ProcMessage};
use super::zombies::{ZombieSet, adopted_children, same_start};

/// What the tracker needs to read about a live process.
pub trait ProcReader {
    fn stat(&self, pid: i32) -> Option<ProcStat>;
    fn argv(&self, pid: i32) -> Option<Vec<String>>;
}

/// Reads the real `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveProc;

impl ProcReader for LiveProc {
    fn stat(&self, pid: i32) -> Option<ProcStat> {
        proc::read_stat(pid).ok()
    }

    fn argv(&self, pid: i32) -> Option<Vec<String>> {
        proc::read_cmdline(pid).ok()
    }
}

#[derive(Clone, Debug)]
struct Member {
    ppid: i32,
    start_time: Option<u64>,
    /// Forked by the engine itself (a worker): its spawn event announced it, its first exec
    /// is the spawn's own.
    forked_by_engine: bool,
    execs: u32,
    /// The kernel reported its exit with the engine as parent: the reap will report it.
    awaiting_reap: bool,
    /// Added by a `/proc` scan (its kernel fork event may still be on its way).
    from_scan: bool,
}

/// What the engine should do with a child it reaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReapVerdict {
    /// Report the exit; `known` says whether its birth was reported (else report it too).
    Report { ppid: i32, known: bool },
    /// The kernel's exit event already reported this process.
    AlreadyReported,
}

/// An event produced by the tracker, with the kernel's timestamp when it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Tracked {
    pub timestamp_ns: Option<u64>,
    pub body: EventBody,
}

/// The members of the tree and the exits reported from kernel events.
#[derive(Debug)]
pub struct KernelTracker {
    root: i32,
    members: HashMap<i32, Member>,
    /// Exits reported from kernel events, waiting to be collected (zombies), until their
    /// reap is seen: the engine reaping the same identity, or `/proc` no longer having it.
    reported: ZombieSet,
    /// Members (and the engine) seen forking: their end may leave orphans to look for.
    parents: HashSet<i32>,
}

/// The argv to report for `pid` (start time `start`): its cmdline, else `[comm]` (a zombie
/// or kernel thread), else `[?]` when it is already gone or the pid was reused.
pub fn argv_of(reader: &impl ProcReader, pid: i32, start: Option<u64>) -> Vec<String> {
    let Some(stat) = reader.stat(pid) else {
        return vec!["[?]".into()];
    };
    if !same_start(start, Some(stat.start_time)) {
        return vec!["[?]".into()];
    }
    reader
        .argv(pid)
        .filter(|argv| !argv.is_empty())
        .unwrap_or_else(|| vec![format!("[{}]", stat.comm)])
}

impl KernelTracker {
    /// A tracker for the tree under `root` (the engine's pid).
    pub fn new(root: i32) -> KernelTracker {
        KernelTracker {
            root,
            members: HashMap::new(),
            reported: ZombieSet::default(),
            parents: HashSet::new(),
        }
    }

    /// Whether `pid` is a live member of the tree.
    pub fn is_member(&self, pid: i32) -> bool {
        self.members.contains_key(&pid)
    }

    /// The live members with their start times (when known).
    pub fn member_identities(&self) -> Vec<(i32, Option<u64>)> {
        self.members
            .iter()
            .map(|(pid, member)| (*pid, member.start_time))
            .collect()
    }

    /// Number of members not yet reported as ended.
    pub fn live(&self) -> usize {
        self.members.len()
    }

    /// Handles one kernel message; returns the events to emit (for members only).
    pub fn on_message(&mut self, message: &ProcMessage, reader: &impl ProcReader) -> Vec<Tracked> {
        let stamp = |body| Tracked {
            timestamp_ns: Some(message.timestamp_ns),
            body,
        };
        let mut out = Vec::new();
        match message.event {
            ProcEvent::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
                ..
            } => {
                if child_pid != child_tgid {
                    return out; // a thread
                }
                let by_engine = parent_tgid == self.root;
                if !by_engine && !self.members.contains_key(&parent_tgid) {
                    return out;
                }
                let start_time = reader
                    .stat(child_tgid)
                    .filter(|s| {
                        s.ppid == parent_tgid
                            || s.ppid == self.root
                            || self.members.contains_key(&s.ppid)
                    })
                    .map(|s| s.start_time);
                if let Some(old) = self.members.get(&child_tgid)
                    && old.from_scan
                    && same_start(old.start_time, start_time)
                {
                    // A scan found it before this (late) event: already announced.
                    return out;
                }
                if let Some(old) = self.members.remove(&child_tgid)
                    && !old.awaiting_reap
                {
                    // The pid came back: the old holder's exit event was lost.
                    out.push(stamp(EventBody::unknown_exit(
                        child_tgid,
                        old.ppid,
                        TrackSource::Kernel,
                    )));
                }
                if let Some(reap) = self.reported.pid_reused(child_tgid) {
                    out.push(stamp(reap));
                }
                if !by_engine {
                    self.parents.insert(parent_tgid);
                }
                self.members.insert(
                    child_tgid,
                    Member {
                        ppid: parent_tgid,
                        start_time,
                        forked_by_engine: by_engine,
                        execs: 0,
                        awaiting_reap: false,
                        from_scan: false,
                    },
                );
                if !by_engine {
                    out.push(stamp(EventBody::Fork {
                        pid: child_tgid,
                        ppid: parent_tgid,
                        start_time,
                        source: TrackSource::Kernel,
                    }));
                }
            }
            ProcEvent::Exec { tgid, .. } => {
                let Some(member) = self.members.get_mut(&tgid) else {
                    return out;
                };
                member.execs += 1;
                if member.forked_by_engine && member.execs == 1 {
                    return out; // the worker's own spawn, already in its `spawn` event
                }
                let start = member.start_time;
                out.push(stamp(EventBody::Exec {
                    pid: tgid,
                    argv: argv_of(reader, tgid, start),
                    source: TrackSource::Kernel,
                }));
            }
            ProcEvent::Exit {
                pid,
                tgid,
                exit_code,
                parent_tgid,
                ..
            } => {
                if pid != tgid {
                    return out; // a thread
                }
                let Some(member) = self.members.get_mut(&tgid) else {
                    return out;
                };
                if member.forked_by_engine || parent_tgid == Some(self.root) {
                    // The engine reaps it and reports it exactly.
                    member.awaiting_reap = true;
                    return out;
                }
                let ppid = parent_tgid.unwrap_or(member.ppid);
                let start = member.start_time;
                self.members.remove(&tgid);
                self.reported.insert(tgid, start, ppid);
                out.push(stamp(EventBody::Exit {
                    pid: tgid,
                    ppid,
                    status: ExitStatus::from_wait_status(exit_code as i32),
                    pool: None,
                    worker: None,
                    source: TrackSource::Kernel,
                    zombie: true,
                }));
                // Its children were re-parented before this message was sent.
                out.extend(self.adopt_children_of(tgid, reader).into_iter().map(stamp));
            }
            ProcEvent::Ack { .. } | ProcEvent::Other { .. } => {}
        }
        out
    }

    /// `parent` ended: the members it forked that another process adopted since, as
    /// `reparent` events (their parent is updated). Looks only if `parent` ever forked.
    pub fn adopt_children_of(&mut self, parent: i32, reader: &impl ProcReader) -> Vec<EventBody> {
        if !self.parents.remove(&parent) {
            return Vec::new();
        }
        let children: Vec<(i32, Option<u64>)> = self
            .members
            .iter()
            .filter(|(_, m)| m.ppid == parent)
            .map(|(pid, m)| (*pid, m.start_time))
            .collect();
        let members = &mut self.members;
        adopted_children(reader, parent, children, |pid, to| {
            if let Some(member) = members.get_mut(&pid) {
                member.ppid = to;
            }
        })
    }

    /// Exits reported and not yet collected.
    pub fn zombies_waiting(&self) -> usize {
        self.reported.len()
    }

    /// Looks at the reported zombies in `/proc`: a `reap` for each one gone.
    pub fn check_zombies(&mut self, reader: &impl ProcReader) -> Vec<EventBody> {
        self.reported.check(reader)
    }

    /// The engine reaped `pid` (start time from its zombie's `/proc` entry).
    pub fn on_reaped(&mut self, pid: i32, start: Option<u64>) -> ReapVerdict {
        if self.reported.collected_by_engine(pid, start) {
            return ReapVerdict::AlreadyReported;
        }
        match self.members.remove(&pid) {
            Some(member) => ReapVerdict::Report {
                ppid: member.ppid,
                known: true,
            },
            None => ReapVerdict::Report {
                ppid: self.root,
                known: false,
            },
        }
    }

    /// Compares the members with a `/proc` scan (`all`: every process; `tree`: the
    /// descendants of the root). Members gone without an exit get an unknown exit; unknown
    /// descendants get a `fork` and `exec` (source poll). `is_worker` names the engine's own
    /// children that its `spawn` events already announced.
    pub fn reconcile(
        &mut self,
        all: &HashMap<i32, ProcStat>,
        tree: &[ProcStat],
        reader: &impl ProcReader,
        is_worker: impl Fn(i32) -> bool,
    ) -> Vec<Tracked> {
        let mut out = Vec::new();
        let mut gone: Vec<i32> = Vec::new();
        let mut adopted = Vec::new();
        for (pid, member) in self.members.iter_mut() {
            match all.get(pid) {
                Some(stat) if same_start(member.start_time, Some(stat.start_time)) => {
                    member.start_time = Some(stat.start_time);
                    if stat.ppid != member.ppid && !member.forked_by_engine {
                        adopted.push(EventBody::Reparent {
                            pid: *pid,
                            from: member.ppid,
                            to: stat.ppid,
                        });
                        member.ppid = stat.ppid;
                    }
                }
                // Forked after `all` was listed (its event was applied since): still alive.
                _ if reader
                    .stat(*pid)
                    .is_some_and(|stat| same_start(member.start_time, Some(stat.start_time))) => {}
                _ => gone.push(*pid),
            }
        }
        gone.sort_unstable();
        // One born while `/proc` was being read is missing from the scan, not gone.
        gone.retain(|pid| {
            let start = self.members.get(pid).and_then(|m| m.start_time);
            reader
                .stat(*pid)
                .is_none_or(|s| !same_start(start, Some(s.start_time)))
        });
        for pid in gone {
            if let Some(member) = self.members.remove(&pid)
                && !member.awaiting_reap
                && !member.forked_by_engine
            {
                out.push(Tracked {
                    timestamp_ns: None,
                    body: EventBody::unknown_exit(pid, member.ppid, TrackSource::Poll),
                });
            }
        }
        // After the exits: the old parent's end comes before its orphans' adoption.
        adopted.sort_unstable_by_key(|e| e.pid());
        out.extend(adopted.into_iter().map(|body| Tracked {
            timestamp_ns: None,
            body,
        }));
        let members = &self.members;
        self.parents.retain(|pid| members.contains_key(pid));
        for stat in tree {
            if self.members.contains_key(&stat.pid)
                || self.reported.contains(stat.pid, Some(stat.start_time))
            {
                continue;
            }
            let worker = stat.ppid == self.root && is_worker(stat.pid);
            if stat.ppid != self.root {
                self.parents.insert(stat.ppid);
            }
            self.members.insert(
                stat.pid,
                Member {
                    ppid: stat.ppid,
                    start_time: Some(stat.start_time),
                    forked_by_engine: worker,
                    execs: 1,
                    awaiting_reap: false,
                    from_scan: true,
                },
            );
            if worker {
                continue;
            }
            out.push(Tracked {
                timestamp_ns: None,
                body: EventBody::Fork {
                    pid: stat.pid,
                    ppid: stat.ppid,
                    start_time: Some(stat.start_time),
                    source: TrackSource::Poll,
                },
            });
            out.push(Tracked {
                timestamp_ns: None,
                body: EventBody::Exec {
                    pid: stat.pid,
                    argv: argv_of(reader, stat.pid, Some(stat.start_time)),
                    source: TrackSource::Poll,
                },
            });
        }
        // After the scan's processes: a zombie the scan listed is not a new process.
        out.extend(self.reported.check(reader).into_iter().map(|body| Tracked {
            timestamp_ns: None,
            body,
        }));
        out
    }

    /// The session is over and nothing of the tree runs: every member still listed lost its
    /// exit event, every zombie was collected. Returns their unknown exits and reaps, and
    /// empties the sets.
    pub fn finish(&mut self) -> Vec<EventBody> {
        let mut left: Vec<(i32, Member)> = self.members.drain().collect();
        left.sort_unstable_by_key(|(pid, _)| *pid);
        let mut out: Vec<EventBody> = left
            .into_iter()
            .filter(|(_, m)| !m.awaiting_reap && !m.forked_by_engine)
            .map(|(pid, m)| EventBody::unknown_exit(pid, m.ppid, TrackSource::Poll))
            .collect();
        out.extend(self.reported.finish());
        self.parents.clear();
        out
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
