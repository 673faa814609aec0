//! What each `--track` source says about itself and what it can see: the session event
//! names the active source; poll sees a long-lived grandchild but not its exit status, nor a
//! grandchild shorter than its interval (its documented blind spot), which kernel and
//! ptrace see (real-time signals included).

mod common;

use std::time::Duration;

use common::{assert_every_fork_has_one_exit, kernel_available, run};

/// `/bin/true` lives about a millisecond; `/bin/sleep 1` lives through several polls.
const SCRIPT: &str = "/bin/true; /bin/sleep 1; echo done";

#[test]
fn poll_sees_long_lived_grandchildren_without_their_status() {
    let run = run(
        "poll",
        &["--sample-interval", "0.5"],
        &["sh", "-c", SCRIPT],
        Duration::from_secs(30),
    );
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    let session = run.session();
    assert_eq!(session["track"], "poll");
    assert!(
        session["track_note"]
            .as_str()
            .unwrap_or("")
            .contains("missed"),
        "{session}"
    );
    let sleep = run
        .kind("exec")
        .find(|e| e["argv"] == serde_json::json!(["/bin/sleep", "1"]))
        .unwrap_or_else(|| panic!("poll did not see the sleep: {:?}", run.events));
    let pid = sleep["pid"].as_i64().expect("pid");
    let fork = run.kind("fork").find(|f| f["pid"] == pid).expect("fork");
    assert_eq!(fork["source"], "poll");
    assert_eq!(fork["ppid"], run.worker_pid());
    // The blind spots: the exit status of a grandchild its parent reaped...
    let exits = run.exits_of(pid);
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0]["code"], serde_json::Value::Null);
    assert_eq!(exits[0]["python_exitcode"], serde_json::Value::Null);
    // ...and a grandchild that lived less than one interval (about 1 ms of 500: a scan
    // lands inside it with a probability near 0.2%).
    assert!(
        !run.kind("exec")
            .any(|e| e["argv"] == serde_json::json!(["/bin/true"])),
        "poll is not expected to catch a 1 ms process"
    );
    // Unknown endings are counted and said, not silent.
    let unknown = run
        .kind("exit")
        .filter(|e| e["code"].is_null() && e["signal"].is_null())
        .count() as u64;
    assert!(unknown >= 1);
    let end = run.kind("end").next().expect("end");
    assert_eq!(end["unknown_exits"].as_u64(), Some(unknown), "{end}");
    assert!(
        run.kind("notice").any(|n| n["level"] == "warning"
            && n["message"].as_str().unwrap_or("").starts_with(&format!(
                "{unknown} process(es) ended with an unknown status"
            ))),
        "{:?}",
        run.events
    );
    assert_every_fork_has_one_exit(&run);
    run.assert_nothing_left();
}

#[test]
fn kernel_sees_what_poll_misses() {
    if !kernel_available() {
        return;
    }
    let run = run(
        "kernel",
        &[],
        &["sh", "-c", SCRIPT],
        Duration::from_secs(30),
    );
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    let session = run.session();
    assert_eq!(session["track"], "kernel");
    assert!(
        session["track_note"]
            .as_str()
            .unwrap_or("")
            .contains("drop"),
        "{session}"
    );
    let end = run.kind("end").next().expect("end");
    assert!(end["unknown_exits"].is_null(), "every exit exact: {end}");
    let worker = run.worker_pid();
    // Both grandchildren forked, with exact exits (the 1 ms one's argv may be read too
    // late to show, so it is found by its fork and exit).
    let forks: Vec<i64> = run
        .kind("fork")
        .filter(|f| f["ppid"] == worker)
        .map(|f| f["pid"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(forks.len(), 2, "{:?}", run.events);
    for pid in forks {
        let exits = run.exits_of(pid);
        assert_eq!(exits.len(), 1);
        assert_eq!(exits[0]["code"], 0);
        assert_eq!(exits[0]["source"], "kernel");
    }
    assert_every_fork_has_one_exit(&run);
}

/// While the machine forks busily outside the tree and the tree is quiet, the engine reads
/// kernel events in batches (every 25 ms, not at each event): the tree's own short-lived
/// grandchildren are still all seen, each with its exact status, its fork before its exit.
#[test]
fn kernel_batches_a_busy_machine_without_losing_the_tree() {
    if !kernel_available() {
        return;
    }
    // Outside the tree: a bounded loop of 3,000 forks, killed at the end if still running.
    let mut outside = std::process::Command::new("sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 3000 ]; do /bin/true; i=$((i+1)); done",
        ])
        .spawn()
        .expect("sh");
    let script = "sleep 0.5; sh -c 'exit 3'; sleep 0.3; sh -c 'kill -TERM $$'; sleep 0.3; \
                  /bin/true; echo done";
    let run = run(
        "kernel",
        &[],
        &["sh", "-c", script],
        Duration::from_secs(30),
    );
    let _ = outside.kill();
    let _ = outside.wait();
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    let end = run.kind("end").next().expect("end");
    assert!(end["unknown_exits"].is_null(), "every exit exact: {end}");
    let worker = run.worker_pid();
    let forks: Vec<&serde_json::Value> = run.kind("fork").filter(|f| f["ppid"] == worker).collect();
    // Three sleeps, two shells, one true.
    assert_eq!(forks.len(), 6, "{:?}", run.events);
    let mut statuses = Vec::new();
    for fork in forks {
        let pid = fork["pid"].as_i64().unwrap_or(0);
        let exits = run.exits_of(pid);
        assert_eq!(exits.len(), 1, "{pid}: {exits:?}");
        assert_eq!(exits[0]["source"], "kernel");
        let (born, ended) = (fork["t"].as_f64(), exits[0]["t"].as_f64());
        assert!(born <= ended, "fork at {born:?} after exit at {ended:?}");
        statuses.push((exits[0]["code"].as_i64(), exits[0]["signal"].as_str()));
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            (None, Some("SIGTERM")),
            (Some(0), None),
            (Some(0), None),
            (Some(0), None),
            (Some(0), None),
            (Some(3), None)
        ]
    );
    assert_every_fork_has_one_exit(&run);
}

#[test]
fn auto_names_the_source_it_chose() {
    let run = run("auto", &[], &["true"], Duration::from_secs(30));
    assert_eq!(run.status, 0);
    let track = run.session()["track"].clone();
    let want = if kernel_available() { "kernel" } else { "poll" };
    assert_eq!(track, want);
}

#[test]
fn ptrace_sees_what_poll_misses() {
    if !common::ptrace_available() {
        return;
    }
    let run = run(
        "ptrace",
        &[],
        &["sh", "-c", SCRIPT],
        Duration::from_secs(30),
    );
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    assert_eq!(run.session()["track"], "ptrace");
    let worker = run.worker_pid();
    let forks: Vec<i64> = run
        .kind("fork")
        .filter(|f| f["ppid"] == worker)
        .map(|f| f["pid"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(forks.len(), 2, "{:?}", run.events);
    // ptrace reads argv at the exec stop, while the process waits: never too late.
    for (pid, argv) in forks.iter().zip([
        serde_json::json!(["/bin/true"]),
        serde_json::json!(["/bin/sleep", "1"]),
    ]) {
        let exec = run.kind("exec").find(|e| e["pid"] == *pid).expect("exec");
        assert_eq!(exec["argv"], argv);
        let exits = run.exits_of(*pid);
        assert_eq!(exits.len(), 1);
        assert_eq!(exits[0]["code"], 0);
        assert_eq!(exits[0]["source"], "ptrace");
    }
    assert_every_fork_has_one_exit(&run);
}

/// A program that stops itself would stay stopped for good under TRACEME-style tracing
/// (SIGCONT cannot reach a stopped tracee), so stop signals are not honoured: it goes on.
#[test]
fn ptrace_does_not_leave_a_self_stopped_program_hanging() {
    if !common::ptrace_available() {
        return;
    }
    let run = run(
        "ptrace",
        &[],
        &["sh", "-c", "kill -STOP $$; echo resumed"],
        Duration::from_secs(30),
    );
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stdout_lines(), vec!["resumed"]);
}

/// A real-time signal sent to a tracee reaches it (nix's `ptrace::cont` could not pass it
/// on: its `Signal` has no real-time signals; hence the raw `PTRACE_CONT`), and its death by
/// one is reaped (nix's `waitid` fails to decode it; hence the raw peek).
#[test]
fn ptrace_delivers_real_time_signals() {
    if !common::ptrace_available() {
        return;
    }
    let run = run(
        "ptrace",
        &[],
        &["sh", "-c", "kill -34 $$; echo survived"],
        Duration::from_secs(30),
    );
    assert_eq!(run.status, 1, "stderr: {}", run.stderr);
    assert!(run.stdout_lines().is_empty(), "{:?}", run.stdout_lines());
    let exits = run.exits_of(run.worker_pid());
    assert_eq!(exits.len(), 1, "{:?}", run.events);
    assert_eq!(exits[0]["signo"], 34, "{:?}", run.events);
}
