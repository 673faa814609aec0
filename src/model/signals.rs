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

/// A signal number, serialised as its name (`"SIGTERM"`, `"SIGRT40"`, `"SIG?70"`): the
/// events' `signal` field. Any number round-trips, named or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sig(pub i32);

impl Sig {
    pub fn number(self) -> i32 {
        self.0
    }

    pub fn name(self) -> std::borrow::Cow<'static, str> {
        signal_name(self.0)
    }

    /// The inverse of [`Sig::name`]: also accepts what [`signal_number`] does and the
    /// `SIG?N` form of numbers without a name.
    pub fn from_name(name: &str) -> Option<Sig> {
        if let Some(n) = signal_number(name) {
            return Some(Sig(n));
        }
        name.trim()
            .strip_prefix("SIG?")
            .and_then(|n| n.parse().ok())
            .map(Sig)
    }
}

impl std::fmt::Display for Sig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for Sig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Sig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Sig, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Sig::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown signal name {name:?}")))
    }
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

    #[test]
    fn sig_serialises_as_its_name_and_round_trips_any_number() {
        for n in [1, 9, 15, 34, 64, 0, 70, -3] {
            let json = serde_json::to_string(&Sig(n)).unwrap();
            assert_eq!(json, format!("{:?}", signal_name(n)));
            assert_eq!(serde_json::from_str::<Sig>(&json).unwrap(), Sig(n));
        }
        assert_eq!(serde_json::to_string(&Sig(15)).unwrap(), "\"SIGTERM\"");
        assert!(serde_json::from_str::<Sig>("\"SIGBOGUS\"").is_err());
    }
}
