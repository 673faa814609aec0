//! Naming a thread's wait from its raw facts: the syscall and its arguments, read against the
//! process's descriptors, shared mappings and (for timespecs and poll arrays) its memory.
//! Everything outside comes through [`Probe`], so the logic is tested with fakes and any
//! garbage (bad addresses, unknown fds, unreadable memory) gives a vaguer answer, never a
//! panic.

use crate::inspect::shm::maps::{MapsLine, classify as classify_path};
use crate::model::shm::SegmentKind;
use crate::model::sync::{BlockedOn, WaitKind};

use super::fds::{FdInfo, FdTable, FdTarget};
use super::syscall::{Arch, Call, SyscallState, lookup, name};
use super::thread::ThreadFacts;

/// What classification may look up about the process.
pub trait Probe {
    fn fds(&mut self) -> &FdTable;
    fn maps(&mut self) -> &[MapsLine];
    fn read_mem(&mut self, addr: u64, len: usize) -> Option<Vec<u8>>;
    fn fdinfo(&mut self, fd: i32) -> FdInfo;
    /// Clock `clock` now, in seconds.
    fn now(&self, clock: i32) -> Option<f64>;
}

const FUTEX_CMD_MASK: u64 = 0x7f;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_WAIT: u64 = 0;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_LOCK_PI2: u64 = 13;
const TIMER_ABSTIME: u64 = 1;
/// At most this many fds are read from a poll array or select set.
const MAX_POLL_FDS: u64 = 64;

fn i64_at(bytes: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// A `timespec` or `timeval` (`sub_unit` 1e9 or 1e6) at `addr`, in seconds.
fn read_time(probe: &mut dyn Probe, addr: u64, sub_unit: f64) -> Option<f64> {
    if addr == 0 {
        return None;
    }
    let bytes = probe.read_mem(addr, 16)?;
    let (sec, frac) = (i64_at(&bytes, 0)?, i64_at(&bytes, 8)?);
    if sec < 0 || !(0..sub_unit as i64).contains(&frac) {
        return None;
    }
    Some(sec as f64 + frac as f64 / sub_unit)
}

/// Fills `remaining_secs` for an absolute deadline on `clock`.
fn until(wait: &mut BlockedOn, probe: &mut dyn Probe, deadline: Option<f64>, clock: i32) {
    if let (Some(deadline), Some(now)) = (deadline, probe.now(clock)) {
        wait.details.remaining_secs = Some((deadline - now).max(0.0));
    }
}

/// Names the wait of one thread.
pub fn classify(facts: &ThreadFacts, arch: Option<Arch>, probe: &mut dyn Probe) -> BlockedOn {
    let mut wait = match facts.state {
        Some('Z') | Some('X') | Some('x') => return BlockedOn::new(WaitKind::Zombie),
        Some('T') | Some('t') => BlockedOn::new(WaitKind::Stopped),
        Some('R') => BlockedOn::new(WaitKind::Running),
        None => return BlockedOn::new(WaitKind::Unknown),
        Some(_) => match &facts.syscall {
            Some(SyscallState::Running) => BlockedOn::new(WaitKind::Running),
            Some(SyscallState::In { nr, args }) => in_syscall(*nr, args, arch, probe),
            Some(SyscallState::NotInSyscall) | None => BlockedOn::new(WaitKind::Unknown),
        },
    };
    if wait.kind != WaitKind::Running {
        wait.details.wchan = facts.wchan.clone();
    }
    wait
}

fn in_syscall(nr: u64, args: &[u64; 6], arch: Option<Arch>, probe: &mut dyn Probe) -> BlockedOn {
    let syscall_name = name(arch, nr);
    let Some((call, _)) = arch.and_then(|a| lookup(a, nr)) else {
        let mut wait = BlockedOn::new(WaitKind::Other(syscall_name.clone()));
        wait.details.syscall = Some(syscall_name);
        return wait;
    };
    let fd = args[0] as i32;
    let mut wait = match call {
        Call::Read
        | Call::Readv
        | Call::Pread
        | Call::RecvFrom
        | Call::RecvMsg
        | Call::RecvMmsg => on_fd(fd, true, &syscall_name, probe),
        Call::Write
        | Call::Writev
        | Call::Pwrite
        | Call::SendTo
        | Call::SendMsg
        | Call::SendMmsg => on_fd(fd, false, &syscall_name, probe),
        Call::Futex => futex(args, probe),
        Call::FutexWaitv => BlockedOn::new(WaitKind::Futex),
        Call::Wait4 => child_wait_pid(args[0] as i32),
        Call::Waitid => waitid(args, probe),
        Call::Nanosleep => {
            let mut w = BlockedOn::new(WaitKind::Sleep);
            w.details.duration_secs = read_time(probe, args[0], 1e9);
            w
        }
        Call::ClockNanosleep => {
            let mut w = BlockedOn::new(WaitKind::Sleep);
            let t = read_time(probe, args[2], 1e9);
            if args[1] & TIMER_ABSTIME != 0 {
                until(&mut w, probe, t, args[0] as i32);
            } else {
                w.details.duration_secs = t;
            }
            w
        }
        Call::Poll | Call::Ppoll => {
            let mut w = BlockedOn::new(WaitKind::Poll);
            w.details.fds = poll_fds(args[0], args[1], probe);
            if call == Call::Poll {
                let ms = args[2] as i32;
                w.details.timed = ms >= 0;
                w.details.duration_secs = (ms >= 0).then_some(ms as f64 / 1000.0);
            } else {
                w.details.timed = args[2] != 0;
                w.details.duration_secs = read_time(probe, args[2], 1e9);
            }
            w
        }
        Call::Select | Call::Pselect6 => {
            let mut w = BlockedOn::new(WaitKind::Select);
            w.details.fds = select_fds(args[0], args[1], probe);
            w.details.timed = args[4] != 0;
            let unit = if call == Call::Select { 1e6 } else { 1e9 };
            w.details.duration_secs = read_time(probe, args[4], unit);
            w
        }
        Call::EpollWait | Call::EpollPwait | Call::EpollPwait2 => {
            let mut w = BlockedOn::new(WaitKind::Epoll);
            w.details.fd = Some(fd);
            w.details.fds = probe.fdinfo(fd).epoll_targets;
            if call == Call::EpollPwait2 {
                w.details.timed = args[3] != 0;
                w.details.duration_secs = read_time(probe, args[3], 1e9);
            } else {
                let ms = args[3] as i32;
                w.details.timed = ms >= 0;
                w.details.duration_secs = (ms >= 0).then_some(ms as f64 / 1000.0);
            }
            w
        }
        Call::Accept | Call::Connect | Call::Flock | Call::Fcntl => {
            let mut w = BlockedOn::new(WaitKind::Other(syscall_name.clone()));
            w.details.fd = Some(fd);
            w
        }
        Call::Pause
        | Call::SigSuspend
        | Call::SigTimedWait
        | Call::Semop
        | Call::Semtimedop
        | Call::MsgRcv => BlockedOn::new(WaitKind::Other(syscall_name.clone())),
    };
    wait.details.syscall = Some(syscall_name);
    if wait.object.is_none() {
        wait.object = object_of(&wait);
    }
    wait
}

/// The default object name of a wait from its details.
fn object_of(wait: &BlockedOn) -> Option<String> {
    let d = &wait.details;
    match wait.kind {
        WaitKind::ChildWait => Some(match (d.child, d.pgid) {
            (Some(pid), _) => format!("pid {pid}"),
            (None, Some(pgid)) => format!("group {pgid}"),
            _ => "any child".into(),
        }),
        WaitKind::Poll | WaitKind::Select | WaitKind::Epoll if !d.fds.is_empty() => {
            let fds: Vec<String> = d.fds.iter().map(i32::to_string).collect();
            Some(format!("fds {}", fds.join(",")))
        }
        _ => None,
    }
}

fn on_fd(fd: i32, reading: bool, syscall: &str, probe: &mut dyn Probe) -> BlockedOn {
    let target = probe.fds().get(&fd).map(|f| f.target.clone());
    let (kind, object, inode) = match target {
        Some(FdTarget::Pipe(i)) => {
            let kind = if reading {
                WaitKind::PipeRead
            } else {
                WaitKind::PipeWrite
            };
            (kind, Some(format!("pipe:[{i}]")), Some(i))
        }
        Some(FdTarget::Socket(i)) => {
            let kind = if reading {
                WaitKind::SocketRecv
            } else {
                WaitKind::SocketSend
            };
            (kind, Some(format!("socket:[{i}]")), Some(i))
        }
        Some(FdTarget::Path(p)) => (WaitKind::Other(syscall.into()), Some(p), None),
        Some(FdTarget::Anon(a)) => (WaitKind::Other(syscall.into()), Some(a), None),
        None => (WaitKind::Other(syscall.into()), None, None),
    };
    let mut wait = BlockedOn::new(kind);
    wait.object = object;
    wait.details.fd = Some(fd);
    wait.details.inode = inode;
    wait
}

fn futex(args: &[u64; 6], probe: &mut dyn Probe) -> BlockedOn {
    let (addr, op, timeout) = (args[0], args[1], args[3]);
    let mut wait = BlockedOn::new(WaitKind::Futex);
    wait.details.address = Some(addr);
    let cmd = op & FUTEX_CMD_MASK;
    let waits = matches!(
        cmd,
        FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_LOCK_PI | FUTEX_LOCK_PI2
    );
    if waits && timeout != 0 {
        wait.details.timed = true;
        let t = read_time(probe, timeout, 1e9);
        if cmd == FUTEX_WAIT {
            wait.details.duration_secs = t;
        } else {
            let realtime = op & FUTEX_CLOCK_REALTIME != 0 || cmd == FUTEX_LOCK_PI;
            let clock = if realtime {
                libc::CLOCK_REALTIME
            } else {
                libc::CLOCK_MONOTONIC
            };
            until(&mut wait, probe, t, clock);
        }
    }
    if op & FUTEX_PRIVATE_FLAG != 0 {
        wait.details.futex_scope = Some("private");
        wait.object = Some(format!("futex {addr:#x} (private)"));
        return wait;
    }
    wait.details.futex_scope = Some("shared");
    let mapping = probe
        .maps()
        .iter()
        .find(|m| m.start <= addr && addr < m.end)
        .cloned();
    let Some(m) = mapping else {
        wait.object = Some(format!("futex {addr:#x}"));
        return wait;
    };
    let offset = (addr - m.start).saturating_add(m.offset);
    wait.details.offset = Some(offset);
    wait.details.inode = Some(m.inode);
    match classify_path(&m.path) {
        Some((SegmentKind::Semaphore, name)) if offset < 32 => {
            wait.details.semaphore = Some(m.inode);
            wait.details.segment = Some(name);
            wait.object = Some(format!("sem {}", m.inode));
        }
        Some((_, name)) => {
            wait.object = Some(format!("{name}+{offset:#x}"));
            wait.details.segment = Some(name);
        }
        None => {
            let path = if m.path.is_empty() { "anon" } else { &m.path };
            wait.object = Some(format!("futex {path}+{offset:#x}"));
        }
    }
    wait
}

fn child_wait_pid(pid: i32) -> BlockedOn {
    let mut wait = BlockedOn::new(WaitKind::ChildWait);
    match pid {
        p if p > 0 => wait.details.child = Some(p),
        -1 | 0 => wait.details.any_child = true,
        p => {
            wait.details.any_child = true;
            wait.details.pgid = p.checked_neg();
        }
    }
    wait
}

fn waitid(args: &[u64; 6], probe: &mut dyn Probe) -> BlockedOn {
    const P_ALL: u64 = 0;
    const P_PID: u64 = 1;
    const P_PGID: u64 = 2;
    const P_PIDFD: u64 = 3;
    let id = args[1] as i32;
    match args[0] {
        P_PID => child_wait_pid(id.max(1)),
        P_PGID => child_wait_pid(if id == 0 { 0 } else { id.saturating_neg() }),
        P_PIDFD => match probe.fdinfo(id).pid {
            Some(pid) if pid > 0 => child_wait_pid(pid),
            _ => BlockedOn::new(WaitKind::ChildWait),
        },
        P_ALL => child_wait_pid(-1),
        _ => BlockedOn::new(WaitKind::ChildWait),
    }
}

fn poll_fds(array: u64, count: u64, probe: &mut dyn Probe) -> Vec<i32> {
    let count = count.min(MAX_POLL_FDS) as usize;
    if array == 0 || count == 0 {
        return Vec::new();
    }
    let Some(bytes) = probe.read_mem(array, count * 8) else {
        return Vec::new();
    };
    bytes
        .chunks_exact(8)
        .filter_map(|c| Some(i32::from_le_bytes(c.get(..4)?.try_into().ok()?)))
        .filter(|fd| *fd >= 0)
        .collect()
}

fn select_fds(nfds: u64, readfds: u64, probe: &mut dyn Probe) -> Vec<i32> {
    let nfds = nfds.min(1024);
    if readfds == 0 || nfds == 0 {
        return Vec::new();
    }
    let len = (nfds as usize).div_ceil(64) * 8;
    let Some(bytes) = probe.read_mem(readfds, len) else {
        return Vec::new();
    };
    (0..nfds as usize)
        .filter(|fd| bytes.get(fd / 8).is_some_and(|b| b & (1 << (fd % 8)) != 0))
        .take(MAX_POLL_FDS as usize)
        .map(|fd| fd as i32)
        .collect()
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
