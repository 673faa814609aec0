//! Reading `/proc`: one process's `stat` and `cmdline`, the list of pids, and the tree of
//! descendants under a pid (found by scanning, since `/proc/PID/task/TID/children` needs
//! CONFIG_PROC_CHILDREN, which many kernels lack).

use std::collections::HashMap;
use std::fs;
use std::io;

/// The fields of `/proc/PID/stat` forkscope uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// User plus system time, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: u32,
    /// Start time after boot, in clock ticks: with the pid, the process identity.
    pub start_time: u64,
    pub rss_pages: u64,
    /// Field 52: the exit status word of a zombie.
    pub exit_code: Option<i32>,
}

#[cfg(test)]
impl ProcStat {
    /// A sleeping single-threaded process, for tests of what reads `/proc`.
    pub fn fixture(pid: i32, ppid: i32, start_time: u64) -> ProcStat {
        ProcStat {
            pid,
            comm: format!("p{pid}"),
            state: 'S',
            ppid,
            pgrp: pid,
            session: pid,
            cpu_ticks: 0,
            threads: 1,
            start_time,
            rss_pages: 10,
            exit_code: None,
        }
    }
}

/// Why a `stat` line could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed /proc stat line: {0}")]
pub struct StatParseError(pub &'static str);

/// Parses the text of `/proc/PID/stat`. Never panics, whatever the bytes.
pub fn parse_stat(text: &str) -> Result<ProcStat, StatParseError> {
    let open = text.find('(').ok_or(StatParseError("no '('"))?;
    let close = text.rfind(')').ok_or(StatParseError("no ')'"))?;
    if close < open {
        return Err(StatParseError("')' before '('"));
    }
    let pid = text[..open]
        .trim()
        .parse()
        .map_err(|_| StatParseError("pid"))?;
    let comm = text[open + 1..close].to_string();
    // Field N of proc(5) is rest[N - 3]; 52 fields at most are used (no allocation).
    let mut rest = [""; 50];
    let mut count = 0;
    for (slot, word) in rest
        .iter_mut()
        .zip(text[close + 1..].split_ascii_whitespace())
    {
        *slot = word;
        count += 1;
    }
    let rest = &rest[..count];
    let field = |n: usize| rest.get(n - 3).copied().ok_or(StatParseError("too short"));
    let number = |n: usize| -> Result<u64, StatParseError> {
        field(n)?.parse().map_err(|_| StatParseError("number"))
    };
    let signed = |n: usize| -> Result<i32, StatParseError> {
        field(n)?.parse().map_err(|_| StatParseError("number"))
    };
    let state = field(3)?.chars().next().ok_or(StatParseError("state"))?;
    Ok(ProcStat {
        pid,
        comm,
        state,
        ppid: signed(4)?,
        pgrp: signed(5)?,
        session: signed(6)?,
        cpu_ticks: number(14)?.saturating_add(number(15)?),
        threads: number(20)?.min(u32::MAX as u64) as u32,
        start_time: number(22)?,
        rss_pages: signed(24).map(|v| v.max(0) as u64).unwrap_or(0),
        exit_code: signed(52).ok(),
    })
}

/// Reads and parses `/proc/PID/stat`.
pub fn read_stat(pid: i32) -> io::Result<ProcStat> {
    use rustix::fs::{Mode, OFlags, open};
    let fd = open(
        format!("/proc/{pid}/stat"),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // The kernel writes the whole line in one read when it fits (it is under 1 KiB): one
    // `read` instead of `read_to_string`'s `statx` and growing reads (an exit waits on it).
    let mut buf = [0u8; 4096];
    let len = rustix::io::read(&fd, &mut buf)?;
    let text = std::str::from_utf8(buf.get(..len).unwrap_or_default())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    parse_stat(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The argument vector of a live process (empty for zombies and kernel threads).
pub fn read_cmdline(pid: i32) -> io::Result<Vec<String>> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(split_cmdline(&bytes))
}

/// Splits NUL-separated `cmdline` bytes into arguments.
pub fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    bytes
        .strip_suffix(b"\0")
        .unwrap_or(bytes)
        .split(|b| *b == 0)
        .filter(|arg| !bytes.is_empty() || !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Every pid in `/proc` (processes, not threads).
pub fn list_pids() -> io::Result<Vec<i32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Every process of the system, by pid. Processes that vanish mid-scan are skipped.
pub fn scan_all() -> io::Result<HashMap<i32, ProcStat>> {
    Ok(list_pids()?
        .into_iter()
        .filter_map(|pid| read_stat(pid).ok())
        .map(|stat| (stat.pid, stat))
        .collect())
}

/// The descendants of `root` (not `root` itself) in a scan, parents before children.
pub fn descendants_in(all: &HashMap<i32, ProcStat>, root: i32) -> Vec<ProcStat> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for stat in all.values() {
        children.entry(stat.ppid).or_default().push(stat.pid);
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        if let Some(kids) = children.get(&parent) {
            for kid in kids {
                if *kid != root && found.len() < all.len() {
                    found.push(all[kid].clone());
                    queue.push(*kid);
                }
            }
        }
    }
    found
}

/// Scans `/proc` and returns the descendants of `root`.
pub fn descendants(root: i32) -> io::Result<Vec<ProcStat>> {
    Ok(descendants_in(&scan_all()?, root))
}

/// Clock ticks per second (`_SC_CLK_TCK`, from the auxiliary vector).
pub fn clock_ticks_per_second() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        ticks => ticks,
    }
}

/// Bytes per page.
pub fn page_size() -> u64 {
    match rustix::param::page_size() {
        0 => 4096,
        size => size as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 5555 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 256";

    #[test]
    fn read_stat_reads_the_whole_line_of_a_zombie_and_of_pid_1() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while read_stat(pid).unwrap().state != 'Z' {
            assert!(std::time::Instant::now() < deadline, "never a zombie");
            std::thread::yield_now();
        }
        for pid in [pid, 1] {
            let whole = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            // Field 52, the exit code, is the line's last: it is only there if all was read.
            assert_eq!(read_stat(pid).unwrap(), parse_stat(&whole).unwrap());
        }
        assert_eq!(read_stat(pid).unwrap().exit_code, Some(0));
        child.wait().unwrap();
        assert!(read_stat(pid).is_err(), "reaped: no entry");
    }

    #[test]
    fn parses_stat_with_parens_in_comm() {
        let stat = parse_stat(SAMPLE).unwrap();
        assert_eq!(stat.pid, 1234);
        assert_eq!(stat.comm, "my (odd) name");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.cpu_ticks, 10);
        assert_eq!(stat.threads, 2);
        assert_eq!(stat.start_time, 5555);
        assert_eq!(stat.rss_pages, 250);
        assert_eq!(stat.exit_code, Some(256));
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id() as i32;
        let stat = read_stat(me).unwrap();
        assert_eq!(stat.pid, me);
        assert!(!read_cmdline(me).unwrap().is_empty());
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(
            split_cmdline(b"sh\0-c\0echo hi\0"),
            vec!["sh", "-c", "echo hi"]
        );
        assert!(split_cmdline(b"").is_empty());
        assert_eq!(split_cmdline(b"a\0\0b\0"), vec!["a", "", "b"]);
    }

    proptest::proptest! {
        #[test]
        fn parse_stat_never_panics(text in ".{0,300}") {
            let _ = parse_stat(&text);
        }
    }
}
