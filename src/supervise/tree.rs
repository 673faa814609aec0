//! Signalling a whole tree of descendants, including those that left the process group
//! (setsid) and orphans re-parented to a subreaper. Used by stop escalation and the guardian.

use std::collections::HashSet;

use crate::inspect::proc::{ProcStat, descendants};

use super::pidfd::{Pidfd, SignalError};

/// One process the tree walk tried to signal.
#[derive(Debug)]
pub struct TreeSignal {
    pub pid: i32,
    pub ppid: i32,
    pub start_time: u64,
    pub result: Result<(), SignalError>,
}

/// Sends `signo` to every live (non-zombie) descendant of `root` not already in `done`
/// (identities `(pid, start_time)`), adding each one it tried to `done`.
pub fn signal_descendants(
    root: i32,
    signo: i32,
    done: &mut HashSet<(i32, u64)>,
) -> std::io::Result<Vec<TreeSignal>> {
    Ok(signal_each(descendants(root)?, done, |pid, start_time| {
        Pidfd::open_verified(pid, Some(start_time)).and_then(|fd| fd.send(signo))
    }))
}

/// Calls `send` for every live (non-zombie) process of `tree` not already in `done`, adding
/// each one it tried to `done`.
pub fn signal_each(
    tree: Vec<ProcStat>,
    done: &mut HashSet<(i32, u64)>,
    mut send: impl FnMut(i32, u64) -> Result<(), SignalError>,
) -> Vec<TreeSignal> {
    let mut sent = Vec::new();
    for ProcStat {
        pid,
        ppid,
        start_time,
        state,
        ..
    } in tree
    {
        if state == 'Z' || state == 'X' || !done.insert((pid, start_time)) {
            continue;
        }
        let result = send(pid, start_time);
        sent.push(TreeSignal {
            pid,
            ppid,
            start_time,
            result,
        });
    }
    sent
}

/// Whether the calling process has any child left, running or zombie.
pub fn has_children() -> bool {
    super::reap::peek() != super::reap::Peek::NoChildren
}

/// Makes the calling process a child subreaper: orphaned descendants come back to it.
pub fn become_subreaper() -> std::io::Result<()> {
    // Any non-zero value turns it on; the own pid is the one at hand.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    Ok(())
}

/// Whether `pid` is a live descendant of `ancestor` (its parent chain in `/proc` reaches it).
pub fn descends_from(pid: i32, ancestor: i32) -> bool {
    descends_from_with(pid, ancestor, crate::inspect::proc::read_stat)
}

/// [`descends_from`], with the stats read by `read_stat`.
pub fn descends_from_with(
    pid: i32,
    ancestor: i32,
    read_stat: impl Fn(i32) -> std::io::Result<ProcStat>,
) -> bool {
    let mut current = pid;
    for _ in 0..4096 {
        match read_stat(current) {
            Ok(stat) if stat.ppid == ancestor => return true,
            Ok(stat) if stat.ppid > 1 => current = stat.ppid,
            _ => return false,
        }
    }
    false
}
