//! Signalling through pidfds, so a signal can never hit a process that reused a pid.
//!
//! Workers get their pidfd right after spawn (the pid cannot be reused before we reap it).
//! Other processes are opened by pid and checked against the start time the caller expects.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use crate::inspect::proc::read_stat;

/// Why a signal was not delivered, named as the errno a person would search for.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignalError {
    #[error("ESRCH: process already gone")]
    Gone,
    #[error("EPERM: not permitted")]
    NotPermitted,
    #[error("pid {pid} is now a different process (start time {found}, expected {expected})")]
    Reused { pid: i32, expected: u64, found: u64 },
    #[error("invalid signal {0}")]
    BadSignal(i32),
    #[error("EINTR: interrupted by a signal handler")]
    Interrupted,
    #[error("{0}")]
    Other(String),
}

impl SignalError {
    fn from_errno(errno: rustix::io::Errno) -> SignalError {
        match errno {
            rustix::io::Errno::SRCH => SignalError::Gone,
            rustix::io::Errno::PERM => SignalError::NotPermitted,
            rustix::io::Errno::INTR => SignalError::Interrupted,
            rustix::io::Errno::INVAL => SignalError::Other("EINVAL".into()),
            other => SignalError::Other(format!("{other}")),
        }
    }
}

/// A pidfd for one process.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pub pid: i32,
}

impl Pidfd {
    /// Opens a pidfd for `pid`. Only race-free for an unreaped child of ours; otherwise use
    /// [`Pidfd::open_verified`].
    pub fn open(pid: i32) -> Result<Pidfd, SignalError> {
        let raw = Pid::from_raw(pid).ok_or(SignalError::Gone)?;
        let fd = pidfd_open(raw, PidfdFlags::empty()).map_err(SignalError::from_errno)?;
        Ok(Pidfd { fd, pid })
    }

    /// Wraps a pidfd the kernel returned for `pid` (`clone` with `CLONE_PIDFD`).
    pub fn from_owned(fd: OwnedFd, pid: i32) -> Pidfd {
        Pidfd { fd, pid }
    }

    /// Opens a pidfd for `pid` and checks it is the process that started at `start_time`.
    pub fn open_verified(pid: i32, start_time: Option<u64>) -> Result<Pidfd, SignalError> {
        let pidfd = Pidfd::open(pid)?;
        if let Some(expected) = start_time {
            let found = read_stat(pid).map_err(|_| SignalError::Gone)?.start_time;
            if found != expected {
                return Err(SignalError::Reused {
                    pid,
                    expected,
                    found,
                });
            }
        }
        Ok(pidfd)
    }

    /// Sends signal number `signo` through the pidfd.
    pub fn send(&self, signo: i32) -> Result<(), SignalError> {
        let signal = Signal::from_named_raw(signo)
            .or_else(|| {
                // SAFETY-free path: real-time signals have no named constant.
                (32..=64).contains(&signo).then(|| {
                    // SAFETY: the kernel validates the number; rustix only wraps it.
                    unsafe { Signal::from_raw_unchecked(signo) }
                })
            })
            .ok_or(SignalError::BadSignal(signo))?;
        pidfd_send_signal(&self.fd, signal).map_err(SignalError::from_errno)
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_own_child_and_reports_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pidfd = Pidfd::open(child.id() as i32).unwrap();
        pidfd.send(libc::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert_eq!(pidfd.send(libc::SIGTERM), Err(SignalError::Gone));
    }

    #[test]
    fn refuses_a_reused_pid() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let real = read_stat(pid).unwrap().start_time;
        let wrong = Pidfd::open_verified(pid, Some(real + 1));
        assert!(matches!(wrong, Err(SignalError::Reused { .. })));
        Pidfd::open_verified(pid, Some(real))
            .unwrap()
            .send(libc::SIGKILL)
            .unwrap();
        child.wait().unwrap();
    }
}
