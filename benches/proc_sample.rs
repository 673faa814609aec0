//! Cost of one `/proc` sample of a tree's processes: forkscope's own reader (what the engine's
//! sampler does for each pid it knows: `inspect::proc::read_stat`, one read of
//! `/proc/PID/stat`) against `sysinfo` refreshing the same pids with CPU and memory
//! (`refresh_processes_specifics(ProcessesToUpdate::Some(..))`), and the full scan of `/proc`
//! used when polling (`scan_all`) against `sysinfo` refreshing every process.
//!
//! The bench starts 200 `sleep` children and samples exactly those; it kills and reaps them at
//! the end (also on panic: a drop guard). Run: `cargo bench --bench proc_sample` (results in
//! docs/PERFORMANCE.md, "/proc sampling").

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use forkscope::inspect::proc;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

const CHILDREN: usize = 200;

/// The `sleep` children; killed and reaped on drop.
struct Sleepers(Vec<Child>);

impl Sleepers {
    fn start(count: usize) -> Sleepers {
        let mut sleepers = Sleepers(Vec::with_capacity(count));
        for _ in 0..count {
            let child = Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn sleep");
            sleepers.0.push(child);
        }
        sleepers
    }

    fn pids(&self) -> Vec<i32> {
        self.0
            .iter()
            .map(|child| i32::try_from(child.id()).expect("pid fits i32"))
            .collect()
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sample_cost(c: &mut Criterion) {
    let sleepers = Sleepers::start(CHILDREN);
    let pids = sleepers.pids();
    let sysinfo_pids: Vec<Pid> = pids.iter().map(|pid| Pid::from(*pid as usize)).collect();
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();

    let mut group = c.benchmark_group(format!("sample {CHILDREN} pids"));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("forkscope read_stat", |b| {
        b.iter(|| {
            let read = pids
                .iter()
                .filter_map(|pid| proc::read_stat(*pid).ok())
                .count();
            assert_eq!(read, CHILDREN);
        })
    });
    let mut system = System::new();
    group.bench_function("sysinfo refresh Some(pids)", |b| {
        b.iter(|| {
            let updated = system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&sysinfo_pids),
                true,
                kind,
            );
            assert_eq!(updated, CHILDREN);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("scan all of /proc");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("forkscope scan_all", |b| {
        b.iter(|| proc::scan_all().expect("scan /proc").len())
    });
    let mut system = System::new();
    group.bench_function("sysinfo refresh All", |b| {
        b.iter(|| system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind))
    });
    group.finish();
    drop(sleepers);
}

criterion_group!(benches, sample_cost);
criterion_main!(benches);
