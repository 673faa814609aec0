//! One sync scan of PROCS waiting processes with two threads each (`benches/syncwait.c`:
//! main thread in `sem_wait` on a shared semaphore, one thread sleeping), against a C loop
//! reading the same `/proc` files (`benches/sync_floor.c`). Run by `benches/sync_scan.sh`,
//! which builds the helpers and passes their paths in `SYNCWAIT` and `SYNC_FLOOR`.
//! Prints medians (microseconds per process) and ratios; kills every worker at the end.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use forkscope::inspect::sync::Scanner;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Workers(Vec<Child>, String);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(format!("/dev/shm/sem.{}", self.1));
    }
}

fn main() {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let (syncwait, floor) = (env("SYNCWAIT"), env("SYNC_FLOOR"));
    if syncwait.is_empty() || floor.is_empty() {
        eprintln!("run benches/sync_scan.sh (it sets SYNCWAIT and SYNC_FLOOR)");
        return;
    }
    let procs: usize = env("PROCS").parse().unwrap_or(200);
    let rounds: usize = env("ROUNDS").parse().unwrap_or(9);
    let name = format!("fs-bench-sync-{}", std::process::id());
    let mut workers = Workers(Vec::new(), name.clone());
    for _ in 0..procs {
        let child = Command::new(&syncwait)
            .arg(format!("/{name}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("syncwait starts");
        workers.0.push(child);
    }
    let pids: Vec<i32> = workers.0.iter().map(|c| c.id() as i32).collect();
    let mut scanner = Scanner::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = scanner.scan(&pids);
        let blocked = report
            .semaphores
            .iter()
            .map(|s| s.blocked.len())
            .sum::<usize>();
        let threads: usize = report.processes.iter().map(|p| p.threads.len()).sum();
        if blocked == procs && threads == 2 * procs {
            break;
        }
        assert!(Instant::now() < deadline, "workers never all blocked");
        std::thread::sleep(Duration::from_millis(100));
    }
    let per_proc = |d: Duration| d.as_secs_f64() * 1e6 / procs as f64;
    let (mut full, mut cheap, mut floor_us) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(scanner.scan(&pids));
        full.push(per_proc(t.elapsed()));
        let t = Instant::now();
        std::hint::black_box(scanner.scan_waits(&pids));
        cheap.push(per_proc(t.elapsed()));
        let out = Command::new(&floor)
            .arg("1")
            .args(pids.iter().map(i32::to_string))
            .output()
            .expect("floor runs");
        let us: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(f64::NAN);
        floor_us.push(us);
    }
    let (full, cheap, floor_us) = (median(full), median(cheap), median(floor_us));
    println!("processes={procs} threads={} rounds={rounds}", 2 * procs);
    println!("full scan (semaphores, channels, deadlocks): {full:.1} us/process");
    println!("cheap scan (waits only, WAITING ON column):  {cheap:.1} us/process");
    println!("C loop over the same /proc files:            {floor_us:.1} us/process");
    println!(
        "ratio full/C = {:.2}, cheap/C = {:.2}",
        full / floor_us,
        cheap / floor_us
    );
}
