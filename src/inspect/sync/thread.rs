//! Raw facts about one thread from `/proc/PID/task/TID/{stat,syscall,wchan,sched}`, and the
//! clock that turns the scheduler's last-ran time into "blocked for N s". A thread that
//! vanishes mid-read gives `None` fields, never an error.

use std::fs;
use std::time::Duration;

use super::syscall::{self, SyscallState};

/// What was read about one thread.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThreadFacts {
    pub tid: i32,
    /// The state letter of `stat` (`R`, `S`, `D`, `T`, `Z`, ...).
    pub state: Option<char>,
    pub syscall: Option<SyscallState>,
    /// The kernel function it sleeps in (`None` for `0` or unreadable).
    pub wchan: Option<String>,
    /// `se.exec_start` of `sched` (milliseconds on the scheduler clock): when it last ran.
    pub last_ran_ms: Option<f64>,
}

/// The thread ids of `pid` (empty when it vanished).
pub fn list_tids(pid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut tids: Vec<i32> = dir
        .flatten()
        .take(1 << 16)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

/// The state letter of a `stat` text (the first field after the `)` of the name).
pub fn parse_state(stat: &str) -> Option<char> {
    let close = stat.rfind(')')?;
    stat.get(close + 1..)?
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// `se.exec_start` of a `sched` text, in milliseconds.
pub fn parse_exec_start(sched: &str) -> Option<f64> {
    sched
        .lines()
        .take(8)
        .find(|l| l.starts_with("se.exec_start"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
}

/// Reads one thread: `stat` and `syscall`; `full` also reads `wchan` and `sched` (the
/// cheap per-second scan of the TUI leaves them out).
pub fn read_thread(pid: i32, tid: i32, full: bool) -> ThreadFacts {
    let dir = format!("/proc/{pid}/task/{tid}");
    let read = |name: &str| fs::read_to_string(format!("{dir}/{name}")).ok();
    let state = read("stat").as_deref().and_then(parse_state);
    let syscall = read("syscall").and_then(|t| syscall::parse(&t).ok());
    let wchan = if full { read("wchan") } else { None }
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty() && w != "0");
    let last_ran_ms = if full {
        read("sched").as_deref().and_then(parse_exec_start)
    } else {
        None
    };
    ThreadFacts {
        tid,
        state,
        syscall,
        wchan,
        last_ran_ms,
    }
}

/// `CLOCK_MONOTONIC` now, in seconds.
pub fn monotonic_secs() -> f64 {
    clock_secs(libc::CLOCK_MONOTONIC).unwrap_or(0.0)
}

/// Clock `clock` (a `clockid_t`) now, in seconds; `None` for an invalid clock.
pub fn clock_secs(clock: libc::clockid_t) -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// The offset between the scheduler clock of `sched` files and `CLOCK_MONOTONIC` (they
/// differ by seconds on some machines), measured on our own thread right after it woke.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchedClock {
    /// Monotonic seconds minus scheduler seconds.
    offset_secs: f64,
}

impl SchedClock {
    /// `None` when `sched` files are not available (kernel without `CONFIG_SCHED_DEBUG`).
    pub fn calibrate() -> Option<SchedClock> {
        std::thread::sleep(Duration::from_micros(200));
        let text = fs::read_to_string("/proc/thread-self/sched").ok()?;
        let now = monotonic_secs();
        let ran = parse_exec_start(&text)? / 1000.0;
        Some(SchedClock {
            offset_secs: now - ran,
        })
    }

    /// Seconds since a thread last ran (never negative).
    pub fn since(&self, last_ran_ms: f64) -> f64 {
        (monotonic_secs() - self.offset_secs - last_ran_ms / 1000.0).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_state_and_sched() {
        assert_eq!(parse_state("12 (a) b) S 1 2"), Some('S'));
        assert_eq!(parse_state("garbage"), None);
        let sched = "x (1, #threads: 1)\n----\nse.exec_start      :     509987.233612\n";
        assert_eq!(parse_exec_start(sched), Some(509987.233612));
        assert_eq!(parse_exec_start("se.exec_start : nan\n"), None);
    }

    #[test]
    fn reads_own_threads_and_vanished_ones() {
        let me = std::process::id() as i32;
        let tids = list_tids(me);
        assert!(tids.contains(&me));
        let facts = read_thread(me, me, true);
        assert!(facts.state.is_some());
        assert!(list_tids(-3).is_empty());
        let gone = read_thread(-3, -3, true);
        assert_eq!(gone.state, None);
        assert_eq!(gone.syscall, None);
    }

    proptest::proptest! {
        #[test]
        fn never_panic(text in "\\PC{0,200}") {
            let _ = parse_state(&text);
            let _ = parse_exec_start(&text);
        }
    }
}
