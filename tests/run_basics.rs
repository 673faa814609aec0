//! `forkscope run --headless`: pool environment, no shell, the exact exit events and the exit
//! status of `run` itself. Real processes, real signals.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::*;
use serde_json::Value;

#[test]
fn workers_get_the_pool_variables() {
    let m = marker("poolenv");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "-n",
            "3",
            "--name",
            "crunch",
            "--headless",
            "--",
            "sh",
            "-c",
            "echo \"$FORKSCOPE_POOL|$FORKSCOPE_WORKER|$FORKSCOPE_POOL_SIZE\"",
        ],
    );
    let (code, events) = fs.finish_clean(secs(8.0));
    assert_eq!(code, 0);
    let spawns = of_kind(&events, "spawn");
    assert_eq!(spawns.len(), 3);
    let engine = fs.engine_pid();
    for spawn in &spawns {
        let pid = pid_of(spawn);
        let index = spawn["worker"].as_u64().expect("worker index");
        assert_eq!(spawn["pool"], "crunch");
        assert_eq!(spawn["ppid"].as_i64(), Some(engine as i64));
        assert_eq!(spawn["argv"][0], "sh");
        assert_eq!(
            lines_of(&events, pid, "stdout"),
            vec![format!("crunch|{index}|3")]
        );
    }
    let mut indexes: Vec<u64> = spawns
        .iter()
        .map(|s| s["worker"].as_u64().unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1, 2]);
}

#[test]
fn no_shell_unless_written() {
    let (code, events) = run_clean(
        "noshell",
        &["run", "--headless", "--", "echo", "$HOME", "*", ";", "a  b"],
        secs(8.0),
    );
    assert_eq!(code, 0);
    let spawn = &of_kind(&events, "spawn")[0];
    // The default pool name is the command's file name.
    assert_eq!(spawn["pool"], "echo");
    assert_eq!(
        spawn["argv"],
        serde_json::json!(["echo", "$HOME", "*", ";", "a  b"])
    );
    assert_eq!(
        lines_of(&events, pid_of(spawn), "stdout"),
        vec!["$HOME * ; a  b"]
    );
}

/// Runs one worker and returns its exit event and forkscope's exit code.
fn one_exit(name: &str, cmd: &[&str]) -> (Value, i32, Vec<Value>) {
    let m = marker(name);
    let mut args = vec!["run", "--headless", "--"];
    args.extend_from_slice(cmd);
    let mut fs = Forkscope::start(&m, &args);
    let (code, events) = fs.finish_clean(secs(8.0));
    let pid = spawned_pids(&events)[0];
    let exit = exit_of(&events, pid).expect("exit event of the worker");
    (exit, code, events)
}

#[test]
fn exit_codes() {
    let (exit, code, events) = one_exit("exit0", &["true"]);
    assert_eq!(exit["code"], 0);
    assert_eq!(exit["signal"], Value::Null);
    assert_eq!(exit["core_dumped"], false);
    assert_eq!(exit["python_exitcode"], 0);
    assert_eq!(exit["shell_status"], 0);
    assert_eq!(exit["pool"], "true");
    assert_eq!(exit["worker"], 0);
    assert_eq!(exit["source"], "engine");
    assert_eq!(code, 0);
    assert_eq!(events.last().unwrap()["status"], 0);

    let (exit, code, events) = one_exit("exit7", &["sh", "-c", "exit 7"]);
    assert_eq!(exit["code"], 7);
    assert_eq!(exit["signal"], Value::Null);
    assert_eq!(exit["python_exitcode"], 7);
    assert_eq!(exit["shell_status"], 7);
    assert_eq!(code, 1);
    assert_eq!(events.last().unwrap()["status"], 1);
}

#[test]
fn killed_by_sigterm_and_sigkill() {
    let (exit, code, _) = one_exit("selfterm", &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(exit["code"], Value::Null);
    assert_eq!(exit["signal"], "SIGTERM");
    assert_eq!(exit["signo"], 15);
    assert_eq!(exit["core_dumped"], false);
    assert_eq!(exit["python_exitcode"], -15);
    assert_eq!(exit["shell_status"], 143);
    assert_eq!(code, 1);

    let (exit, code, _) = one_exit("selfkill", &["sh", "-c", "kill -KILL $$"]);
    assert_eq!(exit["signal"], "SIGKILL");
    assert_eq!(exit["python_exitcode"], -9);
    assert_eq!(exit["shell_status"], 137);
    assert_eq!(code, 1);
}

/// What the kernel reports for this command run directly (the reference for core_dumped).
fn reference_core_dumped(script: &str, dir: &std::path::Path) -> (Option<i32>, bool) {
    let status = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .status()
        .expect("run reference");
    (status.signal(), status.core_dumped())
}

#[test]
fn sigsegv_without_core() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "ulimit -c 0; kill -SEGV $$";
    let (signal, core) = reference_core_dumped(script, dir.path());
    assert_eq!(signal, Some(libc::SIGSEGV));
    let (exit, code, _) = one_exit(
        "segv0",
        &["sh", "-c", &format!("cd {:?}; {script}", dir.path())],
    );
    assert_eq!(exit["signal"], "SIGSEGV");
    assert_eq!(exit["python_exitcode"], -11);
    assert_eq!(exit["shell_status"], 139);
    assert_eq!(
        exit["core_dumped"], core,
        "must match what the kernel reports directly"
    );
    // With RLIMIT_CORE 0 and a plain core_pattern, no core is written.
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if !pattern.starts_with('|') {
        assert_eq!(exit["core_dumped"], false);
    }
    assert_eq!(code, 1);
}

#[test]
fn sigsegv_with_core_is_reported_as_the_kernel_says() {
    // A core (if the kernel writes one) lands in the temporary directory, removed at the end.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "ulimit -c unlimited 2>/dev/null; kill -SEGV $$";
    let (_, core) = reference_core_dumped(script, dir.path());
    let (exit, _, _) = one_exit(
        "segvcore",
        &["sh", "-c", &format!("cd {:?}; {script}", dir.path())],
    );
    assert_eq!(exit["signal"], "SIGSEGV");
    assert_eq!(
        exit["core_dumped"], core,
        "must match what the kernel reports directly"
    );
}

#[test]
fn run_status_is_zero_only_when_every_worker_exits_zero() {
    let m = marker("mixed");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "-n",
            "3",
            "--headless",
            "--",
            "sh",
            "-c",
            "exit $FORKSCOPE_WORKER",
        ],
    );
    let (code, events) = fs.finish_clean(secs(8.0));
    assert_eq!(code, 1);
    let mut codes: Vec<i64> = of_kind(&events, "exit")
        .iter()
        .map(|e| e["code"].as_i64().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, vec![0, 1, 2]);

    let (code, events) = run_clean(
        "allzero",
        &["run", "-n", "4", "--headless", "--", "true"],
        secs(8.0),
    );
    assert_eq!(code, 0);
    assert_eq!(of_kind(&events, "exit").len(), 4);
}

#[test]
fn every_event_has_t_kind_and_pid_and_time_grows() {
    let (_, events) = run_clean(
        "shape",
        &[
            "run",
            "-n",
            "2",
            "--headless",
            "--",
            "sh",
            "-c",
            "echo a; echo b >&2",
        ],
        secs(8.0),
    );
    assert_eq!(kind(&events[0]), "session");
    let mut last = 0.0;
    for event in &events {
        let t = event["t"].as_f64().expect("t is a number");
        assert!(t >= last, "t must not go backwards: {event}");
        last = t;
        assert!(event.get("kind").is_some(), "{event}");
        assert!(event.get("pid").is_some(), "{event}");
    }
    // A worker's output comes before its exit event, and the exit before `end`.
    for pid in spawned_pids(&events) {
        let exit_at = events
            .iter()
            .position(|e| kind(e) == "exit" && pid_of(e) == pid)
            .expect("exit");
        let spawn_at = events
            .iter()
            .position(|e| kind(e) == "spawn" && pid_of(e) == pid)
            .expect("spawn");
        for (i, e) in events.iter().enumerate() {
            if kind(e) == "output" && pid_of(e) == pid {
                assert!(
                    spawn_at < i && i < exit_at,
                    "output outside spawn..exit: {e}"
                );
            }
        }
    }
}

#[test]
fn hundreds_of_workers_under_the_default_open_files_limit() {
    // Each running worker costs forkscope three descriptors; with the common soft limit of
    // 1024, worker ~340 used to fail with EMFILE. forkscope raises its soft limit.
    let m = marker("nofile");
    let mut fs = Forkscope::start_with(
        &m,
        &["run", "-n", "400", "--headless", "--", "sleep", "30"],
        StartOptions {
            soft_nofile: Some(1024),
            ..StartOptions::default()
        },
    );
    fs.wait_until("400 spawn or spawn_failed events", secs(8.0), |events| {
        events
            .iter()
            .filter(|e| kind(e) == "spawn" || kind(e) == "spawn_failed")
            .count()
            >= 400
    });
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(9.0));
    let failed = of_kind(&events, "spawn_failed");
    assert!(failed.is_empty(), "{}", failed[0]);
    assert_eq!(of_kind(&events, "exit").len(), 400);
}

#[test]
fn the_stream_parses_as_the_library_event_type_and_matches_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("session.jsonl");
    let m = marker("record");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "-n",
            "2",
            "--headless",
            "--record",
            record.to_str().unwrap(),
            "--restart",
            "on-failure",
            "--",
            "sh",
            "-c",
            "printf 'x\\377\\n'; echo e >&2; [ $FORKSCOPE_WORKER = 0 ] || kill -KILL $$",
        ],
    );
    let (_, events) = fs.finish_clean(secs(9.0));
    for event in &events {
        let typed: forkscope::model::Event =
            serde_json::from_value(event.clone()).unwrap_or_else(|e| panic!("{e}: {event}"));
        // And back to the same JSON.
        assert_eq!(&serde_json::to_value(&typed).unwrap(), event);
    }
    let kinds: std::collections::BTreeSet<&str> = events.iter().map(kind).collect();
    for expected in [
        "session",
        "spawn",
        "output",
        "exit",
        "restart",
        "worker_failed",
        "end",
    ] {
        assert!(kinds.contains(expected), "no {expected} event");
    }
    // The recording holds every event of the stream (plus `sample`s, hidden on stdout).
    let recorded: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| kind(e) != "sample")
        .collect();
    assert_eq!(recorded, events);
}
