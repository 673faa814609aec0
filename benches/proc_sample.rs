//! Cost of one `/proc` sample of N processes (run by `benches/proc_sample.sh`, which builds
//! the C floor `benches/stat_floor.c` and passes its path in `STAT_FLOOR`). For each N the
//! bench forks N children that wait in `pause()`, then alternates, round after round:
//!
//! - **C floor**: open + read + close of each `/proc/PID/stat`, nothing parsed;
//! - **sampler**: forkscope's `StatReader` in its steady state (one `pread` of a kept-open
//!   `stat` per process, parsed), which is what the sampler thread does at every tick;
//! - **sampler + tracker**: the same plus `PollTracker::observe` (CPU %, RSS, the sample
//!   records), i.e. the engine's whole cost of a sample;
//! - **read_stat**: the reader the engine used before (open + read + close, parsed);
//! - **sysinfo**: `refresh_processes_specifics(Some(pids))` with CPU and memory.
//!
//! Prints the median microseconds per process of each and the ratio to the C floor. Every
//! child is SIGKILLed and reaped at the end (also on panic: a drop guard).

use std::process::Command;
use std::time::Instant;

use forkscope::inspect::proc;
use forkscope::inspect::stat_reader::StatReader;
use forkscope::track::poll::PollTracker;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Forked children in `pause()`; killed and reaped on drop.
struct Children(Vec<i32>);

impl Children {
    fn fork(count: usize) -> Children {
        let mut children = Children(Vec::with_capacity(count));
        for _ in 0..count {
            // SAFETY: the bench is single-threaded here; the child only pauses and exits.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                // SAFETY: async-signal-safe calls only.
                unsafe {
                    libc::pause();
                    libc::_exit(0);
                }
            }
            children.0.push(pid);
        }
        children
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for pid in &self.0 {
            // SAFETY: our own children, not yet reaped.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        for pid in &self.0 {
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(*pid, std::ptr::null_mut(), 0) };
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn per_process(start: Instant, n: usize) -> f64 {
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let floor = env("STAT_FLOOR");
    if floor.is_empty() {
        eprintln!("run benches/proc_sample.sh (it sets STAT_FLOOR)");
        return;
    }
    let counts: Vec<usize> = env("COUNTS")
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    let rounds: usize = env("ROUNDS").parse().unwrap_or(9);
    // As the engine does at start: two descriptors per sampled process.
    let limit = forkscope::supervise::spawn::raise_fd_limit().expect("raise the open-files limit");
    // sysinfo keeps files open too: its share, so that the three readers fit the limit.
    sysinfo::set_open_files_limit(usize::try_from(limit / 4).unwrap_or(usize::MAX));
    let names = [
        "C floor: open+read+close",
        "forkscope sampler (pread of a kept-open stat)",
        "forkscope sampler + tracker (the whole sample)",
        "before: read_stat (open+read+close, parsed)",
        "sysinfo refresh Some(pids), CPU + memory",
    ];
    println!("| N | what | µs per process (median of {rounds}) | vs C floor |");
    println!("|---|---|---|---|");
    for &n in &counts {
        let children = Children::fork(n);
        let pids = children.0.clone();
        let members: Vec<(i32, Option<u64>)> = pids.iter().map(|p| (*p, None)).collect();
        let args: Vec<String> = pids.iter().map(i32::to_string).collect();
        let sysinfo_pids: Vec<Pid> = pids.iter().map(|p| Pid::from(*p as usize)).collect();
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        let mut system = System::new();
        let mut reader = StatReader::new();
        let mut tracker = PollTracker::default();
        // Steady state: the first sample opens the entries.
        for (pid, start) in &members {
            reader.read(*pid, *start);
        }
        system.refresh_processes_specifics(ProcessesToUpdate::Some(&sysinfo_pids), true, kind);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for _ in 0..rounds {
            let out = Command::new(&floor)
                .args(&args)
                .output()
                .expect("run stat_floor");
            let c: f64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("µs");
            times[0].push(c);

            let start = Instant::now();
            let read = members
                .iter()
                .filter_map(|(pid, s)| reader.read(*pid, *s))
                .count();
            reader.end_round();
            times[1].push(per_process(start, n));
            assert_eq!(read, n);

            let start = Instant::now();
            let tree: Vec<proc::ProcStat> = members
                .iter()
                .filter_map(|(pid, s)| reader.read(*pid, *s).map(|r| r.stat))
                .collect();
            reader.end_round();
            let scan = tracker.observe(tree);
            times[2].push(per_process(start, n));
            assert_eq!(scan.samples.len(), n);

            let start = Instant::now();
            let read = pids.iter().filter_map(|p| proc::read_stat(*p).ok()).count();
            times[3].push(per_process(start, n));
            assert_eq!(read, n);

            let start = Instant::now();
            system.refresh_processes_specifics(ProcessesToUpdate::Some(&sysinfo_pids), true, kind);
            times[4].push(per_process(start, n));
        }
        let medians: Vec<f64> = times.into_iter().map(median).collect();
        for (name, m) in names.iter().zip(&medians) {
            println!("| {n} | {name} | {m:.2} | {:.2}x |", m / medians[0]);
        }
        drop(children);
    }
}
