//! Cost of reading one Python process's stacks (a CPython sleeper with one thread):
//! - forkscope warm: `StackReader::read` with its spy cached (what the TUI does each second);
//! - forkscope cold: a new reader each time (what `inspect` does per process: find the
//!   interpreter, then read);
//! - peers: the `py-spy dump --pid PID` command (pauses the target while reading) and
//!   `py-spy dump --pid PID --nonblocking` (the same mode as forkscope), process start included.
//!
//! Run: `benches/pystack.sh` (installs py-spy with pip if missing; results in
//! docs/PERFORMANCE.md). The py-spy binary is taken from `$PY_SPY`; without it the peers are
//! skipped. The sleeper is killed at the end (also on panic: a drop guard).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use forkscope::inspect::pystack::StackReader;

struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real interpreter (not a version manager's shim).
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn start_sleeper() -> Sleeper {
    let child = Command::new(python())
        .args(["-c", "import time\ndef nap():\n    time.sleep(3600)\nnap()"])
        .stdin(Stdio::null())
        .spawn()
        .expect("python");
    let sleeper = Sleeper(child);
    let pid = sleeper.0.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reader = StackReader::new();
    while !reader.read(pid).is_ok_and(|t| {
        t.iter()
            .any(|t| t.frames.iter().any(|f| f.function == "nap"))
    }) {
        assert!(Instant::now() < deadline, "the sleeper's stack never read");
        std::thread::sleep(Duration::from_millis(20));
    }
    sleeper
}

fn stacks(c: &mut Criterion) {
    let sleeper = start_sleeper();
    let pid = sleeper.0.id() as i32;
    let mut group = c.benchmark_group("python_stack");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    let mut warm = StackReader::new();
    group.bench_function("forkscope_warm", |b| {
        b.iter(|| warm.read(pid).expect("read"))
    });
    group.bench_function("forkscope_cold", |b| {
        b.iter(|| StackReader::new().read(pid).expect("read"))
    });
    match std::env::var("PY_SPY") {
        Ok(py_spy) => {
            let pid = pid.to_string();
            for (name, extra) in [
                ("py_spy_dump", None),
                ("py_spy_dump_nonblocking", Some("--nonblocking")),
            ] {
                group.bench_function(name, |b| {
                    b.iter(|| {
                        let out = Command::new(&py_spy)
                            .args(["dump", "--pid", &pid])
                            .args(extra)
                            .output()
                            .expect("py-spy");
                        assert!(out.status.success(), "{out:?}");
                    })
                });
            }
        }
        Err(_) => eprintln!("PY_SPY not set: the py-spy dump peer is skipped"),
    }
    group.finish();
    drop(sleeper);
}

criterion_group!(benches, stacks);
criterion_main!(benches);
