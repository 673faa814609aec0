//! Readiness checks (`ready` in a pool, `docs/config.md`), each on a thread of its own so the
//! engine never waits on a connect, a file system or a command. A check is tried every
//! `interval` until it passes or its `timeout` passes; the outcome comes back through a
//! channel and a wake-up of the engine's poll loop.
//!
//! A command check runs `sh -c` in a process group of its own. It is a child of forkscope,
//! so the engine reaps it (and reports it like any process of the tree); its exit code
//! therefore comes back through a pipe, not from `wait`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::launch_rules::{Probe, ReadyCheck};
use super::pidfd::Pidfd;

/// Longest single TCP connect attempt.
const CONNECT_LIMIT: Duration = Duration::from_secs(1);

/// How one check ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub pool: String,
    /// Which check of the pool (a reload may have started a newer one).
    pub id: u64,
    pub ok: bool,
    pub after: Duration,
    /// The last failure, when `ok` is false.
    pub error: Option<String>,
}

/// The checks of a session: started by the engine, outcomes taken by the engine.
pub struct Checks {
    tx: Sender<Outcome>,
    rx: Receiver<Outcome>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Checks")
    }
}

impl Default for Checks {
    fn default() -> Self {
        Checks::new(Arc::new(|| {}))
    }
}

impl Checks {
    /// `wake` is called after each outcome is sent (the engine's waker).
    pub fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Checks {
        let (tx, rx) = unbounded();
        Checks { tx, rx, wake }
    }

    /// Starts checking; setting the returned flag abandons the check (no outcome then).
    pub fn start(&self, pool: String, id: u64, check: ReadyCheck) -> Arc<AtomicBool> {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let tx = self.tx.clone();
        let wake = self.wake.clone();
        let spawned = std::thread::Builder::new()
            .name("ready".into())
            .spawn(move || {
                if let Some(outcome) = run(pool, id, &check, &flag) {
                    let _ = tx.send(outcome);
                    wake();
                }
            });
        if let Err(err) = spawned {
            tracing::warn!("cannot start a readiness check thread: {err}");
        }
        cancel
    }

    /// The outcomes that came since the last call.
    pub fn take(&self) -> Vec<Outcome> {
        self.rx.try_iter().collect()
    }
}

/// Tries `check` until it passes, times out, or is cancelled (`None`).
fn run(pool: String, id: u64, check: &ReadyCheck, cancel: &AtomicBool) -> Option<Outcome> {
    let started = Instant::now();
    let deadline = started + check.timeout;
    let mut last_error;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match try_once(check, left) {
            Ok(()) => {
                return Some(Outcome {
                    pool,
                    id,
                    ok: true,
                    after: started.elapsed(),
                    error: None,
                });
            }
            Err(err) => last_error = err,
        }
        let now = Instant::now();
        if now < deadline {
            std::thread::sleep(check.interval.min(deadline - now));
        }
        // No attempt with no time left: the outcome keeps the last real failure.
        if Instant::now() >= deadline {
            return Some(Outcome {
                pool,
                id,
                ok: false,
                after: started.elapsed(),
                error: Some(last_error),
            });
        }
    }
}

/// One attempt, within `left`.
fn try_once(check: &ReadyCheck, left: Duration) -> Result<(), String> {
    match &check.probe {
        Probe::Tcp(addr) => {
            let limit = left.clamp(Duration::from_millis(10), CONNECT_LIMIT);
            std::net::TcpStream::connect_timeout(addr, limit)
                .map(drop)
                .map_err(|err| format!("connect {addr}: {err}"))
        }
        Probe::File(path) => {
            let path = check.dir.join(path);
            if path.exists() {
                Ok(())
            } else {
                Err(format!("{} does not exist", path.display()))
            }
        }
        Probe::Command(line) => run_command(line, check, left),
    }
}

/// `sh -c LINE` (output discarded) exits 0 within `left`.
fn run_command(line: &str, check: &ReadyCheck, left: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("( eval \"$1\" ) </dev/null >/dev/null 2>&1; echo $?")
        .arg("sh")
        .arg(line)
        .current_dir(&check.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|err| format!("cannot run sh: {err}"))?;
    let pid = child.id() as i32;
    // Unreaped until it exits, so this is that process (or it has already ended).
    let pidfd = Pidfd::open(pid).ok();
    let Some(mut out) = child.stdout.take() else {
        return Err("no pipe from sh".into());
    };
    // The engine reaps it: dropping the std Child neither waits nor kills.
    drop(child);
    let mut text = String::new();
    let fd = std::os::fd::AsFd::as_fd(&out);
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec::try_from(left).unwrap_or(rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    });
    let readable = matches!(rustix::event::poll(&mut fds, Some(&timeout)), Ok(n) if n > 0);
    if !readable {
        if let Some(pidfd) = pidfd {
            let _ = pidfd.send(libc::SIGKILL);
        }
        return Err(format!("command {line:?} did not finish in time"));
    }
    // One read: `echo` writes its short line at once (and a process that kept the pipe
    // open cannot hold this thread until end of file).
    let mut buf = [0u8; 64];
    let n = out.read(&mut buf).unwrap_or(0);
    text.push_str(&String::from_utf8_lossy(&buf[..n]));
    match text.trim() {
        "0" => Ok(()),
        "" => Err(format!("command {line:?} ended without a status")),
        code => Err(format!("command {line:?} exited {code}")),
    }
}
