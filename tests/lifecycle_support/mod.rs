//! Shared helpers of the lifecycle tests: run `forkscope run --headless` on a real program
//! with a time limit, parse its JSON lines, and check that nothing it reported is left
//! running.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The real Python interpreter (not a version-manager shim that forks a dozen helpers).
pub fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 must be installed for the lifecycle tests");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One headless run.
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

    /// Checks that every process the run reported is gone (its pid is free or reused).
    pub fn assert_nothing_left(&self) {
        for (pid, start) in self.births() {
            let Some(start) = start else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            let fields: Vec<&str> = after.split_whitespace().collect();
            let still = fields.get(19).and_then(|f| f.parse::<u64>().ok()) == Some(start);
            assert!(!still, "process {pid} (start {start}) is still running");
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

/// `forkscope ARGS` (a headless session) with a time limit, its events parsed.
fn run_forkscope(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forkscope"));
    for (name, _) in std::env::vars_os() {
        // As users run: no PYTHONUNBUFFERED and the like (see tests/common).
        if name.to_str().is_some_and(|n| n.starts_with("PYTHON")) {
            command.env_remove(name);
        }
    }
    let mut child = command
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start forkscope");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            // SIGTERM lets the guardian stop the whole tree; then wait for it.
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().expect("wait");
            panic!("forkscope did not finish within {limit:?} ({status:?})");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let events = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line}: {e}")))
        .collect();
    Run {
        status: status.code().unwrap_or(-1),
        events,
        stderr,
    }
}

/// Whether `--track kernel` works here (else the kernel variants are skipped, loudly).
pub fn kernel_available() -> bool {
    let run = run("kernel", &[], &["true"], Duration::from_secs(30));
    if run.status == 2 {
        eprintln!(
            "kernel process events unavailable here: {}",
            run.stderr.trim()
        );
        return false;
    }
    true
}

/// Whether `--track ptrace` works here (ptrace can be forbidden, e.g. Yama scope 3).
pub fn ptrace_available() -> bool {
    let run = run("ptrace", &[], &["true"], Duration::from_secs(30));
    if run.status != 0 {
        eprintln!("ptrace unavailable here: {}", run.stderr.trim());
        return false;
    }
    true
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
    use std::collections::HashMap;
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
