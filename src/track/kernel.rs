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

use std::collections::HashMap;

use crate::inspect::proc::{self, ProcStat};
use crate::model::{EventBody, ExitStatus, TrackSource};

use super::netlink::{ProcEvent, ProcMessage};

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
    reported: HashMap<i32, Option<u64>>,
}

/// Same process, when both start times are known; a missing one matches.
fn same_start(a: Option<u64>, b: Option<u64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

fn unknown_exit(pid: i32, ppid: i32, source: TrackSource) -> EventBody {
    EventBody::Exit {
        pid,
        ppid,
        status: ExitStatus::Unknown,
        pool: None,
        worker: None,
        source,
    }
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
            reported: HashMap::new(),
        }
    }

    /// Whether `pid` is a live member of the tree.
    pub fn is_member(&self, pid: i32) -> bool {
        self.members.contains_key(&pid)
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
                    out.push(stamp(unknown_exit(
                        child_tgid,
                        old.ppid,
                        TrackSource::Kernel,
                    )));
                }
                self.reported.remove(&child_tgid);
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
                self.reported.insert(tgid, start);
                out.push(stamp(EventBody::Exit {
                    pid: tgid,
                    ppid,
                    status: ExitStatus::from_wait_status(exit_code as i32),
                    pool: None,
                    worker: None,
                    source: TrackSource::Kernel,
                }));
            }
            ProcEvent::Ack { .. } | ProcEvent::Other { .. } => {}
        }
        out
    }

    /// The engine reaped `pid` (start time from its zombie's `/proc` entry).
    pub fn on_reaped(&mut self, pid: i32, start: Option<u64>) -> ReapVerdict {
        if let Some(reported) = self.reported.get(&pid).copied()
            && same_start(reported, start)
        {
            self.reported.remove(&pid);
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
        for (pid, member) in self.members.iter_mut() {
            match all.get(pid) {
                Some(stat) if same_start(member.start_time, Some(stat.start_time)) => {
                    member.start_time = Some(stat.start_time);
                }
                _ => gone.push(*pid),
            }
        }
        gone.sort_unstable();
        for pid in gone {
            if let Some(member) = self.members.remove(&pid)
                && !member.awaiting_reap
                && !member.forked_by_engine
            {
                out.push(Tracked {
                    timestamp_ns: None,
                    body: unknown_exit(pid, member.ppid, TrackSource::Poll),
                });
            }
        }
        self.reported.retain(|pid, start| {
            all.get(pid)
                .is_some_and(|stat| same_start(*start, Some(stat.start_time)))
        });
        for stat in tree {
            if self.members.contains_key(&stat.pid) || self.reported.contains_key(&stat.pid) {
                continue;
            }
            let worker = stat.ppid == self.root && is_worker(stat.pid);
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
        out
    }

    /// The session is over and nothing of the tree runs: every member still listed lost its
    /// exit event. Returns their unknown exits and empties the set.
    pub fn finish(&mut self) -> Vec<EventBody> {
        let mut left: Vec<(i32, Member)> = self.members.drain().collect();
        left.sort_unstable_by_key(|(pid, _)| *pid);
        self.reported.clear();
        left.into_iter()
            .filter(|(_, m)| !m.awaiting_reap && !m.forked_by_engine)
            .map(|(pid, m)| unknown_exit(pid, m.ppid, TrackSource::Poll))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct FakeProc {
        procs: RefCell<HashMap<i32, (ProcStat, Vec<String>)>>,
    }

    impl FakeProc {
        fn add(&self, pid: i32, ppid: i32, start: u64, argv: &[&str]) {
            let stat = ProcStat {
                pid,
                comm: argv.first().copied().unwrap_or("x").into(),
                state: 'S',
                ppid,
                pgrp: pid,
                session: pid,
                cpu_ticks: 0,
                threads: 1,
                start_time: start,
                rss_pages: 1,
                exit_code: None,
            };
            let argv = argv.iter().map(|s| s.to_string()).collect();
            self.procs.borrow_mut().insert(pid, (stat, argv));
        }
        fn remove(&self, pid: i32) {
            self.procs.borrow_mut().remove(&pid);
        }
        fn all(&self) -> HashMap<i32, ProcStat> {
            self.procs
                .borrow()
                .iter()
                .map(|(p, (s, _))| (*p, s.clone()))
                .collect()
        }
    }

    impl ProcReader for FakeProc {
        fn stat(&self, pid: i32) -> Option<ProcStat> {
            self.procs.borrow().get(&pid).map(|(s, _)| s.clone())
        }
        fn argv(&self, pid: i32) -> Option<Vec<String>> {
            self.procs.borrow().get(&pid).map(|(_, a)| a.clone())
        }
    }

    fn msg(event: ProcEvent) -> ProcMessage {
        ProcMessage {
            timestamp_ns: 5,
            event,
        }
    }

    fn fork(parent: i32, child: i32) -> ProcMessage {
        msg(ProcEvent::Fork {
            parent_pid: parent,
            parent_tgid: parent,
            child_pid: child,
            child_tgid: child,
        })
    }

    fn exit(pid: i32, code: u32, parent: i32) -> ProcMessage {
        msg(ProcEvent::Exit {
            pid,
            tgid: pid,
            exit_code: code,
            exit_signal: 17,
            parent_pid: Some(parent),
            parent_tgid: Some(parent),
        })
    }

    fn kinds(events: &[Tracked]) -> Vec<String> {
        events
            .iter()
            .map(|t| {
                let v = serde_json::to_value(&t.body).unwrap();
                format!("{} {}", v["kind"].as_str().unwrap(), v["pid"])
            })
            .collect()
    }

    #[test]
    fn follows_the_tree_and_ignores_strangers_and_threads() {
        let proc = FakeProc::default();
        let mut t = KernelTracker::new(100);
        proc.add(101, 100, 1, &["python3", "main.py"]);
        // The engine's own worker: silent (its spawn says it), first exec silent.
        assert!(t.on_message(&fork(100, 101), &proc).is_empty());
        let exec = msg(ProcEvent::Exec {
            pid: 101,
            tgid: 101,
        });
        assert!(t.on_message(&exec, &proc).is_empty());
        proc.add(102, 101, 2, &["python3", "main.py"]);
        let got = t.on_message(&fork(101, 102), &proc);
        assert_eq!(kinds(&got), vec!["fork 102"]);
        assert!(matches!(
            got[0].body,
            EventBody::Fork {
                start_time: Some(2),
                ppid: 101,
                source: TrackSource::Kernel,
                ..
            }
        ));
        // A thread of a member, and a stranger's child.
        let thread = msg(ProcEvent::Fork {
            parent_pid: 102,
            parent_tgid: 102,
            child_pid: 103,
            child_tgid: 102,
        });
        assert!(t.on_message(&thread, &proc).is_empty());
        assert!(t.on_message(&fork(7, 8), &proc).is_empty());
        let thread_exit = msg(ProcEvent::Exit {
            pid: 103,
            tgid: 102,
            exit_code: 0,
            exit_signal: u32::MAX,
            parent_pid: Some(101),
            parent_tgid: Some(101),
        });
        assert!(t.on_message(&thread_exit, &proc).is_empty());
        proc.add(102, 101, 2, &["sh", "-c", "x"]);
        let got = t.on_message(
            &msg(ProcEvent::Exec {
                pid: 102,
                tgid: 102,
            }),
            &proc,
        );
        assert!(matches!(&got[0].body, EventBody::Exec { argv, .. } if argv[0] == "sh"));
        // Killed by SIGSEGV: raw status 11.
        let got = t.on_message(&exit(102, 11, 101), &proc);
        assert!(matches!(
            got[0].body,
            EventBody::Exit {
                status: ExitStatus::Signaled { signal: 11, .. },
                ..
            }
        ));
        assert!(!t.is_member(102));
        // The worker's exit is left to the reap.
        assert!(t.on_message(&exit(101, 0, 100), &proc).is_empty());
        assert_eq!(
            t.on_reaped(101, Some(1)),
            ReapVerdict::Report {
                ppid: 100,
                known: true
            }
        );
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn orphan_race_gets_exactly_one_exit() {
        let proc = FakeProc::default();
        let mut t = KernelTracker::new(100);
        proc.add(101, 100, 1, &["w"]);
        t.on_message(&fork(100, 101), &proc);
        proc.add(102, 101, 2, &["w"]);
        t.on_message(&fork(101, 102), &proc);
        // Kernel says the old parent, then the engine reaps it too: one exit.
        assert_eq!(t.on_message(&exit(102, 3 << 8, 101), &proc).len(), 1);
        assert_eq!(t.on_reaped(102, Some(2)), ReapVerdict::AlreadyReported);
        // Reaped first (orphan), kernel event later with the engine as parent: one exit.
        proc.add(103, 101, 3, &["w"]);
        t.on_message(&fork(101, 103), &proc);
        assert_eq!(
            t.on_reaped(103, Some(3)),
            ReapVerdict::Report {
                ppid: 101,
                known: true
            }
        );
        assert!(t.on_message(&exit(103, 0, 100), &proc).is_empty());
        // Never seen (events dropped): the reap reports birth and end.
        assert_eq!(
            t.on_reaped(104, Some(9)),
            ReapVerdict::Report {
                ppid: 100,
                known: false
            }
        );
    }

    #[test]
    fn reused_pid_is_a_new_process() {
        let proc = FakeProc::default();
        let mut t = KernelTracker::new(100);
        proc.add(101, 100, 1, &["w"]);
        t.on_message(&fork(100, 101), &proc);
        proc.add(102, 101, 2, &["a"]);
        t.on_message(&fork(101, 102), &proc);
        // Exit lost; the pid comes back as a new child.
        proc.add(102, 101, 50, &["b"]);
        let got = t.on_message(&fork(101, 102), &proc);
        assert_eq!(kinds(&got), vec!["exit 102", "fork 102"]);
        assert!(matches!(
            got[1].body,
            EventBody::Fork {
                start_time: Some(50),
                ..
            }
        ));
    }

    #[test]
    fn reconcile_repairs_dropped_events() {
        let proc = FakeProc::default();
        let mut t = KernelTracker::new(100);
        proc.add(101, 100, 1, &["w"]);
        t.on_message(&fork(100, 101), &proc);
        proc.add(102, 101, 2, &["a"]);
        t.on_message(&fork(101, 102), &proc);
        // 102 ended and 103, 104 appeared while events were dropped.
        proc.remove(102);
        proc.add(103, 101, 3, &["b", "x"]);
        proc.add(104, 103, 4, &["c"]);
        let all = proc.all();
        let tree: Vec<ProcStat> = [101, 103, 104].iter().map(|p| all[p].clone()).collect();
        let got = t.reconcile(&all, &tree, &proc, |pid| pid == 101);
        assert_eq!(
            kinds(&got),
            vec!["exit 102", "fork 103", "exec 103", "fork 104", "exec 104"]
        );
        assert!(matches!(
            got[0].body,
            EventBody::Exit {
                status: ExitStatus::Unknown,
                source: TrackSource::Poll,
                ..
            }
        ));
        // A second pass finds nothing new.
        assert!(t.reconcile(&all, &tree, &proc, |pid| pid == 101).is_empty());
        assert_eq!(t.live(), 3);
        let left = t.finish();
        assert_eq!(left.len(), 2); // 103 and 104; the worker is the reap's
    }

    #[test]
    fn gone_process_exec_has_a_placeholder_argv() {
        let proc = FakeProc::default();
        assert_eq!(argv_of(&proc, 5, None), vec!["[?]"]);
        proc.add(5, 1, 9, &[]);
        assert_eq!(argv_of(&proc, 5, Some(9)), vec!["[x]"]);
        assert_eq!(argv_of(&proc, 5, Some(8)), vec!["[?]"]);
    }
}
