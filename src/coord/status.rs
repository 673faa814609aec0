//! What `ctl status` reports, folded from the lifecycle events: the pools and their worker
//! slots (pid, start time, state, restarts, last exit), the number of live processes, and
//! whether the session is stopping. Pure: fed by the hub, read by the service.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::model::{Event, EventBody, ExitStatus};

/// Where a worker slot stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    Running,
    /// Exited; the policy starts it again.
    Restarting,
    /// Exited for good.
    Ended,
    /// Crash loop or spawn failure.
    Failed,
}

/// One worker slot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerStatus {
    pub worker: u32,
    pub pid: Option<i32>,
    pub start_time: Option<u64>,
    pub state: SlotState,
    pub restarts: u32,
    pub last_exit: Option<ExitStatus>,
}

/// One pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolStatus {
    pub name: String,
    pub size: u32,
    pub restart: String,
    pub argv: Vec<String>,
    pub workers: BTreeMap<u32, WorkerStatus>,
}

/// The fold; serialised as the `status` result (with the service's barriers and watches).
#[derive(Clone, Debug, Default, Serialize)]
pub struct StatusFold {
    pub engine_pid: i32,
    pub version: String,
    /// Seconds since forkscope started, as of the newest event.
    pub t: f64,
    pub pools: Vec<PoolStatus>,
    /// Live processes of the tree (workers and descendants).
    pub processes: usize,
    pub stopping: Option<String>,
    /// The session's exit status once it has ended.
    pub ended: Option<i32>,
    #[serde(skip)]
    live: HashSet<i32>,
}

impl StatusFold {
    pub fn pool_mut(&mut self, name: &str) -> Option<&mut PoolStatus> {
        self.pools.iter_mut().find(|p| p.name == name)
    }

    pub fn pool(&self, name: &str) -> Option<&PoolStatus> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// Pool and worker of a running worker's pid.
    pub fn worker_of(&self, pid: i32) -> Option<(&str, u32)> {
        self.pools.iter().find_map(|pool| {
            pool.workers
                .values()
                .find(|w| w.pid == Some(pid) && w.state == SlotState::Running)
                .map(|w| (pool.name.as_str(), w.worker))
        })
    }

    /// Applies one lifecycle event.
    pub fn apply(&mut self, event: &Event) {
        self.t = self.t.max(event.t);
        match &event.body {
            EventBody::Session {
                pid,
                version,
                pools,
                ..
            } => {
                self.engine_pid = *pid;
                self.version = version.clone();
                self.pools = pools
                    .iter()
                    .map(|p| PoolStatus {
                        name: p.name.clone(),
                        size: p.size,
                        restart: p.restart.clone(),
                        argv: p.argv.clone(),
                        workers: BTreeMap::new(),
                    })
                    .collect();
            }
            EventBody::Spawn {
                pid,
                pool,
                worker,
                start_time,
                restarts,
                ..
            } => {
                self.live.insert(*pid);
                if let Some(pool) = self.pool_mut(pool) {
                    pool.workers.insert(
                        *worker,
                        WorkerStatus {
                            worker: *worker,
                            pid: Some(*pid),
                            start_time: *start_time,
                            state: SlotState::Running,
                            restarts: *restarts,
                            last_exit: None,
                        },
                    );
                }
            }
            EventBody::Fork { pid, .. } => {
                self.live.insert(*pid);
            }
            EventBody::Exit {
                pid,
                status,
                pool,
                worker,
                ..
            } => {
                self.live.remove(pid);
                let stopping = self.stopping.is_some();
                if let (Some(pool), Some(worker)) = (pool, worker)
                    && let Some(pool) = self.pool_mut(pool)
                {
                    let restart = pool.restart.clone();
                    if let Some(slot) = pool.workers.get_mut(worker) {
                        slot.last_exit = Some(*status);
                        slot.state = if !stopping && will_restart(&restart, *status) {
                            SlotState::Restarting
                        } else {
                            SlotState::Ended
                        };
                    }
                }
            }
            EventBody::WorkerFailed { pool, worker, .. }
            | EventBody::SpawnFailed { pool, worker, .. } => {
                if let Some(slot) = self.pool_mut(pool).and_then(|p| p.workers.get_mut(worker)) {
                    slot.state = SlotState::Failed;
                }
            }
            EventBody::Scale { pool, to, .. } => {
                if let Some(pool) = self.pool_mut(pool) {
                    pool.size = *to;
                }
            }
            EventBody::Stopping { reason, .. } => self.stopping = Some(reason.clone()),
            EventBody::End { status, .. } => {
                self.ended = Some(*status);
                self.live.clear();
            }
            EventBody::Reload {
                ok: true, pools, ..
            } => {
                self.pools
                    .retain(|p| pools.iter().any(|i| i.name == p.name));
                for info in pools {
                    match self.pool_mut(&info.name) {
                        Some(pool) => {
                            pool.size = info.size;
                            pool.restart = info.restart.clone();
                            pool.argv = info.argv.clone();
                        }
                        None => self.pools.push(PoolStatus {
                            name: info.name.clone(),
                            size: info.size,
                            restart: info.restart.clone(),
                            argv: info.argv.clone(),
                            workers: BTreeMap::new(),
                        }),
                    }
                }
            }
            _ => {}
        }
        self.processes = self.live.len();
    }
}

/// Whether a restart policy (`never`, `on-failure`, `always`) starts a worker that ended so
/// again. A crash loop is reported later as `worker_failed`.
pub fn will_restart(policy: &str, status: ExitStatus) -> bool {
    match policy {
        "always" => true,
        "on-failure" | "on_failure" => status != ExitStatus::Exited(0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PoolInfo, TrackSource};

    fn at(t: f64, body: EventBody) -> Event {
        Event { t, body }
    }

    #[test]
    fn folds_spawn_exit_and_policy() {
        let mut fold = StatusFold::default();
        fold.apply(&at(
            0.0,
            EventBody::Session {
                pid: 10,
                version: "x".into(),
                pools: vec![PoolInfo {
                    name: "w".into(),
                    size: 2,
                    argv: vec!["sleep".into()],
                    restart: "on-failure".into(),
                }],
                track: TrackSource::Engine,
                track_note: String::new(),
                stop_timeout: 1.0,
                started_unix: 0.0,
                metrics: None,
            },
        ));
        for (worker, pid) in [(0, 11), (1, 12)] {
            fold.apply(&at(
                0.1,
                EventBody::Spawn {
                    pid,
                    ppid: 10,
                    pool: "w".into(),
                    worker,
                    argv: vec![],
                    start_time: Some(5),
                    restarts: 0,
                },
            ));
        }
        assert_eq!(fold.processes, 2);
        assert_eq!(fold.worker_of(12), Some(("w", 1)));
        for (worker, pid, code) in [(0, 11, 0), (1, 12, 3)] {
            fold.apply(&at(
                0.2,
                EventBody::Exit {
                    pid,
                    ppid: 10,
                    status: ExitStatus::Exited(code),
                    pool: Some("w".into()),
                    worker: Some(worker),
                    source: TrackSource::Engine,
                    zombie: false,
                },
            ));
        }
        let pool = fold.pool("w").unwrap();
        assert_eq!(pool.workers[&0].state, SlotState::Ended);
        assert_eq!(pool.workers[&1].state, SlotState::Restarting);
        assert_eq!(fold.processes, 0);
    }
}
