//! Shared-memory tests' helpers: a guard that removes the `/dev/shm` names a test creates
//! (also when it fails), a Python program driven through its stdin and stdout lines (no
//! sleeps) whose processes are checked for leaks at its end, and the `shm`/`inspect`
//! commands' JSON.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use super::procs::{LEAK_GRACE, report_leaks};
use super::{MARKER_VAR, as_users_run, forkscope_output, marker};

/// The deadline of every wait of the shared-memory tests.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Removes `/dev/shm/NAME` for every name on drop (also when the test fails).
#[derive(Default)]
pub struct ShmGuard(pub Vec<String>);

impl Drop for ShmGuard {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
        }
    }
}

/// A unique name for this test process and `tag`.
pub fn unique(tag: &str) -> String {
    format!("fstest_{}_{tag}", std::process::id())
}

/// A `python3 SCRIPT ARGS` child in its own process group, carrying a marker. Programs end
/// cleanly at the end of their stdin; on drop stdin is closed, then the group is killed if
/// still there, and nothing carrying the marker may be left.
pub struct Py {
    pub child: Child,
    pub marker: String,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Holds the script file (spawn needs an importable `__main__`).
    _dir: tempfile::TempDir,
}

impl Py {
    pub fn start(script: &str, args: &[&str]) -> Py {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("program.py");
        std::fs::write(&path, script).expect("script written");
        let marker = marker("py");
        let mut command = Command::new("python3");
        let mut child = as_users_run(&mut command)
            .arg(&path)
            .args(args)
            .env(MARKER_VAR, &marker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("python3 starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Py {
            stdin: child.stdin.take(),
            child,
            marker,
            lines: rx,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next stdout line starting with `prefix` (others are skipped), within the deadline.
    pub fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(e) => panic!("python never printed {prefix:?}: {e}"),
            }
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("python reads");
        stdin.flush().expect("flush");
    }

    /// Waits for a clean exit (status 0) within the deadline; then nothing of it may be left.
    pub fn finish(mut self) {
        self.stdin = None;
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "python failed: {status}");
                break;
            }
            assert!(Instant::now() < deadline, "python did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        wait_group_gone(self.pid());
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        // End of input asks the program to clean up and exit (its resource tracker then
        // unlinks what it created); only if it does not, kill the whole group.
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
        report_leaks(&self.marker, LEAK_GRACE);
    }
}

/// Waits (bounded) until no process is left in process group `pgid`.
pub fn wait_group_gone(pgid: i32) {
    let deadline = Instant::now() + DEADLINE;
    while group_alive(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!group_alive(pgid), "processes of group {pgid} left running");
}

fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// Runs `forkscope ARGS` to its end (bounded); returns (status code, stdout, stderr).
pub fn forkscope(args: &[&str]) -> (i32, String, String) {
    let out = forkscope_output(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `forkscope ARGS --json` parsed, asserting status 0.
pub fn forkscope_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = forkscope(&all);
    assert_eq!(code, 0, "forkscope {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON {e}: {out}"))
}

/// The `shm ls --pid PID --json` entry satisfying `pred`.
pub fn find_entry(
    pid: i32,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let list = forkscope_json(&["shm", "ls", "--pid", &pid.to_string()]);
    list.as_array()?.iter().find(|e| pred(e)).cloned()
}

/// `/dev/shm` names containing `needle`.
pub fn dev_shm_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(needle))
                .collect()
        })
        .unwrap_or_default()
}
