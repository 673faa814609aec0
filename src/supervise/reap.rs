//! Reaping: collects every exited child of this process with its exact wait status, reading
//! its `/proc` entry first (a zombie still has one) so that even an orphan that lived a
//! millisecond is reported with its name and start time.

use rustix::process::{Pid, WaitOptions, waitpid};

use crate::inspect::proc::{ProcStat, read_stat};
use crate::model::ExitStatus;

/// One reaped child.
#[derive(Debug)]
pub struct Reaped {
    pub pid: i32,
    pub status: ExitStatus,
    /// The zombie's `/proc` entry, read just before reaping.
    pub stat: Option<ProcStat>,
}

/// At most this many children are reaped per call, so a fork storm cannot starve the loop.
pub const BATCH: usize = 1024;

/// Reaps exited children. The flag says whether more may be waiting (the batch was full).
pub fn reap_exited() -> (Vec<Reaped>, bool) {
    let mut reaped = Vec::new();
    while reaped.len() < BATCH {
        let Peek::Exited(pid) = peek() else {
            return (reaped, false);
        };
        let stat = read_stat(pid).ok();
        let Some(child) = Pid::from_raw(pid) else {
            return (reaped, false);
        };
        match waitpid(Some(child), WaitOptions::NOHANG) {
            Ok(Some((reaped_pid, status))) if reaped_pid == child => reaped.push(Reaped {
                pid,
                status: ExitStatus::from_wait_status(status.as_raw()),
                stat,
            }),
            _ => return (reaped, false),
        }
    }
    (reaped, true)
}

/// What `waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT)` says about the caller's children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peek {
    /// This child has exited and waits to be reaped (it is not reaped by peeking).
    Exited(i32),
    /// Children exist, none has exited.
    Running,
    /// No child at all, running or zombie.
    NoChildren,
}

/// Looks at the children without reaping any.
pub fn peek() -> Peek {
    match peek_with(libc::WEXITED) {
        Peeked::Changed { pid, .. } => Peek::Exited(pid),
        Peeked::Unchanged => Peek::Running,
        Peeked::NoChildren => Peek::NoChildren,
    }
}

/// What `waitid(P_ALL, flags|WNOHANG|WNOWAIT)` says: which child changed state (it is not
/// consumed), with the `si_code` (`CLD_EXITED`, `CLD_KILLED`, `CLD_TRAPPED`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peeked {
    Changed {
        pid: i32,
        code: i32,
    },
    /// Children exist; none changed state.
    Unchanged,
    NoChildren,
}

/// Peeks at the children's state changes selected by `flags` (`WEXITED`, `WSTOPPED`,
/// `__WALL`).
///
/// Raw libc, because neither crate says which child it is about for every status: nix's
/// `waitid` decodes the status into its `Signal` enum and fails for a real-time signal (a
/// worker killed by SIGRTMIN would look like no child at all, and never be reaped), and
/// rustix's `WaitIdStatus` has no pid.
pub(crate) fn peek_with(flags: libc::c_int) -> Peeked {
    // SAFETY: siginfo_t is plain data that waitid fills in; WNOWAIT consumes nothing.
    let (rc, info) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = flags | libc::WNOHANG | libc::WNOWAIT;
        let rc = libc::waitid(libc::P_ALL, 0, &mut info, flags);
        (rc, info)
    };
    if rc != 0 {
        // ECHILD; EINTR cannot happen with WNOHANG.
        return Peeked::NoChildren;
    }
    // SAFETY: filled in by a successful waitid (a zero pid: no child changed state).
    let pid = unsafe { info.si_pid() };
    if pid <= 0 {
        Peeked::Unchanged
    } else {
        Peeked::Changed {
            pid,
            code: info.si_code,
        }
    }
}
