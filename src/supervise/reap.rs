//! Reaping: collects every exited child of this process with its exact wait status, reading
//! its `/proc` entry first (a zombie still has one) so that even an orphan that lived a
//! millisecond is reported with its name and start time.

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
        let Some(pid) = peek_exited() else {
            return (reaped, false);
        };
        let stat = read_stat(pid).ok();
        let mut raw = 0;
        // SAFETY: waitpid on a specific child with WNOHANG; `raw` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
        if rc == pid {
            reaped.push(Reaped {
                pid,
                status: ExitStatus::from_wait_status(raw),
                stat,
            });
        } else {
            return (reaped, false);
        }
    }
    (reaped, true)
}

/// The pid of an exited, not yet reaped child, without reaping it.
fn peek_exited() -> Option<i32> {
    // SAFETY: WNOWAIT|WNOHANG only inspects; siginfo_t is plain data.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        let pid = info.si_pid();
        (rc == 0 && pid > 0).then_some(pid)
    }
}
