//! `/proc/PID/task/TID/syscall`: a pure parser, and the syscalls forkscope interprets, by
//! number, for x86-64 and aarch64.

/// What the `syscall` file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyscallState {
    /// `running`: on a CPU (or runnable), not blocked.
    Running,
    /// `-1 SP PC`: blocked, but not inside a syscall (e.g. stopped in user space).
    NotInSyscall,
    /// `NR A1 .. A6 SP PC`.
    In { nr: u64, args: [u64; 6] },
}

/// Why the file's text could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed /proc syscall text")]
pub struct SyscallParseError;

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Parses the text of a `syscall` file. Never panics, whatever the text.
pub fn parse(text: &str) -> Result<SyscallState, SyscallParseError> {
    let text = text.trim();
    if text == "running" {
        return Ok(SyscallState::Running);
    }
    let mut fields = text.split_ascii_whitespace();
    let first = fields.next().ok_or(SyscallParseError)?;
    if first == "-1" {
        return Ok(SyscallState::NotInSyscall);
    }
    let nr = number(first).ok_or(SyscallParseError)?;
    let mut args = [0u64; 6];
    for arg in args.iter_mut() {
        *arg = number(fields.next().ok_or(SyscallParseError)?).ok_or(SyscallParseError)?;
    }
    Ok(SyscallState::In { nr, args })
}

/// The syscalls a wait is named after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Read,
    Readv,
    Pread,
    Write,
    Writev,
    Pwrite,
    RecvFrom,
    RecvMsg,
    RecvMmsg,
    SendTo,
    SendMsg,
    SendMmsg,
    Accept,
    Connect,
    Poll,
    Ppoll,
    Select,
    Pselect6,
    EpollWait,
    EpollPwait,
    EpollPwait2,
    Nanosleep,
    ClockNanosleep,
    Wait4,
    Waitid,
    Futex,
    FutexWaitv,
    Pause,
    SigSuspend,
    SigTimedWait,
    Flock,
    Fcntl,
    Semop,
    Semtimedop,
    MsgRcv,
}

/// The architecture whose numbers apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture forkscope was built for (its children run the same).
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }
}

const X86_64: &[(u64, Call, &str)] = &[
    (0, Call::Read, "read"),
    (1, Call::Write, "write"),
    (7, Call::Poll, "poll"),
    (17, Call::Pread, "pread64"),
    (18, Call::Pwrite, "pwrite64"),
    (19, Call::Readv, "readv"),
    (20, Call::Writev, "writev"),
    (23, Call::Select, "select"),
    (34, Call::Pause, "pause"),
    (35, Call::Nanosleep, "nanosleep"),
    (42, Call::Connect, "connect"),
    (43, Call::Accept, "accept"),
    (44, Call::SendTo, "sendto"),
    (45, Call::RecvFrom, "recvfrom"),
    (46, Call::SendMsg, "sendmsg"),
    (47, Call::RecvMsg, "recvmsg"),
    (61, Call::Wait4, "wait4"),
    (65, Call::Semop, "semop"),
    (70, Call::MsgRcv, "msgrcv"),
    (72, Call::Fcntl, "fcntl"),
    (73, Call::Flock, "flock"),
    (128, Call::SigTimedWait, "rt_sigtimedwait"),
    (130, Call::SigSuspend, "rt_sigsuspend"),
    (202, Call::Futex, "futex"),
    (220, Call::Semtimedop, "semtimedop"),
    (230, Call::ClockNanosleep, "clock_nanosleep"),
    (232, Call::EpollWait, "epoll_wait"),
    (247, Call::Waitid, "waitid"),
    (270, Call::Pselect6, "pselect6"),
    (271, Call::Ppoll, "ppoll"),
    (281, Call::EpollPwait, "epoll_pwait"),
    (288, Call::Accept, "accept4"),
    (299, Call::RecvMmsg, "recvmmsg"),
    (307, Call::SendMmsg, "sendmmsg"),
    (441, Call::EpollPwait2, "epoll_pwait2"),
    (449, Call::FutexWaitv, "futex_waitv"),
];

const AARCH64: &[(u64, Call, &str)] = &[
    (22, Call::EpollPwait, "epoll_pwait"),
    (25, Call::Fcntl, "fcntl"),
    (32, Call::Flock, "flock"),
    (63, Call::Read, "read"),
    (64, Call::Write, "write"),
    (65, Call::Readv, "readv"),
    (66, Call::Writev, "writev"),
    (67, Call::Pread, "pread64"),
    (68, Call::Pwrite, "pwrite64"),
    (72, Call::Pselect6, "pselect6"),
    (73, Call::Ppoll, "ppoll"),
    (95, Call::Waitid, "waitid"),
    (98, Call::Futex, "futex"),
    (101, Call::Nanosleep, "nanosleep"),
    (115, Call::ClockNanosleep, "clock_nanosleep"),
    (133, Call::SigSuspend, "rt_sigsuspend"),
    (137, Call::SigTimedWait, "rt_sigtimedwait"),
    (188, Call::MsgRcv, "msgrcv"),
    (192, Call::Semtimedop, "semtimedop"),
    (193, Call::Semop, "semop"),
    (202, Call::Accept, "accept"),
    (203, Call::Connect, "connect"),
    (206, Call::SendTo, "sendto"),
    (207, Call::RecvFrom, "recvfrom"),
    (211, Call::SendMsg, "sendmsg"),
    (212, Call::RecvMsg, "recvmsg"),
    (242, Call::Accept, "accept4"),
    (243, Call::RecvMmsg, "recvmmsg"),
    (260, Call::Wait4, "wait4"),
    (269, Call::SendMmsg, "sendmmsg"),
    (441, Call::EpollPwait2, "epoll_pwait2"),
    (449, Call::FutexWaitv, "futex_waitv"),
];

fn table(arch: Arch) -> &'static [(u64, Call, &'static str)] {
    match arch {
        Arch::X86_64 => X86_64,
        Arch::Aarch64 => AARCH64,
    }
}

/// The interpreted syscall with this number, and its name.
pub fn lookup(arch: Arch, nr: u64) -> Option<(Call, &'static str)> {
    table(arch)
        .iter()
        .find(|(n, _, _)| *n == nr)
        .map(|(_, call, name)| (*call, *name))
}

/// The name of a syscall (`#NR` when not in the table).
pub fn name(arch: Option<Arch>, nr: u64) -> String {
    arch.and_then(|a| lookup(a, nr))
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| format!("#{nr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse("running\n"), Ok(SyscallState::Running));
        assert_eq!(
            parse("-1 0x7ffc871dbe60 0x7f0be1aa3e96\n"),
            Ok(SyscallState::NotInSyscall)
        );
        let text =
            "202 0x7f0be15ee000 0x109 0x0 0x0 0x0 0xffffffff 0x7ffc871dbe60 0x7f0be1aa3e96\n";
        assert_eq!(
            parse(text),
            Ok(SyscallState::In {
                nr: 202,
                args: [0x7f0be15ee000, 0x109, 0, 0, 0, 0xffffffff]
            })
        );
        assert!(parse("").is_err());
        assert!(parse("202 0x1").is_err());
        assert!(parse("x 0 0 0 0 0 0").is_err());
    }

    #[test]
    fn tables_name_calls() {
        assert_eq!(lookup(Arch::X86_64, 202), Some((Call::Futex, "futex")));
        assert_eq!(lookup(Arch::Aarch64, 98), Some((Call::Futex, "futex")));
        assert_eq!(lookup(Arch::X86_64, 61), Some((Call::Wait4, "wait4")));
        assert_eq!(name(Some(Arch::X86_64), 99999), "#99999");
        for t in [X86_64, AARCH64] {
            for (i, a) in t.iter().enumerate() {
                assert!(t[i + 1..].iter().all(|b| b.0 != a.0), "duplicate {}", a.0);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,120}") {
            let _ = parse(&text);
        }

        #[test]
        fn round_trips(nr in 0u64..1000, args: [u64; 6]) {
            let text = format!("{nr} {} 0x7ffc 0x7f00\n",
                args.iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>().join(" "));
            proptest::prop_assert_eq!(parse(&text), Ok(SyscallState::In { nr, args }));
        }
    }
}
