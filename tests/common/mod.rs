//! The one harness of the integration tests: run the real `forkscope` binary as users run
//! it (a headless session whose JSON lines are read as they come: `session`; a whole run to
//! its end: `run`; TUI in tmux: `tui`; one-shot commands: [`forkscope_output`]), wait on
//! events with bounded deadlines, and check that nothing a test started is left running on
//! every way out (`procs`). Shared memory (`shm`), the control socket (`socket`) and memory
//! watching (`memory`) have their own modules, as have log files and metrics scrapes (`obs`).
//!
//! Every test gets a unique marker token that is put in the environment of forkscope (and so
//! of every worker and descendant). `/proc/*/environ` is then scanned for it: a process
//! carrying the marker after the test is a process the test leaked. Only processes carrying
//! the marker are ever signalled by the helpers.

#![allow(dead_code, unused_imports)]

mod memory;
pub mod obs;
mod procs;
mod run;
mod session;
pub mod shm;
pub mod socket;
pub mod tui;

pub use memory::MemoryWatch;
pub use procs::{
    Cleanup, LEAK_GRACE, Stat, alive, assert_nothing_left, children_of, engine_of, kill_marked,
    marked_processes, read_stat, report_leaks, status_kb, still_running, survivors,
};
pub use run::{
    Run, assert_every_fork_has_one_exit, every_source, exact, first_line, kernel_available,
    ptrace_available, python, run, run_demo, run_env, run_forkscope, tracks,
};
pub use session::{Forkscope, StartOptions};

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The environment variable that carries the marker.
pub const MARKER_VAR: &str = "FKS_TEST_MARKER";

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_forkscope")
}

/// A token unique to this test (name, test process, counter, time).
pub fn marker(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("fkstest_{name}_{}_{n}_{nanos}", std::process::id())
}

/// Writes an executable `#!/bin/sh` script into `dir` and returns its path.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Whether a variable of the machine running the tests would hide what users meet: this
/// machine exports `PYTHONUNBUFFERED=1` (Python output looks live without forkscope's help)
/// and `PYTHONDONTWRITEBYTECODE=1`; users' machines set no `PYTHON*` variable by default.
pub fn hides_user_behaviour(name: &str) -> bool {
    name.starts_with("PYTHON")
}

/// Removes from `command`'s environment every variable that [`hides_user_behaviour`], so
/// forkscope (and every worker) runs as on a user's machine.
pub fn as_users_run(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(hides_user_behaviour) {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `forkscope ARGS` (a one-shot command: `ctl`, `shm ls`, `replay`, a bad flag) as users
/// run it, to its end within 60 s; see [`command_output`].
pub fn forkscope_output(args: &[&str]) -> Output {
    let mut command = Command::new(bin());
    as_users_run(&mut command).args(args).stdin(Stdio::null());
    command_output(&mut command, secs(60.0))
}

/// `command.output()` bounded by `timeout` (then the command is killed and the test fails).
/// The command carries a marker (a fresh one unless it set [`MARKER_VAR`]): nothing carrying
/// it may be left at the end. Stdin is as the command set it (inherited by default).
pub fn command_output(command: &mut Command, timeout: Duration) -> Output {
    let set = command
        .get_envs()
        .find(|(name, _)| *name == MARKER_VAR)
        .and_then(|(_, value)| value.and_then(|v| v.to_str()).map(str::to_string));
    let m = set.unwrap_or_else(|| marker("cmd"));
    let mut child = command
        .env(MARKER_VAR, &m)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    let readers = [
        child.stdout.take().map(drain),
        child.stderr.take().map(drain),
    ];
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            kill_marked(&m);
            panic!("{command:?} did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let [stdout, stderr] = readers.map(|r| r.and_then(|h| h.join().ok()).unwrap_or_default());
    report_leaks(&m, LEAK_GRACE);
    Output {
        status,
        stdout,
        stderr,
    }
}

fn drain(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}

/// Seconds as a Duration.
/// Writes `forkscope.toml` in `dir` aside and renames it: a reload never reads half a file.
pub fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("forkscope.toml");
    let tmp = dir.join("forkscope.toml.tmp");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, &path).expect("rename config");
    path.to_string_lossy().into_owned()
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The `kind` of an event.
pub fn kind(event: &Value) -> &str {
    event["kind"].as_str().unwrap_or("")
}

/// The events of one kind, in order.
pub fn of_kind<'a>(events: &'a [Value], kind_name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| kind(e) == kind_name).collect()
}

/// The `pid` field as i32.
pub fn pid_of(event: &Value) -> i32 {
    event["pid"].as_i64().unwrap_or(-1) as i32
}

/// The exit event of `pid`.
pub fn exit_of(events: &[Value], pid: i32) -> Option<Value> {
    events
        .iter()
        .find(|e| kind(e) == "exit" && pid_of(e) == pid)
        .cloned()
}

/// The output events of `pid` on `stream`, in order.
pub fn output_of<'a>(events: &'a [Value], pid: i32, stream: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| kind(e) == "output" && pid_of(e) == pid && e["stream"] == stream)
        .collect()
}

/// The text lines of `pid` on `stream`.
pub fn lines_of(events: &[Value], pid: i32, stream: &str) -> Vec<String> {
    output_of(events, pid, stream)
        .iter()
        .map(|e| e["line"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The pids of the `spawn` events, in order.
pub fn spawned_pids(events: &[Value]) -> Vec<i32> {
    of_kind(events, "spawn").into_iter().map(pid_of).collect()
}

/// The last 60 events, one per line, long lines shortened (for failure messages).
pub fn dump(events: &[Value]) -> String {
    let start = events.len().saturating_sub(60);
    events[start..]
        .iter()
        .map(|e| {
            let text = e.to_string();
            if text.len() > 300 {
                format!("{}...", text.chars().take(300).collect::<String>())
            } else {
                text
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `cond` holds, polling every 5 ms; panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs forkscope with a fresh marker named `name` until it ends (within `timeout`), checks
/// that it ended with `end` and left nothing running; returns (exit code, events).
pub fn run_clean(name: &str, args: &[&str], timeout: Duration) -> (i32, Vec<Value>) {
    let m = marker(name);
    Forkscope::start(&m, args).finish_clean(timeout)
}
