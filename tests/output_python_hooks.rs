//! The Python bootstrap (no `PYTHON*` variable set, as on a user's machine): each Python
//! process forked or spawned in the tree gets a pipe of its own, so a multiprocessing child's
//! traceback is filed under the child's pid; the program's own sitecustomize still runs;
//! `--no-python-hooks` gives the shared pipe back.

mod common;

use common::*;
use serde_json::Value;

const CHILD_FAILS: &str = r#"
import multiprocessing as mp, os, sys
def boom():
    for i in range(500):
        print("child", os.getpid(), i)
    raise RuntimeError("boom in the child")
if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    print("parent", os.getpid())
    p = mp.Process(target=boom)
    p.start()
    p.join()
    print("child exitcode", p.exitcode)
"#;

/// Runs CHILD_FAILS with `method`; returns (worker pid, events).
fn child_fails(name: &str, method: &str, flags: &[&str]) -> (i32, Vec<Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = dir.path().join("child_fails.py");
    std::fs::write(&program, CHILD_FAILS).expect("write program");
    let program = program.to_string_lossy().into_owned();
    let mut args = vec!["run", "--headless"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "python3", &program, method]);
    let (code, events) = run_clean(name, &args, secs(60.0));
    assert_eq!(code, 0, "{}", dump(&events));
    (spawned_pids(&events)[0], events)
}

/// The pid that reported the traceback's last line.
fn traceback_pid(events: &[Value]) -> i32 {
    let line = events
        .iter()
        .find(|e| kind(e) == "output" && e["line"] == "RuntimeError: boom in the child")
        .unwrap_or_else(|| panic!("no traceback: {}", dump(events)));
    assert_eq!(line["stream"], "stderr");
    pid_of(line)
}

fn assert_filed_under_the_child(worker: i32, events: &[Value]) {
    let child = traceback_pid(events);
    assert_ne!(child, worker, "the traceback is filed under the worker");
    // Everything the child printed is under its pid, in order, seq 1..=500.
    let expected: Vec<String> = (0..500).map(|i| format!("child {child} {i}")).collect();
    assert_eq!(lines_of(events, child, "stdout"), expected);
    for (i, e) in output_of(events, child, "stdout").iter().enumerate() {
        assert_eq!(e["seq"].as_u64(), Some(i as u64 + 1));
    }
    let worker_lines = lines_of(events, worker, "stdout");
    assert_eq!(
        worker_lines,
        [format!("parent {worker}"), "child exitcode 1".to_string()]
    );
}

#[test]
fn a_fork_childs_traceback_is_filed_under_the_child() {
    let (worker, events) = child_fails("hookfork", "fork", &[]);
    assert_filed_under_the_child(worker, &events);
}

#[test]
fn a_spawn_childs_traceback_is_filed_under_the_child() {
    let (worker, events) = child_fails("hookspawn", "spawn", &[]);
    assert_filed_under_the_child(worker, &events);
}

#[test]
fn without_hooks_the_child_shares_the_workers_pipe() {
    let (worker, events) = child_fails("nohooks", "fork", &["--no-python-hooks"]);
    assert_eq!(traceback_pid(&events), worker);
    assert_eq!(lines_of(&events, worker, "stdout").len(), 502);
}

#[test]
fn the_programs_own_sitecustomize_still_runs_and_ours_is_invisible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = dir.path().join("user");
    std::fs::create_dir(&user).expect("mkdir");
    std::fs::write(
        user.join("sitecustomize.py"),
        "import sys\nUSER_MARK = 'mine'\nprint('user sitecustomize ran', flush=True)\n",
    )
    .expect("write sitecustomize");
    let probe = "import os, sys, sitecustomize\n\
                 hooks = os.environ['PYTHONPATH'].split(':')[0]\n\
                 print('module', getattr(sitecustomize, 'USER_MARK', None))\n\
                 print('hooks dir on sys.path', hooks in sys.path)\n\
                 print('mode', oct(os.stat(hooks).st_mode & 0o777))\n\
                 print('user dir on sys.path', os.environ['PYTHONPATH'].split(':')[1] in sys.path)\n";
    let config = dir.path().join("forkscope.toml");
    std::fs::write(
        &config,
        format!(
            "[[pool]]\nname = \"p\"\ncommand = [\"python3\", \"-c\", {probe:?}]\n\
             env = {{ PYTHONPATH = {:?} }}\n",
            user.to_string_lossy()
        ),
    )
    .expect("write config");
    let path = config.to_string_lossy().into_owned();
    let (code, events) = run_clean("usersite", &["up", "--headless", "-f", &path], secs(30.0));
    assert_eq!(code, 0, "{}", dump(&events));
    let pid = spawned_pids(&events)[0];
    assert_eq!(
        lines_of(&events, pid, "stdout"),
        [
            "user sitecustomize ran",
            "module mine",
            "hooks dir on sys.path False",
            "mode 0o700",
            "user dir on sys.path True"
        ]
    );
}

#[test]
fn the_private_directory_is_gone_after_the_session() {
    let (_, events) = run_clean(
        "hooksdir",
        &[
            "run",
            "--headless",
            "--",
            "sh",
            "-c",
            "echo ${PYTHONPATH%%:*}; echo $FORKSCOPE_OUTPUT_SOCKET",
        ],
        secs(20.0),
    );
    let pid = spawned_pids(&events)[0];
    let lines = lines_of(&events, pid, "stdout");
    assert_eq!(lines.len(), 2, "{}", dump(&events));
    assert!(lines[0].contains("forkscope-hooks-"), "{}", lines[0]);
    assert!(lines[1].starts_with(&lines[0]), "{}", lines[1]);
    assert!(!std::path::Path::new(&lines[0]).exists());
}

#[test]
fn samples_say_whose_pipe_a_non_python_child_shares() {
    let m = marker("sharedpipe");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "--headless",
            "--samples",
            "--sample-interval",
            "0.2",
            "--",
            "sh",
            "-c",
            "sleep 3 & wait",
        ],
    );
    let worker = pid_of(&fs.wait_event("spawn", secs(10.0), |e| kind(e) == "spawn"));
    let sample = fs.wait_event("a sample marking the shared pipe", secs(15.0), |e| {
        kind(e) == "sample"
            && e["procs"]
                .as_array()
                .is_some_and(|procs| procs.iter().any(|p| p["shares_pipe_of"] == worker))
    });
    let procs = sample["procs"].as_array().expect("procs");
    // The worker owns its pipe: it is not marked; its `sleep` child is.
    assert!(
        procs
            .iter()
            .any(|p| p["pid"] == worker && p.get("shares_pipe_of").is_none())
    );
    let (code, _) = fs.finish_clean(secs(20.0));
    assert_eq!(code, 0);
}
