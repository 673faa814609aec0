//! Reaping: collects every exited child of this process with its exact wait status, reading
//! its `/proc` entry first (a zombie still has one) so that even an orphan that lived a
//! millisecond is reported with its name and start time.

use nix::sys::wait::{Id, WaitPidFlag, waitid};
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
    // nix, not rustix: rustix's `WaitIdStatus` does not say which child it is about.
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::All, flags) {
        // ECHILD; EINTR cannot happen with WNOHANG.
        Err(_) => Peek::NoChildren,
        Ok(status) => match status.pid() {
            None => Peek::Running,
            Some(pid) => Peek::Exited(pid.as_raw()),
        },
    }
}
