//! Signal names and numbers for Linux, including the real-time range (`SIGRTMIN+3`).

const NAMES: &[(i32, &str)] = &[
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

/// The kernel's first real-time signal (glibc reserves 32 and 33 for itself).
const KERNEL_SIGRTMIN: i32 = 32;
/// The last signal number on Linux.
pub const SIGNAL_MAX: i32 = 64;

/// `SIGTERM` for 15; `SIGRT34` style names for the real-time range; `SIG?N` beyond it.
pub fn signal_name(signo: i32) -> std::borrow::Cow<'static, str> {
    if let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == signo) {
        return std::borrow::Cow::Borrowed(name);
    }
    if (KERNEL_SIGRTMIN..=SIGNAL_MAX).contains(&signo) {
        return std::borrow::Cow::Owned(format!("SIGRT{signo}"));
    }
    std::borrow::Cow::Owned(format!("SIG?{signo}"))
}

/// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `SIGRT40`.
pub fn signal_number(name: &str) -> Option<i32> {
    let trimmed = name.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return (1..=SIGNAL_MAX).contains(&number).then_some(number);
    }
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rt) = bare.strip_prefix("RT") {
        return rt
            .parse::<i32>()
            .ok()
            .filter(|n| (KERNEL_SIGRTMIN..=SIGNAL_MAX).contains(n));
    }
    NAMES
        .iter()
        .find(|(_, known)| known.strip_prefix("SIG") == Some(bare))
        .map(|(number, _)| *number)
}

/// Every named signal, in number order, for menus.
pub fn all_signals() -> impl Iterator<Item = (i32, &'static str)> {
    let mut list: Vec<(i32, &'static str)> = NAMES.to_vec();
    list.sort_by_key(|(n, _)| *n);
    list.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for (number, name) in all_signals() {
            assert_eq!(signal_number(name), Some(number));
            assert_eq!(signal_name(number), name);
        }
        assert_eq!(signal_number("term"), Some(15));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGRT40"), Some(40));
        assert_eq!(signal_name(40), "SIGRT40");
        assert_eq!(signal_number("SIGBOGUS"), None);
        assert_eq!(signal_number("0"), None);
        assert_eq!(signal_number("65"), None);
    }
}
