//! Shared helpers of the integration tests: run the real `forkscope` binary, collect its JSON
//! lines as they come, wait on conditions with deadlines, and check that nothing a test started
//! is left running.
//!
//! Every test gets a unique marker token that is put in the environment of forkscope (and so of
//! every worker and descendant). `/proc/*/environ` is then scanned for it: a process carrying the
//! marker after the test is a process the test leaked. Only processes carrying the marker are
//! ever signalled by the helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
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

/// How a test starts forkscope.
#[derive(Default)]
pub struct StartOptions {
    /// Read nothing from stdout until this receives a message or is dropped.
    pub gate: Option<std::sync::mpsc::Receiver<()>>,
    /// The soft open-files limit forkscope starts with.
    pub soft_nofile: Option<u64>,
    /// Extra environment variables for forkscope.
    pub env: Vec<(String, String)>,
}

#[derive(Default)]
struct Shared {
    events: Vec<Value>,
    /// Lines of stdout that were not JSON objects (there must be none).
    garbage: Vec<String>,
    eof: bool,
}

/// One running `forkscope` (the guardian is the process spawned here).
pub struct Forkscope {
    pub marker: String,
    child: Child,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
    exited: Option<std::process::ExitStatus>,
}

impl Forkscope {
    /// Starts `forkscope ARGS...` with stdout captured as events.
    pub fn start(marker: &str, args: &[&str]) -> Forkscope {
        Forkscope::start_with(marker, args, StartOptions::default())
    }

    /// Like `start`, but nothing is read from forkscope's stdout until `gate` receives a
    /// message (or is dropped): forkscope then meets a consumer that does not keep up.
    pub fn start_gated(
        marker: &str,
        args: &[&str],
        gate: Option<std::sync::mpsc::Receiver<()>>,
    ) -> Forkscope {
        Forkscope::start_with(
            marker,
            args,
            StartOptions {
                gate,
                ..StartOptions::default()
            },
        )
    }

    pub fn start_with(marker: &str, args: &[&str], options: StartOptions) -> Forkscope {
        let StartOptions {
            gate,
            soft_nofile,
            env,
        } = options;
        let mut command = Command::new(bin());
        command.envs(env);
        as_users_run(&mut command)
            .args(args)
            .env(MARKER_VAR, marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(soft) = soft_nofile {
            // SAFETY: only async-signal-safe calls (getrlimit, setrlimit) between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let mut limit = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
                    limit.rlim_cur = soft.min(limit.rlim_max);
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("start forkscope");
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                read_events(stdout, &shared)
            })
        };
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        Forkscope {
            marker: marker.to_string(),
            child,
            shared,
            reader: Some(reader),
            stderr: Some(stderr),
            exited: None,
        }
    }

    /// The pid of the process spawned here: the guardian.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Value> {
        self.shared.0.lock().expect("lock").events.clone()
    }

    /// Waits until `done(events)` holds; panics with the events seen after `timeout`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.shared;
        let mut shared = lock.lock().expect("lock");
        loop {
            if done(&shared.events) {
                return shared.events.clone();
            }
            let now = Instant::now();
            if now >= deadline || shared.eof {
                let tail = dump(&shared.events);
                drop(shared);
                panic!(
                    "[{}] timed out or stream ended waiting for {what}; events:\n{tail}",
                    self.marker
                );
            }
            let left = (deadline - now).min(Duration::from_millis(50));
            shared = cond.wait_timeout(shared, left).expect("wait").0;
        }
    }

    /// Waits for the first event matching `pred` and returns it.
    pub fn wait_event(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let events = self.wait_until(what, timeout, |events| events.iter().any(&pred));
        events
            .into_iter()
            .find(|e| pred(e))
            .expect("event just seen")
    }

    /// Waits for `n` events of `kind`.
    pub fn wait_kind(&self, kind_name: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let events = self.wait_until(&format!("{n} {kind_name} event(s)"), timeout, |events| {
            events.iter().filter(|e| kind(e) == kind_name).count() >= n
        });
        events
            .into_iter()
            .filter(|e| kind(e) == kind_name)
            .collect()
    }

    /// The engine's pid, from the `session` event.
    pub fn engine_pid(&self) -> i32 {
        let session = self.wait_event("the session event", secs(5.0), |e| kind(e) == "session");
        session["pid"].as_i64().expect("session pid") as i32
    }

    /// Sends a signal to the guardian (a process this test started).
    pub fn signal(&self, signo: i32) {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        let rc = unsafe { libc::kill(self.pid(), signo) };
        assert_eq!(rc, 0, "kill({}, {signo})", self.pid());
    }

    /// Waits for forkscope to exit and its stdout to close; returns (exit status, events).
    pub fn finish(&mut self, timeout: Duration) -> (std::process::ExitStatus, Vec<Value>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let tail = dump(&self.events());
                panic!(
                    "[{}] forkscope did not exit within {timeout:?}; events:\n{tail}",
                    self.marker
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.exited = Some(status);
        self.wait_eof(deadline.saturating_duration_since(Instant::now()) + secs(2.0));
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let shared = self.shared.0.lock().expect("lock");
        assert!(
            shared.garbage.is_empty(),
            "stdout lines that are not JSON objects: {:?}",
            shared.garbage.iter().take(3).collect::<Vec<_>>()
        );
        (status, shared.events.clone())
    }

    /// Waits until forkscope's stdout is closed (by whichever process held it).
    pub fn wait_eof(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.shared;
        let mut shared = lock.lock().expect("lock");
        while !shared.eof {
            let now = Instant::now();
            if now >= deadline {
                let tail = dump(&shared.events);
                drop(shared);
                panic!("[{}] stdout still open; events:\n{tail}", self.marker);
            }
            shared = cond
                .wait_timeout(shared, (deadline - now).min(Duration::from_millis(50)))
                .expect("wait")
                .0;
        }
    }

    /// What forkscope wrote on stderr (after `finish`).
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// `finish` plus the checks every test ends with: an exit code (not a signal), and
    /// nothing carrying the marker left running. Returns (exit code, events).
    pub fn finish_clean(&mut self, timeout: Duration) -> (i32, Vec<Value>) {
        let (status, events) = self.finish(timeout);
        assert_nothing_left(&self.marker);
        let code = status
            .code()
            .unwrap_or_else(|| panic!("forkscope killed by signal {:?}", status.signal()));
        assert!(
            !events.is_empty() && kind(events.last().expect("last")) == "end",
            "the last event must be `end`:\n{}",
            dump(&events)
        );
        (code, events)
    }
}

impl Drop for Forkscope {
    fn drop(&mut self) {
        if self.exited.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        kill_marked(&self.marker);
    }
}

fn read_events(stdout: impl Read, shared: &Arc<(Mutex<Shared>, Condvar)>) {
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let parsed: Option<Value> = serde_json::from_slice(&line).ok();
                let (lock, cond) = &**shared;
                let mut guard = lock.lock().expect("lock");
                match parsed {
                    Some(value) if value.is_object() => guard.events.push(value),
                    _ => guard
                        .garbage
                        .push(String::from_utf8_lossy(&line).chars().take(200).collect()),
                }
                cond.notify_all();
            }
        }
    }
    let (lock, cond) = &**shared;
    lock.lock().expect("lock").eof = true;
    cond.notify_all();
}

/// Seconds as a Duration.
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

/// Live processes (not zombies) whose environment or command line carries `marker`.
pub fn marked_processes(marker: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let needle = marker.as_bytes();
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let mut hit = false;
        for file in ["environ", "cmdline"] {
            if let Ok(bytes) = std::fs::read(format!("/proc/{pid}/{file}"))
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hit = true;
            }
        }
        if !hit {
            continue;
        }
        let Some(stat) = read_stat(pid) else { continue };
        if stat.state == 'Z' || stat.state == 'X' {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        found.push((pid, format!("{} [{}] {cmdline}", stat.comm, stat.state)));
    }
    found
}

/// Panics (after killing them) if processes carrying `marker` are still running 3 s from now.
pub fn assert_nothing_left(marker: &str) {
    let deadline = Instant::now() + secs(3.0);
    loop {
        let left = marked_processes(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            kill_marked(marker);
            panic!("[{marker}] processes left running: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills whatever carries the marker when dropped (for tests that start forkscope by hand).
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

/// The fields of `/proc/PID/stat` the tests look at (parsed here, independently of forkscope).
#[derive(Debug, Clone)]
pub struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub utime: u64,
    pub stime: u64,
}

pub fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
    })
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
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&child| read_stat(child).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// Whether `pid` is alive (exists and is not a zombie).
pub fn alive(pid: i32) -> bool {
    read_stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
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
