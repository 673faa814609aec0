//! Repeated reads of known processes' `/proc/PID/stat` at the cost of one `pread` each: the
//! process's `/proc/PID` directory and its `stat` file stay open between samples, and the
//! text goes into one reused buffer. An open `/proc/PID` belongs to that process, not to the
//! number: once it has ended, reads fail, so a reused pid is never read through an old
//! descriptor; a new one is opened, and the start time tells the two apart.
//!
//! The descriptors of processes not read in a round are closed at [`StatReader::end_round`].
//! At most a quarter of the open-files limit is kept; past it, pids are read by open, read,
//! close, without their pipe links. The pipe ends behind fds 1 and 2 (`fd/1`, `fd/2` read relative to the directory)
//! are read when a process is first seen and after it execs, not at every sample.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags, openat};

use super::proc::{ProcStat, parse_stat};

/// Bytes of the reused buffer: a `stat` line is under 1 KiB even with a 64-byte comm.
const BUFFER: usize = 4096;

struct Open {
    dir: OwnedFd,
    stat: OwnedFd,
    start_time: u64,
    comm: String,
    /// Pipe inodes of fds 1 and 2, as read when first seen or after the last exec.
    pipes: [Option<u64>; 2],
    round: u64,
}

/// What [`StatReader::read`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub stat: ProcStat,
    /// The pipe inodes behind fds 1 and 2 (`None`: not a pipe, or unreadable).
    pub pipes: [Option<u64>; 2],
}

/// Open `/proc` entries of the processes sampled, by pid.
pub struct StatReader {
    proc: Option<OwnedFd>,
    open: HashMap<i32, Open>,
    buffer: Vec<u8>,
    round: u64,
    cap: usize,
}

impl std::fmt::Debug for StatReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatReader")
            .field("open", &self.open.len())
            .finish()
    }
}

impl Default for StatReader {
    fn default() -> Self {
        StatReader::new()
    }
}

impl StatReader {
    pub fn new() -> StatReader {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        StatReader {
            proc: openat(
                rustix::fs::CWD,
                "/proc",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok(),
            open: HashMap::new(),
            buffer: vec![0; BUFFER],
            round: 0,
            // Two descriptors per process.
            cap: usize::try_from(limit / 8).unwrap_or(usize::MAX),
        }
    }

    /// Reads `pid`'s `stat`; `None` if it is gone, unreadable, or (with `start`) another
    /// process than the one expected.
    pub fn read(&mut self, pid: i32, start: Option<u64>) -> Option<Read> {
        if let Some(open) = self.open.get_mut(&pid) {
            let read = pread_stat(&open.stat, &mut self.buffer)
                .filter(|stat| stat.start_time == open.start_time);
            match read {
                Some(stat) => {
                    open.round = self.round;
                    if stat.comm != open.comm {
                        // An exec: the program may have new stdout and stderr.
                        open.pipes = pipes(&open.dir);
                        open.comm.clone_from(&stat.comm);
                    }
                    let pipes = open.pipes;
                    return start
                        .is_none_or(|s| s == stat.start_time)
                        .then_some(Read { stat, pipes });
                }
                None => {
                    self.open.remove(&pid);
                }
            }
        }
        if self.open.len() >= self.cap {
            // Past the cap: open, read, close, and no pipe links (two more lookups).
            let proc = self.proc.as_ref()?;
            let path = format!("{pid}/stat");
            let fd = openat(proc, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
            let stat = pread_stat(&fd, &mut self.buffer)?;
            return start.is_none_or(|s| s == stat.start_time).then_some(Read {
                stat,
                pipes: [None, None],
            });
        }
        let (dir, stat_fd) = self.open_pid(pid)?;
        let stat = pread_stat(&stat_fd, &mut self.buffer)?;
        let pipes = pipes(&dir);
        if stat.pid == pid && self.open.len() < self.cap {
            self.open.insert(
                pid,
                Open {
                    dir,
                    stat: stat_fd,
                    start_time: stat.start_time,
                    comm: stat.comm.clone(),
                    pipes,
                    round: self.round,
                },
            );
        }
        start
            .is_none_or(|s| s == stat.start_time)
            .then_some(Read { stat, pipes })
    }

    /// Closes the entries of processes not read since the previous call.
    pub fn end_round(&mut self) {
        let round = self.round;
        self.open.retain(|_, open| open.round == round);
        self.round += 1;
    }

    /// Processes whose descriptors are open.
    pub fn cached(&self) -> usize {
        self.open.len()
    }

    fn open_pid(&self, pid: i32) -> Option<(OwnedFd, OwnedFd)> {
        let proc = self.proc.as_ref()?;
        let dir = openat(
            proc,
            pid.to_string(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let stat = openat(
            &dir,
            "stat",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        Some((dir, stat))
    }
}

/// One `pread` at offset 0 (the kernel regenerates the text) into `buffer`, parsed.
fn pread_stat(fd: &OwnedFd, buffer: &mut [u8]) -> Option<ProcStat> {
    let n = rustix::io::pread(fd, &mut *buffer, 0).ok()?;
    let text = String::from_utf8_lossy(buffer.get(..n)?);
    parse_stat(&text).ok()
}

/// The pipe inodes behind fds 1 and 2 of the process whose `/proc` directory is `dir`.
fn pipes(dir: &OwnedFd) -> [Option<u64>; 2] {
    ["fd/1", "fd/2"].map(|link| {
        let target = rustix::fs::readlinkat(dir, link, Vec::new()).ok()?;
        parse_pipe_link(target.to_str().ok()?)
    })
}

/// `pipe:[INODE]` → INODE.
pub fn parse_pipe_link(link: &str) -> Option<u64> {
    link.strip_prefix("pipe:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_a_child_until_it_ends_and_never_a_reused_pid() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut reader = StatReader::new();
        let first = reader.read(pid, None).unwrap();
        assert_eq!(first.stat.pid, pid);
        assert!(first.pipes[0].is_some(), "stdout is a pipe");
        assert_eq!(reader.cached(), 1);
        let start = first.stat.start_time;
        // Cached: the same process, and another start time is refused.
        assert_eq!(
            reader.read(pid, Some(start)).unwrap().stat.start_time,
            start
        );
        assert!(reader.read(pid, Some(start + 1)).is_none());
        child.kill().unwrap();
        child.wait().unwrap();
        // Reaped: the open entry reads nothing; whoever holds the pid now (likely nobody)
        // is not the process expected.
        assert!(reader.read(pid, Some(start)).is_none());
        reader.end_round();
        reader.end_round();
        assert_eq!(reader.cached(), 0);
    }

    #[test]
    fn pipe_links() {
        assert_eq!(parse_pipe_link("pipe:[123456]"), Some(123456));
        assert_eq!(parse_pipe_link("/dev/null"), None);
        assert_eq!(parse_pipe_link("socket:[12]"), None);
        assert_eq!(parse_pipe_link("pipe:[x]"), None);
    }

    proptest! {
        #[test]
        fn garbage_links_never_panic(text in ".{0,40}") {
            let _ = parse_pipe_link(&text);
        }
    }
}
