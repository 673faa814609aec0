//! Reload (`forkscope up`: SIGHUP or the `reload` action): the pools are read again and the
//! running session is brought to them. Added pools start (after their dependencies), removed
//! pools stop, resized pools grow or shrink, changed pools (anything but the size) restart
//! their workers with the new spec; unchanged pools are not touched. A file that does not
//! load is refused with its error and nothing changes. Workers stopped here get SIGKILL (and
//! their descendants) at their pool's stop timeout, as in a full stop.

use std::time::Instant;

use super::launch::Readiness;
use super::{Engine, Pool, Worker, WorkerState};
use crate::model::{EventBody, NoticeLevel, SignalReason};
use crate::supervise::PoolSpec;

/// A worker asked to stop by a reload or a resize.
#[derive(Debug)]
pub(super) struct Retiring {
    pub at: Instant,
    pub pid: i32,
    pub start_time: Option<u64>,
    pub pool: String,
}

/// What a reload changed.
#[derive(Debug, Default)]
struct Changes {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
    resized: Vec<String>,
}

impl Engine {
    /// Reads the pools again and applies them, or reports why not.
    pub(super) fn reload(&mut self, why: &str) {
        let refused = |engine: &Engine, error: String| {
            engine.notice(NoticeLevel::Error, format!("reload refused: {error}"));
            engine.events.emit(EventBody::Reload {
                pid: None,
                ok: false,
                error: Some(error),
                added: Vec::new(),
                removed: Vec::new(),
                changed: Vec::new(),
                resized: Vec::new(),
                pools: Vec::new(),
            });
        };
        if self.quit {
            return refused(self, "forkscope is stopping".into());
        }
        let Some(reloader) = self.config.reload.clone() else {
            return refused(
                self,
                "this session has no config file to read again (reload is for `forkscope up`)"
                    .into(),
            );
        };
        let specs = match (reloader.0)() {
            Ok(specs) => specs,
            Err(error) => return refused(self, error),
        };
        tracing::info!("reload ({why}): {} pools", specs.len());
        let changes = self.apply(specs);
        let pools = self
            .pools
            .iter()
            .filter(|p| !p.launch.removed)
            .map(Pool::info)
            .collect();
        self.events.emit(EventBody::Reload {
            pid: None,
            ok: true,
            error: None,
            added: changes.added,
            removed: changes.removed,
            changed: changes.changed,
            resized: changes.resized,
            pools,
        });
        // Added pools without dependencies start now, not at the next turn.
        self.launch_step();
    }

    fn apply(&mut self, specs: Vec<PoolSpec>) -> Changes {
        let mut changes = Changes::default();
        let gone: Vec<usize> = (0..self.pools.len())
            .filter(|&p| {
                !self.pools[p].launch.removed
                    && !specs.iter().any(|s| s.name == self.pools[p].spec.name)
            })
            .collect();
        for pool in gone {
            changes.removed.push(self.pools[pool].spec.name.clone());
            self.remove_pool(pool);
        }
        for spec in specs {
            let name = spec.name.clone();
            if let Some(pool) = self.find_live(&name) {
                let old = &self.pools[pool].spec;
                let mut same = spec.clone();
                same.size = old.size;
                if same != *old {
                    changes.changed.push(name.clone());
                    self.change_pool(pool, spec.clone());
                }
                if self.pools[pool].target != spec.size {
                    changes.resized.push(name);
                    self.resize_pool(pool, spec.size);
                }
                self.pools[pool].spec.size = spec.size;
                continue;
            }
            changes.added.push(name.clone());
            // A pool removed earlier whose workers may still be stopping comes back in its
            // own slot, so a worker index is never held twice.
            match self.pools.iter().position(|p| p.spec.name == name) {
                Some(pool) => {
                    let target = spec.size;
                    self.pools[pool].spec = spec;
                    self.pools[pool].target = target;
                    self.pools[pool].launch = Default::default();
                }
                None => self.pools.push(Pool::new(spec)),
            }
        }
        changes
    }

    /// Stops every worker of a removed pool.
    fn remove_pool(&mut self, pool: usize) {
        self.cancel_ready_check(pool);
        let launch = &mut self.pools[pool].launch;
        launch.removed = true;
        launch.launched = false;
        launch.started = false;
        launch.readiness = Readiness::None;
        self.pools[pool].target = 0;
        let indexes: Vec<u32> = self.pools[pool].workers.keys().copied().collect();
        for index in indexes {
            self.retire(pool, index, SignalReason::Scale);
        }
    }

    /// New spec: running workers stop with the old stop signal and start again with the new
    /// spec when they are gone; ended ones start again now.
    fn change_pool(&mut self, pool: usize, spec: PoolSpec) {
        let old = std::mem::replace(&mut self.pools[pool].spec, spec);
        let timeout = old.policy.stop_timeout.unwrap_or(self.config.stop_timeout);
        let launched = self.pools[pool].launch.launched;
        let indexes: Vec<u32> = self.pools[pool].workers.keys().copied().collect();
        for index in indexes {
            let Some(worker) = self.pools[pool].workers.get_mut(&index) else {
                continue;
            };
            match worker.state {
                WorkerState::Running => {
                    let signalled = worker.restart_now || worker.retiring;
                    worker.restart_now = true;
                    worker.retiring = false;
                    if !signalled {
                        let worker = &self.pools[pool].workers[&index];
                        self.signal_worker(worker, old.stop_signal, SignalReason::Restart);
                        self.add_deadline(pool, index, timeout);
                    }
                }
                WorkerState::Ended | WorkerState::Failed if launched => {
                    worker.tracker = Default::default();
                    worker.restarts += 1;
                    self.start_worker((pool, index));
                }
                _ => {}
            }
        }
        if launched && self.pools[pool].spec.launch.ready.is_some() {
            self.start_ready_check(pool);
        }
    }

    /// Grows (new workers start, if the pool is launched) or shrinks (the highest indexes
    /// stop) a pool.
    pub(super) fn resize_pool(&mut self, pool: usize, size: u32) {
        let from = self.pools[pool].target;
        self.pools[pool].target = size;
        self.events.emit(EventBody::Scale {
            pid: None,
            pool: self.pools[pool].spec.name.clone(),
            from,
            to: size,
        });
        if self.pools[pool].launch.launched {
            for index in from..size {
                if self.claim_slot(pool, index) {
                    self.queue_start(pool, index);
                }
            }
        }
        let retiring: Vec<u32> = self.pools[pool]
            .workers
            .keys()
            .copied()
            .filter(|index| *index >= size)
            .collect();
        for index in retiring {
            self.retire(pool, index, SignalReason::Scale);
        }
    }

    /// Makes worker slot `index` of `pool` ready to start; false when it must not start now
    /// (running, or still stopping: it starts again once it is gone).
    pub(super) fn claim_slot(&mut self, pool: usize, index: u32) -> bool {
        let workers = &mut self.pools[pool].workers;
        match workers.get_mut(&index) {
            None => {
                workers.insert(index, Worker::new());
                true
            }
            Some(worker) if worker.state == WorkerState::Running => {
                if worker.retiring {
                    worker.retiring = false;
                    worker.restart_now = true;
                }
                false
            }
            Some(worker) => {
                worker.tracker = Default::default();
                true
            }
        }
    }

    /// Stops a worker for good (its slot goes once it is gone).
    fn retire(&mut self, pool: usize, index: u32, reason: SignalReason) {
        let stop_signal = self.pools[pool].spec.stop_signal;
        let timeout = self.pools[pool]
            .spec
            .policy
            .stop_timeout
            .unwrap_or(self.config.stop_timeout);
        let Some(worker) = self.pools[pool].workers.get_mut(&index) else {
            return;
        };
        if worker.state != WorkerState::Running {
            self.pools[pool].workers.remove(&index);
            return;
        }
        let signalled = worker.restart_now || worker.retiring;
        worker.restart_now = false;
        worker.retiring = true;
        if !signalled {
            let worker = &self.pools[pool].workers[&index];
            self.signal_worker(worker, stop_signal, reason);
            self.add_deadline(pool, index, timeout);
        }
    }

    fn add_deadline(&mut self, pool: usize, index: u32, timeout: std::time::Duration) {
        let Some(worker) = self.pools[pool].workers.get(&index) else {
            return;
        };
        let Some(pid) = worker.pid else { return };
        self.launcher.retiring.push(Retiring {
            at: self.os.now() + timeout,
            pid,
            start_time: worker.start_time,
            pool: self.pools[pool].spec.name.clone(),
        });
    }

    /// SIGKILL (the worker, then its descendants) for retiring workers still there at their deadline.
    pub(super) fn retire_timers(&mut self, now: Instant) {
        if self.launcher.retiring.iter().all(|r| r.at > now) {
            return;
        }
        let (due, later): (Vec<Retiring>, Vec<Retiring>) =
            std::mem::take(&mut self.launcher.retiring)
                .into_iter()
                .partition(|r| r.at <= now);
        self.launcher.retiring = later;
        for retiring in due {
            // Still the same process (not reaped, pid not reused)?
            let same = self
                .by_pid
                .get(&retiring.pid)
                .and_then(|&(p, i)| self.pools.get(p)?.workers.get(&i))
                .is_some_and(|w| w.start_time == retiring.start_time);
            if !same {
                continue;
            }
            self.notice(
                NoticeLevel::Warning,
                format!(
                    "pool {:?}: stop timeout reached: SIGKILL for worker pid {}",
                    retiring.pool, retiring.pid
                ),
            );
            self.kill_worker_tree(retiring.pid, retiring.start_time);
        }
    }
}
