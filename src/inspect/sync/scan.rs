//! The [`Scanner`]: per-thread waits of a set of processes (cheap: the task files only),
//! and the full report (semaphores, primitives, barriers, channels, deadlocks). It remembers
//! between scans when each wait was first seen and which processes mapped each barrier, so
//! "blocked for" and "a party exited" can be told. Vanished processes simply drop out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::inspect::proc;
use crate::inspect::shm::{Scope, discover};
use crate::model::sync::{BlockedOn, ProcessWaits, SyncReport, ThreadWait, WaitKind};

use super::channels;
use super::classify::{Probe, classify};
use super::fds::{FdTable, FdTarget};
use super::graph;
use super::objects;
use super::probe::ProcProbe;
use super::sockdiag;
use super::syscall::Arch;
use super::thread::{SchedClock, list_tids, monotonic_secs, read_thread};

/// At most this many threads are read per process.
const MAX_THREADS: usize = 256;

/// Scans processes, remembering what earlier scans saw.
pub struct Scanner {
    arch: Option<Arch>,
    sched: Option<SchedClock>,
    /// (pid, tid) → (wait identity, monotonic seconds first seen).
    first_seen: HashMap<(i32, i32), (String, f64)>,
    /// Barrier wait-semaphore inode → every pid seen mapping it.
    barrier_pids: HashMap<u64, BTreeSet<i32>>,
    /// What each semaphore was in the last full scan (`barrier`, `lock`, ...), for the
    /// cheap scans' wait names.
    sem_kinds: HashMap<u64, String>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner {
            arch: Arch::native(),
            sched: SchedClock::calibrate(),
            first_seen: HashMap::new(),
            barrier_pids: HashMap::new(),
            sem_kinds: HashMap::new(),
        }
    }

    /// The waits of every thread of `pids` (a vanished pid gives `unknown`). `full` also
    /// reads the scheduler's last-ran time (a more expensive file) and every descriptor table.
    fn waits(&mut self, pids: &[i32], full: bool) -> (Vec<ProcessWaits>, BTreeMap<i32, FdTable>) {
        let now = monotonic_secs();
        let mut out = Vec::with_capacity(pids.len());
        let mut tables = BTreeMap::new();
        let mut seen = HashMap::new();
        for &pid in pids {
            let mut probe = ProcProbe::new(pid);
            let mut tids = list_tids(pid);
            tids.truncate(MAX_THREADS);
            if tids.is_empty() {
                tids.push(pid);
            }
            let mut threads = Vec::with_capacity(tids.len());
            for tid in tids {
                let facts = read_thread(pid, tid, full);
                let mut wait = classify(&facts, self.arch, &mut probe);
                let identity = wait.identity();
                let first = match self.first_seen.get(&(pid, tid)) {
                    Some((id, at)) if *id == identity => Some(*at),
                    _ => None,
                };
                seen.insert((pid, tid), (identity, first.unwrap_or(now)));
                if !matches!(wait.kind, WaitKind::Running | WaitKind::Unknown) {
                    match (self.sched, facts.last_ran_ms) {
                        (Some(clock), Some(ms)) => {
                            wait.blocked_secs = Some(clock.since(ms));
                            wait.since_source = Some("sched");
                        }
                        _ => {
                            if let Some(at) = first {
                                wait.blocked_secs = Some(now - at);
                                wait.since_source = Some("sampled");
                            }
                        }
                    }
                }
                threads.push(ThreadWait {
                    tid,
                    blocked_on: wait,
                });
            }
            if full {
                probe.fds();
            }
            if let Some(table) = probe.take_fds() {
                tables.insert(pid, table);
            }
            let main = threads
                .iter()
                .find(|t| t.tid == pid)
                .or(threads.first())
                .map(|t| t.blocked_on.clone())
                .unwrap_or_else(|| BlockedOn::new(WaitKind::Unknown));
            out.push(ProcessWaits {
                pid,
                blocked_on: main,
                threads,
            });
        }
        self.first_seen = seen;
        (out, tables)
    }

    /// The cheap scan: each thread's wait from its task files (descriptors and maps only
    /// where a wait needs them). No semaphores, channels or peers.
    pub fn scan_waits(&mut self, pids: &[i32]) -> Vec<ProcessWaits> {
        let mut waits = self.waits(pids, false).0;
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for t in waits.iter().flat_map(|p| &p.threads) {
            if let Some(inode) = t.blocked_on.details.semaphore {
                *counts.entry(inode).or_default() += 1;
            }
        }
        for process in &mut waits {
            for wait in std::iter::once(&mut process.blocked_on)
                .chain(process.threads.iter_mut().map(|t| &mut t.blocked_on))
            {
                if let Some(inode) = wait.details.semaphore {
                    let what = self.sem_kinds.get(&inode).map(String::as_str);
                    let n = counts.get(&inode).copied().unwrap_or(0);
                    wait.object = Some(objects::label(inode, what, n));
                }
            }
        }
        waits
    }

    /// The full scan of `pids`.
    pub fn scan(&mut self, pids: &[i32]) -> SyncReport {
        let (mut waits, tables) = self.waits(pids, true);
        let segments = discover(&Scope::Pids(pids.to_vec()));
        let (semaphores, primitives, mut barriers) = objects::build(&segments, &waits);
        self.sem_kinds = semaphores
            .iter()
            .map(|s| (s.inode, objects::what(s, &primitives)))
            .collect();
        let unix = sockdiag::dump().unwrap_or_else(|e| {
            tracing::debug!("sock_diag: {e}");
            HashMap::new()
        });
        let channel_list = channels::assemble(&tables, &unix, &waits, &mut channels::pipe_bytes);
        name_objects(&mut waits, &semaphores, &primitives, &channel_list, &tables);
        let mappers: HashMap<u64, Vec<i32>> = semaphores
            .iter()
            .map(|s| (s.inode, s.pids.clone()))
            .collect();
        let parents: Vec<(i32, i32)> = pids
            .iter()
            .filter_map(|p| proc::read_stat(*p).ok().map(|s| (s.pid, s.ppid)))
            .collect();
        let graph = graph::build(
            &waits,
            &|inode| mappers.get(&inode).cloned().unwrap_or_default(),
            &|pid| {
                parents
                    .iter()
                    .filter(|(_, ppid)| *ppid == pid)
                    .map(|(p, _)| *p)
                    .collect()
            },
        );
        let deadlocks = graph::deadlocks(&graph);
        for b in &mut barriers {
            let history = self.barrier_pids.entry(b.semaphore).or_default();
            let now: Vec<i32> = mappers.get(&b.semaphore).cloned().unwrap_or_default();
            history.extend(now.iter().copied());
            b.exited = history
                .iter()
                .copied()
                .filter(|p| !now.contains(p) && !proc_alive(*p))
                .collect();
            b.can_never_fill = !b.exited.is_empty() && !b.waiting.is_empty();
        }
        SyncReport {
            processes: waits,
            semaphores,
            primitives,
            barriers,
            channels: channel_list,
            deadlocks,
        }
    }
}

fn proc_alive(pid: i32) -> bool {
    proc::read_stat(pid).is_ok_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Names semaphore waits after their primitive and fills channel waits' peers.
fn name_objects(
    waits: &mut [ProcessWaits],
    semaphores: &[crate::model::sync::Semaphore],
    primitives: &[crate::model::sync::Primitive],
    channel_list: &[crate::model::sync::Channel],
    tables: &BTreeMap<i32, FdTable>,
) {
    for process in waits.iter_mut() {
        let pid = process.pid;
        for wait in std::iter::once(&mut process.blocked_on)
            .chain(process.threads.iter_mut().map(|t| &mut t.blocked_on))
        {
            if let Some(inode) = wait.details.semaphore
                && let Some(sem) = semaphores.iter().find(|s| s.inode == inode)
            {
                let what = objects::what(sem, primitives);
                wait.object = Some(objects::label(
                    inode,
                    Some(&what),
                    sem.blocked_threads.len(),
                ));
            }
            if let Some(inode) = wait.details.inode {
                if wait.details.semaphore.is_none() {
                    wait.details.peers = channels::peers_of(channel_list, &wait.kind, inode, pid);
                }
            } else if !wait.details.fds.is_empty() {
                // poll/select/epoll: whoever holds the other end of a watched channel.
                let table = tables.get(&pid);
                let mut peers: Vec<i32> = wait
                    .details
                    .fds
                    .iter()
                    .filter_map(|fd| match table?.get(fd)?.target {
                        FdTarget::Pipe(i) => Some((WaitKind::PipeRead, i)),
                        FdTarget::Socket(i) => Some((WaitKind::SocketRecv, i)),
                        _ => None,
                    })
                    .flat_map(|(kind, i)| channels::peers_of(channel_list, &kind, i, pid))
                    .collect();
                peers.sort_unstable();
                peers.dedup();
                wait.details.peers = peers;
            }
        }
    }
}

/// One full scan of the tree under `root` (root included), for `inspect`. With the
/// scheduler clock, "blocked for" is known even without earlier scans.
pub fn scan_once(pids: &[i32]) -> SyncReport {
    Scanner::new().scan(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vanished_pids_are_unknown_and_own_threads_are_named() {
        let mut scanner = Scanner::new();
        let waits = scanner.scan_waits(&[-7]);
        assert_eq!(waits[0].blocked_on.kind, WaitKind::Unknown);
        let me = std::process::id() as i32;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(60));
        });
        let report = scanner.scan(&[me, -7]);
        let mine = report.process(me).expect("own process scanned");
        assert!(mine.threads.len() >= 2);
        assert_eq!(
            report.process(-7).map(|p| &p.blocked_on.kind),
            Some(&WaitKind::Unknown)
        );
        // The full scan lists our own descriptors' pipes (the test harness's, at least none
        // of which is required) without failing; a second cheap scan keeps first-seen times.
        let again = scanner.scan_waits(&[me]);
        assert!(again[0].threads.iter().any(
            |t| t.blocked_on.kind == WaitKind::Futex || t.blocked_on.kind == WaitKind::Running
        ));
        drop(tx);
        sleeper.join().unwrap();
    }
}
