//! Exactness under load: 40 children exiting at once with distinct codes, a bounded fork
//! bomb (every fork has its exit, exact codes per level), and exec reported with its argv.

mod common;

use std::time::Duration;

use common::{assert_every_fork_has_one_exit, kernel_available, python, run, run_env, tracks};

const FORTY: &str = r#"
import os
r, w = os.pipe()
pids = []
for i in range(40):
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)          # returns when the parent closes the pipe: all at once
        os._exit(10 + i)
    pids.append(pid)
os.close(w)
for pid in pids:
    _, status = os.waitpid(pid, 0)
    print(pid, os.waitstatus_to_exitcode(status), flush=True)
"#;

#[test]
fn forty_children_exit_at_once_with_distinct_codes() {
    let python = python();
    for track in tracks() {
        let run = run(track, &[], &[&python, "-c", FORTY], Duration::from_secs(60));
        assert_eq!(run.status, 0, "stderr: {}", run.stderr);
        if !common::exact(&run) {
            eprintln!(
                "auto chose {}: exactness not checked",
                run.session()["track"]
            );
            continue;
        }
        let source = run.session()["track"].clone();
        let worker = run.worker_pid();
        let lines = run.stdout_lines();
        assert_eq!(lines.len(), 40);
        let mut codes = Vec::new();
        for line in &lines {
            let (pid, code) = line.split_once(' ').expect("pid code");
            let pid: i64 = pid.parse().expect("pid");
            let code: i64 = code.parse().expect("code");
            codes.push(code);
            let forks: Vec<_> = run.kind("fork").filter(|f| f["pid"] == pid).collect();
            assert_eq!(forks.len(), 1, "{track}: forks of {pid}");
            assert_eq!(forks[0]["ppid"], worker);
            assert_eq!(forks[0]["source"], source);
            let exits = run.exits_of(pid);
            assert_eq!(exits.len(), 1, "{track}: exits of {pid}");
            assert_eq!(exits[0]["code"], code, "{track}: {}", exits[0]);
            assert_eq!(exits[0]["source"], source);
        }
        codes.sort_unstable();
        assert_eq!(codes, (10..50).collect::<Vec<i64>>());
        assert_every_fork_has_one_exit(&run);
        run.assert_nothing_left();
    }
}

/// Width 4, depth 4: 4 + 16 + 64 + 256 = 340 descendants of the worker, each exiting with
/// the depth left below it, so the exact codes can be counted per level.
const BOMB: &str = r#"
import os
WIDTH, DEPTH = 4, 4
def grow(depth):
    kids = []
    for _ in range(WIDTH if depth > 0 else 0):
        pid = os.fork()
        if pid == 0:
            try:
                grow(depth - 1)
            finally:
                os._exit(depth - 1)
        kids.append(pid)
    for pid in kids:
        os.waitpid(pid, 0)
grow(DEPTH)
"#;

#[test]
fn bounded_fork_bomb_loses_no_event() {
    let python = python();
    for track in tracks() {
        let run = run(track, &[], &[&python, "-c", BOMB], Duration::from_secs(120));
        assert_eq!(run.status, 0, "stderr: {}", run.stderr);
        assert!(run.kind("end").count() == 1, "{track}: no end event");
        if !common::exact(&run) {
            eprintln!(
                "auto chose {}: exactness not checked",
                run.session()["track"]
            );
            continue;
        }
        let forks = run.kind("fork").count();
        assert_eq!(forks, 340, "{track}: forks");
        assert_every_fork_has_one_exit(&run);
        let dropped = run
            .kind("notice")
            .any(|n| n["message"].as_str().unwrap_or("").contains("dropped"));
        // Exact codes per level: 4 processes exit 3, 16 exit 2, 64 exit 1, 256 exit 0.
        // (If the kernel dropped events, the repaired ones are `unknown`; say so.)
        let worker = run.worker_pid();
        for (code, want) in [(3, 4), (2, 16), (1, 64), (0, 256)] {
            let got = run
                .kind("exit")
                .filter(|e| e["pid"] != worker && e["code"] == code)
                .count();
            if dropped {
                assert!(got <= want, "{track}: code {code}: {got} > {want}");
            } else {
                assert_eq!(got, want, "{track}: exits with code {code}");
            }
        }
        run.assert_nothing_left();
    }
}

/// A receive buffer too small for the bomb: the kernel drops events (ENOBUFS), forkscope
/// says so and repairs the tree from /proc, so the stream stays consistent: every reported
/// birth has exactly one exit, nothing is reported twice.
#[test]
fn dropped_kernel_events_are_reconciled() {
    if !kernel_available() {
        return;
    }
    let python = python();
    let run = run_env(
        "kernel",
        &["--sample-interval", "0.05"],
        &[&python, "-c", BOMB],
        &[("FORKSCOPE_NETLINK_RCVBUF", "2048")],
        Duration::from_secs(120),
    );
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    assert_eq!(run.kind("end").count(), 1);
    let dropped = run
        .kind("notice")
        .filter(|n| n["message"].as_str().unwrap_or("").contains("dropped"))
        .count();
    assert!(dropped > 0, "the tiny buffer should have overflowed");
    assert!(run.kind("fork").count() <= 340);
    assert_every_fork_has_one_exit(&run);
    run.assert_nothing_left();
    eprintln!(
        "{dropped} overflow episodes; {} forks, {} of them from /proc",
        run.kind("fork").count(),
        run.kind("fork").filter(|f| f["source"] == "poll").count()
    );
}

#[test]
fn exec_is_reported_with_its_argv() {
    for track in tracks() {
        let run = run(
            track,
            &[],
            &["sh", "-c", "/bin/sleep 0.3; echo done"],
            Duration::from_secs(30),
        );
        assert_eq!(run.status, 0, "stderr: {}", run.stderr);
        let worker = run.worker_pid();
        let sleep = run
            .kind("exec")
            .find(|e| e["argv"] == serde_json::json!(["/bin/sleep", "0.3"]))
            .unwrap_or_else(|| panic!("{track}: no exec of sleep in {:?}", run.events));
        let pid = sleep["pid"].as_i64().expect("pid");
        let fork = run.kind("fork").find(|f| f["pid"] == pid).expect("fork");
        assert_eq!(fork["ppid"], worker);
        assert!(fork["start_time"].is_u64(), "{fork}");
        assert_eq!(run.exits_of(pid)[0]["code"], 0);
        assert_every_fork_has_one_exit(&run);
    }
}

/// 50 children told to exit at the very moment their parent exits without waiting: each
/// one dies either as its parent's zombie (then re-parented with the zombie and reaped by
/// forkscope, while the kernel's exit message names the old parent) or as an orphan already
/// re-parented to forkscope. Both sources see those deaths; each must be reported once,
/// with its exact code.
const ORPHANS: &str = r#"
import os
r, w = os.pipe()
for i in range(50):
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(10 + i)
    print(pid, 10 + i, flush=True)
os.close(w)
os._exit(0)
"#;

#[test]
fn children_dying_with_their_parent_get_one_exact_exit_each() {
    let python = python();
    for track in tracks() {
        let run = run(
            track,
            &[],
            &[&python, "-c", ORPHANS],
            Duration::from_secs(60),
        );
        assert_eq!(run.status, 0, "stderr: {}", run.stderr);
        let exact = common::exact(&run);
        let lines = run.stdout_lines();
        assert_eq!(lines.len(), 50);
        for line in &lines {
            let (pid, code) = line.split_once(' ').expect("pid code");
            let pid: i64 = pid.parse().expect("pid");
            let code: i64 = code.parse().expect("code");
            let exits = run.exits_of(pid);
            assert_eq!(exits.len(), 1, "{track}: exits of {pid}: {exits:?}");
            // Once the worker has exited, forkscope stops leftover descendants (SIGTERM):
            // a child still alive then rightly dies of it.
            let stopped = run
                .kind("signal")
                .any(|e| e["pid"] == pid && e["result"] == "sent");
            // Re-parented orphans are reaped by forkscope: exact in every mode.
            if exact || exits[0]["source"] == "engine" {
                if stopped && exits[0]["signal"] == "SIGTERM" {
                    continue;
                }
                assert_eq!(exits[0]["code"], code, "{track}: {}", exits[0]);
            }
        }
        assert_every_fork_has_one_exit(&run);
        run.assert_nothing_left();
        let by: Vec<String> = ["kernel", "ptrace", "engine"]
            .iter()
            .map(|s| {
                let n = run
                    .kind("exit")
                    .filter(|e| e["source"] == *s && e["pool"].is_null())
                    .count();
                format!("{s}: {n}")
            })
            .collect();
        eprintln!("{track}: exits of the 50 by source: {by:?}");
    }
}
