//! Python stacks read from outside (py-spy as a library) on real, unmodified programs under the
//! fork and spawn start methods: `forkscope inspect PID --json` shows each thread's
//! `python_stack` and names the process's `python_wait`; a non-Python process and a process
//! that vanishes mid-read give errors, never a panic.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::python;
use common::{Cleanup, MARKER_VAR, marker};
use forkscope::inspect::pystack::StackReader;
use forkscope::model::pystack::StackError;
use serde_json::Value;

/// Two barrier waiters, a sleeper (the missing party) and a queue consumer.
const PROGRAM: &str = r#"
import multiprocessing as mp, signal, sys, time

def waiter(barrier):
    barrier.wait()  # LINE:waiter

def sleeper():
    time.sleep(600)  # LINE:sleeper

def consumer(queue):
    queue.get()  # LINE:consumer

if __name__ == "__main__":
    # SIGTERM ends the program normally: the daemonic children are terminated and the
    # semaphores it created are unlinked (a SIGKILL would leave them in /dev/shm).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    mp.set_start_method(sys.argv[1])
    barrier = mp.Barrier(3)
    queue = mp.Queue()
    children = [mp.Process(target=waiter, args=(barrier,), daemon=True),
                mp.Process(target=waiter, args=(barrier,), daemon=True),
                mp.Process(target=sleeper, daemon=True),
                mp.Process(target=consumer, args=(queue,), daemon=True)]
    for child in children:
        child.start()
    print(" ".join(str(c.pid) for c in children), flush=True)
    time.sleep(600)  # LINE:main
"#;

/// The line number of the line tagged `# LINE:tag` in [`PROGRAM`].
fn line_of(tag: &str) -> usize {
    let needle = format!("# LINE:{tag}");
    PROGRAM
        .lines()
        .position(|l| l.contains(&needle))
        .map(|index| index + 1)
        .unwrap_or_else(|| panic!("no {needle}"))
}

/// Starts the program; returns it with the pids of its four children (in order).
fn start(dir: &std::path::Path, method: &str, marker: &str) -> (Child, Vec<i64>) {
    let script = dir.join("prog.py");
    std::fs::write(&script, PROGRAM).expect("write");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(method)
        .env(MARKER_VAR, marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    let ready = common::first_line(&mut child, Duration::from_secs(60))
        .expect("the program never said its children");
    let pids: Vec<i64> = ready
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(pids.len(), 4, "program said {ready:?}");
    (child, pids)
}

fn inspect(pid: i64) -> Value {
    let out = common::forkscope_output(&["inspect", &pid.to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("json")
}

fn process(snapshot: &Value, pid: i64) -> Option<&Value> {
    snapshot["processes"]
        .as_array()?
        .iter()
        .find(|p| p["pid"].as_i64() == Some(pid))
}

/// `(function, file name, line)` of each frame of the process's main thread, innermost first.
fn main_stack(entry: &Value) -> Vec<(String, String, i64)> {
    let pid = entry["pid"].as_i64();
    let threads = entry["python_threads"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(main) = threads.iter().find(|t| t["tid"].as_i64() == pid) else {
        return Vec::new();
    };
    main["python_stack"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .map(|f| {
                    let file = f["file"].as_str().unwrap_or_default();
                    (
                        f["function"].as_str().unwrap_or_default().to_string(),
                        file.rsplit('/').next().unwrap_or_default().to_string(),
                        f["line"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `inspect` until every child's wait is named as expected (60 s: spawn children import
/// the program and the machine is shared), then checks the frames.
fn stacks_are_read(method: &str) {
    let m = marker(&format!("pystack_{method}"));
    let _cleanup = Cleanup(m.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, pids) = start(dir.path(), method, &m);
    let root = i64::from(child.id());
    let expected = [
        (
            pids[0],
            format!("Barrier.wait at prog.py:{}", line_of("waiter")),
        ),
        (
            pids[1],
            format!("Barrier.wait at prog.py:{}", line_of("waiter")),
        ),
        (
            pids[2],
            format!("time.sleep at prog.py:{}", line_of("sleeper")),
        ),
        (
            pids[3],
            format!("Queue.get at prog.py:{}", line_of("consumer")),
        ),
        (root, format!("time.sleep at prog.py:{}", line_of("main"))),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let snapshot = loop {
        let snapshot = inspect(root);
        let named = |(pid, wait): &(i64, String)| {
            process(&snapshot, *pid).is_some_and(|p| p["python_wait"].as_str() == Some(wait))
        };
        if expected.iter().all(named) {
            break snapshot;
        }
        assert!(
            Instant::now() < deadline,
            "waits never named as {expected:?}: {snapshot:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for waiter in &pids[..2] {
        let stack = main_stack(process(&snapshot, *waiter).expect("waiter"));
        let functions: Vec<&str> = stack.iter().map(|(f, _, _)| f.as_str()).collect();
        let position = |name: &str| functions.iter().position(|f| *f == name);
        let (Some(cond), Some(barrier), Some(user)) = (
            position("Condition.wait"),
            position("Barrier.wait"),
            position("waiter"),
        ) else {
            panic!("waiter frames missing: {stack:?}");
        };
        assert!(
            cond < barrier && barrier < user,
            "innermost first: {stack:?}"
        );
        assert_eq!(stack[user].1, "prog.py");
        assert_eq!(stack[user].2, line_of("waiter") as i64);
    }
    let sleeper = main_stack(process(&snapshot, pids[2]).expect("sleeper"));
    assert_eq!(
        sleeper.first(),
        Some(&(
            "sleeper".to_string(),
            "prog.py".to_string(),
            line_of("sleeper") as i64
        )),
        "{sleeper:?}"
    );
    let consumer = main_stack(process(&snapshot, pids[3]).expect("consumer"));
    assert!(
        consumer
            .iter()
            .any(|(f, file, _)| f == "Queue.get" && file == "queues.py"),
        "{consumer:?}"
    );
    end_program(&mut child);
}

/// SIGTERM, which the program turns into a normal exit that unlinks its semaphores; SIGKILL
/// if it has not ended within 20 s.
fn end_program(child: &mut Child) {
    // SAFETY: kill(2) of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn stacks_of_fork_children() {
    stacks_are_read("fork");
}

#[test]
fn stacks_of_spawn_children() {
    stacks_are_read("spawn");
}

#[test]
fn a_shell_is_not_a_python_process() {
    let m = marker("pystack_sh");
    let _cleanup = Cleanup(m.clone());
    let mut child = Command::new("sh")
        .args(["-c", "sleep 600; true"])
        .env(MARKER_VAR, &m)
        .spawn()
        .expect("sh");
    let root = i64::from(child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    let snapshot = loop {
        let snapshot = inspect(root);
        if snapshot["processes"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
        {
            break snapshot;
        }
        assert!(Instant::now() < deadline, "no sleep child: {snapshot:#}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for entry in snapshot["processes"].as_array().expect("processes") {
        assert_eq!(entry["python_error"], "not a Python process", "{entry:#}");
        assert!(entry["python_threads"].is_null(), "{entry:#}");
        assert!(entry["python_wait"].is_null(), "{entry:#}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Python processes that exit while they are read (each read races the exit): every read is a
/// stack or an error, never a panic, and once the process is gone the error says so.
#[test]
fn a_process_that_vanishes_mid_read_is_an_error() {
    let m = marker("pystack_vanish");
    let _cleanup = Cleanup(m.clone());
    let mut reader = StackReader::new();
    let mut stacks_seen = 0;
    for _ in 0..5 {
        let mut child = Command::new(python())
            .args(["-c", "import time\nfor _ in range(300): time.sleep(0.001)"])
            .env(MARKER_VAR, &m)
            .spawn()
            .expect("python");
        let pid = child.id() as i32;
        // Bounded: at most 2,000 reads of one process, then it is killed.
        for _ in 0..2000 {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            if reader.read(pid).is_ok() {
                stacks_seen += 1;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(reader.read(pid), Err(StackError::Vanished));
        reader.forget_ended();
        assert_eq!(reader.cached(), 0);
    }
    assert!(stacks_seen > 0, "no stack was ever read");
}

/// The TUI's reader thread: readings of the target arrive as messages, never more often than
/// the interval (three readings take at least two intervals, however loaded the machine), and
/// after the process ends the reading says it is gone.
#[test]
fn the_watcher_reads_the_target_at_most_once_an_interval() {
    use forkscope::inspect::pystack::watch::StackWatcher;
    let m = marker("pystack_watch");
    let _cleanup = Cleanup(m.clone());
    let mut child = Command::new(python())
        .args(["-c", "import time\ntime.sleep(600)"])
        .env(MARKER_VAR, &m)
        .spawn()
        .expect("python");
    let pid = child.id() as i32;
    let interval = Duration::from_millis(300);
    let watcher = StackWatcher::spawn(interval).expect("watcher");
    watcher.set(Some((pid, None)));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = watcher
            .reports()
            .recv_timeout(Duration::from_secs(60))
            .expect("a reading");
        let named = report.wait.as_deref() == Some("time.sleep at <string>:2");
        let has_frames = report.stacks.as_ref().is_ok_and(|threads| {
            threads
                .iter()
                .any(|t| t.frames.iter().any(|f| f.function == "<module>"))
        });
        if has_frames {
            assert!(!named, "<string> has no source line to read: {report:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never read: {report:?}");
    }
    // Readings made before now may wait in the channel: drop them, then the next three were
    // all made after `drained`, an interval or more apart.
    while watcher.reports().try_recv().is_ok() {}
    let drained = Instant::now();
    for _ in 0..3 {
        watcher
            .reports()
            .recv_timeout(Duration::from_secs(30))
            .expect("a reading");
    }
    assert!(drained.elapsed() >= interval * 2, "{:?}", drained.elapsed());
    let _ = child.kill();
    let _ = child.wait();
    let gone = loop {
        let report = watcher
            .reports()
            .recv_timeout(Duration::from_secs(30))
            .expect("a reading");
        if report.stacks.is_err() {
            break report;
        }
    };
    assert_eq!(gone.stacks, Err(StackError::Vanished));
    watcher.set(None);
    drop(watcher);
}

/// A process that execs (here into a new interpreter of the same binary) is read again from
/// scratch: the stack the cached spy found before the exec is not shown after it.
#[test]
fn a_process_that_execs_is_read_anew() {
    use std::io::Write;
    let m = marker("pystack_exec");
    let _cleanup = Cleanup(m.clone());
    let program = "import os, sys\n\
                   def before():\n    sys.stdin.readline()\n    os.execv(sys.executable, [sys.executable, '-c', \
                   'import time\\ndef after():\\n    time.sleep(600)\\nafter()'])\n\
                   before()\n";
    let mut child = Command::new(python())
        .args(["-c", program])
        .env(MARKER_VAR, &m)
        .stdin(Stdio::piped())
        .spawn()
        .expect("python");
    let pid = child.id() as i32;
    let mut reader = StackReader::new();
    let mut wait_for_function = |name: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let read = reader.read(pid);
            let found = read.as_ref().is_ok_and(|threads| {
                threads
                    .iter()
                    .any(|t| t.frames.iter().any(|f| f.function == name))
            });
            if found {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never read: {read:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for_function("before");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"\n").expect("write");
    drop(stdin);
    wait_for_function("after");
    let _ = child.kill();
    let _ = child.wait();
}
