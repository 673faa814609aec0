//! The processes of a test, seen through `/proc`: which ones carry the test's marker (and so
//! were started by its session), the check that none is left, the killing of survivors (only
//! those), and the few `/proc` reads the tests make. `stat` is parsed by the crate's own
//! `forkscope::inspect::proc` (one parser; its unit tests pin it to proc(5)).

use std::time::{Duration, Instant};

pub use forkscope::inspect::proc::ProcStat as Stat;

use super::secs;

/// How long processes of a finished test may take to go: a guardian SIGKILLed at drop has its
/// engine stop the tree, which waits up to the default 5 s stop timeout for a worker that
/// ignores SIGTERM; twice that is the margin for a loaded machine.
pub const LEAK_GRACE: Duration = Duration::from_secs(10);

/// Live processes (not zombies) whose environment or command line carries `marker`, as
/// (pid, "comm [state] cmdline").
pub fn marked_processes(marker: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let needle = marker.as_bytes();
    let mut found = Vec::new();
    for pid in forkscope::inspect::proc::list_pids().unwrap_or_default() {
        if pid == me {
            continue;
        }
        let hit = ["environ", "cmdline"].iter().any(|file| {
            std::fs::read(format!("/proc/{pid}/{file}"))
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        });
        if !hit {
            continue;
        }
        let Some(stat) = read_stat(pid) else { continue };
        if stat.state == 'Z' || stat.state == 'X' {
            continue;
        }
        let cmdline = forkscope::inspect::proc::read_cmdline(pid)
            .unwrap_or_default()
            .join(" ");
        found.push((pid, format!("{} [{}] {cmdline}", stat.comm, stat.state)));
    }
    found
}

/// Waits up to `grace` for every process carrying `marker` to go; SIGKILLs the ones still
/// there and returns them (empty when nothing was left).
pub fn survivors(marker: &str, grace: Duration) -> Vec<(i32, String)> {
    let deadline = Instant::now() + grace;
    loop {
        let left = marked_processes(marker);
        if left.is_empty() {
            return left;
        }
        if Instant::now() >= deadline {
            kill_marked(marker);
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The end-of-test check of the guards (`Drop`): survivors after `grace` are killed, then
/// reported by a panic; when the test is already failing they are killed at once and
/// reported on stderr (a second panic in a drop would abort the test binary and hide the
/// first message).
pub fn report_leaks(marker: &str, grace: Duration) {
    let failing = std::thread::panicking();
    let left = survivors(marker, if failing { Duration::ZERO } else { grace });
    if left.is_empty() {
        return;
    }
    let message = format!("[{marker}] processes left running (killed now): {left:?}");
    if failing {
        eprintln!("{message}");
    } else {
        panic!("{message}");
    }
}

/// Panics (after killing them) if processes carrying `marker` are still running 3 s from now.
pub fn assert_nothing_left(marker: &str) {
    let left = survivors(marker, secs(3.0));
    assert!(
        left.is_empty(),
        "[{marker}] processes left running: {left:?}"
    );
}

/// Kills whatever carries the marker when dropped, silently: for the test's own fixtures
/// (a `sleep` it inspects) and for cleaning up after a failure. The leak checks are those of
/// the session guards ([`super::Forkscope`], [`super::tui::Tmux`], [`super::shm::Py`]) and
/// [`assert_nothing_left`].
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        kill_marked(&self.0);
    }
}

/// SIGKILLs every live process carrying `marker` (cleanup after a failed test).
pub fn kill_marked(marker: &str) {
    for _ in 0..20 {
        let left = marked_processes(marker);
        if left.is_empty() {
            return;
        }
        for (pid, _) in left {
            // SAFETY: kill(2); the process carries this test's unique marker, so it is ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `/proc/PID/stat`, parsed by the crate (`None` once the process is gone).
pub fn read_stat(pid: i32) -> Option<Stat> {
    forkscope::inspect::proc::read_stat(pid).ok()
}

/// A `VmHWM`/`VmRSS`-style field of `/proc/PID/status`, in KiB.
pub fn status_kb(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The pids whose parent is `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    forkscope::inspect::proc::scan_all()
        .map(|all| {
            all.values()
                .filter(|s| s.ppid == pid)
                .map(|s| s.pid)
                .collect()
        })
        .unwrap_or_default()
}

/// The engine of the forkscope whose guardian is `guardian`: the child of its only child
/// (the watchdog).
pub fn engine_of(guardian: i32) -> Option<i32> {
    let watchdog = children_of(guardian).first().copied()?;
    children_of(watchdog).first().copied()
}

/// Whether `pid` is alive (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    read_stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Whether the process `pid` that started at `start_time` (clock ticks after boot, as events
/// report it) still runs; a reused pid is another process.
pub fn still_running(pid: i32, start_time: u64) -> bool {
    read_stat(pid).is_some_and(|s| s.start_time == start_time && s.state != 'Z' && s.state != 'X')
}
