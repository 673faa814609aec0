//! Launching pools in dependency order (`depends_on`): a pool starts once every pool it
//! depends on is started, meaning each of its workers has run `start_secs` (or ended with a
//! success code, as a one-shot job does) and its `ready` check, if any, has passed. Stopping
//! goes the other way: a pool gets its stop signal once no pool depending on it has a worker
//! running. Readiness checks run on threads of their own (`supervise/ready.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Engine, Pool, WorkerState};
use crate::model::{EventBody, NoticeLevel, SignalReason};
use crate::supervise::PoolSpec;
use crate::supervise::ready::{Checks, Outcome};

/// Where a pool's readiness check stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Readiness {
    /// No check configured, or not launched yet.
    #[default]
    None,
    Checking,
    Passed,
    Failed,
}

/// A pool's launch state.
#[derive(Debug, Default)]
pub(super) struct PoolLaunch {
    /// Its workers were started (its dependencies were started).
    pub launched: bool,
    /// Latched once the pool counts as started (for the pools that depend on it).
    pub started: bool,
    pub readiness: Readiness,
    /// Which readiness check is current (a reload may start another).
    pub check_id: u64,
    pub cancel: Option<Arc<AtomicBool>>,
    /// Removed by a reload: kept only until its workers are gone.
    pub removed: bool,
    /// While stopping: waits for the pools that depend on it.
    pub stop_held: bool,
}

/// The engine's side of launching: readiness outcomes and the retiring workers' deadlines.
#[derive(Debug, Default)]
pub(super) struct Launcher {
    pub checks: Checks,
    pub next_check_id: u64,
    /// Workers stopped by a reload or a resize: SIGKILL at their pool's stop timeout.
    pub retiring: Vec<super::reload::Retiring>,
}

impl Pool {
    pub(super) fn new(spec: PoolSpec) -> Pool {
        Pool {
            target: spec.size,
            spec,
            workers: BTreeMap::new(),
            kill_at: None,
            launch: PoolLaunch::default(),
        }
    }

    /// The pool as `session` and `reload` events describe it.
    pub(super) fn info(&self) -> crate::model::PoolInfo {
        crate::model::PoolInfo {
            name: self.spec.name.clone(),
            size: self.target,
            argv: self.spec.argv.clone(),
            restart: self.spec.restart.as_str().to_string(),
        }
    }
}

impl Engine {
    /// One turn of launching: readiness outcomes, pools that became started, pools whose
    /// dependencies are all started, retiring workers past their stop timeout.
    pub(super) fn launch_step(&mut self) {
        let now = self.os.now();
        self.retire_timers(now);
        for outcome in self.launcher.checks.take() {
            self.on_ready(outcome);
        }
        if self.quit {
            return;
        }
        if !self
            .pools
            .iter()
            .any(|p| !p.launch.launched && !p.launch.removed)
        {
            return;
        }
        for pool in 0..self.pools.len() {
            if self.pools[pool].launch.launched && !self.pools[pool].launch.started {
                self.pools[pool].launch.started = self.pool_is_up(pool, now);
            }
        }
        for pool in 0..self.pools.len() {
            let launch = &self.pools[pool].launch;
            if launch.launched || launch.removed {
                continue;
            }
            let ready = self.pools[pool].spec.launch.depends_on.iter().all(|dep| {
                self.find_live(dep)
                    .is_none_or(|d| self.pools[d].launch.started)
            });
            if ready {
                self.launch_pool(pool);
            }
        }
    }

    /// A pool's index by name, among those not removed.
    pub(super) fn find_live(&self, name: &str) -> Option<usize> {
        self.pools
            .iter()
            .position(|p| p.spec.name == name && !p.launch.removed)
    }

    /// Starts every worker of a pool, and its readiness check.
    fn launch_pool(&mut self, pool: usize) {
        self.pools[pool].launch.launched = true;
        for index in 0..self.pools[pool].target {
            if self.claim_slot(pool, index) {
                self.queue_start(pool, index);
            }
        }
        self.start_queued();
        self.start_ready_check(pool);
    }

    /// Starts (or restarts) the pool's readiness check, if it has one.
    pub(super) fn start_ready_check(&mut self, pool: usize) {
        let launch = &mut self.pools[pool].launch;
        if let Some(cancel) = launch.cancel.take() {
            cancel.store(true, Ordering::Relaxed);
        }
        let Some(check) = self.pools[pool].spec.launch.ready.clone() else {
            self.pools[pool].launch.readiness = Readiness::None;
            return;
        };
        self.launcher.next_check_id += 1;
        let id = self.launcher.next_check_id;
        let name = self.pools[pool].spec.name.clone();
        let cancel = self.launcher.checks.start(name, id, check);
        let launch = &mut self.pools[pool].launch;
        launch.check_id = id;
        launch.cancel = Some(cancel);
        launch.readiness = Readiness::Checking;
    }

    /// Abandons a pool's readiness check (the pool is removed).
    pub(super) fn cancel_ready_check(&mut self, pool: usize) {
        if let Some(cancel) = self.pools[pool].launch.cancel.take() {
            cancel.store(true, Ordering::Relaxed);
        }
    }

    fn on_ready(&mut self, outcome: Outcome) {
        let Some(pool) = self.find_live(&outcome.pool) else {
            return;
        };
        if self.pools[pool].launch.check_id != outcome.id {
            return;
        }
        let check = self.pools[pool]
            .spec
            .launch
            .ready
            .as_ref()
            .map(|c| c.probe.to_string())
            .unwrap_or_default();
        self.pools[pool].launch.cancel = None;
        self.pools[pool].launch.readiness = if outcome.ok {
            Readiness::Passed
        } else {
            Readiness::Failed
        };
        if !outcome.ok {
            let waiting: Vec<&str> = self
                .pools
                .iter()
                .filter(|p| !p.launch.removed && p.spec.launch.depends_on.contains(&outcome.pool))
                .map(|p| p.spec.name.as_str())
                .collect();
            let unstarted = if waiting.is_empty() {
                String::new()
            } else {
                format!("; not started: {}", waiting.join(", "))
            };
            self.notice(
                NoticeLevel::Error,
                format!(
                    "pool {:?} not ready after {:.1}s ({check}): {}{unstarted}",
                    outcome.pool,
                    outcome.after.as_secs_f64(),
                    outcome.error.as_deref().unwrap_or("failed")
                ),
            );
        }
        self.events.emit(EventBody::Ready {
            pid: None,
            pool: outcome.pool,
            ok: outcome.ok,
            check,
            after_ms: outcome.after.as_millis() as u64,
            error: outcome.error,
        });
    }

    /// Whether every worker of the pool has run `start_secs` (or ended a success) and its
    /// readiness check, if any, passed.
    fn pool_is_up(&self, pool: usize, now: Instant) -> bool {
        let pool = &self.pools[pool];
        if !matches!(pool.launch.readiness, Readiness::None | Readiness::Passed) {
            return false;
        }
        let start_secs = pool.spec.policy.start_secs;
        (0..pool.target).all(|index| {
            pool.workers.get(&index).is_some_and(|w| match w.state {
                WorkerState::Running => now.saturating_duration_since(w.started) >= start_secs,
                WorkerState::Ended => w.last.is_some_and(|s| pool.spec.policy.is_success(s)),
                _ => false,
            })
        })
    }

    /// Some pool waits for its dependencies and may still start (none of them is finished
    /// without being started).
    pub(super) fn launch_pending(&self) -> bool {
        if self.quit {
            return false;
        }
        let now = self.os.now();
        self.pools.iter().any(|p| {
            !p.launch.launched
                && !p.launch.removed
                && p.spec.launch.depends_on.iter().all(|dep| {
                    self.find_live(dep).is_none_or(|d| {
                        let dep = &self.pools[d];
                        let settled = dep
                            .workers
                            .values()
                            .all(|w| matches!(w.state, WorkerState::Ended | WorkerState::Failed));
                        dep.launch.readiness != Readiness::Failed
                            && !(dep.launch.launched && settled && !self.pool_is_up(d, now))
                    })
                })
        })
    }

    /// When launching has something to do next: a worker reaching `start_secs` while some
    /// pool waits, or a retiring worker's stop timeout.
    pub(super) fn launch_deadline(&self) -> Option<Instant> {
        let retire = self.launcher.retiring.iter().map(|r| r.at).min();
        let waiting = self
            .pools
            .iter()
            .any(|p| !p.launch.launched && !p.launch.removed);
        if !waiting || self.quit {
            return retire;
        }
        let up = self
            .pools
            .iter()
            .filter(|p| p.launch.launched && !p.launch.started)
            .flat_map(|p| {
                p.workers
                    .values()
                    .filter(|w| w.state == WorkerState::Running)
                    .map(|w| w.started + p.spec.policy.start_secs)
            })
            .min();
        match (retire, up) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// For each pool: whether a pool depending on it still has a worker running (it must
    /// wait before getting its stop signal).
    pub(super) fn held_for_dependents(&self) -> Vec<bool> {
        self.pools
            .iter()
            .map(|pool| {
                self.pools.iter().any(|other| {
                    other.spec.launch.depends_on.contains(&pool.spec.name)
                        && !other.launch.removed
                        && other
                            .workers
                            .values()
                            .any(|w| w.state == WorkerState::Running)
                })
            })
            .collect()
    }

    /// The longest time stopping may take when pools stop one dependency level after
    /// another: along each chain of dependents, the sum of their stop timeouts.
    pub(super) fn chained_stop_timeout(&self) -> Duration {
        let timeout = |p: &Pool| {
            p.spec
                .policy
                .stop_timeout
                .unwrap_or(self.config.stop_timeout)
        };
        let n = self.pools.len();
        // chain[i]: pool i's timeout plus the longest chain of the pools depending on it.
        let mut chain: Vec<Duration> = self.pools.iter().map(timeout).collect();
        // Acyclic (the config checks): n rounds settle every chain.
        for _ in 0..n {
            let mut changed = false;
            for i in 0..n {
                let name = &self.pools[i].spec.name;
                let longest_dependent = (0..n)
                    .filter(|&j| self.pools[j].spec.launch.depends_on.contains(name))
                    .map(|j| chain[j])
                    .max()
                    .unwrap_or_default();
                let value = timeout(&self.pools[i]) + longest_dependent;
                if value > chain[i] {
                    chain[i] = value;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        chain.into_iter().max().unwrap_or_default()
    }

    /// While stopping: the stop signal for held pools whose dependents have no worker left.
    pub(super) fn release_held_pools(&mut self, now: Instant) {
        if !self.pools.iter().any(|p| p.launch.stop_held) {
            return;
        }
        let held = self.held_for_dependents();
        for (pool, still_held) in held.into_iter().enumerate() {
            if !self.pools[pool].launch.stop_held || still_held {
                continue;
            }
            self.pools[pool].launch.stop_held = false;
            let timeout = self.pools[pool]
                .spec
                .policy
                .stop_timeout
                .unwrap_or(self.config.stop_timeout);
            self.pools[pool].kill_at = Some(now + timeout);
            let pool = &self.pools[pool];
            for worker in pool.workers.values() {
                if worker.state == WorkerState::Running {
                    self.signal_worker(worker, pool.spec.stop_signal, SignalReason::Stop);
                }
            }
        }
    }
}
