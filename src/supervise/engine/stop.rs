//! Stopping the tree: the stop signal to every worker, the stop signal to orphans once no
//! worker shields them, SIGKILL for everything that remains of the tree at the stop timeout
//! (setsid escapees included, found by walking `/proc` from the engine down), and the end
//! once no child is left (with a subreaper, no child left means no descendant left).
//! Each pool may have its own stop timeout: at it, that pool's workers and their descendants
//! get SIGKILL; the sweep of the whole tree comes at the longest timeout of the pools.

use crate::model::NoticeLevel;
use std::time::{Duration, Instant};

use super::{Engine, WorkerState};
use crate::inspect::proc::ProcStat;
use crate::model::{EventBody, SignalReason};
use crate::supervise::os::Target;
use crate::supervise::tree::signal_each;

/// Time between SIGKILL sweeps of the tree (new forks of dying processes are caught here).
const KILL_ROUND: Duration = Duration::from_millis(50);
/// How long SIGKILL sweeps go on before forkscope reports what survived and ends anyway.
const KILL_GIVE_UP: Duration = Duration::from_secs(10);

/// Where the engine is in stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Stop signals went out; SIGKILL at `deadline`.
    Stopping {
        deadline: Instant,
    },
    /// SIGKILL sweeps until no child is left.
    Killing {
        next_round: Instant,
        give_up: Instant,
    },
}

impl Phase {
    pub(super) fn deadline(self) -> Option<Instant> {
        match self {
            Phase::Running => None,
            Phase::Stopping { deadline } => Some(deadline),
            Phase::Killing { next_round, .. } => Some(next_round),
        }
    }
}

impl Engine {
    /// Starts stopping the tree. `quit`: the session ends once nothing is left.
    pub(super) fn begin_stop(&mut self, reason: String, quit: bool) {
        if quit && !self.quit {
            self.quit = true;
            for pool in &mut self.pools {
                for worker in pool.workers.values_mut() {
                    if matches!(
                        worker.state,
                        WorkerState::Waiting(_) | WorkerState::Starting
                    ) {
                        worker.state = WorkerState::Ended;
                    }
                }
            }
        }
        if self.phase != Phase::Running {
            return;
        }
        self.events.emit(EventBody::Stopping {
            pid: Some(self.me),
            reason,
        });
        let now = self.os.now();
        let session_timeout = self.config.stop_timeout;
        let mut longest = Duration::ZERO;
        // `depends_on`: a pool waits for the pools depending on it to stop first.
        let held = self.held_for_dependents();
        for (pool, held) in self.pools.iter_mut().zip(&held) {
            let timeout = pool.spec.policy.stop_timeout.unwrap_or(session_timeout);
            let running = pool
                .workers
                .values()
                .any(|w| w.state == WorkerState::Running);
            pool.kill_at = (running && !held).then(|| now + timeout);
            pool.launch.stop_held = running && *held;
            if running {
                longest = longest.max(timeout);
            }
        }
        if longest == Duration::ZERO {
            longest = session_timeout;
        }
        if held.contains(&true) {
            longest = longest.max(self.chained_stop_timeout());
        }
        self.phase = Phase::Stopping {
            deadline: now + longest,
        };
        self.stop_timeout_in_force = longest;
        self.stop_signalled.clear();
        self.kill_signalled.clear();
        for pool in self.pools.iter().filter(|p| !p.launch.stop_held) {
            for worker in pool.workers.values() {
                if worker.state == WorkerState::Running {
                    self.signal_worker(worker, pool.spec.stop_signal, SignalReason::Stop);
                }
            }
        }
        for pool in &self.pools {
            for worker in pool.workers.values() {
                if let (Some(pid), Some(start)) = (worker.pid, worker.start_time) {
                    self.stop_signalled.insert((pid, start));
                }
            }
        }
        self.orphans_dirty = true;
    }

    /// Advances the stop state machine; true when the session is over.
    /// `congested`: the consumer lags, so exits wait (only kernel events are read).
    pub(super) fn step_phase(&mut self, congested: bool) -> bool {
        if congested {
            self.service_kernel();
        } else {
            self.reap();
        }
        let now = self.os.now();
        match self.phase {
            Phase::Running => {
                if self.quit {
                    return !self.os.has_children();
                }
                if self.all_workers_settled() {
                    if self.os.has_children() {
                        self.begin_stop(
                            "every worker ended; stopping leftover descendants".into(),
                            false,
                        );
                    } else {
                        return self.config.exit_when_done;
                    }
                }
            }
            Phase::Stopping { deadline } => {
                if !self.os.has_children() {
                    return self.settle();
                }
                self.release_held_pools(now);
                if self.orphans_dirty && !self.any_worker_running() {
                    self.signal_orphans();
                }
                self.kill_overdue_pools(now);
                if now >= deadline {
                    self.notice(
                        NoticeLevel::Warning,
                        format!(
                            "stop timeout ({:.1}s) reached: SIGKILL for what remains of the tree",
                            self.stop_timeout_in_force.as_secs_f64()
                        ),
                    );
                    self.phase = Phase::Killing {
                        next_round: now,
                        give_up: now + KILL_GIVE_UP,
                    };
                }
            }
            Phase::Killing {
                next_round,
                give_up,
            } => {
                if !self.os.has_children() {
                    return self.settle();
                }
                // Zombies left for a lagging consumer are not survivors of SIGKILL.
                if now >= give_up && self.live_descendants() {
                    self.notice(
                        NoticeLevel::Error,
                        "processes survived SIGKILL for 10s (uninterruptible sleep?)".into(),
                    );
                    return self.settle();
                }
                if now >= next_round {
                    self.kill_round();
                    self.phase = Phase::Killing {
                        next_round: now + KILL_ROUND,
                        give_up,
                    };
                }
            }
        }
        false
    }

    /// SIGKILL for the workers (and their descendants) of each pool whose own stop timeout
    /// has passed; the rest of the tree waits for the session's deadline.
    fn kill_overdue_pools(&mut self, now: Instant) {
        let mut targets = Vec::new();
        for pool in &mut self.pools {
            if pool.kill_at.is_none_or(|at| now < at) {
                continue;
            }
            pool.kill_at = None;
            let running: Vec<(i32, Option<u64>)> = pool
                .workers
                .values()
                .filter(|w| w.state == WorkerState::Running)
                .filter_map(|w| w.pid.map(|pid| (pid, w.start_time)))
                .collect();
            if !running.is_empty() {
                let timeout = pool
                    .spec
                    .policy
                    .stop_timeout
                    .unwrap_or(self.config.stop_timeout);
                targets.push((pool.spec.name.clone(), timeout, running));
            }
        }
        for (name, timeout, running) in targets {
            self.notice(
                NoticeLevel::Warning,
                format!(
                    "pool {name:?}: stop timeout ({:.1}s) reached: SIGKILL for its workers",
                    timeout.as_secs_f64()
                ),
            );
            for (pid, start_time) in running {
                self.kill_worker_tree(pid, start_time);
            }
        }
    }

    /// Nothing is left running: back to idle, or the end when quitting.
    fn settle(&mut self) -> bool {
        for pool in &mut self.pools {
            pool.kill_at = None;
            pool.launch.stop_held = false;
        }
        self.phase = Phase::Running;
        self.quit || (self.all_workers_settled() && self.config.exit_when_done)
    }

    /// The stop signal for children of the engine that are not workers (orphans).
    fn signal_orphans(&mut self) {
        self.orphans_dirty = false;
        let Ok(tree) = self.os.descendants(self.me) else {
            return;
        };
        for stat in tree {
            if stat.ppid != self.me
                || stat.state == 'Z'
                || self.by_pid.contains_key(&stat.pid)
                || !self.stop_signalled.insert((stat.pid, stat.start_time))
            {
                continue;
            }
            let signo = libc::SIGTERM;
            let target = Target::Verified {
                pid: stat.pid,
                start_time: Some(stat.start_time),
            };
            let result = self.os.signal(target, signo);
            self.emit_signal(stat.pid, signo, SignalReason::Leftover, result);
        }
    }

    /// Whether some descendant is still running (not a zombie waiting to be reaped).
    fn live_descendants(&self) -> bool {
        self.os
            .descendants(self.me)
            .map_or(true, |tree| tree.iter().any(|stat| stat.state != 'Z'))
    }

    /// SIGKILL for every live descendant not yet sent one.
    fn kill_round(&mut self) {
        self.kill_below(self.me);
    }

    /// SIGKILL for a worker, then for its descendants (reason `escalation`).
    pub(super) fn kill_worker_tree(&mut self, pid: i32, start_time: Option<u64>) {
        // The descendants are found while they still hang below the worker, and killed
        // after it: killed first, they could let the worker end on its own (a shell's `wait`
        // returning) before its SIGKILL, and its exit would not say what forkscope did.
        // Their identities hold after re-parenting.
        let below = self.os.descendants(pid);
        if let Some(start) = start_time
            && self.kill_signalled.insert((pid, start))
        {
            let target = Target::Verified {
                pid,
                start_time: Some(start),
            };
            let result = self.os.signal(target, libc::SIGKILL);
            self.emit_signal(pid, libc::SIGKILL, SignalReason::Escalation, result);
        }
        self.kill_walked(pid, below);
    }

    /// SIGKILL for every live descendant of `root` not yet sent one (reason `escalation`).
    fn kill_below(&mut self, root: i32) {
        let walked = self.os.descendants(root);
        self.kill_walked(root, walked);
    }

    /// SIGKILL for every live process of `walked` (the tree below `root`) not yet sent one.
    fn kill_walked(&mut self, root: i32, walked: std::io::Result<Vec<ProcStat>>) {
        let os = &self.os;
        let walked = walked.map(|tree| {
            signal_each(tree, &mut self.kill_signalled, |pid, start_time| {
                let start_time = Some(start_time);
                os.signal(Target::Verified { pid, start_time }, libc::SIGKILL)
            })
        });
        match walked {
            Ok(sent) => {
                for target in sent {
                    self.emit_signal(
                        target.pid,
                        libc::SIGKILL,
                        SignalReason::Escalation,
                        target.result,
                    );
                }
            }
            Err(err) => tracing::warn!("scanning /proc below {root} for SIGKILL failed: {err}"),
        }
    }

    pub(super) fn emit_signal(
        &self,
        pid: i32,
        signo: i32,
        reason: SignalReason,
        result: Result<(), crate::supervise::pidfd::SignalError>,
    ) {
        self.events
            .emit(EventBody::signal(pid, signo, reason, result));
    }

    /// Whether `pid` is a live descendant of the engine (never signal outside the tree).
    pub(super) fn in_tree(&self, pid: i32) -> bool {
        self.os.descends_from(pid, self.me)
    }
}
