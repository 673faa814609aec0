//! A process's descriptor table as far as waits need it: `/proc/PID/fd/N` links (pipes,
//! sockets, files) and `/proc/PID/fdinfo/N` (open mode, a pidfd's pid, an epoll's targets).
//! Pure parsers for both; a vanished process gives an empty table.

use std::collections::BTreeMap;
use std::fs;

/// What a descriptor refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdTarget {
    Pipe(u64),
    Socket(u64),
    /// `anon_inode:[eventpoll]`, `anon_inode:[pidfd]`, ...: the text in brackets.
    Anon(String),
    /// A path (file, tty, device).
    Path(String),
}

/// Parses a `/proc/PID/fd/N` link target.
pub fn parse_target(text: &str) -> FdTarget {
    let inode = |prefix: &str| -> Option<u64> {
        text.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
    };
    if let Some(i) = inode("pipe:[") {
        return FdTarget::Pipe(i);
    }
    if let Some(i) = inode("socket:[") {
        return FdTarget::Socket(i);
    }
    if let Some(rest) = text.strip_prefix("anon_inode:") {
        let name = rest.trim_start_matches('[').trim_end_matches(']');
        return FdTarget::Anon(name.to_string());
    }
    FdTarget::Path(text.to_string())
}

/// The fields of an fdinfo file that waits use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdInfo {
    /// `flags:` (octal): the open flags.
    pub flags: Option<u32>,
    /// A pidfd's `Pid:`.
    pub pid: Option<i32>,
    /// An epoll's `tfd:` lines: the descriptors it watches.
    pub epoll_targets: Vec<i32>,
}

/// Parses the text of `/proc/PID/fdinfo/N`. Never panics, whatever the text.
pub fn parse_fdinfo(text: &str) -> FdInfo {
    let mut info = FdInfo::default();
    for line in text.lines().take(4096) {
        if let Some(v) = line.strip_prefix("flags:") {
            info.flags = u32::from_str_radix(v.trim(), 8).ok();
        } else if let Some(v) = line.strip_prefix("Pid:") {
            info.pid = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("tfd:")
            && let Some(fd) = v.split_whitespace().next().and_then(|f| f.parse().ok())
        {
            info.epoll_targets.push(fd);
        }
    }
    info
}

/// `r`, `w` or `rw` from open flags.
pub fn mode_of(flags: u32) -> &'static str {
    match flags & libc::O_ACCMODE as u32 {
        0 => "r",
        1 => "w",
        _ => "rw",
    }
}

/// One descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fd {
    pub target: FdTarget,
    /// `r`/`w`/`rw`, read from fdinfo for pipes and sockets only (others: `None`).
    pub mode: Option<&'static str>,
}

/// A process's descriptors, by number.
pub type FdTable = BTreeMap<i32, Fd>;

/// Reads the descriptor table of `pid` (bounded to 65,536 entries). Pipes and sockets get
/// their mode from fdinfo; sockets are always `rw`.
pub fn read_table(pid: i32) -> FdTable {
    let mut table = FdTable::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return table;
    };
    for entry in dir.flatten().take(1 << 16) {
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(link) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = parse_target(&link.to_string_lossy());
        let mode = match target {
            FdTarget::Pipe(_) => read_fdinfo(pid, fd).flags.map(mode_of),
            FdTarget::Socket(_) => Some("rw"),
            _ => None,
        };
        table.insert(fd, Fd { target, mode });
    }
    table
}

/// Reads one fdinfo file (default when unreadable).
pub fn read_fdinfo(pid: i32, fd: i32) -> FdInfo {
    fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .map(|t| parse_fdinfo(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(parse_target("pipe:[27446]"), FdTarget::Pipe(27446));
        assert_eq!(parse_target("socket:[9]"), FdTarget::Socket(9));
        assert_eq!(
            parse_target("anon_inode:[eventpoll]"),
            FdTarget::Anon("eventpoll".into())
        );
        assert_eq!(
            parse_target("anon_inode:[pidfd]"),
            FdTarget::Anon("pidfd".into())
        );
        assert_eq!(parse_target("pipe:[x]"), FdTarget::Path("pipe:[x]".into()));
        assert_eq!(
            parse_target("/dev/null"),
            FdTarget::Path("/dev/null".into())
        );
    }

    #[test]
    fn parses_fdinfo() {
        let info = parse_fdinfo("pos:\t0\nflags:\t0100001\nmnt_id:\t15\nino:\t27446\n");
        assert_eq!(info.flags, Some(0o100001));
        assert_eq!(mode_of(0o100001), "w");
        assert_eq!(mode_of(0o100000), "r");
        assert_eq!(mode_of(0o2), "rw");
        let info = parse_fdinfo("pos:\t0\nflags:\t02000002\nPid:\t4312\nNSpid:\t4312\n");
        assert_eq!(info.pid, Some(4312));
        let info = parse_fdinfo(
            "pos:\t0\nflags:\t02\ntfd:        5 events:       19 data:                5  pos:0 ino:6b sdev:c\ntfd:        7 events:       19 data:                7  pos:0 ino:6b sdev:c\n",
        );
        assert_eq!(info.epoll_targets, vec![5, 7]);
    }

    #[test]
    fn reads_own_pipe_modes() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let me = std::process::id() as i32;
        let table = read_table(me);
        use std::os::fd::AsRawFd;
        let read_end = &table[&r.as_raw_fd()];
        let write_end = &table[&w.as_raw_fd()];
        assert!(matches!(read_end.target, FdTarget::Pipe(_)));
        assert_eq!(read_end.target, write_end.target);
        assert_eq!((read_end.mode, write_end.mode), (Some("r"), Some("w")));
        assert!(read_table(-5).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panic(text in "\\PC{0,200}") {
            let _ = parse_target(&text);
            let _ = parse_fdinfo(&text);
        }
    }
}
