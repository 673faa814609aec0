//! `run --shm NAME:SIZE`: the segment exists before the workers start, its name reaches them
//! in FORKSCOPE_SHM_<NAME>, what they write is visible to `shm show`, and it is removed when
//! forkscope ends normally, on SIGTERM, and (by the guardian) when the engine is SIGKILLed.
//! Files of the same `forkscope-<pid>-` prefix that the session did not create are never
//! removed, and a `--shm` name that is taken is refused (exit 2) without touching it.

mod common;

use std::process::Command;

use common::shm::*;
use common::{Forkscope, alive, command_output, kind, marker, secs, wait_for};

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
    fs: Forkscope,
    flag: std::path::PathBuf,
    segment: String,
    /// Removes the segment if the session did not (the test then fails on its own check).
    _segment_guard: ShmGuard,
    _dir: tempfile::TempDir,
}

impl Session {
    fn start() -> Session {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("worker.py");
        std::fs::write(&script, WORKER).unwrap();
        let flag = dir.path().join("go");
        let fs = Forkscope::start(
            &marker("shmrun"),
            &[
                "run",
                "--headless",
                "-n",
                "2",
                "--stop-timeout",
                "5",
                "--shm",
                "counts:4K",
                "--",
                "python3",
                script.to_str().unwrap(),
                flag.to_str().unwrap(),
            ],
        );
        let segment = format!("forkscope-{}-counts", fs.pid());
        Session {
            fs,
            flag,
            _segment_guard: ShmGuard(vec![segment.clone()]),
            segment,
            _dir: dir,
        }
    }

    fn pid(&self) -> i32 {
        self.fs.pid()
    }

    /// Waits until both workers printed `wrote NAME SIZE`; returns their pids.
    fn wait_written(&self) -> Vec<i64> {
        let wrote = |e: &serde_json::Value| {
            kind(e) == "output" && e["line"].as_str().unwrap_or("").starts_with("wrote")
        };
        let events = self
            .fs
            .wait_until("both workers to write", DEADLINE, |events| {
                events.iter().filter(|e| wrote(e)).count() >= 2
            });
        events
            .iter()
            .filter(|e| wrote(e))
            .map(|e| {
                assert_eq!(e["line"], format!("wrote {} 4096", self.segment));
                e["pid"].as_i64().unwrap()
            })
            .collect()
    }

    /// A file named like the session's segments that the session did not create; the guard
    /// removes it at the end of the test.
    fn foreign_file(&self) -> (String, ShmGuard) {
        let name = format!("forkscope-{}-not_created_by_it", self.pid());
        std::fs::write(format!("/dev/shm/{name}"), b"someone else's").unwrap();
        (name.clone(), ShmGuard(vec![name]))
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.fs.finish(DEADLINE).0
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.flag, b"");
    }
}

fn gone(pid: i64) -> bool {
    !alive(pid as i32)
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
    let entry = find_entry(session.pid(), |e| e["name"] == session.segment.as_str())
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
    session.fs.signal(libc::SIGTERM);
    session.wait_exit();
    assert!(
        dev_shm_with(&session.segment).is_empty(),
        "removed after SIGTERM"
    );
    wait_for("workers gone", DEADLINE, || {
        workers.iter().all(|w| gone(*w))
    });
}

#[test]
fn guardian_removes_it_when_the_engine_is_killed() {
    let mut session = Session::start();
    let workers = session.wait_written();
    let (foreign, _guard) = session.foreign_file();
    let engine = session.fs.engine_pid();
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
    wait_for("workers gone", DEADLINE, || {
        workers.iter().all(|w| gone(*w))
    });
}

#[test]
fn a_taken_name_is_refused_and_kept() {
    // The shell's pid is forkscope's after `exec`: the name the session would create.
    let out = command_output(
        Command::new("sh")
            .arg("-c")
            .arg(r#"printf keep > "/dev/shm/forkscope-$$-taken"; echo $$ >&2; exec "$0" run --headless --shm taken:4K -- true"#)
            .arg(env!("CARGO_BIN_EXE_forkscope")),
        secs(60.0),
    );
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
