//! The operating system as the engine sees it (zellij's `ServerOsApi` is the model): the
//! clock its timers read, starting a worker, reaping exited children, signalling a process,
//! reading a process's stat and walking the tree below a process. [`RealOs`] delegates to
//! `spawn.rs`, `reap.rs`, `pidfd.rs`, `tree.rs` and `inspect::proc`; the engine's unit tests
//! drive the same decisions with a fake that scripts exits, EINTR, ESRCH and vanishing
//! processes (`engine/fake_os.rs`).
//!
//! Kept thin on purpose: the kernel process-events socket, ptrace and the `/proc` sampling
//! are sources of facts, not decisions, and stay real (their tests are integration tests).

use std::io;
use std::os::fd::OwnedFd;
use std::time::Instant;

use super::PoolSpec;
use super::pidfd::{Pidfd, SignalError};
use super::reap::Reaped;
use super::worker_io::SessionIo;
use crate::inspect::proc::ProcStat;

/// How often a signal interrupted by a signal handler (EINTR) is tried again.
const EINTR_RETRIES: usize = 3;

/// What the engine asks for when it starts worker `index` of `spec`.
#[derive(Clone, Copy, Debug)]
pub struct SpawnRequest<'a> {
    pub spec: &'a PoolSpec,
    pub index: u32,
    /// The pool's size (`FORKSCOPE_POOL_SIZE`).
    pub size: u32,
    /// From the engine (the `--shm` names, the step gate).
    pub extra_env: &'a [(String, String)],
    /// `PTRACE_TRACEME` before the exec (`--track ptrace`).
    pub trace: bool,
    pub io: &'a SessionIo,
}

/// A worker that was started.
#[derive(Debug)]
pub struct Started {
    pub pid: i32,
    /// Always `Some` from the real OS; a fake has none and signals by pid.
    pub pidfd: Option<Pidfd>,
    pub start_time: Option<u64>,
    /// Its `/proc/PID/stat` right after exec, when it was read.
    pub stat: Option<ProcStat>,
    /// The read end of the stdout pipe, or the pty's master side (stdout and stderr both).
    pub stdout: Option<OwnedFd>,
    /// The read end of the stderr pipe; `None` with a pty.
    pub stderr: Option<OwnedFd>,
    /// `stdout` is a pty master.
    pub pty: bool,
}

/// Who a signal is for.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A worker: an unreaped child of the engine, through its pidfd when it has one.
    Child { pid: i32, pidfd: Option<&'a Pidfd> },
    /// Any process of the tree, checked against the start time the caller knows.
    Verified { pid: i32, start_time: Option<u64> },
}

impl Target<'_> {
    pub fn pid(&self) -> i32 {
        match self {
            Target::Child { pid, .. } | Target::Verified { pid, .. } => *pid,
        }
    }
}

/// What the engine needs from the operating system.
pub trait Os: Send {
    /// The instant timers (restart delays, stop timeouts) are measured against.
    fn now(&self) -> Instant;

    /// Starts one worker.
    fn spawn(&self, request: &SpawnRequest<'_>) -> io::Result<Started>;

    /// Reaps exited children (bounded); the flag says whether more may be waiting.
    fn reap(&self) -> io::Result<(Vec<Reaped>, bool)>;

    /// Whether the engine has any child left, running or zombie.
    fn has_children(&self) -> bool;

    /// Sends `signo` once.
    fn send_signal(&self, target: Target<'_>, signo: i32) -> Result<(), SignalError>;

    /// `pid`'s `/proc/PID/stat`.
    fn read_stat(&self, pid: i32) -> io::Result<ProcStat>;

    /// Every descendant of `root` (zombies included).
    fn descendants(&self, root: i32) -> io::Result<Vec<ProcStat>>;

    /// Sends `signo`, again if a signal handler interrupted the call (bounded).
    fn signal(&self, target: Target<'_>, signo: i32) -> Result<(), SignalError> {
        let mut result = self.send_signal(target, signo);
        for _ in 0..EINTR_RETRIES {
            if result != Err(SignalError::Interrupted) {
                break;
            }
            result = self.send_signal(target, signo);
        }
        result
    }

    /// Whether `pid` is a live descendant of `ancestor` (its parent chain reaches it).
    fn descends_from(&self, pid: i32, ancestor: i32) -> bool {
        super::tree::descends_from_with(pid, ancestor, |pid| self.read_stat(pid))
    }
}

/// The real operating system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealOs;

impl Os for RealOs {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn spawn(&self, request: &SpawnRequest<'_>) -> io::Result<Started> {
        let spawned = super::spawn::spawn_worker(
            request.spec,
            request.index,
            request.size,
            request.extra_env,
            request.trace,
            request.io,
        )?;
        Ok(Started {
            pid: spawned.pid,
            pidfd: Some(spawned.pidfd),
            start_time: spawned.start_time,
            stat: spawned.stat,
            stdout: Some(spawned.stdout),
            stderr: spawned.stderr,
            pty: spawned.pty,
        })
    }

    fn reap(&self) -> io::Result<(Vec<Reaped>, bool)> {
        Ok(super::reap::reap_exited())
    }

    fn has_children(&self) -> bool {
        super::tree::has_children()
    }

    fn send_signal(&self, target: Target<'_>, signo: i32) -> Result<(), SignalError> {
        match target {
            Target::Child {
                pidfd: Some(pidfd), ..
            } => pidfd.send(signo),
            Target::Child { pid, pidfd: None } => Pidfd::open(pid)?.send(signo),
            Target::Verified { pid, start_time } => {
                Pidfd::open_verified(pid, start_time)?.send(signo)
            }
        }
    }

    fn read_stat(&self, pid: i32) -> io::Result<ProcStat> {
        crate::inspect::proc::read_stat(pid)
    }

    fn descendants(&self, root: i32) -> io::Result<Vec<ProcStat>> {
        crate::inspect::proc::descendants(root)
    }
}
