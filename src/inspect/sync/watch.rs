//! The sync watcher: wait scans on their own thread, off the render path (as the
//! shared-memory watcher). The UI says which pids and how much ([`SyncRequest`]); every
//! interval the thread scans (cheap: each thread's wait; full: also semaphores, barriers,
//! channels, deadlocks) and sends a [`SyncReport`] on a bounded channel (capacity 2; a report
//! the UI has not taken yet makes the new one be dropped). The [`Scanner`] lives on the
//! thread, so "blocked for" and exited barrier parties accumulate across scans.
//!
//! The cheap scan slows down while nothing changes: after each scan whose waits are the
//! same as the previous one's the interval doubles, up to [`QUIET_SLOWDOWN`] times; a new
//! request (other pids, the Sync view opened) or a changed wait brings it back at once.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::scan::Scanner;
use crate::model::sync::{ProcessWaits, SyncReport};

/// How many times slower the cheap scan gets while the tree's waits stay the same.
pub const QUIET_SLOWDOWN: u32 = 4;

/// The wait before the next scan after `quiet` unchanged cheap scans in a row.
fn next_wait(interval: Duration, quiet: u32) -> Duration {
    interval * (1u32 << quiet.min(QUIET_SLOWDOWN.trailing_zeros()))
}

/// What tells two cheap scans apart: each thread's wait, not how long it has lasted.
fn fingerprint(waits: &[ProcessWaits]) -> Vec<(i32, Vec<String>)> {
    waits
        .iter()
        .map(|p| {
            let threads = std::iter::once(p.blocked_on.identity())
                .chain(p.threads.iter().map(|t| t.blocked_on.identity()))
                .collect();
            (p.pid, threads)
        })
        .collect()
}

/// What to scan. The latest request wins; an empty `pids` pauses scanning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncRequest {
    pub pids: Vec<i32>,
    /// Semaphores, barriers, channels and deadlocks too (the Sync view is open).
    pub full: bool,
}

/// A scan's result, and whether it was a full one.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncSnapshot {
    pub report: SyncReport,
    pub full: bool,
}

/// A running watcher thread. Dropping it stops the thread.
pub struct SyncWatcher {
    requests: Option<Sender<SyncRequest>>,
    reports: Receiver<SyncSnapshot>,
    thread: Option<JoinHandle<()>>,
}

impl SyncWatcher {
    /// Starts the thread, scanning every `interval` (at least 50 ms).
    pub fn spawn(interval: Duration) -> std::io::Result<SyncWatcher> {
        let (req_tx, req_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::bounded(2);
        let interval = interval.max(Duration::from_millis(50));
        let thread = std::thread::Builder::new()
            .name("forkscope-sync-watch".into())
            .spawn(move || run(req_rx, rep_tx, interval))?;
        Ok(SyncWatcher {
            requests: Some(req_tx),
            reports: rep_rx,
            thread: Some(thread),
        })
    }

    /// Replaces what is scanned and asks for a scan now.
    pub fn set(&self, request: SyncRequest) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(request);
        }
    }

    /// The reports, newest last.
    pub fn reports(&self) -> &Receiver<SyncSnapshot> {
        &self.reports
    }
}

impl Drop for SyncWatcher {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(requests: Receiver<SyncRequest>, reports: Sender<SyncSnapshot>, interval: Duration) {
    let mut request = SyncRequest::default();
    let mut scanner = Scanner::new();
    let mut quiet = 0u32;
    let mut previous: Option<Vec<(i32, Vec<String>)>> = None;
    loop {
        match requests.recv_timeout(next_wait(interval, quiet)) {
            Ok(mut r) => {
                for _ in 0..requests.len() {
                    if let Ok(newer) = requests.try_recv() {
                        r = newer;
                    }
                }
                request = r;
                quiet = 0;
                previous = None;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if request.pids.is_empty() {
            continue;
        }
        let report = if request.full {
            quiet = 0;
            scanner.scan(&request.pids)
        } else {
            let processes = scanner.scan_waits(&request.pids);
            let now = fingerprint(&processes);
            quiet = if previous.as_ref() == Some(&now) {
                quiet.saturating_add(1)
            } else {
                0
            };
            previous = Some(now);
            SyncReport {
                processes,
                ..SyncReport::default()
            }
        };
        let snapshot = SyncSnapshot {
            report,
            full: request.full,
        };
        match reports.try_send(snapshot) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_tree_is_scanned_less_often() {
        let second = Duration::from_secs(1);
        assert_eq!(next_wait(second, 0), second);
        assert_eq!(next_wait(second, 1), 2 * second);
        assert_eq!(next_wait(second, 2), 4 * second);
        assert_eq!(next_wait(second, 50), 4 * second);
    }

    #[test]
    fn scans_own_process_until_dropped() {
        let watcher = SyncWatcher::spawn(Duration::from_millis(50)).unwrap();
        let me = std::process::id() as i32;
        watcher.set(SyncRequest {
            pids: vec![me],
            full: false,
        });
        let snap = watcher
            .reports()
            .recv_timeout(Duration::from_secs(30))
            .unwrap();
        assert!(!snap.full);
        assert_eq!(snap.report.processes[0].pid, me);
        watcher.set(SyncRequest {
            pids: vec![me],
            full: true,
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let snap = watcher
                .reports()
                .recv_timeout(Duration::from_secs(30))
                .unwrap();
            if snap.full {
                break;
            }
            assert!(std::time::Instant::now() < deadline);
        }
        drop(watcher);
    }
}
