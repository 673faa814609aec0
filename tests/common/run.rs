//! Whole headless runs (`forkscope run --headless ...` to its end, within a limit) for the tests
//! that look at a finished session, the process-event sources that work on this machine
//! (probed once per test binary), and the checks these tests share.

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::procs::{assert_nothing_left, still_running};
use super::{Forkscope, StartOptions, marker};

/// The real Python interpreter (not a version-manager shim that forks a dozen helpers),
/// asked once per test binary.
pub fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = Command::new("python3")
                .args(["-c", "import sys; print(sys.executable)"])
                .output()
                .expect("python3 must be installed for these tests");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .clone()
}

/// One finished headless run.
pub struct Run {
    pub status: i32,
    pub events: Vec<Value>,
    pub stderr: String,
}

impl Run {
    pub fn kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["kind"] == kind)
    }

    pub fn session(&self) -> &Value {
        self.kind("session").next().expect("no session event")
    }

    /// The pid of worker 0.
    pub fn worker_pid(&self) -> i64 {
        self.kind("spawn").next().expect("no spawn")["pid"]
            .as_i64()
            .expect("spawn pid")
    }

    /// Lines the workers printed on stdout.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.kind("output")
            .filter(|e| e["stream"] == "stdout")
            .map(|e| e["line"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Exit events for `pid`.
    pub fn exits_of(&self, pid: i64) -> Vec<&Value> {
        self.kind("exit").filter(|e| e["pid"] == pid).collect()
    }

    /// Every process born in the run (spawn and fork), as (pid, start_time).
    pub fn births(&self) -> Vec<(i64, Option<u64>)> {
        self.events
            .iter()
            .filter(|e| e["kind"] == "fork" || e["kind"] == "spawn")
            .map(|e| (e["pid"].as_i64().unwrap_or(0), e["start_time"].as_u64()))
            .collect()
    }

    /// Checks that every process the run reported is gone (its pid is free or reused), also
    /// those that dropped the marker from their environment. (Every run already checked
    /// that nothing carrying its marker is left.)
    pub fn assert_nothing_left(&self) {
        for (pid, start) in self.births() {
            let Some(start) = start else { continue };
            assert!(
                !still_running(pid as i32, start),
                "process {pid} (start {start}) is still running"
            );
        }
    }
}

/// Runs `forkscope run --headless --track TRACK EXTRA -- ARGV` with a time limit.
pub fn run(track: &str, extra: &[&str], argv: &[&str], limit: Duration) -> Run {
    run_env(track, extra, argv, &[], limit)
}

/// [`run`] with extra environment variables for forkscope.
pub fn run_env(
    track: &str,
    extra: &[&str],
    argv: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Run {
    let mut args = vec!["run", "--headless", "--track", track];
    args.extend(extra);
    args.push("--");
    args.extend(argv);
    run_forkscope(&args, env, limit)
}

/// `forkscope demo NAME --headless --track TRACK EXTRA` with a time limit.
pub fn run_demo(track: &str, name: &str, extra: &[&str], limit: Duration) -> Run {
    let mut args = vec!["demo", name, "--headless", "--track", track];
    args.extend(extra);
    run_forkscope(&args, &[], limit)
}

/// `forkscope ARGS` (a headless session) to its end within `limit`, as a [`Forkscope`]: on
/// a timeout the panic lists what still runs, and after the end nothing carrying the run's
/// marker may be left.
pub fn run_forkscope(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let m = marker("run");
    let mut fs = Forkscope::start_with(
        &m,
        args,
        StartOptions {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..StartOptions::default()
        },
    );
    let (status, events) = fs.finish(limit);
    let stderr = fs.stderr();
    assert_nothing_left(&m);
    Run {
        status: status.code().unwrap_or(-1),
        events,
        stderr,
    }
}

/// Whether `--track kernel` works here (else the kernel variants are skipped, loudly);
/// probed once per test binary.
pub fn kernel_available() -> bool {
    static KERNEL: OnceLock<bool> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        let run = run("kernel", &[], &["true"], Duration::from_secs(30));
        if run.status == 2 {
            eprintln!(
                "kernel process events unavailable here: {}",
                run.stderr.trim()
            );
            return false;
        }
        true
    })
}

/// Whether `--track ptrace` works here (ptrace can be forbidden, e.g. Yama scope 3);
/// probed once per test binary.
pub fn ptrace_available() -> bool {
    static PTRACE: OnceLock<bool> = OnceLock::new();
    *PTRACE.get_or_init(|| {
        let run = run("ptrace", &[], &["true"], Duration::from_secs(30));
        if run.status != 0 {
            eprintln!("ptrace unavailable here: {}", run.stderr.trim());
            return false;
        }
        true
    })
}

/// Every source that works here: kernel and ptrace (when available) and poll.
pub fn every_source() -> Vec<&'static str> {
    let mut tracks: Vec<&str> = tracks().into_iter().filter(|t| *t != "auto").collect();
    tracks.push("poll");
    tracks
}

/// The sources to test: kernel and ptrace (when available) and auto.
pub fn tracks() -> Vec<&'static str> {
    let mut tracks = Vec::new();
    if kernel_available() {
        tracks.push("kernel");
    }
    if ptrace_available() {
        tracks.push("ptrace");
    }
    tracks.push("auto");
    tracks
}

/// Whether the session's source reports every descendant exactly.
pub fn exact(run: &Run) -> bool {
    let track = &run.session()["track"];
    track == "kernel" || track == "ptrace"
}

/// Every fork in the run has exactly one exit, and no process exits twice.
pub fn assert_every_fork_has_one_exit(run: &Run) {
    let mut open: HashMap<i64, usize> = HashMap::new();
    for event in &run.events {
        let pid = event["pid"].as_i64().unwrap_or(0);
        match event["kind"].as_str() {
            Some("fork") | Some("spawn") => {
                let count = open.entry(pid).or_default();
                assert_eq!(*count, 0, "pid {pid} born twice without an exit between");
                *count += 1;
            }
            Some("exit") => {
                let count = open.entry(pid).or_default();
                assert_eq!(
                    *count, 1,
                    "exit of pid {pid} without a birth (or a second exit)"
                );
                *count -= 1;
            }
            _ => {}
        }
    }
    let left: Vec<i64> = open
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(p, _)| p)
        .collect();
    assert!(left.is_empty(), "born but never ended: {left:?}");
}

/// The first line a child writes on its stdout (taken from it), waiting at most `timeout`.
pub fn first_line(child: &mut std::process::Child, timeout: Duration) -> Option<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
    });
    rx.recv_timeout(timeout).ok()
}
