//! Worker lifecycle inside the engine: starting, exits, restart decisions, the final status.

use std::time::Duration;

use super::{Engine, Worker, WorkerRef, WorkerState};
use crate::model::Stream;
use crate::model::policy::Decision;
use crate::model::{EventBody, ExitStatus, SignalReason};
use crate::supervise::os::{SpawnRequest, Target};

/// How long one turn of the loop may spend starting queued workers.
const START_BUDGET: Duration = Duration::from_millis(1);

impl Engine {
    /// Queues worker slot `index` of `pool` (which exists) for [`Engine::start_queued`].
    pub(super) fn queue_start(&mut self, pool: usize, index: u32) {
        if let Some(worker) = self.pools[pool].workers.get_mut(&index) {
            worker.state = WorkerState::Starting;
            self.starting.push_back((pool, index));
        }
    }

    /// Starts queued workers for at most [`START_BUDGET`] (at least one), leaving the rest
    /// for the next turn.
    pub(super) fn start_queued(&mut self) {
        let began = self.os.now();
        while let Some(worker) = self.starting.pop_front() {
            let queued = self
                .worker_mut(worker)
                .is_some_and(|w| w.state == WorkerState::Starting);
            if queued {
                self.start_worker(worker);
            }
            if self.os.now().duration_since(began) >= START_BUDGET {
                return;
            }
        }
    }

    /// Starts (or restarts) one worker slot; failures become `spawn_failed` events.
    pub(super) fn start_worker(&mut self, (pool, index): WorkerRef) {
        let Some(spec) = self.pools.get(pool).map(|p| p.spec.clone()) else {
            return;
        };
        let size = self.pools[pool].target;
        let trace = self.ptrace.is_some();
        let result = self.os.spawn(&SpawnRequest {
            spec: &spec,
            index,
            size,
            extra_env: &self.config.extra_env,
            trace,
            io: &self.config.io,
        });
        let now = self.os.now();
        let Some(worker) = self.pools[pool].workers.get_mut(&index) else {
            return;
        };
        match result {
            Ok(spawned) => {
                worker.pid = Some(spawned.pid);
                worker.pidfd = spawned.pidfd;
                worker.start_time = spawned.start_time;
                worker.started = now;
                worker.state = WorkerState::Running;
                worker.spawn_failed = false;
                let restarts = worker.restarts;
                self.by_pid.insert(spawned.pid, (pool, index));
                if let Some(tracer) = self.ptrace.as_mut() {
                    tracer.adopt_worker(spawned.pid);
                }
                self.tracker.adopt_with_stat(
                    spawned.pid,
                    self.me,
                    spawned.start_time,
                    spawned.stat,
                );
                self.events.emit(EventBody::Spawn {
                    pid: spawned.pid,
                    ppid: self.me,
                    pool: spec.name.clone(),
                    worker: index,
                    argv: spec.argv.clone(),
                    start_time: spawned.start_time,
                    restarts,
                });
                let registry = self.poll.registry();
                let pty = spawned.pty;
                let pipes = [
                    spawned.stdout.map(|fd| (Stream::Stdout, fd)),
                    spawned.stderr.map(|fd| (Stream::Stderr, fd)),
                ];
                for (stream, fd) in pipes.into_iter().flatten() {
                    let added = if pty {
                        self.captures.add_pty(registry, spawned.pid, fd)
                    } else {
                        self.captures.add(registry, spawned.pid, stream, fd)
                    };
                    if let Err(err) = added {
                        tracing::warn!("cannot capture output of {}: {err}", spawned.pid);
                    }
                }
            }
            Err(err) => {
                worker.pid = None;
                worker.spawn_failed = true;
                self.events.emit(EventBody::SpawnFailed {
                    pid: None,
                    pool: spec.name.clone(),
                    worker: index,
                    argv: spec.argv.clone(),
                    error: err.to_string(),
                });
                // For the restart policy a spawn failure is a failed run of zero length.
                self.decide((pool, index), ExitStatus::Exited(127), None);
            }
        }
    }

    /// A worker was reaped.
    pub(super) fn worker_exited(&mut self, (pool, index): WorkerRef, status: ExitStatus) {
        let me = self.me;
        let name = self.pools[pool].spec.name.clone();
        let Some(worker) = self.pools[pool].workers.get_mut(&index) else {
            return;
        };
        let pid = worker.pid.take().unwrap_or(0);
        worker.pidfd = None;
        worker.last = Some(status);
        self.events.emit(EventBody::Exit {
            pid,
            ppid: me,
            status,
            pool: Some(name),
            worker: Some(index),
            source: crate::model::TrackSource::Engine,
            zombie: false,
        });
        if worker.retiring {
            self.pools[pool].workers.remove(&index);
            return;
        }
        if self.quit {
            worker.state = WorkerState::Ended;
            return;
        }
        if worker.restart_now {
            worker.restart_now = false;
            worker.tracker = Default::default();
            worker.restarts += 1;
            self.start_worker((pool, index));
            return;
        }
        self.decide((pool, index), status, Some(pid));
    }

    /// Applies the pool's restart policy to a worker that ended (or failed to start).
    fn decide(&mut self, (pool, index): WorkerRef, status: ExitStatus, pid: Option<i32>) {
        let spec = &self.pools[pool].spec;
        let (policy, name, pool_policy) = (spec.restart, spec.name.clone(), spec.policy.clone());
        let quit = self.quit;
        let Some(worker) = self.pools[pool].workers.get_mut(&index) else {
            return;
        };
        if quit {
            worker.state = WorkerState::Ended;
            return;
        }
        let now = self.os.now();
        let uptime = now.saturating_duration_since(worker.started);
        match worker
            .tracker
            .on_exit(policy, status, uptime, now, &pool_policy)
        {
            Decision::Restart { delay, attempt } => {
                worker.state = WorkerState::Waiting(now + delay);
                self.events.emit(EventBody::Restart {
                    pid,
                    pool: name,
                    worker: index,
                    attempt,
                    delay_ms: delay.as_millis() as u64,
                });
            }
            Decision::Done => {
                worker.state = if worker.spawn_failed {
                    WorkerState::Failed
                } else {
                    WorkerState::Ended
                };
            }
            Decision::Failed { reason } => {
                worker.state = WorkerState::Failed;
                self.events.emit(EventBody::WorkerFailed {
                    pid,
                    pool: name,
                    worker: index,
                    reason,
                });
            }
        }
    }

    /// Sends `signo` to a running worker through its pidfd and reports it.
    pub(super) fn signal_worker(&self, worker: &Worker, signo: i32, reason: SignalReason) {
        let Some(pid) = worker.pid else {
            return;
        };
        let pidfd = worker.pidfd.as_ref();
        let result = self.os.signal(Target::Child { pid, pidfd }, signo);
        self.events
            .emit(EventBody::signal(pid, signo, reason, result));
    }

    /// Every worker has ended for good (none running, none waiting to restart).
    pub(super) fn all_workers_settled(&self) -> bool {
        self.pools.iter().all(|pool| {
            pool.workers
                .values()
                .all(|w| matches!(w.state, WorkerState::Ended | WorkerState::Failed))
        }) && !self.launch_pending()
    }

    pub(super) fn any_worker_running(&self) -> bool {
        self.pools.iter().any(|pool| {
            pool.workers
                .values()
                .any(|w| w.state == WorkerState::Running)
        })
    }

    /// 0 when every worker's last run was a success (`exit 0`, or a code in the pool's
    /// `success_codes`) and none failed (a failed start included), else 1.
    pub(super) fn final_status(&self) -> i32 {
        let all_ok = self.pools.iter().all(|pool| {
            pool.workers.values().all(|w| {
                !w.spawn_failed
                    && w.state != WorkerState::Failed
                    && w.last.is_some_and(|s| pool.spec.policy.is_success(s))
            })
        });
        if all_ok { 0 } else { 1 }
    }
}
