//! The `/proc` polling tracker: finds the descendants of the engine by scanning `/proc`,
//! reports the ones it had not seen (`fork`, `exec`), the ones that vanished without being
//! reaped by forkscope (`exit` with an unknown status), and samples CPU, RSS and state.
//!
//! It is the fallback source: a process that lives less than one interval is never seen,
//! and the exit status of a process reaped by its own parent is unknown unless a scan
//! catches it as a zombie (`Z`): then its `exit` carries the status from `/proc/PID/stat`
//! and a `reap` follows when it is gone. A known process whose parent changed is reported
//! as adopted (`reparent`).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::inspect::proc::{self, ProcStat, clock_ticks_per_second, page_size, read_cmdline};
use crate::model::{EventBody, ExitStatus, ProcSample, TrackSource};

use super::kernel::LiveProc;
use super::zombies::{ZombieSet, adopted_children};

#[derive(Debug)]
struct Known {
    start_time: u64,
    ppid: i32,
    comm: String,
    cpu_ticks: u64,
    sampled: Option<Instant>,
    /// Read when the process is first seen and when it execs, not at every sample.
    cwd: Option<String>,
}

fn read_cwd(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/cwd"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct Scan {
    pub events: Vec<EventBody>,
    pub samples: Vec<ProcSample>,
}

/// Memory of the tree between scans.
#[derive(Debug)]
pub struct PollTracker {
    known: HashMap<i32, Known>,
    /// Zombies whose exit was reported (not those of the engine, which reaps them itself).
    zombies: ZombieSet,
    /// The engine: its zombie children are reaped and reported by it.
    engine: i32,
    ticks_per_second: f64,
    page_kb: u64,
}

impl Default for PollTracker {
    fn default() -> Self {
        PollTracker {
            known: HashMap::new(),
            zombies: ZombieSet::default(),
            engine: 0,
            ticks_per_second: clock_ticks_per_second() as f64,
            page_kb: page_size() / 1024,
        }
    }
}

impl PollTracker {
    /// A tracker for the tree of `engine`, which reaps its own children.
    pub fn for_engine(engine: i32) -> PollTracker {
        PollTracker {
            engine,
            ..PollTracker::default()
        }
    }

    /// The zombies reported and not yet collected.
    pub fn zombies(&mut self) -> &mut ZombieSet {
        &mut self.zombies
    }

    /// A process forkscope itself started (its `spawn` event says everything).
    pub fn adopt(&mut self, pid: i32, ppid: i32, start_time: Option<u64>) {
        let stat = proc::read_stat(pid).ok();
        self.adopt_with_stat(pid, ppid, start_time, stat);
    }

    /// [`PollTracker::adopt`] with the `stat` the caller has just read (a worker's spawn).
    pub fn adopt_with_stat(
        &mut self,
        pid: i32,
        ppid: i32,
        start_time: Option<u64>,
        stat: Option<proc::ProcStat>,
    ) {
        self.known.insert(
            pid,
            Known {
                start_time: start_time
                    .or(stat.as_ref().map(|s| s.start_time))
                    .unwrap_or(0),
                ppid,
                comm: stat.map(|s| s.comm).unwrap_or_default(),
                cpu_ticks: 0,
                sampled: None,
                cwd: read_cwd(pid),
            },
        );
    }

    /// A process forkscope reaped (its exact `exit` event was sent). Returns its last ppid.
    pub fn forget(&mut self, pid: i32) -> Option<i32> {
        self.known.remove(&pid).map(|k| k.ppid)
    }

    /// `parent` ended (forkscope reaped it): its known children adopted since, as
    /// `reparent` events. One pass over the known processes, one `stat` per child.
    pub fn adopt_children_of(&mut self, parent: i32) -> Vec<EventBody> {
        let children: Vec<(i32, Option<u64>)> = self
            .known
            .iter()
            .filter(|(_, k)| k.ppid == parent)
            .map(|(pid, k)| (*pid, Some(k.start_time).filter(|s| *s != 0)))
            .collect();
        if children.is_empty() {
            return Vec::new();
        }
        let known = &mut self.known;
        adopted_children(&LiveProc, parent, children, |pid, to| {
            if let Some(k) = known.get_mut(&pid) {
                k.ppid = to;
            }
        })
    }

    /// Zombies reported and not yet collected.
    pub fn zombies_waiting(&self) -> usize {
        self.zombies.len()
    }

    /// The ppid of a process the tracker has seen, if it is still tracked.
    pub fn ppid_of(&self, pid: i32) -> Option<i32> {
        self.known.get(&pid).map(|k| k.ppid)
    }

    /// Scans `/proc` for the tree under `root`.
    pub fn scan(&mut self, root: i32) -> std::io::Result<Scan> {
        let all = proc::scan_all()?;
        Ok(self.diff(proc::descendants_in(&all, root), Instant::now()))
    }

    /// Like [`PollTracker::scan`] over a tree scanned by the caller (the kernel source uses
    /// it for samples and drops the events, which it has exactly).
    pub fn observe(&mut self, tree: Vec<ProcStat>) -> Scan {
        self.diff(tree, Instant::now())
    }

    /// Like [`PollTracker::observe`] over a tree read a moment ago: the processes in
    /// `unread` (started since) are alive, not ended, though the tree lacks them.
    pub fn observe_read_earlier(&mut self, tree: Vec<ProcStat>, unread: HashSet<i32>) -> Scan {
        self.diff_seeing(tree, Instant::now(), unread)
    }

    fn diff(&mut self, tree: Vec<ProcStat>, now: Instant) -> Scan {
        self.diff_seeing(tree, now, HashSet::new())
    }

    fn diff_seeing(&mut self, tree: Vec<ProcStat>, now: Instant, mut seen: HashSet<i32>) -> Scan {
        let mut scan = Scan::default();
        let all: HashMap<i32, ProcStat> = tree
            .iter()
            .filter(|s| self.zombies.contains(s.pid, Some(s.start_time)))
            .map(|s| (s.pid, s.clone()))
            .collect();
        scan.events.extend(self.zombies.check_in(&all));
        let mut adopted = Vec::new();
        for stat in tree {
            if self.zombies.contains(stat.pid, Some(stat.start_time)) {
                continue; // its exit was reported; its reap is the zombie set's
            }
            seen.insert(stat.pid);
            let fresh = match self.known.get(&stat.pid) {
                Some(known) if known.start_time == stat.start_time || known.start_time == 0 => {
                    false
                }
                Some(known) => {
                    scan.events.push(EventBody::unknown_exit(
                        stat.pid,
                        known.ppid,
                        TrackSource::Poll,
                    ));
                    true
                }
                None => true,
            };
            if fresh {
                scan.events.push(EventBody::Fork {
                    pid: stat.pid,
                    ppid: stat.ppid,
                    start_time: Some(stat.start_time),
                    source: TrackSource::Poll,
                });
                self.push_exec(&mut scan, &stat);
                self.known.insert(
                    stat.pid,
                    Known {
                        start_time: stat.start_time,
                        ppid: stat.ppid,
                        comm: stat.comm.clone(),
                        cpu_ticks: stat.cpu_ticks,
                        sampled: Some(now),
                        cwd: read_cwd(stat.pid),
                    },
                );
            } else if let Some(known) = self.known.get(&stat.pid)
                && !known.comm.is_empty()
                && known.comm != stat.comm
            {
                self.push_exec(&mut scan, &stat);
                if let Some(known) = self.known.get_mut(&stat.pid) {
                    known.cwd = read_cwd(stat.pid);
                }
            }
            let Some(known) = self.known.get_mut(&stat.pid) else {
                continue;
            };
            if known.ppid != stat.ppid && !fresh {
                adopted.push(EventBody::Reparent {
                    pid: stat.pid,
                    from: known.ppid,
                    to: stat.ppid,
                });
            }
            if stat.state == 'Z' && stat.ppid != self.engine {
                // Ended, not yet collected by its parent (the engine collects its own).
                let ppid = stat.ppid;
                self.known.remove(&stat.pid);
                self.zombies.insert(stat.pid, Some(stat.start_time), ppid);
                scan.events.push(EventBody::Exit {
                    pid: stat.pid,
                    ppid,
                    status: stat
                        .exit_code
                        .map_or(ExitStatus::Unknown, ExitStatus::from_wait_status),
                    pool: None,
                    worker: None,
                    source: TrackSource::Poll,
                    zombie: true,
                });
                continue;
            }
            let cpu = match known.sampled {
                Some(then) if now > then => {
                    let ticks = stat.cpu_ticks.saturating_sub(known.cpu_ticks) as f64;
                    let seconds = now.duration_since(then).as_secs_f64();
                    (ticks / self.ticks_per_second / seconds * 100.0) as f32
                }
                _ => 0.0,
            };
            known.start_time = stat.start_time;
            known.cpu_ticks = stat.cpu_ticks;
            known.sampled = Some(now);
            known.ppid = stat.ppid;
            known.comm = stat.comm.clone();
            scan.samples.push(ProcSample {
                pid: stat.pid,
                state: stat.state,
                cpu,
                rss_kb: stat.rss_pages * self.page_kb,
                threads: stat.threads,
                pgid: stat.pgrp,
                sid: stat.session,
                cwd: known.cwd.clone(),
                shares_pipe_of: None,
            });
        }
        let gone: Vec<i32> = self
            .known
            .keys()
            .filter(|pid| !seen.contains(pid))
            .copied()
            .collect();
        for pid in gone {
            if let Some(known) = self.known.remove(&pid) {
                scan.events
                    .push(EventBody::unknown_exit(pid, known.ppid, TrackSource::Poll));
            }
        }
        // After the exits: the old parent's end comes before its orphans' adoption.
        scan.events.extend(adopted);
        scan
    }

    fn push_exec(&self, scan: &mut Scan, stat: &ProcStat) {
        let argv = read_cmdline(stat.pid)
            .ok()
            .filter(|argv| !argv.is_empty())
            .unwrap_or_else(|| vec![format!("[{}]", stat.comm)]);
        scan.events.push(EventBody::Exec {
            pid: stat.pid,
            argv,
            source: TrackSource::Poll,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: i32, ppid: i32, start: u64) -> ProcStat {
        ProcStat::fixture(pid, ppid, start)
    }

    fn kinds(scan: &Scan) -> Vec<(String, i32)> {
        scan.events
            .iter()
            .map(|e| {
                let kind = serde_json::to_value(e).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (kind, e.pid().unwrap())
            })
            .collect()
    }

    #[test]
    fn reports_new_gone_and_reused() {
        let mut tracker = PollTracker::default();
        tracker.adopt(-5, 1, Some(1));
        let now = Instant::now();
        let first = tracker.diff(vec![stat(-5, 1, 1), stat(-6, -5, 2)], now);
        assert_eq!(
            kinds(&first),
            vec![("fork".into(), -6), ("exec".into(), -6)]
        );
        assert_eq!(first.samples.len(), 2);
        let second = tracker.diff(vec![stat(-5, 1, 1), stat(-6, -5, 9)], now);
        assert_eq!(
            kinds(&second),
            vec![
                ("exit".into(), -6),
                ("fork".into(), -6),
                ("exec".into(), -6)
            ]
        );
        tracker.forget(-5);
        let third = tracker.diff(vec![], now);
        assert_eq!(kinds(&third), vec![("exit".into(), -6)]);
    }

    #[test]
    fn a_zombie_seen_by_a_scan_ends_with_its_status_and_is_reaped_when_gone() {
        let mut tracker = PollTracker::for_engine(-1);
        let now = Instant::now();
        tracker.adopt(-5, -1, Some(1));
        tracker.diff(vec![stat(-5, -1, 1), stat(-6, -5, 2)], now);
        let zombie = ProcStat {
            state: 'Z',
            exit_code: Some(7 << 8),
            ..stat(-6, -5, 2)
        };
        let scan = tracker.diff(vec![stat(-5, -1, 1), zombie.clone()], now);
        assert_eq!(kinds(&scan), vec![("exit".into(), -6)]);
        assert!(matches!(
            scan.events[0],
            EventBody::Exit {
                status: ExitStatus::Exited(7),
                zombie: true,
                ppid: -5,
                ..
            }
        ));
        assert_eq!(tracker.zombies_waiting(), 1);
        // Still a zombie: nothing new, no sample of it.
        let scan = tracker.diff(vec![stat(-5, -1, 1), zombie], now);
        assert!(scan.events.is_empty());
        assert_eq!(scan.samples.len(), 1);
        // Gone: collected by its parent.
        let scan = tracker.diff(vec![stat(-5, -1, 1)], now);
        assert_eq!(scan.events, vec![EventBody::Reap { pid: -6, by: -5 }]);
        // A zombie child of the engine is the engine's to reap and report.
        let engine_child = ProcStat {
            state: 'Z',
            ..stat(-5, -1, 1)
        };
        assert!(tracker.diff(vec![engine_child], now).events.is_empty());
    }

    #[test]
    fn a_changed_parent_is_an_adoption() {
        let mut tracker = PollTracker::for_engine(-1);
        let now = Instant::now();
        tracker.diff(vec![stat(-5, -1, 1), stat(-6, -5, 2)], now);
        let scan = tracker.diff(vec![stat(-6, -1, 2)], now);
        assert_eq!(
            scan.events,
            vec![
                EventBody::unknown_exit(-5, -1, TrackSource::Poll),
                EventBody::Reparent {
                    pid: -6,
                    from: -5,
                    to: -1
                },
            ]
        );
        assert_eq!(tracker.ppid_of(-6), Some(-1));
    }
}
