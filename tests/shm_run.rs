//! `run --shm NAME:SIZE`: the segment exists before the workers start, its name reaches them
//! in FORKSCOPE_SHM_<NAME>, what they write is visible to `shm show`, and it is removed when
//! forkscope ends normally, on SIGTERM, and (by the guardian) when the engine is SIGKILLed.
//! Files of the same `forkscope-<pid>-` prefix that the session did not create are never
//! removed, and a `--shm` name that is taken is refused (exit 2) without touching it.

mod shm_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use shm_support::*;

/// Writes worker+1 at its index, prints the segment name, waits for the flag file.
const WORKER: &str = r#"
import os, sys, time
from multiprocessing import shared_memory, resource_tracker
name = os.environ["FORKSCOPE_SHM_COUNTS"]
shm = shared_memory.SharedMemory(name=name)
# Python < 3.13 would unlink a segment it merely attached to when the worker exits.
resource_tracker.unregister(shm._name, "shared_memory")
index = int(os.environ["FORKSCOPE_WORKER"])
shm.buf[index] = index + 1
print("wrote", name, shm.size, flush=True)
deadline = time.monotonic() + 30
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.01)
shm.close()
"#;

struct Session {
    child: Child,
    lines: Receiver<serde_json::Value>,
    _dir: tempfile::TempDir,
    flag: std::path::PathBuf,
    segment: String,
}

impl Session {
    fn start() -> Session {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("worker.py");
        std::fs::write(&script, WORKER).unwrap();
        let flag = dir.path().join("go");
        let mut child = Command::new(env!("CARGO_BIN_EXE_forkscope"))
            .args(["run", "--headless", "-n", "2", "--stop-timeout", "5"])
            .args(["--shm", "counts:4K", "--"])
            .arg("python3")
            .arg(&script)
            .arg(&flag)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let segment = format!("forkscope-{}-counts", child.id());
        Session {
            child,
            lines: rx,
            _dir: dir,
            flag,
            segment,
        }
    }

    /// Waits until both workers printed `wrote NAME SIZE`; returns their pids.
    fn wait_written(&self) -> Vec<i64> {
        let deadline = Instant::now() + DEADLINE;
        let mut pids = Vec::new();
        while pids.len() < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.lines.recv_timeout(left).expect("workers write");
            if event["kind"] == "output" {
                let line = event["line"].as_str().unwrap_or("");
                if line.starts_with("wrote") {
                    assert_eq!(line, format!("wrote {} 4096", self.segment));
                    pids.push(event["pid"].as_i64().unwrap());
                }
            }
        }
        pids
    }

    /// A file named like the session's segments that the session did not create; the guard
    /// removes it at the end of the test.
    fn foreign_file(&self) -> (String, ShmGuard) {
        let name = format!("forkscope-{}-not_created_by_it", self.child.id());
        std::fs::write(format!("/dev/shm/{name}"), b"someone else's").unwrap();
        (name.clone(), ShmGuard(vec![name]))
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "forkscope did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.flag, b"");
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: our own child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.wait_exit();
        }
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.segment));
    }
}

fn gone(pid: i64) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

#[test]
fn segment_lives_for_the_session() {
    let mut session = Session::start();
    let workers = session.wait_written();
    let (foreign, _guard) = session.foreign_file();
    let shown = forkscope_json(&["shm", "show", &session.segment, "--as", "u8"]);
    assert_eq!(shown["size"], 4096);
    assert_eq!(shown["kind"], "posix");
    assert_eq!(shown["values"].as_array().unwrap()[..3], [1, 2, 0]);
    let entry = find_entry(session.child.id() as i32, |e| {
        e["name"] == session.segment.as_str()
    })
    .expect("listed under forkscope's tree");
    for w in &workers {
        assert!(
            entry["pids"].as_array().unwrap().contains(&(*w).into()),
            "{entry}"
        );
    }
    std::fs::write(&session.flag, b"").unwrap();
    assert!(session.wait_exit().success());
    assert!(
        dev_shm_with(&session.segment).is_empty(),
        "removed at the end"
    );
    assert_eq!(
        dev_shm_with(&foreign),
        std::slice::from_ref(&foreign),
        "not ours: kept"
    );
}

#[test]
fn removed_on_sigterm() {
    let mut session = Session::start();
    let workers = session.wait_written();
    // SAFETY: our own child.
    unsafe { libc::kill(session.child.id() as i32, libc::SIGTERM) };
    session.wait_exit();
    assert!(
        dev_shm_with(&session.segment).is_empty(),
        "removed after SIGTERM"
    );
    wait_until("workers gone", || workers.iter().all(|w| gone(*w)));
}

#[test]
fn guardian_removes_it_when_the_engine_is_killed() {
    let mut session = Session::start();
    let workers = session.wait_written();
    let (foreign, _guard) = session.foreign_file();
    let guardian = session.child.id() as i32;
    // The engine: the child of the guardian's child (the watchdog).
    let procs = forkscope::inspect::proc::scan_all().unwrap();
    let child_of = |parent: i32| {
        procs
            .values()
            .find(|s| s.ppid == parent && s.comm.starts_with("forkscope"))
            .map(|s| s.pid)
    };
    let engine = child_of(guardian).and_then(child_of).expect("engine found");
    // SAFETY: a process this test started (through forkscope).
    unsafe { libc::kill(engine, libc::SIGKILL) };
    session.wait_exit();
    assert!(
        dev_shm_with(&session.segment).is_empty(),
        "guardian removed it"
    );
    assert_eq!(
        dev_shm_with(&foreign),
        std::slice::from_ref(&foreign),
        "not ours: kept"
    );
    wait_until("workers gone", || workers.iter().all(|w| gone(*w)));
}

#[test]
fn a_taken_name_is_refused_and_kept() {
    // The shell's pid is forkscope's after `exec`: the name the session would create.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"printf keep > "/dev/shm/forkscope-$$-taken"; echo $$ >&2; exec "$0" run --headless --shm taken:4K -- true"#)
        .arg(env!("CARGO_BIN_EXE_forkscope"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid = stderr.lines().next().unwrap_or("").trim().to_string();
    let name = format!("forkscope-{pid}-taken");
    let _guard = ShmGuard(vec![name.clone()]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(format!("/dev/shm/{name}")).unwrap(), b"keep");
    assert!(out.stdout.is_empty(), "nothing started");
}

#[test]
fn bad_shm_flag_exits_2() {
    let (code, _, err) = forkscope(&["run", "--shm", "bad/name:10", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = forkscope(&["run", "--shm", "x:0", "--", "true"]);
    assert_eq!(code, 2);
}
