//! Carrying out actions (from the UI today; from the planned control socket and `ctl` too),
//! and reporting each outcome as an event.

use super::{Engine, WorkerState};
use crate::model::NoticeLevel;
use crate::model::lesson::StepReleaser;
use crate::model::{Action, EventBody, SignalReason};
use crate::supervise::os::Target;
use crate::supervise::pidfd::SignalError;
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
            None => self.notice(
                NoticeLevel::Warning,
                "no lesson steps in this session".into(),
            ),
            Some(gate) => match gate.release(StepReleaser::Key) {
                Some(released) => self.report_release(released),
                None => self.notice(
                    NoticeLevel::Info,
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
            let pidfd = worker.pidfd.as_ref();
            match (worker.pid, start_time, worker.start_time) {
                (_, Some(asked), Some(real)) if asked != real => Err(SignalError::Reused {
                    pid,
                    expected: asked,
                    found: real,
                }),
                (Some(pid), _, _) => self.os.signal(Target::Child { pid, pidfd }, signo),
                (None, _, _) => Err(SignalError::Gone),
            }
        } else if self.in_tree(pid) {
            self.os.signal(Target::Verified { pid, start_time }, signo)
        } else {
            Err(SignalError::Other(
                "not a live process of the supervised tree".into(),
            ))
        };
        self.events
            .emit(EventBody::signal(pid, signo, SignalReason::User, result));
    }

    fn find_pool(&mut self, name: &str) -> Option<usize> {
        let found = self.find_live(name);
        if found.is_none() {
            self.notice(NoticeLevel::Error, format!("no pool named {name:?}"));
        }
        found
    }

    fn restart(&mut self, pool_name: &str, index: u32) {
        if self.quit {
            self.notice(
                NoticeLevel::Warning,
                "not restarting: forkscope is stopping".into(),
            );
            return;
        }
        let Some(pool) = self.find_pool(pool_name) else {
            return;
        };
        let stop_signal = self.pools[pool].spec.stop_signal;
        let Some(worker) = self.pools[pool].workers.get_mut(&index) else {
            self.notice(
                NoticeLevel::Error,
                format!("pool {pool_name:?} has no worker {index}"),
            );
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
            self.notice(
                NoticeLevel::Warning,
                "not scaling: forkscope is stopping".into(),
            );
            return;
        }
        if size > MAX_POOL_SIZE {
            self.notice(
                NoticeLevel::Error,
                format!("pool size {size} is over the limit of {MAX_POOL_SIZE}"),
            );
            return;
        }
        let Some(pool) = self.find_pool(pool_name) else {
            return;
        };
        self.resize_pool(pool, size);
    }
}
