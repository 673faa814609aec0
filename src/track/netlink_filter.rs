//! The classic BPF socket filter on the process-events socket: the kernel drops, before they
//! are queued, the events the tree filter never uses (thread creations and thread exits,
//! every kind but fork, exec, exit and the subscription's ack), so that a system busy with
//! threads or uid/comm changes does not wake the engine. Attaching a classic filter needs no
//! privilege. Process forks, execs and exits of the whole system still pass: telling the
//! tree's from the others needs the member set, which the tracker keeps.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::netlink::{PROC_EVENT_EXEC, PROC_EVENT_EXIT, PROC_EVENT_FORK, PROC_EVENT_NONE};

/// Offsets in the datagram (the filter sees it from the `nlmsghdr` on): `nlmsghdr` (16) +
/// `cn_msg` (20) = the `proc_event`, whose union starts 16 bytes further.
const WHAT: u32 = 36;
const UNION: u32 = 52;
/// Fork: `child_pid`, `child_tgid`. Exit: `process_pid`, `process_tgid`.
const FORK_CHILD_PID: u32 = UNION + 8;
const FORK_CHILD_TGID: u32 = UNION + 12;
const EXIT_PID: u32 = UNION;
const EXIT_TGID: u32 = UNION + 4;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const ST: u16 = libc::BPF_ST as u16;
const LDX_MEM: u16 = (libc::BPF_LDX | libc::BPF_W | libc::BPF_MEM) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JEQ_X: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_X) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// `asm-generic/socket.h` (the same on every Linux architecture); the `libc` crate defines
/// it only for Android.
const SO_ATTACH_FILTER: libc::c_int = 26;
/// Keep the whole datagram.
const ACCEPT: u32 = u32::MAX;
const DROP: u32 = 0;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// `BPF_ABS` word loads read big-endian; the connector writes host order. A constant is
/// compared in the form a load gives it.
const fn loaded(value: u32) -> u32 {
    u32::from_be_bytes(value.to_ne_bytes())
}

/// The program: ack/exec pass; fork passes if `child_pid == child_tgid` (a process, not a
/// thread); exit passes if `pid == tgid` (the thread group leader: what the tracker reads
/// as the process's end); everything else (and a datagram too short to load) is dropped.
pub fn program() -> Vec<Insn> {
    vec![
        /* 0 */ insn(LD_W_ABS, 0, 0, WHAT),
        /* 1 */ insn(JEQ_K, 13, 0, loaded(PROC_EVENT_NONE)),
        /* 2 */ insn(JEQ_K, 12, 0, loaded(PROC_EVENT_EXEC)),
        /* 3 */ insn(JEQ_K, 0, 4, loaded(PROC_EVENT_FORK)),
        /* 4 */ insn(LD_W_ABS, 0, 0, FORK_CHILD_TGID),
        /* 5 */ insn(ST, 0, 0, 0),
        /* 6 */ insn(LD_W_ABS, 0, 0, FORK_CHILD_PID),
        /* 7 */ insn(JA, 0, 0, 4),
        /* 8 */ insn(JEQ_K, 0, 5, loaded(PROC_EVENT_EXIT)),
        /* 9 */ insn(LD_W_ABS, 0, 0, EXIT_TGID),
        /* 10 */ insn(ST, 0, 0, 0),
        /* 11 */ insn(LD_W_ABS, 0, 0, EXIT_PID),
        /* 12 */ insn(LDX_MEM, 0, 0, 0),
        /* 13 */ insn(JEQ_X, 1, 0, 0),
        /* 14 */ insn(RET_K, 0, 0, DROP),
        /* 15 */ insn(RET_K, 0, 0, ACCEPT),
    ]
}

/// Attaches [`program`] to `fd` (`SO_ATTACH_FILTER`).
pub fn attach(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut filter: Vec<libc::sock_filter> = program()
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // Raw libc: neither rustix nor nix wraps SO_ATTACH_FILTER (a `sock_fprog` pointing at
    // the program, copied by the kernel during the call).
    // SAFETY: `prog` points at `filter`, alive for the call, of the length given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "netlink_filter_tests.rs"]
mod tests;
