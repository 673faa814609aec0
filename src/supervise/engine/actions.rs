//! Carrying out actions (from the UI today; from the planned control socket and `ctl` too),
//! and reporting each outcome as an event.

use super::{Engine, Worker, WorkerState};
use crate::model::lesson::StepReleaser;
use crate::model::signals::signal_name;
use crate::model::{Action, Delivery, EventBody, SignalReason};
use crate::supervise::pidfd::{Pidfd, SignalError};
use crate::supervise::steps::Released;

/// The largest pool a `scale` action may ask for.
pub const MAX_POOL_SIZE: u32 = 4096;

impl Engine {
    pub(super) fn take_actions(&mut self) {
        while let Ok(action) = self.actions.try_recv() {
            self.on_action(action);
        }
    }

    fn on_action(&mut self, action: Action) {
        match action {
            Action::Signal {
                pid,
                signal,
                start_time,
            } => self.user_signal(pid, signal, start_time),
            Action::Restart { pool, worker } => self.restart(&pool, worker),
            Action::Scale { pool, size } => self.scale(&pool, size),
            Action::Quit => self.begin_stop("quit requested".into(), true),
            Action::NextStep => self.next_step(),
            Action::OutputPaneSize { cols, rows } => {
                self.config.io.pty_size = (cols.max(1), rows.max(1));
                self.captures.resize_ptys(cols.max(1), rows.max(1));
            }
            Action::Reload => self.reload("reload requested"),
        }
    }

    fn next_step(&mut self) {
        match self.gate.as_mut() {
            None => self.notice("warning", "no lesson steps in this session".into()),
            Some(gate) => match gate.release(StepReleaser::Key) {
                Some(released) => self.report_release(released),
                None => self.notice(
                    "info",
                    "no step is waiting: the demo is still running".into(),
                ),
            },
        }
    }

    /// Steps found in the output since the last look: the newest is held.
    pub(super) fn hold_announced_steps(&mut self) {
        let announced = self.captures.take_announced();
        let Some(gate) = self.gate.as_mut() else {
            return;
        };
        let now = std::time::Instant::now();
        for (pid, n) in announced {
            gate.on_step(pid, n, now);
        }
    }

    pub(super) fn report_release(&self, released: Released) {
        self.events.emit(EventBody::StepRelease {
            pid: released.pid,
            n: released.n,
            by: released.by,
        });
    }

    fn user_signal(&mut self, pid: i32, signo: i32, start_time: Option<u64>) {
        let result = if let Some(&(pool, index)) = self.by_pid.get(&pid) {
            let worker = &self.pools[pool].workers[&index];
            match (&worker.pidfd, start_time, worker.start_time) {
                (_, Some(asked), Some(real)) if asked != real => Err(SignalError::Reused {
                    pid,
                    expected: asked,
                    found: real,
                }),
                (Some(pidfd), _, _) => pidfd.send(signo),
                (None, _, _) => Err(SignalError::Gone),
            }
        } else if self.in_tree(pid) {
            Pidfd::open_verified(pid, start_time).and_then(|fd| fd.send(signo))
        } else {
            Err(SignalError::Other(
                "not a live process of the supervised tree".into(),
            ))
        };
        self.events.emit(EventBody::Signal {
            pid,
            signal: signal_name(signo).into_owned(),
            reason: SignalReason::User,
            result: match result {
                Ok(()) => Delivery::Sent,
                Err(err) => Delivery::Failed(err.to_string()),
            },
        });
    }

    fn find_pool(&mut self, name: &str) -> Option<usize> {
        let found = self.find_live(name);
        if found.is_none() {
            self.notice("error", format!("no pool named {name:?}"));
        }
        found
    }

    fn restart(&mut self, pool_name: &str, index: u32) {
        if self.quit {
            self.notice("warning", "not restarting: forkscope is stopping".into());
            return;
        }
        let Some(pool) = self.find_pool(pool_name) else {
            return;
        };
        let stop_signal = self.pools[pool].spec.stop_signal;
        let Some(worker) = self.pools[pool].workers.get_mut(&index) else {
            self.notice("error", format!("pool {pool_name:?} has no worker {index}"));
            return;
        };
        if worker.state == WorkerState::Running {
            worker.restart_now = true;
            let worker = &self.pools[pool].workers[&index];
            self.signal_worker(worker, stop_signal, SignalReason::Restart);
        } else {
            worker.tracker = Default::default();
            worker.restarts += 1;
            self.start_worker((pool, index));
        }
    }

    fn scale(&mut self, pool_name: &str, size: u32) {
        if self.quit {
            self.notice("warning", "not scaling: forkscope is stopping".into());
            return;
        }
        if size > MAX_POOL_SIZE {
            self.notice(
                "error",
                format!("pool size {size} is over the limit of {MAX_POOL_SIZE}"),
            );
            return;
        }
        let Some(pool) = self.find_pool(pool_name) else {
            return;
        };
        let from = self.pools[pool].target;
        self.pools[pool].target = size;
        self.events.emit(EventBody::Scale {
            pid: None,
            pool: pool_name.to_string(),
            from,
            to: size,
        });
        for index in from..size {
            self.pools[pool].workers.insert(index, Worker::new());
            self.start_worker((pool, index));
        }
        let stop_signal = self.pools[pool].spec.stop_signal;
        let retiring: Vec<u32> = self.pools[pool]
            .workers
            .keys()
            .copied()
            .filter(|index| *index >= size)
            .collect();
        for index in retiring {
            let Some(worker) = self.pools[pool].workers.get_mut(&index) else {
                continue;
            };
            if worker.state == WorkerState::Running {
                worker.retiring = true;
                let worker = &self.pools[pool].workers[&index];
                self.signal_worker(worker, stop_signal, SignalReason::Scale);
            } else {
                self.pools[pool].workers.remove(&index);
            }
        }
    }
}
