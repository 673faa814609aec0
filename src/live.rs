//! The reads a live TUI asks for, off its render path (gitui's `asyncgit/` is the model):
//! this owns the threads that read the tree's shared memory, the selected process's Python
//! stacks, what every thread waits on, and the sockets and stacks roles need. The UI sends
//! requests in (`watch_shm`, `watch_stacks`, `watch_sync`, `probe_roles`) and selects on the
//! result receivers (`results`); it never starts a thread or reads `/proc` itself.
//!
//! A watcher thread starts the first time it is asked for something; a request equal to the
//! previous one is not sent again. Every thread ends when this is dropped.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::inspect::pystack::watch::{StackTarget, StackWatcher};
use crate::inspect::role_probe::{RoleEvidence, RoleProbe};
use crate::inspect::shm::watch::{WatchRequest, Watcher};
use crate::inspect::sync::watch::{SyncRequest, SyncSnapshot, SyncWatcher};
use crate::model::pystack::ProcessStacks;
use crate::model::shm::ShmSnapshot;

/// How often the shared-memory view re-reads the segments.
const SHM_REFRESH: Duration = Duration::from_millis(500);
/// The most of one segment the view reads.
const SHM_MAX_BYTES: u64 = 64 << 20;
/// How often the role probe is asked about the tree.
const ROLE_PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often the selected process's Python stacks are read.
const PYSTACK_REFRESH: Duration = Duration::from_secs(1);
/// How often the tree's waits are scanned (the WAITING ON column, the Sync view).
const SYNC_REFRESH: Duration = Duration::from_secs(1);

/// The reader threads of a live session and the last request each was given.
pub struct Readers {
    shm: Option<Watcher>,
    shm_request: Option<WatchRequest>,
    stacks: Option<StackWatcher>,
    stack_target: StackTarget,
    sync: Option<SyncWatcher>,
    sync_request: Option<SyncRequest>,
    roles: Option<RoleProbe>,
    last_probe: Option<Instant>,
    never: Never,
}

/// Receivers that never deliver, for the readers not started.
struct Never {
    shm: Receiver<ShmSnapshot>,
    stacks: Receiver<ProcessStacks>,
    sync: Receiver<SyncSnapshot>,
    roles: Receiver<RoleEvidence>,
}

/// Where the readers' results arrive (a channel that never delivers for a reader not
/// started).
pub struct Results<'a> {
    pub shm: &'a Receiver<ShmSnapshot>,
    pub stacks: &'a Receiver<ProcessStacks>,
    pub sync: &'a Receiver<SyncSnapshot>,
    pub roles: &'a Receiver<RoleEvidence>,
}

impl Readers {
    /// For a live session: the role probe starts now (roles that need `/proc`, a Manager
    /// server's socket, are probed from the start); the other readers when first asked.
    pub fn live() -> Readers {
        let roles = RoleProbe::spawn()
            .map_err(|err| tracing::warn!("no role probe: {err}"))
            .ok();
        Readers {
            roles,
            ..Readers::idle()
        }
    }

    /// No reader running yet, and no role probe (a replay, which asks for nothing).
    pub fn idle() -> Readers {
        Readers {
            shm: None,
            shm_request: None,
            stacks: None,
            stack_target: None,
            sync: None,
            sync_request: None,
            roles: None,
            last_probe: None,
            never: Never {
                shm: crossbeam_channel::never(),
                stacks: crossbeam_channel::never(),
                sync: crossbeam_channel::never(),
                roles: crossbeam_channel::never(),
            },
        }
    }

    /// Reads the shared memory `request` names, every 500 ms, until another request.
    pub fn watch_shm(&mut self, request: WatchRequest) {
        if self.shm_request.as_ref() == Some(&request) {
            return;
        }
        if self.shm.is_none() {
            self.shm = Watcher::spawn(SHM_REFRESH, SHM_MAX_BYTES)
                .map_err(|err| tracing::warn!("no shared-memory reader: {err}"))
                .ok();
        }
        if let Some(watcher) = &self.shm {
            watcher.set(request.clone());
        }
        self.shm_request = Some(request);
    }

    /// Reads `target`'s Python stacks at once, then at most once a second (nothing: stop).
    pub fn watch_stacks(&mut self, target: StackTarget) {
        if target == self.stack_target {
            return;
        }
        if self.stacks.is_none() && target.is_some() {
            self.stacks = StackWatcher::spawn(PYSTACK_REFRESH)
                .map_err(|err| tracing::warn!("no stack reader: {err}"))
                .ok();
        }
        if let Some(watcher) = &self.stacks {
            watcher.set(target);
        }
        self.stack_target = target;
    }

    /// Scans what the threads of `request`'s processes wait on, once a second.
    pub fn watch_sync(&mut self, request: SyncRequest) {
        if self.sync_request.as_ref() == Some(&request) {
            return;
        }
        if self.sync.is_none() {
            self.sync = SyncWatcher::spawn(SYNC_REFRESH)
                .map_err(|err| tracing::warn!("no wait scanner: {err}"))
                .ok();
        }
        if let Some(watcher) = &self.sync {
            watcher.set(request.clone());
        }
        self.sync_request = Some(request);
    }

    /// True once a second while the role probe runs: time to `probe_roles` again.
    pub fn roles_due(&mut self) -> bool {
        if self.roles.is_none()
            || self
                .last_probe
                .is_some_and(|t| t.elapsed() < ROLE_PROBE_EVERY)
        {
            return false;
        }
        self.last_probe = Some(Instant::now());
        true
    }

    /// Asks the role probe about `procs` (pid, start time).
    pub fn probe_roles(&self, procs: Vec<(i32, u64)>) {
        if let Some(probe) = &self.roles {
            probe.ask(procs);
        }
    }

    pub fn results(&self) -> Results<'_> {
        Results {
            shm: self
                .shm
                .as_ref()
                .map_or(&self.never.shm, Watcher::snapshots),
            stacks: self
                .stacks
                .as_ref()
                .map_or(&self.never.stacks, StackWatcher::reports),
            sync: self
                .sync
                .as_ref()
                .map_or(&self.never.sync, SyncWatcher::reports),
            roles: self
                .roles
                .as_ref()
                .map_or(&self.never.roles, RoleProbe::answers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(10);

    #[test]
    fn idle_readers_start_nothing_and_deliver_nothing() {
        let mut readers = Readers::idle();
        assert!(!readers.roles_due(), "no role probe in a replay");
        let results = readers.results();
        let quiet = Duration::from_millis(50);
        assert!(results.shm.recv_timeout(quiet).is_err());
        assert!(results.stacks.recv_timeout(quiet).is_err());
        assert!(results.sync.recv_timeout(quiet).is_err());
        assert!(results.roles.recv_timeout(quiet).is_err());
        // A target of nothing starts no stack reader.
        readers.watch_stacks(None);
        assert!(readers.stacks.is_none());
    }

    #[test]
    fn the_role_probe_is_due_once_a_second_and_answers() {
        let mut readers = Readers::live();
        assert!(readers.roles.is_some());
        assert!(readers.roles_due());
        assert!(!readers.roles_due(), "asked again within the second");
        let me = std::process::id() as i32;
        let start = crate::inspect::proc::read_stat(me)
            .expect("own stat")
            .start_time;
        readers.probe_roles(vec![(me, start)]);
        let evidence = readers.results().roles.recv_timeout(DEADLINE);
        assert!(evidence.is_ok(), "{evidence:?}");
    }

    #[test]
    fn each_reader_starts_when_asked_and_reports_on_its_receiver() {
        let me = std::process::id() as i32;
        let mut readers = Readers::idle();
        readers.watch_stacks(Some((me, None)));
        let stacks = readers
            .results()
            .stacks
            .recv_timeout(DEADLINE)
            .expect("a stack report");
        assert_eq!(stacks.pid, me);
        assert!(stacks.stacks.is_err(), "the test binary is not Python");

        let request = SyncRequest {
            pids: vec![me],
            full: false,
        };
        readers.watch_sync(request.clone());
        let sync = readers.results().sync.recv_timeout(DEADLINE);
        assert!(sync.is_ok_and(|s| !s.full));
        readers.watch_sync(request.clone());
        assert_eq!(readers.sync_request, Some(request));

        readers.watch_shm(WatchRequest {
            pids: vec![me],
            ..Default::default()
        });
        let shm = readers.results().shm.recv_timeout(DEADLINE);
        assert!(shm.is_ok_and(|s| s.contents.is_none()), "nothing selected");
    }
}
