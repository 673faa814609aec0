//! One headless forkscope session under test: started as users run it (carrying the test's
//! marker), its stdout read as JSON events as they come, waited on with bounded deadlines, and
//! checked for leaks on every way out: on a timeout the panic names the marked processes still
//! running, and at drop every process carrying the marker must be gone (the survivors are
//! reported and killed, and only they).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::procs::{LEAK_GRACE, assert_nothing_left, marked_processes, report_leaks};
use super::{MARKER_VAR, as_users_run, bin, dump, kind, secs};

/// How a test starts forkscope.
#[derive(Default)]
pub struct StartOptions {
    /// Read nothing from stdout until this receives a message or is dropped.
    pub gate: Option<std::sync::mpsc::Receiver<()>>,
    /// The soft open-files limit forkscope starts with.
    pub soft_nofile: Option<u64>,
    /// Extra environment (`XDG_RUNTIME_DIR` for a private control-socket directory).
    pub env: Vec<(String, String)>,
    /// Count `output` events instead of keeping them (floods that would fill the test's
    /// memory); [`Forkscope::output_count`] says how many came.
    pub count_output: bool,
    /// Start forkscope in a process group of its own (as a shell job), so a test can signal
    /// the whole group without signalling itself.
    pub own_group: bool,
}

#[derive(Default)]
struct Shared {
    events: Vec<Value>,
    /// Lines of stdout that were not JSON objects (there must be none).
    garbage: Vec<String>,
    eof: bool,
    /// `output` events counted, not kept (`StartOptions::count_output`).
    output_count: usize,
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
            count_output,
            own_group,
        } = options;
        let mut command = Command::new(bin());
        as_users_run(&mut command)
            .args(args)
            .envs(env)
            .env(MARKER_VAR, marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if own_group {
            command.process_group(0);
        }
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
                read_events(stdout, &shared, count_output)
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

    /// The processes carrying the marker now, for failure messages.
    pub fn running(&self) -> String {
        let left = marked_processes(&self.marker);
        if left.is_empty() {
            "no process of the test is running".to_string()
        } else {
            format!("processes of the test still running: {left:?}")
        }
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
                    "[{}] timed out or stream ended waiting for {what}; events:\n{tail}\n{}",
                    self.marker,
                    self.running()
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

    /// How many `output` events were counted (with `StartOptions::count_output`).
    pub fn output_count(&self) -> usize {
        self.shared.0.lock().expect("lock").output_count
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
                    "[{}] forkscope did not exit within {timeout:?}; events:\n{tail}\n{}",
                    self.marker,
                    self.running()
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
                panic!(
                    "[{}] stdout still open; events:\n{tail}\n{}",
                    self.marker,
                    self.running()
                );
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
    /// Ends the session if the test did not (SIGKILL of the guardian: its watchdog and engine
    /// then stop the tree), then requires every marked process to be gone within
    /// [`LEAK_GRACE`]: survivors are killed and reported (a panic unless already panicking).
    fn drop(&mut self) {
        if self.exited.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        report_leaks(&self.marker, LEAK_GRACE);
    }
}

fn read_events(stdout: impl Read, shared: &Arc<(Mutex<Shared>, Condvar)>, count_output: bool) {
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let mut line = Vec::new();
    let output = b"\"kind\":\"output\"";
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_)
                if count_output
                    && line[..line.len().min(64)]
                        .windows(output.len())
                        .any(|w| w == output) =>
            {
                shared.0.lock().expect("lock").output_count += 1;
            }
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
