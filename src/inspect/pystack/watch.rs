//! The TUI's Python-stack reader: a thread that reads the selected process's stacks at most
//! once per interval (and at once when the selection changes), off the render path, and sends
//! each reading as a [`ProcessStacks`] on a channel the UI loop selects on.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::StackReader;
use crate::model::pystack::ProcessStacks;

/// Spies kept for processes selected earlier (making one again costs milliseconds).
const MAX_SPIES: usize = 32;

/// Which process to read: `(pid, start_time)` (the current process of that pid when the start
/// time is unknown), or nothing.
pub type StackTarget = Option<(i32, Option<u64>)>;

/// A running reader thread. Dropping it stops the thread.
pub struct StackWatcher {
    targets: Option<Sender<StackTarget>>,
    reports: Receiver<ProcessStacks>,
    thread: Option<JoinHandle<()>>,
}

impl StackWatcher {
    /// Starts the thread; it reads at most once per `interval` (at least 100 ms).
    pub fn spawn(interval: Duration) -> std::io::Result<StackWatcher> {
        let (target_tx, target_rx) = crossbeam_channel::unbounded();
        let (report_tx, report_rx) = crossbeam_channel::bounded(2);
        let interval = interval.max(Duration::from_millis(100));
        let thread = std::thread::Builder::new()
            .name("forkscope-pystack".into())
            .spawn(move || run(&target_rx, &report_tx, interval))?;
        Ok(StackWatcher {
            targets: Some(target_tx),
            reports: report_rx,
            thread: Some(thread),
        })
    }

    /// Reads `target` from now on (at once if it changed).
    pub fn set(&self, target: StackTarget) {
        if let Some(tx) = &self.targets {
            let _ = tx.send(target);
        }
    }

    /// The readings, newest last.
    pub fn reports(&self) -> &Receiver<ProcessStacks> {
        &self.reports
    }
}

impl Drop for StackWatcher {
    fn drop(&mut self) {
        self.targets = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(targets: &Receiver<StackTarget>, reports: &Sender<ProcessStacks>, interval: Duration) {
    let mut reader = StackReader::new();
    let mut target: StackTarget = None;
    // The target with its start time found when it was set (the identity read from then on).
    let mut identity: Option<(i32, u64)> = None;
    let mut next_read = Instant::now();
    let mut last_read: Option<Instant> = None;
    loop {
        let wait = next_read.saturating_duration_since(Instant::now());
        let wait = if target.is_some() {
            wait
        } else {
            Duration::from_secs(3600)
        };
        match targets.recv_timeout(wait) {
            Ok(new) => {
                let mut new = new;
                while let Ok(newer) = targets.try_recv() {
                    new = newer;
                }
                if new != target {
                    target = new;
                    identity = target.map(|(pid, start)| {
                        let found = || super::proc::read_stat(pid).ok().map(|s| s.start_time);
                        // 0 when gone already: the reading then says so.
                        (pid, start.or_else(found).unwrap_or(0))
                    });
                    // At once, unless the last reading was less than an interval ago.
                    next_read = last_read.map_or_else(Instant::now, |t| t + interval);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        last_read = Some(Instant::now());
        next_read = Instant::now() + interval;
        let Some((pid, start_time)) = identity else {
            continue;
        };
        reader.forget_ended();
        if reader.cached() > MAX_SPIES {
            reader.keep_only(pid, start_time);
        }
        let report = reader.read_process(pid, start_time);
        // A UI that has not taken the last two readings gets the next one instead.
        let _ = reports.try_send(report);
    }
}
