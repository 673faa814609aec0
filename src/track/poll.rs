//! The `/proc` polling tracker: finds the descendants of the engine by scanning `/proc`,
//! reports the ones it had not seen (`fork`, `exec`), the ones that vanished without being
//! reaped by forkscope (`exit` with an unknown status), and samples CPU, RSS and state.
//!
//! It is the fallback source: a process that lives less than one interval is never seen,
//! and the exit status of a process reaped by its own parent is unknown.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::inspect::proc::{self, ProcStat, clock_ticks_per_second, page_size, read_cmdline};
use crate::model::{EventBody, ProcSample, TrackSource};

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
    ticks_per_second: f64,
    page_kb: u64,
}

impl Default for PollTracker {
    fn default() -> Self {
        PollTracker {
            known: HashMap::new(),
            ticks_per_second: clock_ticks_per_second() as f64,
            page_kb: page_size() / 1024,
        }
    }
}

impl PollTracker {
    /// A process forkscope itself started (its `spawn` event says everything).
    pub fn adopt(&mut self, pid: i32, ppid: i32, start_time: Option<u64>) {
        let stat = proc::read_stat(pid).ok();
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

    fn diff(&mut self, tree: Vec<ProcStat>, now: Instant) -> Scan {
        let mut scan = Scan::default();
        let mut seen = HashSet::new();
        for stat in tree {
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
        ProcStat {
            pid,
            comm: format!("p{pid}"),
            state: 'S',
            ppid,
            pgrp: pid,
            session: pid,
            cpu_ticks: 0,
            threads: 1,
            start_time: start,
            rss_pages: 10,
            exit_code: None,
        }
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
}
